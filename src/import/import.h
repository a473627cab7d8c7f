// Firmware from public checkpoints (docs/import.md): readers that map a Hugging Face directory
// (LLaMA-family causal LM, SigLIP / ViT / CLIP vision tower), a GGUF `llama` file or an existing firmware
// onto m4's tensor names, a builder that writes a firmware from such parts (initialising what no
// part brings: text_proj, embed_proj, projectors), and the PEFT LoRA → .m4a importer.
//
//     M4_ASSIGN_OR_RETURN(Part bb, import_checkpoint("llama-dir/", Role::Backbone));
//     M4_ASSIGN_OR_RETURN(Part img, import_checkpoint("siglip-dir/", Role::Image));
//     M4_ASSIGN_OR_RETURN(BuildReport r, build_firmware({bb, img}, {.embed_dim = 64}, "fw.m4fw"));
//
// Anything that cannot be mapped exactly is refused with a message naming the file and the key or
// tensor: an unknown architecture, a GPT-2 byte-level BPE vocabulary, an unsupported quantisation
// type, a shape that contradicts the configuration, a malformed safetensors or GGUF file.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "base/crypto.h"
#include "tensor/tensor.h"

namespace m4::import {

// What part of the firmware a checkpoint supplies.
enum class Role { Backbone, Image };
const char * role_name(Role r);

// One checkpoint mapped onto m4 names.
struct Part {
    Role role = Role::Backbone;
    // Backbone: {"text": {...}, "backbone": {...}}; image: the encoder's config object.
    nlohmann::json config;
    std::map<std::string, Tensor> tensors;      // m4 tensor name → tensor (f32, bf16 or i8)
    std::map<std::string, std::string> origin;  // m4 tensor name → "file: tensor 'source name'"
    std::string tokenizer_model;                // SentencePiece bytes (backbone parts)
    nlohmann::json source;                      // provenance: format, path, notes, drift
};

// Reads a checkpoint for `role`: a Hugging Face directory (config.json decides the family), a
// .gguf file (backbone only) or a .m4fw firmware (its backbone or its image encoder).
Result<Part> import_checkpoint(const std::string & path, Role role);

Result<Part> import_hf_llama(const std::string & dir);
Result<Part> import_hf_vision(const std::string & dir);
Result<Part> import_gguf_llama(const std::string & path);
Result<Part> import_firmware_part(const std::string & path, Role role);

struct BuildOptions {
    std::string name;                // firmware name (default: the backbone source's name)
    int64_t embed_dim          = 0;  // shared embedding width E (0: from a firmware part, else the backbone width)
    int64_t max_seq            = 0;  // 0: the checkpoint's context length, capped at 4096
    uint64_t seed              = 1;  // initialisation of the tensors no part brings
    const SecretKey * sign_key = nullptr;
    nlohmann::json recipe      = nlohmann::json::object();  // the command line, stored in the header
};

struct BuildReport {
    std::string fingerprint;
    uint64_t file_bytes = 0;
    int64_t parameters  = 0;
    std::vector<std::string> initialised;  // tensors no part brought
};

// Writes a firmware from parts (exactly one backbone, at most one part per encoder). Every tensor
// the resulting configuration requires comes from a part with exactly the required shape, or is
// initialised (normal, std 1/√in; biases 0) and listed in the header's provenance.
Result<BuildReport> build_firmware(const std::vector<Part> & parts, const BuildOptions & options,
                                   const std::string & out_path);

struct AdapterReport {
    int64_t rank = 0;
    float alpha  = 0;
    std::vector<std::string> targets;  // m4 linear names
    int64_t padded_values = 0;         // zeros added to bring rank_pattern modules to `rank`
};

// PEFT LoRA directory (adapter_config.json + adapter_model.safetensors) → a `generate` adapter on
// the backbone path bound to `firmware_path` (which must hold the backbone the LoRA was trained on,
// e.g. one imported from the same checkpoint).
Result<AdapterReport> import_peft_adapter(const std::string & dir, const std::string & firmware_path,
                                          const std::string & out_path, const std::string & name);

// ---- shared helpers (import_*.cpp) ------------------------------------------------------------
// HF LLaMA / GGUF q and k rows: HF rotates halves (i, i + D/2) of each head, m4 (and GGUF, which
// llama.cpp's converter permutes back) rotates adjacent pairs (2i, 2i + 1). Row h·D + 2i of the m4
// weight is row h·D + i of the HF one, row h·D + 2i + 1 is row h·D + i + D/2.
Tensor permute_rope_rows(const Tensor & w, int64_t heads);
// Reads a JSON file; errors name it.
Result<nlohmann::json> read_json_file(const std::string & path);

}  // namespace m4::import
