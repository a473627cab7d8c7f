#include "model/quantize.h"

#include <set>

#include "model/weights.h"

namespace m4::model {

QuantizedFrom quantized_from(const Model & fw) {
    const nlohmann::json & h = fw.file().header();
    QuantizedFrom q;
    if (!h.contains("provenance") || !h["provenance"].is_object()) return q;
    const nlohmann::json & p = h["provenance"];
    if (!p.contains("quantized") || !p["quantized"].is_object()) return q;
    const nlohmann::json & j = p["quantized"];
    if (j.contains("from") && j["from"].is_string()) q.parent = j["from"].get<std::string>();
    if (j.contains("dtype") && j["dtype"].is_string()) q.dtype = j["dtype"].get<std::string>();
    return q;
}

Result<format::ContainerWriter> quantized_sibling(const Model & parent, DType to) {
    if (to != DType::BF16 && to != DType::I8) return invalid_argument("quantize: the dtype must be bf16 or i8");
    if (!quantized_from(parent).parent.empty())
        return invalid_argument(parent.file().path() + ": already quantized (from " +
                                quantized_from(parent).parent.substr(0, 12) + "…); quantize its parent instead");
    std::set<std::string> quantisable;
    for (const auto & spec : expected_tensors(parent.config()))
        if (spec.role == TensorRole::LinearWeight || spec.role == TensorRole::Embedding) quantisable.insert(spec.name);
    format::ContainerWriter w(format::FileKind::Firmware);
    nlohmann::json header             = parent.file().header();
    header["provenance"]["quantized"] = {{"from", parent.fingerprint()}, {"dtype", dtype_name(to)}};
    w.set_header(header);
    for (const auto & e : parent.file().entries()) {
        Tensor t = parent.file().tensor(e.name);
        w.add(e.name, quantisable.count(e.name) && t.dtype() == DType::F32 ? convert(t, to) : t);
    }
    return w;
}

Status verify_quantized_sibling(const Model & q, const Model & parent) {
    const std::string where   = q.file().path() + ": claims to be quantized from " + parent.file().path();
    const QuantizedFrom claim = quantized_from(q);
    if (claim.parent.empty())
        return incompatible(q.file().path() + ": not a quantized firmware (no provenance.quantized)");
    if (claim.parent != parent.fingerprint())
        return incompatible(q.file().path() + ": quantized from " + claim.parent.substr(0, 12) + "…, not from " +
                            parent.file().path() + " (" + parent.fingerprint().substr(0, 12) + "…)");
    DType to;
    if (!parse_dtype(claim.dtype, &to) || (to != DType::BF16 && to != DType::I8))
        return incompatible(q.file().path() + ": provenance.quantized.dtype '" + claim.dtype + "' is not bf16 or i8");
    M4_ASSIGN_OR_RETURN(format::ContainerWriter w, quantized_sibling(parent, to));
    const std::string bytes = w.serialize();
    M4_ASSIGN_OR_RETURN(format::ContainerView v,
                        format::parse_container(reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size(),
                                                "re-quantized parent", format::FileKind::Firmware));
    if (to_hex(v.digest) != q.fingerprint())
        return incompatible(where + ", but its contents are not that quantization (fingerprint " +
                            q.fingerprint().substr(0, 12) + "…, re-quantizing the parent gives " +
                            to_hex(v.digest).substr(0, 12) + "…)");
    return Status::ok();
}

}  // namespace m4::model
