#!/usr/bin/env bash
# Exports the demo's inputs (examples/demo/) from the TEST splits of a built benchmark data
# directory: every one is an example no adapter and no pretraining step has seen.
#   scripts/make-demo-inputs.sh [DATA_DIR]      (needs `m4fw data build` of the tasks below)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-data}
m4fw=build/tools/m4fw/m4fw
out=examples/demo
mkdir -p "$out"
export_one() {  # task split index file
  "$m4fw" data export "$1" --split "$2" --index "$3" --dir "$data" --out "$out/$4"
}
export_one img.fashion_mnist test 4 shirt.png
export_one aud.kws test 5 keyword.wav
export_one aud.digits test_real 7 digit-recorded.wav
export_one imu.har test 1 motion.csv
export_one mm.caption test 3 scene.png
export_one mm.vqa test 2 vqa-scene.png
