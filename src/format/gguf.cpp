#include "format/gguf.h"

#include <cmath>
#include <cstring>

#include "format/safetensors.h"  // f16_to_f32

namespace m4::format {
namespace {

enum : uint32_t { kU8, kI8, kU16, kI16, kU32, kI32, kF32, kBool, kString, kArray, kU64, kI64, kF64 };
constexpr size_t kScalarSize[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 12, 8, 8, 8};  // string/array: minimum bytes
constexpr int64_t kQ8Block     = 32;                                        // Q8_0: f16 scale + 32 int8

// Bounds-checked little-endian cursor; the first fault sticks and later reads return zeros.
struct Cursor {
    const uint8_t * p;
    uint64_t size, pos = 0;
    std::string err;
    bool ok() const { return err.empty(); }
    bool need(uint64_t n, const std::string & what) {
        if (!ok()) return false;
        if (n > size - pos) {
            err = what + " runs past the end of the file (offset " + std::to_string(pos) + ")";
            return false;
        }
        return true;
    }
    template <class T>
    T get(const std::string & what) {
        T v{};
        if (need(sizeof(T), what)) std::memcpy(&v, p + pos, sizeof(T)), pos += sizeof(T);
        return v;
    }
    std::string str(const std::string & what) {
        uint64_t n = get<uint64_t>(what);
        if (!need(n, what)) return {};
        std::string s(reinterpret_cast<const char *>(p + pos), n);
        pos += n;
        return s;
    }
};

nlohmann::json read_value(Cursor & c, uint32_t type, const std::string & key, int depth) {
    switch (type) {
        case kU8:
            return c.get<uint8_t>(key);
        case kI8:
            return c.get<int8_t>(key);
        case kU16:
            return c.get<uint16_t>(key);
        case kI16:
            return c.get<int16_t>(key);
        case kU32:
            return c.get<uint32_t>(key);
        case kI32:
            return c.get<int32_t>(key);
        case kF32:
            return c.get<float>(key);
        case kBool:
            return c.get<uint8_t>(key) != 0;
        case kString:
            return c.str(key);
        case kU64:
            return c.get<uint64_t>(key);
        case kI64:
            return c.get<int64_t>(key);
        case kF64:
            return c.get<double>(key);
        case kArray: {
            uint32_t et = c.get<uint32_t>(key);
            uint64_t n  = c.get<uint64_t>(key);
            if (!c.ok()) return nullptr;
            if (et > kF64 || (et == kArray && depth > 0)) {
                c.err = "metadata '" + key + "': bad array element type " + std::to_string(et);
                return nullptr;
            }
            if (n > (c.size - c.pos) / kScalarSize[et]) {
                c.err = "metadata '" + key + "': array of " + std::to_string(n) + " runs past the end of the file";
                return nullptr;
            }
            nlohmann::json a = nlohmann::json::array();
            for (uint64_t i = 0; i < n && c.ok(); ++i) a.push_back(read_value(c, et, key, depth + 1));
            return a;
        }
        default:
            c.err = "metadata '" + key + "': unknown value type " + std::to_string(type);
            return nullptr;
    }
}

uint64_t type_nbytes(uint32_t type, int64_t numel, int64_t ne0, bool * known) {
    *known = true;
    switch (type) {
        case kGgmlF32:
            return static_cast<uint64_t>(numel) * 4;
        case kGgmlF16:
        case kGgmlBF16:
            return static_cast<uint64_t>(numel) * 2;
        case kGgmlQ8_0:
            return ne0 % kQ8Block ? 0 : static_cast<uint64_t>(numel / kQ8Block) * 34;
        default:
            *known = false;
            return 0;
    }
}

}  // namespace

const char * ggml_type_name(uint32_t t) {
    static const char * names[] = {"F32",     "F16",    "Q4_0",    "Q4_1",  "Q4_2",   "Q4_3",  "Q5_0",  "Q5_1",
                                   "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",   "Q5_K",  "Q6_K",  "Q8_K",
                                   "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
                                   "I8",      "I16",    "I32",     "I64",   "F64",    "IQ1_M", "BF16"};
    return t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

Shape GgufTensorInfo::shape() const {
    Shape s;
    for (auto it = ne.rbegin(); it != ne.rend(); ++it) s.dims[s.ndim++] = *it;
    return s;
}

const GgufTensorInfo * GgufView::find(const std::string & name) const {
    auto it = index.find(name);
    return it == index.end() ? nullptr : &tensors[it->second];
}

Result<int64_t> GgufView::get_int(const std::string & key) const {
    auto it = kv.find(key);
    if (it == kv.end()) return invalid_argument(where + ": missing metadata key '" + key + "'");
    if (!it->second.is_number_integer()) return invalid_argument(where + ": metadata '" + key + "' is not an integer");
    return it->second.get<int64_t>();
}

Result<double> GgufView::get_float(const std::string & key) const {
    auto it = kv.find(key);
    if (it == kv.end()) return invalid_argument(where + ": missing metadata key '" + key + "'");
    if (!it->second.is_number()) return invalid_argument(where + ": metadata '" + key + "' is not a number");
    return it->second.get<double>();
}

Result<std::string> GgufView::get_string(const std::string & key) const {
    auto it = kv.find(key);
    if (it == kv.end()) return invalid_argument(where + ": missing metadata key '" + key + "'");
    if (!it->second.is_string()) return invalid_argument(where + ": metadata '" + key + "' is not a string");
    return it->second.get<std::string>();
}

Result<GgufTensor> GgufView::load(const GgufTensorInfo & info) const {
    const std::string tw = where + ": tensor '" + info.name + "'";
    if (info.nbytes == 0 && info.type != kGgmlF32)
        return unsupported(tw + " has ggml type " + ggml_type_name(info.type) + " (" + std::to_string(info.type) +
                           "); m4 imports F32, F16, BF16 and Q8_0");
    if (info.ne.size() > static_cast<size_t>(kMaxDims)) return unsupported(tw + " has more than 4 dimensions");
    const Shape shape = info.shape();
    const uint8_t * p = data + info.offset;
    const int64_t n   = shape.numel();
    GgufTensor out;
    if (info.type == kGgmlF32) {
        out.t = Tensor::empty(DType::F32, shape);
        std::memcpy(out.t.f32(), p, static_cast<size_t>(n) * 4);
    } else if (info.type == kGgmlBF16) {
        out.t = Tensor::empty(DType::BF16, shape);
        std::memcpy(out.t.bf16(), p, static_cast<size_t>(n) * 2);
    } else if (info.type == kGgmlF16) {
        out.t = Tensor::empty(DType::F32, shape);
        for (int64_t i = 0; i < n; ++i) {
            uint16_t h;
            std::memcpy(&h, p + 2 * i, 2);
            out.t.f32()[i] = f16_to_f32(h);
        }
    } else {  // Q8_0: value = d · q per block of 32 along ne[0], then per-row int8 (docs/import.md)
        Tensor deq = Tensor::empty(DType::F32, shape);
        float * o  = deq.f32();
        for (int64_t b = 0; b < n / kQ8Block; ++b) {
            uint16_t h;
            std::memcpy(&h, p + 34 * b, 2);
            const float d = f16_to_f32(h);
            for (int64_t i = 0; i < kQ8Block; ++i)
                o[b * kQ8Block + i] = d * static_cast<float>(static_cast<int8_t>(p[34 * b + 2 + i]));
        }
        out.t           = quantize_rows_i8(deq);
        const int64_t C = shape.cols();
        float max_abs = 0, max_err = 0;
        for (int64_t i = 0; i < n; ++i) {
            float back = static_cast<float>(out.t.i8()[i]) * out.t.scales()[i / C];
            max_err    = std::max(max_err, std::fabs(back - o[i]));
            max_abs    = std::max(max_abs, std::fabs(o[i]));
        }
        out.requant_max_abs = max_err;
        out.requant_rel     = max_abs > 0 ? max_err / max_abs : 0;
    }
    return out;
}

Result<GgufView> parse_gguf(const uint8_t * data, size_t size, const std::string & where) {
    GgufView v;
    v.where = where;
    Cursor c{data, size, 0, {}};
    auto fail = [&](const std::string & m) { return invalid_argument(where + ": " + m); };
    if (size < 24 || std::memcmp(data, "GGUF", 4) != 0) return fail("not a GGUF file (bad magic or too short)");
    c.pos     = 4;
    v.version = c.get<uint32_t>("version");
    if (v.version != 2 && v.version != 3)
        return unsupported(where + ": GGUF version " + std::to_string(v.version) + " (m4 reads versions 2 and 3)");
    const uint64_t n_tensors = c.get<uint64_t>("tensor count"), n_kv = c.get<uint64_t>("metadata count");
    // Each metadata entry takes at least 12 bytes and each tensor info at least 28.
    if (n_kv > size / 12 || n_tensors > size / 28)
        return fail("claims " + std::to_string(n_kv) + " metadata entries and " + std::to_string(n_tensors) +
                    " tensors, more than the file can hold");
    for (uint64_t i = 0; i < n_kv && c.ok(); ++i) {
        std::string key = c.str("metadata key " + std::to_string(i));
        uint32_t type   = c.get<uint32_t>("metadata '" + key + "'");
        if (!c.ok()) break;
        if (v.kv.count(key)) return fail("metadata key '" + key + "' appears twice");
        v.kv_type[key] = type;
        v.kv[key]      = read_value(c, type, key, 0);
    }
    if (!c.ok()) return fail(c.err);
    if (auto it = v.kv.find("general.alignment"); it != v.kv.end()) {
        if (!it->second.is_number_unsigned() || it->second.get<uint64_t>() == 0 ||
            (it->second.get<uint64_t>() & (it->second.get<uint64_t>() - 1)) || it->second.get<uint64_t>() > 65536)
            return fail("general.alignment must be a power of two ≤ 65536");
        v.alignment = it->second.get<uint64_t>();
    }
    for (uint64_t i = 0; i < n_tensors && c.ok(); ++i) {
        GgufTensorInfo t;
        t.name        = c.str("tensor info " + std::to_string(i));
        uint32_t ndim = c.get<uint32_t>("tensor '" + t.name + "'");
        if (!c.ok()) break;
        if (ndim < 1 || ndim > 4) return fail("tensor '" + t.name + "': " + std::to_string(ndim) + " dimensions");
        uint64_t numel = 1;
        for (uint32_t d = 0; d < ndim; ++d) {
            uint64_t ne = c.get<uint64_t>("tensor '" + t.name + "'");
            if (ne < 1 || ne > (1ull << 40) || numel > (1ull << 40) / ne)
                return fail("tensor '" + t.name + "': bad dimension " + std::to_string(ne));
            numel *= ne;
            t.ne.push_back(static_cast<int64_t>(ne));
        }
        t.type   = c.get<uint32_t>("tensor '" + t.name + "'");
        t.offset = c.get<uint64_t>("tensor '" + t.name + "'");
        if (!c.ok()) break;
        bool known;
        t.nbytes = type_nbytes(t.type, static_cast<int64_t>(numel), t.ne[0], &known);
        if (known && t.nbytes == 0)
            return fail("tensor '" + t.name + "': Q8_0 rows of " + std::to_string(t.ne[0]) +
                        " values are not whole blocks of 32");
        if (t.offset % v.alignment)
            return fail("tensor '" + t.name + "': offset not aligned to " + std::to_string(v.alignment));
        if (v.index.count(t.name)) return fail("tensor '" + t.name + "' appears twice");
        v.index[t.name] = v.tensors.size();
        v.tensors.push_back(std::move(t));
    }
    if (!c.ok()) return fail(c.err);
    const uint64_t start = (c.pos + v.alignment - 1) / v.alignment * v.alignment;
    if (start > size) return fail("no room for the tensor data section");
    v.data     = data + start;
    v.data_len = size - start;
    for (const auto & t : v.tensors)
        if (t.offset > v.data_len || t.nbytes > v.data_len - t.offset)
            return fail("tensor '" + t.name + "' (" + std::to_string(t.nbytes) + " bytes at offset " +
                        std::to_string(t.offset) + ") lies outside the " + std::to_string(v.data_len) +
                        "-byte data section");
    return v;
}

Result<GgufFile> GgufFile::open(const std::string & path) {
    GgufFile f;
    M4_ASSIGN_OR_RETURN(f.file_, MappedFile::open(path));
    M4_ASSIGN_OR_RETURN(f.view_, parse_gguf(f.file_.data(), f.file_.size(), path));
    return f;
}

}  // namespace m4::format
