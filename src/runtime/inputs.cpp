#include "runtime/inputs.h"

#include <sndfile.h>
#include <stb/stb_image.h>
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "base/mapped_file.h"
#include "model/frontend.h"
#include "model/preprocess.h"

namespace m4::runtime {
namespace {

std::string lower_ext(const std::string & path) {
    auto dot = path.find_last_of('.');
    if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return "";
    std::string e = path.substr(dot + 1);
    for (char & ch : e) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return e;
}

bool is_file(const std::string & p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

Result<std::vector<float>> load_image(const std::string & path, const model::EncoderConfig & c) {
    M4_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(path));
    return decode_image(bytes, path, c);
}

Status check_finite(const std::vector<float> & values, const std::string & name) {
    for (size_t i = 0; i < values.size(); ++i)
        if (!std::isfinite(values[i]))
            return invalid_argument(name + ": value " + std::to_string(i) + " is " +
                                    (std::isnan(values[i]) ? "NaN" : "infinite") + " (inputs must be finite)");
    return Status::ok();
}

uint64_t max_encoded_bytes(const model::EncoderConfig & c, uint64_t image_limit) {
    switch (c.modality) {
        case model::Modality::Audio:  // up to 8 channels of 64-bit samples, plus headers and metadata
            return static_cast<uint64_t>(c.clip_samples) * 64 + (1u << 20);
        case model::Modality::Imu:  // a time column + 6 values of up to 32 characters per row, comments
            return static_cast<uint64_t>(c.window) * 7 * 32 + (64u << 10);
        default:
            return image_limit;
    }
}

Result<std::vector<float>> decode_image(const std::string & bytes, const std::string & path,
                                        const model::EncoderConfig & c) {
    int w = 0, h = 0, n = 0;
    if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
        return invalid_argument(path + ": image file of " + std::to_string(bytes.size()) + " bytes is too large");
    // The canvas size comes from the header, before any pixel is decoded.
    if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc *>(bytes.data()), static_cast<int>(bytes.size()), &w, &h,
                               &n))
        return invalid_argument(path + ": unreadable image (" + std::string(stbi_failure_reason()) + ")");
    if (static_cast<int64_t>(w) * h > kMaxImagePixels)
        return invalid_argument(path + ": image of " + std::to_string(w) + "x" + std::to_string(h) +
                                " pixels exceeds the limit of " + std::to_string(kMaxImagePixels) +
                                " pixels (downscale it first)");
    unsigned char * px = stbi_load_from_memory(reinterpret_cast<const stbi_uc *>(bytes.data()),
                                               static_cast<int>(bytes.size()), &w, &h, &n, 3);
    if (!px) return invalid_argument(path + ": unreadable image (" + std::string(stbi_failure_reason()) + ")");
    // stbi_load's 3 requested channels: grey replicated, alpha dropped (model::image_input's rule).
    auto out = model::image_input(px, h, w, 3, c);
    stbi_image_free(px);
    if (!out.is_ok()) return out.status().with_context(path);
    return out;
}

namespace {
// libsndfile reads from memory through a virtual-I/O cursor.
struct MemoryCursor {
    const std::string * bytes;
    sf_count_t pos = 0;
};
sf_count_t mem_len(void * u) {
    return static_cast<sf_count_t>(static_cast<MemoryCursor *>(u)->bytes->size());
}
sf_count_t mem_seek(sf_count_t off, int whence, void * u) {
    auto * m        = static_cast<MemoryCursor *>(u);
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : mem_len(u);
    m->pos          = std::max<sf_count_t>(0, std::min(base + off, mem_len(u)));
    return m->pos;
}
sf_count_t mem_read(void * dst, sf_count_t n, void * u) {
    auto * m     = static_cast<MemoryCursor *>(u);
    sf_count_t k = std::min(n, mem_len(u) - m->pos);
    std::memcpy(dst, m->bytes->data() + m->pos, static_cast<size_t>(k));
    m->pos += k;
    return k;
}
sf_count_t mem_write(const void *, sf_count_t, void *) {
    return 0;
}
sf_count_t mem_tell(void * u) {
    return static_cast<MemoryCursor *>(u)->pos;
}
}  // namespace

Result<std::vector<float>> load_audio(const std::string & path, const model::EncoderConfig & c) {
    M4_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(path));
    return decode_audio(bytes, path, c);
}

Result<std::vector<float>> decode_audio(const std::string & bytes, const std::string & path,
                                        const model::EncoderConfig & c) {
    SF_VIRTUAL_IO io{mem_len, mem_seek, mem_read, mem_write, mem_tell};
    MemoryCursor cursor{&bytes};
    SF_INFO info{};
    SNDFILE * f = sf_open_virtual(&io, SFM_READ, &info, &cursor);
    if (!f) return invalid_argument(path + ": unreadable audio (" + std::string(sf_strerror(nullptr)) + ")");
    if (info.samplerate != c.sample_rate) {
        sf_close(f);
        return invalid_argument(path + ": sample rate " + std::to_string(info.samplerate) +
                                " Hz, the audio encoder needs " + std::to_string(c.sample_rate) +
                                " Hz (resample first, e.g. `sox in.wav -r " + std::to_string(c.sample_rate) +
                                " out.wav`)");
    }
    if (info.frames <= 0 || info.channels <= 0) {
        sf_close(f);
        return invalid_argument(path + ": audio has no samples");
    }
    if (info.frames > c.clip_samples) {
        sf_close(f);
        return invalid_argument(path + ": " + std::to_string(info.frames) +
                                " samples is longer than the encoder's clip of " + std::to_string(c.clip_samples) +
                                " samples (" + std::to_string(double(c.clip_samples) / c.sample_rate).substr(0, 4) +
                                " s)");
    }
    std::vector<float> inter(static_cast<size_t>(info.frames * info.channels));
    sf_count_t got = sf_readf_float(f, inter.data(), info.frames);
    sf_close(f);
    if (got != info.frames) return invalid_argument(path + ": audio truncated");
    std::vector<float> mono(static_cast<size_t>(info.frames));
    for (sf_count_t i = 0; i < info.frames; ++i) {
        float s = 0;
        for (int ch = 0; ch < info.channels; ++ch) s += inter[i * info.channels + ch];
        mono[i] = s / info.channels;
    }
    auto out = model::audio_input(mono.data(), static_cast<int64_t>(mono.size()), c);
    if (!out.is_ok()) return out.status().with_context(path);
    return out;
}

Result<std::vector<float>> load_imu_csv(const std::string & path, const model::EncoderConfig & c) {
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(path));
    return decode_imu_csv(text, path, c);
}

Result<std::vector<float>> decode_imu_csv(const std::string & text, const std::string & path,
                                          const model::EncoderConfig & c) {
    std::istringstream in(text);
    std::string line;
    std::vector<float> out;
    std::vector<double> times;
    int lineno = 0, cols_seen = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || line[0] == '#') continue;
        std::vector<double> vals;
        std::stringstream ss(line);
        std::string cell;
        bool numeric = true;
        while (std::getline(ss, cell, ',')) {
            char * end = nullptr;
            double v   = std::strtod(cell.c_str(), &end);
            while (end && *end == ' ') ++end;
            if (cell.empty() || !end || *end != '\0') numeric = false;
            vals.push_back(v);
        }
        if (!numeric) {
            if (out.empty() && times.empty() && lineno == 1) continue;  // header line
            return invalid_argument(path + ":" + std::to_string(lineno) + ": not a row of numbers");
        }
        int cols = static_cast<int>(vals.size());
        if (cols != 6 && cols != 7)
            return invalid_argument(path + ":" + std::to_string(lineno) + ": " + std::to_string(cols) +
                                    " columns, expected 6 (ax,ay,az,gx,gy,gz) or 7 (t,ax,…,gz)");
        if (cols_seen && cols != cols_seen)
            return invalid_argument(path + ":" + std::to_string(lineno) + ": column count changed");
        cols_seen = cols;
        if (cols == 7) times.push_back(vals[0]);
        for (int i = cols - 6; i < cols; ++i) out.push_back(static_cast<float>(vals[i]));
    }
    if (out.empty()) return invalid_argument(path + ": no IMU samples");
    if (times.size() >= 2) {
        double rate = (times.size() - 1) / (times.back() - times.front());
        if (!(std::abs(rate - c.sample_rate) <= 0.05 * c.sample_rate))
            return invalid_argument(path + ": timestamps give " + std::to_string(rate).substr(0, 6) +
                                    " Hz, the IMU encoder needs " + std::to_string(c.sample_rate) + " Hz");
    }
    auto window = model::imu_input(out.data(), static_cast<int64_t>(out.size()) / 6, c);
    if (!window.is_ok()) return window.status().with_context(path);
    return window;
}

Result<NpyArray> read_npy(const std::string & path) {
    M4_ASSIGN_OR_RETURN(std::string b, read_file_bytes(path));
    if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) return invalid_argument(path + ": not a .npy file");
    uint8_t major = static_cast<uint8_t>(b[6]);
    size_t hlen = 0, hstart = 0;
    if (major == 1)
        hlen = static_cast<uint8_t>(b[8]) | (static_cast<uint8_t>(b[9]) << 8), hstart = 10;
    else {
        if (b.size() < 12) return invalid_argument(path + ": truncated .npy header");
        uint32_t v;
        std::memcpy(&v, b.data() + 8, 4);
        hlen = v, hstart = 12;
    }
    if (hstart + hlen > b.size()) return invalid_argument(path + ": truncated .npy header");
    std::string h = b.substr(hstart, hlen);
    NpyArray a;
    if (h.find("'<f4'") != std::string::npos)
        a.is_int = false;
    else if (h.find("'<i4'") != std::string::npos)
        a.is_int = true;
    else
        return invalid_argument(path + ": .npy dtype must be float32 ('<f4') or int32 ('<i4')");
    if (h.find("'fortran_order': False") == std::string::npos)
        return invalid_argument(path + ": .npy must be C-ordered");
    auto lp = h.find('(', h.find("'shape'")), rp = h.find(')', lp);
    if (lp == std::string::npos || rp == std::string::npos) return invalid_argument(path + ": .npy shape missing");
    std::stringstream ss(h.substr(lp + 1, rp - lp - 1));
    std::string tok;
    int64_t n = 1;
    while (std::getline(ss, tok, ',')) {
        if (tok.find_first_not_of(' ') == std::string::npos) continue;
        int64_t d = std::stoll(tok);
        if (d < 0) return invalid_argument(path + ": negative .npy dimension");
        a.shape.push_back(d);
        n *= d;
    }
    size_t data_at = hstart + hlen;
    if (b.size() - data_at != static_cast<size_t>(n) * 4)
        return invalid_argument(path + ": .npy holds " + std::to_string(b.size() - data_at) +
                                " data bytes, shape needs " + std::to_string(n * 4));
    if (a.is_int) {
        a.i32.resize(n);
        std::memcpy(a.i32.data(), b.data() + data_at, static_cast<size_t>(n) * 4);
    } else {
        a.f32.resize(n);
        std::memcpy(a.f32.data(), b.data() + data_at, static_cast<size_t>(n) * 4);
    }
    return a;
}

namespace {
Status write_npy(const std::string & path, const void * data, const std::vector<int64_t> & shape, const char * descr) {
    std::string shp = "(";
    int64_t n       = 1;
    for (size_t i = 0; i < shape.size(); ++i) {
        shp += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
        n *= shape[i];
    }
    shp += ")";
    std::string h = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shp + ", }";
    while ((10 + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    std::string out = "\x93NUMPY";
    out += '\x01';
    out += '\x00';
    out += static_cast<char>(h.size() & 0xff);
    out += static_cast<char>(h.size() >> 8);
    out += h;
    out.append(static_cast<const char *>(data), static_cast<size_t>(n) * 4);
    return write_file_atomic(path, out.data(), out.size());
}
}  // namespace

Status write_npy_f32(const std::string & path, const float * d, const std::vector<int64_t> & s) {
    return write_npy(path, d, s, "<f4");
}
Status write_npy_i32(const std::string & path, const int32_t * d, const std::vector<int64_t> & s) {
    return write_npy(path, d, s, "<i4");
}

Result<std::string> read_text_input(const std::string & input) {
    if (!is_file(input)) return input;
    struct stat st {};
    if (::stat(input.c_str(), &st) == 0 && st.st_size > (1 << 20))
        return invalid_argument(input + ": a text file of " + std::to_string(st.st_size) + " bytes (at most 1 MiB)");
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(input));
    std::fprintf(stderr, "m4fw: text read from the file %s (%zu bytes)\n", input.c_str(), text.size());
    return text;
}

model::Modality guess_modality(const std::string & input) {
    std::string e = lower_ext(input);
    if (!is_file(input) && e != "npy") return model::Modality::Text;
    if (e == "png" || e == "jpg" || e == "jpeg" || e == "bmp" || e == "gif" || e == "pgm" || e == "ppm")
        return model::Modality::Image;
    if (e == "wav" || e == "flac" || e == "ogg") return model::Modality::Audio;
    if (e == "csv") return model::Modality::Imu;
    return model::Modality::Text;
}

Result<std::vector<float>> load_modal_input(const std::string & path, const model::EncoderConfig & c) {
    if (lower_ext(path) == "npy") {
        M4_ASSIGN_OR_RETURN(NpyArray a, read_npy(path));
        if (a.is_int) return invalid_argument(path + ": expected float32 values");
        Status st = model::check_modal_input(c, static_cast<int64_t>(a.f32.size()));
        if (!st.is_ok()) return st.with_context(path);
        return a.f32;
    }
    switch (c.modality) {
        case model::Modality::Image:
            return load_image(path, c);
        case model::Modality::Audio:
            return load_audio(path, c);
        case model::Modality::Imu:
            return load_imu_csv(path, c);
        case model::Modality::Text:
            break;
    }
    return invalid_argument(path + ": not a modality input");
}

}  // namespace m4::runtime
