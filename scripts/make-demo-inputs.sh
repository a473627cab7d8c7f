#!/usr/bin/env bash
# Applies the demo's selection rule (examples/demo/demo.json, "rule"): exports each item's input
# from the TEST split of a built benchmark data directory — the first example with the item's
# label, or the split's first example — and writes the input, prompt and truth back into
# demo.json. Every input is an example no adapter and no pretraining step has seen.
# Items of generated outputs: "select": {"text_from": "target" | "prompt"} takes the input text
# from the example's target (aud.tts: the word to speak) or prompt (img.draw_scene: the scene
# description) instead of its payload; "select": {"reduce": F} exports an image box-averaged by F
# (img.super_resolution's input, `m4fw data export --reduce`).
#   scripts/make-demo-inputs.sh [DATA_DIR]      (needs `m4fw data build` of the items' tasks)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-data}
/usr/bin/python3 - "$data" build/tools/m4fw/m4fw examples/demo <<'PY'
import json, os, subprocess, sys, tempfile
data, m4fw, out = sys.argv[1:4]
spec_path = os.path.join(out, "demo.json")
spec = json.load(open(spec_path))
for item in spec["items"]:
    sel = item["select"]
    text = item.get("kind") == "text"
    text_from = sel.get("text_from")  # the input text is the example's target or prompt
    target = tempfile.mktemp(suffix=".txt") if text else os.path.join(out, item["input"])
    cmd = [m4fw, "data", "export", sel["task"], "--split", sel["split"], "--dir", data, "--out", target]
    cmd += ["--first-label", sel["label"]] if "label" in sel else ["--index", "0"]
    cmd += ["--reduce", str(sel["reduce"])] if "reduce" in sel else []
    got = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    if text_from:
        item["input"] = got[text_from]
        os.unlink(target)
    elif text:
        item["input"] = open(target, encoding="utf-8").read()
        os.unlink(target)
    truth = got.get("label", got.get("target", ""))
    if truth or "truth" in item:
        item["truth"] = truth
    if got.get("prompt") and text_from != "prompt":
        item["prompt"] = got["prompt"]
    item["select"]["index"] = got["index"]
    print("%-18s %-9s #%-5d truth %s" % (sel["task"], sel["split"], got["index"], item.get("truth", "")))
with open(spec_path, "w", encoding="utf-8") as f:
    f.write(json.dumps(spec, indent=1, ensure_ascii=False) + "\n")
PY
