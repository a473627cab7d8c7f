// Tensor: a typed, row-major, contiguous n-d array (up to 4 dims), either owning its memory or a
// view into memory someone else owns (a mapped firmware file, an arena).
//
//     Tensor w = Tensor::zeros(DType::F32, {256, 128});   // owning, 64-byte aligned
//     float * p = w.f32();
//     Tensor q = quantize_rows_i8(w);                      // I8 with per-row scales
//
// Shape convention for weights of linear layers: [out_features, in_features] (W is applied as
// y = x·Wᵀ), so per-output-channel int8 scales are one per row.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace m4 {

inline constexpr int kMaxDims = 4;

struct Shape {
    std::array<int64_t, kMaxDims> dims{};
    int ndim = 0;

    Shape() = default;
    Shape(std::initializer_list<int64_t> d);
    static Shape of(const std::vector<int64_t> & d);
    int64_t operator[](int i) const { return dims[i]; }
    int64_t numel() const;
    int64_t rows() const;  // product of all dims but the last (1 for scalars and vectors)
    int64_t cols() const { return ndim == 0 ? 1 : dims[ndim - 1]; }
    bool operator==(const Shape & o) const;
    std::vector<int64_t> to_vector() const { return {dims.begin(), dims.begin() + ndim}; }
    std::string str() const;  // "[256, 128]"
};

class Tensor {
  public:
    Tensor() = default;

    static Tensor empty(DType dtype, const Shape & shape);  // uninitialised, owning
    static Tensor zeros(DType dtype, const Shape & shape);
    // A non-owning view. For I8, `scales` points at shape.rows() f32 scales.
    static Tensor view(DType dtype, const Shape & shape, const void * data, const float * scales = nullptr);

    DType dtype() const { return dtype_; }
    const Shape & shape() const { return shape_; }
    int ndim() const { return shape_.ndim; }
    int64_t dim(int i) const { return shape_.dims[i]; }
    int64_t numel() const { return shape_.numel(); }
    int64_t rows() const { return shape_.rows(); }
    int64_t cols() const { return shape_.cols(); }
    size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
    bool defined() const { return data_ != nullptr || numel() == 0; }
    bool owns() const { return owner_ != nullptr; }

    const void * data() const { return data_; }
    void * mutable_data() const { return data_; }
    float * f32() const;
    uint16_t * bf16() const;
    int8_t * i8() const;
    uint8_t * u8() const;
    const float * scales() const { return scales_; }  // I8 only: rows() entries

    // Same memory, new shape with the same element count.
    Tensor reshaped(const Shape & shape) const;
    // Deep copy into owning memory.
    Tensor clone() const;

  private:
    DType dtype_ = DType::F32;
    Shape shape_;
    void * data_    = nullptr;
    float * scales_ = nullptr;
    std::shared_ptr<void> owner_;
};

// Conversions. to_f32 dequantises I8 (q · scale) and widens BF16.
Tensor to_f32(const Tensor & t);
Tensor to_bf16(const Tensor & t);
// Symmetric per-row int8: scale[r] = max|w[r, :]| / 127 (1 for an all-zero row), q = round(w / scale).
Tensor quantize_rows_i8(const Tensor & t);
// Any of F32/BF16/I8 → the requested type (U8 only to itself).
Tensor convert(const Tensor & t, DType to);

}  // namespace m4
