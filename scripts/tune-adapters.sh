#!/usr/bin/env bash
# The hyper-parameter comparisons behind the per-task defaults of src/bench/task_plan.cpp, scored
# ONLY on the validation share carved out of each task's train split (the score `m4fw adapter train`
# prints and stores in the adapter's manifest); test splits are never read. Each line of the output
# table is one variant: the task, the flags added to the plan's defaults, validation score, seconds.
#
#   scripts/tune-adapters.sh [--m4fw BIN] [--firmware F] [--data DIR] [--out results/tuning.tsv] [VARIANT-SET…]
#
# Variant sets: encoder, fewshot, backbone, lm, full (default: these five); encoder-small, backbone-small
# (m4-small's encoder and text-classification plans), budget-small (m4-small: learning rate, rank and
# targets at the plan's updates), head-small (m4-small: a hidden layer in the head).
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
m4fw="${M4FW:-$root/build/tools/m4fw/m4fw}"
firmware="${M4_FIRMWARE:-$root/firmware/m4-small.m4fw}"
data="$root/data"
out="$root/results/tuning.tsv"
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --m4fw) m4fw="$2"; shift 2 ;;
    --firmware) firmware="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) sets+=("$1"); shift ;;
  esac
done
[ ${#sets[@]} -gt 0 ] || sets=(encoder fewshot backbone lm full)
mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
[ -f "$out" ] || printf 'set\ttask\tflags\tvalidation_metric\tvalidation\tseconds\n' > "$out"

# variant SET TASK FLAGS…: trains with the plan's defaults plus FLAGS, records the validation score.
variant() {
  local set="$1" task="$2"
  shift 2
  local t0 t1 line
  t0=$(date +%s.%N)
  line=$("$m4fw" adapter train --task "$task" --data "$data" --firmware "$firmware" --out "$tmp/a.m4a" \
    --progress off "$@" 2>"$tmp/err" | grep "validation")
  t1=$(date +%s.%N)
  if [ -z "$line" ]; then
    echo "$task $*: failed: $(tail -n 1 "$tmp/err")" >&2
    return
  fi
  # "trained N steps in S s; validation METRIC SCORE (chance C) on K examples"
  local metric score
  metric=$(sed -E 's/.*validation (.*) ([-0-9.]+) \(chance.*/\1/' <<<"$line")
  score=$(sed -E 's/.*validation .* ([-0-9.]+) \(chance.*/\1/' <<<"$line")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$set" "$task" "${*:-(plan)}" "$metric" "$score" \
    "$(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }")" | tee -a "$out"
}

# variants SET: one variant per line of stdin, "TASK [FLAGS…]" (m4fw keeps the terminal's stdin).
variants() {
  local task flags
  while read -r task flags; do
    # shellcheck disable=SC2086
    variant "$1" "$task" $flags < /dev/null
  done
}

for s in "${sets[@]}"; do
  case "$s" in
    encoder)  # LoRA on encoder attention vs a head only; steps; learning rate
      for t in img.fashion_mnist aud.kws imu.har; do
        variant encoder "$t"
        variant encoder "$t" --targets none
        variant encoder "$t" --batch 16 --steps 200
        variant encoder "$t" --lr 1e-2
        variant encoder "$t" --zero-shot-init true
      done ;;
    fewshot)  # 5 examples per class: head only vs LoRA, zero-shot start vs random start
      for t in img.fashion_mnist aud.kws imu.har; do
        variant fewshot "$t" --shots 5
        variant fewshot "$t" --shots 5 --targets none
        variant fewshot "$t" --shots 5 --zero-shot-init true
        variant fewshot "$t" --shots 5 --targets none --zero-shot-init true
      done ;;
    backbone)  # text classification: pooled mean (plan) vs LoRA on every linear; steps
      for t in txt.lang_id txt.topic; do
        variant backbone "$t"
        variant backbone "$t" --targets all
        variant backbone "$t" --lr 1e-3
      done ;;
    lm)  # generation on the backbone: learning rate, LoRA on every linear
      for t in txt.spell txt.reverse_dict; do
        variant lm "$t"
        variant lm "$t" --lr 1e-3
        variant lm "$t" --targets all
      done ;;
    full)  # full path: LoRA on encoder + backbone attention (plan) vs the backbone's only
      for t in mm.imu_caption mm.vqa; do
        variant full "$t"
        variant full "$t" --targets 'backbone.*.attn.*'
        variant full "$t" --batch 16 --steps 300
      done ;;
    encoder-small)  # m4-small: LoRA targets and updates on the encoder path (flags explicit: the plan's defaults moved)
      for t in imu.gesture imu.har imu.airwrite imu.cadence aud.speaker_id; do
        variant encoder-small "$t" --targets attn --steps 200
        variant encoder-small "$t" --targets all --steps 600
      done
      variant encoder-small imu.gesture --targets attn --steps 600
      variant encoder-small imu.gesture --targets all --steps 200
      variant encoder-small imu.gesture --targets all --steps 600 --rank 16 --alpha 32
      variant encoder-small imu.gesture --targets all --steps 600 --lr 1e-2
      variant encoder-small imu.airwrite --targets all --steps 1200
      variant encoder-small imu.placement --targets all --steps 600
      variant encoder-small aud.speaker_id --targets all --steps 200
      variant encoder-small img.stroke_digit --targets attn --steps 100
      variant encoder-small img.stroke_digit --targets all --steps 200
      variant encoder-small img.stroke_digit --targets all --steps 400 ;;
    backbone-small)  # m4-small: updates for text classification
      for t in txt.supersense txt.topic; do
        variant backbone-small "$t" --steps 150
        variant backbone-small "$t" --steps 450
      done ;;
    budget-small)  # m4-small: lr, rank and targets at the plan's updates (the baselines' budget unchanged);
      # one variant per line: TASK [FLAGS…] ("(plan)" rows of results/tuning.tsv have no flags)
      variants budget-small <<'VARIANTS'
aud.digits --lr 3e-3
aud.digits
aud.gender
aud.intent --lr 3e-3
aud.intent
aud.intent --lr 1e-2
aud.kws
aud.kws --lr 6e-3
aud.lang_id --lr 3e-3
aud.lang_id
aud.speaker_id
img.char_ocr --rank 8 --alpha 16
img.char_ocr
img.count --rank 8 --alpha 16 --lr 6e-3
img.count --rank 8 --alpha 16
img.count
img.fashion_mnist --rank 8 --alpha 16
img.fashion_mnist
img.font_family --rank 8 --alpha 16
img.font_family --rank 8 --alpha 16 --lr 1e-3
img.font_family --rank 8 --alpha 16 --lr 6e-3
img.font_family
img.shapes --rank 8 --alpha 16
img.shapes --rank 8 --alpha 16 --lr 1e-3
img.shapes --rank 8 --alpha 16 --lr 6e-3
img.shapes
img.shapes --rank 32 --alpha 64
img.stroke_digit
imu.cadence --lr 1e-3
imu.cadence --lr 1.5e-3 --weight-decay 0.05
imu.cadence --rank 16 --alpha 32
imu.gesture --lr 1e-3
imu.gesture --lr 1.5e-3 --weight-decay 0.05
imu.har --lr 1e-3
imu.har --lr 1.5e-3 --weight-decay 0.05
imu.har --lr 5e-3
imu.har --rank 16 --alpha 32
mm.retrieval
mm.retrieval --targets attn
txt.spell --targets attn --rank 8 --alpha 16
txt.spell --rank 8 --alpha 16
txt.spell --targets attn --rank 8 --alpha 16 --lr 1e-2
txt.spell --rank 8 --alpha 16 --lr 1e-3
txt.spell --rank 8 --alpha 16 --lr 5e-3
txt.spell
txt.spell --rank 8 --alpha 16 --lr 2e-3
txt.spell --rank 32 --alpha 64
txt.spell --lr 5e-3
txt.spell --seed 7
txt.supersense --lr 6e-3
txt.supersense --lr 1e-3
VARIANTS
      ;;
    head-small)  # m4-small: head depth (a hidden GELU layer of 64-512) at the plan's updates, and rank 32
      # on two image tasks; every other setting is the plan's. The budget-small rows above ran with linear heads (--head-hidden 0).
      variants head-small <<'VARIANTS'
aud.digits --head-hidden 256
aud.intent --head-hidden 256
aud.intent --head-hidden 512
aud.lang_id --head-hidden 256
aud.speaker_id --head-hidden 256
img.count --head-hidden 128
img.count --head-hidden 256
img.count --head-hidden 512
img.count --head-hidden 256 --rank 32 --alpha 64
img.fashion_mnist --head-hidden 256
img.font_family --head-hidden 128
img.font_family --head-hidden 256
img.font_family --rank 32 --alpha 64
img.stroke_digit --head-hidden 256
imu.airwrite --head-hidden 256
imu.cadence --head-hidden 256
imu.cadence --head-hidden 512
imu.gesture --head-hidden 256
imu.har --head-hidden 64
imu.har --head-hidden 256
mm.retrieval --head-hidden 256
txt.supersense --head-hidden 256
VARIANTS
      ;;
    *) echo "unknown variant set $s" >&2; exit 2 ;;
  esac
done
