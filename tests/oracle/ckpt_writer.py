"""Writers of public checkpoint layouts, from their specifications, for the import tests
(test_import.py): no checkpoint can be downloaded here, so the tests make their own.

- safetensors: u64 LE header length N, N bytes of JSON {name: {dtype, shape, data_offsets}},
  then the byte buffer the offsets index (relative to its start), row-major little-endian.
- Hugging Face directories: config.json + model.safetensors, or shards + model.safetensors.index.json
  ({"metadata": {...}, "weight_map": {tensor: shard}}), + tokenizer.model.
- GGUF v2 / v3: "GGUF", u32 version, u64 tensor count, u64 kv count, kv pairs (string key, u32 type,
  value), tensor infos (string name, u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type,
  u64 offset), zero padding to general.alignment, tensor data (each tensor aligned).
- Q8_0: blocks of 32 along a row: f16 d = max|x| / 127, int8 q = round(x / d).
- A SentencePiece ModelProto's pieces (field 1: piece = 1, score = 2, type = 3) read with a tiny
  protobuf wire decoder, for the GGUF vocabulary.
"""

import json
import os
import struct

import numpy as np

ST_DTYPES = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": (None, 2), "I8": ("i1", 1), "I64": ("<i8", 8)}


def bf16_bytes(a):
    bits = np.asarray(a, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16            # nearest-even
    return rounded.astype("<u2").tobytes()


def bf16_round(a):
    bits = np.frombuffer(bf16_bytes(a), dtype="<u2").astype(np.uint32) << 16
    return bits.view("<f4").reshape(np.shape(a))


def tensor_bytes(dtype, arr):
    if dtype == "BF16":
        return bf16_bytes(arr)
    return np.ascontiguousarray(arr, dtype=ST_DTYPES[dtype][0]).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype, array) -> the file. Returns the header dict."""
    header, buf = {}, bytearray()
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, arr in tensors:
        b = tensor_bytes(dtype, arr)
        header[name] = {"dtype": dtype, "shape": list(np.shape(arr)), "data_offsets": [len(buf), len(buf) + len(b)]}
        buf += b
    raw_header = json.dumps(header).encode()
    raw_header += b" " * ((8 - len(raw_header) % 8) % 8)           # the writer pads with spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw_header)) + raw_header + bytes(buf))
    return header


def write_raw_safetensors(path, header, buf):
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + bytes(buf))


def write_hf_dir(d, config, tensors, tokenizer_model=None, shards=1):
    """tensors: list of (name, dtype, array). Sharded: model-0000i-of-0000n.safetensors + index."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=1)
    if tokenizer_model is not None:
        with open(os.path.join(d, "tokenizer.model"), "wb") as f:
            f.write(tokenizer_model)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors, {"format": "pt"})
        return
    per = (len(tensors) + shards - 1) // shards
    weight_map = {}
    for s in range(shards):
        name = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
        part = tensors[s * per:(s + 1) * per]
        write_safetensors(os.path.join(d, name), part, {"format": "pt"})
        weight_map.update({t[0]: name for t in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=1)


# ---------------------------------------------------------------------------------------------
# GGUF

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 7, 8, 9
GGML_F32, GGML_F16, GGML_Q8_0, GGML_Q4_K, GGML_BF16 = 0, 1, 8, 12, 30


def q8_0_bytes(w):
    """Row-major [rows, K] (K % 32 == 0) -> Q8_0 blocks, and the dequantised values."""
    x = np.asarray(w, dtype=np.float32).reshape(-1, 32)
    amax = np.abs(x).max(axis=1)
    d = (amax / 127.0).astype(np.float16)
    d32 = d.astype(np.float32)
    inv = np.where(d32 > 0, 1.0 / np.where(d32 > 0, d32, 1), 0.0).astype(np.float32)
    q = np.clip(np.rint(x * inv[:, None]), -127, 127).astype(np.int8)
    blocks = np.zeros(x.shape[0], dtype=[("d", "<f2"), ("q", "i1", 32)])
    blocks["d"], blocks["q"] = d, q
    deq = (d32[:, None] * q.astype(np.float32)).reshape(np.shape(w))
    return blocks.tobytes(), deq


class GgufWriter:
    def __init__(self, version=3, alignment=32):
        self.version, self.alignment = version, alignment
        self.kv = []          # (key, bytes)
        self.tensors = []     # (name, ne, type, bytes)

    @staticmethod
    def _str(s):
        b = s.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def add_kv(self, key, vtype, value, elem_type=None):
        if vtype == GGUF_ARRAY:
            body = struct.pack("<IQ", elem_type, len(value)) + b"".join(self._scalar(elem_type, v) for v in value)
        else:
            body = self._scalar(vtype, value)
        self.kv.append((key, struct.pack("<I", vtype) + body))

    def _scalar(self, t, v):
        return {GGUF_U32: lambda: struct.pack("<I", v), GGUF_I32: lambda: struct.pack("<i", v),
                GGUF_F32: lambda: struct.pack("<f", v), GGUF_BOOL: lambda: struct.pack("<B", v),
                GGUF_STRING: lambda: self._str(v)}[t]()

    def add_tensor(self, name, arr, ggml_type):
        """arr row-major; ne is the reversed shape. Returns the values as stored (dequantised)."""
        a = np.asarray(arr, dtype=np.float32)
        if ggml_type == GGML_F32:
            data, stored = a.astype("<f4").tobytes(), a
        elif ggml_type == GGML_F16:
            data, stored = a.astype("<f2").tobytes(), a.astype(np.float16).astype(np.float32)
        elif ggml_type == GGML_BF16:
            data, stored = bf16_bytes(a), bf16_round(a)
        elif ggml_type == GGML_Q8_0:
            data, stored = q8_0_bytes(a)
        elif ggml_type == GGML_Q4_K:      # only its size matters to the refusal test
            data, stored = b"\0" * (a.size // 256 * 144), None
        else:
            raise ValueError(ggml_type)
        self.tensors.append((name, list(reversed(a.shape)), ggml_type, data))
        return stored

    def write(self, path):
        out = bytearray(b"GGUF" + struct.pack("<IQQ", self.version, len(self.tensors), len(self.kv) + 1))
        out += self._str("general.alignment") + struct.pack("<II", GGUF_U32, self.alignment)
        for k, v in self.kv:
            out += self._str(k) + v
        off, offsets = 0, []
        for name, ne, t, data in self.tensors:
            offsets.append(off)
            off = (off + len(data) + self.alignment - 1) // self.alignment * self.alignment
        for (name, ne, t, data), o in zip(self.tensors, offsets):
            out += self._str(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
            out += struct.pack("<IQ", t, o)
        out += b"\0" * ((-len(out)) % self.alignment)
        start = len(out)
        for (name, ne, t, data), o in zip(self.tensors, offsets):
            out += b"\0" * (start + o - len(out)) + data
        out += b"\0" * ((-len(out)) % self.alignment)
        with open(path, "wb") as f:
            f.write(bytes(out))


# ---------------------------------------------------------------------------------------------
# SentencePiece ModelProto pieces (protobuf wire format)

def _varint(d, p):
    r = s = 0
    while True:
        b = d[p]
        p += 1
        r |= (b & 0x7F) << s
        s += 7
        if b < 0x80:
            return r, p


def proto_fields(d):
    p, out = 0, []
    while p < len(d):
        k, p = _varint(d, p)
        f, w = k >> 3, k & 7
        if w == 0:
            v, p = _varint(d, p)
        elif w == 2:
            n, p = _varint(d, p)
            v, p = d[p:p + n], p + n
        elif w == 5:
            v, p = struct.unpack("<f", d[p:p + 4])[0], p + 4
        elif w == 1:
            v, p = d[p:p + 8], p + 8
        else:
            raise ValueError("wire type %d" % w)
        out.append((f, v))
    return out


def spm_pieces(model_bytes):
    """-> [(piece, score, type)] with SentencePiece's type numbers (1 normal … 6 byte)."""
    pieces = []
    for f, v in proto_fields(model_bytes):
        if f == 1:
            d = dict(proto_fields(v))
            pieces.append((d[1].decode("utf-8"), float(d.get(2, 0.0)), int(d.get(3, 1))))
    return pieces


def spm_normalizer(model_bytes):
    for f, v in proto_fields(model_bytes):
        if f == 3:
            return {k: (x.decode() if isinstance(x, bytes) and k == 1 else x) for k, x in proto_fields(v) if k != 2}
    return {}
