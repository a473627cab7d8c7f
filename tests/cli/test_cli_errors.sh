#!/usr/bin/env bash
# Every bad input of the engine-core issue through the m4fw command line: a non-zero exit status,
# a message naming the file and the fault, and no crash (exit status < 128, i.e. no signal).
# Usage: test_cli_errors.sh M4FW_BINARY WORKDIR
source "$(dirname "$0")/harness.sh" "$@"

expect_ok() {
  local name="$1"; shift
  if "$@" >/dev/null 2>&1; then pass=$((pass + 1)); echo "PASS $name"; else fail=$((fail + 1)); echo "FAIL $name"; fi
}

cfg="$root/tests/oracle/oracle_config.json"
expect_ok "init" "$m4fw" init --config "$cfg" --out fw.m4fw --seed 3
# init prints its one line and nothing on stderr (SentencePiece's trainer used to log its command there).
if "$m4fw" init --config "$cfg" --out quiet.m4fw --seed 3 >/dev/null 2>init.err && ! test -s init.err; then
  pass=$((pass + 1)); echo "PASS init is quiet on stderr"
else
  fail=$((fail + 1)); echo "FAIL init is quiet on stderr:"; cat init.err
fi
expect_ok "init other" "$m4fw" init --config "$cfg" --out other.m4fw --seed 4
expect_ok "keygen" "$m4fw" keygen --out dev
expect_ok "keygen other" "$m4fw" keygen --out evil
cp fw.m4fw signed.m4fw && expect_ok "sign" "$m4fw" sign signed.m4fw --key dev.key
expect_ok "inspect verified" "$m4fw" inspect signed.m4fw --public-key dev.pub
# Captured first: under pipefail `producer | grep -q` fails whenever grep exits before the producer.
shown=$("$m4fw" inspect signed.m4fw --public-key dev.pub 2>/dev/null)
grep -q "signature: signed, verified" <<<"$shown" \
  && { pass=$((pass + 1)); echo "PASS signature state shown"; } || { fail=$((fail + 1)); echo "FAIL signature state"; }

size=$(stat -c %s fw.m4fw)
head -c $((size - 50)) fw.m4fw >truncated.m4fw
expect_fail "truncated file" "truncated.m4fw" "truncated" -- "$m4fw" inspect truncated.m4fw
{ printf 'XXXX'; tail -c +5 fw.m4fw; } >magic.m4fw
expect_fail "wrong magic" "magic.m4fw" "bad magic" -- "$m4fw" inspect magic.m4fw
{ head -c 4 fw.m4fw; printf '\x02\x00\x00\x00'; tail -c +9 fw.m4fw; } >version.m4fw
expect_fail "unknown version" "version.m4fw" "unknown format version 2" -- "$m4fw" inspect version.m4fw
cp fw.m4fw corrupt.m4fw
printf '\x55' | dd of=corrupt.m4fw bs=1 seek=$((size - 2000)) conv=notrunc status=none
expect_fail "digest mismatch" "corrupt.m4fw" "digest mismatch" -- "$m4fw" inspect corrupt.m4fw
expect_fail "bad signature" "signed.m4fw" "bad signature" -- "$m4fw" inspect signed.m4fw --public-key evil.pub
expect_fail "unsigned with key" "fw.m4fw" "unsigned" -- "$m4fw" inspect fw.m4fw --public-key dev.pub
expect_fail "missing file" "nope.m4fw" "cannot open" -- "$m4fw" inspect nope.m4fw

# Tensor shape that does not match the config: same tensors, a header claiming a wider FFN.
/usr/bin/python3 - "$root" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/oracle")
import m4file, m4writer  # the oracle's independent reader and writer
f = m4file.M4File.load("fw.m4fw")
f.header["backbone"]["ffn"] = 96
tensors = [(name, dtype, f.tensors[name]) for name, dtype, *_ in f.entries]
open("shape.m4fw", "wb").write(m4writer.write_container(b"M4FW", f.header, tensors))
PY
expect_fail "shape mismatch" "shape.m4fw" "has shape" "requires" -- "$m4fw" inspect shape.m4fw

expect_ok "adapter" "$m4fw" adapter init --firmware fw.m4fw --out img.m4a --task classify --path encoder \
  --modality image --labels a,b,c
expect_ok "adapter other" "$m4fw" adapter init --firmware other.m4fw --out foreign.m4a --task classify \
  --path encoder --modality image --labels a,b
expect_ok "adapter with a hidden-layer head" "$m4fw" adapter init --firmware fw.m4fw --out mlp.m4a \
  --task classify --path encoder --modality image --labels a,b,c --head-hidden 8
shown=$("$m4fw" inspect mlp.m4a 2>/dev/null)
grep -qF "head: classify" <<<"$shown" && grep -qF "→ 8 (GELU) → 3" <<<"$shown" \
  && { pass=$((pass + 1)); echo "PASS hidden-layer head shown"; } || { fail=$((fail + 1)); echo "FAIL hidden-layer head: $shown"; }
expect_fail "head hidden width out of range" "--head-hidden" "[0, 4096]" -- "$m4fw" adapter init --firmware fw.m4fw \
  --out wide.m4a --task classify --path encoder --modality image --labels a,b --head-hidden 5000
expect_fail "adapter of another firmware" "foreign.m4a" "retrain" -- "$m4fw" run --firmware fw.m4fw \
  --adapter foreign.m4a x.png
printf 'not an image' >bad.png
expect_fail "unreadable image" "bad.png" "unreadable image" -- "$m4fw" run --firmware fw.m4fw --adapter img.m4a bad.png
/usr/bin/python3 - <<'PY'
import struct, wave
for name, rate, n in (("rate8k.wav", 8000, 800), ("long.wav", 16000, 8000)):
    with wave.open(name, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate); w.writeframes(struct.pack("<%dh" % n, *([100] * n)))
open("short.csv", "w").write("1,2,3,4,5,6\n" * 50)
PY
expect_fail "wrong sample rate" "rate8k.wav" "8000 Hz" -- "$m4fw" run --firmware fw.m4fw rate8k.wav
expect_fail "audio too long" "long.wav" "longer than the encoder's clip" -- "$m4fw" run --firmware fw.m4fw long.wav
expect_fail "imu too long" "short.csv" "exceeds the window" -- "$m4fw" run --firmware fw.m4fw short.csv
expect_fail "empty text" "text input is empty" -- "$m4fw" run --firmware fw.m4fw "   "
# Generation options and constrained output (issue 21): each bad value named before anything runs.
expect_fail "temperature out of range" "temperature -1" "[0, 100]" -- "$m4fw" run --firmware fw.m4fw --temperature -1 "hello"
expect_fail "top-p out of range" "top_p 1.5" -- "$m4fw" run --firmware fw.m4fw --top-p 1.5 "hello"
expect_fail "top-k beyond the vocabulary" "top_k 100000" -- "$m4fw" run --firmware fw.m4fw --top-k 100000 "hello"
expect_fail "max-new-tokens beyond the context" "max_new_tokens 100000" -- "$m4fw" run --firmware fw.m4fw --max-new-tokens 100000 "hello"
expect_fail "stop string too long" "stop string 0 has 65 bytes" -- "$m4fw" run --firmware fw.m4fw \
  --stop "$(printf 'x%.0s' $(seq 1 65))" "hello"
expect_fail "malformed schema" "json_schema" "not valid JSON" -- "$m4fw" run --firmware fw.m4fw --json-schema '{"type":' "hello"
expect_fail "unsupported schema keyword" "keyword \"pattern\"" -- "$m4fw" run --firmware fw.m4fw \
  --json-schema '{"type":"string","pattern":"x"}' "hello"
expect_fail "choice the vocabulary cannot spell" "cannot be spelled" -- "$m4fw" run --firmware fw.m4fw --choice "€€€" "hello"
expect_fail "constraint without generation" "need generation" -- "$m4fw" run --firmware fw.m4fw --path encoder \
  --modality text --choice yes "hello"
# Repeated --choice / --stop take one value each: the input after them stays an input.
if "$m4fw" run --firmware fw.m4fw --choice yes --choice no "is it?" --json > choice.json 2>&1 &&
   python3 -c 'import json,sys; r=json.load(open("choice.json"))[0]; sys.exit(0 if r["input"]=="is it?" and r["text"] in ("yes","no") else 1)'; then
  pass=$((pass + 1)); echo "PASS --choice constrains the output"
else
  fail=$((fail + 1)); echo "FAIL --choice constrains the output:"; cat choice.json
fi
if "$m4fw" run --firmware fw.m4fw --path encoder --modality text --json "a photo of a cat" > emb.json 2>&1 &&
   python3 -c 'import json,sys; v=json.load(open("emb.json"))[0]["embedding"]; sys.exit(0 if abs(sum(x*x for x in v)-1)<1e-3 else 1)'; then
  pass=$((pass + 1)); echo "PASS text embedding on the encoder path"
else
  fail=$((fail + 1)); echo "FAIL text embedding on the encoder path:"; cat emb.json
fi
cfg_noaudio="$work/noaudio.json"
/usr/bin/python3 -c "import json,sys; c=json.load(open('$cfg')); del c['encoders']['audio']; json.dump(c, open('$cfg_noaudio','w'))"
expect_ok "init without audio" "$m4fw" init --config "$cfg_noaudio" --out noaudio.m4fw --seed 3
expect_fail "path/modality the firmware lacks" "no audio encoder" -- "$m4fw" run --firmware noaudio.m4fw \
  --modality audio "$work/long.wav"

# Quantization: int8 firmware is smaller, loads, and its outputs stay close (the check prints them).
out=$("$m4fw" quantize fw.m4fw q8.m4fw --dtype i8 --check 2 2>/dev/null)
q8_shown=$("$m4fw" inspect q8.m4fw 2>/dev/null)
if grep -q "(i8)" <<<"$out" && grep -q "\[i8:" <<<"$q8_shown" &&
   [ "$(stat -c %s q8.m4fw)" -lt "$(stat -c %s fw.m4fw)" ]; then
  pass=$((pass + 1)); echo "PASS quantize i8"
else
  fail=$((fail + 1)); echo "FAIL quantize i8: $out"
fi
expect_fail "quantize bad dtype" "--dtype" -- "$m4fw" quantize fw.m4fw x.m4fw --dtype fp4

# m4fwd without --firmware installs the same default firmware as m4fw ($M4_FIRMWARE here); it
# used to refuse to start.
M4_FIRMWARE="$work/fw.m4fw" start_daemon   # no --firmware; the last status lands in svc/status.log
stop_daemon
fp=$("$m4fw" inspect fw.m4fw 2>/dev/null | awk '/^fingerprint:/ {print $2}')
if [ -n "$fp" ] && grep -q "$fp" svc/status.log; then
  pass=$((pass + 1)); echo "PASS m4fwd defaults to m4fw's firmware"
else
  fail=$((fail + 1)); echo "FAIL m4fwd defaults to m4fw's firmware:"; cat svc/status.log svc/daemon.log
fi

finish "cli errors"
