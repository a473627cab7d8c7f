#!/usr/bin/python3
"""eAIBench report: m4 (firmware + adapter) against the task-specific baseline of every task.

Reads ONLY result files (no training, no model runs):
  RESULTS/plans/<task>.json       the task universe: group, metric, direction (m4fw eval --plan)
  RESULTS/evals/<task>.test.json  m4's test score (m4fw eval --json)
  RESULTS/baselines/<task>.json   the task-specific model's test score and files (m4fw baseline train)
  RESULTS/resources.json          optional: measured memory / latency (scripts/eaibench.sh)
and writes the markdown report and the figures (PNG + SVG, matplotlib).

  /usr/bin/python3 scripts/eaibench-report.py --results results --firmware-fingerprint HEX \
      [--firmware-bytes N] [--data data] [--out docs/eaibench.md] [--figures docs/figures] [--root .]

Decoder tasks (plan kind reconstruct / mel_regress / draw: img.super_resolution, aud.tts,
img.draw_scene) are listed in a table of their own and counted apart from the headline parity. Two of
them have no model as baseline (bicubic enlargement; the reference voice through the same
recogniser): their baseline file has "model": null and a "baseline" description, and the storage,
operator and budget sections skip them with a note.

Bad input is marked, never mixed in: a task without a baseline, a result of another firmware
fingerprint, or a baseline whose data manifest differs from the one in --data (stale) gets a mark
in the table and is left out of the parity count and the sums. Exit status 2 names a missing or
unreadable input directory / file.
"""
import argparse
import hashlib
import json
import math
import os
import sys

GROUP_ORDER = ["image", "text", "audio", "imu", "multimodal"]
# Plan kinds of the decoder tasks (issue 18): listed and counted apart from the classification /
# generation tasks of the headline.
DECODER_KINDS = ("reconstruct", "mel_regress", "draw")
# PSNR parity: m4's RMSE within 1 % of the baseline's (the MAE rule in dB): 20·log10(1.01) ≈ 0.086 dB.
PSNR_TOLERANCE_DB = 20 * math.log10(1.01)
GROUP_COLOUR = {"image": "#4c72b0", "text": "#dd8452", "audio": "#55a868", "imu": "#c44e52", "multimodal": "#8172b3"}


def die(msg):
    print(f"eaibench-report: {msg}", file=sys.stderr)
    sys.exit(2)


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        die(f"{path}: not readable JSON ({e})")


def tolerance(metric, baseline):
    """'Within 1 point': 1 percentage point of [0, 1] metrics, 1 chrF point, 1 % of a baseline MAE /
    log-mel L1, and for PSNR 1 % of the baseline's RMSE (20·log10(1.01) dB)."""
    if metric == "chrf":
        return 1.0
    if metric in ("mae", "mel_l1"):
        return 0.01 * abs(baseline)
    if metric == "psnr":
        return PSNR_TOLERANCE_DB
    return 0.01


def file_size(root, path):
    if not path:
        return None
    for p in (path, os.path.join(root, path), os.path.join(root, "adapters", os.path.basename(path))):
        if os.path.isfile(p):
            return os.path.getsize(p)
    return None


def fmt_score(metric, v):
    if v is None:
        return "–"
    return f"{v:.2f}" if metric in ("chrf", "mae", "psnr") else f"{v:.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", default="results")
    ap.add_argument("--firmware-fingerprint", required=True, help="fingerprint of the current m4 firmware")
    ap.add_argument("--firmware-bytes", type=int, default=0, help="size of the m4 firmware file")
    ap.add_argument("--data", default="", help="data directory: baselines whose manifest differs are stale")
    ap.add_argument("--out", default="docs/eaibench.md")
    ap.add_argument("--figures", default="docs/figures")
    ap.add_argument("--root", default=".", help="repository root (adapter / model files named in results)")
    ap.add_argument("--command", default="scripts/eaibench.sh --report-only")
    a = ap.parse_args()

    plans_dir = os.path.join(a.results, "plans")
    if not os.path.isdir(plans_dir):
        die(f"{plans_dir}: no such directory (it lists the tasks: m4fw eval --plan --task T > {plans_dir}/T.json)")
    fp = a.firmware_fingerprint
    rows = []
    # Tasks built under --data that have no plan here were never scored on this firmware (its
    # `m4fw eval --plan` failed: e.g. img.super_resolution on a firmware without an image decoder).
    a.unplanned = []
    if a.data and os.path.isdir(a.data):
        for task in sorted(os.listdir(a.data)):
            if task != "pretrain" and os.path.isfile(os.path.join(a.data, task, "manifest.json")) and \
                    not os.path.isfile(os.path.join(plans_dir, f"{task}.json")):
                a.unplanned.append(task)
                print(f"eaibench-report: {task}: built under {a.data} but no plan in {plans_dir} (not scored on "
                      f"this firmware; m4fw eval --plan --task {task} says why)", file=sys.stderr)
    for name in sorted(os.listdir(plans_dir)):
        if not name.endswith(".json"):
            continue
        plan = load(os.path.join(plans_dir, name))
        task = plan.get("task") or name[:-5]
        metric = plan["metrics"][0]
        higher = bool(plan.get("higher_is_better", True))
        r = {"task": task, "group": plan.get("group", "?"), "metric": metric, "higher": higher, "marks": [],
             "kind": plan.get("kind"), "decoder": plan.get("kind") in DECODER_KINDS}
        ev = load(os.path.join(a.results, "evals", f"{task}.test.json"))
        bl = load(os.path.join(a.results, "baselines", f"{task}.json"))
        r["m4"] = ev["score"] if ev else None
        r["chance"] = ev["chance"] if ev else (bl["chance"] if bl else None)
        r["ev"] = ev
        r["m4_examples"] = ev.get("examples") if ev else None
        r["adapter_bytes"] = file_size(a.root, ev.get("adapter")) if ev else None
        if ev is None:
            r["marks"].append("no m4 result")
        elif ev.get("fingerprint") != fp:
            r["marks"].append(f"m4 result of another firmware ({str(ev.get('fingerprint'))[:12]}…)")
        r["ts"] = bl["score"] if bl else None
        r["bl"] = bl
        r["nn"] = r["ts"]
        r["kept"] = "model"
        cl = load(os.path.join(a.results, "baselines", f"{task}.classic.json"))
        r["lr"] = None
        if cl is not None:
            mpath = os.path.join(a.data, task, "manifest.json") if a.data else ""
            stale = False
            if mpath and os.path.isfile(mpath):
                with open(mpath, "rb") as f:
                    stale = hashlib.sha256(f.read()).hexdigest() != cl.get("data", {}).get("manifest_sha256")
            if stale:
                r["marks"].append("stale logistic regression (not used)")
            elif ev is not None and cl.get("test_examples") != ev.get("examples"):
                r["marks"].append("logistic regression on other test examples (not used)")
            else:
                r["lr"] = cl
                better = r["ts"] is None or (cl["score"] > r["ts"] if higher else cl["score"] < r["ts"])
                if better and bl is not None:
                    r["ts"], r["kept"] = cl["score"], "logistic regression"
        if bl is None:
            r["marks"].append("no baseline" if not os.path.isfile(
                os.path.join(a.results, "baselines", f"{task}.classic.json")) else
                "no trained baseline yet (logistic regression alone is not counted)")
        else:
            if bl.get("m4_firmware", {}).get("fingerprint") != fp:
                r["marks"].append("baseline recorded against another firmware")
            if bl.get("metric") not in (metric, ev.get("metric") if ev else None):
                r["marks"].append(f"baseline metric {bl.get('metric')} ≠ {metric}")
            # The baseline's budget is twice the plan's updates: a plan whose steps moved since
            # the baseline was trained compares against a model of another budget.
            bsteps = bl.get("tuning", {}).get("adapter_plan_steps")
            psteps = plan.get("train", {}).get("steps")
            if not r["decoder"] and bsteps is not None and psteps is not None and bsteps != psteps:
                r["marks"].append(f"stale baseline (trained for a plan of {bsteps} updates, the plan has {psteps})")
            if ev is not None and bl.get("test", {}).get("examples") != ev.get("examples"):
                r["marks"].append(
                    f"different test subsets ({ev.get('examples')} vs {bl.get('test', {}).get('examples')})")
            if a.data:
                mpath = os.path.join(a.data, task, "manifest.json")
                if os.path.isfile(mpath):
                    with open(mpath, "rb") as f:
                        sha = hashlib.sha256(f.read()).hexdigest()
                    if sha != bl.get("data", {}).get("manifest_sha256"):
                        r["marks"].append("stale baseline (data manifest changed)")
        if r["decoder"]:
            decoder_row(r, ev, bl, metric, fp)
        r["ok"] = not r["marks"]
        if r["m4"] is not None and r["ts"] is not None and not r.get("m4_other_metric"):
            r["delta"] = r["m4"] - r["ts"]
            better = r["delta"] if higher else -r["delta"]  # > 0: m4 better
            r["parity"] = better >= -tolerance(metric, r["ts"])
            # A note, not a mark: parity where neither model beats a constant answer says little.
            if r["chance"] is not None:
                def at_chance(x):
                    return x <= r["chance"] + 1e-12 if higher else x >= r["chance"] - 1e-12
                r["both_at_chance"] = at_chance(r["m4"]) and at_chance(r["ts"])
        else:
            r["delta"], r["parity"] = None, None
        rows.append(r)
    if not rows:
        die(f"{plans_dir}: no task plans")

    os.makedirs(a.figures, exist_ok=True)
    figs = draw(rows, a, fp)
    write_md(rows, a, figs)
    ok = [r for r in rows if r["ok"]]
    main_ok, dec_ok = [r for r in ok if not r["decoder"]], [r for r in ok if r["decoder"]]
    print(f"eaibench-report: {len(rows)} tasks, {len(main_ok)} compared, "
          f"{sum(1 for r in main_ok if r['parity'])} at parity; decoder tasks {len(dec_ok)} compared, "
          f"{sum(1 for r in dec_ok if r['parity'])} at parity; wrote {a.out} and {len(figs)} figures under {a.figures}")


def decoder_row(r, ev, bl, metric, fp):
    """A decoder task's row: its 'chance' column (the trivial answer, not the baseline), what the baseline
    is, and the checks a reference baseline (no model, numbers from m4's own eval) needs."""
    x = ev.get("extra", {}) if ev else {}
    if r["kind"] == "reconstruct":
        r["chance"] = None  # the eval's `chance` is the bicubic baseline itself; no trivial answer beside it
    elif r["kind"] == "mel_regress":
        r["chance"] = x.get("guessing", bl.get("chance") if bl else None)
    r["reference"] = bool(bl) and not bl.get("model")
    if bl is None:
        r["what"] = None
    elif r["reference"]:
        r["what"] = bl.get("baseline") or "no model (description missing)"
    else:
        m = bl["model"]
        r["what"] = (f"from-scratch model: {m['size']}, {m['parameters']:,} params, lr {m['lr']:g}, "
                     f"{m['steps']} steps, {(m['firmware_bytes'] + m['adapter_bytes']) / 1e6:.2f} MB")
    if ev is not None and ev.get("metric") != metric:  # e.g. aud.tts scored without its recognisers
        r["marks"].append(f"m4 scored by {ev.get('metric')}, not {metric}")
        r["m4_other_metric"] = ev.get("metric")
    if r["reference"] and ev is not None and ev.get("fingerprint") == fp and \
            abs(bl.get("score", float("nan")) - ev.get("chance", float("nan"))) > 1e-9:
        r["marks"].append("reference baseline ≠ the reference of m4's eval (rerun scripts/eaibench.sh)")
    if r["kind"] == "reconstruct" and ev:
        r["detail"] = "; ".join(
            f"×{f}: m4 {x.get(f'psnr_x{f}', float('nan')):.2f} dB / SSIM {x.get(f'ssim_x{f}', float('nan')):.3f}, "
            f"bicubic {x.get(f'bicubic_psnr_x{f}', float('nan')):.2f} dB / SSIM {x.get(f'bicubic_ssim_x{f}', float('nan')):.3f}"
            for f in (2, 4))
    elif r["kind"] == "mel_regress" and ev:
        r["detail"] = (f"{x.get('recognised_words', 0):.0f} test utterances of recogniser words; log-mel L1 m4 "
                       f"{x.get('mel_l1', float('nan')):.3f}, mean training log-mel {x.get('mean_mel_l1', float('nan')):.3f}")
    elif ev:
        r["detail"] = f"blank canvas (chance) {ev.get('chance', float('nan')):.3f}"


def scaled_delta(r):
    """Δ in [0, 1]-metric points, > 0 when m4 is better: chrF / 100, MAE relative to the task-specific MAE."""
    d = r["delta"] if r["higher"] else -r["delta"]
    if r["metric"] == "chrf":
        return d / 100.0
    if r["metric"] in ("mae", "mel_l1"):
        return d / abs(r["ts"]) if r["ts"] else d
    if r["metric"] == "psnr":  # relative RMSE reduction: −0.01 is the parity line as for MAE
        return 1.0 - 10 ** (-d / 20.0)
    return d


def adapter_tuning(results):
    """results/tuning.tsv → {task: [steps of each adapter variant (None: the plan's)]}, few-shot rows excluded."""
    out = {}
    path = os.path.join(results, "tuning.tsv")
    if not os.path.isfile(path):
        return out
    with open(path) as f:
        for line in f.read().splitlines()[1:]:
            cols = line.split("\t")
            if len(cols) < 3 or cols[0] == "fewshot":
                continue
            flags = cols[2].split()
            steps = int(flags[flags.index("--steps") + 1]) if "--steps" in flags else None
            out.setdefault(cols[1], []).append(steps)
    return out


def storage_series(rows, firmware_bytes):
    """Firmware + first k adapters vs the first k task-specific models (files on disk), compared tasks only."""
    ks, m4, ts = [0], [firmware_bytes], [0]
    for r in rows:
        if not r["ok"] or r["adapter_bytes"] is None or not r["bl"].get("model"):
            continue  # a reference baseline (no model) has no file to count
        m = r["bl"]["model"]
        ks.append(ks[-1] + 1)
        m4.append(m4[-1] + r["adapter_bytes"])
        kept = r["lr"]["bytes_f32"] if r["kept"] == "logistic regression" else m["firmware_bytes"] + m["adapter_bytes"]
        ts.append(ts[-1] + kept)
    cross = next((k for k, x, y in zip(ks, m4, ts) if k > 0 and x <= y), None)
    return ks, m4, ts, cross


def draw(rows, a, fp):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = []

    def save(fig, stem, title):
        for ext in ("png", "svg"):
            fig.savefig(os.path.join(a.figures, f"{stem}.{ext}"), dpi=110, bbox_inches="tight",
                        metadata={"Date": None} if ext == "svg" else None)
        plt.close(fig)
        figs.append((stem, title))

    ok = [r for r in rows if r["ok"]]
    # Δ per task, sorted, coloured by group (lower-is-better metrics flipped so > 0 is m4 better).
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(ok) + 1)))
    if ok:
        d = sorted(ok, key=scaled_delta)
        vals = [scaled_delta(r) for r in d]
        bars = ax.barh([r["task"] for r in d], vals, color=[GROUP_COLOUR.get(r["group"], "grey") for r in d])
        for b, r in zip(bars, d):
            if r["decoder"]:
                b.set_hatch("//")
        ax.axvline(0, color="black", lw=0.8)
        ax.axvline(-0.01, color="grey", lw=0.8, ls="--")
        handles = [plt.Rectangle((0, 0), 1, 1, color=GROUP_COLOUR[g]) for g in GROUP_ORDER]
        labels = list(GROUP_ORDER)
        if any(r["decoder"] for r in d):
            handles.append(plt.Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//"))
            labels.append("decoder task (counted apart)")
        ax.legend(handles, labels, loc="lower right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no task with both scores", ha="center", transform=ax.transAxes)
    ax.set_xlabel("m4 − task-specific ([0, 1] metric points; chrF / 100; MAE relative;\n"
                  "PSNR as relative RMSE; > 0: m4 better)")
    ax.set_title("eAIBench: m4 firmware + adapter vs task-specific model (test split)")
    save(fig, "eaibench-delta", "Δ per task")

    ks, m4, ts, cross = storage_series(sorted(rows, key=lambda r: r["decoder"]), a.firmware_bytes)  # as the table
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(ks, [x / 2**20 for x in m4], marker="o", label="m4: firmware + k adapters")
    ax.plot(ks, [x / 2**20 for x in ts], marker="s", label="k task-specific models")
    if cross:
        ax.axvline(cross, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("tasks k (compared tasks, table order)")
    ax.set_ylabel("MiB on disk")
    ax.set_title("Storage vs number of tasks")
    ax.legend()
    save(fig, "eaibench-storage", "storage vs k")

    res = load(os.path.join(a.results, "resources.json"))
    if res and res.get("memory"):
        mem = res["memory"]
        fig, ax = plt.subplots(figsize=(6, 4))
        series = [([(m["k"], m[key] / 1024) for m in mem if m.get(key) is not None], label)
                  for key, label in (("m4_pss_kib", "m4: firmware + k adapters, in-process (PSS)"),
                                     ("separate_pss_kib", "k task-specific processes (PSS sum)"),
                                     ("one_process_pss_kib", "k task-specific models, one process (PSS)"))]
        series.append(([(m["k"], m["pss_kib"] / 1024) for m in res.get("service_memory", [])
                        if m.get("pss_kib") is not None], "m4fwd + k adapters (PSS)"))
        for pts, label in series:
            if pts:
                ax.plot(*zip(*pts), marker="o", label=label)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("tasks served at once k")
        ax.set_ylabel("MiB")
        ax.set_title("Memory serving k tasks, one request each answered (measured, /proc)")
        ax.legend(fontsize=8)
        save(fig, "eaibench-memory", "memory vs k")
    if res and res.get("latency"):
        lat = [x for x in res["latency"] if x.get("m4_median_ms") is not None]
        fig, ax = plt.subplots(figsize=(8, max(2.5, 0.32 * len(lat) + 1)))
        y = range(len(lat))
        ax.barh([i + 0.2 for i in y], [x["m4_median_ms"] for x in lat], height=0.4, label="m4 (median)")
        ax.barh([i - 0.2 for i in y], [x["ts_median_ms"] for x in lat], height=0.4, label="task-specific (median)")
        ax.set_yticks(list(y), [x["task"] for x in lat])
        ax.set_xlabel("ms per request")
        ax.set_title("Per-request latency, in-process")
        ax.legend(fontsize=8)
        save(fig, "eaibench-latency", "latency per task")
    return figs


def read_ops(path):
    """'operator types per path:' lines of m4fw inspect → {(path, modality): [ops]}."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 4 and parts[3] == "types:":
                    out[(parts[0], parts[1])] = parts[4:]
    except OSError:
        pass
    return out


def ops_section(rows, a):
    m4 = read_ops(os.path.join(a.results, "ops", "m4.txt"))
    if not m4:
        return []
    L = ["", "## Operator types", "",
         "Op types the task's path executes (`m4fw inspect`), m4 firmware vs the task-specific model. "
         "The task-specific models are built from the firmware's own family, so they need no operator m4 "
         "lacks; the point of the comparison is that m4 serves every task with one op set "
         f"({len(set(o for v in m4.values() for o in v))} types over all paths), while separately built "
         "apps would each bring their own.", "", "| task | path | m4 | task-specific |", "|---|---|---|---|"]
    skipped = []
    for r in rows:
        if not r["bl"]:
            continue
        if not r["bl"].get("model"):
            skipped.append(r["task"])
            continue
        ts = read_ops(os.path.join(a.results, "ops", f"{r['task']}.txt"))
        path = r["bl"]["path"]
        # a drawing runs the full path over text (prompt → backbone → projector → image decoder)
        mod = "text" if path == "backbone" or r.get("kind") == "draw" else r["bl"].get("modality") or next(
            (k[1] for k in ts if k[0] == path), "?")
        L.append(f"| {r['task']} | {path} {mod} | {' '.join(m4.get((path, mod), ['–']))} | "
                 f"{' '.join(ts.get((path, mod), ['–']))} |")
    if skipped:
        L += ["", f"Not listed: {', '.join(skipped)} — the baseline is no model, so it has no operators."]
    return L


def decoder_table(decoders):
    """The decoder tasks' own table: metric, both scores, what the baseline is, parity, the details."""
    if not decoders:
        return []
    L = ["", "## Decoder tasks (counted apart)", "",
         "Generator and draw paths (issue 18). Baselines: img.super_resolution — bicubic enlargement of the "
         "reduced image, no model; aud.tts — the reference espeak-ng voice through the same recogniser adapters, "
         "no model (both scored inside m4's own eval on the same test examples, `chance` of its JSON); "
         "img.draw_scene — a from-scratch model (`m4fw baseline train`). Parity: PSNR within "
         f"{PSNR_TOLERANCE_DB:.3f} dB (m4's RMSE within 1 % of the baseline's, the MAE rule), intelligibility and "
         "palette agreement within 0.01. Chance: the trivial answer (guessing among the recogniser's words; a blank "
         "canvas); none for super-resolution, where bicubic is the baseline itself.", "",
         "| task | metric | m4 | baseline | what the baseline is | chance | Δ | parity | detail | mark |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for r in decoders:
        unit = " (dB)" if r["metric"] == "psnr" else ""
        d = "–" if r["delta"] is None else f"{r['delta']:+.3f}"
        p = "–" if r["parity"] is None else ("✓" if r["parity"] else "✗")
        if not r["ok"] and r["parity"] is not None:
            p += " (not counted)"
        note = ["note: both at or below chance"] if r.get("both_at_chance") else []
        m4 = fmt_score(r["metric"], r["m4"]) + (f" ({r['m4_other_metric']})" if r.get("m4_other_metric") else "")
        L.append(f"| {r['task']} | {r['metric']}{unit}{'' if r['higher'] else ' ↓'} | {m4} | "
                 f"{fmt_score(r['metric'], r['ts'])} | {r.get('what') or '–'} | {fmt_score(r['metric'], r['chance'])} | "
                 f"{d} | {p} | {r.get('detail', '')} | {'; '.join(r['marks'] + note)} |")
    return L


def write_md(rows, a, figs):
    fp = a.firmware_fingerprint
    shown = os.path.relpath(a.results, a.root) if os.path.isabs(a.results) else a.results
    decoders = [r for r in rows if r["decoder"]]
    rows = [r for r in rows if not r["decoder"]]  # the headline, main table and group summary
    ok = [r for r in rows if r["ok"]]
    par = [r for r in ok if r["parity"]]
    L = ["# eAIBench: m4 against a task-specific model per task", "",
         f"Generated by `{a.command}` from `{shown}/` alone (`scripts/eaibench-report.py`; no training). "
         f"Firmware fingerprint `{fp[:16]}…`. m4 = the firmware + the task's adapter "
         "(`m4fw eval`); task-specific = a model of the firmware's family trained from scratch on the task's "
         "train split only (`m4fw baseline train`, docs/eaibench-method.md), scored by the same `m4fw eval` code "
         "on the same test examples. Δ = m4 − task-specific; parity (✓) = m4 within 1 point of the "
         "task-specific score or better (1 point: 0.01 of a [0, 1] metric, 1 chrF point, 1 % of the "
         "baseline's MAE; the direction of wer / mae respected). The decoder tasks (plan kinds reconstruct, "
         "mel_regress, draw) are counted apart, in their own table below the main one.", ""]
    weak = [r for r in par if r.get("both_at_chance")]
    L.append(f"**Parity: {len(par)} of {len(ok)} compared tasks** "
             f"({100.0 * len(par) / len(ok):.0f} %; the paper: 85 %)." if ok else
             "**Parity: no task has both scores yet.**")
    if weak:
        L.append(f"Of these, {len(weak)} are at parity with both models at or below chance "
                 f"({', '.join(r['task'] for r in weak)}): neither learned the task at this scale, so parity there "
                 f"says little; without them {len(par) - len(weak)} of {len(ok) - len(weak)}.")
    if decoders:
        dok = [r for r in decoders if r["ok"]]
        dpar = [r for r in dok if r["parity"]]
        L.append(f"**Decoder tasks: {len(dpar)} of {len(dok)} compared at parity** "
                 f"({', '.join(r['task'] for r in decoders)}; not in the count above; their table follows the main one).")
    missing = [r for r in rows if not r["ok"]]
    L.append(f"{len(rows)} classification / generation tasks in `{shown}/plans/`; {len(missing)} not compared "
             "(marked in the table).")
    if a.unplanned:
        L.append(f"Not in the table: {', '.join(a.unplanned)} — built in the data directory but with no plan "
                 f"for this firmware (`m4fw eval --plan --task T` refuses it, e.g. a generator task on a firmware "
                 f"without that decoder), so neither side is scored here.")
    L += ["", "Task-specific = the stronger of the trained model and, for encoder-path classification, a "
          "logistic regression on raw features (pixels / log-mel / IMU window; `m4fw baseline classic`).", "",
          "| task | group | metric | m4 | task-specific | trained model | logistic regression | chance | Δ | parity | "
          "trained model: size, params, lr, steps, MB | mark |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in GROUP_ORDER + sorted({r["group"] for r in rows} - set(GROUP_ORDER)):
        for r in [x for x in rows if x["group"] == g]:
            arrow = "" if r["higher"] else " ↓"
            model = ""
            if r["bl"]:
                m = r["bl"]["model"]
                model = (f"{m['size']}, {m['parameters']:,} params, lr {m['lr']:g}, {m['steps']} steps, "
                         f"{(m['firmware_bytes'] + m['adapter_bytes']) / 1e6:.2f} MB")
            d = "–" if r["delta"] is None else f"{r['delta']:+.3f}"
            p = "–" if r["parity"] is None else ("✓" if r["parity"] else "✗")
            if not r["ok"] and r["parity"] is not None:
                p += " (not counted)"
            lr = fmt_score(r["metric"], r["lr"]["score"]) if r["lr"] else "–"
            L.append(f"| {r['task']} | {r['group']} | {r['metric']}{arrow} | {fmt_score(r['metric'], r['m4'])} | "
                     f"{fmt_score(r['metric'], r['ts'])} | {fmt_score(r['metric'], r['nn'])} | {lr} | "
                     f"{fmt_score(r['metric'], r['chance'])} | {d} | {p} | {model} | "
                     f"{'; '.join(r['marks'] + (['note: both at or below chance'] if r.get('both_at_chance') else []))} |")
    L += decoder_table(decoders)
    L += ["", "## Per input group", "", "Classification / generation tasks (the headline's); decoder tasks in their own table.", "",
          "| group | tasks | compared | at parity | mean Δ (direction-adjusted; chrF / 100, MAE relative) |",
          "|---|---|---|---|---|"]
    for g in GROUP_ORDER:
        gr = [r for r in rows if r["group"] == g]
        if not gr:
            continue
        go = [r for r in gr if r["ok"]]
        md = (sum(scaled_delta(r) for r in go) / len(go)) if go else None
        L.append(f"| {g} | {len(gr)} | {len(go)} | {sum(1 for r in go if r['parity'])} | "
                 f"{'–' if md is None else f'{md:+.3f}'} |")
    ks, m4, ts, cross = storage_series(rows + decoders, a.firmware_bytes)
    nomodel = [r["task"] for r in decoders if r.get("reference")]
    L += ["", "## Storage vs number of tasks", "",
          f"Files on disk over the {ks[-1]} compared tasks with a model on both sides (table order, decoder tasks "
          "last): m4 = firmware "
          f"({a.firmware_bytes:,} bytes) + k adapters; task-specific = the sum of k models "
          "(`.m4fw` + head `.m4a`; where the logistic regression is the stronger baseline, its f32 weights: "
          "classes × (features + 1) × 4 bytes, not a file)."
          + (f" Not counted: {', '.join(nomodel)} — the baseline there is no model (nothing to store)." if nomodel else "")]
    if ks[-1] > 0:
        L.append(f"At k = {ks[-1]}: m4 {m4[-1]:,} bytes, task-specific {ts[-1]:,} bytes "
                 f"(ratio {ts[-1] / m4[-1]:.2f}×). "
                 + (f"Crossover (m4 ≤ task-specific) at k = {cross}." if cross else
                    "No crossover within the compared tasks."))
        enc = [r for r in rows if r["ok"] and r["adapter_bytes"] is not None and r["bl"]["path"] == "encoder"
               and r["kept"] == "model" and "recall" not in r["metric"]]  # retrieval's text tower uses it
        tok = sum(r["bl"]["model"].get("tokenizer_bytes") or 0 for r in enc)
        if tok:
            L.append(f"The file format requires a tokenizer, so each of the {len(enc)} encoder-path task-specific "
                     f"models carries one it never uses ({tok:,} bytes together); without them the task-specific "
                     f"sum is {ts[-1] - tok:,} bytes.")
        per_ad = (m4[-1] - a.firmware_bytes) / ks[-1]
        per_ts = ts[-1] / ks[-1]
        if per_ts > per_ad and not cross:
            L.append(f"Projection (not measured): at the mean sizes (adapter {per_ad:,.0f} bytes, task-specific "
                     f"model {per_ts:,.0f} bytes) the lines cross at k ≈ "
                     f"{a.firmware_bytes / (per_ts - per_ad):.1f}.")
    L += ["", "## Figures", ""]
    for stem, title in figs:
        L.append(f"- {title}: ![{title}](figures/{stem}.svg) ([PNG](figures/{stem}.png))")
    res = load(os.path.join(a.results, "resources.json"))
    if not res:
        L += ["", "Memory serving k tasks and per-request latency: not measured yet (no "
              f"`{shown}/resources.json`)."]
    if res and res.get("memory"):
        mt = res.get("memory_tasks", [])
        L += ["", "## Memory serving k tasks (measured)", "",
              f"`m4fw bench eaibench` (`{shown}/resources.json`): each setup's processes load their models, answer "
              "one real test request per task and hold; PSS and RSS are read from /proc/<pid>/smaps_rollup while all "
              "are alive (sums over processes), peak RSS from VmHWM. Tasks cycled: "
              f"{', '.join(mt)} (beyond {len(mt)} tasks each model is a distinct file copy, so no page-cache "
              "sharing). The firmware is memory-mapped read-only; its load-time digest check reads every page, so all of it "
              "is resident. PSS splits a shared page among the processes that map it, so another process mapping the "
              "same firmware file (a training run, another engineer's job) lowers m4's PSS; RSS is not split.", "",
              "| k | m4: firmware + k adapters, PSS MiB | k task-specific processes, PSS MiB | one process with k "
              "models, PSS MiB | m4 RSS MiB | separate RSS MiB | separate / m4 (PSS) |", "|---|---|---|---|---|---|---|"]
        for m in res["memory"]:
            L.append(f"| {m['k']} | {m['m4_pss_kib'] / 1024:.1f} | {m['separate_pss_kib'] / 1024:.1f} | "
                     f"{m['one_process_pss_kib'] / 1024:.1f} | {m['m4_rss_kib'] / 1024:.1f} | "
                     f"{m['separate_rss_kib'] / 1024:.1f} | {m['separate_pss_kib'] / m['m4_pss_kib']:.2f}× |")
    if res and res.get("latency"):
        L += ["", "## Per-request latency (measured, in-process)", "",
              f"One request at a time, the same test input (example 0) through both, alternating A/B, "
              f"M4_THREADS={res.get('threads') or 'default'}; {res['latency'][0]['repeats']} calls per side. On a shared "
              "machine a 2-thread call waits whenever the second core is busy, so these medians carry that wait "
              "(docs/eaibench-method.md gives a 1-thread run).", "",
              "| task | m4 median ms | m4 p99 ms | task-specific median ms | task-specific p99 ms | m4 / task-specific |",
              "|---|---|---|---|---|---|"]
        for x in res["latency"]:
            L.append(f"| {x['task']} | {x['m4_median_ms']:.3f} | {x['m4_p99_ms']:.3f} | {x['ts_median_ms']:.3f} | "
                     f"{x['ts_p99_ms']:.3f} | {x['m4_median_ms'] / x['ts_median_ms']:.2f}× |")
    if res and res.get("service_memory"):
        sep = {m["k"]: m for m in res.get("memory", [])}
        L += ["", "## Memory serving k tasks through m4fwd (measured)", "",
              "`m4fw bench eaibench --service`: a fresh m4fwd per k, the first k tasks' adapters registered through "
              "the client API, one request of each sent at once from k connections; when every reply is in, the "
              "daemon's PSS and RSS (/proc/<pid>/smaps_rollup) and its peak RSS (VmHWM, which covers the moment all k "
              "were in flight). The task-specific side is the in-process measurement above.", "",
              "| k | m4fwd PSS MiB | m4fwd RSS MiB | m4fwd peak RSS MiB | k task-specific processes, PSS MiB | "
              "separate / m4fwd (PSS) |", "|---|---|---|---|---|---|"]
        for m in res["service_memory"]:
            s_ = sep.get(m["k"])
            L.append(f"| {m['k']} | {m['pss_kib'] / 1024:.1f} | {m['rss_kib'] / 1024:.1f} | {m['hwm_kib'] / 1024:.1f} | "
                     + (f"{s_['separate_pss_kib'] / 1024:.1f} | {s_['separate_pss_kib'] / m['pss_kib']:.2f}× |"
                        if s_ else "– | – |"))
    if res and res.get("service_latency"):
        inproc = {x["task"]: x for x in res.get("latency", [])}
        L += ["", "## Per-request latency through m4fwd (measured)", "",
              "One daemon with every task's adapter; per task, single requests from one connection, timed at the "
              f"client (socket, queue, run); {res['service_latency'][0]['repeats']} calls after one warm-up, "
              f"M4_THREADS={res.get('threads') or 'default'}. In-process columns from the table above.", "",
              "| task | m4fwd median ms | m4fwd p99 ms | m4 in-process median ms | task-specific in-process median ms |",
              "|---|---|---|---|---|"]
        for x in res["service_latency"]:
            i = inproc.get(x["task"], {})
            L.append(f"| {x['task']} | {x['median_ms']:.3f} | {x['p99_ms']:.3f} | "
                     f"{i.get('m4_median_ms', float('nan')):.3f} | {i.get('ts_median_ms', float('nan')):.3f} |")
    L += ops_section(rows + decoders, a)
    tuned = adapter_tuning(a.results)
    L += ["", "## Tuning budgets", "",
          "Adapter: the plan's settings, plus the variants of `results/tuning.tsv` where that task was tuned "
          "(few-shot rows excluded); updates = the sum of their steps. Task-specific: every variant of its grid.", "",
          "| task | adapter plan steps | adapter variants | adapter updates (all variants) | task-specific variants | "
          "task-specific updates (all variants) | tuning seconds | wall seconds |", "|---|---|---|---|---|---|---|---|"]
    for r in rows + decoders:
        if r["bl"] and r["bl"].get("tuning"):
            t = r["bl"]["tuning"]
            steps = tuned.get(r["task"], [t["adapter_plan_steps"]])
            steps = [t["adapter_plan_steps"] if x is None else x for x in steps]
            L.append(f"| {r['task']} | {t['adapter_plan_steps']} | {len(steps)} | {sum(steps)} | {t['variant_count']} | "
                     f"{t['updates']} | {t['seconds']:.0f} | {r['bl']['wall_seconds']:.0f} |")
    if nomodel:
        L += ["", f"Not listed: {', '.join(nomodel)} (no model trained for the baseline)."]
    L.append("")
    with open(a.out, "w") as f:
        f.write("\n".join(L))


if __name__ == "__main__":
    main()
