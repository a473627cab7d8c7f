#!/usr/bin/env python3
"""Prints the task table of docs/benchmark.md from the manifests of a built data directory.

    /usr/bin/python3 scripts/benchmark-table.py [data]

Every figure comes from the manifests `m4fw data build` wrote (counts, sizes, build seconds)."""
import json
import os
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "data"
rows, total_s, total_b = [], 0.0, 0
tasks = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "manifest.json")))
order = {"image": 0, "text": 1, "audio": 2, "imu": 3, "multimodal": 4, "pretrain": 5}
manifests = [json.load(open(os.path.join(root, t, "manifest.json"))) for t in tasks]
manifests.sort(key=lambda m: (order.get(m["group"], 9), m["task"]))
print("| task | group | kind / metric | path | classes | train | test | held out | sources (Debian) | provenance | build s |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for m in manifests:
    sp = m["splits"]
    size = sum(s["bytes"] for s in sp.values())
    total_s += m.get("build_seconds", 0)
    total_b += size
    if m["task"] == "pretrain":
        train = ", ".join("%s %d" % (k, v["count"]) for k, v in sorted(sp.items()))
        test = "—"
    else:
        train = str(sum(v["count"] for k, v in sp.items() if not k.startswith("test")))
        test = " + ".join("%d" % v["count"] + ("" if k == "test" else " (%s)" % k) for k, v in sorted(sp.items()) if k.startswith("test"))
    pk = ", ".join(sorted({s["package"] for s in m.get("sources", [])}))
    if len(pk) > 60:
        pk = pk[:57] + "…"
    n_labels = len(m.get("labels", [])) or "—"
    print("| %s | %s | %s / %s | %s | %s | %s | %s | %s | %s | %s | %.1f |" % (
        m["task"], m["group"], m.get("kind", "—"), m.get("metric", "—"), m.get("path_hint", "—"), n_labels, train, test,
        m.get("held_out", "").replace("|", "/"), pk, m.get("provenance", ""), m.get("build_seconds", 0)))
print()
print("%d manifests; %.1f MiB on disk; sum of per-task build times %.0f s (%.1f min)" % (len(manifests), total_b / 2**20, total_s, total_s / 60))
