#!/usr/bin/env bash
# m4 vs ONNX Runtime on the image encoder path (ViT-B/16-sized, random weights), end to end:
#
#   bench/onnx/run.sh [--work-dir DIR] [--m4fw PATH] [--min-time S] [--threads N] [--m4-dtype T] ...
#
# 1. installs what it needs: python3-onnx (apt, if missing) and onnxruntime-node (npm ci, pinned
#    by bench/onnx/package-lock.json; CPU binaries only, nothing downloaded outside npm);
# 2. makes the firmware from configs/vit-b16.json (m4fw init), with --m4-dtype bf16|i8 quantizes it
#    (m4fw quantize), and exports its image encoder path to ONNX (export_onnx.py; a quantized
#    firmware's weights are exported as their f32 values, so both engines hold the same weights
#    and ORT runs them in f32), all into the work dir;
# 3. checks the numbers: the same test images through `m4fw run --json` and through ONNX Runtime
#    must give the same L2-normalised embeddings (max |diff| <= --tol), otherwise it stops:
#    a speed comparison of two engines that compute different things means nothing. With bf16 /
#    i8, m4 also rounds / quantizes the activations, so the default tolerance is looser (below)
#    and the measured difference is the accuracy cost of m4's faster path;
#    --oracle adds the project's float64 PyTorch reference as a third opinion;
# 4. times ONNX Runtime (bench.mjs) and `m4fw bench model` back to back with the same thread count
#    and prints images/s and the m4 / ORT ratio at batch 1 and 8 (the issue's target is >= 1.5x).
#
# Input boundary of both timings: the normalised [224, 224, 3] f32 image (what Model::run takes);
# patchify, encoder, mean pool, embed_proj and L2 normalisation are timed in both engines.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3  # Debian's python: numpy, python3-onnx (and torch for --oracle)

WORK=${TMPDIR:-/tmp}/m4-onnx-bench
M4FW=$REPO/build/tools/m4fw/m4fw
CONFIG=$REPO/configs/vit-b16.json
MIN_TIME=10
WARMUP=2
THREADS=2
TOL=
M4_DTYPE=f32
QKV=separate
SEED=1
IMAGES=3
ORACLE=0
SKIP_INSTALL=0

usage() {
    cat <<EOF
usage: bench/onnx/run.sh [options]
  --work-dir DIR    firmware, ONNX model, test images and logs (default: $WORK)
  --m4fw PATH       m4fw binary (default: build/tools/m4fw/m4fw)
  --config FILE     firmware config (default: configs/vit-b16.json)
  --min-time S      seconds per timed measurement, both engines (default: $MIN_TIME)
  --warmup S        ONNX Runtime warm-up seconds per batch size (default: $WARMUP)
  --threads N       threads of both engines: M4_THREADS and intraOpNumThreads (default: $THREADS)
  --m4-dtype T      m4's weights: f32, or bf16 / i8 (m4fw quantize; ORT runs f32 on the same
                    values) (default: $M4_DTYPE)
  --tol X           max |m4 - ORT| allowed on the normalised embedding (default: 1e-4 for f32,
                    2e-3 for bf16, 1e-2 for i8)
  --qkv MODE        ONNX graph's q/k/v: separate (like m4) or fused (one MatMul) (default: $QKV)
  --seed N          firmware seed for m4fw init (default: $SEED)
  --oracle          also compare both engines with the float64 reference (needs torch, ~30 s)
  --skip-install    do not run apt-get / npm ci (they must have run before)
EOF
}

die() {
    echo "run.sh: error: $*" >&2
    exit 1
}

abspath() {  # absolute path of a file or directory that may not exist yet (relative to the caller)
    case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac
}

while [[ $# -gt 0 ]]; do
    case $1 in
        --work-dir) WORK=$(abspath "${2:?--work-dir needs a value}"); shift 2 ;;
        --m4fw) M4FW=$(abspath "${2:?--m4fw needs a value}"); shift 2 ;;
        --config) CONFIG=$(abspath "${2:?--config needs a value}"); shift 2 ;;
        --min-time) MIN_TIME=${2:?--min-time needs a value}; shift 2 ;;
        --warmup) WARMUP=${2:?--warmup needs a value}; shift 2 ;;
        --threads) THREADS=${2:?--threads needs a value}; shift 2 ;;
        --tol) TOL=${2:?--tol needs a value}; shift 2 ;;
        --m4-dtype) M4_DTYPE=${2:?--m4-dtype needs a value}; shift 2 ;;
        --qkv) QKV=${2:?--qkv needs a value}; shift 2 ;;
        --seed) SEED=${2:?--seed needs a value}; shift 2 ;;
        --oracle) ORACLE=1; shift ;;
        --skip-install) SKIP_INSTALL=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown option '$1'" ;;
    esac
done
[[ $THREADS =~ ^[1-9][0-9]*$ ]] || die "--threads must be a positive integer, got '$THREADS'"
[[ $QKV == separate || $QKV == fused ]] || die "--qkv must be separate or fused, got '$QKV'"
case $M4_DTYPE in
    f32) TOL=${TOL:-1e-4} ;;
    bf16) TOL=${TOL:-2e-3} ;;
    i8) TOL=${TOL:-1e-2} ;;
    *) die "--m4-dtype must be f32, bf16 or i8, got '$M4_DTYPE'" ;;
esac
[[ $ORACLE == 0 || $M4_DTYPE == f32 ]] || die "--oracle compares with float64 and needs --m4-dtype f32"

step() { echo; echo "== $*"; }

# Runs a command with its output in a log; on failure shows the log's tail and stops.
logged() {
    local log=$1; shift
    if ! "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "'$*' failed (full log: $log)"
    fi
}

# ---------------------------------------------------------------------------------------------
step "prerequisites"
[[ -x $M4FW ]] || die "no m4fw binary at $M4FW (build m4 first, or pass --m4fw PATH)"
[[ -f $CONFIG ]] || die "no firmware config at $CONFIG"
[[ -x $PY ]] || die "$PY not found (Debian's python3 with numpy is required)"
"$PY" -c 'import numpy' 2>/dev/null || die "$PY lacks numpy (apt-get install -y python3-numpy)"
command -v node >/dev/null || die "node not found (apt-get install -y nodejs npm)"
command -v npm >/dev/null || die "npm not found (apt-get install -y npm)"

if [[ $SKIP_INSTALL == 0 ]]; then
    if ! "$PY" -c 'import onnx' 2>/dev/null; then
        echo "installing python3-onnx (apt)"
        SUDO=
        if [[ $(id -u) != 0 ]]; then
            command -v sudo >/dev/null || die "python3-onnx is missing and installing it needs root (apt-get install -y python3-onnx)"
            SUDO=sudo
        fi
        APT_LOG=$(mktemp)
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-onnx >"$APT_LOG" 2>&1 ||
            { tail -n 20 "$APT_LOG" >&2; die "apt-get install python3-onnx failed"; }
        rm -f "$APT_LOG"
    fi
    # onnxruntime-node bundles the CPU libraries for linux/x64 in the npm tarball. Its postinstall
    # script only fetches the CUDA/TensorRT providers from nuget.org: skip it (the documented
    # ONNXRUNTIME_NODE_INSTALL=skip, and --ignore-scripts for good measure), so nothing is
    # downloaded outside the npm registry.
    echo "npm ci (onnxruntime-node, pinned by package-lock.json)"
    (cd "$HERE" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) ||
        die "npm ci in $HERE failed"
fi
"$PY" -c 'import onnx' 2>/dev/null || die "python3-onnx is missing (apt-get install -y python3-onnx)"
[[ -f $HERE/node_modules/onnxruntime-node/package.json ]] ||
    die "onnxruntime-node is not installed in $HERE/node_modules (run without --skip-install)"
ORT_VERSION=$(node -p "require('$HERE/node_modules/onnxruntime-node/package.json').version")
ORT_PINNED=$(node -p "require('$HERE/package.json').dependencies['onnxruntime-node']")
[[ $ORT_VERSION == "$ORT_PINNED" ]] || die "installed onnxruntime-node $ORT_VERSION, package.json pins $ORT_PINNED"
echo "python3-onnx $("$PY" -c 'import onnx; print(onnx.__version__)') · onnxruntime-node $ORT_VERSION · node $(node --version)"

# ---------------------------------------------------------------------------------------------
step "firmware and ONNX model in $WORK"
mkdir -p "$WORK"
FW=$WORK/vit.m4fw
ONNX=$WORK/vit.onnx
rm -f "$FW" "$ONNX"
logged "$WORK/init.log" "$M4FW" init --config "$CONFIG" --out "$FW" --seed "$SEED"
grep '^wrote' "$WORK/init.log" || true
DEQUANTIZE=()
if [[ $M4_DTYPE != f32 ]]; then
    rm -f "$WORK/vit-$M4_DTYPE.m4fw"
    logged "$WORK/quantize.log" "$M4FW" quantize "$FW" "$WORK/vit-$M4_DTYPE.m4fw" --dtype "$M4_DTYPE"
    grep '^wrote' "$WORK/quantize.log" || true
    FW=$WORK/vit-$M4_DTYPE.m4fw
    DEQUANTIZE=(--dequantize)
fi
logged "$WORK/export.log" "$PY" "$HERE/export_onnx.py" --firmware "$FW" --out "$ONNX" --qkv "$QKV" \
    "${DEQUANTIZE[@]}" --write-inputs "$WORK/inputs" --count "$IMAGES"
head -n 1 "$WORK/export.log"
mapfile -t INPUTS < <(grep '\.npy$' "$WORK/export.log")
[[ ${#INPUTS[@]} == "$IMAGES" ]] || die "export_onnx.py wrote ${#INPUTS[@]} test images, expected $IMAGES"

# ---------------------------------------------------------------------------------------------
step "numerical check: m4 vs ONNX Runtime on ${#INPUTS[@]} test images (tolerance $TOL)"
export M4_THREADS=$THREADS
"$M4FW" run --firmware "$FW" --modality image --json "${INPUTS[@]}" >"$WORK/m4.json" 2>"$WORK/m4-run.log" ||
    { tail -n 20 "$WORK/m4-run.log" >&2; die "m4fw run failed"; }
node "$HERE/bench.mjs" check --model "$ONNX" --expect "$WORK/m4.json" --tol "$TOL" --threads "$THREADS" \
    --save "$WORK/ort.json" "${INPUTS[@]}" | tee "$WORK/check.log" ||
    die "numerical check failed: ONNX Runtime does not compute m4's encoder path; no timing"
CHECK_LINE=$(tail -n 1 "$WORK/check.log")
if [[ $ORACLE == 1 ]]; then
    "$PY" -c 'import torch' 2>/dev/null || die "--oracle needs torch in $PY"
    "$PY" "$HERE/oracle_check.py" --firmware "$FW" --tol "$TOL" \
        --result m4="$WORK/m4.json" --result ort="$WORK/ort.json" "${INPUTS[@]}" ||
        die "oracle check failed"
fi

# ---------------------------------------------------------------------------------------------
step "timing, back to back (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
node "$HERE/bench.mjs" time --model "$ONNX" --batches 1,8 --min-time "$MIN_TIME" --warmup "$WARMUP" \
    --threads "$THREADS" | tee "$WORK/ort-time.log" || die "ONNX Runtime timing failed"
# m4fw bench model also times the (tiny, irrelevant) backbone; only its encoder lines are used.
"$M4FW" bench model --firmware "$FW" --min-time "$MIN_TIME" 2>&1 | tee "$WORK/m4-bench.log" ||
    die "m4fw bench model failed"

M4_THREADS_SEEN=$(sed -n 's/.*· threads \([0-9]*\).*/\1/p' "$WORK/m4-bench.log" | head -n 1)
[[ $M4_THREADS_SEEN == "$THREADS" ]] || die "m4 ran with '$M4_THREADS_SEEN' threads, expected $THREADS"

rate() {  # rate LOG PREFIX → the number before "inputs/s" on the line starting with PREFIX
    local v
    v=$(awk -v p="$2" 'index($0, p) == 1 { for (i = 1; i <= NF; ++i) if ($i == "inputs/s") print $(i - 1) }' "$1" | head -n 1)
    [[ -n $v ]] || die "no '$2 … inputs/s' line in $1"
    echo "$v"
}

step "result"
echo "image encoder path: $(head -n 1 "$WORK/export.log" | grep -o '[0-9]* tokens (no CLS).*')"
echo "m4: $M4_DTYPE weights, ORT: f32 weights of the same values · $THREADS threads each · min time $MIN_TIME s per measurement · onnxruntime-node $ORT_VERSION"
echo "$CHECK_LINE"
printf '%-6s %14s %14s %8s   %s\n' batch "m4 images/s" "ORT images/s" "m4/ORT" "target >= 1.5x"
for B in 1 8; do
    M4=$(rate "$WORK/m4-bench.log" "encoder image batch $B:")
    ORT=$(rate "$WORK/ort-time.log" "ort image batch $B:")
    awk -v b="$B" -v m="$M4" -v o="$ORT" 'BEGIN {
        r = o > 0 ? m / o : 0
        printf "%-6s %14.2f %14.2f %7.2fx   %s\n", b, m, o, r, (r >= 1.5 ? "met" : "not met") }'
done
echo "(m4fw bench model prints one decimal, so the m4 column is rounded to 0.1 images/s; logs in $WORK)"
