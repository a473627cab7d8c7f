#!/usr/bin/env bash
# `m4fw data` end to end on a small subset (one task per group + the pretraining corpus):
# build, cache hit on the second build, audit, and the message for a missing Debian package.
# Exit 77 (CTest SKIP) when the benchmark sources are not installed.
set -euo pipefail
m4fw="$1"
work="$2"
rm -rf "$work"
mkdir -p "$work"
tasks="img.char_ocr txt.topic aud.kws imu.har mm.vqa pretrain"
"$m4fw" data list > "$work/sources.log"
if grep -E "^(img.char_ocr|txt.topic|aud.kws|imu.har|mm.vqa|pretrain) " "$work/sources.log" | grep -q MISSING; then
  echo "SKIP: benchmark sources missing (scripts/install-deps.sh installs them)"
  exit 77
fi
start=$(date +%s)
"$m4fw" data build $tasks --dir "$work/d" --scale 0.02 2> "$work/build1.log"
grep -q "done in" "$work/build1.log"
"$m4fw" data build $tasks --dir "$work/d" --scale 0.02 2> "$work/build2.log"
test "$(grep -c 'cached' "$work/build2.log")" -eq 6 || { cat "$work/build2.log"; exit 1; }
"$m4fw" data audit --dir "$work/d" | tee "$work/audit.log"
grep -q " 0 leaks" "$work/audit.log"
# Output goes to a file first: with pipefail, `producer | grep -q` fails when grep exits early.
"$m4fw" data show mm.vqa --dir "$work/d" --split test -n 2 > "$work/show.log"
grep -q prompt "$work/show.log"
# export --first-label: the split's first example with that label (the demo's selection rule).
"$m4fw" data export imu.har --split test --first-label running --dir "$work/d" --out "$work/run.csv" > "$work/first.json"
/usr/bin/python3 - "$work/first.json" "$m4fw" "$work" <<'PY'
import json, subprocess, sys
got = json.load(open(sys.argv[1]))
assert got["label"] == "running", got
for i in range(got["index"]):  # no earlier example of the split is labelled running
    e = json.loads(subprocess.run([sys.argv[2], "data", "export", "imu.har", "--split", "test", "--index", str(i),
                                   "--dir", sys.argv[3] + "/d", "--out", sys.argv[3] + "/x.csv"],
                                  check=True, capture_output=True, text=True).stdout)
    assert e["label"] != "running", (i, e)
PY
test -s "$work/run.csv"
set +e
"$m4fw" data export imu.har --split test --first-label flying --dir "$work/d" --out "$work/x.csv" 2> "$work/nolabel.log"
rc=$?
set -e
test "$rc" -ne 0 || { echo "export --first-label flying: expected a failure"; exit 1; }
grep -q "no label 'flying'" "$work/nolabel.log" || { cat "$work/nolabel.log"; exit 1; }
echo "small build + audit: $(( $(date +%s) - start )) s"

# A missing source package is named, with the apt-get line; nothing is installed.
printf 'Package: bash\nStatus: install ok installed\nVersion: 5\n\n' > "$work/status"
set +e
M4_DPKG_STATUS="$work/status" "$m4fw" data build img.fashion_mnist --dir "$work/d2" 2> "$work/missing.log"
rc=$?
set -e
test "$rc" -eq 4 || { echo "expected exit 4, got $rc"; cat "$work/missing.log"; exit 1; }
grep -q "apt-get install dataset-fashion-mnist" "$work/missing.log" || { cat "$work/missing.log"; exit 1; }
M4_DPKG_STATUS="$work/status" "$m4fw" data list > "$work/list.log"
grep -q "MISSING" "$work/list.log"
set +e
"$m4fw" data build no.such_task --dir "$work/d" 2> "$work/unknown.log"
rc=$?
set -e
# Two separate checks: under set -e, `test … && grep …` never fails the script.
test "$rc" -eq 4 || { echo "data build no.such_task: expected exit 4, got $rc"; cat "$work/unknown.log"; exit 1; }
grep -q "unknown task" "$work/unknown.log" || { echo "expected 'unknown task' in:"; cat "$work/unknown.log"; exit 1; }
echo "data_cli: ok"
