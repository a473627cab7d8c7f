#include "runtime/engine.h"

#include "base/utf8.h"
#include "model/preprocess.h"
#include "runtime/images.h"
#include "runtime/inputs.h"

namespace m4::runtime {

Result<std::unique_ptr<Engine>> Engine::open(const std::string & firmware_path, const EngineOptions & options) {
    auto e = std::make_unique<Engine>();
    M4_ASSIGN_OR_RETURN(e->model_, model::Model::load(firmware_path, {.public_key = options.public_key}));
    e->firmware_path_ = firmware_path;
    e->options_       = options;
    return e;
}

Result<std::shared_ptr<const adapter::Adapter>> Engine::adapter(const std::string & path) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(path); it != cache_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
        return it->second.adapter;
    }
    // Verified (digest) and bound (fingerprint, targets, shapes) on every load.
    M4_ASSIGN_OR_RETURN(adapter::Adapter loaded, adapter::Adapter::load(path, *model_));
    auto ptr = std::make_shared<const adapter::Adapter>(std::move(loaded));
    lru_.push_front(path);
    cache_[path] = Entry{ptr, lru_.begin()};
    cache_bytes_ += ptr->file_size();
    while (cache_bytes_ > options_.adapter_budget_bytes && lru_.size() > 1) {
        const std::string victim = lru_.back();
        cache_bytes_ -= cache_[victim].adapter->file_size();
        cache_.erase(victim);
        lru_.pop_back();
    }
    return ptr;
}

void Engine::evict(const std::string & path) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(path);
    if (it == cache_.end()) return;
    cache_bytes_ -= it->second.adapter->file_size();
    lru_.erase(it->second.lru);
    cache_.erase(it);
}

size_t Engine::adapters_cached() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cache_.size();
}

uint64_t Engine::adapter_cache_bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return cache_bytes_;
}

uint64_t Engine::adapter_cache_bytes(const std::string & prefix) const {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t n = 0;
    for (const auto & [path, e] : cache_)
        if (path.rfind(prefix, 0) == 0) n += e.adapter->file_size();
    return n;
}

namespace {
std::string apply_template(const std::string & tmpl, const std::string & input) {
    return model::apply_prompt_template(tmpl, input);
}
}  // namespace

uint64_t max_text_bytes(const model::Model & m) {
    // A SentencePiece piece holds at most 16 characters (4 bytes each in UTF-8) and normalisation
    // can shrink a character to a third of its bytes: text longer than this cannot fit in max_seq
    // tokens, so it is refused before the tokenizer spends time on it.
    return static_cast<uint64_t>(std::max<int64_t>(m.config().backbone.max_seq, 16)) * 16 * 4 * 3;
}

Status check_text_length(const model::Model & m, const std::string & text, const std::string & name) {
    if (const size_t at = utf8_invalid_at(text); at != kUtf8Valid)
        return invalid_argument(name + ": the text is not valid UTF-8 (byte " + std::to_string(at) + " of " +
                                std::to_string(text.size()) + ")");
    if (text.size() > max_text_bytes(m))
        return invalid_argument(name + ": " + std::to_string(text.size()) + " bytes of text cannot fit in the " +
                                std::to_string(m.config().backbone.max_seq) + "-token context (at most " +
                                std::to_string(max_text_bytes(m)) + " bytes are read)");
    return Status::ok();
}

Result<model::Request> prepare_item(const model::Model & m, model::Path path, const adapter::Manifest * manifest,
                                    const InputSpec & in, const std::string & prompt) {
    model::Request r;
    const std::string tmpl = manifest ? manifest->prompt : "{input}";
    // The encoder path over text: the text side of the shared embedding space (Model::run).
    // The full path over text ends in the image decoder (a description → an image).
    const bool draw = path == model::Path::Full && in.modality == model::Modality::Text;
    if (draw && !m.config().has_draw_path())
        return incompatible(in.name + ": the full path over text ends in the image decoder, and the firmware has " +
                            (m.config().has_decoder(model::Modality::Image)
                                 ? "no projector from the backbone into it (\"decoders.image.from_backbone\")"
                                 : "no image decoder (\"decoders.image\")"));
    if (path == model::Path::Backbone || draw ||
        (path == model::Path::Encoder && in.modality == model::Modality::Text)) {
        if (in.modality != model::Modality::Text)
            return invalid_argument(in.name + ": the backbone path takes text, not " +
                                    model::modality_name(in.modality));
        M4_RETURN_IF_ERROR(check_text_length(m, in.text, in.name));
        auto ids = m.tokenizer().encode(apply_template(tmpl, in.text));
        if (!ids) return ids.status().with_context(in.name);
        r.tokens = std::move(ids).value();
        return r;
    }
    if (path == model::Path::Generator &&
        (manifest ? manifest->modality == model::Modality::Audio : in.modality == model::Modality::Text)) {
        // Path 4 over text: the speech decoder alone, its input the text's characters.
        if (in.modality != model::Modality::Text)
            return invalid_argument(in.name + ": the generator path (an audio-output adapter) takes text, not " +
                                    model::modality_name(in.modality));
        if (!m.config().speech_decoder)
            return incompatible(in.name + ": the firmware has no speech decoder (\"decoders.speech\")");
        auto ids = model::speech_symbols(*m.config().speech_decoder, in.text);
        if (!ids) return ids.status().with_context(in.name);
        r.tokens = std::move(ids).value();
        return r;
    }
    if (path == model::Path::Generator) {
        // Path 4: the input goes to a decoder alone (an image, enlarged onto its grid).
        if (in.modality != model::Modality::Image)
            return invalid_argument(in.name + ": the generator path (" +
                                    (manifest ? "an image-output adapter" : std::string("image decoder")) +
                                    ") takes an image, not " + model::modality_name(in.modality));
        if (!m.config().has_decoder(model::Modality::Image))
            return incompatible(in.name + ": the firmware has no image decoder (\"decoders.image\")");
        const auto & dc = *m.config().image_decoder;
        if (!in.signal.empty()) {
            if (static_cast<int64_t>(in.signal.size()) != dc.input_values())
                return invalid_argument(in.name + ": expected " + std::to_string(dc.image_size) + "x" +
                                        std::to_string(dc.image_size) + "x3 values on the decoder's grid, got " +
                                        std::to_string(in.signal.size()));
            r.signal = in.signal;
        } else {
            M4_ASSIGN_OR_RETURN(DecodedImage img, decode_image_native(in.encoded, in.name));
            M4_ASSIGN_OR_RETURN(r.signal, image_to_decoder_grid(img, dc, in.name));
        }
        M4_RETURN_IF_ERROR(check_finite(r.signal, in.name));
        return r;
    }
    if (in.modality == model::Modality::Text || !m.config().has_encoder(in.modality))
        return incompatible(in.name + ": the firmware has no " + model::modality_name(in.modality) + " encoder");
    const auto & ec = m.config().encoder(in.modality);
    if (!in.signal.empty()) {
        Status st = model::check_modal_input(ec, static_cast<int64_t>(in.signal.size()));
        if (!st.is_ok()) return st.with_context(in.name);
        r.signal = in.signal;
        M4_RETURN_IF_ERROR(check_finite(r.signal, in.name));
    } else if (in.modality == model::Modality::Image) {
        M4_ASSIGN_OR_RETURN(r.signal, decode_image(in.encoded, in.name, ec));
    } else if (in.modality == model::Modality::Audio) {
        M4_ASSIGN_OR_RETURN(r.signal, decode_audio(in.encoded, in.name, ec));
    } else {
        M4_ASSIGN_OR_RETURN(r.signal, decode_imu_csv(in.encoded, in.name, ec));
    }
    M4_RETURN_IF_ERROR(check_finite(r.signal, in.name));  // a float WAV or a CSV may hold NaN / inf
    if (path == model::Path::Full) {
        M4_RETURN_IF_ERROR(check_text_length(m, prompt, in.name + " prompt"));
        std::string text = apply_template(tmpl, prompt);
        if (!text.empty() && text.find_first_not_of(" \t\n") != std::string::npos) {
            auto ids = m.tokenizer().encode(text);
            if (!ids) return ids.status().with_context(in.name);
            r.tokens = std::move(ids).value();
        }
    }
    return r;
}

}  // namespace m4::runtime
