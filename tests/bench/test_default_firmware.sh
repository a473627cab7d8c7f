#!/usr/bin/env bash
# The committed default firmware (firmware/m4-tiny.m4fw): it loads, its signature verifies with the
# committed development key, the main job (`m4fw demo`) runs, and with its committed adapters it
# scores at least what they scored when committed, less the sampling error, on a few tasks — scored on test splits built here at a small
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
# The answers are checked against their truth labels, not only counted: the demo is deterministic,
# and these five the committed adapters answer right (the spoken digit, the next word and the
# caption they do not, which the demo shows as it is). The closing count must agree with the items.
for truth in shirt right running de no; do
  grep -q "^  answer $truth ([0-9]* %)   (truth: $truth) right\$" "$work/demo.log" ||
    { cat "$work/demo.log"; echo "FAIL: the demo's answer for the item labelled '$truth' is not '$truth'"; exit 1; }
done
right=$(grep -c ') right$' "$work/demo.log" || true)
wrong=$(grep -c ') WRONG$' "$work/demo.log" || true)
grep -q "^answered correctly: $right of $((right + wrong)) items with a truth label\$" "$work/demo.log" ||
  { cat "$work/demo.log"; echo "FAIL: the demo's count does not match its $right right and $wrong wrong items"; exit 1; }
[ "$right" -ge 5 ] || { cat "$work/demo.log"; echo "FAIL: the demo answered $right items right (m4-tiny: 5)"; exit 1; }

# task  minimum score: what the committed adapter scores on this small test split (scale 0.05;
# 2026-12-02: fashion_mnist 0.722 of 500, imu.har 0.550 of 100, lang_id 0.775 of 120, kws 0.950
# of 60) less three standard errors of a proportion on that many examples, rounded down.
checks="img.fashion_mnist 0.66
imu.har 0.40
txt.lang_id 0.66
aud.kws 0.86"
tasks=$(cut -d' ' -f1 <<<"$checks" | tr '\n' ' ')
"$m4fw" data build $tasks --dir "$work/data" --scale 0.05 -q
fail=0
while read -r task margin; do
  "$m4fw" eval --firmware "$fw" --adapter "$repo/adapters/$task.m4a" --task "$task" --data "$work/data" \
    --json > "$work/$task.json"
  if /usr/bin/python3 - "$work/$task.json" "$margin" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); least = float(sys.argv[2])
ok = r["score"] >= least and r["score"] > r["chance"]
print("%-20s %s %.3f  chance %.3f  at least %.2f  %s" % (r["task"], r["metric"], r["score"], r["chance"], least,
                                                          "ok" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
  then :; else fail=1; fi
done <<<"$checks"
exit "$fail"
