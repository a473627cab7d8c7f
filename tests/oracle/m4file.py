"""Independent reader for the m4 container (.m4fw firmware / .m4a adapter).

Written from docs/formats.md only. Plain numpy + stdlib (hashlib, json, struct).

    f = M4File.load("fw.m4fw")          # raises ValueError on any format fault
    f.header        -> dict (the JSON header)
    f.tensors       -> {name: np.ndarray}  f32 / bf16 (decoded to f32) / u8 arrays,
                       or I8Tensor(q=int8 array, scale=f32 array [rows]) for i8
    f.dtypes        -> {name: "f32" | "bf16" | "i8" | "u8"}
    f.fingerprint   -> lowercase hex SHA-256 of bytes [0, data_offset + data_len)
"""

import hashlib
import json
import struct
from collections import namedtuple

import numpy as np

MAGIC_FIRMWARE = b"M4FW"
MAGIC_ADAPTER = b"M4AD"
FORMAT_VERSION = 1
FIXED_HEADER = 40
TRAILER = 104
ALIGN = 64
DTYPE_NAMES = {0: "f32", 1: "bf16", 2: "i8", 3: "u8"}
DTYPE_CODES = {v: k for k, v in DTYPE_NAMES.items()}


def align64(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


class I8Tensor(namedtuple("I8Tensor", "q scale")):
    """int8 values q (shape dims) and one f32 scale per row (shape dims[:-1])."""

    @property
    def shape(self):
        return self.q.shape

    def dequant(self):
        scale = self.scale.astype(np.float32)
        if self.q.ndim == 1:          # one row: the single scale
            return self.q.astype(np.float32) * scale.reshape(())
        return self.q.astype(np.float32) * scale[..., None]


def bf16_bits_to_f32(bits):
    """u16 array of bf16 bit patterns -> f32 array (exact)."""
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


def f32_to_bf16_bits(x):
    """f32 -> bf16 bits, round to nearest even (NaN not expected here)."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def expected_nbytes(dtype, dims):
    numel = int(np.prod(dims, dtype=np.int64))
    if dtype == 0:
        return numel * 4
    if dtype == 1:
        return numel * 2
    if dtype == 3:
        return numel
    rows = int(np.prod(dims[:-1], dtype=np.int64)) if len(dims) > 1 else 1
    return align64(numel) + rows * 4


class M4File:
    def __init__(self):
        self.path = None
        self.magic = None
        self.version = None
        self.header = None
        self.tensors = {}
        self.dtypes = {}
        self.entries = []  # (name, dtype, dims, offset, nbytes) in directory order
        self.fingerprint = None
        self.signature_len = 0
        self.signature = b""

    @property
    def kind(self):
        return "firmware" if self.magic == MAGIC_FIRMWARE else "adapter"

    @classmethod
    def load(cls, path, expect_magic=None, strict=True, public_key=None):
        with open(path, "rb") as fh:
            data = fh.read()
        return cls.parse(data, path=str(path), expect_magic=expect_magic, strict=strict,
                         public_key=public_key)

    @classmethod
    def parse(cls, data, path="<bytes>", expect_magic=None, strict=True, public_key=None):
        self = cls()
        self.path = path

        def fail(msg):
            raise ValueError("%s: %s" % (path, msg))

        size = len(data)
        if size < FIXED_HEADER + TRAILER:
            fail("file too short (%d bytes < %d fixed header + trailer)"
                 % (size, FIXED_HEADER + TRAILER))
        magic = bytes(data[0:4])
        if magic not in (MAGIC_FIRMWARE, MAGIC_ADAPTER):
            fail("bad magic %r" % magic)
        if expect_magic is not None and magic != expect_magic:
            fail("magic %r, expected %r" % (magic, expect_magic))
        self.magic = magic
        (version,) = struct.unpack_from("<I", data, 4)
        if version != FORMAT_VERSION:
            fail("unknown format version %d" % version)
        self.version = version
        header_len, dir_len, data_offset, data_len = struct.unpack_from("<QQQQ", data, 8)
        hdr_end = FIXED_HEADER + header_len
        dir_end = hdr_end + dir_len
        if hdr_end > size - TRAILER:
            fail("header_len %d overruns the file" % header_len)
        if dir_end > size - TRAILER:
            fail("dir_len %d overruns the file" % dir_len)
        if data_offset % ALIGN != 0:
            fail("data_offset %d is not a multiple of 64" % data_offset)
        if data_offset < dir_end:
            fail("data_offset %d lies inside header/directory (end %d)" % (data_offset, dir_end))
        if data_offset + data_len + TRAILER != size:
            fail("file size %d != data_offset %d + data_len %d + %d (truncated or overlong)"
                 % (size, data_offset, data_len, TRAILER))
        if strict and any(data[dir_end:data_offset]):
            fail("padding before data_offset is not zero")

        try:
            header = json.loads(bytes(data[FIXED_HEADER:hdr_end]).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            fail("JSON header does not parse: %s" % e)
        if not isinstance(header, dict):
            fail("JSON header is not an object")
        self.header = header

        # trailer + digest
        end = data_offset + data_len
        digest = bytes(data[end:end + 32])
        (sig_len,) = struct.unpack_from("<Q", data, end + 32)
        signature = bytes(data[end + 40:end + 104])
        if sig_len not in (0, 64):
            fail("signature length %d is neither 0 nor 64" % sig_len)
        if sig_len == 0 and strict and any(signature):
            fail("unsigned file has a nonzero signature field")
        actual = hashlib.sha256(memoryview(data)[:end]).digest()
        if actual != digest:
            fail("digest mismatch (stored %s, computed %s)" % (digest.hex(), actual.hex()))
        self.fingerprint = digest.hex()
        self.signature_len = sig_len
        self.signature = signature[:sig_len]
        if public_key is not None:
            if sig_len == 0:
                fail("missing signature but a public key is required")
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
            from cryptography.exceptions import InvalidSignature
            try:
                Ed25519PublicKey.from_public_bytes(public_key).verify(self.signature, digest)
            except InvalidSignature:
                fail("signature does not verify")

        # directory
        pos = hdr_end

        def need(n, what):
            if pos + n > dir_end:
                fail("directory entry overruns dir_len while reading %s" % what)

        need(4, "count")
        (count,) = struct.unpack_from("<I", data, pos)
        pos += 4
        data_sec = memoryview(data)[data_offset:end]
        for i in range(count):
            need(2, "name length of entry %d" % i)
            (nlen,) = struct.unpack_from("<H", data, pos)
            pos += 2
            need(nlen + 2, "name of entry %d" % i)
            try:
                name = bytes(data[pos:pos + nlen]).decode("utf-8")
            except UnicodeDecodeError:
                fail("entry %d: name is not UTF-8" % i)
            pos += nlen
            dtype, ndim = data[pos], data[pos + 1]
            pos += 2
            if dtype not in DTYPE_NAMES:
                fail("tensor %r: bad dtype %d" % (name, dtype))
            if not 1 <= ndim <= 4:
                fail("tensor %r: bad ndim %d" % (name, ndim))
            need(8 * ndim + 16, "dims of %r" % name)
            dims = struct.unpack_from("<%dQ" % ndim, data, pos)
            pos += 8 * ndim
            offset, nbytes = struct.unpack_from("<QQ", data, pos)
            pos += 16
            if any(d < 1 for d in dims):
                fail("tensor %r: dims %s must be >= 1" % (name, list(dims)))
            if offset % ALIGN != 0:
                fail("tensor %r: offset %d not a multiple of 64" % (name, offset))
            want = expected_nbytes(dtype, dims)
            if nbytes != want:
                fail("tensor %r: nbytes %d != expected %d for %s %s"
                     % (name, nbytes, want, DTYPE_NAMES[dtype], list(dims)))
            if offset + nbytes > data_len:
                fail("tensor %r: [%d, %d) lies outside the data section (%d bytes)"
                     % (name, offset, offset + nbytes, data_len))
            if name in self.dtypes:
                fail("duplicate tensor name %r" % name)
            raw = data_sec[offset:offset + nbytes]
            self.tensors[name] = self._decode(dtype, dims, raw, name, strict, fail)
            self.dtypes[name] = DTYPE_NAMES[dtype]
            self.entries.append((name, DTYPE_NAMES[dtype], tuple(dims), offset, nbytes))
        if pos != dir_end:
            fail("directory has %d trailing bytes after %d entries" % (dir_end - pos, count))
        return self

    @staticmethod
    def _decode(dtype, dims, raw, name, strict, fail):
        numel = int(np.prod(dims, dtype=np.int64))
        if dtype == 0:
            return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)
        if dtype == 1:
            return bf16_bits_to_f32(np.frombuffer(raw, dtype="<u2")).reshape(dims)
        if dtype == 3:
            return np.frombuffer(raw, dtype=np.uint8).copy().reshape(dims)
        q = np.frombuffer(raw[:numel], dtype=np.int8).copy().reshape(dims)
        if strict and any(bytes(raw[numel:align64(numel)])):
            fail("tensor %r: i8 padding before the scales is not zero" % name)
        scale = np.frombuffer(raw[align64(numel):], dtype="<f4").astype(np.float32)
        return I8Tensor(q, scale.reshape(dims[:-1]) if len(dims) > 1 else scale)

    def dequant(self, name):
        """f32 view of any tensor (i8 -> q*scale)."""
        t = self.tensors[name]
        return t.dequant() if isinstance(t, I8Tensor) else t


# ---------------------------------------------------------------------------------------------
# Shapes required by the firmware header (formats.md "Firmware tensors").

ENCODER_FIELDS = ("width", "layers", "heads", "ffn", "norm_eps")


def encoder_tokens_and_patch(mod, cfg):
    """(T, P): tokens the encoder outputs (patches, + 1 with a class token) and values per patch."""
    n, P = _patches(mod, cfg)
    return n + (1 if cfg.get("cls_token", False) else 0), P


def _patches(mod, cfg):
    if mod == "image":
        return (cfg["image_size"] // cfg["patch_size"]) ** 2, \
            cfg["patch_size"] ** 2 * cfg.get("channels", 3)
    if mod == "audio":
        n_frames = 1 + (cfg["clip_samples"] - cfg["n_fft"]) // cfg["hop"]
        return n_frames // cfg["patch_frames"], cfg["patch_frames"] * cfg["n_mels"]
    if mod == "imu":
        return cfg["window"] // cfg["patch_size"], cfg["patch_size"] * cfg.get("channels", 6)
    raise ValueError("unknown modality %r" % mod)


def expected_firmware_shapes(header):
    """name -> (shape, allowed dtypes) for every tensor the header calls for."""
    LIN = ("f32", "bf16", "i8")
    F32 = ("f32",)
    out = {"tokenizer.model": (None, ("u8",))}
    bb = header["backbone"]
    C, H, G, F = bb["width"], bb["heads"], bb["kv_heads"], bb["ffn"]
    D = C // H
    V, E = header["text"]["vocab_size"], header["embed_dim"]
    out["backbone.tok_embed.weight"] = ((V, C), LIN)
    for L in range(bb["layers"]):
        p = "backbone.layers.%d." % L
        out[p + "attn_norm.weight"] = ((C,), F32)
        out[p + "attn.q.weight"] = ((H * D, C), LIN)
        out[p + "attn.k.weight"] = ((G * D, C), LIN)
        out[p + "attn.v.weight"] = ((G * D, C), LIN)
        out[p + "attn.o.weight"] = ((C, H * D), LIN)
        out[p + "ffn_norm.weight"] = ((C,), F32)
        out[p + "ffn.gate.weight"] = ((F, C), LIN)
        out[p + "ffn.up.weight"] = ((F, C), LIN)
        out[p + "ffn.down.weight"] = ((C, F), LIN)
    out["backbone.norm.weight"] = ((C,), F32)
    if not bb.get("tie_lm_head", False):
        out["backbone.lm_head.weight"] = ((V, C), LIN)
    out["backbone.text_proj.weight"] = ((E, C), LIN)
    for mod, ec in header.get("encoders", {}).items():
        T, P = encoder_tokens_and_patch(mod, ec)
        W, Fm = ec["width"], ec["ffn"]
        p = "encoders.%s." % mod
        out[p + "patch_embed.weight"] = ((W, P), LIN)
        out[p + "patch_embed.bias"] = ((W,), F32)
        out[p + "pos_embed"] = ((T, W), F32)
        if ec.get("cls_token", False):
            out[p + "cls_token"] = ((W,), F32)
        if ec.get("pre_norm", False):
            out[p + "pre_norm.weight"] = ((W,), F32)
            out[p + "pre_norm.bias"] = ((W,), F32)
        for L in range(ec["layers"]):
            q = p + "layers.%d." % L
            for n in ("ln1", "ln2"):
                out[q + n + ".weight"] = ((W,), F32)
                out[q + n + ".bias"] = ((W,), F32)
            for n in "qkvo":
                out[q + "attn.%s.weight" % n] = ((W, W), LIN)
                out[q + "attn.%s.bias" % n] = ((W,), F32)
            out[q + "mlp.fc1.weight"] = ((Fm, W), LIN)
            out[q + "mlp.fc1.bias"] = ((Fm,), F32)
            out[q + "mlp.fc2.weight"] = ((W, Fm), LIN)
            out[q + "mlp.fc2.bias"] = ((W,), F32)
        out[p + "norm.weight"] = ((W,), F32)
        out[p + "norm.bias"] = ((W,), F32)
        out[p + "embed_proj.weight"] = ((E, W), LIN)
        out["projectors.%s.weight" % mod] = ((C, W), LIN)
        out["projectors.%s.bias" % mod] = ((C,), F32)
    for mod, dc in header.get("decoders", {}).items():
        # IMG-Dec / TTS-Dec: an encoder-shaped trunk ("patch_embed" is its input projection) + out_proj.
        if mod == "speech":   # one-hot characters (32 symbols) per frame -> n_mels per frame
            T, P, Pout = dc["max_chars"] * dc["frames_per_char"], 32, dc["n_mels"]
        else:
            T, P = encoder_tokens_and_patch(mod, dc)
            Pout = P
        W, Fm = dc["width"], dc["ffn"]
        p = "decoders.%s." % mod
        out[p + "patch_embed.weight"] = ((W, P), LIN)
        out[p + "patch_embed.bias"] = ((W,), F32)
        out[p + "pos_embed"] = ((T, W), F32)
        for L in range(dc["layers"]):
            q = p + "layers.%d." % L
            for n in ("ln1", "ln2"):
                out[q + n + ".weight"] = ((W,), F32)
                out[q + n + ".bias"] = ((W,), F32)
            for n in "qkvo":
                out[q + "attn.%s.weight" % n] = ((W, W), LIN)
                out[q + "attn.%s.bias" % n] = ((W,), F32)
            out[q + "mlp.fc1.weight"] = ((Fm, W), LIN)
            out[q + "mlp.fc1.bias"] = ((Fm,), F32)
            out[q + "mlp.fc2.weight"] = ((W, Fm), LIN)
            out[q + "mlp.fc2.bias"] = ((W,), F32)
        out[p + "norm.weight"] = ((W,), F32)
        out[p + "norm.bias"] = ((W,), F32)
        out[p + "out_proj.weight"] = ((Pout, W), LIN)
        out[p + "out_proj.bias"] = ((Pout,), F32)
        if "from_backbone" in dc:   # the full path into the image decoder: queries + projector
            C = header["backbone"]["width"]
            out[p + "from_backbone.queries"] = ((T, C), F32)
            out[p + "from_backbone.proj.weight"] = ((P, C), LIN)
            out[p + "from_backbone.proj.bias"] = ((P,), F32)
    return out


def check_firmware_shapes(f):
    """Raise ValueError if tensors do not match the header (missing, extra, shape, dtype)."""
    want = expected_firmware_shapes(f.header)
    problems = []
    for name, (shape, dtypes) in sorted(want.items()):
        if name not in f.tensors:
            problems.append("missing %s" % name)
            continue
        got = tuple(f.tensors[name].shape)
        if shape is not None and got != tuple(shape):
            problems.append("%s shape %s != %s" % (name, list(got), list(shape)))
        if shape is None and len(got) != 1:
            problems.append("%s must be 1-D" % name)
        if f.dtypes[name] not in dtypes:
            problems.append("%s dtype %s not in %s" % (name, f.dtypes[name], dtypes))
    for name in sorted(set(f.tensors) - set(want)):
        problems.append("unexpected tensor %s" % name)
    if problems:
        raise ValueError("%s: tensors do not match the header: %s" % (f.path, "; ".join(problems)))


def check_adapter(a, fw):
    """Validate an adapter manifest + tensors against its firmware. Raise ValueError."""
    h = a.header
    problems = []
    if a.magic != MAGIC_ADAPTER:
        problems.append("not an adapter")
    if h.get("firmware_fingerprint") != fw.fingerprint:
        problems.append("fingerprint %s != firmware %s"
                        % (h.get("firmware_fingerprint"), fw.fingerprint))
    lora = h.get("lora")
    if lora:
        R = lora["rank"]
        for X in lora["targets"]:
            wname = X + ".weight"
            if wname not in fw.tensors and not (
                    X == "backbone.lm_head" and "backbone.tok_embed.weight" in fw.tensors):
                problems.append("target %s is not a linear of the firmware" % X)
                continue
            w = fw.tensors.get(wname, fw.tensors.get("backbone.tok_embed.weight"))
            out_f, in_f = w.shape
            for suf, shp in ((".a", (R, in_f)), (".b", (out_f, R))):
                t = a.tensors.get("lora." + X + suf)
                if t is None or tuple(t.shape) != shp or a.dtypes["lora." + X + suf] != "f32":
                    problems.append("lora.%s%s wrong/missing (want f32 %s)" % (X, suf, shp))
    head = h.get("head")
    if head:
        hidden = head.get("hidden_dim", 0)
        out = "head.out" if hidden else "head"
        want = (head["out_dim"], hidden or head["in_dim"])
        if out + ".weight" not in a.tensors or tuple(a.tensors[out + ".weight"].shape) != want:
            problems.append("%s.weight missing or not %s" % (out, want))
        if head["type"] in ("classify", "regress") and out + ".bias" not in a.tensors:
            problems.append("%s.bias missing" % out)
        if hidden:
            hw, hb = a.tensors.get("head.hidden.weight"), a.tensors.get("head.hidden.bias")
            if hw is None or tuple(hw.shape) != (hidden, head["in_dim"]):
                problems.append("head.hidden.weight missing or not %s" % ((hidden, head["in_dim"]),))
            if hb is None or tuple(hb.shape) != (hidden,):
                problems.append("head.hidden.bias missing or not (%d,)" % hidden)
    if problems:
        raise ValueError("%s: bad adapter: %s" % (a.path, "; ".join(problems)))
