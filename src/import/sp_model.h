// A SentencePiece model (the serialized ModelProto that m4's tokenizer loads) built from a
// vocabulary given as pieces, scores and types — what a GGUF "llama" vocabulary carries
// (tokenizer.ggml.tokens / scores / token_type). The proto is written field by field from
// sentencepiece_model.proto (ModelProto: pieces = 1, trainer_spec = 2, normalizer_spec = 3).
//
// The model is BPE (pieces merge by score, as llama.cpp's SentencePiece tokenizer does), with the
// "identity" normaliser, a dummy-prefix space, spaces escaped to U+2581 and no collapsing of
// repeated spaces, and byte fallback when the vocabulary has <0xNN> byte pieces.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace m4::import {

struct SpVocab {
    std::vector<std::string> pieces;
    std::vector<float> scores;   // one per piece
    std::vector<int32_t> types;  // GGUF numbering: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
    int32_t unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
};

// Checks the vocabulary (sizes agree, types known, one unknown piece, ids in range) and returns the
// ModelProto bytes. `where` names the source in errors.
Result<std::string> sentencepiece_model_bytes(const SpVocab & v, const std::string & where);

}  // namespace m4::import
