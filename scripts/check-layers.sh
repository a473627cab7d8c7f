#!/usr/bin/env bash
# Fails when a file under src/<lib>/ includes a header of a library it may not depend on
# (docs/architecture.md, "Layers of the code"). The CMake link graph enforces the same arrows.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A allowed=(
  [base]="base"
  [tensor]="base tensor"
  [kernels]="base tensor kernels"
  [ops]="base tensor kernels ops"
  [format]="base tensor format"
  [data]="base tensor format data"
  [model]="base tensor kernels ops format model"
  [adapter]="base tensor kernels ops format model adapter"
  [import]="base tensor kernels ops format model adapter import"
  [runtime]="base tensor kernels ops format model adapter runtime"
  [train]="base tensor kernels ops format model adapter train"
  [bench]="base tensor kernels ops format data model adapter runtime train bench"
  [proto]="base proto"
  [service]="base tensor kernels ops format model adapter runtime proto service"
  [client]="base proto client"
)
bad=0
for lib in "${!allowed[@]}"; do
  [ -d "src/$lib" ] || continue
  while IFS=: read -r file _ inc; do
    dep=$(sed -E 's/.*#include "([a-z_0-9]+)\/.*/\1/' <<<"$inc")
    [ -d "src/$dep" ] || continue
    if ! grep -qw "$dep" <<<"${allowed[$lib]}"; then
      echo "check-layers: $file includes $dep/ — $lib may depend only on: ${allowed[$lib]}"
      bad=1
    fi
  done < <(grep -rn '#include "[a-z_0-9]*/' "src/$lib" || true)
done
[ "$bad" -eq 0 ] && echo "check-layers: ok"
exit "$bad"
