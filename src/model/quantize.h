// Quantized siblings of a firmware (`m4fw quantize`) and the proof that one is what it claims.
//
//     format::ContainerWriter w = model::quantized_sibling(parent, DType::I8);   // then w.write(out, &sk)
//     Status st = model::verify_quantized_sibling(q, parent);                      // q's claim checked
//
// A sibling keeps the parent's header and tensors, except that every linear weight and the token
// embedding become bf16 or int8 (per output channel), and its header records
// provenance.quantized = {"from": parent fingerprint, "dtype": "bf16" | "i8"}. The conversion is
// deterministic, so the parent and the dtype fix the sibling's bytes and fingerprint: that is how
// a claimed parent is verified without trusting anyone (docs/formats.md, "Quantized siblings").
#pragma once

#include <string>

#include "format/container.h"
#include "model/model.h"

namespace m4::model {

struct QuantizedFrom {
    std::string parent;  // fingerprint ("" when the firmware is not a quantized sibling)
    std::string dtype;   // "bf16" or "i8"
};

// What `fw`'s header claims (not verified).
QuantizedFrom quantized_from(const Model & fw);

// The sibling of `parent` in dtype `to` (BF16 or I8), ready to write.
Result<format::ContainerWriter> quantized_sibling(const Model & parent, DType to);

// OK when `q` is byte for byte the sibling quantized_sibling(parent, its recorded dtype) would
// write (signatures aside); else an error naming q and what does not match.
Status verify_quantized_sibling(const Model & q, const Model & parent);

}  // namespace m4::model
