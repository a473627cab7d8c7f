#!/usr/bin/env bash
# `m4fw demo` with items whose adapters output an image or audio (path 4 `generator`: speech and
# enlargement; the full path into the image decoder: drawing): each writes its file into --out-dir
# (byte for byte what `m4fw run --adapter … --out` writes), a speech item's "check" recogniser
# listens to the audio and is marked right/WRONG against the item's truth, the closing lines count
# the labelled items and the generated outputs apart, and each fault is a clear error (a firmware
# without the decoders — the other items still run —, a bad --out-dir, a bad "out" or "check").
# Usage: test_demo_cli.sh M4FW_BINARY WORKDIR
source "$(dirname "$0")/harness.sh" "$@"

# The oracle config has both decoders: image 16×16 with a projector from the backbone, speech of at
# most 5 characters × 3 frames → (15 − 1)·160 + 400 = 2640 samples at 16 kHz.
/usr/bin/python3 - "$root/tests/oracle/oracle_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert "from_backbone" in c["decoders"]["image"] and "speech" in c["decoders"]
json.dump(c, open("fw.json", "w"))
del c["decoders"]
json.dump(c, open("nodec.json", "w"))
items = [
    {"title": "Which language?", "adapter": "lang.m4a", "kind": "text", "input": "guten tag", "truth": "de"},
    {"title": "Say go", "adapter": "tts.m4a", "kind": "text", "input": "go", "truth": "go", "check": "rec.m4a",
     "out": "go.wav"},
    # no "kind": a speech item's input is its text; no "out": 03-tts.wav
    {"title": "Say no", "adapter": "tts.m4a", "input": "no", "truth": "no", "check": "rec.m4a"},
    {"title": "Draw a scene", "adapter": "scene.m4a", "kind": "text", "input": "a red circle above a blue square",
     "out": "scene.png"},
    {"title": "Enlarge a photo", "adapter": "sr.m4a", "input": "small.png", "out": "big.png"},
]
json.dump({"items": items}, open("demo.json", "w"), indent=1)
nodec = [dict(items[0], adapter="lang-nodec.m4a")] + items[1:]
json.dump({"items": nodec}, open("nodec-demo.json", "w"), indent=1)
json.dump({"items": [dict(items[1], out="../go.wav")]}, open("badout.json", "w"))
json.dump({"items": [dict(items[3], check="rec.m4a")]}, open("badcheck.json", "w"))
json.dump({"items": [items[1], dict(items[2], out="go.wav")]}, open("twice.json", "w"))
json.dump({"items": [dict(items[1], kind="audio")]}, open("badkind.json", "w"))
json.dump({"items": [dict(items[1], check="scene.m4a")]}, open("badrec.json", "w"))
PY
write_png small.png 8 6  # enlarged onto the 16×16 grid
for n in fw nodec; do
  "$m4fw" init --config $n.json --out $n.m4fw --seed 3 >/dev/null 2>&1 && ok "init $n" || bad "init $n"
done
adapter() {  # NAME FIRMWARE ARGS…
  local n="$1" f="$2"; shift 2
  "$m4fw" adapter init --firmware "$f" --out "$n.m4a" --name "$n" --rank 2 --alpha 4 --targets all --seed 5 "$@" \
    >/dev/null 2>&1 && ok "adapter init $n" || bad "adapter init $n"
}
adapter tts fw.m4fw --task generate --path generator --modality audio
adapter scene fw.m4fw --task generate --path full --modality text
adapter sr fw.m4fw --task generate --path generator --modality image
# A recogniser that knows one word: it hears "go" in anything, so "go" is right and "no" WRONG.
adapter rec fw.m4fw --task classify --path encoder --modality audio --labels go
adapter lang fw.m4fw --task classify --path backbone --modality text --labels en,de
adapter lang-nodec nodec.m4fw --task classify --path backbone --modality text --labels en,de

wav_ok() {  # FILE: a 16-bit mono 16 kHz WAV of 2640 samples
  /usr/bin/python3 -c "
import struct
b = open('$1', 'rb').read()
assert b[:4] == b'RIFF' and b[8:12] == b'WAVE', 'not a WAV'
ch, rate = struct.unpack('<HI', b[22:28]); bits = struct.unpack('<H', b[34:36])[0]
n = struct.unpack('<I', b[40:44])[0] // 2
assert (ch, rate, bits, n) == (1, 16000, 16, 2640), (ch, rate, bits, n)
"
}
png_ok() {  # FILE: a 16x16 PNG
  /usr/bin/python3 -c "
import struct
b = open('$1', 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
assert struct.unpack('>II', b[16:24]) == (16, 16), struct.unpack('>II', b[16:24])
"
}

"$m4fw" demo --firmware fw.m4fw --spec demo.json --out-dir out/ > demo.log 2>&1 && ok "demo --out-dir out/" \
  || bad "demo: $(cat demo.log)"
cat demo.log
wav_ok out/go.wav && wav_ok out/03-tts.wav && ok "the speech items wrote 2640-sample WAVs (03-tts.wav: the default name)" \
  || bad "WAVs: $(ls -l out)"
png_ok out/scene.png && png_ok out/big.png && ok "the drawing and the enlargement wrote 16x16 PNGs" || bad "PNGs: $(ls -l out)"
[ "$(ls out | wc -l)" -eq 4 ] && ok "four files in out/" || bad "out/ holds: $(ls out)"
for want in "generated images and audio go to out/ ($work/out)" \
  "  app adapter tts · path generator (audio) → speech decoder" \
  "  wrote  out/go.wav (0.17 s, 16 kHz)" \
  '  check  rec heard "go" (100 %) — right (truth: go)' \
  '  check  rec heard "go" (100 %) — WRONG (truth: no)' \
  "  app adapter scene · path full (text) → image decoder" \
  '  input  "a red circle above a blue square"' \
  "  wrote  out/scene.png (16x16)" \
  "  app adapter sr · path generator (image) → image decoder" \
  "  input  small.png" \
  "  wrote  out/big.png (16x16, enlarged from 8x6)" \
  "generated 4 outputs in out/; the firmware's own recogniser heard 1 of 2 spoken words right"; do
  grep -qxF -- "$want" demo.log && ok "line: $want" || bad "no line '$want'"
done
[ "$(grep -c '^  [0-9.]* ms (adapter load + input + inference + writing the file' demo.log)" -eq 4 ] \
  && ok "a latency for each generated output" || bad "latency lines"
# The closing count of the labelled items is the one the default-firmware test greps: the generated
# outputs (and their checks) are not in it.
right=$(grep -c ') right$' demo.log)
wrong=$(grep -c ') WRONG$' demo.log)
[ $((right + wrong)) -eq 1 ] && grep -qx "answered correctly: $right of 1 items with a truth label" demo.log \
  && ok "answered correctly: $right of 1 (the labelled item only)" || bad "closing count ($right right, $wrong wrong)"

# The same files as `m4fw run --out`, byte for byte.
"$m4fw" run --firmware fw.m4fw --adapter tts.m4a go --out run-go.wav >/dev/null 2>&1 && cmp -s run-go.wav out/go.wav \
  && ok "go.wav = m4fw run --adapter tts.m4a go --out" || bad "go.wav differs from m4fw run's"
"$m4fw" run --firmware fw.m4fw --adapter scene.m4a "a red circle above a blue square" --out run-scene.png >/dev/null 2>&1 \
  && cmp -s run-scene.png out/scene.png && ok "scene.png = m4fw run --adapter scene.m4a --out" \
  || bad "scene.png differs from m4fw run's"
"$m4fw" run --firmware fw.m4fw --adapter sr.m4a small.png --out run-big.png >/dev/null 2>&1 \
  && cmp -s run-big.png out/big.png && ok "big.png = m4fw run --adapter sr.m4a --out" || bad "big.png differs"
cmp -s out/go.wav out/03-tts.wav && bad "\"go\" and \"no\" sound the same" || ok "\"go\" and \"no\" differ"

# JSON: the outputs and the counts.
"$m4fw" demo --firmware fw.m4fw --spec demo.json --out-dir out --json > demo.json.out 2>&1 \
  && /usr/bin/python3 -c "
import json
j = json.load(open('demo.json.out'))
assert (j['generated'], j['spoken_checked'], j['spoken_heard_right'], j['scored']) == (4, 2, 1, 1), j
o = [i for i in j['items'] if 'output' in i]
assert [i['output'] for i in o] == ['out/go.wav', 'out/03-tts.wav', 'out/scene.png', 'out/big.png'], o
assert o[0]['check'] == {'adapter': 'rec', 'heard': 'go', 'prob': 1.0, 'correct': True}, o[0]
assert o[2]['shape'] == '16x16' and o[0]['shape'] == '0.17 s, 16 kHz', o
" && ok "demo --json: outputs and counts" || bad "demo --json: $(cat demo.json.out)"

# Default --out-dir: demo-out/ under the current directory, created and named.
mkdir -p cwd && (cd cwd && "$m4fw" demo --firmware ../fw.m4fw --spec ../demo.json > ../default.log 2>&1) \
  && grep -qxF "generated images and audio go to demo-out/ ($work/cwd/demo-out)" default.log \
  && grep -qxF "  wrote  demo-out/scene.png (16x16)" default.log && png_ok cwd/demo-out/scene.png \
  && wav_ok cwd/demo-out/go.wav && ok "default --out-dir demo-out/" || bad "default out dir: $(cat default.log)"

# A firmware without the decoders: each generated item is an error naming it and the missing
# decoder, the labelled item still runs, the demo fails, and no output directory appears.
mkdir -p nodec && (cd nodec && "$m4fw" demo --firmware ../nodec.m4fw --spec ../nodec-demo.json > ../nodec.log 2>&1)
rc=$?
cat nodec.log
[ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] && ok "no decoders: the demo fails (exit $rc)" || bad "no decoders: exit $rc"
grep -A1 -xF "Say go" nodec.log | grep -qF 'error: ../nodec.m4fw: no speech decoder ("decoders.speech") for ../tts.m4a' \
  && ok "the speech item names the missing speech decoder" || bad "speech item error"
grep -A1 -xF "Draw a scene" nodec.log | grep -qF 'no image decoder ("decoders.image") for ../scene.m4a' \
  && ok "the drawing item names the missing image decoder" || bad "drawing item error"
grep -A1 -xF "Enlarge a photo" nodec.log | grep -qF 'no image decoder ("decoders.image") for ../sr.m4a' \
  && ok "the enlargement item names the missing image decoder" || bad "enlargement item error"
grep -qE "^answered correctly: [01] of 1 items with a truth label$" nodec.log && grep -q "^  answer " nodec.log \
  && ok "the labelled item still ran" || bad "the labelled item did not run"
grep -qF "nodec-demo.json: 4 of 5 demo items failed" nodec.log && ok "4 of 5 items failed" || bad "failure count"
grep -q "^generated" nodec.log && bad "a 'generated' line without outputs" || ok "no 'generated' line"
test ! -e nodec/demo-out && ok "no demo-out/ created" || bad "demo-out/ created without outputs"

# A bad --out-dir: refused before anything runs.
touch afile
expect_fail "--out-dir is a file" "--out-dir afile: exists and is not a directory" -- \
  "$m4fw" demo --firmware fw.m4fw --spec demo.json --out-dir afile
"$m4fw" demo --firmware fw.m4fw --spec demo.json --out-dir afile 2>&1 | grep -q "loaded once" \
  && bad "the firmware loaded despite a bad --out-dir" || ok "nothing ran with a bad --out-dir"
expect_fail "--out-dir under a file" "--out-dir afile/sub: could not create the directory" -- \
  "$m4fw" demo --firmware fw.m4fw --spec demo.json --out-dir afile/sub
if [ "$(id -u)" != 0 ]; then
  mkdir -p ro && chmod a-w ro
  expect_fail "--out-dir not writable" "--out-dir ro: the directory is not writable" -- \
    "$m4fw" demo --firmware fw.m4fw --spec demo.json --out-dir ro
fi
expect_fail "\"out\" with a directory" "badout.json: items[0]" "\"out\" is a file name in --out-dir" -- \
  "$m4fw" demo --firmware fw.m4fw --spec badout.json --out-dir out2
expect_fail "two items writing one file" "twice.json: items[1]: another item already writes \"go.wav\"" -- \
  "$m4fw" demo --firmware fw.m4fw --spec twice.json --out-dir out2
expect_fail "an unknown kind" "badkind.json: items[0]: \"kind\" is \"file\" or \"text\" (got \"audio\")" -- \
  "$m4fw" demo --firmware fw.m4fw --spec badkind.json --out-dir out2
expect_fail "\"check\" on a drawing" "Draw a scene" "a \"check\" listens to speech" -- \
  "$m4fw" demo --firmware fw.m4fw --spec badcheck.json --out-dir out2
expect_fail "a \"check\" that is no recogniser" "scene.m4a: a recogniser is an audio classify adapter" -- \
  "$m4fw" demo --firmware fw.m4fw --spec badrec.json --out-dir out2
[ -z "$(ls -A out2 2>/dev/null)" ] && ok "a refused check writes no file" || bad "written in out2/: $(ls out2)"

finish "demo cli"
