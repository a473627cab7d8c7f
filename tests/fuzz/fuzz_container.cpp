// libFuzzer target: the .m4fw / .m4a container parser, the firmware config parser and the adapter
// manifest parser must reject any byte string with a Status — never crash, hang or read out of
// bounds. M4_FUZZ_KIND=firmware|adapter picks the expected kind (default: both).
#include <cstdlib>
#include <cstring>

#include "adapter/adapter.h"
#include "format/container.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    static const char * kind = std::getenv("M4_FUZZ_KIND");
    for (auto k : {m4::format::FileKind::Firmware, m4::format::FileKind::Adapter}) {
        if (kind && std::strcmp(kind, m4::format::file_kind_name(k)) != 0) continue;
        // Skip the digest so the fuzzer can reach the header and directory parsers.
        auto v = m4::format::parse_container(data, size, "fuzz", k, {.public_key = nullptr, .verify_digest = false});
        if (!v) continue;
        for (const auto & e : v->entries) {
            m4::Tensor t          = v->tensor(e);
            volatile uint8_t sink = 0;
            if (t.nbytes() > 0) sink = static_cast<const uint8_t *>(t.data())[t.nbytes() - 1];
            (void)sink;
        }
        if (k == m4::format::FileKind::Firmware)
            (void)m4::model::parse_model_config(v->header);
        else
            (void)m4::adapter::parse_manifest(v->header);
    }
    return 0;
}
