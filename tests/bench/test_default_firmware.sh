#!/usr/bin/env bash
# The committed default firmware (firmware/m4-tiny.m4fw): it loads, its signature verifies with the
# committed development key, the main job (`m4fw demo`) runs, and with its committed adapters it
# beats chance by a stated margin on a few tasks — scored on test splits built here at a small
# scale, through `m4fw eval` (the inference path).
#   test_default_firmware.sh M4FW REPO_ROOT WORKDIR
set -euo pipefail
m4fw=$(realpath "$1") repo=$(realpath "$2") work=$3
rm -rf "$work" && mkdir -p "$work"
fw=$repo/firmware/m4-tiny.m4fw
[ -f "$fw" ] || { echo "FAIL: $fw is missing"; exit 1; }

"$m4fw" inspect "$fw" --public-key "$repo/firmware/dev.pub" > "$work/inspect.log"
grep -q "signature: signed, verified" "$work/inspect.log" || { cat "$work/inspect.log"; echo "FAIL: signature"; exit 1; }

"$m4fw" demo --firmware "$fw" --public-key "$repo/firmware/dev.pub" --spec "$repo/examples/demo/demo.json" > "$work/demo.log"
items=$(grep -c '^  answer ' "$work/demo.log")
[ "$items" -ge 6 ] || { cat "$work/demo.log"; echo "FAIL: the demo answered $items items"; exit 1; }

# task  margin (absolute, above the chance the evaluator computes from the train split)
checks="img.fashion_mnist 0.40
imu.har 0.30
txt.lang_id 0.20
aud.kws 0.20"
tasks=$(cut -d' ' -f1 <<<"$checks" | tr '\n' ' ')
"$m4fw" data build $tasks --dir "$work/data" --scale 0.05 -q
fail=0
while read -r task margin; do
  "$m4fw" eval --firmware "$fw" --adapter "$repo/adapters/$task.m4a" --task "$task" --data "$work/data" \
    --json > "$work/$task.json"
  if /usr/bin/python3 - "$work/$task.json" "$margin" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); margin = float(sys.argv[2])
ok = r["score"] >= r["chance"] + margin
print("%-20s %s %.3f  chance %.3f  margin %.2f  %s" % (r["task"], r["metric"], r["score"], r["chance"], margin,
                                                        "ok" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
  then :; else fail=1; fi
done <<<"$checks"
exit "$fail"
