#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. layout budgets (file sizes, layering), 2. Release build + every CTest test (unit, kernels on
#   every ISA present, the PyTorch oracle), 3. the loaders under AddressSanitizer + UBSan,
#   4. libFuzzer targets on the firmware/adapter parsers for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="$(nproc)"

echo "== layout checks"
scripts/check-sizes.sh
scripts/check-layers.sh

echo "== release build + tests"
scripts/build.sh
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== loaders and the daemon's integration tests under AddressSanitizer + UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DM4_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs" --target test_format test_import test_model test_scheduler test_service test_adversarial test_draw \
  test_generation test_constraint test_api m4fwd m4fw
ctest --test-dir build-asan --output-on-failure \
  -R '^(Container|Import[A-Za-z]*|ModelTest|Scheduler|ServiceTest|ServiceAdversarial|GenerationTest|ConstraintTest|ServiceApi|ImageOutput|DrawOutput|DrawTest|DrawConfig)\.' -j"$jobs"

echo "== libFuzzer on the parsers"
scripts/fuzz.sh "${M4_FUZZ_SECONDS:-30}"
