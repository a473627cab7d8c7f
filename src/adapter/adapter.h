// Adapters (.m4a): a manifest, LoRA pairs and a task head, bound to one firmware by fingerprint.
//
//     auto ad = Adapter::load("fashion.m4a", *model);   // refuses another firmware's adapter
//     model::Request r; r.adapter = &ad->weights();
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "format/container.h"
#include "model/model.h"

namespace m4::adapter {

enum class Task { Classify = 0, Regress, Embed, Generate };
const char * task_name(Task t);
bool parse_task(const std::string & s, Task * out);

// What an adapter's task answers with (manifest "output"): a class label, a vector (regression,
// embedding), text, an image or audio. Absent in older manifests: derived from the task and path.
enum class OutputKind { Label = 0, Vector, Text, Image, Audio };
const char * output_kind_name(OutputKind k);
bool parse_output_kind(const std::string & s, OutputKind * out);
// The output a task on a path over a modality gives: generate → text; on the generator path an
// image over images and audio over audio (the speech decoder); on the full path over text an image
// (the full path into the image decoder); classify → label, …
OutputKind default_output(Task t, model::Path p, model::Modality m);

struct Manifest {
    std::string name = "adapter", version = "1.0.0";
    Task task                = Task::Classify;
    model::Path path         = model::Path::Encoder;
    model::Modality modality = model::Modality::Image;
    OutputKind output        = OutputKind::Label;
    std::string firmware_fingerprint;
    int64_t lora_rank = 0;  // 0: no LoRA
    float lora_alpha  = 0;
    std::vector<std::string> targets;
    model::HeadType head_type = model::HeadType::None;
    model::HeadPool head_pool = model::HeadPool::Mean;
    int64_t head_in = 0, head_out = 0;
    int64_t head_hidden = 0;  // width of the head's hidden layer (0: a linear head)
    std::vector<std::string> labels;
    std::string prompt = "{input}";
    model::GenerateOptions generation;
    nlohmann::json metrics = nlohmann::json::object();
};

// Errors name the key: "adapter.m4a: manifest: \"path\" must be encoder, backbone or full".
Result<Manifest> parse_manifest(const nlohmann::json & j);
nlohmann::json manifest_to_json(const Manifest & m);

// Which firmware an adapter may bind to (docs/formats.md, "Quantized siblings").
// Exact: only the firmware it was trained on (same fingerprint).
// Sibling (the rule everywhere, the service included): also a firmware quantized from that one,
// when its claim (provenance.quantized.from = the adapter's fingerprint) is vouched for — the
// firmware's signature was verified against the trusted key it was loaded with (the claim is in
// the signed header), or the caller verified it against the parent itself
// (model::verify_quantized_sibling) and passes the parent's fingerprint as verified_parent. An
// unsigned or unchecked claim is refused: anyone can write a header.
enum class Binding { Exact, Sibling };

class Adapter {
  public:
    // Loads and binds to `fw`: fingerprint (per `binding`), path/modality, targets and shapes are
    // checked.
    static Result<Adapter> load(const std::string & path, const model::Model & fw, Binding binding = Binding::Sibling,
                                const std::string & verified_parent = "");
    // Loads without a firmware (m4fw inspect): digest and manifest only.
    static Result<Adapter> load_unbound(const std::string & path);

    const Manifest & manifest() const { return manifest_; }
    const model::AdapterWeights & weights() const { return weights_; }
    const format::ContainerFile & file() const { return file_; }
    uint64_t file_size() const { return file_.file_size(); }

  private:
    format::ContainerFile file_;
    Manifest manifest_;
    model::AdapterWeights weights_;
};

// The head's tensors as written: w [out, in | hidden], b [out] (not for embed heads), and with a
// hidden layer (manifest head_hidden > 0) hidden_w [hidden, in], hidden_b [hidden].
struct HeadTensors {
    Tensor w, b, hidden_w, hidden_b;
};

// Writes an adapter: the manifest plus "lora.<target>.a/.b" and "head.weight"/"head.bias", or for
// a head with a hidden layer "head.hidden.weight"/"head.hidden.bias" and "head.out.weight"/"head.out.bias".
Status write_adapter(const std::string & path, const Manifest & m, const std::map<std::string, model::LoraPair> & lora,
                     const HeadTensors & head);

// Expands target patterns: "all", "attn" (q,k,v,o), "mlp"/"ffn", or comma-separated linear names
// with '*' wildcards, restricted to the linears the manifest's path executes.
Result<std::vector<std::string>> expand_targets(const model::ModelConfig & c, model::Path path,
                                                model::Modality modality, const std::string & pattern);

// A random adapter (tests, benchmarks): LoRA A and B ~ normal, head ~ normal; manifest completed
// (fingerprint, head dims) from the firmware.
Status write_random_adapter(const std::string & out_path, const model::Model & fw, Manifest m, uint64_t seed);

}  // namespace m4::adapter
