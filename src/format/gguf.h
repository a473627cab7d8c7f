// Reader for GGUF v2 / v3 files (llama.cpp's format): "GGUF", u32 version, u64 tensor count,
// u64 metadata count, typed key/value metadata, tensor infos (name, dims innermost first, ggml
// type, offset), padding to `general.alignment` (default 32), tensor data. All little-endian.
// Every count, string length and tensor range is checked against the file before use; faults
// name the file and the key or tensor.
//
//     auto g = GgufFile::open("model.gguf");
//     const GgufTensorInfo * t = g->view().find("blk.0.attn_q.weight");
//     M4_ASSIGN_OR_RETURN(GgufTensor w, g->view().load(*t));   // f32 / bf16, or Q8_0 re-quantised to i8 rows
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "tensor/tensor.h"

namespace m4::format {

// ggml tensor types m4 reads (the rest are named in errors but refused).
enum GgmlType : uint32_t { kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8, kGgmlBF16 = 30 };
const char * ggml_type_name(uint32_t type);  // "Q4_K", …, or "type N"

struct GgufTensorInfo {
    std::string name;
    std::vector<int64_t> ne;  // ggml order: ne[0] is the innermost (contiguous) dimension
    uint32_t type   = 0;
    uint64_t offset = 0;  // relative to the data section
    uint64_t nbytes = 0;  // 0 when the type is not one m4 reads (its size is then not checked)
    // Row-major shape, outermost first (ne reversed): an [out, in] matrix has ne = {in, out}.
    Shape shape() const;
};

// A tensor as loaded: the m4 tensor plus, for Q8_0, how far re-quantising to per-row int8 moved it.
struct GgufTensor {
    Tensor t;
    float requant_max_abs = 0;  // max |i8 value − Q8_0 value|
    float requant_rel     = 0;  // that / max |Q8_0 value|
};

struct GgufView {
    std::string where;
    uint32_t version = 0;
    std::map<std::string, nlohmann::json> kv;  // numbers, bools, strings, arrays
    std::map<std::string, uint32_t> kv_type;   // the GGUF value type of each key
    std::vector<GgufTensorInfo> tensors;
    std::map<std::string, size_t> index;
    uint64_t alignment   = 32;
    const uint8_t * data = nullptr;  // the data section
    uint64_t data_len    = 0;

    const GgufTensorInfo * find(const std::string & name) const;
    // F32 → f32, BF16 → bf16, F16 → f32 (exact), Q8_0 → i8 with one scale per row (re-quantised from
    // the dequantised block values; the drift is returned). Other types are refused naming the tensor.
    Result<GgufTensor> load(const GgufTensorInfo & t) const;
    // Typed metadata look-ups: a missing key or a value of another type is an error naming the key.
    Result<int64_t> get_int(const std::string & key) const;
    Result<double> get_float(const std::string & key) const;
    Result<std::string> get_string(const std::string & key) const;
};

Result<GgufView> parse_gguf(const uint8_t * data, size_t size, const std::string & where);

class GgufFile {
  public:
    static Result<GgufFile> open(const std::string & path);
    const GgufView & view() const { return view_; }

  private:
    MappedFile file_;
    GgufView view_;
};

}  // namespace m4::format
