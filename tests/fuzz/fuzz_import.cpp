// libFuzzer target: the safetensors and GGUF parsers (src/format/safetensors.cpp, gguf.cpp) must
// reject any byte string with a Status — never crash, hang or read out of bounds — and every
// tensor they accept must be readable in full. M4_FUZZ_KIND=safetensors|gguf picks one parser
// (default: both).
#include <cstdlib>
#include <cstring>

#include "format/gguf.h"
#include "format/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    static const char * kind = std::getenv("M4_FUZZ_KIND");
    if (!kind || std::strcmp(kind, "safetensors") == 0) {
        auto v = m4::format::parse_safetensors(data, size, "fuzz");
        if (v)
            for (const auto & e : v->entries)
                if (e.numel() <= (1 << 20)) (void)v->to_f32(e);
    }
    if (!kind || std::strcmp(kind, "gguf") == 0) {
        auto g = m4::format::parse_gguf(data, size, "fuzz");
        if (g)
            for (const auto & t : g->tensors)
                if (t.shape().numel() <= (1 << 20)) (void)g->load(t);
    }
    return 0;
}
