#!/usr/bin/env bash
# Short ablations of recipes/m4-small.json (docs/training.md, "Both decoders in m4-small"): each
# variant pretrains STEPS updates from the recipe's seed and prints the validation loss of every
# objective at the last step.
#   scripts/ablate-m4-small.sh DATA_DIR [STEPS] [OUT_DIR]   (DATA_DIR: pretrain, img.draw_scene, aud.tts built)
# Variants: A mel_regress weight 0.5, B 0.05 (the recipe's), C without draw and mel_regress.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: scripts/ablate-m4-small.sh DATA_DIR [STEPS] [OUT_DIR]}
steps=${2:-150}
out=${3:-ablate-m4-small}
mkdir -p "$out"
m4fw=build/tools/m4fw/m4fw
patch() {  # variant → a JSON merge patch of the objectives
  /usr/bin/python3 - "$1" <<'PY'
import json, sys
objs = json.load(open("recipes/m4-small.json"))["objectives"]
v = sys.argv[1]
if v in ("A", "B"):
    for o in objs:
        if o["kind"] == "mel_regress":
            o["weight"] = 0.5 if v == "A" else 0.05
elif v == "C":
    objs = [o for o in objs if o["kind"] not in ("draw", "mel_regress")]
print(json.dumps({"objectives": objs}))
PY
}
for v in A B C; do
  "$m4fw" pretrain --recipe recipes/m4-small.json --out "$out/$v.m4fw" --steps "$steps" --fresh --data "$data" \
    --set "$(patch $v)" > "$out/$v.log" 2>&1
  echo "== variant $v"
  grep -E "^eval step $steps |trained steps" "$out/$v.log"
done
