// Element types of tensors and their conversions.
//   F32  — 4-byte IEEE float
//   BF16 — upper 16 bits of an f32 (round-to-nearest-even on conversion)
//   I8   — symmetric int8 with one f32 scale per output channel (per row of a [N, K] weight):
//          w[n, k] ≈ q[n, k] · scale[n],  q ∈ [-127, 127]
//   U8   — raw bytes (e.g. the SentencePiece model stored inside the firmware)
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace m4 {

enum class DType : uint8_t { F32 = 0, BF16 = 1, I8 = 2, U8 = 3 };
inline constexpr int kDTypeCount = 4;

const char * dtype_name(DType t);
bool parse_dtype(const std::string & name, DType * out);
size_t dtype_size(DType t);  // bytes per element (I8: 1, scales are stored separately)

inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu))
        return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN stays NaN
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);      // round to nearest, ties to even
    return static_cast<uint16_t>((bits + rounding) >> 16);
}

// Rounds f32 to the nearest bf16 value and back (the numerics of a bf16 operand).
inline float round_to_bf16(float f) {
    return bf16_to_f32(f32_to_bf16(f));
}

}  // namespace m4
