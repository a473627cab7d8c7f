"""Gradients of the C++ training engine against PyTorch autograd (float64).

The C++ side (m4_grad_dump) trains nothing: for each case it sets random parameter values, runs one
forward + backward of a random batch and writes the parameters (through the real .m4a / .m4fw
exporters), the batch and every parameter's gradient. This side reads those files with the
independent reader and forward pass of tests/oracle (m4file.py, reference.py — written from the
docs, not from src/), makes every parameter a leaf tensor, recomputes the same loss from its
definition (docs/training.md) and differentiates it with autograd.

    /usr/bin/python3 tests/train/test_autograd.py --m4fw build/tools/m4fw/m4fw \
        --dump build/tests/train/m4_grad_dump [--workdir DIR] [-v]

Bound: per parameter tensor, max|g_cpp − g_ref| / max|g_ref| ≤ 1e-4 (f32 engine vs float64
reference); the loss itself within 1e-5 relative. Covered: all four paths (every modality), every
objective (LM with a loss mask, classify, regress, embed, contrastive, reconstruct), LoRA on every linear of the
path (adapter mode), heads with a hidden GELU layer, and every firmware tensor (full mode).
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ORACLE = os.path.join(HERE, "..", "oracle")
sys.path.insert(0, ORACLE)

import reference  # noqa: E402
from m4file import I8Tensor, M4File  # noqa: E402

torch.set_num_threads(2)
DT = torch.float64
TOL = 1e-4
ARGS = None
WORK = None
RESULTS = []

# name, mode, objective, path, modality, out_dim, pool[, head hidden width]
CASES = [
    ("ad_enc_image_classify", "adapter", "classify", "encoder", "image", 3, "mean"),
    ("ad_enc_audio_regress", "adapter", "regress", "encoder", "audio", 2, "mean"),
    ("ad_enc_imu_embed", "adapter", "embed", "encoder", "imu", 5, "mean"),
    ("ad_bb_classify_last", "adapter", "classify", "backbone", "text", 4, "last"),
    ("ad_bb_regress_mean", "adapter", "regress", "backbone", "text", 2, "mean"),
    ("ad_bb_lm", "adapter", "lm", "backbone", "text", 0, "mean"),
    ("ad_full_image_lm", "adapter", "lm", "full", "image", 0, "mean"),
    ("ad_full_imu_classify", "adapter", "classify", "full", "imu", 3, "mean"),
    ("ad_full_audio_embed", "adapter", "embed", "full", "audio", 4, "last"),
    ("full_bb_lm", "full", "lm", "backbone", "text", 0, "mean"),
    ("full_full_audio_lm", "full", "lm", "full", "audio", 0, "mean"),
    ("full_enc_image_classify", "full", "classify", "encoder", "image", 3, "mean"),
    ("full_contrastive_imu", "full", "contrastive", "encoder", "imu", 0, "mean"),
    ("ad_gen_reconstruct", "adapter", "reconstruct", "generator", "image", 0, "mean"),
    ("full_gen_reconstruct", "full", "reconstruct", "generator", "image", 0, "mean"),
    ("ad_enc_audio_classify_mlp", "adapter", "classify", "encoder", "audio", 3, "mean", 6),
    ("ad_bb_embed_mlp_last", "adapter", "embed", "backbone", "text", 4, "last", 5),
]


class GradModel(reference.Model):
    """reference.Model whose weights are autograd leaves (one per firmware tensor)."""

    def __init__(self, fw):
        super().__init__(fw, mode="plain")
        self.leaves = {}

    def p(self, name):
        if name not in self.leaves:
            t = self.fw.tensors[name]
            arr = t.dequant() if isinstance(t, I8Tensor) else t
            self.leaves[name] = reference.t64(arr).clone().requires_grad_(True)
        return self.leaves[name]


class HeadOnly(reference.Adapter):
    """The head of a full-mode run (dumped as .npy: a firmware has no head), no LoRA."""

    def __init__(self, head_type, pool, w, b):  # pylint: disable=super-init-not-called
        self.lora, self.scale, self.used = {}, 0.0, set()
        self.head = {"type": head_type, "pool": pool}
        self.head_w, self.head_b = w, b
        self.hidden = 0


def make_adapter_leaves(ad):
    leaves = {}
    for X, (A, B) in list(ad.lora.items()):
        A = A.clone().requires_grad_(True)
        B = B.clone().requires_grad_(True)
        ad.lora[X] = (A, B)
        leaves["lora.%s.a" % X] = A
        leaves["lora.%s.b" % X] = B
    out = "head.out" if ad.hidden else "head"
    if ad.head_w is not None:
        ad.head_w = ad.head_w.clone().requires_grad_(True)
        leaves[out + ".weight"] = ad.head_w
    if ad.head_b is not None:
        ad.head_b = ad.head_b.clone().requires_grad_(True)
        leaves[out + ".bias"] = ad.head_b
    if ad.hidden:
        ad.hidden_w = ad.hidden_w.clone().requires_grad_(True)
        ad.hidden_b = ad.hidden_b.clone().requires_grad_(True)
        leaves["head.hidden.weight"], leaves["head.hidden.bias"] = ad.hidden_w, ad.hidden_b
    return leaves


def cross_entropy(rows, targets):
    """mean over rows of −log softmax(row)[target]"""
    logz = torch.logsumexp(rows, dim=-1)
    return (logz - rows[torch.arange(rows.shape[0]), torch.as_tensor(targets)]).mean()


def info_nce(a, b, log_scale):
    """symmetric InfoNCE of unit rows, scale exp(min(t, ln 100)) (CLIP)."""
    s = torch.exp(torch.clamp(log_scale, max=math.log(100.0)))
    S = s * (a @ b.T)
    idx = list(range(a.shape[0]))
    return 0.5 * (cross_entropy(S, idx) + cross_entropy(S.T, idx))


def normalise_rows(x):
    return x / torch.linalg.norm(x, dim=-1, keepdim=True)


def signal(s):
    return np.load(s["signal"]) if s.get("signal") else None


def batch_loss(m, ad, case, samples, log_scale):
    name, mode, objective, path, mod, out_dim, pool = case[:7]
    if objective == "contrastive":
        zm = torch.stack([reference.normalise(m.encoder_z(mod, signal(s), None)) for s in samples])
        zt = torch.stack([m.text_embedding(m.backbone_hidden(m.build_inputs(s["tokens"]), None), None)
                          for s in samples])
        return info_nce(zm, zt, log_scale)
    if objective == "reconstruct":   # mean squared error of the generator path's image
        y = torch.stack([m.generator_path(signal(s), ad) for s in samples])
        t = torch.as_tensor(np.array([s["target"] for s in samples]), dtype=DT).reshape(y.shape)
        return ((y - t) ** 2).mean()
    if objective == "lm":
        rows, targets = [], []
        for s in samples:
            if path == "full":
                x = m.build_inputs(s["tokens"], mod, signal(s), ad)
            else:
                x = m.build_inputs(s["tokens"])
            logits = m.lm_logits(m.backbone_hidden(x, ad), ad)
            p0 = m.prefix_len(mod if path == "full" else None)
            for i, tok in enumerate(s["tokens"]):
                if s["loss_mask"] and not s["loss_mask"][i]:
                    continue
                rows.append(logits[p0 - 1 + i])
                targets.append(tok)
        return cross_entropy(torch.stack(rows), targets)
    # head objectives
    outs = []
    for s in samples:
        if path == "encoder":
            outs.append(ad.apply_head(m.encoder_z(mod, signal(s), ad)))
        elif path == "backbone":
            outs.append(m.backbone_path(s["tokens"], ad))
        else:
            outs.append(m.full_path(mod, signal(s), s["tokens"], ad))
    y = torch.stack(outs)
    if objective == "classify":
        return cross_entropy(y, [s["label"] for s in samples])
    t = torch.as_tensor(np.array([s["target"] for s in samples]), dtype=DT)
    if objective == "regress":
        return ((y - t) ** 2).mean()
    return info_nce(y, normalise_rows(t), log_scale)   # embed: apply_head already normalised y


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (cmd[0], r.returncode, r.stdout, r.stderr))
    return r


def setUpModule():
    global WORK
    WORK = ARGS.workdir or tempfile.mkdtemp(prefix="m4grad_")
    if os.path.isdir(WORK):
        shutil.rmtree(WORK)
    os.makedirs(WORK)
    fw = os.path.join(WORK, "fw.m4fw")
    run([ARGS.m4fw, "init", "--config", os.path.join(ORACLE, "oracle_config.json"), "--out", fw, "--seed", "7"])
    cases = []
    for i, (name, mode, objective, path, mod, out_dim, pool, *hidden) in enumerate(CASES):
        cases.append({"name": name, "mode": mode, "objective": objective, "path": path, "modality": mod,
                      "out_dim": out_dim, "pool": pool, "rank": 3, "alpha": 6.0, "targets": "all",
                      "batch": 3, "seed": 100 + i, "head_hidden": hidden[0] if hidden else 0})
    with open(os.path.join(WORK, "cases.json"), "w") as f:
        json.dump({"firmware": fw, "out_dir": WORK, "cases": cases}, f)
    run([ARGS.dump, os.path.join(WORK, "cases.json")])


def tearDownModule():
    if RESULTS:
        print("\n%-26s %-40s %10s" % ("case", "worst tensor", "rel err"))
        for name, tensor, err, n in RESULTS:
            print("%-26s %-40s %10.2e   (%d tensors)" % (name, tensor, err, n))
    if not ARGS.workdir and WORK:
        shutil.rmtree(WORK, ignore_errors=True)


class Autograd(unittest.TestCase):
    def check(self, case):
        name, mode = case[0], case[1]
        with open(os.path.join(WORK, name + ".json")) as f:
            meta = json.load(f)
        if mode == "full":
            fw = M4File.load(meta["export"])
            ad, ad_leaves = None, {}
            if "head.weight" in meta["params"]:
                def value(p):
                    path = os.path.join(WORK, "%s.v.%s.npy" % (name, p))
                    return reference.t64(np.load(path)) if os.path.exists(path) else None
                ad = HeadOnly(case[2], case[6], value("head.weight"), value("head.bias"))
                ad_leaves = make_adapter_leaves(ad)
        else:
            fw = M4File.load(os.path.join(WORK, "fw.m4fw"))
            ad = reference.Adapter(M4File.load(meta["export"]))
            ad_leaves = make_adapter_leaves(ad)
        m = GradModel(fw)
        ls = torch.tensor(float(meta.get("logit_scale", 0.0)), dtype=DT, requires_grad=True)
        loss = batch_loss(m, ad, case, meta["samples"], ls)
        loss.backward()
        self.assertLessEqual(abs(loss.item() - meta["loss"]) / max(abs(loss.item()), 1e-12), 1e-5,
                             "%s: loss %r vs reference %r" % (name, meta["loss"], loss.item()))
        worst, worst_name, nonzero = 0.0, "", 0
        for pname in meta["params"]:
            ours = np.load(os.path.join(WORK, "%s.g.%s.npy" % (name, pname))).astype(np.float64)
            if pname == "train.logit_scale":
                leaf = ls
            elif pname in ad_leaves:
                leaf = ad_leaves[pname]
            else:
                leaf = m.leaves.get(pname)
            ref = np.zeros_like(ours) if leaf is None or leaf.grad is None else \
                leaf.grad.detach().numpy().reshape(ours.shape)
            scale = np.abs(ref).max()
            if scale < 1e-9:
                # Not reached by this case (or a key bias: softmax ignores it): ours must be ~0 too.
                self.assertLessEqual(np.abs(ours).max(), 1e-6, "%s: %s should have no gradient" % (name, pname))
                continue
            nonzero += 1
            err = np.abs(ours - ref).max() / scale
            if err > worst:
                worst, worst_name = err, pname
            self.assertLessEqual(err, TOL, "%s: gradient of %s, relative error %.3g" % (name, pname, err))
        self.assertGreater(nonzero, 0, name)
        RESULTS.append((name, worst_name, worst, nonzero))


def make_test(case):
    def test(self):
        self.check(case)
    return test


for _case in CASES:
    setattr(Autograd, "test_" + _case[0], make_test(_case))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--m4fw", required=True)
    ap.add_argument("--dump", required=True)
    ap.add_argument("--workdir", default=None)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest)
