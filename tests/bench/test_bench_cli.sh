#!/usr/bin/env bash
# Benchmark adapters end to end on a small data subset with a random firmware: m4fw adapter train
# (a few steps, every setting from the task's plan) → m4fw eval prints the metric and chance, for a
# classification, a regression, a retrieval and a generation task; zero-shot and few-shot; and the
# error messages (unknown task, missing data, an adapter of another firmware or another task).
# Exit 77 (CTest SKIP) when the benchmark sources are not installed.
set -euo pipefail
m4fw="$1"
config="$2"
work="$3"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
tasks="img.shapes imu.cadence mm.retrieval txt.spell"
"$m4fw" data list > sources.log
if grep -E "^(img.shapes|imu.cadence|mm.retrieval|txt.spell) " sources.log | grep -q MISSING; then
  echo "SKIP: benchmark sources missing (scripts/install-deps.sh installs them)"
  exit 77
fi
"$m4fw" data build $tasks --dir d --scale 0.02 2> build.log
"$m4fw" init --config "$config" --out fw.m4fw --seed 3 > /dev/null 2>&1
"$m4fw" init --config "$config" --out other.m4fw --seed 4 > /dev/null 2>&1

# Output goes to a file first: with pipefail, `producer | grep -q` fails when grep exits early.
check() {  # check FILE PATTERN
  grep -q -- "$2" "$1" || { echo "expected '$2' in $1:"; cat "$1"; exit 1; }
}

# Classification: default output path trained/<task>.m4a (never the committed adapters/), validation
# metrics in the manifest.
"$m4fw" adapter train --firmware fw.m4fw --task img.shapes --data d --steps 3 --progress off > train.log 2>&1
check train.log "validation accuracy"
test -s trained/img.shapes.m4a
test ! -e adapters/img.shapes.m4a || { echo "adapter train wrote adapters/ without --out"; exit 1; }
"$m4fw" inspect trained/img.shapes.m4a > inspect.log
check inspect.log '"validation"'
check inspect.log "circle"
"$m4fw" eval --firmware fw.m4fw --adapter trained/img.shapes.m4a --task img.shapes --data d > eval.log
check eval.log "img.shapes \[test\] trained/img.shapes.m4a: accuracy [0-9.]* (chance [0-9.]*"
"$m4fw" eval --firmware fw.m4fw --adapter trained/img.shapes.m4a --task img.shapes --data d --limit 5 --json > eval.json
/usr/bin/python3 -c "import json,sys; j=json.load(open('eval.json')); assert j['examples']==5 and 0<=j['score']<=1 and j['metric']=='accuracy', j"
# The adapter's size next to its score: f32 parameters take 4 bytes each in the file, the manifest
# and the container's directory a few KB more.
check eval.log "adapter: [0-9.]* KB file, [0-9]* parameters"
/usr/bin/python3 -c "
import json, os
j = json.load(open('eval.json')); size = os.path.getsize('trained/img.shapes.m4a')
assert j['adapter_bytes'] == size and 0 < 4 * j['adapter_params'] <= size < 4 * j['adapter_params'] + 65536, (j, size)"
"$m4fw" eval --firmware fw.m4fw --zero-shot --task img.shapes --data d > zs.log
check zs.log "zero-shot: accuracy"
# Few-shot: K examples per class.
"$m4fw" adapter train --firmware fw.m4fw --task img.shapes --data d --shots 1 --steps 2 --out fs.m4a --progress off > fs.log 2>&1
check fs.log "1-shot"
# Regression (mae, lower is better), retrieval (recall@5), generation (exact_match + examples).
"$m4fw" adapter train --firmware fw.m4fw --task imu.cadence --data d --steps 3 --out cad.m4a --progress off > /dev/null 2>&1
"$m4fw" eval --firmware fw.m4fw --adapter cad.m4a --task imu.cadence --data d > cad.log
check cad.log "mae [0-9.]* (chance [0-9.]*: always the train median"
"$m4fw" adapter train --firmware fw.m4fw --task mm.retrieval --data d --steps 3 --out ret.m4a --progress off > /dev/null 2>&1
"$m4fw" eval --firmware fw.m4fw --adapter ret.m4a --task mm.retrieval --data d > ret.log
check ret.log "image→text recall@5"
"$m4fw" adapter train --firmware fw.m4fw --task txt.spell --data d --steps 2 --out spell.m4a --progress off > /dev/null 2>&1
"$m4fw" eval --firmware fw.m4fw --adapter spell.m4a --task txt.spell --data d --limit 8 > spell.log
check spell.log "exact_match"
check spell.log "reference"

# Errors: exit status and a message naming the task / file.
expect_fail() {  # expect_fail CODE PATTERN -- command…
  local code="$1" pattern="$2"
  shift 3
  set +e
  "$@" > err.log 2>&1
  local rc=$?
  set -e
  test "$rc" -eq "$code" || { echo "expected exit $code, got $rc: $*"; cat err.log; exit 1; }
  check err.log "$pattern"
}
expect_fail 4 "unknown task 'img.nope'" -- "$m4fw" adapter train --firmware fw.m4fw --task img.nope --data d
expect_fail 4 "unknown task 'img.nope'" -- "$m4fw" eval --firmware fw.m4fw --zero-shot --task img.nope --data d
expect_fail 4 "nodata/img.shapes/manifest.json: task 'img.shapes' is not built" -- \
  "$m4fw" adapter train --firmware fw.m4fw --task img.shapes --data nodata
expect_fail 5 "trained/img.shapes.m4a: trained for firmware" -- \
  "$m4fw" eval --firmware other.m4fw --adapter trained/img.shapes.m4a --task img.shapes --data d
expect_fail 5 "cad.m4a: the adapter reads imu inputs, task 'img.shapes' has image inputs" -- \
  "$m4fw" eval --firmware fw.m4fw --adapter cad.m4a --task img.shapes --data d
expect_fail 3 "needs a classification task" -- \
  "$m4fw" adapter train --firmware fw.m4fw --task imu.cadence --data d --shots 1
expect_fail 3 "either --adapter A or --zero-shot" -- "$m4fw" eval --firmware fw.m4fw --task img.shapes --data d

# Quantization cost on an eval set: the task's adapter scored on fw.m4fw and on its int8 sibling,
# and zero-shot on its bf16 sibling.
"$m4fw" quantize fw.m4fw fw-i8.m4fw --dtype i8 --check 0 --eval-task img.shapes --data d \
  --adapter trained/img.shapes.m4a > qcost.log
check qcost.log "img.shapes \[test\] trained/img.shapes.m4a: accuracy fw.m4fw [0-9.]* → fw-i8.m4fw [0-9.]* (change [-+][0-9.]*"
"$m4fw" quantize fw.m4fw fw-bf16.m4fw --dtype bf16 --check 0 --eval-task img.shapes --data d > qzs.log
check qzs.log "img.shapes \[test\] zero-shot: accuracy fw.m4fw [0-9.]* → fw-bf16.m4fw [0-9.]*"
# The parent's adapter binds to the quantized sibling only when the parent reference is vouched
# for: verified against the parent (--parent), or signed by the trusted key (--public-key); never to
# the sibling of another firmware, nor to one whose header names a parent it was not made from.
expect_fail 5 "not vouched for" -- \
  "$m4fw" eval --firmware fw-i8.m4fw --adapter trained/img.shapes.m4a --task img.shapes --data d
"$m4fw" eval --firmware fw-i8.m4fw --adapter trained/img.shapes.m4a --task img.shapes --data d --parent fw.m4fw > qeval.log
check qeval.log "img.shapes \[test\] trained/img.shapes.m4a: accuracy"
"$m4fw" keygen --out qkey > /dev/null
"$m4fw" quantize fw.m4fw fw-i8s.m4fw --dtype i8 --check 0 --sign qkey.key > /dev/null
"$m4fw" eval --firmware fw-i8s.m4fw --public-key qkey.pub --adapter trained/img.shapes.m4a --task img.shapes --data d > qeval2.log
check qeval2.log "img.shapes \[test\] trained/img.shapes.m4a: accuracy"
expect_fail 5 "not vouched for" -- \
  "$m4fw" eval --firmware fw-i8s.m4fw --adapter trained/img.shapes.m4a --task img.shapes --data d
"$m4fw" quantize other.m4fw other-i8.m4fw --dtype i8 --check 0 > /dev/null
expect_fail 5 "trained/img.shapes.m4a: trained for firmware" -- \
  "$m4fw" eval --firmware other-i8.m4fw --adapter trained/img.shapes.m4a --task img.shapes --data d
expect_fail 5 "quantized from" -- \
  "$m4fw" eval --firmware other-i8.m4fw --adapter trained/img.shapes.m4a --task img.shapes --data d --parent fw.m4fw
expect_fail 3 "--adapter needs --eval-task" -- \
  "$m4fw" quantize fw.m4fw x.m4fw --dtype i8 --adapter trained/img.shapes.m4a
echo "bench_cli: ok"
