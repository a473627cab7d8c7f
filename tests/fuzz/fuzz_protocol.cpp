// libFuzzer target: the daemon's protocol parsing — the incremental frame reader fed in arbitrary
// chunks, then m4.v1.Request parsing of every complete frame, then the reading of its fields the
// handlers do. Must never crash, hang or over-read.
#include <cstring>

#include "m4.pb.h"
#include "proto/framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t * data, size_t size) {
    m4::wire::FrameReader reader;
    size_t                pos = 0;
    while (pos < size) {
        size_t chunk = 1 + (data[pos] % 61);  // split points chosen by the input itself
        chunk        = std::min(chunk, size - pos);
        if (!reader.feed(reinterpret_cast<const char *>(data + pos), chunk).is_ok()) return 0;
        pos += chunk;
        m4::wire::Frame f;
        while (reader.next(&f)) {
            m4::v1::Request r;
            if (!r.ParseFromString(f.bytes)) continue;
            if (r.has_infer()) {
                for (const auto & in : r.infer().inputs()) {
                    volatile size_t n = in.text().size() + in.encoded().size() + in.modality().size();
                    if (in.has_signal()) n = n + static_cast<size_t>(in.signal().values_size());
                    (void)n;
                }
            }
            if (r.has_register_adapter()) {
                volatile size_t n = r.register_adapter().adapter().size();
                (void)n;
            }
            (void)r.SerializeAsString();
        }
    }
    return 0;
}
