#!/usr/bin/env bash
# eAIBench end to end (docs/eaibench.md): for every task, m4's test score (firmware + adapter,
# `m4fw eval`), the task-specific baseline (`m4fw baseline train`: trained from scratch on the
# train split, tuned on its validation share, scored once on test), then the report and figures
# from the result files alone. Resumable: a task whose result is present and current (same firmware
# fingerprint, same data manifest, same plan budget) is skipped; a killed baseline run reuses its finished variants.
# Decoder tasks with no model to train (plan kind reconstruct: bicubic enlargement; mel_regress: the
# reference espeak-ng voice through the same recogniser) get their baseline from m4's eval's reference
# numbers; img.draw_scene (kind draw) trains its from-scratch model like every other task.
#
#   scripts/eaibench.sh [--data DIR] [--tasks "T1 T2 …"] [--results DIR] [--adapters DIR]
#                       [--train-adapters] [--baseline-args "…"] [--out FILE.md] [--figures DIR]
#                       [--models DIR] [--work DIR] [--report-only] [--m4fw BIN] [--firmware F]
#                       [--measure [--ks 1,2,4,8,16,32]]
#
# Defaults: data/, every task with a plan (m4fw data list), results/, adapters/, docs/eaibench.md,
# docs/figures/, baselines/, build-baselines/. --train-adapters trains each task's adapter first
# (m4fw adapter train, plan defaults) when --adapters has none. --measure then measures memory serving k
# tasks and per-request latency (m4fw bench eaibench --service: in-process and through m4fwd, at
# M4_THREADS=2) over the tasks that have
# both an adapter and a task-specific model → RESULTS/resources.json.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
m4fw="${M4FW:-$root/build/tools/m4fw/m4fw}"
firmware="${M4_FIRMWARE:-$root/firmware/m4-small.m4fw}"
data="$root/data" results="$root/results" adapters="$root/adapters" out="$root/docs/eaibench.md"
figures="$root/docs/figures" models="$root/baselines" work="$root/build-baselines"
tasks="" baseline_args="" report_only=0 train_adapters=0 measure=0 ks="1,2,4,8,16,32"
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data="$2"; shift 2 ;;
    --tasks) tasks="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --adapters) adapters="$2"; shift 2 ;;
    --train-adapters) train_adapters=1; shift ;;
    --baseline-args) baseline_args="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --figures) figures="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --report-only) report_only=1; shift ;;
    --measure) measure=1; shift ;;
    --ks) ks="$2"; shift 2 ;;
    --m4fw) m4fw="$2"; shift 2 ;;
    --firmware) firmware="$2"; shift 2 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "eaibench.sh: unknown option '$1' (--help lists them)" >&2; exit 2 ;;
  esac
done
[ -x "$m4fw" ] || { echo "eaibench.sh: $m4fw is not built (scripts/build.sh)" >&2; exit 2; }
[ -f "$firmware" ] || { echo "eaibench.sh: firmware $firmware not found" >&2; exit 2; }
t_start=$(date +%s.%N)
fp=$("$m4fw" inspect "$firmware" | sed -n 's/^fingerprint: *//p' | head -1)
[ -n "$fp" ] || { echo "eaibench.sh: cannot read the fingerprint of $firmware" >&2; exit 2; }
fw_bytes=$(stat -c %s "$firmware")
mkdir -p "$results/plans" "$results/evals" "$results/baselines"

# json FILE KEY…: a value of a JSON file ("" when the file or key is missing).
json() {
  /usr/bin/python3 - "$@" <<'PY' 2>/dev/null
import json, sys
try:
    v = json.load(open(sys.argv[1]))
    for k in sys.argv[2:]:
        v = v[k]
    print(v)
except Exception:
    print("")
PY
}
manifest_sha() { sha256sum "$data/$1/manifest.json" 2>/dev/null | cut -d' ' -f1; }

# reference_baseline TASK KIND PLAN EVAL OUT: the baseline of a decoder task with no model to train,
# written from m4's eval (its `chance` is the reference scored on the same test examples).
reference_baseline() {
  [ -f "$4" ] || { echo "$1: no reference baseline without m4's eval $4 (it holds the reference numbers)" >&2; return 1; }
  /usr/bin/python3 - "$@" "$fp" "$firmware" "$data" "$(manifest_sha "$1")" <<'PY'
import datetime, hashlib, json, sys
task, kind, plan_p, ev_p, out, fp, firmware, data, sha = sys.argv[1:]
plan, ev = json.load(open(plan_p)), json.load(open(ev_p))
x = ev.get("extra", {})
def fail(msg):
    print(f"{task}: {msg}; no reference baseline written", file=sys.stderr)
    sys.exit(1)
if ev.get("fingerprint") != fp:
    fail(f"{ev_p} was scored on another firmware")
if kind == "reconstruct":
    if ev.get("metric") != "psnr" or "bicubic_psnr_x2" not in x:
        fail(f"{ev_p} holds no bicubic PSNR (metric {ev.get('metric')})")
    what = "bicubic enlargement, no model"
    keys = ("bicubic_psnr_x2", "bicubic_psnr_x4", "bicubic_ssim_x2", "bicubic_ssim_x4")
    chance = None
else:
    if ev.get("metric") != "intelligibility":
        fail(f"{ev_p} scored {ev.get('metric')}, not intelligibility (were the recogniser adapters missing?)")
    what = "reference espeak-ng voice through the same recogniser, no model"
    keys = ("reference_intelligibility", "guessing", "recognised_words", "mean_mel_l1")
    chance = x.get("guessing")
r = {"task": task, "group": plan.get("group"), "path": plan.get("path"), "kind": kind, "baseline": what,
     "metric": ev["metric"], "higher_is_better": plan.get("higher_is_better", True), "score": ev["chance"],
     "chance": chance, "test_examples": ev["examples"],
     "test": {"split": ev.get("split"), "examples": ev["examples"], "of": ev.get("of")},
     "reference": {"rule": ev.get("chance_rule"), **{k: x[k] for k in keys if k in x}},
     "model": None, "m4_firmware": {"path": firmware, "fingerprint": fp},
     "data": {"dir": data, "manifest_sha256": sha},
     "m4_eval": {"path": ev_p, "sha256": hashlib.sha256(open(ev_p, "rb").read()).hexdigest()},
     "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
     "command": "scripts/eaibench.sh (from m4's eval: no model to train)"}
with open(out + ".tmp", "w") as f:
    json.dump(r, f, indent=2)
    f.write("\n")
import os
os.replace(out + ".tmp", out)
print(f"{task}: reference baseline ({what}): {ev['metric']} {ev['chance']:.4f} on {ev['examples']} test examples -> {out}")
PY
}

if [ "$report_only" -eq 0 ]; then
  [ -d "$data" ] || { echo "eaibench.sh: no data directory $data (m4fw data build --all --dir $data)" >&2; exit 2; }
  if [ -z "$tasks" ]; then
    tasks=$(for m in "$data"/*/manifest.json; do t=$(basename "$(dirname "$m")"); [ "$t" != pretrain ] && echo "$t"; done)
  fi
  scored=0 skipped=0 failed=0 referenced=0
  for task in $tasks; do
    [ -f "$data/$task/manifest.json" ] || { echo "$task: not built under $data (m4fw data build $task --dir $data)" >&2; failed=$((failed + 1)); continue; }
    plan="$results/plans/$task.json"
    "$m4fw" eval --plan --task "$task" --data "$data" --firmware "$firmware" > "$plan.tmp" && mv "$plan.tmp" "$plan" \
      || { echo "$task: no plan" >&2; rm -f "$plan.tmp"; failed=$((failed + 1)); continue; }
    # m4: firmware + adapter on the test split (the plan's eval_limit, as scripts/train-adapters.sh)
    ev="$results/evals/$task.test.json"
    if [ "$(json "$ev" fingerprint)" = "$fp" ]; then
      echo "$task: m4 result current ($ev)"
    else
      ad="$adapters/$task.m4a"
      if [ ! -f "$ad" ] && [ "$train_adapters" -eq 1 ]; then
        mkdir -p "$adapters"
        "$m4fw" adapter train --task "$task" --data "$data" --firmware "$firmware" --out "$ad" --progress off \
          || { echo "$task: adapter training failed" >&2; failed=$((failed + 1)); continue; }
      fi
      if [ -f "$ad" ]; then
        limit=$(json "$plan" eval_limit)
        limit_arg=()
        [ "${limit:-0}" -gt 0 ] && limit_arg=(--limit "$limit")
        # aud.tts is scored by this firmware's own keyword / digit recogniser adapters.
        [ "$task" = aud.tts ] && limit_arg+=(--recognisers "$adapters/aud.kws.m4a,$adapters/aud.digits.m4a")
        "$m4fw" eval --adapter "$ad" --task "$task" --data "$data" --firmware "$firmware" "${limit_arg[@]}" --json \
          > "$ev.tmp" && mv "$ev.tmp" "$ev" || { echo "$task: m4 eval failed" >&2; rm -f "$ev.tmp"; }
      else
        echo "$task: no adapter $ad (--train-adapters trains one)" >&2
      fi
    fi
    # the classic second column: logistic regression on raw features (encoder-path classification)
    cl="$results/baselines/$task.classic.json"
    if [ "$(json "$plan" path)" = encoder ] && [ "$(json "$plan" kind)" = classify ]; then
      if [ "$(json "$cl" data manifest_sha256)" = "$(manifest_sha "$task")" ]; then
        echo "$task: logistic regression current ($cl)"
      else
        "$m4fw" baseline classic --task "$task" --data "$data" --firmware "$firmware" --out-dir "$results/baselines" \
          || echo "$task: logistic regression failed" >&2
      fi
    fi
    # the task-specific baseline
    bl="$results/baselines/$task.json"
    kind=$(json "$plan" kind)
    if [ "$kind" = reconstruct ] || [ "$kind" = mel_regress ]; then
      # No model to train: the baseline is the reference m4's eval scored next to it on the same test
      # examples (bicubic enlargement; the reference espeak-ng voice through the same recogniser).
      if [ -f "$ev" ] && [ "$(json "$bl" m4_firmware fingerprint)" = "$fp" ] &&
        [ "$(json "$bl" data manifest_sha256)" = "$(manifest_sha "$task")" ] &&
        [ "$(json "$bl" m4_eval sha256)" = "$(sha256sum "$ev" | cut -d' ' -f1)" ]; then
        echo "$task: reference baseline current ($bl), skipped"
        skipped=$((skipped + 1))
      elif reference_baseline "$task" "$kind" "$plan" "$ev" "$bl"; then
        referenced=$((referenced + 1))
      else
        failed=$((failed + 1))
      fi
      continue
    fi
    # current = same firmware, same data and the same budget (twice the plan's updates, baseline.cpp)
    if [ "$(json "$bl" m4_firmware fingerprint)" = "$fp" ] && [ "$(json "$bl" data manifest_sha256)" = "$(manifest_sha "$task")" ] &&
      [ "$(json "$bl" tuning adapter_plan_steps)" = "$(json "$plan" train steps)" ]; then
      echo "$task: baseline current ($bl), skipped"
      skipped=$((skipped + 1))
      continue
    fi
    # shellcheck disable=SC2086
    if "$m4fw" baseline train --task "$task" --data "$data" --firmware "$firmware" --out-dir "$results/baselines" \
        --model-dir "$models" --work-dir "$work" $baseline_args; then
      scored=$((scored + 1))
    else
      echo "$task: baseline training failed" >&2
      failed=$((failed + 1))
    fi
  done
  echo "eaibench.sh: baselines trained $scored, current $skipped, failed $failed, reference (no model) written $referenced"
fi

if [ "$measure" -eq 1 ]; then
  both=""
  for bl in "$results"/baselines/*.json; do
    case "$bl" in *.classic.json) continue ;; esac
    t=$(basename "$bl" .json)
    # the serving bench answers classify / embed / generate requests; a drawing (img.draw_scene) it does not
    [ "$(json "$results/plans/$t.json" kind)" = draw ] && { echo "$t: --measure skips a draw task" >&2; continue; }
    [ -f "$adapters/$t.m4a" ] && [ -f "$models/$t.m4fw" ] && both="$both${both:+,}$t"
  done
  [ -n "$both" ] || { echo "eaibench.sh: --measure: no task has both an adapter and a task-specific model" >&2; exit 1; }
  M4_THREADS=2 "$m4fw" bench eaibench --tasks "$both" --data "$data" --firmware "$firmware" --adapters "$adapters" \
    --models "$models" --work-dir "$work/serving" --ks "$ks" --service --out "$results/resources.json" || exit 1
fi

# operator types per path (m4fw inspect) of the firmware and of every task-specific model
mkdir -p "$results/ops"
"$m4fw" inspect "$firmware" | sed -n '/^operator types per path:/,$p' > "$results/ops/m4.txt"
for bl in "$results"/baselines/*.json; do
  case "$bl" in *.classic.json) continue ;; esac
  [ -f "$bl" ] || continue
  t=$(basename "$bl" .json) mf=$(json "$bl" model firmware)
  [ -f "$mf" ] && "$m4fw" inspect "$mf" | sed -n '/^operator types per path:/,$p' > "$results/ops/$t.txt"
done
mkdir -p "$(dirname "$out")" "$figures"
/usr/bin/python3 "$root/scripts/eaibench-report.py" --results "$results" --firmware-fingerprint "$fp" \
  --firmware-bytes "$fw_bytes" --data "$data" --out "$out" --figures "$figures" --root "$root" || exit 1
t_end=$(date +%s.%N)
awk -v a="$t_start" -v b="$t_end" 'BEGIN { printf "eaibench.sh: wall time %.1f s\n", b - a }'
