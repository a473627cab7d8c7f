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
# export --reduce F: the image box-averaged by F (rounded mean of each F×F block, img.super_resolution's
# degradation), grey replicated to RGB; other sizes and modalities are refused.
"$m4fw" data export mm.vqa --split test --index 0 --dir "$work/d" --out "$work/vqa.png" > /dev/null
"$m4fw" data export mm.vqa --split test --index 0 --reduce 4 --dir "$work/d" --out "$work/vqa4.png" > "$work/red.json"
"$m4fw" data export img.char_ocr --split test --index 0 --dir "$work/d" --out "$work/ch.png" > /dev/null
"$m4fw" data export img.char_ocr --split test --index 0 --reduce 2 --dir "$work/d" --out "$work/ch2.png" > /dev/null
/usr/bin/python3 - "$work" <<'PY'
import json, struct, sys, zlib
def read_png(path):  # 8-bit grey or RGB, non-interlaced (what stb writes) → (w, h, channels, rows)
    b = open(path, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", path
    pos, idat = 8, b""
    while pos < len(b):
        n, t = struct.unpack(">I4s", b[pos:pos + 8])
        d = b[pos + 8:pos + 8 + n]
        if t == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", d[:10])
            assert depth == 8 and ctype in (0, 2), (depth, ctype)
        if t == b"IDAT":
            idat += d
        pos += 12 + n
    c = 1 if ctype == 0 else 3
    raw, rows, prev = zlib.decompress(idat), [], bytearray(w * c)
    for y in range(h):
        f, row = raw[y * (w * c + 1)], bytearray(raw[y * (w * c + 1) + 1:(y + 1) * (w * c + 1)])
        for i in range(len(row)):
            a = row[i - c] if i >= c else 0
            up, ul = prev[i], prev[i - c] if i >= c else 0
            if f == 1: row[i] = (row[i] + a) & 255
            elif f == 2: row[i] = (row[i] + up) & 255
            elif f == 3: row[i] = (row[i] + (a + up) // 2) & 255
            elif f == 4:
                p = a + up - ul
                pa, pb, pc = abs(p - a), abs(p - up), abs(p - ul)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else up if pb <= pc else ul)) & 255
        rows.append(row)
        prev = row
    return w, h, c, rows
def check(orig, small, f):
    w, h, c, big = read_png(orig)
    sw, sh, sc, red = read_png(small)
    assert (sw, sh, sc) == (w // f, h // f, 3), (sw, sh, sc)
    for y in range(sh):
        for x in range(sw):
            for k in range(3):
                s = sum(big[y * f + j][(x * f + i) * c + (k if c == 3 else 0)] for j in range(f) for i in range(f))
                assert red[y][x * 3 + k] == (s + f * f // 2) // (f * f), (orig, x, y, k)
work = sys.argv[1]
check(work + "/vqa.png", work + "/vqa4.png", 4)
check(work + "/ch.png", work + "/ch2.png", 2)
assert json.load(open(work + "/red.json"))["reduced_by"] == 4
PY
set +e
"$m4fw" data export mm.vqa --split test --index 0 --reduce 3 --dir "$work/d" --out "$work/x.png" 2> "$work/red3.log"
rc3=$?
"$m4fw" data export imu.har --split test --index 0 --reduce 2 --dir "$work/d" --out "$work/x.csv" 2> "$work/redimu.log"
rci=$?
set -e
test "$rc3" -ne 0 && grep -q "a 64x64x3 image cannot be reduced by 3" "$work/red3.log" || { cat "$work/red3.log"; exit 1; }
test "$rci" -ne 0 && grep -q "reduce applies to images only" "$work/redimu.log" || { cat "$work/redimu.log"; exit 1; }
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
