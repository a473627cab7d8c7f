// m4_oracle_dump CASES.json — runs the cases the PyTorch oracle (test_oracle.py) describes and
// writes every output as .npy, so the oracle can compare them with its own forward pass.
// The case-file format is documented in tests/oracle/README.md.
#include <fmt/format.h>

#include <fstream>

#include "adapter/adapter.h"
#include "base/mapped_file.h"
#include "runtime/inputs.h"

using namespace m4;

namespace {

Status run_cases(const std::string & path) {
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(path));
    nlohmann::json j = nlohmann::json::parse(text);
    M4_ASSIGN_OR_RETURN(auto fw, model::Model::load(j.at("firmware").get<std::string>()));
    std::vector<adapter::Adapter> adapters;
    for (const auto & a : j.value("adapters", std::vector<std::string>{})) {
        M4_ASSIGN_OR_RETURN(adapter::Adapter ad, adapter::Adapter::load(a, *fw));
        adapters.push_back(std::move(ad));
    }
    const std::string out_dir = j.at("out_dir").get<std::string>();
    for (const auto & c : j.at("cases")) {
        const std::string name = c.at("name").get<std::string>();
        const std::string kind = c.value("kind", "forward");
        std::vector<model::Request> batch;
        for (const auto & it : c.at("items")) {
            model::Request r;
            int ai = it.value("adapter", -1);
            if (ai >= static_cast<int>(adapters.size())) return invalid_argument(name + ": adapter index out of range");
            if (ai >= 0) r.adapter = &adapters[ai].weights();
            if (it.contains("input")) {
                M4_ASSIGN_OR_RETURN(runtime::NpyArray a, runtime::read_npy(it["input"].get<std::string>()));
                r.signal = a.f32;
            }
            if (it.contains("tokens")) r.tokens = it["tokens"].get<std::vector<int32_t>>();
            batch.push_back(std::move(r));
        }
        auto file = [&](size_t i, const char * suffix) {
            return fmt::format("{}/{}.{}{}.npy", out_dir, name, i, suffix);
        };
        if (kind == "logmel") {
            for (size_t i = 0; i < batch.size(); ++i) {
                M4_ASSIGN_OR_RETURN(auto mel, fw->audio_log_mel(batch[i].signal));
                const auto & ec = fw->config().encoder(model::Modality::Audio);
                M4_RETURN_IF_ERROR(runtime::write_npy_f32(file(i, ""), mel.data(), {ec.n_frames(), ec.n_mels}));
            }
            continue;
        }
        model::Path p;
        model::Modality m;
        if (!model::parse_path(c.at("path").get<std::string>(), &p)) return invalid_argument(name + ": bad path");
        if (!model::parse_modality(c.at("modality").get<std::string>(), &m))
            return invalid_argument(name + ": bad modality");
        if (kind == "generate") {
            model::GenerateOptions g;
            g.max_new_tokens = c.value("max_new_tokens", 8);
            g.keep_logits    = true;
            M4_ASSIGN_OR_RETURN(auto gens, fw->generate(p, m, batch, g));
            for (size_t i = 0; i < gens.size(); ++i) {
                int64_t n = static_cast<int64_t>(gens[i].tokens.size()), V = fw->config().text.vocab_size;
                M4_RETURN_IF_ERROR(runtime::write_npy_i32(file(i, ".tokens"), gens[i].tokens.data(), {n}));
                M4_RETURN_IF_ERROR(runtime::write_npy_f32(file(i, ".step_logits"), gens[i].step_logits.data(), {n, V}));
            }
            continue;
        }
        M4_ASSIGN_OR_RETURN(auto outs, fw->run(p, m, batch, {.all_logits = true}));
        for (size_t i = 0; i < outs.size(); ++i) {
            const auto & o = outs[i];
            if (p == model::Path::Generator && m == model::Modality::Audio) {  // the speech decoder's log-mel
                const int64_t M = fw->config().speech_decoder->n_mels;
                M4_RETURN_IF_ERROR(runtime::write_npy_f32(file(i, ""), o.mel.data(), {int64_t(o.mel.size()) / M, M}));
            } else if (p == model::Path::Generator || (p == model::Path::Full && m == model::Modality::Text)) {
                const int64_t S = o.image_size;
                M4_RETURN_IF_ERROR(runtime::write_npy_f32(file(i, ""), o.image.data(), {S, S, 3}));
            } else if (!o.head.empty()) {
                M4_RETURN_IF_ERROR(runtime::write_npy_f32(file(i, ""), o.head.data(), {int64_t(o.head.size())}));
            } else if (p == model::Path::Encoder) {
                M4_RETURN_IF_ERROR(
                    runtime::write_npy_f32(file(i, ""), o.embedding.data(), {int64_t(o.embedding.size())}));
            } else {
                int64_t V = fw->config().text.vocab_size;
                M4_RETURN_IF_ERROR(runtime::write_npy_f32(file(i, ""), o.logits.data(), {o.n_positions, V}));
            }
        }
    }
    return Status::ok();
}

}  // namespace

int main(int argc, char ** argv) {
    if (argc != 2) {
        fmt::print(stderr, "usage: m4_oracle_dump CASES.json\n");
        return 2;
    }
    try {
        Status st = run_cases(argv[1]);
        if (!st.is_ok()) {
            fmt::print(stderr, "m4_oracle_dump: {}\n", st.message());
            return 1;
        }
    } catch (const std::exception & e) {
        fmt::print(stderr, "m4_oracle_dump: bad case file: {}\n", e.what());
        return 1;
    }
    return 0;
}
