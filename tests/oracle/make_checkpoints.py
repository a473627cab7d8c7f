#!/usr/bin/python3
"""Writes the random-weight checkpoints of test_import.py into a directory, for trying the import
commands by hand and for the worked example in docs/import.md:

    /usr/bin/python3 tests/oracle/make_checkpoints.py OUTDIR
      OUTDIR/hf-llama/       config.json, 2 safetensors shards + index, tokenizer.model (GQA, untied head)
      OUTDIR/siglip/         a SigLIP-style vision tower (config.json, model.safetensors)
      OUTDIR/clip/           a CLIPModel (vision and a stub text tower, projections; config.json, model.safetensors)
      OUTDIR/peft/           a PEFT LoRA for hf-llama (adapter_config.json, adapter_model.safetensors)
      OUTDIR/llama-f16.gguf, OUTDIR/llama-q8_0.gguf   the same LLaMA as GGUF v3"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ckpt_writer as cw  # noqa: E402
import test_import as ti  # noqa: E402
import vision_towers as vtw  # noqa: E402


def main(out):
    os.makedirs(out, exist_ok=True)
    spm = ti.make_tokenizer(out)
    cfg, t = ti.llama_checkpoint(spm)
    tensors, _ = ti.hf_tensor_list(t)
    cw.write_hf_dir(os.path.join(out, "hf-llama"), cfg, tensors, spm, shards=2)
    vcfg, vt = ti.siglip_checkpoint()
    cw.write_hf_dir(os.path.join(out, "siglip"), vcfg, [(k, "F32", v) for k, v in sorted(vt.items())])
    ti.gguf_from_llama(os.path.join(out, "llama-f16.gguf"), cfg, t, spm, cw.GGML_F16)
    ti.gguf_from_llama(os.path.join(out, "llama-q8_0.gguf"), cfg, t, spm, cw.GGML_Q8_0)
    d = os.path.join(out, "peft")
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(5)
    mods = ["q_proj", "v_proj"]
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": mods, "bias": "none",
                   "task_type": "CAUSAL_LM", "base_model_name_or_path": "hf-llama"}, f, indent=1)
    lora = []
    for l in range(ti.L):
        for m in mods:
            mod = "base_model.model.model.layers.%d.self_attn.%s" % (l, m)
            o, i = t["model.layers.%d.self_attn.%s.weight" % (l, m)].shape
            lora += [(mod + ".lora_A.weight", "F32", 0.1 * rng.standard_normal((4, i))),
                     (mod + ".lora_B.weight", "F32", 0.1 * rng.standard_normal((o, 4)))]
    cw.write_safetensors(os.path.join(d, "adapter_model.safetensors"), lora)
    ccfg, _, ct = vtw.clip_checkpoint(np.random.default_rng(7), full=True)
    cw.write_hf_dir(os.path.join(out, "clip"), ccfg,
                    [(k, "I64" if a.dtype == np.int64 else "F32", a) for k, a in sorted(ct.items())])
    for n in ("corpus.txt", "spm.vocab", "spm.model"):
        os.remove(os.path.join(out, n))
    print("checkpoints written to", out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
