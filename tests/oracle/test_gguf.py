#!/usr/bin/python3
"""`m4fw export-gguf` against the GGUF v3 specification, read independently here: header, metadata
(llama hyper-parameters, SentencePiece vocabulary), tensor infos (ggml dims are innermost-first),
alignment, and every tensor's values equal to the firmware's (read with m4file.py).

Usage: /usr/bin/python3 tests/oracle/test_gguf.py --m4fw PATH --workdir DIR"""
import argparse
import os
import struct
import subprocess
import sys
import unittest

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import m4file  # noqa: E402

ARGS = None
SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.d, self.p)[0]
        self.p += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.d[self.p:self.p + n].decode("utf-8")
        self.p += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            return [self.value(et) for _ in range(n)]
        return self.take(SCALAR[t])


def read_gguf(path):
    data = open(path, "rb").read()
    r = Reader(data)
    assert data[:4] == b"GGUF", "magic"
    r.p = 4
    version, n_tensors, n_kv = r.take("<I"), r.take("<Q"), r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        k = r.string()
        meta[k] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        nd = r.take("<I")
        dims = [r.take("<Q") for _ in range(nd)]
        infos.append((name, dims, r.take("<I"), r.take("<Q")))
    align = meta.get("general.alignment", 32)
    start = (r.p + align - 1) // align * align
    tensors = {}
    for name, dims, typ, off in infos:
        assert typ == 0, "f32 expected"
        assert off % align == 0, "tensor offset alignment"
        n = int(np.prod(dims))
        arr = np.frombuffer(data, dtype="<f4", count=n, offset=start + off)
        tensors[name] = arr.reshape(list(reversed(dims)))  # ggml ne0 is the innermost dimension
    return version, meta, tensors


class ExportGguf(unittest.TestCase):
    def test_export_matches_firmware(self):
        cfg = os.path.join(os.path.dirname(os.path.abspath(__file__)), "oracle_config.json")
        fw = os.path.join(ARGS.workdir, "gguf_fw.m4fw")
        out = os.path.join(ARGS.workdir, "gguf_fw.gguf")
        subprocess.run([ARGS.m4fw, "init", "--config", cfg, "--out", fw, "--seed", "5"], check=True,
                       capture_output=True)
        subprocess.run([ARGS.m4fw, "export-gguf", "--firmware", fw, "--out", out], check=True, capture_output=True)
        f = m4file.M4File.load(fw)
        version, meta, tensors = read_gguf(out)
        h = f.header["backbone"]
        self.assertEqual(version, 3)
        self.assertEqual(meta["general.architecture"], "llama")
        self.assertEqual(meta["llama.embedding_length"], h["width"])
        self.assertEqual(meta["llama.block_count"], h["layers"])
        self.assertEqual(meta["llama.attention.head_count_kv"], h["kv_heads"])
        self.assertEqual(meta["llama.rope.dimension_count"], h["width"] // h["heads"])
        vocab = f.header["text"]["vocab_size"]
        self.assertEqual(len(meta["tokenizer.ggml.tokens"]), vocab)
        self.assertEqual(len(meta["tokenizer.ggml.scores"]), vocab)
        self.assertEqual(meta["tokenizer.ggml.bos_token_id"], f.header["text"]["bos_id"])
        names = {"token_embd.weight": "backbone.tok_embed.weight", "output_norm.weight": "backbone.norm.weight",
                 "output.weight": "backbone.lm_head.weight"}
        for l in range(h["layers"]):
            for g, m in (("attn_norm", "attn_norm"), ("attn_q", "attn.q"), ("attn_k", "attn.k"), ("attn_v", "attn.v"),
                         ("attn_output", "attn.o"), ("ffn_norm", "ffn_norm"), ("ffn_gate", "ffn.gate"),
                         ("ffn_up", "ffn.up"), ("ffn_down", "ffn.down")):
                names["blk.%d.%s.weight" % (l, g)] = "backbone.layers.%d.%s.weight" % (l, m)
        self.assertEqual(set(tensors), set(names))
        for g, m in names.items():
            np.testing.assert_array_equal(tensors[g], np.asarray(f.dequant(m), dtype=np.float32), err_msg=g)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--m4fw", required=True)
    ap.add_argument("--workdir", required=True)
    ARGS, rest = ap.parse_known_args()
    os.makedirs(ARGS.workdir, exist_ok=True)
    unittest.main(argv=[sys.argv[0]] + rest)
