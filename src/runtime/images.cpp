#include "runtime/images.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include "base/mapped_file.h"
#include "model/decoder.h"
#include "runtime/inputs.h"

namespace m4::runtime {

Result<DecodedImage> decode_image_native(const std::string & bytes, const std::string & name) {
    int w = 0, h = 0, n = 0;
    if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
        return invalid_argument(name + ": image file of " + std::to_string(bytes.size()) + " bytes is too large");
    const auto * p = reinterpret_cast<const stbi_uc *>(bytes.data());
    if (!stbi_info_from_memory(p, static_cast<int>(bytes.size()), &w, &h, &n))
        return invalid_argument(name + ": unreadable image (" + std::string(stbi_failure_reason()) + ")");
    if (static_cast<int64_t>(w) * h > kMaxImagePixels)
        return invalid_argument(name + ": image of " + std::to_string(w) + "x" + std::to_string(h) +
                                " pixels exceeds the limit of " + std::to_string(kMaxImagePixels) + " pixels");
    unsigned char * px = stbi_load_from_memory(p, static_cast<int>(bytes.size()), &w, &h, &n, 3);
    if (!px) return invalid_argument(name + ": unreadable image (" + std::string(stbi_failure_reason()) + ")");
    DecodedImage img;
    img.height = h, img.width = w;
    img.values.resize(static_cast<size_t>(w) * h * 3);
    for (size_t i = 0; i < img.values.size(); ++i) img.values[i] = (px[i] / 255.0f - 0.5f) / 0.5f;
    stbi_image_free(px);
    return img;
}

Result<std::vector<float>> image_to_decoder_grid(const DecodedImage & img, const model::EncoderConfig & dec,
                                                 const std::string & name) {
    const int64_t S = dec.image_size;
    if (img.height < 1 || img.width < 1 || img.height > S || img.width > S)
        return invalid_argument(name + ": a " + std::to_string(img.width) + "x" + std::to_string(img.height) +
                                " image does not fit the image decoder, which enlarges inputs of at most " +
                                std::to_string(S) + "x" + std::to_string(S) + " to " + std::to_string(S) + "x" +
                                std::to_string(S));
    if (static_cast<int64_t>(img.values.size()) != img.height * img.width * 3)
        return invalid_argument(name + ": pixel count does not match its size");
    M4_RETURN_IF_ERROR(check_finite(img.values, name));
    std::vector<float> out(static_cast<size_t>(S * S * 3));
    model::resample_bicubic(img.values.data(), img.height, img.width, S, S, out.data());
    return out;
}

Result<std::vector<float>> load_image_for_decoder(const std::string & path, const model::EncoderConfig & dec,
                                                  std::pair<int64_t, int64_t> * native) {
    DecodedImage img;
    if (path.size() > 4 && path.compare(path.size() - 4, 4, ".npy") == 0) {
        M4_ASSIGN_OR_RETURN(NpyArray a, read_npy(path));
        if (a.is_int || a.shape.size() != 3 || a.shape[2] != 3)
            return invalid_argument(path + ": expected float32 [h, w, 3] (normalised image)");
        img.height = a.shape[0], img.width = a.shape[1], img.values = std::move(a.f32);
    } else {
        M4_ASSIGN_OR_RETURN(std::string bytes, read_file_bytes(path));
        M4_ASSIGN_OR_RETURN(img, decode_image_native(bytes, path));
    }
    if (native) *native = {img.height, img.width};
    return image_to_decoder_grid(img, dec, path);
}

std::vector<uint8_t> image_to_u8(const float * img, int64_t n) {
    std::vector<uint8_t> px(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        const float v = std::round((img[i] * 0.5f + 0.5f) * 255.0f);
        px[i]         = static_cast<uint8_t>(std::isnan(v) ? 0.0f : std::min(255.0f, std::max(0.0f, v)));
    }
    return px;
}

Status check_output_path(const std::string & path, const std::string & ext) {
    if (path.empty()) return invalid_argument("--out: no output file given");
    const auto dot = path.find_last_of('.');
    std::string e  = dot == std::string::npos || path.find('/', dot) != std::string::npos ? "" : path.substr(dot + 1);
    for (char & ch : e) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (e != ext) return invalid_argument(path + ": the output is written as ." + ext + " (got '" + e + "')");
    const auto slash      = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return not_found(path + ": directory '" + dir + "' does not exist");
    if (::access(dir.c_str(), W_OK) != 0) return permission_denied(path + ": directory '" + dir + "' is not writable");
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        return invalid_argument(path + ": exists and is not a regular file");
    return Status::ok();
}

Status encode_png(const float * img, int64_t h, int64_t w, std::string * out) {
    if (h < 1 || w < 1 || h > 65535 || w > 65535)
        return invalid_argument("image of " + std::to_string(w) + "x" + std::to_string(h) + " cannot be a PNG");
    const std::vector<uint8_t> px = image_to_u8(img, h * w * 3);
    auto append                   = [](void * ctx, void * data, int size) {
        static_cast<std::string *>(ctx)->append(static_cast<const char *>(data), static_cast<size_t>(size));
    };
    if (!stbi_write_png_to_func(append, out, static_cast<int>(w), static_cast<int>(h), 3, px.data(),
                                static_cast<int>(w * 3)))
        return io_error("could not encode a " + std::to_string(w) + "x" + std::to_string(h) + " PNG");
    return Status::ok();
}

Status write_image_png(const std::string & path, const float * img, int64_t h, int64_t w) {
    M4_RETURN_IF_ERROR(check_output_path(path, "png"));
    std::string png;
    M4_RETURN_IF_ERROR(encode_png(img, h, w, &png).with_context(path));
    return write_file_atomic(path, png.data(), png.size());
}

}  // namespace m4::runtime
