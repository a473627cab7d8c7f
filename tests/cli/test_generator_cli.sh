#!/usr/bin/env bash
# Path 4 (`generator`, the image decoder alone) through the m4fw command line: a run that writes a
# PNG, the adapter's output kind, `m4fw inspect` listing the path's operators, and each fault a
# clear error (an image-output adapter on text, a firmware without the decoder, a bad --out).
# Usage: test_generator_cli.sh M4FW_BINARY WORKDIR
source "$(dirname "$0")/harness.sh" "$@"

cfg="$root/tests/oracle/oracle_config.json"   # has "decoders": {"image": 16×16, patch 4}
/usr/bin/python3 - "$cfg" <<'PY'
import json, sys
import numpy as np
c = json.load(open(sys.argv[1]))
del c["decoders"]
json.dump(c, open("nodec.json", "w"))
rng = np.random.default_rng(3)
np.save("small.npy", rng.uniform(-1, 1, (8, 8, 3)).astype(np.float32))     # ×2 onto the 16×16 grid
np.save("huge.npy", rng.uniform(-1, 1, (20, 20, 3)).astype(np.float32))    # larger than the grid
PY
write_png small.png 8 6   # enlarged onto the 16×16 grid
write_png huge.png 20 17  # larger than the grid
"$m4fw" init --config "$cfg" --out fw.m4fw --seed 3 >/dev/null 2>&1 && ok "init with a decoder" || bad "init with a decoder"
"$m4fw" init --config nodec.json --out nodec.m4fw --seed 3 >/dev/null 2>&1 && ok "init without" || bad "init without"

shown=$("$m4fw" inspect fw.m4fw 2>&1)
grep -q "^decoder image: 16x16 output, patch 4" <<<"$shown" && ok "inspect shows the decoder" || bad "inspect decoder: $shown"
line=$(grep -E "^  generator +image" <<<"$shown")
for op in matmul add layernorm attention gelu; do
  grep -qw "$op" <<<"$line" || { bad "generator ops lack $op: $line"; continue; }
done
[ -n "$line" ] && ok "inspect lists the generator path's operators: ${line# }" || bad "no generator line"
"$m4fw" inspect nodec.m4fw 2>&1 | grep -q generator && bad "nodec lists a generator path" || ok "no decoder, no path 4"

"$m4fw" adapter init --firmware fw.m4fw --out sr.m4a --task generate --path generator --modality image \
  --rank 2 --alpha 4 --targets all --seed 5 >/dev/null 2>&1 && ok "adapter init (generator)" || bad "adapter init"
"$m4fw" inspect sr.m4a 2>&1 | grep -q "path: generator  modality: image  output: image" \
  && ok "adapter output kind" || bad "adapter output kind: $("$m4fw" inspect sr.m4a 2>&1)"

if "$m4fw" run --firmware fw.m4fw --adapter sr.m4a small.npy --out big.png >run.out 2>&1; then
  /usr/bin/python3 -c "
import struct, sys
b = open('big.png', 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
w, h = struct.unpack('>II', b[16:24])
assert (w, h) == (16, 16), (w, h)
" && ok "run --adapter sr.m4a small.npy --out big.png (16x16 PNG)" || bad "big.png is not a 16x16 PNG"
else
  bad "run generator: $(cat run.out)"
fi
# The PNG it wrote is itself a valid input (≤ the grid), without an adapter too.
"$m4fw" run --firmware fw.m4fw --path generator big.png --out again.png >/dev/null 2>&1 && test -s again.png \
  && ok "run --path generator big.png (no adapter)" || bad "run --path generator without adapter"

expect_fail "image adapter on text" "hello world" "takes an image" "not text" -- \
  "$m4fw" run --firmware fw.m4fw --adapter sr.m4a "hello world" --out x.png
expect_fail "no --out" "--out" ".png" -- "$m4fw" run --firmware fw.m4fw --adapter sr.m4a small.npy
expect_fail "--out in a missing directory" "no/such/dir/x.png" "does not exist" -- \
  "$m4fw" run --firmware fw.m4fw --adapter sr.m4a small.npy --out no/such/dir/x.png
expect_fail "--out of the wrong kind" "x.wav" ".png" -- \
  "$m4fw" run --firmware fw.m4fw --adapter sr.m4a small.npy --out x.wav
expect_fail "input larger than the decoder's grid" "huge.npy" "at most 16x16" -- \
  "$m4fw" run --firmware fw.m4fw --adapter sr.m4a huge.npy --out x.png
expect_fail "firmware without the decoder" "no image decoder" -- \
  "$m4fw" run --firmware nodec.m4fw --path generator small.npy --out x.png
expect_fail "generator adapter for a firmware without the decoder" "decoders." -- \
  "$m4fw" adapter init --firmware nodec.m4fw --out y.m4a --task generate --path generator --modality image \
  --rank 2 --targets all
expect_fail "--out on a text path" "--out" "printed" -- "$m4fw" run --firmware fw.m4fw "hello" --out x.png
test ! -e x.png && ok "nothing written on failure" || bad "x.png written by a failed run"

# The same path served by m4fwd: `m4fw infer --out` writes the PNG the daemon returns — byte for
# byte the file the in-process `m4fw run` writes — and the daemon's faults are coded errors.
start_daemon --firmware fw.m4fw
"$m4fw" run --firmware fw.m4fw --path generator small.png --out run.png > /dev/null 2>&1 || bad "run small.png"
if "$m4fw" infer "${sock[@]}" --path generator small.png --out served.png > infer.out 2>&1; then
  cmp -s run.png served.png && grep -q "16x16 image" infer.out \
    && ok "infer --path generator --out: the served PNG is the in-process one, byte for byte" \
    || bad "served.png differs from run.png: $(cat infer.out)"
else
  bad "infer --path generator: $(cat infer.out) $(cat svc/daemon.log)"
fi
"$m4fw" adapter register "${sock[@]}" sr sr.m4a > /dev/null 2>&1 && ok "register sr.m4a" || bad "register sr.m4a"
"$m4fw" run --firmware fw.m4fw --adapter sr.m4a small.png --out run_sr.png > /dev/null 2>&1 || bad "run sr"
if "$m4fw" infer "${sock[@]}" --adapter sr small.png --out served_sr.png > infer.out 2>&1; then
  cmp -s run_sr.png served_sr.png && ! cmp -s run.png run_sr.png \
    && ok "infer --adapter sr --out: equal to the in-process run (and the adapter changes the image)" \
    || bad "served_sr.png differs from run_sr.png"
else
  bad "infer --adapter sr: $(cat infer.out)"
fi
"$m4fw" adapter list "${sock[@]}" 2>&1 | grep -q "generator" && ok "adapter list shows the generator adapter" \
  || bad "adapter list"
expect_fail "infer: image adapter on text" "INVALID_ARGUMENT" "takes image input, not text" -- \
  "$m4fw" infer "${sock[@]}" --adapter sr "hello world"
expect_fail "infer: image adapter on a text path" "INCOMPATIBLE" "cannot serve a request on the backbone path" -- \
  "$m4fw" infer "${sock[@]}" --adapter sr --path backbone small.png
expect_fail "infer: input larger than the grid" "INVALID_ARGUMENT" "does not fit the image decoder" -- \
  "$m4fw" infer "${sock[@]}" --path generator huge.png --out y.png
expect_fail "infer: --out of the wrong kind" "y.wav" ".png" -- \
  "$m4fw" infer "${sock[@]}" --path generator small.png --out y.wav
expect_fail "infer: --out on a text reply" "--out" "no image" -- \
  "$m4fw" infer "${sock[@]}" --max-new-tokens 2 "hello" --out y.png
test ! -e y.png && ok "infer wrote nothing on failure" || bad "y.png written by a failed infer"
"$m4fw" infer "${sock[@]}" --path generator small.png --out served2.png > /dev/null 2>&1 && cmp -s run.png served2.png \
  && ok "the daemon keeps serving after the faults" || bad "not served after the faults: $(cat svc/daemon.log)"
stop_daemon

finish "generator cli"
