// Tasks answered by a decoder (path 4, `generator`). img.super_resolution: 32×32 RGB originals, the
// input is their ×2 or ×4 reduction (docs/benchmark.md). The stored payload is the original; the
// low-resolution input is derived from it (box average of f×f blocks, sr_reduce below), so one
// example serves both scales and nothing about the degradation is hidden in the data.
//
// Images are the benchmark's own: Fashion-MNIST photos (real; 28×28 grey centred on a black
// 32×32 canvas, grey replicated to RGB) and generated scenes of 1–4 shapes (the scene generator of
// img.count / mm.vqa, drawn at 32×32). Splits: train and val from the official Fashion-MNIST train
// file (disjoint index ranges) and private scene seeds; test from the official test file and
// another seed.
#include <fmt/format.h>

#include "data/scenes.h"
#include "data/sources.h"
#include "data/task.h"

namespace m4::data {

namespace {

constexpr int kSrSize = 32;

// Fashion-MNIST images [first, first + count) of one official file, centred on 32×32 RGB.
Result<std::vector<std::vector<uint8_t>>> fashion_images(bool test, size_t first, size_t count) {
    const std::string path =
        std::string("/usr/share/datasets/fashion-mnist/") + (test ? "t10k" : "train") + "-images-idx3-ubyte.gz";
    M4_ASSIGN_OR_RETURN(auto img, read_gz(path));
    auto be32 = [&](size_t o) {
        return uint32_t(img[o]) << 24 | uint32_t(img[o + 1]) << 16 | uint32_t(img[o + 2]) << 8 | img[o + 3];
    };
    if (img.size() < 16 || be32(0) != 0x803) return invalid_argument(path + ": bad IDX header");
    const uint32_t n = be32(4), h = be32(8), w = be32(12);
    if (h != 28 || w != 28 || img.size() < 16 + size_t(n) * h * w)
        return invalid_argument(path + ": expected 28×28 images");
    if (first + count > n)
        return invalid_argument(path + ": holds " + std::to_string(n) + " images, fewer than needed");
    std::vector<std::vector<uint8_t>> out;
    const size_t pad = (kSrSize - 28) / 2;
    for (size_t i = first; i < first + count; ++i) {
        std::vector<uint8_t> px(kSrSize * kSrSize * 3, 0);
        const uint8_t * src = img.data() + 16 + i * 28 * 28;
        for (size_t y = 0; y < 28; ++y)
            for (size_t x = 0; x < 28; ++x)
                for (size_t c = 0; c < 3; ++c) px[((y + pad) * kSrSize + x + pad) * 3 + c] = src[y * 28 + x];
        out.push_back(std::move(px));
    }
    return out;
}

Status build_super_resolution(TaskOutput & out) {
    struct Part {
        const char * split;
        bool fashion_test;
        size_t fashion_first, fashion_n, scenes_n;
    };
    // Fashion train indices: [0, 3000) train, [50000, 50500) val; the official test file for test.
    const Part parts[] = {{"train", false, 0, out.n(3000), out.n(3000)},
                          {"val", false, 50000, out.n(500), out.n(500)},
                          {"test", true, 0, out.n(500), out.n(500)}};
    for (const Part & p : parts) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(p.split));
        M4_ASSIGN_OR_RETURN(auto real, fashion_images(p.fashion_test, p.fashion_first, p.fashion_n));
        for (auto & px : real) {
            ExampleIn ex = ExampleIn::image(std::move(px), kSrSize, kSrSize, 3);
            ex.group     = 0;  // real photo
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
        Rng rng = out.rng(std::string("scenes-") + p.split);
        for (size_t i = 0; i < p.scenes_n; ++i) {
            Scene s      = make_scene(rng, 1, 4, kSrSize);
            ExampleIn ex = ExampleIn::image(s.image.to_u8(), kSrSize, kSrSize, 3);
            ex.group     = 1;  // generated scene
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
        out.progress(fmt::format("{}: {} images", p.split, wr->count()));
    }
    out.extra()["scales"]      = {2, 4};
    out.extra()["degradation"] = "box average of f×f blocks (f = 2, 4), then the decoder's bicubic enlargement";
    out.extra()["baseline"]    = "bicubic (Keys a = -0.5) enlargement of the reduced image";
    return Status::ok();
}

}  // namespace

std::vector<uint8_t> sr_reduce(const uint8_t * px, int size, int factor) {
    const int s = size / factor;
    std::vector<uint8_t> out(static_cast<size_t>(s * s * 3));
    for (int y = 0; y < s; ++y)
        for (int x = 0; x < s; ++x)
            for (int c = 0; c < 3; ++c) {
                int sum = 0;
                for (int dy = 0; dy < factor; ++dy)
                    for (int dx = 0; dx < factor; ++dx) sum += px[((y * factor + dy) * size + x * factor + dx) * 3 + c];
                const int n              = factor * factor;
                out[(y * s + x) * 3 + c] = static_cast<uint8_t>((sum + n / 2) / n);
            }
    return out;
}

void register_decoder_tasks(std::vector<Task> & t) {
    t.push_back({{"img.super_resolution",
                  "image",
                  Modality::Image,
                  "reconstruct",
                  "generator",
                  "psnr+ssim",
                  "real+generated",
                  "×2 and ×4 super-resolution of 32×32 RGB images: Fashion-MNIST photos (real, centred on black) "
                  "and generated scenes of 1-4 shapes; input = box-averaged reduction",
                  "the official Fashion-MNIST test images and held-out scene seeds",
                  {"dataset-fashion-mnist"}},
                 build_super_resolution});
}

}  // namespace m4::data
