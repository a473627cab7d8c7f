#include "bench/super_resolution.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>

#include "data/task.h"
#include "model/decoder.h"
#include "runtime/images.h"

namespace m4::bench {

Result<std::vector<uint8_t>> sr_original(const data::Example & ex, int64_t S, const std::string & where) {
    const int64_t h = ex.dims[0], w = ex.dims[1], c = ex.dims[2];
    if ((c != 1 && c != 3) || h < 1 || w < 1 || ex.payload_len != static_cast<size_t>(h * w * c))
        return invalid_argument(where + ": not an 8-bit grey or RGB image");
    // Centred square crop of side min(h, w), grey replicated to RGB.
    const int64_t q = std::min(h, w), y0 = (h - q) / 2, x0 = (w - q) / 2;
    std::vector<uint8_t> rgb(static_cast<size_t>(q * q * 3));
    for (int64_t y = 0; y < q; ++y)
        for (int64_t x = 0; x < q; ++x)
            for (int64_t k = 0; k < 3; ++k)
                rgb[(y * q + x) * 3 + k] = ex.payload[((y + y0) * w + x + x0) * c + (c == 3 ? k : 0)];
    if (q == S) return rgb;
    if (q < S) {  // centred on a black canvas
        std::vector<uint8_t> out(static_cast<size_t>(S * S * 3), 0);
        const int64_t o = (S - q) / 2;
        for (int64_t y = 0; y < q; ++y) std::copy_n(rgb.data() + y * q * 3, q * 3, out.data() + ((y + o) * S + o) * 3);
        return out;
    }
    if (q % S == 0) return data::sr_reduce(rgb.data(), static_cast<int>(q), static_cast<int>(q / S));
    return invalid_argument(where + ": a " + std::to_string(w) + "x" + std::to_string(h) + " image has no exact " +
                            std::to_string(S) + "x" + std::to_string(S) + " original");
}

Result<SrPair> sr_pair(const data::Example & ex, const model::EncoderConfig & dec, int factor,
                       const std::string & where) {
    const int64_t S = dec.image_size;
    if (S % factor != 0)
        return invalid_argument(where + ": the decoder's size " + std::to_string(S) + " is not divisible by " +
                                std::to_string(factor));
    M4_ASSIGN_OR_RETURN(const std::vector<uint8_t> px, sr_original(ex, S, where));
    auto norm = [](uint8_t v) { return (float(v) / 255.0f - 0.5f) / 0.5f; };
    SrPair p;
    p.target.resize(px.size());
    for (size_t i = 0; i < px.size(); ++i) p.target[i] = norm(px[i]);
    const std::vector<uint8_t> small = data::sr_reduce(px.data(), static_cast<int>(S), factor);
    runtime::DecodedImage img;
    img.height = img.width = S / factor;
    img.values.resize(small.size());
    for (size_t i = 0; i < small.size(); ++i) img.values[i] = norm(small[i]);
    M4_ASSIGN_OR_RETURN(p.input, runtime::image_to_decoder_grid(img, dec, where));
    return p;
}

double psnr_u8(const uint8_t * a, const uint8_t * b, int64_t n) {
    double se = 0;
    for (int64_t i = 0; i < n; ++i) {
        const double d = double(a[i]) - double(b[i]);
        se += d * d;
    }
    if (se == 0) return 100.0;
    return 10.0 * std::log10(255.0 * 255.0 / (se / double(n)));
}

double ssim_u8(const uint8_t * a, const uint8_t * b, int64_t h, int64_t w) {
    constexpr int64_t k = 7;
    const double c1 = (0.01 * 255) * (0.01 * 255), c2 = (0.03 * 255) * (0.03 * 255), n = k * k;
    double total    = 0;
    int64_t windows = 0;
    for (int64_t c = 0; c < 3; ++c)
        for (int64_t y0 = 0; y0 + k <= h; ++y0)
            for (int64_t x0 = 0; x0 + k <= w; ++x0) {
                double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
                for (int64_t y = y0; y < y0 + k; ++y)
                    for (int64_t x = x0; x < x0 + k; ++x) {
                        const double va = a[(y * w + x) * 3 + c], vb = b[(y * w + x) * 3 + c];
                        sa += va, sb += vb, saa += va * va, sbb += vb * vb, sab += va * vb;
                    }
                const double ma = sa / n, mb = sb / n;
                const double va = (saa - n * ma * ma) / (n - 1), vb = (sbb - n * mb * mb) / (n - 1);
                const double cov = (sab - n * ma * mb) / (n - 1);
                total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
                ++windows;
            }
    return windows ? total / double(windows) : 1.0;
}

Result<EvalReport> evaluate_super_resolution(const model::Model & fw, const adapter::Adapter * ad,
                                             const std::string & ad_path, const TaskPlan & plan,
                                             const std::string & data_dir, const EvalOptions & o) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!fw.config().has_decoder(model::Modality::Image))
        return incompatible(plan.facts.name + ": the firmware has no image decoder (\"decoders.image\")");
    if (ad && ad->manifest().output != adapter::OutputKind::Image)
        return incompatible(ad_path + ": a " + adapter::output_kind_name(ad->manifest().output) +
                            "-output adapter cannot score " + plan.facts.name + " (it needs image output)");
    const auto & dec = *fw.config().image_decoder;
    M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(data_dir, plan.facts.name, o.split));
    size_t n = ds.size();
    if (o.limit > 0) n = std::min(n, static_cast<size_t>(o.limit));  // the first `limit` examples
    if (n == 0) return invalid_argument(ds.path() + ": no examples to score");
    const int64_t S = dec.image_size, V = S * S * 3;
    EvalReport rep;
    rep.task = plan.facts.name, rep.split = o.split, rep.metric = "psnr", rep.adapter = ad_path;
    if (ad)
        rep.adapter_bytes = static_cast<int64_t>(ad->file_size()), rep.adapter_params = adapter_parameter_count(*ad);
    rep.examples = static_cast<int64_t>(n), rep.total = static_cast<int64_t>(ds.size());
    double all_psnr = 0, all_bic = 0;
    for (int f : kSrScales) {
        double psnr = 0, ssim = 0, bpsnr = 0, bssim = 0;
        const int64_t batch = std::max<int64_t>(1, o.batch);
        for (size_t i0 = 0; i0 < n; i0 += static_cast<size_t>(batch)) {
            const size_t i1 = std::min(n, i0 + static_cast<size_t>(batch));
            std::vector<model::Request> reqs;
            std::vector<std::vector<uint8_t>> targets;
            for (size_t i = i0; i < i1; ++i) {
                M4_ASSIGN_OR_RETURN(SrPair p, sr_pair(ds.at(i), dec, f, ds.path() + " #" + std::to_string(i)));
                const std::vector<uint8_t> bic = runtime::image_to_u8(p.input.data(), V);
                targets.push_back(runtime::image_to_u8(p.target.data(), V));
                bpsnr += psnr_u8(bic.data(), targets.back().data(), V);
                bssim += ssim_u8(bic.data(), targets.back().data(), S, S);
                model::Request r;
                r.adapter = ad ? &ad->weights() : nullptr;
                r.signal  = std::move(p.input);
                reqs.push_back(std::move(r));
            }
            M4_ASSIGN_OR_RETURN(auto outs, fw.run(model::Path::Generator, model::Modality::Image, reqs));
            for (size_t k = 0; k < outs.size(); ++k) {
                const std::vector<uint8_t> y = runtime::image_to_u8(outs[k].image.data(), V);
                psnr += psnr_u8(y.data(), targets[k].data(), V);
                ssim += ssim_u8(y.data(), targets[k].data(), S, S);
            }
        }
        const double d = double(n);
        rep.extra.push_back({fmt::format("psnr_x{}", f), psnr / d});
        rep.extra.push_back({fmt::format("ssim_x{}", f), ssim / d});
        rep.extra.push_back({fmt::format("bicubic_psnr_x{}", f), bpsnr / d});
        rep.extra.push_back({fmt::format("bicubic_ssim_x{}", f), bssim / d});
        all_psnr += psnr / d, all_bic += bpsnr / d;
    }
    rep.score       = all_psnr / 2;
    rep.chance      = all_bic / 2;
    rep.chance_rule = "bicubic enlargement of the reduced image (the baseline), PSNR over ×2 and ×4";
    rep.seconds     = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rep;
}

}  // namespace m4::bench
