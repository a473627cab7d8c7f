#!/usr/bin/env bash
# Applies .clang-format to every C++ file under version control (scripts/format.sh --check: only report).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.h' '*.cpp')
if [ "${1:-}" = "--check" ]; then
  clang-format --dry-run --Werror $files
else
  clang-format -i $files
fi
