#!/usr/bin/env bash
# Input-shape sweep (docs/training.md, "Input shapes"): for each candidate shape of one modality, a
# random-weight firmware differing from FIRMWARE only in that shape (`m4fw init`, same tokenizer),
# then the task-specific baseline of a task trained from scratch with that firmware's front end
# (`m4fw baseline train`, one variant) and scored on the VALIDATION share of the train split. The
# test split is not used to choose (the baseline command scores one test example, ignored here).
#
#   scripts/input-shapes.sh OUT TASK LR STEPS DATA SHAPE…
#     SHAPE = NAME:MODALITY:FIELD=VALUE[:FIELD=VALUE…], e.g. img48p4:image:image_size=48:patch_size=4
#   scripts/input-shapes.sh /tmp/shapes img.font_family 1e-3 1000 data img32p4:image:image_size=32 \
#       img48p4:image:image_size=48 img64p4:image:image_size=64
#   scripts/input-shapes.sh --table OUT                     # one line per (task, shape) run under OUT
#
# Environment: M4FW (default build/tools/m4fw/m4fw), FIRMWARE (default firmware/m4-tiny.m4fw),
# SEED (the baseline's initialisation and data seed, default 1; use another OUT per seed).
set -euo pipefail
cd "$(dirname "$0")/.."
m4fw="${M4FW:-build/tools/m4fw/m4fw}"
fw="${FIRMWARE:-firmware/m4-tiny.m4fw}"

if [ "${1:-}" = "--table" ]; then
  /usr/bin/python3 - "$2" <<'EOF'
import glob, json, os, sys
for f in sorted(glob.glob(os.path.join(sys.argv[1], "runs", "*", "*.json"))):
    r = json.load(open(f))
    if "tuning" not in r:
        continue
    shape = os.path.basename(os.path.dirname(f)).split("@")[1]
    for v in r["tuning"]["variants"]:
        print(f"{r['task']:16s} {shape:10s} size {v['size']} lr {v['lr']:.0e} steps {v['steps']:5d} "
              f"validation {r['metric']} {v['validation']:.4f} on {v['validation_examples']} examples, "
              f"{v['train_seconds']:.1f} s of training")
EOF
  exit 0
fi
if [ $# -lt 6 ]; then
  sed -n 2,14p "$0"
  exit 3
fi
out="$1" task="$2" lr="$3" steps="$4" data="$5"
shift 5
mkdir -p "$out/fw" "$out/runs"
for spec in "$@"; do
  name="${spec%%:*}"
  # The firmware's header with the one shape changed, and its tokenizer, as an `m4fw init` config.
  /usr/bin/python3 - "$fw" "$spec" "$out/fw" <<'EOF'
import json, struct, sys
fw, spec, out = sys.argv[1:4]
name, modality, *fields = spec.split(":")
d = open(fw, "rb").read()
hl, dl, do, _ = struct.unpack_from("<QQQQ", d, 8)
h = json.loads(d[40:40 + hl])
pos = 40 + hl
(n,) = struct.unpack_from("<I", d, pos)
pos += 4
for _ in range(n):  # the tensor directory (docs/formats.md): find tokenizer.model
    (nl,) = struct.unpack_from("<H", d, pos)
    tname = d[pos + 2:pos + 2 + nl].decode()
    pos += 2 + nl
    nd = d[pos + 1]
    pos += 2 + 8 * nd
    off, nb = struct.unpack_from("<QQ", d, pos)
    pos += 16
    if tname == "tokenizer.model":
        open(f"{out}/tokenizer.model", "wb").write(d[do + off:do + off + nb])
c = {k: h[k] for k in ("format", "embed_dim", "text", "backbone", "encoders")}
c.update(name="shape-" + name, version="0", tokenizer={"model": f"{out}/tokenizer.model"})
for f in fields:
    k, v = f.split("=")
    c["encoders"][modality][k] = int(v)
json.dump(c, open(f"{out}/{name}.json", "w"), indent=1)
EOF
  "$m4fw" init --config "$out/fw/$name.json" --out "$out/fw/$name.m4fw" > /dev/null
  run="$out/runs/$task@$name"
  "$m4fw" baseline train --task "$task" --data "$data" --firmware "$out/fw/$name.m4fw" --grid "s:$lr" \
    --steps "$steps" --test-limit 1 --seed "${SEED:-1}" --model-dir "$run/models" --out-dir "$run" --work-dir "$run/work" --quiet \
    > "$run.log" 2>&1 || { echo "$task $name: failed (see $run.log)"; cat "$run.log"; exit 1; }
done
"$0" --table "$out" | grep "^$task "
