#!/usr/bin/env python3
"""Two firmwares' adapter results, task by task (docs/results.md, "Against m4-tiny").

    /usr/bin/python3 scripts/compare-results.py results/m4-tiny/results.json results/results.json

Reads the two results.json that scripts/train-adapters.sh writes and prints a Markdown table: chance,
the first file's score, the second's, Δ oriented so that > 0 means the second is better, and the
second's adapter size; a task whose plan (train settings) differs between the two is marked *. The
last line counts the tasks better, within 1 point (0.01 of a [0, 1] metric, 1 chrF point, 1 % of
the first file's MAE) and worse. Tasks the first file lacks (no decoder there) are listed, not counted.
"""
import json
import sys


def load(path):
    with open(path) as f:
        return {t["task"]: t for t in json.load(f)["tasks"]}


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    first, second = load(argv[1]), load(argv[2])
    print("| task | metric | chance | first + adapter | second + adapter | Δ | adapter KB (second) |")
    print("|---|---|---|---|---|---|---|")
    better = within = worse = 0
    for task in sorted(second):
        b, a = second[task], first.get(task)
        if b.get("score") is None:
            continue
        higher = b.get("higher_is_better", True)
        metric = b["metric"] + ("" if higher else " ↓")
        wide = b["metric"] in ("chrf", "mae", "psnr")
        fmt = (lambda v: f"{v:.2f}") if wide else (lambda v: f"{v:.3f}")
        kb = (b.get("adapter_bytes") or 0) // 1024
        if a is None or a.get("score") is None:
            print(f"| {task} | {metric} | {fmt(b['chance'])} | – (not in the first) | {fmt(b['score'])} | – | {kb} |")
            continue
        delta = (b["score"] - a["score"]) * (1 if higher else -1)
        point = 1.0 if b["metric"] == "chrf" else 0.01 * a["score"] if b["metric"] == "mae" else 0.01
        if delta > point:
            better += 1
        elif delta >= -point:
            within += 1
        else:
            worse += 1
        mark = "" if b.get("train_settings") == a.get("train_settings") else " *"
        print(f"| {task}{mark} | {metric} | {fmt(b['chance'])} | {fmt(a['score'])} | {fmt(b['score'])} | {delta:+.3f} | {kb} |")
    print(f"\nbetter {better}, within 1 point {within}, worse {worse}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
