#!/usr/bin/env bash
# The main job: builds m4 and runs `m4fw demo` — the committed default firmware (firmware/m4-small.m4fw,
# signature checked with the development key) is loaded once and examples/demo/demo.json's inputs
# (test-split examples: a photo, a spoken keyword, a real recorded digit, a motion window, texts,
# scenes) go through their apps' adapters (adapters/*.m4a) on the encoder, backbone and full paths.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
build/tools/m4fw/m4fw demo --firmware firmware/m4-small.m4fw --public-key firmware/dev.pub "$@"
