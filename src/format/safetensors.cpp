#include "format/safetensors.h"

#include <algorithm>
#include <cstring>

namespace m4::format {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the reference implementation's own limit

std::string shape_str(const std::vector<int64_t> & s) {
    std::string r = "[";
    for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + "]";
}

}  // namespace

float f16_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);  // inf / NaN
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {  // subnormal: normalise
        int e = -1;
        do {
            ++e;
            mant <<= 1;
        } while (!(mant & 0x400u));
        bits = sign | static_cast<uint32_t>(112 - e) << 23 | ((mant & 0x3ffu) << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

int64_t SafetensorsEntry::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

size_t safetensors_dtype_size(const std::string & d) {
    static const std::map<std::string, size_t> sizes = {
        {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
        {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"I64", 8},     {"U64", 8}, {"F64", 8}};
    auto it = sizes.find(d);
    return it == sizes.end() ? 0 : it->second;
}

const SafetensorsEntry * SafetensorsView::find(const std::string & name) const {
    auto it = index.find(name);
    return it == index.end() ? nullptr : &entries[it->second];
}

Result<Tensor> SafetensorsView::to_f32(const SafetensorsEntry & e) const {
    Shape shape;
    if (e.shape.size() > static_cast<size_t>(kMaxDims))
        return unsupported(where + ": tensor '" + e.name + "' has " + std::to_string(e.shape.size()) +
                           " dimensions (m4 tensors have at most 4)");
    for (int64_t d : e.shape) shape.dims[shape.ndim++] = d;
    if (shape.ndim == 0) shape = Shape{1};  // a scalar
    Tensor t          = Tensor::empty(DType::F32, shape);
    float * o         = t.f32();
    const uint8_t * p = data + e.begin;
    const int64_t n   = e.numel();
    if (e.dtype == "F32") {
        std::memcpy(o, p, static_cast<size_t>(n) * 4);
    } else if (e.dtype == "F16" || e.dtype == "BF16") {
        const bool half = e.dtype == "F16";
        for (int64_t i = 0; i < n; ++i) {
            uint16_t v;
            std::memcpy(&v, p + 2 * i, 2);
            o[i] = half ? f16_to_f32(v) : bf16_to_f32(v);
        }
    } else {
        return unsupported(where + ": tensor '" + e.name + "' has dtype " + e.dtype +
                           "; m4 imports F32, F16 and BF16 weights");
    }
    return t;
}

Result<Tensor> SafetensorsView::to_tensor(const SafetensorsEntry & e) const {
    M4_ASSIGN_OR_RETURN(Tensor t, to_f32(e));
    return e.dtype == "BF16" ? convert(t, DType::BF16) : t;  // exact: the values are bf16 values
}

Result<SafetensorsView> parse_safetensors(const uint8_t * data, size_t size, const std::string & where) {
    SafetensorsView v;
    v.where = where;
    if (size < 8)
        return invalid_argument(where + ": " + std::to_string(size) + " bytes, too short for a safetensors file");
    uint64_t n;
    std::memcpy(&n, data, 8);
    if (n > size - 8)
        return invalid_argument(where + ": header of " + std::to_string(n) + " bytes is larger than the file (" +
                                std::to_string(size) + " bytes)");
    if (n > kMaxHeader) return invalid_argument(where + ": header of " + std::to_string(n) + " bytes (limit 100 MiB)");
    if (n < 2 || data[8] != '{') return invalid_argument(where + ": header is not a JSON object");
    nlohmann::json h = nlohmann::json::parse(data + 8, data + 8 + n, nullptr, /*allow_exceptions=*/false);
    if (h.is_discarded() || !h.is_object()) return invalid_argument(where + ": header is not valid JSON");
    v.data     = data + 8 + n;
    v.data_len = size - 8 - n;
    for (auto & [name, t] : h.items()) {
        const std::string tw = where + ": tensor '" + name + "'";
        if (name == "__metadata__") {
            if (!t.is_object()) return invalid_argument(where + ": __metadata__ must be an object");
            for (auto & [k, val] : t.items())
                if (!val.is_string())
                    return invalid_argument(where + ": __metadata__ value '" + k + "' is not a string");
            v.metadata = t;
            continue;
        }
        if (!t.is_object() || !t.contains("dtype") || !t.contains("shape") || !t.contains("data_offsets"))
            return invalid_argument(tw + ": needs dtype, shape and data_offsets");
        SafetensorsEntry e;
        e.name = name;
        if (!t["dtype"].is_string()) return invalid_argument(tw + ": dtype is not a string");
        e.dtype          = t["dtype"].get<std::string>();
        const size_t esz = safetensors_dtype_size(e.dtype);
        if (esz == 0) return invalid_argument(tw + ": unknown dtype '" + e.dtype + "'");
        const auto & s = t["shape"];
        if (!s.is_array() || s.size() > 16) return invalid_argument(tw + ": shape must be an array of at most 16 dims");
        uint64_t numel = 1;
        for (const auto & d : s) {
            if (!d.is_number_unsigned()) return invalid_argument(tw + ": shape " + s.dump() + " has a bad dimension");
            uint64_t dim = d.get<uint64_t>();
            if (dim > (1ull << 40) || (dim && numel > (1ull << 40) / dim))
                return invalid_argument(tw + ": shape " + s.dump() + " is too large");
            numel *= dim;
            e.shape.push_back(static_cast<int64_t>(dim));
        }
        const auto & o = t["data_offsets"];
        if (!o.is_array() || o.size() != 2 || !o[0].is_number_unsigned() || !o[1].is_number_unsigned())
            return invalid_argument(tw + ": data_offsets must be [begin, end]");
        e.begin = o[0].get<uint64_t>();
        e.end   = o[1].get<uint64_t>();
        if (e.begin > e.end || e.end > v.data_len)
            return invalid_argument(tw + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                                    "] lie outside the " + std::to_string(v.data_len) + "-byte data buffer");
        if (e.end - e.begin != numel * esz)
            return invalid_argument(tw + ": " + std::to_string(e.end - e.begin) + " bytes do not match " + e.dtype +
                                    " " + shape_str(e.shape) + " (" + std::to_string(numel * esz) + " bytes)");
        v.index[e.name] = v.entries.size();
        v.entries.push_back(std::move(e));
    }
    // The buffer must be covered exactly once: no overlaps (one byte read as two tensors), no holes.
    std::vector<const SafetensorsEntry *> by_offset;
    for (const auto & e : v.entries) by_offset.push_back(&e);
    std::sort(by_offset.begin(), by_offset.end(),
              [](auto * a, auto * b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
    uint64_t at = 0;
    for (const auto * e : by_offset) {
        if (e->begin < at)
            return invalid_argument(where + ": tensor '" + e->name + "' overlaps another tensor (bytes " +
                                    std::to_string(e->begin) + ".." + std::to_string(at) + ")");
        if (e->begin > at)
            return invalid_argument(where + ": bytes " + std::to_string(at) + ".." + std::to_string(e->begin) +
                                    " before tensor '" + e->name + "' belong to no tensor");
        at = e->end;
    }
    if (at != v.data_len)
        return invalid_argument(where + ": the data buffer has " + std::to_string(v.data_len - at) +
                                " bytes after the last tensor");
    return v;
}

Result<SafetensorsFile> SafetensorsFile::open(const std::string & path) {
    SafetensorsFile f;
    M4_ASSIGN_OR_RETURN(f.file_, MappedFile::open(path));
    M4_ASSIGN_OR_RETURN(f.view_, parse_safetensors(f.file_.data(), f.file_.size(), path));
    return f;
}

}  // namespace m4::format
