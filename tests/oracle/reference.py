"""Float64 reference forward pass of the m4 model, written from docs/architecture.md
("Model math", "Kernels and dispatch" numerics) and docs/formats.md only.

    fw = M4File.load("fw.m4fw"); ad = Adapter(M4File.load("a.m4a"))
    m = Model(fw, mode="emulate")     # "emulate": bf16 / W8A8 numerics of the weight dtype
                                       # "plain":   dequantised weights, exact float64 matmuls
    m.encoder_path("image", img, ad) ; m.backbone_path(tokens, ad) ; m.full_path("audio", wav, tokens, ad)

Weight dtypes of linear layers (and tok_embed when used as the tied LM head):
  f32  : y = x·Wᵀ (exact, float64 here)
  bf16 : x rounded f32 -> bf16 (nearest-even), products with bf16 W summed (float64 here)
  i8   : per row sx = max|x|/127, qx = round_half_even(x/sx) in [-127, 127],
         y = sx·scale_w[n]·Σ qx·qw  (integer sums exact)
LoRA and head matmuls are f32 (float64 here), computed on the unrounded x.
"""

import math

import numpy as np
import torch

try:
    from .m4file import I8Tensor, f32_to_bf16_bits, bf16_bits_to_f32, encoder_tokens_and_patch
except ImportError:  # run as a script from this directory
    from m4file import I8Tensor, f32_to_bf16_bits, bf16_bits_to_f32, encoder_tokens_and_patch

torch.set_num_threads(2)
DT = torch.float64


def t64(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def round_bf16(x):
    """float64 tensor -> value of (x as f32) rounded to bf16 nearest-even, as float64."""
    x32 = x.detach().to(torch.float32).numpy()
    return t64(bf16_bits_to_f32(f32_to_bf16_bits(x32)).reshape(x32.shape)).to(x.dtype)


def quantize_rows_i8(x):
    """W8A8 dynamic activation quantisation of the rows of x (float64 [M, K]).
    Returns (qx float64 holding integers, sx float64 [M]) computed in f32 like the kernel."""
    x32 = x.to(torch.float32)
    amax = x32.abs().amax(dim=-1, keepdim=True)
    sx = amax / 127.0                                   # f32 division
    safe = torch.where(sx > 0, sx, torch.ones_like(sx))
    qx = torch.round(x32 / safe)                        # torch.round = round half to even
    qx = torch.clamp(qx, -127, 127)
    qx = torch.where(sx > 0, qx, torch.zeros_like(qx))
    return qx.to(x.dtype), sx.to(x.dtype).squeeze(-1)


# ---------------------------------------------------------------------------------------------
# Audio front end: log-mel, computed with torch.stft (independent of the spec's DFT wording).

def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate, n_fft, n_mels):
    """HTK triangular filters, no normalisation: [n_mels, n_fft/2 + 1] float64."""
    h = mel_to_hz(np.linspace(hz_to_mel(0.0), hz_to_mel(sample_rate / 2.0), n_mels + 2))
    f = np.arange(n_fft // 2 + 1, dtype=np.float64) * sample_rate / n_fft
    lo, ce, hi = h[:-2, None], h[1:-1, None], h[2:, None]
    up = (f[None, :] - lo) / (ce - lo)
    down = (hi - f[None, :]) / (hi - ce)
    return np.maximum(0.0, np.minimum(up, down))


def pad_audio(wav, clip_samples):
    wav = np.asarray(wav, dtype=np.float64).reshape(-1)
    if wav.shape[0] > clip_samples:
        raise ValueError("audio longer than clip_samples")
    return np.concatenate([wav, np.zeros(clip_samples - wav.shape[0])])


def logmel(wav, cfg):
    """[n_frames, n_mels] float64 log-mel of the zero-padded clip."""
    x = t64(pad_audio(wav, cfg["clip_samples"]))
    n_fft, hop = cfg["n_fft"], cfg["hop"]
    win = torch.hann_window(n_fft, periodic=True, dtype=DT)
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, win_length=n_fft, window=win,
                      center=False, onesided=True, return_complex=True)   # [bins, frames]
    power = spec.real ** 2 + spec.imag ** 2
    n_frames = 1 + (cfg["clip_samples"] - n_fft) // hop
    assert power.shape[1] == n_frames, (power.shape, n_frames)
    fb = t64(mel_filterbank(cfg["sample_rate"], n_fft, cfg["n_mels"]))
    return torch.log(power.T @ fb.T + 1e-6)


# ---------------------------------------------------------------------------------------------
# Patchify

def image_patches(img, cfg):
    S, p = cfg["image_size"], cfg["patch_size"]
    c = cfg.get("channels", 3)
    img = t64(img)
    assert tuple(img.shape) == (S, S, c), img.shape
    n = S // p
    # [gy, dy, gx, dx, c] -> [gy, gx, dy, dx, c]
    return img.reshape(n, p, n, p, c).permute(0, 2, 1, 3, 4).reshape(n * n, p * p * c)


def audio_patches(wav, cfg):
    lm = logmel(wav, cfg)
    pf = cfg["patch_frames"]
    n = lm.shape[0] // pf
    return lm[:n * pf].reshape(n, pf * cfg["n_mels"])


def imu_patches(x, cfg):
    W, ps, ch = cfg["window"], cfg["patch_size"], cfg.get("channels", 6)
    x = np.asarray(x, dtype=np.float64).reshape(-1, ch)
    if x.shape[0] > W:
        raise ValueError("IMU window longer than window")
    x = np.concatenate([x, np.zeros((W - x.shape[0], ch))])
    n = W // ps
    return t64(x[:n * ps].reshape(n, ps * ch))


PATCHIFY = {"image": image_patches, "audio": audio_patches, "imu": imu_patches}


# ---------------------------------------------------------------------------------------------

class Adapter:
    """LoRA factors and head of one .m4a (an M4File)."""

    def __init__(self, f):
        self.file = f
        h = f.header
        self.header = h
        self.task = h["task"]
        self.path = h["path"]
        self.modality = h["modality"]
        self.lora = {}
        self.scale = 0.0
        lora = h.get("lora")
        if lora:
            self.scale = float(lora["alpha"]) / float(lora["rank"])
            for X in lora["targets"]:
                self.lora[X] = (t64(f.tensors["lora.%s.a" % X]), t64(f.tensors["lora.%s.b" % X]))
        self.head = h.get("head")
        # A head with a hidden layer (head.hidden_dim > 0): head.hidden.* then head.out.*.
        self.hidden = self.head.get("hidden_dim", 0) if self.head else 0
        out = "head.out" if self.hidden else "head"
        self.head_w = t64(f.tensors[out + ".weight"]) if self.head else None
        self.head_b = t64(f.tensors[out + ".bias"]) if out + ".bias" in f.tensors else None
        if self.hidden:
            self.hidden_w = t64(f.tensors["head.hidden.weight"])
            self.hidden_b = t64(f.tensors["head.hidden.bias"])
        self.used = set()

    def apply_head(self, z):
        t = self.head["type"]
        if self.hidden:
            z = gelu(z @ self.hidden_w.to(z.dtype).T + self.hidden_b.to(z.dtype))
        y = z @ self.head_w.to(z.dtype).T
        if t in ("classify", "regress"):
            return y + self.head_b.to(z.dtype)
        if t == "embed":
            return y / torch.linalg.norm(y)
        raise ValueError("head type %r" % t)


def layernorm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def rmsnorm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def quick_gelu(x):
    return x * torch.sigmoid(1.702 * x)


# An encoder's "activation" (docs/formats.md): the erf GELU unless the header names another form.
ACTIVATIONS = {"gelu": gelu, "gelu_tanh": gelu_tanh, "quick_gelu": quick_gelu}


def silu(x):
    return x * torch.sigmoid(x)


def normalise(z):
    return z / torch.linalg.norm(z)


class Model:
    def __init__(self, fw, mode="emulate", precision=DT):
        """precision: float64 (the reference) or float32 (a second emulation, used to tell
        rounding-decision flips near ties from real differences)."""
        assert mode in ("emulate", "plain")
        self.fw = fw
        self.mode = mode
        self.dt = precision
        self.h = fw.header
        self._cache = {}

    # -- weights ----------------------------------------------------------------------------
    def p(self, name):
        """float64 copy of a (dequantised) tensor."""
        key = ("p", name)
        if key not in self._cache:
            t = self.fw.tensors[name]
            self._cache[key] = t64(t.dequant() if isinstance(t, I8Tensor) else t).to(self.dt)
        return self._cache[key]

    def matmul_w(self, x, wname):
        """x [M, K] float64 times weight tensor `wname` [N, K] transposed, with the documented
        numerics of that weight's dtype (mode "emulate") or exactly (mode "plain")."""
        dtype = self.fw.dtypes[wname]
        if self.mode == "plain" or dtype == "f32":
            return x @ self.p(wname).T
        if dtype == "bf16":
            return round_bf16(x) @ self.p(wname).T           # W already holds bf16 values
        if dtype == "i8":
            key = ("i8", wname)
            if key not in self._cache:
                t = self.fw.tensors[wname]
                self._cache[key] = (t64(t.q.astype(np.float64)), t64(t.scale))
            qw, sw = self._cache[key]
            qx, sx = quantize_rows_i8(x)
            y = (qx.to(DT) @ qw.T) * sx.to(DT)[:, None] * sw[None, :]    # exact integer sums
            return y.to(self.dt)
        raise ValueError("weight %s has dtype %s" % (wname, dtype))

    def linear(self, x, X, adapter, bias=True, weight=None):
        """The LoRA choke point: y = x·Wᵀ + b + s·(x·Aᵀ)·Bᵀ."""
        y = self.matmul_w(x, weight or X + ".weight")
        if bias:
            y = y + self.p(X + ".bias")
        if adapter is not None and X in adapter.lora:
            A, B = adapter.lora[X]
            y = y + adapter.scale * ((x @ A.to(x.dtype).T) @ B.to(x.dtype).T)
            adapter.used.add(X)
        return y

    # -- encoders ---------------------------------------------------------------------------
    def patches(self, mod, inp):
        return PATCHIFY[mod](inp, self.h["encoders"][mod]).to(self.dt)

    def encoder_tokens(self, mod, inp, adapter):
        return self.trunk(self.h["encoders"][mod], "encoders.%s." % mod, self.patches(mod, inp), adapter)

    def trunk(self, cfg, pre, patches, adapter):
        """Encoder-shaped transformer (encoders, and the image decoder's trunk): patches -> tokens."""
        eps, nh = cfg["norm_eps"], cfg["heads"]
        x = self.linear(patches, pre + "patch_embed", adapter)
        if cfg.get("cls_token", False):          # a learned class token before the patches
            x = torch.cat([self.p(pre + "cls_token")[None, :], x], 0)
        x = x + self.p(pre + "pos_embed")
        T, W = x.shape
        if cfg.get("pre_norm", False):           # a layernorm before the first layer (CLIP)
            x = layernorm(x, self.p(pre + "pre_norm.weight"), self.p(pre + "pre_norm.bias"), eps)
        act = ACTIVATIONS[cfg.get("activation", "gelu")]
        D = W // nh
        for L in range(cfg["layers"]):
            q_ = pre + "layers.%d." % L
            h = layernorm(x, self.p(q_ + "ln1.weight"), self.p(q_ + "ln1.bias"), eps)
            q = self.linear(h, q_ + "attn.q", adapter).reshape(T, nh, D).transpose(0, 1)
            k = self.linear(h, q_ + "attn.k", adapter).reshape(T, nh, D).transpose(0, 1)
            v = self.linear(h, q_ + "attn.v", adapter).reshape(T, nh, D).transpose(0, 1)
            att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D), dim=-1)
            o = (att @ v).transpose(0, 1).reshape(T, W)
            x = x + self.linear(o, q_ + "attn.o", adapter)
            h = layernorm(x, self.p(q_ + "ln2.weight"), self.p(q_ + "ln2.bias"), eps)
            h = act(self.linear(h, q_ + "mlp.fc1", adapter))
            x = x + self.linear(h, q_ + "mlp.fc2", adapter)
        if cfg.get("pool", "mean") == "cls":     # tokens un-normed; the final norm goes to the class token
            return x
        return layernorm(x, self.p(pre + "norm.weight"), self.p(pre + "norm.bias"), eps)

    def encoder_z(self, mod, inp, adapter):
        tok = self.encoder_tokens(mod, inp, adapter)
        cfg, pre = self.h["encoders"][mod], "encoders.%s." % mod
        if cfg.get("pool", "mean") == "cls":
            pooled = layernorm(tok[:1], self.p(pre + "norm.weight"), self.p(pre + "norm.bias"), cfg["norm_eps"])
        else:
            pooled = tok.mean(0, keepdim=True)
        return self.linear(pooled, "encoders.%s.embed_proj" % mod, adapter, bias=False)[0]

    def encoder_path(self, mod, inp, adapter=None):
        z = self.encoder_z(mod, inp, adapter)
        if adapter is None or adapter.head is None:
            return normalise(z)
        return adapter.apply_head(z)

    # -- path 4: the image decoder alone ------------------------------------------------------
    def generator_path(self, img, adapter=None):
        """img [S, S, 3] on the decoder's grid -> image [S, S, 3] = unpatchify(x + IMG-Dec(x))."""
        cfg = self.h["decoders"]["image"]
        x = image_patches(img, cfg).to(self.dt)
        tok = self.trunk(cfg, "decoders.image.", x, adapter)
        y = x + self.linear(tok, "decoders.image.out_proj", adapter)
        S, p = cfg["image_size"], cfg["patch_size"]
        n = S // p
        # [gy, gx, dy, dx, c] -> [gy, dy, gx, dx, c]
        return y.reshape(n, n, p, p, 3).permute(0, 2, 1, 3, 4).reshape(S, S, 3)

    def draw_path(self, tokens, adapter=None):
        """The full path into the decoder: [BOS, text, queries] -> backbone -> the query rows'
        states -> from_backbone.proj -> IMG-Dec (no residual) -> image [S, S, 3]."""
        cfg = self.h["decoders"]["image"]
        q = self.p("decoders.image.from_backbone.queries")
        x = torch.cat([self.build_inputs(tokens), q.to(self.dt)], 0)
        hn = self.backbone_hidden(x, adapter)[-q.shape[0]:]
        d = self.linear(hn, "decoders.image.from_backbone.proj", adapter)
        y = self.linear(self.trunk(cfg, "decoders.image.", d, adapter), "decoders.image.out_proj", adapter)
        S, p = cfg["image_size"], cfg["patch_size"]
        n = S // p
        return y.reshape(n, n, p, p, 3).permute(0, 2, 1, 3, 4).reshape(S, S, 3)
    # -- path 4 over text: the speech decoder alone --------------------------------------------
    def speech_path(self, symbols, adapter=None):
        """symbol ids -> log-mel [T, n_mels] = out_proj(trunk(one-hot frames)); frame t holds the
        one-hot of character t // frames_per_char (symbol 0, padding, after the text)."""
        cfg = self.h["decoders"]["speech"]
        fpc, T = cfg["frames_per_char"], cfg["max_chars"] * cfg["frames_per_char"]
        x = torch.zeros(T, 32, dtype=torch.float64)
        for t in range(T):
            c = t // fpc
            x[t, symbols[c] if c < len(symbols) else 0] = 1.0
        tok = self.trunk(cfg, "decoders.speech.", x.to(self.dt), adapter)
        return self.linear(tok, "decoders.speech.out_proj", adapter)

    # -- backbone ---------------------------------------------------------------------------
    def embed_tokens(self, ids):
        return self.p("backbone.tok_embed.weight")[torch.as_tensor(list(ids), dtype=torch.long)]

    def rope(self, x, D):
        """x [T, heads, D] at positions 0..T-1; rotates pairs (2i, 2i+1)."""
        T = x.shape[0]
        theta = float(self.h["backbone"].get("rope_theta", 10000.0))
        i = torch.arange(D // 2, dtype=DT)
        ang = torch.arange(T, dtype=DT)[:, None] * theta ** (-2.0 * i / D)[None, :]
        cos = torch.cos(ang)[:, None, :].to(x.dtype)
        sin = torch.sin(ang)[:, None, :].to(x.dtype)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        out = torch.empty_like(x)
        out[..., 0::2] = x0 * cos - x1 * sin
        out[..., 1::2] = x0 * sin + x1 * cos
        return out

    def backbone_hidden(self, inputs, adapter):
        """inputs [T, C] -> hn = RMS(x)·norm after all layers."""
        bb = self.h["backbone"]
        eps, H, G = bb["norm_eps"], bb["heads"], bb["kv_heads"]
        x = inputs
        T, C = x.shape
        D = C // H
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
        for L in range(bb["layers"]):
            pre = "backbone.layers.%d." % L
            h = rmsnorm(x, self.p(pre + "attn_norm.weight"), eps)
            q = self.rope(self.linear(h, pre + "attn.q", adapter, bias=False).reshape(T, H, D), D)
            k = self.rope(self.linear(h, pre + "attn.k", adapter, bias=False).reshape(T, G, D), D)
            v = self.linear(h, pre + "attn.v", adapter, bias=False).reshape(T, G, D)
            rep = H // G
            k = k.repeat_interleave(rep, dim=1)       # query head h uses kv head h // rep
            v = v.repeat_interleave(rep, dim=1)
            s = torch.einsum("thd,shd->hts", q, k) / math.sqrt(D)
            s = s.masked_fill(mask[None], float("-inf"))
            o = torch.einsum("hts,shd->thd", torch.softmax(s, dim=-1), v).reshape(T, H * D)
            x = x + self.linear(o, pre + "attn.o", adapter, bias=False)
            h = rmsnorm(x, self.p(pre + "ffn_norm.weight"), eps)
            g = self.linear(h, pre + "ffn.gate", adapter, bias=False)
            u = self.linear(h, pre + "ffn.up", adapter, bias=False)
            x = x + self.linear(silu(g) * u, pre + "ffn.down", adapter, bias=False)
        return rmsnorm(x, self.p("backbone.norm.weight"), eps)

    def lm_logits(self, hn, adapter):
        w = "backbone.tok_embed.weight" if self.h["backbone"].get("tie_lm_head") else None
        return self.linear(hn, "backbone.lm_head", adapter, bias=False, weight=w)

    def text_embedding(self, hn, adapter=None):
        z = self.linear(hn.mean(0, keepdim=True), "backbone.text_proj", adapter, bias=False)[0]
        return normalise(z)

    def build_inputs(self, tokens, mod=None, inp=None, adapter=None):
        bos = self.h["text"]["bos_id"]
        parts = [self.embed_tokens([bos])]
        if mod is not None:
            tok = self.encoder_tokens(mod, inp, adapter)
            parts.append(self.linear(tok, "projectors.%s" % mod, adapter))
        if len(tokens):
            parts.append(self.embed_tokens(tokens))
        return torch.cat(parts, 0)

    def decoder_output(self, hn, adapter):
        """Head output for an adapter with a head; otherwise LM logits at all positions."""
        if adapter is not None and adapter.head is not None:
            pool = adapter.head.get("pool", "mean")
            z = hn.mean(0) if pool == "mean" else hn[-1]
            return adapter.apply_head(z)
        return self.lm_logits(hn, adapter)

    def backbone_path(self, tokens, adapter=None):
        return self.decoder_output(self.backbone_hidden(self.build_inputs(tokens), adapter),
                                   adapter)

    def full_path(self, mod, inp, tokens, adapter=None):
        x = self.build_inputs(tokens, mod, inp, adapter)
        return self.decoder_output(self.backbone_hidden(x, adapter), adapter)

    def prefix_len(self, mod=None):
        """Positions before the text tokens: BOS (+ the modality tokens on the full path)."""
        if mod is None:
            return 1
        return 1 + encoder_tokens_and_patch(mod, self.h["encoders"][mod])[0]

    def generation_logits(self, prompt, generated, adapter=None, mod=None, inp=None):
        """Logits that choose each generated token, recomputed without a cache:
        [len(generated), V] rows for positions prefix-1 .. prefix+n-2."""
        seq = list(prompt) + list(generated)
        x = self.build_inputs(seq, mod, inp, adapter)
        logits = self.lm_logits(self.backbone_hidden(x, adapter), adapter)
        start = self.prefix_len(mod) + len(prompt) - 1
        return logits[start:start + len(generated) + 1]   # +1: the row after the last token
