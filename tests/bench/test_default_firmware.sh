#!/usr/bin/env bash
# The committed default firmware (firmware/m4-small.m4fw) with its committed adapters (adapters/):
# it loads, its signature verifies with the committed development key, `m4fw inspect` lists all four
# paths, the main job (`m4fw demo`) answers its labelled inputs (checked against their truth labels),
# the adapters score at least what they scored when committed (less the sampling error) on a few
# tasks — test splits built here at a small scale, scored through `m4fw eval` (the inference path) —
# and the generator and decoder paths run from the command line and through m4fwd, which picks this
# firmware by default, with the served outputs byte for byte the in-process ones.
#   test_default_firmware.sh M4FW REPO_ROOT WORKDIR
set -uo pipefail
m4fw=$(realpath "$1") repo=$(realpath "$2") work=$3
m4fwd="$(cd "$(dirname "$m4fw")/../m4fwd" && pwd)/m4fwd"
rm -rf "$work" && mkdir -p "$work"
fw=$repo/firmware/m4-small.m4fw
ad=$repo/adapters
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
[ -f "$fw" ] || { echo "FAIL: $fw is missing"; exit 1; }

"$m4fw" inspect "$fw" --public-key "$repo/firmware/dev.pub" > "$work/inspect.log" 2>&1
grep -q "signature: signed, verified" "$work/inspect.log" && ok "signature verifies" || bad "signature: $(cat "$work/inspect.log")"
for p in "encoder  image" "encoder  audio" "encoder  imu" "backbone text" "full     image" "full     text" \
  "generator image" "generator audio"; do
  grep -q "^  $p " "$work/inspect.log" && ok "inspect lists path $p" || bad "inspect lacks path '$p'"
done

# The main job. The answers are checked against their truth labels, not only counted: the demo is
# deterministic; these four labelled items the committed adapters answer right (the real recorded
# digit, the next word and the caption they do not, which the demo shows as it is; since the
# encoder plans were re-tuned on 2026-12-03 the Fashion-MNIST adapter takes the shirt for a
# pullover, 46 %, though it scores higher on the test split, 0.735 → 0.753).
"$m4fw" demo --firmware "$fw" --public-key "$repo/firmware/dev.pub" --spec "$repo/examples/demo/demo.json" \
  --out-dir "$work/demo-out" > "$work/demo.log" 2>&1 || bad "the demo failed: $(tail -3 "$work/demo.log")"
for truth in right running de no; do
  grep -q "^  answer $truth ([0-9]* %)   (truth: $truth) right\$" "$work/demo.log" && ok "demo: '$truth' right" ||
    bad "the demo's answer for the item labelled '$truth' is not '$truth'"
done
right=$(grep -c ') right$' "$work/demo.log")
wrong=$(grep -c ') WRONG$' "$work/demo.log")
grep -q "^answered correctly: $right of $((right + wrong)) items with a truth label\$" "$work/demo.log" &&
  ok "the demo's count matches its $right right and $wrong wrong items" || bad "the demo's count line"
[ "$right" -ge 4 ] && ok "the demo answered $right of $((right + wrong)) right" ||
  bad "the demo answered $right items right (committed: 4)"

grep -q "^generated 3 outputs in " "$work/demo.log" && [ -s "$work/demo-out/spoken-word.wav" ] &&
  [ -s "$work/demo-out/drawn-scene.png" ] && [ -s "$work/demo-out/enlarged-photo.png" ] &&
  ok "the demo wrote its three generated outputs" || bad "the demo's generated outputs: $(grep -A3 "^generated" "$work/demo.log")"

# task  minimum score: what the committed adapter scores on this small test split (scale 0.05)
# less three standard errors of a proportion on that many examples, rounded down (2026-12-03, m4-small,
# adapters of the re-tuned plans: fashion_mnist 0.766 of 500 (rank 16), imu.har 0.690 of 100,
# txt.lang_id 0.825 of 120, aud.kws 0.917 of 60).
checks="img.fashion_mnist 0.70
imu.har 0.55
txt.lang_id 0.72
aud.kws 0.81"
tasks="$(cut -d' ' -f1 <<<"$checks" | tr '\n' ' ') img.super_resolution img.draw_scene"
"$m4fw" data build $tasks --dir "$work/data" --scale 0.05 -q || bad "data build"
while read -r task margin; do
  "$m4fw" eval --firmware "$fw" --adapter "$ad/$task.m4a" --task "$task" --data "$work/data" \
    --json > "$work/$task.json" 2> "$work/$task.err"
  if /usr/bin/python3 - "$work/$task.json" "$margin" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); least = float(sys.argv[2])
ok = r["score"] >= least and r["score"] > r["chance"]
print("%-20s %s %.3f  chance %.3f  at least %.2f  %s" % (r["task"], r["metric"], r["score"], r["chance"], least,
                                                          "ok" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
  then ok "$task at least $margin"; else bad "$task below $margin: $(cat "$work/$task.err")"; fi
done <<<"$checks"

# The decoder paths from the command line: path 4 (super-resolution, speech) and the full path into
# the image decoder, each with its committed adapter.
cd "$work" || exit 1
# The first test examples: an image box-averaged ×2 (16×16, as img.super_resolution makes its
# inputs), a scene description (the example's prompt; its target is the rendered scene).
"$m4fw" data export img.super_resolution --split test --index 0 --reduce 2 --dir data --out photo.png > /dev/null &&
  "$m4fw" data export img.draw_scene --split test --index 0 --dir data --out scene-truth.png > scene.json &&
  /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['prompt'])" scene.json > scene.txt ||
  bad "export the decoder tasks' first test examples"
png_size() { /usr/bin/python3 -c "import struct,sys; b=open(sys.argv[1],'rb').read(); assert b[:8]==b'\x89PNG\r\n\x1a\n'; print('%dx%d' % struct.unpack('>II', b[16:24]))" "$1"; }
in_size=$(png_size photo.png)
run_out() {  # NAME OUT -- ARGS…: m4fw run writing OUT
  local name="$1" out="$2"; shift 3
  if "$m4fw" run --firmware "$fw" "$@" --out "$out" > "$name.out" 2>&1 && [ -s "$out" ]; then ok "run $name → $out"
  else bad "run $name: $(cat "$name.out")"; fi
}
run_out sr big.png -- --path generator --adapter "$ad/img.super_resolution.m4a" photo.png
[ "$in_size $(png_size big.png)" = "16x16 32x32" ] && ok "enlarged 16x16 → 32x32" ||
  bad "super-resolution: $in_size → $(png_size big.png)"
run_out draw drawn.png -- --path full --adapter "$ad/img.draw_scene.m4a" "$(cat scene.txt)"
[ "$(png_size drawn.png)" = "32x32" ] && ok "the drawn scene is 32x32" || bad "drawn scene size $(png_size drawn.png)"
run_out speak seven.wav -- --path generator --adapter "$ad/aud.tts.m4a" "seven"
# What the firmware's own digit recogniser hears in its synthesised "seven".
"$m4fw" run --firmware "$fw" --adapter "$ad/aud.digits.m4a" --json seven.wav > heard.json 2>&1 &&
  echo "aud.digits hears: $(/usr/bin/python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1])))[:160])" heard.json)" ||
  bad "aud.digits on the synthesised word: $(cat heard.json)"

# The same through m4fwd started without --firmware: it installs the default firmware.
mkdir -p svc && chmod 700 svc && echo '{}' > svc/config.json
env -u M4_FIRMWARE "$m4fwd" --socket "$work/svc/s.sock" --state-dir "$work/svc/state" --config svc/config.json \
  > svc/daemon.log 2>&1 < /dev/null &
dpid=$!
trap 'kill $dpid 2>/dev/null' EXIT
for _ in $(seq 1 300); do "$m4fw" status --socket "$work/svc/s.sock" > /dev/null 2>&1 && break; sleep 0.1; done
sock=(--socket "$work/svc/s.sock")
"$m4fw" status "${sock[@]}" 2>&1 | grep -q "m4-small" && ok "m4fwd serves m4-small by default" ||
  bad "m4fwd default firmware: $("$m4fw" status "${sock[@]}" 2>&1 | head -5)"
# The encoder and backbone paths served too: the demo's shirt photo and German words.
"$m4fw" adapter register "${sock[@]}" fashion "$ad/img.fashion_mnist.m4a" > /dev/null 2>&1 &&
  "$m4fw" adapter register "${sock[@]}" lang "$ad/txt.lang_id.m4a" > /dev/null 2>&1 || bad "register fashion / lang"
# The shirt photo: served, the same top answer as in process (the demo's, above).
"$m4fw" run --firmware "$fw" --adapter "$ad/img.fashion_mnist.m4a" "$repo/examples/demo/shirt.png" > shirt.run 2>&1
mine="$(sed -n 2p shirt.run | awk '{print $1}')"
"$m4fw" infer "${sock[@]}" --adapter fashion "$repo/examples/demo/shirt.png" > shirt.infer 2>&1 && [ -n "$mine" ] &&
  [ "$(sed -n 2p shirt.infer | awk '{print $1}')" = "$mine" ] && ok "served encoder path: the shirt photo ($mine, as in process)" ||
  bad "served shirt: $(cat shirt.infer) / in process: $(cat shirt.run)"
"$m4fw" infer "${sock[@]}" --adapter lang "fairen abschneidbares auszufilterndes" > lang.infer 2>&1 &&
  [ "$(sed -n 2p lang.infer | awk '{print $1}')" = de ] && ok "served backbone path: German" || bad "served German: $(cat lang.infer)"
for t in img.super_resolution img.draw_scene aud.tts; do
  "$m4fw" adapter register "${sock[@]}" "$t" "$ad/$t.m4a" > /dev/null 2>&1 && ok "register $t" || bad "register $t"
done
serve() {  # NAME IN-PROCESS-FILE SERVED-FILE -- INFER ARGS…
  local name="$1" mine="$2" served="$3"; shift 4
  if "$m4fw" infer "${sock[@]}" "$@" --out "$served" > "$name.infer" 2>&1 && cmp -s "$mine" "$served"; then
    ok "served $name = in-process, byte for byte"
  else bad "served $name: $(cat "$name.infer")"; fi
}
serve sr big.png served-big.png -- --adapter img.super_resolution photo.png
serve draw drawn.png served-drawn.png -- --adapter img.draw_scene --path full "$(cat scene.txt)"
serve speak seven.wav served-seven.wav -- --adapter aud.tts "seven"

echo "passed $pass, failed $fail"
[ "$fail" -eq 0 ]
