#!/usr/bin/env bash
# `m4fw pretrain` through the command line: the committed recipe with a tiny architecture on a 1 %
# pretraining corpus, killed with SIGKILL mid-run and started again with the same command, ends
# with the same tensor bytes as an uninterrupted run; missing data names the build command.
# Exit 77 (CTest SKIP) when the benchmark sources are not installed.
set -euo pipefail
m4fw="$1"
recipe="$2"
work="$3"
rm -rf "$work"
mkdir -p "$work"
cd "$work"
"$m4fw" data list > sources.log
if grep -E "^pretrain " sources.log | grep -q MISSING; then
  echo "SKIP: benchmark sources missing (scripts/install-deps.sh installs them)"
  exit 77
fi

# Missing data: exit 4 (not found), the manifest and the command to run are named.
set +e
"$m4fw" pretrain --recipe "$recipe" --out x.m4fw --data nodata 2> missing.log
rc=$?
set -e
test "$rc" -eq 4 || { echo "expected exit 4, got $rc"; cat missing.log; exit 1; }
grep -q "nodata/pretrain/manifest.json" missing.log && grep -q "m4fw data build pretrain" missing.log ||
  { cat missing.log; exit 1; }

"$m4fw" data build pretrain --scale 0.01 --dir data 2> build.log
set_json='{"architecture":{"embed_dim":16,"backbone":{"width":32,"layers":1,"heads":2,"kv_heads":1,"ffn":64,"max_seq":64},
 "encoders":{"image":{"width":16,"layers":1,"heads":2,"ffn":32,"patch_size":8},"audio":{"width":16,"layers":1,"heads":2,"ffn":32},
 "imu":{"width":16,"layers":1,"heads":2,"ffn":32}}},"tokenizer":{"vocab_size":300},"data":{"eval_size":8,"val_share":0.2},
 "training":{"batch":4,"warmup":1,"checkpoint_every":5,"log_every":1}}'
args=(pretrain --recipe "$recipe" --data data --steps 60 --set "$set_json" --progress lines)

"$m4fw" "${args[@]}" --out a.m4fw --work wa > a.log 2>&1
"$m4fw" "${args[@]}" --out b.m4fw --work wb > b1.log 2>&1 &
pid=$!  # m4fw itself (not a subshell), so SIGKILL hits the trainer
for _ in $(seq 1 600); do
  grep -q "^step 23/" b1.log 2>/dev/null && break
  sleep 0.05
done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
test ! -e b.m4fw || { echo "the killed run wrote a firmware"; exit 1; }
"$m4fw" "${args[@]}" --out b.m4fw --work wb > b2.log 2>&1
grep -q "resuming wb/pretrain.ckpt at step" b2.log || { cat b2.log; exit 1; }
# Same tensor bytes (the headers differ in the measured seconds).
data_sha() {
  /usr/bin/python3 - "$1" <<'PY'
import hashlib, struct, sys
b = open(sys.argv[1], "rb").read()
_, _, off, n = struct.unpack_from("<QQQQ", b, 8)
print(hashlib.sha256(b[off:off + n]).hexdigest())
PY
}
test "$(data_sha a.m4fw)" = "$(data_sha b.m4fw)" || { echo "resumed run differs"; exit 1; }
"$m4fw" inspect b.m4fw > inspect.log
grep -q '"recipe_sha256"' inspect.log && grep -q '"manifest_sha256"' inspect.log || { cat inspect.log; exit 1; }
test "$(grep -c '^step' b1.log)" -lt 60 || { echo "the run ended before the kill"; exit 1; }
echo "pretrain: killed after $(grep -c '^step' b1.log) updates, $(grep -o 'resuming.*' b2.log), same tensors as the uninterrupted run"
