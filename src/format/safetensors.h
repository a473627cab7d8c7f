// Reader for Hugging Face safetensors files: u64 little-endian header length N, N bytes of JSON
// ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}), then
// the byte buffer the offsets index (relative to its start). Every claim of the header is checked
// against the file before a byte of tensor data is read: a header larger than the file, offsets
// out of range or reversed, tensors that overlap or leave holes, and a byte count that does not
// match dtype × shape are refused with a message naming the file and the tensor.
//
//     auto st = SafetensorsFile::open("model.safetensors");
//     if (!st) return st.status();
//     const SafetensorsEntry * e = st->view().find("model.norm.weight");
//     M4_ASSIGN_OR_RETURN(Tensor w, st->view().to_f32(*e));   // F32 / F16 / BF16 → f32 copy
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "tensor/tensor.h"

namespace m4::format {

struct SafetensorsEntry {
    std::string name;
    std::string dtype;            // as written: "F32", "F16", "BF16", "I8", …
    std::vector<int64_t> shape;   // outermost first (row-major, like PyTorch)
    uint64_t begin = 0, end = 0;  // byte range in the data buffer
    int64_t numel() const;
};

// A parsed safetensors file over memory someone else owns.
struct SafetensorsView {
    std::string where;  // file name for messages
    nlohmann::json metadata = nlohmann::json::object();
    std::vector<SafetensorsEntry> entries;  // in header order
    std::map<std::string, size_t> index;
    const uint8_t * data = nullptr;  // the byte buffer (after the header)
    uint64_t data_len    = 0;

    const SafetensorsEntry * find(const std::string & name) const;
    // An owning f32 copy (F32, F16 and BF16 tensors; any other dtype is refused naming the tensor).
    Result<Tensor> to_f32(const SafetensorsEntry & e) const;
    // The tensor in its own precision when m4 has it (F32 → f32, BF16 → bf16), else widened to f32.
    Result<Tensor> to_tensor(const SafetensorsEntry & e) const;
};

// Bytes per element of a safetensors dtype; 0 for a dtype the format does not define.
size_t safetensors_dtype_size(const std::string & dtype);

Result<SafetensorsView> parse_safetensors(const uint8_t * data, size_t size, const std::string & where);

class SafetensorsFile {
  public:
    static Result<SafetensorsFile> open(const std::string & path);
    const SafetensorsView & view() const { return view_; }
    const std::string & path() const { return file_.path(); }

  private:
    MappedFile file_;
    SafetensorsView view_;
};

// IEEE half → float (exact: every f16 value is an f32 value).
float f16_to_f32(uint16_t h);

}  // namespace m4::format
