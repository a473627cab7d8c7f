// Writes a few valid firmware and adapter containers into DIR as a seed corpus for fuzz_container.
#include <fmt/format.h>

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
    fmt::print("seed corpus written to {}\n", dir);
    return 0;
}
