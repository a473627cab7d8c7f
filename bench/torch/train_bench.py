#!/usr/bin/python3
"""m4's training update against PyTorch's on the same model, batch and precision (2 threads).

    /usr/bin/python3 bench/torch/train_bench.py [--firmware firmware/m4-tiny.m4fw] [--batch 8]
        [--tokens 16] [--steps 8] [--rounds 3] [--threads 2] [--precisions f32,bf16]

What one update is, on both sides: full training (every firmware tensor learns) of the `lm`
objective on the full path — image → encoder → projector → [BOS, image tokens, text] → backbone →
LM head, token cross-entropy over the text — then global-norm clipping at 1 and one AdamW step
(lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01 on every tensor here: the timing does not
depend on which tensors decay). m4's bf16 trains on bf16 copies of the weights with f32 masters;
PyTorch's bf16 is torch.autocast("cpu", torch.bfloat16) over f32 parameters.

Steps:
1. m4_grad_dump (tests/train/grad_dump.cpp) moves every firmware tensor off its initial value,
   draws a random batch (B images, B texts of T tokens), runs m4's forward + backward once and
   writes the parameters (a .m4fw through the real exporter), the batch and m4's loss.
2. This script loads that firmware with the independent reader of tests/oracle (m4file.py), builds
   a batched PyTorch model of the architecture (plain torch.nn.functional ops; PyTorch 1.13 has no
   fused attention), and computes the loss of the same batch. It must equal m4's — within 1e-4
   relative in f32, 2e-2 in bf16 (the two engines round different intermediates to bf16) —
   otherwise the script stops: timing two engines that compute different things means nothing.
3. Timing, alternating (m4, PyTorch) per round so both see the same background load:
   m4_grad_dump with time_steps (whole updates in one process, after one untimed update) and the
   PyTorch loop (after one untimed update). Per round the median update; the table shows the
   median over rounds and the ratio PyTorch ms / m4 ms of each round.
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "oracle"))

from m4file import I8Tensor, M4File  # noqa: E402


class TorchModel:
    """The firmware's image encoder, projector and backbone as batched PyTorch ops."""

    def __init__(self, fw):
        self.h = fw.header
        self.params = {}
        for name, t in fw.tensors.items():
            if name.startswith("tokenizer") or fw.dtypes[name] == "u8":
                continue
            arr = t.dequant() if isinstance(t, I8Tensor) else t
            self.params[name] = torch.tensor(np.asarray(arr, dtype=np.float32)).requires_grad_(True)
        bb = self.h["backbone"]
        C, H = bb["width"], bb["heads"]
        D = C // H
        theta = float(bb.get("rope_theta", 10000.0))
        i = torch.arange(D // 2, dtype=torch.float64)
        ang = torch.arange(bb["max_seq"], dtype=torch.float64)[:, None] * theta ** (-2.0 * i / D)[None, :]
        self.cos, self.sin = torch.cos(ang).float(), torch.sin(ang).float()

    def p(self, name):
        return self.params[name]

    def linear(self, x, X, weight=None):
        b = self.params.get(X + ".bias")
        return F.linear(x, self.p(weight or X + ".weight"), b)

    def encoder(self, img):  # img [B, S, S, 3] → tokens [B, T, W]
        cfg = self.h["encoders"]["image"]
        S, ps, c = cfg["image_size"], cfg["patch_size"], cfg.get("channels", 3)
        B, n = img.shape[0], S // ps
        x = img.reshape(B, n, ps, n, ps, c).permute(0, 1, 3, 2, 4, 5).reshape(B, n * n, ps * ps * c)
        pre, eps, nh = "encoders.image.", cfg["norm_eps"], cfg["heads"]
        x = self.linear(x, pre + "patch_embed") + self.p(pre + "pos_embed")
        T, W = x.shape[1], x.shape[2]
        D = W // nh
        for L in range(cfg["layers"]):
            q_ = pre + "layers.%d." % L
            h = F.layer_norm(x, (W,), self.p(q_ + "ln1.weight"), self.p(q_ + "ln1.bias"), eps)
            q, k, v = (self.linear(h, q_ + "attn." + t).reshape(B, T, nh, D).transpose(1, 2) for t in "qkv")
            att = torch.softmax((q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D)), dim=-1)
            x = x + self.linear((att @ v).transpose(1, 2).reshape(B, T, W), q_ + "attn.o")
            h = F.layer_norm(x, (W,), self.p(q_ + "ln2.weight"), self.p(q_ + "ln2.bias"), eps)
            x = x + self.linear(F.gelu(self.linear(h, q_ + "mlp.fc1")), q_ + "mlp.fc2")
        return F.layer_norm(x, (W,), self.p(pre + "norm.weight"), self.p(pre + "norm.bias"), eps)

    @staticmethod
    def rmsnorm(x, w, eps):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w

    def rope(self, x):  # x [B, T, heads, D], positions 0 … T − 1; pairs (2i, 2i + 1)
        T = x.shape[1]
        cos, sin = self.cos[:T, None, :].to(x.dtype), self.sin[:T, None, :].to(x.dtype)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    def backbone(self, x):  # x [B, T, C] → hn [B, T, C]
        bb = self.h["backbone"]
        eps, H, G = bb["norm_eps"], bb["heads"], bb["kv_heads"]
        B, T, C = x.shape
        D = C // H
        mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
        for L in range(bb["layers"]):
            pre = "backbone.layers.%d." % L
            h = self.rmsnorm(x, self.p(pre + "attn_norm.weight"), eps)
            q = self.rope(self.linear(h, pre + "attn.q").reshape(B, T, H, D)).transpose(1, 2)
            k = self.rope(self.linear(h, pre + "attn.k").reshape(B, T, G, D)).transpose(1, 2)
            v = self.linear(h, pre + "attn.v").reshape(B, T, G, D).transpose(1, 2)
            k, v = k.repeat_interleave(H // G, dim=1), v.repeat_interleave(H // G, dim=1)
            s = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D)) + mask.to(q.dtype)
            o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, H * D)
            x = x + self.linear(o, pre + "attn.o")
            h = self.rmsnorm(x, self.p(pre + "ffn_norm.weight"), eps)
            x = x + self.linear(F.silu(self.linear(h, pre + "ffn.gate")) * self.linear(h, pre + "ffn.up"),
                                pre + "ffn.down")
        return self.rmsnorm(x, self.p("backbone.norm.weight"), eps)

    def loss(self, img, tokens, mask):
        """Token cross-entropy of the full path: mean over the masked-in text tokens of the batch."""
        B, L = tokens.shape
        emb = self.p("backbone.tok_embed.weight")
        prefix = self.linear(self.encoder(img), "projectors.image")
        bos = emb[torch.full((B, 1), self.h["text"]["bos_id"], dtype=torch.long)]
        x = torch.cat([bos, prefix.to(bos.dtype) if prefix.dtype != bos.dtype else prefix, emb[tokens]], 1)
        hn = self.backbone(x)
        p0 = 1 + prefix.shape[1]
        rows = hn[:, p0 - 1:p0 - 1 + L]  # the row before each text token predicts it
        tie = self.h["backbone"].get("tie_lm_head")
        logits = self.linear(rows, "backbone.lm_head", weight="backbone.tok_embed.weight" if tie else None)
        ce = F.cross_entropy(logits.float().reshape(B * L, -1), tokens.reshape(-1), reduction="none")
        m = mask.reshape(-1).float()
        return (ce * m).sum() / m.sum()


def m4_dump(args, precision, work, time_steps):
    out = os.path.join(work, precision)
    os.makedirs(out, exist_ok=True)
    case = {"name": "bench", "mode": "full", "objective": "lm", "path": "full", "modality": "image",
            "batch": args.batch, "tokens": args.tokens, "seed": args.seed, "bf16": precision == "bf16",
            "time_steps": time_steps}
    cases = os.path.join(out, "cases.json")
    with open(cases, "w") as f:
        json.dump({"firmware": args.firmware, "out_dir": out, "cases": [case]}, f)
    r = subprocess.run([args.dump, cases], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("train_bench: m4_grad_dump failed (%d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
    with open(os.path.join(out, "bench.json")) as f:
        return json.load(f)


def batch_of(meta):
    img = torch.tensor(np.stack([np.load(s["signal"]) for s in meta["samples"]]), dtype=torch.float32)
    tokens = torch.tensor([s["tokens"] for s in meta["samples"]], dtype=torch.long)
    mask = torch.tensor([s["loss_mask"] or [1] * len(s["tokens"]) for s in meta["samples"]])
    return img, tokens, mask


def torch_loss(model, batch, precision):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        return model.loss(*batch)


def torch_times(model, batch, precision, steps):
    params = list(model.params.values())
    opt = torch.optim.AdamW(params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    times = []
    for i in range(steps + 1):  # the first update is not timed
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = torch_loss(model, batch, precision)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if i > 0:
            times.append(1000.0 * (time.perf_counter() - t0))
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--firmware", default=os.path.join(REPO, "firmware", "m4-tiny.m4fw"))
    ap.add_argument("--dump", default=os.path.join(REPO, "build", "tests", "train", "m4_grad_dump"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=16, help="text tokens per sample")
    ap.add_argument("--steps", type=int, default=8, help="timed updates per round and engine")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--precisions", default="f32,bf16")
    ap.add_argument("--work-dir", default=None)
    ap.add_argument("--keep-denormals", action="store_true",
                    help="leave PyTorch's denormal handling as it is (default: flush to zero, its faster setting)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    # On Intel cores an operation on a denormal takes a microcode assist (a 648×1024×256 f32 matmul
    # of denormal inputs: 438 ms instead of 9 ms on a 2-core Xeon), and PyTorch's update meets
    # denormals (small second moments, decayed weights): flushing them is PyTorch's own fast
    # setting, so the baseline runs with it unless asked not to.
    if not args.keep_denormals:
        torch.set_flush_denormal(True)
    os.environ["M4_THREADS"] = str(args.threads)
    work = args.work_dir or tempfile.mkdtemp(prefix="m4-torch-bench-")
    print("train_bench: firmware %s, batch %d × (1 + image tokens + %d text tokens), %d threads, torch %s, "
          "PyTorch denormals %s"
          % (args.firmware, args.batch, args.tokens, args.threads, torch.__version__,
             "kept" if args.keep_denormals else "flushed to zero"))
    rows = []
    for precision in args.precisions.split(","):
        meta = m4_dump(args, precision, work, 0)
        model = TorchModel(M4File.load(meta["export"]))
        batch = batch_of(meta)
        got = float(torch_loss(model, batch, precision))
        tol = 1e-4 if precision == "f32" else 2e-2
        rel = abs(got - meta["loss"]) / abs(meta["loss"])
        print("%s: loss m4 %.6f, PyTorch %.6f, relative difference %.2e (bound %.0e)"
              % (precision, meta["loss"], got, rel, tol))
        if not rel <= tol:
            sys.exit("train_bench: the two engines disagree on the loss; not timing them")
        m4_med, pt_med, ratios = [], [], []
        for _ in range(args.rounds):
            m4 = statistics.median(m4_dump(args, precision, work, args.steps + 1)["update_ms"][1:])
            model = TorchModel(M4File.load(meta["export"]))
            pt = statistics.median(torch_times(model, batch, precision, args.steps))
            m4_med.append(m4), pt_med.append(pt), ratios.append(pt / m4)
            print("  round: m4 %.1f ms, PyTorch %.1f ms per update (PyTorch / m4 %.2f)" % (m4, pt, pt / m4))
        rows.append((precision, statistics.median(m4_med), statistics.median(pt_med), ratios))
    print("\n| precision | m4 ms/update | PyTorch ms/update | PyTorch / m4 (per round) |")
    print("|---|---|---|---|")
    for precision, m4, pt, ratios in rows:
        print("| %s | %.1f | %.1f | %s |" % (precision, m4, pt, ", ".join("%.2f" % r for r in ratios)))


if __name__ == "__main__":
    main()
