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
  # oneDNN: only the baseline inside `m4fw bench kernels` (the engine never links it)
  # (its CMake config needs OpenCL's headers and library even for the CPU engine; apt only recommends them)
  libdnnl-dev ocl-icd-opencl-dev opencl-c-headers
  # numerics oracle (PyTorch under /usr/bin/python3; cryptography: the Ed25519 check of tests/oracle/test_m4file.py);
  # OpenMP OpenBLAS so torch and BLAS share the cores
  python3 python3-torch python3-numpy python3-cryptography libopenblas0-openmp
  # eAIBench report figures (scripts/eaibench-report.py)
  python3-matplotlib
  # zlib (gzip members of packaged data sets)
  zlib1g-dev
  # ---- benchmark data sources (m4fw data build; docs/benchmark.md). About 100 MB to download,
  # ---- 200 MB installed; the largest: dataset-fashion-mnist 31 MB, wordnet-base 29 MB (installed),
  # ---- asterisk-core-sounds-en-wav 24 MB, fonts ≈ 40 MB, espeak-ng + data 13 MB.
  dataset-fashion-mnist wordnet-base codespell hershey-fonts-data
  fortunes-min fortunes
  wamerican wngerman wfrench wspanish witalian wdutch wportuguese wswedish
  espeak-ng espeak-ng-data libespeak-ng1 flite asterisk-core-sounds-en-wav
  fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-crosextra-carlito fonts-crosextra-caladea
  fonts-open-sans fonts-roboto-unhinted fonts-linuxlibertine fonts-go fonts-cantarell fonts-lato
  # gettext catalogues read by txt.translate (most are in every Debian system already)
  coreutils tar grep sed diffutils findutils dpkg apt libc-l10n gnupg-l10n login libgnutls30
  bash make wget gettext-base
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
