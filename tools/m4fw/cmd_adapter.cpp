// m4fw adapter init --firmware F --out A --task T --path P --modality M [--rank R --alpha A --targets …]
// A random-weight adapter bound to F (tests, benchmarks); training comes with `m4fw adapter train`.
#include <fmt/format.h>

#include "adapter/adapter.h"
#include "commands.h"

namespace m4::cli {
namespace {

struct AdapterInitArgs {
    std::string firmware, out, task = "classify", path = "encoder", modality = "image", targets = "all", labels,
                               pool = "mean", name = "random";
    int64_t rank = 4, out_dim = 0;
    float alpha         = 8;
    uint64_t seed       = 1;
    int64_t head_hidden = 0;
};

Status run_adapter_init(const AdapterInitArgs & a) {
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(a.firmware));
    adapter::Manifest m;
    m.name = a.name;
    if (!adapter::parse_task(a.task, &m.task)) return invalid_argument("--task: classify, regress, embed or generate");
    if (!model::parse_path(a.path, &m.path)) return invalid_argument("--path: encoder, backbone, full or generator");
    if (!model::parse_modality(a.modality, &m.modality))
        return invalid_argument("--modality: image, audio, imu or text");
    const bool draw = m.path == model::Path::Full && m.modality == model::Modality::Text;  // into the image decoder
    if (!draw && (m.path == model::Path::Backbone) != (m.modality == model::Modality::Text))
        return invalid_argument("--modality text goes with --path backbone (or --path full into the image decoder)");
    if (draw && m.task != adapter::Task::Generate)
        return invalid_argument("--path full --modality text ends in the image decoder: --task generate");
    if (draw && !fw->config().has_draw_path())
        return incompatible(a.firmware +
                            ": no image decoder with a projector from the backbone "
                            "(\"decoders.image.from_backbone\") for --path full --modality text");
    if (m.path == model::Path::Generator && !fw->config().has_decoder(m.modality))
        return incompatible(a.firmware + ": no " + a.modality + " decoder (\"decoders." +
                            (m.modality == model::Modality::Audio ? std::string("speech") : a.modality) +
                            "\") for the generator path");
    if (m.path == model::Path::Generator && m.task != adapter::Task::Generate)
        return invalid_argument("--path generator runs a decoder alone: --task generate");
    if (!draw && m.path != model::Path::Backbone && m.path != model::Path::Generator &&
        !fw->config().has_encoder(m.modality))
        return incompatible(a.firmware + ": no " + a.modality + " encoder");
    if (m.task == adapter::Task::Generate && m.path == model::Path::Encoder)
        return invalid_argument("--task generate needs --path backbone or full");
    if (a.rank > 0 && !a.targets.empty()) {
        M4_ASSIGN_OR_RETURN(m.targets, adapter::expand_targets(fw->config(), m.path, m.modality, a.targets));
        m.lora_rank  = a.rank;
        m.lora_alpha = a.alpha;
    }
    if (!a.labels.empty()) {
        size_t start = 0;
        while (start <= a.labels.size()) {
            size_t c = a.labels.find(',', start);
            if (c == std::string::npos) c = a.labels.size();
            m.labels.push_back(a.labels.substr(start, c - start));
            start = c + 1;
        }
    }
    m.head_out  = a.out_dim;
    m.head_pool = a.pool == "last" ? model::HeadPool::Last : model::HeadPool::Mean;
    if (a.head_hidden < 0 || a.head_hidden > model::kMaxHeadHidden)
        return invalid_argument("--head-hidden: a width in [0, " + std::to_string(model::kMaxHeadHidden) + "]");
    if (a.head_hidden > 0 && m.task == adapter::Task::Generate)
        return invalid_argument("--head-hidden: a generate adapter has no head");
    m.head_hidden = a.head_hidden;
    M4_RETURN_IF_ERROR(adapter::write_random_adapter(a.out, *fw, m, a.seed));
    M4_ASSIGN_OR_RETURN(adapter::Adapter ad, adapter::Adapter::load(a.out, *fw));
    fmt::print("wrote {}: {} {} adapter, {} LoRA targets, {} bytes\n", a.out, a.path, a.task, m.targets.size(),
               ad.file_size());
    return Status::ok();
}

}  // namespace

void add_adapter_commands(CLI::App & app, int * rc) {
    auto * grp = app.add_subcommand("adapter", "adapter tools");
    grp->require_subcommand(1);
    auto a     = std::make_shared<AdapterInitArgs>();
    auto * cmd = grp->add_subcommand("init", "create a random-weight adapter bound to a firmware");
    add_firmware_option(cmd, &a->firmware);
    cmd->add_option("--out", a->out, "output .m4a")->required();
    cmd->add_option("--task", a->task, "classify | regress | embed | generate");
    cmd->add_option("--path", a->path, "encoder | backbone | full");
    cmd->add_option("--modality", a->modality, "image | audio | imu | text");
    cmd->add_option("--rank", a->rank, "LoRA rank (0: head only)");
    cmd->add_option("--alpha", a->alpha, "LoRA alpha (scale = alpha / rank)");
    cmd->add_option("--targets", a->targets, "all | attn | mlp | comma-separated linear names (* wildcards)");
    cmd->add_option("--labels", a->labels, "comma-separated class labels (classify)");
    cmd->add_option("--out-dim", a->out_dim, "head outputs (regress, embed)");
    cmd->add_option("--pool", a->pool, "mean | last (backbone and full paths)");
    cmd->add_option("--head-hidden", a->head_hidden, "width of a hidden GELU layer in the head (0: linear head)");
    cmd->add_option("--name", a->name, "adapter name");
    cmd->add_option("--seed", a->seed, "random seed");
    cmd->callback([a, rc] { *rc = report(run_adapter_init(*a)); });
    add_service_commands(app, *grp, rc);
}

}  // namespace m4::cli
