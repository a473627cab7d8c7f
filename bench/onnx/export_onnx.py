#!/usr/bin/python3
"""Export m4's image encoder path from a .m4fw firmware to an ONNX model, for the ONNX Runtime
comparison in bench/onnx/run.sh.

    /usr/bin/python3 bench/onnx/export_onnx.py --firmware vit.m4fw --out vit.onnx
    /usr/bin/python3 bench/onnx/export_onnx.py --firmware vit.m4fw --write-inputs DIR --count 3

Needs Debian's python3-onnx (1.12, opset 17) and numpy; the firmware is read with the project's
independent reader tests/oracle/m4file.py (imported, not duplicated).

Input boundary (shared by both engines)
---------------------------------------
The ONNX model's input is `image` [batch, S, S, 3] float32: the decoded, resized and normalised
pixels ((v/255 - 0.5)/0.5, RGB, row-major HWC). That is exactly the per-image signal that m4's
`Model::run(Path::Encoder, Image, ...)` receives (`Request::signal`, `input_values()` = S·S·3
values) and that `m4fw bench model` times. Image decoding and resizing are outside both engines;
patchify (src/model/frontend.cpp `image_patches`) is inside both: here it is a Reshape/Transpose.

The output `embedding` [batch, embed_dim] is m4's encoder-path output `Output::embedding`:

    patches = patchify(img)                              [T, P]  P = p·p·3, channel fastest
    x = patches·Wpᵀ + bp + pos                           [T, W]  (no CLS token: T = (S/p)², 196)
    per layer:  h = LN1(x); q,k,v = h·Wᵀ + b; a = softmax(q·kᵀ/√D)·v per head (non-causal)
                x += a·Woᵀ + bo;  x += fc2(gelu_erf(fc1(LN2(x))))
    tokens = LN(x);  z = mean_t(tokens)·Weᵀ (no bias);  embedding = z / ‖z‖₂

(src/model/encoder.cpp, src/model/model.cpp, src/ops/gelu.cpp: exact erf GELU, not tanh.)

The graph uses standard ONNX ops only, written in the shapes a PyTorch exporter would produce
(MatMul on [B, T, in] × [in, out] + Add, LayerNormalization, the erf GELU pattern, Softmax), so
ONNX Runtime's graph optimiser can apply its usual fusions (MatMul+Add, Gelu/BiasGelu, ...).
"""

import argparse
import os
import sys

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    sys.exit("export_onnx.py: python3-onnx is missing (apt-get install -y python3-onnx) "
             "- run with /usr/bin/python3")

# Reuse the project's reader of the .m4fw container instead of writing a second one.
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "oracle"))
from m4file import M4File  # noqa: E402

OPSET = 17  # LayerNormalization exists from opset 17; python3-onnx 1.12 supports up to 17


class GraphBuilder:
    """Collects nodes and f32 initializers, naming intermediate values uniquely."""

    def __init__(self, fw, dequantize=False):
        self.dequantize = dequantize
        self.fw = fw
        self.nodes = []
        self.inits = []
        self.counter = 0

    def tmp(self, hint):
        self.counter += 1
        return "%s_%d" % (hint, self.counter)

    def const(self, name, array, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=dtype), name))
        return name

    def weight(self, name):
        """A firmware tensor as f32. By default only f32 firmware is accepted: with bf16 / i8
        weights m4 also rounds or quantises the activations, so an f32 graph computes something
        slightly different. With --dequantize, bf16 tensors are widened exactly and i8 tensors
        become q·scale: ONNX Runtime then runs f32 on exactly the weight values m4 holds (for the
        comparison of m4's bf16 / int8 paths against ORT's f32 one, with a looser check)."""
        if self.fw.dtypes[name] != "f32" and not self.dequantize:
            raise SystemExit("%s: tensor %s is %s; export an f32 firmware (m4fw init --dtype f32) "
                             "or pass --dequantize" % (self.fw.path, name, self.fw.dtypes[name]))
        return np.asarray(self.fw.dequant(name), dtype=np.float32)

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.tmp(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def linear(self, x, prefix, bias=True):
        """y = x·Wᵀ + b on [B, T, in]. m4 stores W as [out, in]; the initializer is Wᵀ [in, out]
        for MatMul, as torch.onnx exports nn.Linear on 3-D inputs."""
        wt = self.const(prefix + ".weight_t", self.weight(prefix + ".weight").T)
        y = self.op("MatMul", [x, wt], hint=prefix.split(".")[-1])
        if bias:
            b = self.const(prefix + ".bias", self.weight(prefix + ".bias"))
            y = self.op("Add", [y, b], hint=prefix.split(".")[-1] + "_b")
        return y

    def layernorm(self, x, prefix, eps):
        w = self.const(prefix + ".weight", self.weight(prefix + ".weight"))
        b = self.const(prefix + ".bias", self.weight(prefix + ".bias"))
        return self.op("LayerNormalization", [x, w, b], hint="ln", axis=-1, epsilon=float(eps))

    def gelu_erf(self, x):
        """0.5·x·(1 + erf(x/√2)) written in the node order ORT's GeluFusion recognises."""
        d = self.op("Div", [x, "c_sqrt2"], hint="gelu_div")
        e = self.op("Erf", [d], hint="gelu_erf")
        a = self.op("Add", [e, "c_one"], hint="gelu_add")
        m = self.op("Mul", [x, a], hint="gelu_mul")
        return self.op("Mul", [m, "c_half"], hint="gelu")


def build_image_encoder(fw, qkv="separate", dequantize=False):
    h = fw.header
    if "image" not in h.get("encoders", {}):
        raise SystemExit("%s: the firmware has no image encoder" % fw.path)
    cfg = h["encoders"]["image"]
    # The graph below is m4's plain encoder: refuse an imported tower's layout instead of mis-exporting it.
    for key, plain in (("cls_token", False), ("pre_norm", False), ("pool", "mean"), ("activation", "gelu")):
        if cfg.get(key, plain) != plain:
            raise SystemExit("%s: the image encoder has %s = %r, which this exporter does not build "
                             "(docs/formats.md)" % (fw.path, key, cfg[key]))
    S, p, C = cfg["image_size"], cfg["patch_size"], cfg.get("channels", 3)
    W, Hm, L, eps, E = cfg["width"], cfg["heads"], cfg["layers"], cfg["norm_eps"], h["embed_dim"]
    g, D = S // p, W // cfg["heads"]
    T = g * g
    pre = "encoders.image."
    b = GraphBuilder(fw, dequantize)

    # Shared constants (the GELU ones must be scalars for ORT's fusion to match).
    b.const("c_sqrt2", np.array(np.sqrt(2.0), dtype=np.float32))
    b.const("c_one", np.array(1.0, dtype=np.float32))
    b.const("c_half", np.array(0.5, dtype=np.float32))
    b.const("c_scale", np.array(1.0 / np.sqrt(np.float32(D)), dtype=np.float32))  # as m4: 1/sqrt(float(D))
    b.const("shape_grid", np.array([-1, g, p, g, p, C]), np.int64)
    b.const("shape_patches", np.array([-1, T, p * p * C]), np.int64)
    b.const("shape_heads", np.array([0, 0, Hm, D]), np.int64)   # 0: copy that dim (B, T)
    b.const("shape_merge", np.array([0, 0, W]), np.int64)

    # Patchify: img[gy·p + dy, gx·p + dx, c] -> patch (gy, gx), value (dy, dx, c), c fastest.
    x = b.op("Reshape", ["image", "shape_grid"], hint="grid")            # [B, gy, dy, gx, dx, c]
    x = b.op("Transpose", [x], hint="grid_t", perm=[0, 1, 3, 2, 4, 5])   # [B, gy, gx, dy, dx, c]
    x = b.op("Reshape", [x, "shape_patches"], hint="patches")            # [B, T, P]
    x = b.linear(x, pre + "patch_embed")
    pos = b.const(pre + "pos_embed", b.weight(pre + "pos_embed"))        # [T, W], broadcast over B
    x = b.op("Add", [x, pos], hint="x")

    def heads(t, perm):
        return b.op("Transpose", [b.op("Reshape", [t, "shape_heads"], hint="split")], hint="heads", perm=perm)

    for layer in range(L):
        q_ = pre + "layers.%d." % layer
        hn = b.layernorm(x, q_ + "ln1", eps)
        if qkv == "fused":
            # One [W, 3W] MatMul then Split: a larger GEMM that may suit ORT better at batch 1.
            wt = np.concatenate([b.weight(q_ + "attn.%s.weight" % n).T for n in "qkv"], axis=1)
            bias = np.concatenate([b.weight(q_ + "attn.%s.bias" % n) for n in "qkv"])
            y = b.op("Add", [b.op("MatMul", [hn, b.const(q_ + "attn.qkv.weight_t", wt)], hint="qkv"),
                             b.const(q_ + "attn.qkv.bias", bias)], hint="qkv_b")
            split = b.const(q_ + "attn.qkv.split", np.array([W, W, W]), np.int64)
            q, k, v = (b.tmp(n) for n in "qkv")
            b.nodes.append(helper.make_node("Split", [y, split], [q, k, v], name=b.tmp("split"), axis=-1))
        else:
            q = b.linear(hn, q_ + "attn.q")
            k = b.linear(hn, q_ + "attn.k")
            v = b.linear(hn, q_ + "attn.v")
        qh = heads(q, [0, 2, 1, 3])                                     # [B, H, T, D]
        kh = heads(k, [0, 2, 3, 1])                                     # [B, H, D, T]
        vh = heads(v, [0, 2, 1, 3])                                     # [B, H, T, D]
        s = b.op("Mul", [b.op("MatMul", [qh, kh], hint="qk"), "c_scale"], hint="scores")
        a = b.op("MatMul", [b.op("Softmax", [s], hint="probs", axis=-1), vh], hint="av")  # [B, H, T, D]
        a = b.op("Reshape", [b.op("Transpose", [a], hint="av_t", perm=[0, 2, 1, 3]), "shape_merge"], hint="attn")
        x = b.op("Add", [x, b.linear(a, q_ + "attn.o")], hint="x")
        hn = b.layernorm(x, q_ + "ln2", eps)
        f = b.gelu_erf(b.linear(hn, q_ + "mlp.fc1"))
        x = b.op("Add", [x, b.linear(f, q_ + "mlp.fc2")], hint="x")

    tokens = b.layernorm(x, pre + "norm", eps)
    pooled = b.op("ReduceMean", [tokens], hint="pooled", axes=[1], keepdims=0)   # [B, W]
    z = b.linear(pooled, pre + "embed_proj", bias=False)                          # [B, E]
    b.nodes.append(helper.make_node("LpNormalization", [z], ["embedding"], name="l2norm", axis=-1, p=2))

    graph = helper.make_graph(
        b.nodes, "m4_image_encoder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", S, S, C])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", E])],
        initializer=b.inits)
    model = helper.make_model(graph, producer_name="m4 bench/onnx/export_onnx.py",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8  # ONNX 1.12's IR for opset 17; readable by any current ONNX Runtime
    doc = ("m4 image encoder path of %s (fingerprint %s): input image [batch, %d, %d, 3] normalised "
           "HWC pixels; output L2-normalised embedding [batch, %d]; %d tokens (no CLS), "
           "width %d, %d layers, %d heads, ffn %d, erf GELU, qkv %s"
           % (h.get("name"), fw.fingerprint, S, S, E, T, W, L, Hm, cfg["ffn"], qkv))
    model.doc_string = doc
    return model, doc


def write_inputs(fw, out_dir, count, seed):
    """Deterministic test images in m4's input range ([-1, 1] after normalisation) as .npy files
    [S, S, 3] f32, which `m4fw run --modality image` reads as already-normalised images."""
    S = fw.header["encoders"]["image"]["image_size"]
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i in range(count):
        # A smooth gradient plus noise: image-like, and not a degenerate (constant) input.
        yy, xx = np.meshgrid(np.linspace(-1, 1, S), np.linspace(-1, 1, S), indexing="ij")
        base = np.stack([xx * (0.3 + 0.2 * i), yy * 0.5, (xx * yy) * 0.7], axis=-1)
        img = np.clip(base + rng.normal(0.0, 0.35, size=(S, S, 3)), -1.0, 1.0).astype(np.float32)
        path = os.path.join(out_dir, "img%d.npy" % i)
        np.save(path, img)
        paths.append(path)
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--firmware", required=True, help=".m4fw firmware with an image encoder")
    ap.add_argument("--out", help="ONNX model to write")
    ap.add_argument("--qkv", choices=("separate", "fused"), default="separate",
                    help="q/k/v as three MatMuls (as m4 and HF ViT exports) or one fused MatMul + Split")
    ap.add_argument("--dequantize", action="store_true",
                    help="accept bf16 / i8 firmware: export its weights' f32 values")
    ap.add_argument("--write-inputs", metavar="DIR", help="also write test images DIR/img<i>.npy")
    ap.add_argument("--count", type=int, default=3, help="number of test images")
    ap.add_argument("--seed", type=int, default=7, help="seed of the test images")
    a = ap.parse_args()
    if not a.out and not a.write_inputs:
        ap.error("nothing to do: give --out and/or --write-inputs")

    fw = M4File.load(a.firmware, expect_magic=b"M4FW")
    if a.out:
        model, doc = build_image_encoder(fw, a.qkv, a.dequantize)
        onnx.checker.check_model(model)  # structure and op schemas; shapes are checked by ORT
        onnx.save(model, a.out)
        print("wrote %s (%.1f MiB): %s" % (a.out, os.path.getsize(a.out) / 1048576.0, doc))
    if a.write_inputs:
        for path in write_inputs(fw, a.write_inputs, a.count, a.seed):
            print(path)


if __name__ == "__main__":
    main()
