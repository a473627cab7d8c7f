"""Tiny independent *writer* of the m4 container, used only by the oracle's own self-tests
(test_m4file.py) to build files per docs/formats.md and to make a random firmware for
exercising reference.py without the C++ tools."""

import hashlib
import json
import struct

import numpy as np

try:
    from .m4file import (ALIGN, DTYPE_CODES, FIXED_HEADER, align64, expected_firmware_shapes,
                         f32_to_bf16_bits)
except ImportError:
    from m4file import (ALIGN, DTYPE_CODES, FIXED_HEADER, align64, expected_firmware_shapes,
                        f32_to_bf16_bits)


def quantize_i8(w):
    """Symmetric per-row int8: scale = max|row| / 127, q = round_half_even(w / scale)."""
    w = np.asarray(w, dtype=np.float32)
    amax = np.abs(w).max(axis=-1)
    scale = np.where(amax > 0, amax / np.float32(127), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(w / scale[..., None]), -127, 127).astype(np.int8)
    return q, scale


def encode_tensor(dtype, arr):
    """-> (dims, payload bytes)."""
    if dtype == "f32":
        a = np.asarray(arr, dtype="<f4")
        return a.shape, a.tobytes()
    if dtype == "bf16":
        a = np.asarray(arr, dtype=np.float32)
        return a.shape, f32_to_bf16_bits(a).astype("<u2").tobytes()
    if dtype == "u8":
        a = np.asarray(arr, dtype=np.uint8)
        return a.shape, a.tobytes()
    if dtype == "i8":
        if isinstance(arr, tuple):
            q, scale = arr
        else:
            q, scale = quantize_i8(arr)
        q = np.asarray(q, dtype=np.int8)
        pad = align64(q.size) - q.size
        return q.shape, q.tobytes() + b"\0" * pad + np.asarray(scale, dtype="<f4").tobytes()
    raise ValueError(dtype)


def write_container(magic, header, tensors, signature=None):
    """tensors: list of (name, dtype, array | (q, scale)). Returns the file bytes."""
    hdr = json.dumps(header).encode("utf-8")
    dir_parts = [struct.pack("<I", len(tensors))]
    data = bytearray()
    for name, dtype, arr in tensors:
        dims, payload = encode_tensor(dtype, arr)
        off = len(data)
        nb = name.encode("utf-8")
        dir_parts.append(struct.pack("<H", len(nb)) + nb)
        dir_parts.append(struct.pack("<BB", DTYPE_CODES[dtype], len(dims)))
        dir_parts.append(struct.pack("<%dQ" % len(dims), *dims))
        dir_parts.append(struct.pack("<QQ", off, len(payload)))
        data += payload
        data += b"\0" * (align64(len(data)) - len(data))
    directory = b"".join(dir_parts)
    data_offset = align64(FIXED_HEADER + len(hdr) + len(directory))
    head = magic + struct.pack("<IQQQQ", 1, len(hdr), len(directory), data_offset, len(data))
    body = head + hdr + directory
    body += b"\0" * (data_offset - len(body)) + bytes(data)
    digest = hashlib.sha256(body).digest()
    sig = signature or b""
    return body + digest + struct.pack("<Q", len(sig)) + sig + b"\0" * (64 - len(sig))


def random_firmware(header, dtype="f32", seed=0, weight_std=None):
    """A random firmware (bytes) for `header` (vocab_size must be set)."""
    rng = np.random.default_rng(seed)
    shapes = expected_firmware_shapes(header)
    tensors = []
    for name in sorted(shapes):
        shape, dtypes = shapes[name]
        if name == "tokenizer.model":
            tensors.append((name, "u8", np.frombuffer(b"not a real model", dtype=np.uint8)))
            continue
        if name.endswith("norm.weight") or name.endswith("ln1.weight") or \
                name.endswith("ln2.weight") or name.endswith("norm_weight"):
            arr = 1.0 + 0.1 * rng.standard_normal(shape)
        elif weight_std is None and len(shape) == 2 and not name.endswith("pos_embed"):
            arr = rng.standard_normal(shape) / np.sqrt(shape[1])     # 1/sqrt(fan_in)
        else:
            arr = (weight_std or 0.02) * rng.standard_normal(shape)
        arr = arr.astype(np.float32)
        tensors.append((name, dtype if dtype in dtypes else "f32", arr))
    return write_container(b"M4FW", header, tensors)


def random_adapter(fw, task, path, modality, targets, rank=4, alpha=8.0, out_dim=3,
                   pool="mean", seed=1):
    """A random adapter (bytes) bound to firmware `fw` (an M4File)."""
    rng = np.random.default_rng(seed)
    h = fw.header
    tensors = []
    for X in targets:
        w = fw.tensors.get(X + ".weight", fw.tensors.get("backbone.tok_embed.weight"))
        n_out, n_in = w.shape
        tensors.append(("lora.%s.a" % X, "f32", 0.3 * rng.standard_normal((rank, n_in))))
        tensors.append(("lora.%s.b" % X, "f32", 0.3 * rng.standard_normal((n_out, rank))))
    man = {"format": "m4a", "name": "t", "version": "1.0.0", "task": task, "path": path,
           "modality": modality, "firmware_fingerprint": fw.fingerprint,
           "lora": {"rank": rank, "alpha": alpha, "targets": list(targets)}}
    if task != "generate":
        in_dim = h["embed_dim"] if path == "encoder" else h["backbone"]["width"]
        man["head"] = {"type": task, "in_dim": in_dim, "out_dim": out_dim, "pool": pool}
        tensors.append(("head.weight", "f32", rng.standard_normal((out_dim, in_dim))))
        if task in ("classify", "regress"):
            tensors.append(("head.bias", "f32", rng.standard_normal(out_dim)))
    return write_container(b"M4AD", man, tensors)

