#include "model/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>
#include <unordered_map>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "base/mapped_file.h"

namespace m4::model {

Tokenizer::Tokenizer()                                  = default;
Tokenizer::~Tokenizer()                                 = default;
Tokenizer::Tokenizer(Tokenizer &&) noexcept             = default;
Tokenizer & Tokenizer::operator=(Tokenizer &&) noexcept = default;

Result<Tokenizer> Tokenizer::from_bytes(const std::string & model_bytes, const std::string & where) {
    Tokenizer t;
    t.sp_   = std::make_unique<sentencepiece::SentencePieceProcessor>();
    auto st = t.sp_->LoadFromSerializedProto(model_bytes);
    if (!st.ok()) return invalid_argument(where + ": tokenizer model does not load (" + st.ToString() + ")");
    return t;
}

Result<std::vector<int32_t>> Tokenizer::encode(const std::string & text) const {
    bool blank = true;
    for (char c : text) blank = blank && (c == ' ' || c == '\t' || c == '\n' || c == '\r');
    if (blank) return invalid_argument("text input is empty");
    std::vector<int> ids;
    auto st = sp_->Encode(text, &ids);
    if (!st.ok()) return invalid_argument("text cannot be tokenized: " + st.ToString());
    return std::vector<int32_t>(ids.begin(), ids.end());
}

std::string Tokenizer::decode(const std::vector<int32_t> & ids) const {
    std::vector<int> v(ids.begin(), ids.end());
    std::string out;
    (void)sp_->Decode(v, &out);
    return out;
}

std::string Tokenizer::piece(int32_t id) const {
    return sp_->IdToPiece(id);
}
int32_t Tokenizer::vocab_size() const {
    return sp_->GetPieceSize();
}
int32_t Tokenizer::bos_id() const {
    return sp_->bos_id();
}
int32_t Tokenizer::eos_id() const {
    return sp_->eos_id();
}
int32_t Tokenizer::pad_id() const {
    return sp_->pad_id();
}
int32_t Tokenizer::unk_id() const {
    return sp_->unk_id();
}
float Tokenizer::score(int32_t id) const {
    return sp_->GetScore(id);
}
int32_t Tokenizer::piece_type(int32_t id) const {
    if (sp_->IsUnknown(id)) return 2;
    if (sp_->IsControl(id)) return 3;
    if (sp_->IsUnused(id)) return 5;
    if (sp_->IsByte(id)) return 6;
    return 1;
}

Result<std::string> train_tokenizer(const TokenizerTrainOptions & o) {
    if (::access(o.corpus_path.c_str(), R_OK) != 0) return not_found(o.corpus_path + ": tokenizer corpus not readable");
    std::string prefix = "/tmp/m4_spm_" + std::to_string(::getpid());
    // The keyword form: the string form logs "Running command: …" to stderr before it has read
    // --minloglevel, and every `m4fw init` printed it.
    std::unordered_map<std::string, std::string> args = {{"vocab_size", std::to_string(o.vocab_size)},
                                                         {"model_type", o.model_type},
                                                         {"pad_id", "0"},
                                                         {"bos_id", "1"},
                                                         {"eos_id", "2"},
                                                         {"unk_id", "3"},
                                                         {"character_coverage", "1.0"},
                                                         {"input_sentence_size", std::to_string(o.max_sentences)},
                                                         {"shuffle_input_sentence", "false"},
                                                         {"num_threads", "1"},
                                                         {"minloglevel", "2"},
                                                         {"hard_vocab_limit", "false"}};
    if (o.path_free) {
        // Lines of the corpus through an iterator; the model proto comes back in memory.
        class Lines : public sentencepiece::SentenceIterator {
          public:
            explicit Lines(const std::string & path) : in_(path, std::ios::binary) { Next(); }
            bool done() const override { return done_; }
            void Next() override { done_ = !std::getline(in_, line_); }
            const std::string & value() const override { return line_; }
            sentencepiece::util::Status status() const override { return {}; }

          private:
            std::ifstream in_;
            std::string line_;
            bool done_ = false;
        } lines(o.corpus_path);
        std::string proto;
        auto st = sentencepiece::SentencePieceTrainer::Train(args, &lines, &proto);
        if (!st.ok()) return invalid_argument(o.corpus_path + ": tokenizer training failed (" + st.ToString() + ")");
        return proto;
    }
    args["input"]        = o.corpus_path;
    args["model_prefix"] = prefix;
    auto st              = sentencepiece::SentencePieceTrainer::Train(args);
    if (!st.ok()) return invalid_argument(o.corpus_path + ": tokenizer training failed (" + st.ToString() + ")");
    auto bytes = read_file_bytes(prefix + ".model");
    std::remove((prefix + ".model").c_str());
    std::remove((prefix + ".vocab").c_str());
    return bytes;
}

}  // namespace m4::model
