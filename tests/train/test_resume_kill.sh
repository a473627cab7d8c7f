#!/usr/bin/env bash
# kill -9 during training, then --resume: the loss curve and the exported adapter must equal those of
# an uninterrupted run with the same seed.
#   test_resume_kill.sh M4FW CONFIG.json WORKDIR
set -euo pipefail
m4fw=$(realpath "$1") config=$(realpath "$2") work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
"$m4fw" init --config "$config" --out fw.m4fw --seed 3 >/dev/null 2>&1
run=(train adapter --firmware fw.m4fw --task image-caption --targets all --steps 200 --batch 8 --seed 5
     --checkpoint-every 5 --progress lines --log-every 1)

# 1. uninterrupted
"$m4fw" "${run[@]}" --checkpoint a.ckpt --loss-log a.txt --out a.m4a >a.log 2>&1

# 2. killed with SIGKILL once it has passed update 23 (its last checkpoint holds update 20 or later)
"$m4fw" "${run[@]}" --checkpoint b.ckpt --loss-log b.txt --out b.m4a >b.log 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  last=$(grep -o '^step [0-9]*' b.log | tail -1 | cut -d' ' -f2 || true)
  [ -n "$last" ] && [ "$last" -ge 23 ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.02
done
if ! kill -9 "$pid" 2>/dev/null; then
  echo "FAIL: the run finished before it could be killed (make it longer)"; exit 1
fi
wait "$pid" 2>/dev/null || true
killed_at=$(grep -o '^step [0-9]*' b.log | tail -1 | cut -d' ' -f2)
[ ! -e b.txt ] || { echo "FAIL: the killed run wrote its loss log"; exit 1; }
[ -e b.ckpt ] || { echo "FAIL: no checkpoint before the kill"; exit 1; }

# 3. resumed
"$m4fw" "${run[@]}" --checkpoint b.ckpt --loss-log b.txt --out b.m4a --resume >b2.log 2>&1
resumed_at=$(sed -n 's/^resuming b.ckpt at step \([0-9]*\).*/\1/p' b2.log)
[ -n "$resumed_at" ] || { echo "FAIL: the second run did not resume"; cat b2.log; exit 1; }

/usr/bin/python3 - a.txt b.txt <<'PY'
import sys
a = [float(x) for x in open(sys.argv[1])]
b = [float(x) for x in open(sys.argv[2])]
assert len(a) == len(b) == 200, (len(a), len(b))
worst = max(abs(x - y) / max(abs(x), 1e-12) for x, y in zip(a, b))
print("loss curves: %d updates, max relative difference %.3g" % (len(a), worst))
assert worst <= 1e-6, "resumed curve differs"
PY
cmp a.m4a b.m4a || { echo "FAIL: the exported adapters differ"; exit 1; }
echo "ok: killed after update $killed_at, resumed at update $resumed_at; same loss curve and byte-identical adapter"
