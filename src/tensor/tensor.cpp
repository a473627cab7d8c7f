#include "tensor/tensor.h"

#include <cmath>
#include <cstring>

#include "base/arena.h"

namespace m4 {

const char * dtype_name(DType t) {
    switch (t) {
        case DType::F32:
            return "f32";
        case DType::BF16:
            return "bf16";
        case DType::I8:
            return "i8";
        case DType::U8:
            return "u8";
    }
    return "?";
}

bool parse_dtype(const std::string & name, DType * out) {
    for (int i = 0; i < kDTypeCount; ++i) {
        if (name == dtype_name(static_cast<DType>(i))) {
            *out = static_cast<DType>(i);
            return true;
        }
    }
    if (name == "int8") return *out = DType::I8, true;
    if (name == "float32") return *out = DType::F32, true;
    return false;
}

size_t dtype_size(DType t) {
    switch (t) {
        case DType::F32:
            return 4;
        case DType::BF16:
            return 2;
        case DType::I8:
            return 1;
        case DType::U8:
            return 1;
    }
    return 0;
}

Shape::Shape(std::initializer_list<int64_t> d) {
    M4_CHECK(d.size() <= static_cast<size_t>(kMaxDims));
    for (int64_t v : d) dims[ndim++] = v;
}

Shape Shape::of(const std::vector<int64_t> & d) {
    M4_CHECK(d.size() <= static_cast<size_t>(kMaxDims));
    Shape s;
    for (int64_t v : d) s.dims[s.ndim++] = v;
    return s;
}

int64_t Shape::numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= dims[i];
    return n;
}

int64_t Shape::rows() const {
    int64_t n = 1;
    for (int i = 0; i + 1 < ndim; ++i) n *= dims[i];
    return n;
}

bool Shape::operator==(const Shape & o) const {
    if (ndim != o.ndim) return false;
    for (int i = 0; i < ndim; ++i)
        if (dims[i] != o.dims[i]) return false;
    return true;
}

std::string Shape::str() const {
    std::string s = "[";
    for (int i = 0; i < ndim; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

Tensor Tensor::empty(DType dtype, const Shape & shape) {
    for (int i = 0; i < shape.ndim; ++i) M4_CHECK(shape.dims[i] >= 0);
    Tensor t;
    t.dtype_            = dtype;
    t.shape_            = shape;
    size_t data_bytes   = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
    size_t scale_offset = (data_bytes + kAlign - 1) / kAlign * kAlign;
    size_t total        = scale_offset + (dtype == DType::I8 ? static_cast<size_t>(shape.rows()) * 4 : 0);
    void * mem          = aligned_alloc_bytes(total);
    t.owner_            = std::shared_ptr<void>(mem, aligned_free);
    t.data_             = mem;
    if (dtype == DType::I8) t.scales_ = reinterpret_cast<float *>(static_cast<uint8_t *>(mem) + scale_offset);
    return t;
}

Tensor Tensor::zeros(DType dtype, const Shape & shape) {
    Tensor t = empty(dtype, shape);
    std::memset(t.data_, 0, t.nbytes());
    if (t.scales_) std::fill(t.scales_, t.scales_ + shape.rows(), 1.0f);
    return t;
}

Tensor Tensor::view(DType dtype, const Shape & shape, const void * data, const float * scales) {
    Tensor t;
    t.dtype_  = dtype;
    t.shape_  = shape;
    t.data_   = const_cast<void *>(data);
    t.scales_ = const_cast<float *>(scales);
    return t;
}

float * Tensor::f32() const {
    M4_CHECK_MSG(dtype_ == DType::F32, std::string("tensor is ") + dtype_name(dtype_));
    return static_cast<float *>(data_);
}
uint16_t * Tensor::bf16() const {
    M4_CHECK_MSG(dtype_ == DType::BF16, std::string("tensor is ") + dtype_name(dtype_));
    return static_cast<uint16_t *>(data_);
}
int8_t * Tensor::i8() const {
    M4_CHECK_MSG(dtype_ == DType::I8, std::string("tensor is ") + dtype_name(dtype_));
    return static_cast<int8_t *>(data_);
}
uint8_t * Tensor::u8() const {
    M4_CHECK_MSG(dtype_ == DType::U8, std::string("tensor is ") + dtype_name(dtype_));
    return static_cast<uint8_t *>(data_);
}

Tensor Tensor::reshaped(const Shape & shape) const {
    M4_CHECK_MSG(shape.numel() == numel(), shape.str() + " vs " + shape_.str());
    M4_CHECK_MSG(dtype_ != DType::I8 || shape.cols() == cols(), "int8 reshape must keep rows (scales are per row)");
    Tensor t = *this;
    t.shape_ = shape;
    return t;
}

Tensor Tensor::clone() const {
    Tensor t = empty(dtype_, shape_);
    std::memcpy(t.data_, data_, nbytes());
    if (dtype_ == DType::I8 && scales_) std::memcpy(t.scales_, scales_, static_cast<size_t>(rows()) * 4);
    return t;
}

Tensor to_f32(const Tensor & t) {
    if (t.dtype() == DType::F32) return t.clone();
    Tensor out = Tensor::empty(DType::F32, t.shape());
    float * o  = out.f32();
    int64_t n  = t.numel();
    if (t.dtype() == DType::BF16) {
        const uint16_t * s = t.bf16();
        for (int64_t i = 0; i < n; ++i) o[i] = bf16_to_f32(s[i]);
    } else if (t.dtype() == DType::I8) {
        const int8_t * q = t.i8();
        int64_t C        = t.cols();
        for (int64_t r = 0; r < t.rows(); ++r)
            for (int64_t c = 0; c < C; ++c) o[r * C + c] = q[r * C + c] * t.scales()[r];
    } else {
        M4_CHECK_MSG(false, "to_f32 of a u8 tensor");
    }
    return out;
}

Tensor to_bf16(const Tensor & t) {
    Tensor f        = t.dtype() == DType::F32 ? t : to_f32(t);
    Tensor out      = Tensor::empty(DType::BF16, t.shape());
    const float * s = f.f32();
    uint16_t * o    = out.bf16();
    for (int64_t i = 0; i < t.numel(); ++i) o[i] = f32_to_bf16(s[i]);
    return out;
}

Tensor quantize_rows_i8(const Tensor & t) {
    Tensor f        = t.dtype() == DType::F32 ? t : to_f32(t);
    Tensor out      = Tensor::empty(DType::I8, t.shape());
    const float * s = f.f32();
    int64_t C       = t.cols();
    for (int64_t r = 0; r < t.rows(); ++r) {
        float amax = 0;
        for (int64_t c = 0; c < C; ++c) amax = std::max(amax, std::fabs(s[r * C + c]));
        float scale = amax > 0 ? amax / 127.0f : 1.0f;
        out.mutable_data();
        const_cast<float *>(out.scales())[r] = scale;
        for (int64_t c = 0; c < C; ++c) {
            float q             = std::nearbyint(s[r * C + c] / scale);
            out.i8()[r * C + c] = static_cast<int8_t>(std::max(-127.0f, std::min(127.0f, q)));
        }
    }
    return out;
}

Tensor convert(const Tensor & t, DType to) {
    if (t.dtype() == to) return t;
    switch (to) {
        case DType::F32:
            return to_f32(t);
        case DType::BF16:
            return to_bf16(t);
        case DType::I8:
            return quantize_rows_i8(t);
        case DType::U8:
            break;
    }
    M4_CHECK_MSG(false, "cannot convert to u8");
    return {};
}

}  // namespace m4
