#!/usr/bin/env bash
# eAIBench end to end on two tasks at --scale 0.05 (scripts/eaibench.sh), on m4-tiny (fast): m4's score with the
# committed adapters, a task-specific baseline trained here (a tiny grid, so it takes seconds),
# the report and its figures built from what was trained; the baseline files reproduce their score
# through `m4fw eval`; a rerun skips both tasks; bad input (another firmware, a stale data
# manifest, a missing baseline) is marked in the report and left out of the parity count.
#   test_eaibench.sh M4FW REPO_ROOT WORKDIR
set -uo pipefail
m4fw=$(realpath "$1") repo=$(realpath "$2") work=$3
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
tasks="imu.har txt.topic"
"$m4fw" data build $tasks --dir "$work/data" --scale 0.05 -q || fail "data build"
run() {
  M4FW="$m4fw" "$repo/scripts/eaibench.sh" --data "$work/data" --tasks "$tasks" --results "$work/results" \
    --firmware "$repo/firmware/m4-tiny.m4fw" --adapters "$repo/adapters/m4-tiny" --out "$work/eaibench.md" --figures "$work/figures" --models "$work/models" \
    --work "$work/variants" --baseline-args "--grid s:3e-3,s:1e-2 --steps 40 --sizes s:32:1:64:1 --val-limit 60 --quiet" "$@"
}
run --measure --ks 1,3 > "$work/run1.log" 2>&1 || { cat "$work/run1.log"; fail "eaibench.sh (first run)"; }
grep -q "baselines trained 2, current 0, failed 0" "$work/run1.log" || { cat "$work/run1.log"; fail "two baselines trained"; }
grep -q "wall time" "$work/run1.log" || fail "no wall time printed"
md="$work/eaibench.md"
[ -s "$md" ] || fail "no report"
grep -q "Parity: [0-9]* of 2 compared tasks" "$md" || { cat "$md"; fail "the parity line counts 2 compared tasks"; }
[ -s "$work/results/baselines/imu.har.classic.json" ] || fail "no logistic regression for imu.har"
[ ! -e "$work/results/baselines/txt.topic.classic.json" ] || fail "a logistic regression for a text task"
grep "^| imu.har |" "$md" | awk -F'|' '{ exit !($8 ~ /[0-9]\.[0-9]+/) }' || fail "no logistic-regression column for imu.har"
for t in $tasks; do
  row=$(grep "^| $t |" "$md") || fail "no row for $t"
  # m4 and task-specific columns hold numbers
  awk -F'|' '{ exit !($5 ~ /[0-9]\.[0-9]+/ && $6 ~ /[0-9]\.[0-9]+/) }' <<<"$row" || fail "row without scores: $row"
  bl="$work/results/baselines/$t.json"
  [ -s "$bl" ] || fail "no $bl"
  # the baseline's files reproduce its recorded test score through the same eval code
  /usr/bin/python3 - "$bl" "$work/data/$t/manifest.json" "$m4fw" "$work/data" <<'PY' || fail "$t: baseline record"
import hashlib, json, subprocess, sys
r = json.load(open(sys.argv[1]))
sha = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
assert r["data"]["manifest_sha256"] == sha, "data fingerprint"
assert r["tuning"]["variant_count"] == 2 and len(r["tuning"]["variants"]) == 2, "two variants"
assert all(v["steps"] == 40 for v in r["tuning"]["variants"]), "steps"
m = r["model"]
out = subprocess.run([sys.argv[3], "eval", "--firmware", m["firmware"], "--adapter", m["adapter"], "--task", r["task"],
                      "--data", sys.argv[4], "--json"], capture_output=True, text=True, check=True).stdout
e = json.loads(out)
assert e["fingerprint"] == m["fingerprint"], "model fingerprint"
assert abs(e["score"] - r["score"]) < 1e-12, f"eval {e['score']} vs recorded {r['score']}"
assert e["examples"] == r["test"]["examples"] > 0
print(f"{r['task']}: task-specific {r['metric']} {r['score']:.3f} reproduced by m4fw eval ({e['examples']} examples)")
PY
done
# measured memory (k = 3 > 2 tasks: a file copy) and latency, from /proc and the clock
/usr/bin/python3 - "$work/results/resources.json" <<'PY' || fail "resources.json"
import json, sys
r = json.load(open(sys.argv[1]))
assert [m["k"] for m in r["memory"]] == [1, 3], r["memory"]
for m in r["memory"]:
    for key in ("m4", "separate", "one_process"):
        assert m[key + "_pss_kib"] > 0 and m[key + "_rss_kib"] >= m[key + "_pss_kib"], (key, m)
assert r["memory"][1]["separate_rss_kib"] > r["memory"][0]["separate_rss_kib"], "3 processes hold more than 1"
assert sorted(x["task"] for x in r["latency"]) == ["imu.har", "txt.topic"]
assert all(x["m4_median_ms"] > 0 and x["ts_p99_ms"] >= x["ts_median_ms"] > 0 for x in r["latency"])
# the m4 side through m4fwd: a daemon per k, its own /proc numbers, and latency through the socket
assert [m["k"] for m in r["service_memory"]] == [1, 3], r.get("service_memory")
assert all(m["rss_kib"] >= m["pss_kib"] > 0 and m["hwm_kib"] > 0 for m in r["service_memory"]), r["service_memory"]
assert sorted(x["task"] for x in r["service_latency"]) == ["imu.har", "txt.topic"]
assert all(x["p99_ms"] >= x["median_ms"] > 0 for x in r["service_latency"])
PY
grep -q "^## Memory serving k tasks" "$md" || fail "no memory table in the report"
grep -q "^## Operator types" "$md" || fail "no operator types in the report"
grep -q "^## Memory serving k tasks through m4fwd" "$md" || fail "no m4fwd memory table in the report"
grep -q "^## Per-request latency through m4fwd" "$md" || fail "no m4fwd latency table in the report"
for f in eaibench-delta eaibench-storage eaibench-memory eaibench-latency; do
  for ext in png svg; do [ -s "$work/figures/$f.$ext" ] || fail "figure $f.$ext missing"; done
  head -c 8 "$work/figures/$f.png" | grep -q PNG || fail "$f.png is not a PNG"
done

# resumable: a second run trains nothing
run > "$work/run2.log" 2>&1 || { cat "$work/run2.log"; fail "eaibench.sh (second run)"; }
grep -q "baselines trained 0, current 2, failed 0" "$work/run2.log" || { cat "$work/run2.log"; fail "rerun retrained"; }

# bad input: another firmware, a stale data manifest, a missing baseline → marked, not counted
fp=$("$m4fw" inspect "$repo/firmware/m4-tiny.m4fw" | sed -n 's/^fingerprint: *//p' | head -1)
report() {
  /usr/bin/python3 "$repo/scripts/eaibench-report.py" --results "$work/results" --firmware-fingerprint "$fp" \
    --data "$work/data" --out "$work/bad.md" --figures "$work/badfig" --root "$repo"
}
bl="$work/results/baselines/imu.har.json"
cp "$bl" "$work/keep.json"
/usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); r['m4_firmware']['fingerprint']='0'*64; json.dump(r,open(sys.argv[1],'w'))" "$bl"
report > /dev/null || fail "report (other firmware)"
grep "^| imu.har |" "$work/bad.md" | grep -q "another firmware" || fail "other firmware not marked"
grep -q "Parity: [0-9]* of 1 compared" "$work/bad.md" || fail "other-firmware baseline counted"
cp "$work/keep.json" "$bl"
/usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); r['data']['manifest_sha256']='1'*64; json.dump(r,open(sys.argv[1],'w'))" "$bl"
report > /dev/null || fail "report (stale)"
grep "^| imu.har |" "$work/bad.md" | grep -q "stale baseline" || fail "stale baseline not marked"
rm "$bl"
report > /dev/null || fail "report (missing baseline)"
grep "^| imu.har |" "$work/bad.md" | grep -q "no trained baseline yet" || fail "missing baseline not marked"
grep -q "Parity: [0-9]* of 1 compared" "$work/bad.md" || fail "missing baseline counted"
/usr/bin/python3 "$repo/scripts/eaibench-report.py" --results "$work/nowhere" --firmware-fingerprint "$fp" \
  --out "$work/x.md" --figures "$work/x" 2> "$work/err.log" && fail "a missing results directory was accepted"
grep -q "nowhere/plans: no such directory" "$work/err.log" || { cat "$work/err.log"; fail "error names the directory"; }
# retrieval: a two-tower baseline (encoder + its own text tower, contrastive) trains at a tiny size and
# its files reproduce the recorded score through m4fw eval
"$m4fw" data build mm.retrieval --dir "$work/data" --scale 0.02 -q || fail "data build mm.retrieval"
"$m4fw" baseline train --task mm.retrieval --data "$work/data" --out-dir "$work/r" --model-dir "$work/r" \
  --work-dir "$work/r" --grid s:3e-3 --steps 10 --sizes s:32:1:64:1 --val-limit 30 --quiet > "$work/ret.log" 2>&1 \
  || { cat "$work/ret.log"; fail "retrieval baseline"; }
/usr/bin/python3 - "$work/r/mm.retrieval.json" "$m4fw" "$work/data" <<'PY' || fail "retrieval baseline record"
import json, subprocess, sys
r = json.load(open(sys.argv[1]))
m = r["model"]
assert r["path"] == "encoder" and r["metric"].endswith("recall@5"), (r["path"], r["metric"])
assert m["architecture"]["backbone"]["width"] == 64, "the text tower has the size's decoder width, not the stub"
out = subprocess.run([sys.argv[2], "eval", "--firmware", m["firmware"], "--adapter", m["adapter"], "--task", r["task"],
                      "--data", sys.argv[3], "--json"], capture_output=True, text=True, check=True).stdout
e = json.loads(out)
assert abs(e["score"] - r["score"]) < 1e-12 and e["examples"] == r["test"]["examples"] > 0, (e["score"], r["score"])
print(f"mm.retrieval: task-specific {r['metric']} {r['score']:.3f} reproduced by m4fw eval")
PY
# bad CLI input: a grid naming a size that does not exist
"$m4fw" baseline train --task mm.retrieval --data "$work/data" --out-dir "$work/r" --model-dir "$work/r" \
  --work-dir "$work/r" --grid xl:1e-3 2> "$work/err2.log" && fail "an unknown grid size was accepted"
grep -q "baseline grid: no size named 'xl'" "$work/err2.log" || { cat "$work/err2.log"; fail "unknown size message"; }
echo "eaibench pipeline ok"
