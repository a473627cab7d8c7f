// Writes a few valid firmware and adapter containers into DIR as a seed corpus for fuzz_container.
#include <fmt/format.h>

#include <cstring>

#include "adapter/adapter.h"
#include "base/mapped_file.h"
#include "format/container.h"

using namespace m4;

int main(int argc, char ** argv) {
    if (argc != 2) return 2;
    std::string dir          = argv[1];
    nlohmann::json fw_header = {{"format", "m4fw"},
                                {"embed_dim", 4},
                                {"text", {{"vocab_size", 8}}},
                                {"backbone", {{"width", 4}, {"layers", 1}, {"heads", 2}, {"ffn", 8}, {"max_seq", 8}}},
                                {"encoders",
                                 {{"imu",
                                   {{"sample_rate", 50},
                                    {"window", 10},
                                    {"patch_size", 5},
                                    {"width", 4},
                                    {"layers", 1},
                                    {"heads", 1},
                                    {"ffn", 8}}}}}};
    format::ContainerWriter fw(format::FileKind::Firmware);
    fw.set_header(fw_header);
    Tensor w = Tensor::zeros(DType::F32, {4, 3});
    fw.add("a.weight", w);
    fw.add("q.weight", quantize_rows_i8(w));
    fw.add("h.weight", to_bf16(w));
    std::string b = fw.serialize();
    if (!write_file_atomic(dir + "/seed_firmware", b.data(), b.size()).is_ok()) return 1;
    adapter::Manifest m;
    m.firmware_fingerprint = std::string(64, 'a');
    m.head_type = model::HeadType::Classify, m.head_in = 4, m.head_out = 2, m.labels = {"x", "y"};
    format::ContainerWriter ad(format::FileKind::Adapter);
    ad.set_header(adapter::manifest_to_json(m));
    ad.add("head.weight", Tensor::zeros(DType::F32, {2, 4}));
    ad.add("head.bias", Tensor::zeros(DType::F32, {2}));
    b = ad.serialize();
    if (!write_file_atomic(dir + "/seed_adapter", b.data(), b.size()).is_ok()) return 1;
    m.head_hidden = 3;  // a head with a hidden layer: head.hidden.*, head.out.*
    format::ContainerWriter mlp(format::FileKind::Adapter);
    mlp.set_header(adapter::manifest_to_json(m));
    mlp.add("head.hidden.weight", Tensor::zeros(DType::F32, {3, 4}));
    mlp.add("head.hidden.bias", Tensor::zeros(DType::F32, {3}));
    mlp.add("head.out.weight", Tensor::zeros(DType::F32, {2, 3}));
    mlp.add("head.out.bias", Tensor::zeros(DType::F32, {2}));
    b = mlp.serialize();
    if (!write_file_atomic(dir + "/seed_adapter_mlp_head", b.data(), b.size()).is_ok()) return 1;
    // Seeds for fuzz_import: a small safetensors file and a small GGUF file (F32 and Q8_0 tensors).
    std::string st = R"({"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
                     R"("b":{"dtype":"BF16","shape":[2],"data_offsets":[16,20]},"__metadata__":{"format":"pt"}})";
    std::string sf(8, '\0');
    uint64_t n = st.size();
    std::memcpy(sf.data(), &n, 8);
    sf += st + std::string(20, '\x11');
    if (!write_file_atomic(dir + "/seed_safetensors", sf.data(), sf.size()).is_ok()) return 1;
    std::string g = "GGUF";
    auto put      = [&](auto v) { g.append(reinterpret_cast<const char *>(&v), sizeof v); };
    auto str      = [&](const std::string & s) { put(uint64_t(s.size())), g += s; };
    put(uint32_t{3}), put(uint64_t{2}), put(uint64_t{2});
    str("general.architecture"), put(uint32_t{8}), str("llama");
    str("tokenizer.ggml.scores"), put(uint32_t{9}), put(uint32_t{6}), put(uint64_t{2}), put(1.0f), put(2.0f);
    str("w"), put(uint32_t{2}), put(uint64_t{2}), put(uint64_t{2}), put(uint32_t{0}), put(uint64_t{0});
    str("q"), put(uint32_t{1}), put(uint64_t{32}), put(uint32_t{8}), put(uint64_t{32});
    g.resize((g.size() + 31) / 32 * 32, '\0');
    g += std::string(32, '\x01') + std::string(34, '\x02');
    if (!write_file_atomic(dir + "/seed_gguf", g.data(), g.size()).is_ok()) return 1;
    fmt::print("seed corpus written to {}\n", dir);
    return 0;
}
