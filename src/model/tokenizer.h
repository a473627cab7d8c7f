// SentencePiece tokenizer whose model bytes live inside the firmware (tensor "tokenizer.model").
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace m4::model {

class Tokenizer {
  public:
    Tokenizer();
    ~Tokenizer();
    Tokenizer(Tokenizer &&) noexcept;
    Tokenizer & operator=(Tokenizer &&) noexcept;

    // Loads a serialized SentencePiece ModelProto. `where` names the source in errors.
    static Result<Tokenizer> from_bytes(const std::string & model_bytes, const std::string & where);

    // Text → ids, without BOS/EOS. Empty text is an input fault.
    Result<std::vector<int32_t>> encode(const std::string & text) const;
    std::string decode(const std::vector<int32_t> & ids) const;
    std::string piece(int32_t id) const;
    int32_t vocab_size() const;
    int32_t bos_id() const;
    int32_t eos_id() const;
    int32_t pad_id() const;
    int32_t unk_id() const;
    float   score(int32_t id) const;  // the piece's score (unigram log-probability, or BPE merge order)
    // SentencePiece piece kind, numbered as GGUF's token types: 1 normal, 2 unknown, 3 control,
    // 4 user-defined, 5 unused, 6 byte.
    int32_t piece_type(int32_t id) const;

  private:
    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
};

struct TokenizerTrainOptions {
    std::string corpus_path;  // a text file, one sentence per line
    int32_t vocab_size     = 512;
    std::string model_type = "bpe";  // bpe | unigram
    uint64_t max_sentences = 200000;
    // Reads the corpus through an iterator and returns the model proto directly, so the model
    // records no file path (the corpus' or a temp file's): the same corpus gives the same bytes
    // wherever it lies (the pretraining recipe uses this).
    bool path_free = false;
};
// Trains a SentencePiece model (ids: pad 0, bos 1, eos 2, unk 3) and returns its bytes.
Result<std::string> train_tokenizer(const TokenizerTrainOptions & options);

}  // namespace m4::model
