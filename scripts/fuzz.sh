#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for N seconds (default 30) on a seed corpus
# of valid firmware, adapter, safetensors and GGUF files. Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-30}"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DM4_BUILD_TESTS=OFF \
  -DM4_BUILD_FUZZ=ON -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined" >/dev/null
# Libraries are instrumented (fuzzer-no-link) so libFuzzer sees coverage inside the parsers.
cmake --build build-fuzz -j"$(nproc)" --target fuzz_container fuzz_protocol fuzz_import fuzz_seed_corpus | tail -1
mkdir -p build-fuzz/corpus
build-fuzz/tests/fuzz/fuzz_seed_corpus build-fuzz/corpus
for kind in firmware adapter; do
  echo "fuzz_container ($kind): ${secs}s"
  log="build-fuzz/fuzz_$kind.log"
  if ! M4_FUZZ_KIND=$kind build-fuzz/tests/fuzz/fuzz_container -max_total_time="$secs" -max_len=65536 \
      -artifact_prefix=build-fuzz/ build-fuzz/corpus >"$log" 2>&1; then
    grep -vE '^#[0-9]+' "$log" | tail -60
    echo "fuzz_container ($kind) found a crash; the input is in build-fuzz/crash-*"
    exit 1
  fi
  grep -E '^Done' "$log" || true
done
echo "fuzz_protocol: ${secs}s"
mkdir -p build-fuzz/corpus-protocol
if ! build-fuzz/tests/fuzz/fuzz_protocol -max_total_time="$secs" -max_len=65536 -artifact_prefix=build-fuzz/ \
    build-fuzz/corpus-protocol >build-fuzz/fuzz_protocol.log 2>&1; then
  grep -vE '^#[0-9]+' build-fuzz/fuzz_protocol.log | tail -60
  echo "fuzz_protocol found a crash; the input is in build-fuzz/crash-*"
  exit 1
fi
grep -E '^Done' build-fuzz/fuzz_protocol.log || true
# The import parsers (safetensors, GGUF): half the time each, so the two together cost one target's.
isecs=$(( (secs + 1) / 2 ))
for kind in safetensors gguf; do
  echo "fuzz_import ($kind): ${isecs}s"
  log="build-fuzz/fuzz_$kind.log"
  if ! M4_FUZZ_KIND=$kind build-fuzz/tests/fuzz/fuzz_import -max_total_time="$isecs" -max_len=65536 \
      -artifact_prefix=build-fuzz/ build-fuzz/corpus >"$log" 2>&1; then
    grep -vE '^#[0-9]+' "$log" | tail -60
    echo "fuzz_import ($kind) found a crash; the input is in build-fuzz/crash-*"
    exit 1
  fi
  grep -E '^Done' "$log" || true
done
