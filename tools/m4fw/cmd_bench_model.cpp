// m4fw bench model --firmware F [--prefill 512] [--decode 128] [--min-time 2] [--kv-dtype bf16]
// End-to-end throughput of a firmware on this machine: encoder inputs/s per modality, prefill
// tokens/s and decode tokens/s, each at batch 1 and 8, and the process's peak RSS next to the
// firmware's size (the firmware is mapped, so only pages a path touches become resident).
// Decoding keeps a bf16 KV cache by default (llama-bench's default is f16); --kv-dtype f32 for
// the exact one.
#include <fmt/format.h>
#include <sys/resource.h>

#include <chrono>

#include "base/cpu.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "model/model.h"

namespace m4::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct ModelBenchArgs {
    std::string firmware;
    int prefill = 512, decode = 128;
    double min_time      = 2.0;
    std::string kv_dtype = "bf16";
};

// Runs fn once untimed (first-touch page faults, pool start-up), then repeats it until min_time
// has passed; returns (repetitions, seconds).
template <typename F>
std::pair<int, double> repeat(double min_time, F && fn) {
    if (!fn()) return {0, 0};
    auto t0  = Clock::now();
    int reps = 0;
    double s = 0;
    do {
        if (!fn()) return {0, 0};
        ++reps;
        s = std::chrono::duration<double>(Clock::now() - t0).count();
    } while (s < min_time);
    return {reps, s};
}

// Constrained output (model/constraint.h): the schema's compile time (once per request), the
// vocabulary mask's cost per generated token (replayed on the states of real outputs), and decode
// time per token with and without the constraint, alternating the two so drift hits both.
Status bench_constrained(const model::Model & m, DType kv_dtype, int D, double min_time) {
    const std::string schema = R"({"type":"array","items":{"type":"object","properties":{)"
                               R"("name":{"type":"string"},"age":{"type":"integer"},"ok":{"type":"boolean"}},)"
                               R"("required":["name","age"]}})";
    auto t0                  = Clock::now();
    auto c                   = model::TokenConstraint::json_schema(schema, m.tokenizer(), D);
    const double compile_ms  = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!c) {
        fmt::print("constrained JSON: not measured ({})\n", c.status().message());
        return Status::ok();
    }
    model::Request r;
    r.tokens = {5};
    model::GenerateOptions plain;
    plain.max_new_tokens = D, plain.kv_dtype = kv_dtype, plain.temperature = 1.0f;
    model::GenerateOptions constrained = plain;
    constrained.constraint             = *c;
    double s_plain = 0, s_con = 0, s_mask = 0;
    int64_t n_plain = 0, n_con = 0, n_mask = 0;
    std::vector<uint8_t> allowed(static_cast<size_t>(m.config().text.vocab_size));
    auto start = Clock::now();
    for (uint64_t round = 0; round < 3 || std::chrono::duration<double>(Clock::now() - start).count() < min_time;
         ++round) {
        plain.seed = constrained.seed = round;
        for (auto * g : {&plain, &constrained}) {
            auto t   = Clock::now();
            auto out = m.generate(model::Path::Backbone, model::Modality::Text, {&r, 1}, {g, 1});
            if (!out) return out.status();
            const double sec = std::chrono::duration<double>(Clock::now() - t).count();
            (g == &plain ? s_plain : s_con) += sec;
            (g == &plain ? n_plain : n_con) += static_cast<int64_t>((*out)[0].tokens.size());
            if (g != &plain) {  // replay: the mask alone, on every state of this output
                auto st = (*c)->start();
                for (size_t i = 0; i < (*out)[0].tokens.size(); ++i) {
                    auto tm = Clock::now();
                    (*c)->mask(st, static_cast<int64_t>(D - i), allowed.data());
                    s_mask += std::chrono::duration<double>(Clock::now() - tm).count();
                    ++n_mask;
                    (*c)->advance(st, (*out)[0].tokens[i]);
                }
            }
        }
    }
    const double plain_ms = 1e3 * s_plain / std::max<int64_t>(1, n_plain);
    const double con_ms   = 1e3 * s_con / std::max<int64_t>(1, n_con);
    fmt::print(
        "constrained JSON: compile {:.2f} ms · mask {:.1f} us/token · decode {:.3f} ms/token vs {:.3f} "
        "unconstrained ({:.2f}x; {} and {} tokens, batch 1, alternated)\n",
        compile_ms, 1e6 * s_mask / std::max<int64_t>(1, n_mask), con_ms, plain_ms, con_ms / plain_ms, n_con, n_plain);
    return Status::ok();
}

Status run_model_bench(const ModelBenchArgs & a) {
    DType kv_dtype = DType::F32;
    if (!parse_dtype(a.kv_dtype, &kv_dtype) || (kv_dtype != DType::F32 && kv_dtype != DType::BF16))
        return invalid_argument("--kv-dtype: '" + a.kv_dtype + "' is not f32 or bf16");
    M4_ASSIGN_OR_RETURN(auto m, model::Model::load(a.firmware));
    const auto & c = m->config();
    fmt::print("firmware {} ({:.1f} MiB) · cpu {} · kernels {} · threads {} · KV cache {}\n", a.firmware,
               m->file().file_size() / 1048576.0, cpu_features().describe(), isa_name(selected_isa()),
               ThreadPool::global().size(), dtype_name(kv_dtype));
    for (int i = 0; i < model::kEncoderModalities; ++i) {
        if (!c.encoders[i]) continue;
        const auto & ec = *c.encoders[i];
        auto mod        = static_cast<model::Modality>(i);
        int64_t n       = ec.input_values();
        for (int B : {1, 8}) {
            std::vector<model::Request> batch(B);
            for (auto & r : batch) {
                r.signal.resize(n);
                for (int64_t k = 0; k < n; ++k) r.signal[k] = 0.01f * float((k * 7) % 61) - 0.3f;
            }
            auto [reps, s] = repeat(a.min_time, [&] { return m->run(model::Path::Encoder, mod, batch).is_ok(); });
            fmt::print("encoder {:<5} batch {}: {:9.2f} inputs/s\n", model::modality_name(mod), B, reps * B / s);
        }
    }
    const int P = std::min<int>(a.prefill, static_cast<int>(c.backbone.max_seq) - 1);
    for (int B : {1, 8}) {
        std::vector<model::Request> batch(B);
        for (int b = 0; b < B; ++b)
            for (int t = 0; t < P; ++t)
                batch[b].tokens.push_back(4 + (t * 31 + b) % static_cast<int>(c.text.vocab_size - 4));
        auto [reps, s] =
            repeat(a.min_time, [&] { return m->run(model::Path::Backbone, model::Modality::Text, batch).is_ok(); });
        fmt::print("prefill {} tokens, batch {}: {:9.1f} tokens/s\n", P, B, double(reps) * B * P / s);
    }
    const int D = std::min<int>(a.decode, static_cast<int>(c.backbone.max_seq) - 2);
    for (int B : {1, 8}) {
        std::vector<model::Request> batch(B);
        for (int b = 0; b < B; ++b) batch[b].tokens = {5 + b};
        model::GenerateOptions g;
        g.max_new_tokens  = D;
        g.kv_dtype        = kv_dtype;
        int64_t generated = 0, calls = 0;
        auto [reps, s]    = repeat(a.min_time, [&] {
            auto gens = m->generate(model::Path::Backbone, model::Modality::Text, batch, g);
            if (!gens) return false;
            if (calls++ > 0)  // the warm-up call is not timed, so its tokens do not count
                for (const auto & x : *gens) generated += static_cast<int64_t>(x.tokens.size());
            return true;
        });
        fmt::print("decode {} tokens, batch {}: {:9.1f} tokens/s (prompt of 2 positions included)\n", D, B,
                   double(generated) / s);
        (void)reps;
    }
    M4_RETURN_IF_ERROR(bench_constrained(*m, kv_dtype, D, a.min_time));
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    fmt::print("peak RSS: {:.1f} MiB (firmware file {:.1f} MiB)\n", ru.ru_maxrss / 1024.0,
               m->file().file_size() / 1048576.0);
    return Status::ok();
}

}  // namespace

void add_bench_model_command(CLI::App & bench, int * rc) {
    auto a     = std::make_shared<ModelBenchArgs>();
    auto * cmd = bench.add_subcommand("model", "encoder inputs/s, prefill and decode tokens/s, peak RSS");
    add_firmware_option(cmd, &a->firmware);
    cmd->add_option("--prefill", a->prefill, "prompt tokens for the prefill measurement");
    cmd->add_option("--decode", a->decode, "new tokens for the decode measurement");
    cmd->add_option("--min-time", a->min_time, "seconds per measurement");
    cmd->add_option("--kv-dtype", a->kv_dtype, "KV cache storage while decoding: bf16 (default) or f32");
    cmd->callback([a, rc] { *rc = report(run_model_bench(*a)); });
}

}  // namespace m4::cli
