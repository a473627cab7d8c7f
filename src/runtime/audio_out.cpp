#include "runtime/audio_out.h"

#include <cmath>

#include <algorithm>

#include "base/mapped_file.h"
#include "runtime/images.h"

namespace m4::runtime {

std::vector<int16_t> audio_to_pcm16(const float * samples, int64_t n) {
    std::vector<int16_t> pcm(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        const float v = std::round(samples[i] * 32767.0f);
        pcm[i]        = static_cast<int16_t>(std::isnan(v) ? 0.0f : std::min(32767.0f, std::max(-32767.0f, v)));
    }
    return pcm;
}

Status encode_wav(const float * samples, int64_t n, int64_t rate, std::string * out) {
    if (n < 0 || n > (int64_t{1} << 30) || rate <= 0 || rate > 1000000)
        return invalid_argument("audio of " + std::to_string(n) + " samples at " + std::to_string(rate) +
                                " Hz cannot be a WAV file");
    const std::vector<int16_t> pcm = audio_to_pcm16(samples, n);
    const uint32_t data_bytes      = static_cast<uint32_t>(n * 2);
    auto u32                       = [&](uint32_t v) {
        for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    auto u16 = [&](uint16_t v) {
        for (int i = 0; i < 2; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    };
    out->reserve(out->size() + 44 + data_bytes);
    out->append("RIFF");
    u32(36 + data_bytes);
    out->append("WAVEfmt ");
    u32(16);
    u16(1);  // PCM
    u16(1);  // mono
    u32(static_cast<uint32_t>(rate));
    u32(static_cast<uint32_t>(rate * 2));  // bytes per second
    u16(2);                                // block align
    u16(16);                               // bits per sample
    out->append("data");
    u32(data_bytes);
    for (int16_t s : pcm) u16(static_cast<uint16_t>(s));
    return Status::ok();
}

Status write_wav(const std::string & path, const float * samples, int64_t n, int64_t rate) {
    M4_RETURN_IF_ERROR(check_output_path(path, "wav"));
    std::string wav;
    M4_RETURN_IF_ERROR(encode_wav(samples, n, rate, &wav).with_context(path));
    return write_file_atomic(path, wav.data(), wav.size());
}

}  // namespace m4::runtime
