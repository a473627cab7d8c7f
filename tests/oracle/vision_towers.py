"""CLIP vision towers for tests/oracle/test_import.py: a random-weight checkpoint in Hugging Face's
layout (CLIPVisionModel / CLIPModel tensor names, config.json keys) and a PyTorch forward pass
written from CLIP's definition, not from m4:

    pixels u = (v − mean) / std  (v in [0, 1], per channel)
    x = [class_embedding; conv(u) (no bias)] + position_embedding
    x = pre_layrnorm(x)
    per layer: x += out_proj(attn(layer_norm1(x)));  x += fc2(act(fc1(layer_norm2(x))))
    last_hidden_state = x;  pooler_output = post_layernorm(x[0])

act: quick_gelu x·σ(1.702·x) (CLIP's default hidden_act) unless the config names another."""
import math

import numpy as np
import torch

# OpenAI CLIP's pixel statistics: CLIPImageProcessor's defaults.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

HF_ACT = {
    "gelu": lambda x: torch.nn.functional.gelu(x),
    "gelu_pytorch_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


def clip_checkpoint(rng, full, Wd=32, Fm=64, layers=2, heads=4, S=16, p=4, hidden_act=None):
    """full: a CLIPModel checkpoint (model_type "clip", vision_config, a text tower, both
    projections, logit_scale); else a CLIPVisionModel (model_type "clip_vision_model").
    Returns (config.json dict, vision config dict, tensors by HF name)."""
    vc = {"hidden_size": Wd, "intermediate_size": Fm, "num_hidden_layers": layers, "num_attention_heads": heads,
          "image_size": S, "patch_size": p, "num_channels": 3, "layer_norm_eps": 1e-5, "projection_dim": 24}
    if hidden_act is not None:
        vc["hidden_act"] = hidden_act
    cfg = {"model_type": "clip", "vision_config": vc, "text_config": {"hidden_size": 16}, "projection_dim": 24} \
        if full else dict(vc, model_type="clip_vision_model")
    T = (S // p) ** 2 + 1
    v = "vision_model."
    t = {v + "embeddings.class_embedding": 0.5 * rng.standard_normal(Wd),
         v + "embeddings.patch_embedding.weight": rng.standard_normal((Wd, 3, p, p)) / math.sqrt(3 * p * p),
         v + "embeddings.position_embedding.weight": 0.1 * rng.standard_normal((T, Wd)),
         v + "pre_layrnorm.weight": 1 + 0.1 * rng.standard_normal(Wd),
         v + "pre_layrnorm.bias": 0.1 * rng.standard_normal(Wd),
         v + "post_layernorm.weight": 1 + 0.1 * rng.standard_normal(Wd),
         v + "post_layernorm.bias": 0.1 * rng.standard_normal(Wd)}
    for l in range(layers):
        q = v + "encoder.layers.%d." % l
        for m, (o, i) in {"self_attn.q_proj": (Wd, Wd), "self_attn.k_proj": (Wd, Wd), "self_attn.v_proj": (Wd, Wd),
                          "self_attn.out_proj": (Wd, Wd), "mlp.fc1": (Fm, Wd), "mlp.fc2": (Wd, Fm)}.items():
            t[q + m + ".weight"] = rng.standard_normal((o, i)) / math.sqrt(i)
            t[q + m + ".bias"] = 0.1 * rng.standard_normal(o)
        for m in ("layer_norm1", "layer_norm2"):
            t[q + m + ".weight"] = 1 + 0.1 * rng.standard_normal(Wd)
            t[q + m + ".bias"] = 0.1 * rng.standard_normal(Wd)
    # What m4 leaves out: the projection into CLIP's joint space (m4 has its own embed_proj) and,
    # in a full CLIPModel, the text tower and logit_scale.
    t["visual_projection.weight"] = rng.standard_normal((24, Wd))
    if full:
        t["text_model.embeddings.token_embedding.weight"] = rng.standard_normal((50, 16))
        t["text_model.final_layer_norm.weight"] = np.ones(16)
        t["text_projection.weight"] = rng.standard_normal((24, 16))
        t["logit_scale"] = np.array(2.6592)
    t = {k: np.asarray(a, dtype=np.float32) for k, a in t.items()}
    # Older checkpoints also saved the position_ids buffer (int64).
    t[v + "embeddings.position_ids"] = np.arange(T, dtype=np.int64)[None]
    return cfg, vc, t


def clip_vision(vc, t, img, mean=CLIP_MEAN, std=CLIP_STD):
    """img [S, S, 3] in m4's input space x = 2v − 1 -> (last_hidden_state [T, W], pooler_output [W])."""
    eps, nh, act = vc["layer_norm_eps"], vc["num_attention_heads"], HF_ACT[vc.get("hidden_act", "quick_gelu")]
    v = "vision_model."
    px = (torch.as_tensor(img, dtype=torch.float64) + 1) / 2                       # v in [0, 1]
    px = (px - torch.tensor(mean, dtype=torch.float64)) / torch.tensor(std, dtype=torch.float64)
    px = px.permute(2, 0, 1)[None]                                                   # NCHW
    x = torch.nn.functional.conv2d(px, t[v + "embeddings.patch_embedding.weight"], None, stride=vc["patch_size"])
    x = torch.cat([t[v + "embeddings.class_embedding"][None], x.flatten(2).transpose(1, 2)[0]], 0)
    x = x + t[v + "embeddings.position_embedding.weight"]
    T, Wd = x.shape
    D = Wd // nh
    ln = torch.nn.functional.layer_norm
    x = ln(x, (Wd,), t[v + "pre_layrnorm.weight"], t[v + "pre_layrnorm.bias"], eps)
    for l in range(vc["num_hidden_layers"]):
        p = v + "encoder.layers.%d." % l

        def lin(h, m):
            return h @ t[p + m + ".weight"].T + t[p + m + ".bias"]
        h = ln(x, (Wd,), t[p + "layer_norm1.weight"], t[p + "layer_norm1.bias"], eps)
        q, k, vv = (lin(h, "self_attn.%s_proj" % n).view(T, nh, D).transpose(0, 1) for n in "qkv")
        a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D), -1) @ vv
        x = x + lin(a.transpose(0, 1).reshape(T, Wd), "self_attn.out_proj")
        h = ln(x, (Wd,), t[p + "layer_norm2.weight"], t[p + "layer_norm2.bias"], eps)
        x = x + lin(act(lin(h, "mlp.fc1")), "mlp.fc2")
    pooled = ln(x[0], (Wd,), t[v + "post_layernorm.weight"], t[v + "post_layernorm.bias"], eps)
    return x, pooled
