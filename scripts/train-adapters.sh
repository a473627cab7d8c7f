#!/usr/bin/env bash
# An adapter for every benchmark task on the default firmware, each scored on its test split through
# the inference path; zero-shot and 1/5/10-shot for the encoder-path classification tasks; then
# results/results.json (machine-readable) and results/results.md (the Markdown table, also printed).
#
#   scripts/train-adapters.sh [--m4fw BIN] [--firmware F] [--data DIR] [--adapters DIR] [--results DIR]
#                             [--tasks "img.shapes txt.topic …"] [--shots "1 5 10"] [--no-few-shot]
#                             [--no-zero-shot] [--few-shot-limit N] [--report-only] [--eval-only]
#                             [--train-args "…"]
#
# --eval-only re-scores the adapters already in --adapters and <results>/few-shot (no training).
# --train-args adds flags to every `m4fw adapter train` (smoke tests: "--steps 3"); the results then
# are not the plans' and the table says so.
# Every hyper-parameter comes from the task's plan (src/bench/task_plan.cpp; `m4fw eval --plan --task T`
# prints it), chosen on validation data carved out of the train split; test splits are read only by
# `m4fw eval`. Few-shot adapters go to <results>/few-shot/ (not committed). A task that fails is
# recorded with its error and the script goes on. Long runs: `nice -n 10 scripts/train-adapters.sh`.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
m4fw="${M4FW:-$root/build/tools/m4fw/m4fw}"
firmware="${M4_FIRMWARE:-$root/firmware/m4-small.m4fw}"
data="$root/data"
adapters="$root/adapters"
results="$root/results"
tasks=""
shots="1 5 10"
few_shot=1
zero_shot=1
few_limit=1000
report_only=0
eval_only=0
train_args=""
while [ $# -gt 0 ]; do
  case "$1" in
    --m4fw) m4fw="$2"; shift 2 ;;
    --firmware) firmware="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --adapters) adapters="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --tasks) tasks="$2"; shift 2 ;;
    --shots) shots="$2"; shift 2 ;;
    --no-few-shot) few_shot=0; shift ;;
    --no-zero-shot) zero_shot=0; shift ;;
    --few-shot-limit) few_limit="$2"; shift 2 ;;
    --report-only) report_only=1; shift ;;
    --eval-only) eval_only=1; shift ;;
    --train-args) train_args="$2"; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "train-adapters.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x "$m4fw" ] || { echo "train-adapters.sh: no m4fw at $m4fw (build it, or pass --m4fw)" >&2; exit 2; }
[ -f "$firmware" ] || { echo "train-adapters.sh: no firmware at $firmware" >&2; exit 2; }
if [ -z "$tasks" ]; then
  # Every built benchmark task (the pretraining corpus is not one).
  tasks="$(cd "$data" && for m in */manifest.json; do d="${m%/manifest.json}"; [ "$d" = pretrain ] || echo "$d"; done)"
fi
mkdir -p "$adapters" "$results/plans" "$results/evals" "$results/logs" "$results/few-shot"
start_all=$(date +%s.%N)

# run NAME OUTFILE -- COMMAND…: runs the command, stdout to OUTFILE, stderr to the task's log;
# records the wall time and the command line in <results>/logs/NAME.meta.
run() {
  local name="$1" out="$2"
  shift 3
  local t0 t1 rc
  t0=$(date +%s.%N)
  "$@" > "$out" 2> "$results/logs/$name.log"
  rc=$?
  t1=$(date +%s.%N)
  printf '{"rc": %d, "seconds": %s, "command": "%s"}\n' "$rc" "$(awk "BEGIN { printf \"%.3f\", $t1 - $t0 }")" \
    "$(echo "$*" | sed -e "s|^$m4fw |m4fw |" -e "s|$root/||g" -e 's|"|\\"|g')" > "$results/logs/$name.meta"
  [ "$rc" -eq 0 ] || echo "  FAILED ($name, exit $rc): $(tail -n 1 "$results/logs/$name.log")" >&2
  return "$rc"
}

if [ "$report_only" -eq 0 ]; then
  for t in $tasks; do
    plan="$results/plans/$t.json"
    if ! "$m4fw" eval --plan --task "$t" --data "$data" --firmware "$firmware" > "$plan" 2> "$results/logs/$t.plan.log"; then
      echo "$t: no plan: $(cat "$results/logs/$t.plan.log")" >&2
      continue
    fi
    field() { /usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$plan" "$1"; }
    limit=$(field eval_limit)
    limit_arg=()
    [ "$limit" -gt 0 ] && limit_arg=(--limit "$limit")
    # aud.tts is scored by this firmware's own keyword / digit recognisers (trained above: aud.* sort first).
    [ "$t" = aud.tts ] && limit_arg+=(--recognisers "$adapters/aud.kws.m4a,$adapters/aud.digits.m4a")
    echo "== $t ($(field approach))"
    if { [ "$eval_only" -eq 1 ] && [ -f "$adapters/$t.m4a" ]; } ||
      run "$t.train" /dev/null -- "$m4fw" adapter train --task "$t" --data "$data" --firmware "$firmware" \
        --out "$adapters/$t.m4a" --progress off $train_args; then
      run "$t.test" "$results/evals/$t.test.json" -- "$m4fw" eval --adapter "$adapters/$t.m4a" --task "$t" \
        --data "$data" --firmware "$firmware" "${limit_arg[@]}" --json
      # Further held-out splits (aud.digits: test_real, real recordings).
      for split in $(/usr/bin/python3 -c "import json,sys; print(' '.join(k for k in json.load(open(sys.argv[1]))['splits'] if k.startswith('test') and k != 'test'))" "$data/$t/manifest.json"); do
        run "$t.$split" "$results/evals/$t.$split.json" -- "$m4fw" eval --adapter "$adapters/$t.m4a" --task "$t" \
          --split "$split" --data "$data" --firmware "$firmware" --json
      done
    fi
    if [ "$zero_shot" -eq 1 ] && [ "$(field zero_shot)" = "True" ]; then
      run "$t.zero" "$results/evals/$t.zero.json" -- "$m4fw" eval --zero-shot --task "$t" --data "$data" \
        --firmware "$firmware" --json
    fi
    if [ "$few_shot" -eq 1 ] && [ "$(field few_shot)" = "True" ]; then
      for k in $shots; do
        { [ "$eval_only" -eq 1 ] && [ -f "$results/few-shot/$t.${k}shot.m4a" ]; } ||
          run "$t.${k}shot.train" /dev/null -- "$m4fw" adapter train --task "$t" --shots "$k" --data "$data" \
          --firmware "$firmware" --out "$results/few-shot/$t.${k}shot.m4a" --progress off $train_args &&
          run "$t.${k}shot" "$results/evals/$t.${k}shot.json" -- "$m4fw" eval \
            --adapter "$results/few-shot/$t.${k}shot.m4a" --task "$t" --data "$data" --firmware "$firmware" \
            --limit "$few_limit" --json
      done
    fi
  done
fi
total=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $start_all }")

# ---- the report: results.json + results.md ----------------------------------------------------
/usr/bin/python3 - "$results" "$adapters" "$firmware" "$root" "$total" "$shots" "$report_only" <<'EOF'
import json, os, sys, glob, datetime
results, adapters, firmware, root, total, shots, report_only = sys.argv[1:8]
shots = shots.split()
rel = lambda p: os.path.relpath(p, root) if os.path.abspath(p).startswith(root + "/") else p

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def meta(name):
    return load(f"{results}/logs/{name}.meta") or {}

rows = []
for plan_file in sorted(glob.glob(f"{results}/plans/*.json")):
    plan = load(plan_file)
    if not plan:
        continue
    t = plan["task"]
    test = load(f"{results}/evals/{t}.test.json")
    ad = f"{adapters}/{t}.m4a"
    row = {"task": t, "group": plan["group"], "kind": plan["kind"], "path": plan["path"],
           "approach": plan["approach"], "metric": plan["metrics"][0],
           "higher_is_better": plan["higher_is_better"], "train_settings": plan["train"],
           "adapter": rel(ad), "adapter_bytes": os.path.getsize(ad) if os.path.exists(ad) else None,
           "train_seconds": meta(f"{t}.train").get("seconds"),
           "train_command": meta(f"{t}.train").get("command"),
           "test_command": meta(f"{t}.test").get("command")}
    if test:
        row.update({"score": test["score"], "chance": test["chance"], "chance_rule": test["chance_rule"],
                    "metric": test["metric"], "test_examples": test["examples"], "test_total": test["of"],
                    "extra": test.get("extra", {}), "samples": test.get("samples", []),
                    "fingerprint": test.get("fingerprint"), "eval_seconds": test.get("seconds")})
    else:
        err = f"{results}/logs/{t}.train.log"
        row["error"] = open(err).read().strip().splitlines()[-1] if os.path.exists(err) and os.path.getsize(err) else "not run"
    adm = None
    if os.path.exists(ad):
        # The adapter's own validation score (manifest), for the table.
        try:
            with open(ad, "rb") as f:
                head = f.read(40)
                n = int.from_bytes(head[8:16], "little")
                f.seek(40)
                adm = json.loads(f.read(n))
        except (OSError, ValueError):
            adm = None
    if adm and "validation" in adm.get("metrics", {}):
        row["validation"] = adm["metrics"]["validation"].get("score")
    for e in sorted(glob.glob(f"{results}/evals/{t}.test_*.json")):
        x = load(e)
        if x:
            row.setdefault("other_splits", {})[x["split"]] = {"score": x["score"], "chance": x["chance"], "examples": x["examples"]}
    zs = load(f"{results}/evals/{t}.zero.json")
    if zs:
        row["zero_shot"] = zs["score"]
        row["zero_shot_chance"] = zs["chance"]
    fs = {}
    for k in shots:
        e = load(f"{results}/evals/{t}.{k}shot.json")
        if e:
            fs[k] = {"score": e["score"], "examples": e["examples"], "chance": e["chance"]}
    if fs:
        row["few_shot"] = fs
    rows.append(row)

def verdict(r):
    # The share of the headroom above chance that the adapter gained: (score − chance) / (best − chance)
    # for higher-is-better metrics (best 1, or 100 for chrF), (chance − score) / chance for mae / wer.
    s, c = r["score"], r["chance"]
    if r["higher_is_better"]:
        gain = (s - c) / max(1e-9, (100.0 if r["metric"].endswith("chrf") else 1.0) - c)
    else:
        gain = (c - s) / max(1e-9, c)
    r["gain_over_chance"] = gain
    return "below chance" if gain < -0.05 else "near chance" if gain < 0.05 else ""

for r in rows:
    r["note"] = verdict(r) if "score" in r else r.get("error", "not run")

fw_bytes = os.path.getsize(firmware)
ad_bytes = sum(r["adapter_bytes"] or 0 for r in rows)
summary = {"firmware": rel(firmware), "firmware_bytes": fw_bytes, "adapters": len([r for r in rows if r.get("adapter_bytes")]),
           "adapter_bytes_total": ad_bytes, "firmware_plus_adapters_bytes": fw_bytes + ad_bytes,
           "wall_seconds_this_run": float(total) if report_only == "0" else None,
           "train_seconds_total": sum(float(m.get("seconds") or 0) for m in
                                      (load(f) or {} for f in glob.glob(f"{results}/logs/*.train.meta"))),
           "eval_seconds_total": sum(float(m.get("seconds") or 0) for m in
                                     (load(f) or {} for f in glob.glob(f"{results}/logs/*.meta") if not f.endswith(".train.meta"))),
           "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
with open(f"{results}/results.json", "w") as f:
    json.dump({"summary": summary, "tasks": rows}, f, indent=1)

def fmt(v, metric):
    if v is None:
        return "–"
    if metric.endswith("mae") or metric.endswith("chrf"):
        return f"{v:.2f}"
    return f"{v:.3f}"

lines = ["| task | group | metric | m4: firmware + adapter (test) | chance | validation | adapter bytes | zero-shot | "
         + " / ".join(f"{k}-shot" for k in shots) + " | note |",
         "|---|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    m = r["metric"]
    fs = r.get("few_shot", {})
    few = " / ".join(fmt(fs[k]["score"], m) if k in fs else "–" for k in shots)
    score = fmt(r.get("score"), m)
    if r.get("test_examples") and r.get("test_total") and r["test_examples"] < r["test_total"]:
        score += f" ({r['test_examples']} of {r['test_total']})"
    for sp, x in r.get("other_splits", {}).items():
        r["note"] = (r["note"] + "; " if r["note"] else "") + f"{sp}: {fmt(x['score'], m)} on {x['examples']}"
    lines.append(f"| {r['task']} | {r['group']} | {m}{'' if r['higher_is_better'] else ' ↓'} | {score} | "
                 f"{fmt(r.get('chance'), m)} | {fmt(r.get('validation'), m)} | {r['adapter_bytes'] or '–'} | "
                 f"{fmt(r.get('zero_shot'), m)} | {few} | {r['note']} |")
lines.append("")
lines.append(f"Firmware {summary['firmware']}: {fw_bytes} bytes; {summary['adapters']} adapters: {ad_bytes} bytes; "
             f"firmware + all adapters: {fw_bytes + ad_bytes} bytes.")
if summary["wall_seconds_this_run"] is not None:
    lines.append(f"Wall time of this run: {float(total) / 60:.1f} min.")
lines.append("")
lines.append("Commands (defaults from each task's plan; `m4fw eval --plan --task T` prints it):")
lines.append("")
for r in rows:
    if r.get("train_command"):
        lines.append(f"- {r['task']}: `{r['train_command']}` then `{r.get('test_command') or '–'}`")
text = "\n".join(lines) + "\n"
with open(f"{results}/results.md", "w") as f:
    f.write(text)
print(text)
EOF
