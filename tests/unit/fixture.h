// A tiny random-weight firmware (all three encoders), built once per test binary in a temp dir.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "adapter/adapter.h"
#include "format/container.h"
#include "model/model.h"

namespace m4::test {

inline nlohmann::json tiny_config() {
    return nlohmann::json::parse(R"({
      "format": "m4fw", "name": "tiny", "version": "0", "embed_dim": 16,
      "text": {"vocab_size": 200},
      "backbone": {"width": 32, "layers": 2, "heads": 4, "kv_heads": 2, "ffn": 64, "max_seq": 64},
      "encoders": {
        "image": {"image_size": 8, "patch_size": 4, "width": 16, "layers": 1, "heads": 2, "ffn": 32},
        "audio": {"sample_rate": 16000, "clip_samples": 2000, "n_fft": 400, "hop": 160, "n_mels": 16,
                  "patch_frames": 2, "width": 16, "layers": 1, "heads": 2, "ffn": 32},
        "imu": {"sample_rate": 50, "window": 20, "patch_size": 5, "width": 16, "layers": 1, "heads": 2, "ffn": 32}
      },
      "decoders": {
        "image": {"image_size": 8, "patch_size": 4, "width": 16, "layers": 1, "heads": 2, "ffn": 32},
        "speech": {"max_chars": 3, "frames_per_char": 2, "sample_rate": 16000, "n_fft": 64, "hop": 32, "n_mels": 8,
                   "griffin_lim_iters": 3, "width": 16, "layers": 1, "heads": 2, "ffn": 32}
      }})");
}

// Writes a firmware for `config` whose tokenizer is the SentencePiece model `tok_bytes`.
inline void write_firmware_with_tokenizer(
    const std::string & path, nlohmann::json config, const std::string & tok_bytes, uint64_t seed = 1,
    DType dtype = DType::F32, const SecretKey * sk = nullptr,
    const std::function<void(std::vector<std::pair<std::string, Tensor>> &)> & edit = {}) {
    auto tok = model::Tokenizer::from_bytes(tok_bytes, "test");
    ASSERT_TRUE(tok.is_ok());
    config["text"]["vocab_size"] = tok->vocab_size();
    auto cfg                     = model::parse_model_config(config);
    ASSERT_TRUE(cfg.is_ok()) << cfg.status().message();
    format::ContainerWriter w(format::FileKind::Firmware);
    nlohmann::json header = model::model_config_to_json(*cfg);
    header["format"]      = "m4fw";
    w.set_header(header);
    Tensor t = Tensor::empty(DType::U8, Shape{static_cast<int64_t>(tok_bytes.size())});
    std::memcpy(t.u8(), tok_bytes.data(), tok_bytes.size());
    w.add("tokenizer.model", t);
    auto weights = model::random_weights(*cfg, seed, dtype);
    if (edit) edit(weights);
    for (auto & [n, tensor] : weights) w.add(n, tensor);
    ASSERT_TRUE(w.write(path, sk).is_ok());
}

// Writes a firmware for `config` (tokenizer trained on a Debian licence text) to `path`.
inline void write_firmware(const std::string & path, nlohmann::json config, uint64_t seed = 1, DType dtype = DType::F32,
                           const SecretKey * sk                                                            = nullptr,
                           const std::function<void(std::vector<std::pair<std::string, Tensor>> &)> & edit = {}) {
    static std::string tok_bytes;
    if (tok_bytes.empty()) {
        model::TokenizerTrainOptions o;
        o.corpus_path = "/usr/share/common-licenses/GPL-3";
        o.vocab_size  = 200;
        auto b        = model::train_tokenizer(o);
        ASSERT_TRUE(b.is_ok()) << b.status().message();
        tok_bytes = *b;
    }
    write_firmware_with_tokenizer(path, std::move(config), tok_bytes, seed, dtype, sk, edit);
}

inline std::string temp_dir() {
    static std::string dir = [] {
        std::string d = (std::filesystem::temp_directory_path() / ("m4test_" + std::to_string(::getpid()))).string();
        std::filesystem::create_directories(d);
        return d;
    }();
    return dir;
}

}  // namespace m4::test
