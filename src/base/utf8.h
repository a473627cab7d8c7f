// Strict UTF-8 validation (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF) —
// the rule protobuf applies to `string` fields, checked where text enters so that a bad byte is
// refused with its offset instead of failing deep inside serialisation or tokenising.
//   if (size_t at = utf8_invalid_at(text); at != kUtf8Valid) return invalid_argument(...);
#pragma once

#include <cstddef>
#include <string_view>

namespace m4 {

inline constexpr size_t kUtf8Valid = static_cast<size_t>(-1);

// The offset of the first byte that does not start a well-formed sequence, or kUtf8Valid.
inline size_t utf8_invalid_at(std::string_view s) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    size_t i        = 0;
    while (i < s.size()) {
        const unsigned char c = byte(i);
        size_t len            = 0;
        unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
        if (c < 0x80)
            len = 1;
        else if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c == 0xE0)
            len = 3, lo = 0xA0;
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
            len = 3;
        else if (c == 0xED)
            len = 3, hi = 0x9F;
        else if (c == 0xF0)
            len = 4, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3)
            len = 4;
        else if (c == 0xF4)
            len = 4, hi = 0x8F;
        else
            return i;
        if (i + len > s.size()) return i;
        if (len > 1 && (byte(i + 1) < lo || byte(i + 1) > hi)) return i;
        for (size_t k = 2; k < len; ++k)
            if ((byte(i + k) & 0xC0) != 0x80) return i;
        i += len;
    }
    return kUtf8Valid;
}

}  // namespace m4
