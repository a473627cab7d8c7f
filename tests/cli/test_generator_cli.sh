#!/usr/bin/env bash
# Path 4 (`generator`, the image decoder alone) through the m4fw command line: a run that writes a
# PNG, the adapter's output kind, `m4fw inspect` listing the path's operators, and each fault a
# clear error (an image-output adapter on text, a firmware without the decoder, a bad --out).
# Usage: test_generator_cli.sh M4FW_BINARY WORKDIR
set -uo pipefail
m4fw="$1"
work="$2"
root="$(cd "$(dirname "$0")/../.." && pwd)"
rm -rf "$work" && mkdir -p "$work" && cd "$work"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# expect_fail NAME NEEDLE... -- COMMAND...: the command must exit 1..127 and print every needle.
expect_fail() {
  local name="$1"; shift
  local needles=()
  while [ "$1" != "--" ]; do needles+=("$1"); shift; done
  shift
  local out rc
  out="$("$@" 2>&1)"
  rc=$?
  local good=1
  if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then good=0; fi
  for n in "${needles[@]}"; do grep -qF -- "$n" <<<"$out" || good=0; done
  if [ "$good" -eq 1 ]; then ok "$name (exit $rc)"; else bad "$name (exit $rc): $out"; fi
}

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

echo "generator cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
