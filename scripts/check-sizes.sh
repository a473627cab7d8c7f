#!/usr/bin/env bash
# Fails when a C++ source or header is longer than 800 lines (the project's file budget).
set -euo pipefail
cd "$(dirname "$0")/.."
limit=800
bad=0
while IFS= read -r f; do
  n=$(wc -l <"$f")
  if [ "$n" -gt "$limit" ]; then echo "check-sizes: $f has $n lines (limit $limit)"; bad=1; fi
done < <(git ls-files '*.h' '*.cpp' '*.hpp' '*.cc' | grep -v '\.pb\.')
[ "$bad" -eq 0 ] && echo "check-sizes: ok (every file ≤ $limit lines)"
exit "$bad"
