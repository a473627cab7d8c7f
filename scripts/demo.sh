#!/usr/bin/env bash
# The main job. Until the pretrained default firmware m4-tiny lands (issue: default firmware), this
# runs the engine end to end on a RANDOM-WEIGHT firmware: outputs show the machinery (all three
# paths, four modalities, adapters), not learned answers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
m4fw=build/tools/m4fw/m4fw
out=build/demo
mkdir -p "$out"
/usr/bin/python3 scripts/make_demo_inputs.py "$out"
$m4fw init --config configs/demo-random.json --out "$out/random.m4fw" --seed 1 2>/dev/null
$m4fw inspect "$out/random.m4fw" 2>/dev/null
$m4fw adapter init --firmware "$out/random.m4fw" --out "$out/shirt.m4a" --task classify --path encoder \
  --modality image --labels t-shirt,trouser,pullover,dress,coat 2>/dev/null
$m4fw adapter init --firmware "$out/random.m4fw" --out "$out/command.m4a" --task classify --path full \
  --modality audio --labels play,stop,next,volume-up 2>/dev/null
$m4fw adapter init --firmware "$out/random.m4fw" --out "$out/activity.m4a" --task classify --path encoder \
  --modality imu --labels walk,run,sit,stairs 2>/dev/null
$m4fw adapter init --firmware "$out/random.m4fw" --out "$out/complete.m4a" --task generate --path backbone \
  --modality text 2>/dev/null
echo "== encoder path, image: $out/shirt.png"
$m4fw run --firmware "$out/random.m4fw" --adapter "$out/shirt.m4a" "$out/shirt.png" 2>/dev/null
echo "== full path, audio: $out/sweep.wav"
$m4fw run --firmware "$out/random.m4fw" --adapter "$out/command.m4a" "$out/sweep.wav" 2>/dev/null
echo "== encoder path, IMU: $out/walk.csv"
$m4fw run --firmware "$out/random.m4fw" --adapter "$out/activity.m4a" "$out/walk.csv" 2>/dev/null
echo "== backbone path, text"
$m4fw run --firmware "$out/random.m4fw" --adapter "$out/complete.m4a" --max-new-tokens 12 \
  "This program is free software" 2>/dev/null
echo "== full path, image → text (no adapter)"
$m4fw run --firmware "$out/random.m4fw" --path full --prompt "a picture of" --max-new-tokens 8 "$out/shirt.png" 2>/dev/null
