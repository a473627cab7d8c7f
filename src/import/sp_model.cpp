#include "import/sp_model.h"

#include <cstring>

namespace m4::import {
namespace {

// Protocol-buffer wire encoding: varints (wire type 0), 32-bit (5), length-delimited (2).
void varint(std::string & o, uint64_t v) {
    while (v >= 0x80) o += static_cast<char>((v & 0x7f) | 0x80), v >>= 7;
    o += static_cast<char>(v);
}
void tag(std::string & o, int field, int wire) {
    varint(o, static_cast<uint64_t>(field) << 3 | wire);
}
void put_int(std::string & o, int field, int64_t v) {
    tag(o, field, 0), varint(o, static_cast<uint64_t>(v));
}
void put_str(std::string & o, int field, const std::string & s) {
    tag(o, field, 2), varint(o, s.size()), o += s;
}
void put_f32(std::string & o, int field, float f) {
    tag(o, field, 5);
    char b[4];
    std::memcpy(b, &f, 4);
    o.append(b, 4);
}

}  // namespace

Result<std::string> sentencepiece_model_bytes(const SpVocab & v, const std::string & where) {
    const size_t n = v.pieces.size();
    if (n == 0) return invalid_argument(where + ": empty vocabulary");
    if (v.scores.size() != n || v.types.size() != n)
        return invalid_argument(where + ": vocabulary has " + std::to_string(n) + " tokens but " +
                                std::to_string(v.scores.size()) + " scores and " + std::to_string(v.types.size()) +
                                " token types");
    int unknowns  = 0;
    bool has_byte = false;
    for (size_t i = 0; i < n; ++i) {
        if (v.types[i] < 1 || v.types[i] > 6)
            return invalid_argument(where + ": token " + std::to_string(i) + " has unknown type " +
                                    std::to_string(v.types[i]));
        if (v.pieces[i].empty()) return invalid_argument(where + ": token " + std::to_string(i) + " is empty");
        unknowns += v.types[i] == 2;
        has_byte |= v.types[i] == 6;
    }
    if (unknowns != 1)
        return invalid_argument(where + ": the vocabulary needs exactly one unknown token, has " +
                                std::to_string(unknowns));
    auto in_range = [&](int32_t id) { return id >= 0 && static_cast<size_t>(id) < n; };
    if (!in_range(v.unk_id) || v.types[v.unk_id] != 2)
        return invalid_argument(where + ": unknown-token id " + std::to_string(v.unk_id) + " is not the unknown piece");
    std::string proto;
    for (size_t i = 0; i < n; ++i) {
        std::string p;
        put_str(p, 1, v.pieces[i]);
        put_f32(p, 2, v.scores[i]);
        if (v.types[i] != 1) put_int(p, 3, v.types[i]);  // NORMAL is the default
        put_str(proto, 1, p);
    }
    std::string trainer;
    put_int(trainer, 3, 2);  // model_type = BPE
    put_int(trainer, 4, static_cast<int64_t>(n));
    put_int(trainer, 35, has_byte ? 1 : 0);  // byte_fallback
    put_int(trainer, 40, v.unk_id);
    put_int(trainer, 41, in_range(v.bos_id) ? v.bos_id : -1);
    put_int(trainer, 42, in_range(v.eos_id) ? v.eos_id : -1);
    put_int(trainer, 43, in_range(v.pad_id) ? v.pad_id : -1);
    put_str(trainer, 45, v.pieces[v.unk_id]);
    if (in_range(v.bos_id)) put_str(trainer, 46, v.pieces[v.bos_id]);
    if (in_range(v.eos_id)) put_str(trainer, 47, v.pieces[v.eos_id]);
    if (in_range(v.pad_id)) put_str(trainer, 48, v.pieces[v.pad_id]);
    put_str(proto, 2, trainer);
    std::string norm;
    put_str(norm, 1, "identity");
    put_int(norm, 3, 1);  // add_dummy_prefix
    put_int(norm, 4, 0);  // remove_extra_whitespaces
    put_int(norm, 5, 1);  // escape_whitespaces
    put_str(proto, 3, norm);
    return proto;
}

}  // namespace m4::import
