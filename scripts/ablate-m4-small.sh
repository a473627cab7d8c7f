#!/usr/bin/env bash
# Short ablations of recipes/m4-small.json (docs/training.md, "Both decoders in m4-small"): each
# variant pretrains STEPS updates from the recipe's seed and prints the validation loss of every
# objective at the last step.
#   scripts/ablate-m4-small.sh DATA_DIR [STEPS] [OUT_DIR] [VARIANTS]   (DATA_DIR: pretrain, img.draw_scene, aud.tts built)
# Objective variants: A mel_regress weight 0.5, B 0.05 (the recipe as it is), C without draw and
# mel_regress. Size variants (the recipe's objectives): D backbone 4 layers instead of 5, E backbone
# width 288 (ffn 768) instead of 384 (1024), F encoders 2 layers instead of 3, G encoders width 128
# (4 heads, ffn 512) instead of 192. VARIANTS: space-separated, default "A B C".
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:?usage: scripts/ablate-m4-small.sh DATA_DIR [STEPS] [OUT_DIR] [VARIANTS]}
steps=${2:-150}
out=${3:-ablate-m4-small}
variants=${4:-A B C}
mkdir -p "$out"
m4fw=build/tools/m4fw/m4fw
patch() {  # variant → a JSON merge patch of the recipe
  /usr/bin/python3 - "$1" <<'PY'
import json, sys
objs = json.load(open("recipes/m4-small.json"))["objectives"]
v = sys.argv[1]
encoders = ("image", "audio", "imu")
if v in ("A", "B"):
    for o in objs:
        if o["kind"] == "mel_regress":
            o["weight"] = 0.5 if v == "A" else 0.05
    print(json.dumps({"objectives": objs}))
elif v == "C":
    print(json.dumps({"objectives": [o for o in objs if o["kind"] not in ("draw", "mel_regress")]}))
elif v == "D":
    print(json.dumps({"architecture": {"backbone": {"layers": 4}}}))
elif v == "E":
    print(json.dumps({"architecture": {"backbone": {"width": 288, "ffn": 768}}}))
elif v == "F":
    print(json.dumps({"architecture": {"encoders": {e: {"layers": 2} for e in encoders}}}))
elif v == "G":
    print(json.dumps({"architecture": {"encoders": {e: {"width": 128, "heads": 4, "ffn": 512} for e in encoders}}}))
else:
    sys.exit("unknown variant " + v)
PY
}
for v in $variants; do
  "$m4fw" pretrain --recipe recipes/m4-small.json --out "$out/$v.m4fw" --steps "$steps" --fresh --data "$data" \
    --set "$(patch $v)" > "$out/$v.log" 2>&1
  echo "== variant $v"
  grep -E "^eval step $steps |trained steps" "$out/$v.log"
done
