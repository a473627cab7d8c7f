// m4fw quantize IN OUT --dtype bf16|i8 [--check N] [--sign KEY]
//                [--eval-task T --data DIR [--adapter A] [--split S] [--limit N]]
// Converts the weights of every linear layer and the token embedding to bf16 or int8 (per output
// channel); norms, biases, position embeddings and the tokenizer stay as they are
// (model/quantize.h). The new firmware has a new fingerprint and records IN's and the dtype in its
// header's provenance.quantized; IN's adapters bind to it once that claim is vouched for (signed
// with --sign and loaded with the public key, or verified with --parent IN; docs/formats.md).
// --check runs N random inputs per path through both firmwares and prints how far the outputs
// moved. --eval-task scores IN and OUT on a benchmark task's split and prints the change: the
// accuracy cost of the quantization on that eval set, with the task's adapter for IN (scored on
// OUT under Binding::QuantizedFromParent) or zero-shot without one.
#include <fmt/format.h>

#include <cmath>
#include <random>

#include "adapter/adapter.h"
#include "bench/evaluate.h"
#include "commands.h"
#include "format/container.h"
#include "model/model.h"
#include "model/quantize.h"

namespace m4::cli {
namespace {

struct QuantizeArgs {
    std::string in, out, dtype = "i8", sign_key;
    int check = 4;
    std::string eval_task, data = "data", adapter, split = "test";
    int64_t limit = 0;
};

// max |a − b| / max |b| over one output vector.
double rel_err(const std::vector<float> & a, const std::vector<float> & b) {
    double num = 0, den = 1e-12;
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
        num = std::max(num, double(std::fabs(a[i] - b[i])));
        den = std::max(den, double(std::fabs(b[i])));
    }
    return num / den;
}

Status check_outputs(const model::Model & ref, const model::Model & q, int n) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto run = [&](model::Path p, model::Modality m) -> Status {
        std::vector<model::Request> batch(n);
        for (auto & r : batch) {
            if (p != model::Path::Backbone) {
                const auto & ec = ref.config().encoder(m);
                int64_t k       = ec.input_values();
                r.signal.resize(k);
                for (auto & v : r.signal) v = m == model::Modality::Audio ? 0.1f * u(rng) : u(rng);
            }
            for (int t = 0; t < 12; ++t)
                r.tokens.push_back(4 + static_cast<int32_t>(rng() % (ref.config().text.vocab_size - 4)));
        }
        M4_ASSIGN_OR_RETURN(auto a, ref.run(p, m, batch));
        M4_ASSIGN_OR_RETURN(auto b, q.run(p, m, batch));
        double worst = 0;
        for (int i = 0; i < n; ++i)
            worst = std::max(worst, p == model::Path::Encoder ? rel_err(b[i].embedding, a[i].embedding)
                                                              : rel_err(b[i].logits, a[i].logits));
        fmt::print("  {:<8} {:<5} max relative change of {} over {} inputs: {:.2e}\n", model::path_name(p),
                   model::modality_name(m), p == model::Path::Encoder ? "embeddings" : "last-position logits", n,
                   worst);
        return Status::ok();
    };
    for (int i = 0; i < model::kEncoderModalities; ++i)
        if (ref.config().encoders[i]) M4_RETURN_IF_ERROR(run(model::Path::Encoder, static_cast<model::Modality>(i)));
    M4_RETURN_IF_ERROR(run(model::Path::Backbone, model::Modality::Text));
    return Status::ok();
}

// The task's headline metric on `in` and on `out` (quantized from it), and the change.
Status eval_cost(const QuantizeArgs & a, const model::Model & in, const model::Model & out) {
    bench::EvalOptions o;
    o.split = a.split;
    o.limit = a.limit;
    std::vector<bench::EvalReport> reports;
    for (const model::Model * fw : {&in, &out}) {
        M4_ASSIGN_OR_RETURN(bench::TaskPlan plan, bench::plan_task(a.data, a.eval_task, fw->config()));
        bench::EvalReport r;
        if (a.adapter.empty()) {
            M4_ASSIGN_OR_RETURN(r, bench::evaluate_zero_shot(*fw, plan, a.data, o));
        } else {
            // OUT was verified against IN in run_quantize, so IN's adapter binds to it.
            const std::string parent = fw == &in ? "" : in.fingerprint();
            M4_ASSIGN_OR_RETURN(adapter::Adapter ad,
                                adapter::Adapter::load(a.adapter, *fw, adapter::Binding::Sibling, parent));
            M4_ASSIGN_OR_RETURN(r, bench::evaluate_adapter(*fw, ad, a.adapter, plan, a.data, o));
        }
        reports.push_back(std::move(r));
    }
    const bench::EvalReport &before = reports[0], &after = reports[1];
    const bool higher = bench::higher_is_better(before.metric.substr(before.metric.rfind(' ') + 1));
    fmt::print("  {} [{}] {}: {} {} {:.4f} → {} {:.4f} (change {:+.4f}; {} is better; chance {:.4f}; {} examples)\n",
               before.task, before.split, a.adapter.empty() ? "zero-shot" : a.adapter, before.metric, a.in,
               before.score, a.out, after.score, after.score - before.score, higher ? "higher" : "lower", before.chance,
               before.examples);
    return Status::ok();
}

Status run_quantize(const QuantizeArgs & a) {
    if (!a.adapter.empty() && a.eval_task.empty()) return invalid_argument("--adapter needs --eval-task");
    DType to;
    if (!parse_dtype(a.dtype, &to) || (to != DType::BF16 && to != DType::I8))
        return invalid_argument("--dtype must be bf16 or i8");
    M4_ASSIGN_OR_RETURN(auto src, model::Model::load(a.in));
    M4_ASSIGN_OR_RETURN(format::ContainerWriter w, model::quantized_sibling(*src, to));
    uint64_t before = 0, after = 0;
    for (const auto & e : src->file().entries()) before += e.nbytes;
    SecretKey sk;
    if (!a.sign_key.empty()) {
        M4_ASSIGN_OR_RETURN(sk, read_secret_key(a.sign_key));
    }
    M4_RETURN_IF_ERROR(w.write(a.out, a.sign_key.empty() ? nullptr : &sk));
    M4_ASSIGN_OR_RETURN(auto q, model::Model::load(a.out));
    for (const auto & e : q->file().entries()) after += e.nbytes;
    fmt::print("wrote {}: tensor data {:.2f} MiB → {:.2f} MiB ({}), fingerprint {}\n", a.out, before / 1048576.0,
               after / 1048576.0, a.dtype, q->fingerprint());
    if (a.check > 0) M4_RETURN_IF_ERROR(check_outputs(*src, *q, a.check));
    if (!a.eval_task.empty()) {
        M4_RETURN_IF_ERROR(model::verify_quantized_sibling(*q, *src));
        M4_RETURN_IF_ERROR(eval_cost(a, *src, *q));
    }
    return Status::ok();
}

}  // namespace

Result<std::string> verified_parent(const std::string & parent_path, const model::Model & fw) {
    if (parent_path.empty()) return std::string();
    M4_ASSIGN_OR_RETURN(auto parent, model::Model::load(parent_path));
    M4_RETURN_IF_ERROR(model::verify_quantized_sibling(fw, *parent));
    return parent->fingerprint();
}

void add_quantize_command(CLI::App & app, int * rc) {
    auto a     = std::make_shared<QuantizeArgs>();
    auto * cmd = app.add_subcommand("quantize", "convert a firmware's linear weights to bf16 or int8");
    cmd->add_option("in", a->in, "input .m4fw")->required();
    cmd->add_option("out", a->out, "output .m4fw")->required();
    cmd->add_option("--dtype", a->dtype, "bf16 | i8 (int8 with per-output-channel scales)");
    cmd->add_option("--check", a->check, "random inputs per path to compare with the input firmware (0: skip)");
    cmd->add_option("--sign", a->sign_key,
                    "Ed25519 secret key file to sign with (vouches for the parent reference: IN's adapters bind)");
    cmd->add_option("--eval-task", a->eval_task, "score both firmwares on this benchmark task (m4fw data list)");
    cmd->add_option("--data", a->data, "--eval-task: data directory (m4fw data build)");
    cmd->add_option("--adapter", a->adapter, "--eval-task: the task's adapter for IN (default: zero-shot)");
    cmd->add_option("--split", a->split, "--eval-task: split to score");
    cmd->add_option("--limit", a->limit, "--eval-task: score a fixed subset of N examples (0: all)");
    cmd->callback([a, rc] { *rc = report(run_quantize(*a)); });
}

}  // namespace m4::cli
