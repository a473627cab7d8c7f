#!/usr/bin/env bash
# Installs every build, test and tool dependency of m4 from Debian 12's apt
# repositories. Idempotent: packages already present are skipped by apt.
# Usage: scripts/install-deps.sh            (needs root or sudo)
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang clang-format libclang-rt-14-dev
  # libraries the engine links
  nlohmann-json3-dev libsentencepiece-dev sentencepiece libsodium-dev
  libprotobuf-dev protobuf-compiler libstb-dev libsndfile1-dev libcli11-dev libfmt-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # numerics oracle (PyTorch under /usr/bin/python3); OpenMP OpenBLAS so torch and BLAS share the cores
  python3 python3-torch python3-numpy libopenblas0-openmp
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
