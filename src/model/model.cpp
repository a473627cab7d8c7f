#include "model/model.h"

#include <cmath>
#include <cstring>

#include "ops/ops.h"

namespace m4::model {

Result<std::unique_ptr<Model>> Model::load(const std::string & path, const format::OpenOptions & options) {
    M4_ASSIGN_OR_RETURN(format::ContainerFile file,
                        format::ContainerFile::open(path, format::FileKind::Firmware, options));
    auto cfg = parse_model_config(file.header());
    if (!cfg) return cfg.status().with_context(path);
    auto m     = std::make_unique<Model>();
    m->file_   = std::move(file);
    m->config_ = std::move(cfg).value();
    M4_RETURN_IF_ERROR(resolve_weights(m->file_, m->config_, &m->weights_));
    const format::TensorEntry * tok = m->file_.find("tokenizer.model");
    if (!tok || tok->dtype != DType::U8) return invalid_argument(path + ": missing u8 tensor 'tokenizer.model'");
    Tensor tt = m->file_.tensor("tokenizer.model");
    M4_ASSIGN_OR_RETURN(m->tokenizer_, Tokenizer::from_bytes(std::string(reinterpret_cast<const char *>(tt.data()),
                                                                         static_cast<size_t>(tt.numel())),
                                                             path));
    if (m->tokenizer_.vocab_size() > m->config_.text.vocab_size)
        return invalid_argument(path + ": tokenizer has " + std::to_string(m->tokenizer_.vocab_size()) +
                                " pieces but text.vocab_size is " + std::to_string(m->config_.text.vocab_size));
    if (m->config_.has_encoder(Modality::Audio))
        m->audio_fe_ = make_audio_front_end(m->config_.encoder(Modality::Audio));
    if (m->config_.speech_decoder)
        m->vocoder_ = std::make_shared<const SpeechVocoder>(make_speech_vocoder(*m->config_.speech_decoder));
    return m;
}

Status Model::validate(Path path, Modality modality, std::span<const Request> batch) const {
    if (batch.empty()) return invalid_argument("empty batch");
    if (path == Path::Generator && modality == Modality::Audio) {
        if (!config_.speech_decoder)
            return incompatible(
                "the firmware has no audio decoder (\"decoders.speech\", the speech decoder) for the generator path");
        const auto & sc = *config_.speech_decoder;
        for (size_t i = 0; i < batch.size(); ++i) {
            const Request & r = batch[i];
            auto item = [&](const std::string & m) { return invalid_argument("item " + std::to_string(i) + ": " + m); };
            if (!r.signal.empty()) return item("the speech decoder takes text (symbol ids), not a signal");
            if (r.tokens.empty()) return item("text: empty (the speech decoder needs at least one character)");
            if (static_cast<int64_t>(r.tokens.size()) > sc.max_chars)
                return item("text: " + std::to_string(r.tokens.size()) + " characters exceed the speech decoder's " +
                            std::to_string(sc.max_chars) + " (decoders.speech.max_chars)");
            for (int32_t id : r.tokens)
                if (id <= 0 || id >= kSpeechSymbols) return item("symbol id " + std::to_string(id) + " out of range");
            if (r.adapter && r.adapter->head.type != HeadType::None)
                return incompatible("item " + std::to_string(i) +
                                    ": an adapter with a head cannot run on the generator path");
        }
        return Status::ok();
    }
    if (path == Path::Generator) {
        if (modality != Modality::Image)
            return incompatible(std::string("the generator path has no ") + modality_name(modality) +
                                " decoder (image and audio only)");
        if (!config_.has_decoder(Modality::Image))
            return incompatible("the firmware has no image decoder (\"decoders.image\") for the generator path");
        const int64_t S = config_.image_decoder->image_size;
        for (size_t i = 0; i < batch.size(); ++i) {
            const Request & r = batch[i];
            auto item = [&](const std::string & m) { return invalid_argument("item " + std::to_string(i) + ": " + m); };
            if (static_cast<int64_t>(r.signal.size()) != S * S * 3)
                return item("image: expected " + std::to_string(S) + "x" + std::to_string(S) +
                            "x3 values (the decoder's grid), got " + std::to_string(r.signal.size()));
            if (!r.tokens.empty()) return item("the generator path takes no text");
            if (r.adapter && r.adapter->head.type != HeadType::None)
                return incompatible("item " + std::to_string(i) +
                                    ": an adapter with a head cannot run on the generator path");
        }
        return Status::ok();
    }
    if (path == Path::Full && modality == Modality::Text) return validate_draw(batch);  // model_draw.cpp
    const bool text_embed    = path == Path::Encoder && modality == Modality::Text;     // see run()
    const bool needs_encoder = path != Path::Backbone && !text_embed;
    if (needs_encoder && (modality == Modality::Text || !config_.has_encoder(modality)))
        return incompatible(std::string("the firmware has no ") + modality_name(modality) + " encoder for the " +
                            path_name(path) + " path");
    if (path == Path::Backbone && modality != Modality::Text)
        return invalid_argument(std::string("the backbone path takes text, not ") + modality_name(modality));
    for (size_t i = 0; i < batch.size(); ++i) {
        const Request & r = batch[i];
        auto item = [&](const std::string & m) { return invalid_argument("item " + std::to_string(i) + ": " + m); };
        if (needs_encoder) {
            Status st = check_modal_input(config_.encoder(modality), static_cast<int64_t>(r.signal.size()));
            if (!st.is_ok()) return item(st.message());
        }
        if ((path == Path::Backbone || text_embed) && r.tokens.empty()) return item("text input is empty");
        for (int32_t id : r.tokens)
            if (id < 0 || id >= config_.text.vocab_size)
                return item("token id " + std::to_string(id) + " out of range");
        int64_t len =
            1 + static_cast<int64_t>(r.tokens.size()) + (needs_encoder ? config_.encoder(modality).tokens() : 0);
        if ((path != Path::Encoder || text_embed) && len > config_.backbone.max_seq)
            return item("sequence of " + std::to_string(len) + " positions exceeds max_seq " +
                        std::to_string(config_.backbone.max_seq));
        if (text_embed && r.adapter && r.adapter->head.type != HeadType::None)
            return incompatible("item " + std::to_string(i) +
                                ": a text embedding takes no adapter head (use the backbone path)");
        if (r.adapter && r.adapter->head.type != HeadType::None) {
            int64_t in = path == Path::Encoder ? config_.embed_dim : config_.backbone.width;
            if (r.adapter->head.in_dim() != in)
                return incompatible("item " + std::to_string(i) + ": adapter head expects inputs of " +
                                    std::to_string(r.adapter->head.in_dim()) + ", the " + path_name(path) +
                                    " path gives " + std::to_string(in));
        }
    }
    return Status::ok();
}

void Model::encode_tokens(Modality modality, std::span<const Request> batch, std::vector<float> * tokens) const {
    const auto & ec = config_.encoder(modality);
    const auto & ew = weights_.encoders[static_cast<int>(modality)];
    const int64_t B = static_cast<int64_t>(batch.size()), T = ec.tokens(), Np = ec.patches(), P = ec.patch_dim();
    std::vector<float> patches(B * Np * P);
    std::vector<RowSegment> seg;
    for (int64_t b = 0; b < B; ++b) {
        const Request & r = batch[b];
        float * p         = patches.data() + b * Np * P;
        int64_t n         = static_cast<int64_t>(r.signal.size());
        if (modality == Modality::Image) image_patches(ec, r.signal.data(), p);
        if (modality == Modality::Audio) audio_patches(ec, audio_fe_, r.signal.data(), n, p);
        if (modality == Modality::Imu) imu_patches(ec, r.signal.data(), n / 6, p);
        seg.push_back({b * T, (b + 1) * T, r.adapter});
    }
    tokens->resize(B * T * ec.width);
    encoder_forward(ec, ew, patches.data(), B, seg, tokens->data());
}

void Model::build_backbone_inputs(Path path, Modality modality, std::span<const Request> batch, std::vector<float> * x,
                                  std::vector<int64_t> * lens) const {
    const int64_t B = static_cast<int64_t>(batch.size()), C = config_.backbone.width;
    int64_t Tm = 0;
    std::vector<float> prefix;  // projected modality tokens [B·Tm, C]
    if (path == Path::Full) {
        const auto & ec = config_.encoder(modality);
        Tm              = ec.tokens();
        std::vector<float> tokens;
        encode_tokens(modality, batch, &tokens);
        std::vector<RowSegment> seg;
        for (int64_t b = 0; b < B; ++b) seg.push_back({b * Tm, (b + 1) * Tm, batch[b].adapter});
        prefix.resize(B * Tm * C);
        linear(weights_.encoders[static_cast<int>(modality)].projector, tokens.data(), B * Tm, prefix.data(), seg);
    }
    lens->clear();
    int64_t total = 0;
    for (const auto & r : batch) {
        lens->push_back(1 + Tm + static_cast<int64_t>(r.tokens.size()));
        total += lens->back();
    }
    x->resize(total * C);
    int64_t row = 0;
    for (int64_t b = 0; b < B; ++b) {
        const Request & r = batch[b];
        std::vector<int32_t> ids{config_.text.bos_id};
        ops::gather(weights_.backbone.tok_embed, ids.data(), 1, x->data() + row * C);
        ++row;
        if (Tm) {
            std::memcpy(x->data() + row * C, prefix.data() + b * Tm * C, static_cast<size_t>(Tm * C) * 4);
            row += Tm;
        }
        int64_t n = static_cast<int64_t>(r.tokens.size());
        if (n) ops::gather(weights_.backbone.tok_embed, r.tokens.data(), n, x->data() + row * C);
        row += n;
    }
}

void Model::apply_head(const HeadWeights & head, const float * z, Output * out) const {
    const int64_t n = head.w.dim(0);
    out->head.resize(n);
    std::vector<float> hidden;
    if (head.has_hidden()) {  // z [in] → gelu(hidden_w·z + hidden_bias) [H]
        const int64_t H = head.hidden_w.dim(0);
        std::vector<float> pre(static_cast<size_t>(H));
        hidden.resize(static_cast<size_t>(H));
        ops::matmul(z, head.hidden_w.dim(1), head.hidden_w, head.hidden_bias, pre.data(), H, 1);
        ops::gelu(pre.data(), hidden.data(), H);
        z = hidden.data();
    }
    ops::matmul(z, head.w.dim(1), head.w, head.type == HeadType::Embed ? nullptr : head.bias, out->head.data(), n, 1);
    if (head.type == HeadType::Embed) {
        double s = 0;
        for (float v : out->head) s += double(v) * v;
        float inv = s > 0 ? float(1.0 / std::sqrt(s)) : 0.0f;
        for (float & v : out->head) v *= inv;
    }
}

namespace {
std::vector<float> normalized(const float * z, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += double(z[i]) * z[i];
    float inv = s > 0 ? float(1.0 / std::sqrt(s)) : 0.0f;
    std::vector<float> out(z, z + n);
    for (float & v : out) v *= inv;
    return out;
}
}  // namespace

Result<std::vector<Output>> Model::run(Path path, Modality modality, std::span<const Request> batch,
                                       const RunOptions & options) const {
    M4_RETURN_IF_ERROR(validate(path, modality, batch));
    const int64_t B = static_cast<int64_t>(batch.size()), E = config_.embed_dim;
    std::vector<Output> outs(B);
    if (path == Path::Generator) {
        if (modality == Modality::Audio)
            run_speech(batch, outs.data());
        else
            run_generator(batch, outs.data());
        return outs;
    }
    if (path == Path::Full && modality == Modality::Text) {  // a description → an image
        // In passes of at most 512 backbone rows (a longer item alone), as below.
        const int64_t T = config_.image_decoder->tokens();
        for (int64_t b0 = 0, b1 = 0; b0 < B; b0 = b1) {
            int64_t rows = 0;
            for (b1 = b0; b1 < B; ++b1) {
                const int64_t n = 1 + T + static_cast<int64_t>(batch[b1].tokens.size());
                if (b1 > b0 && rows + n > 512) break;
                rows += n;
            }
            run_draw(batch.subspan(b0, b1 - b0), outs.data() + b0);
        }
        return outs;
    }
    // The encoder path over text is the text side of the shared space: the backbone reads the
    // tokens, its mean-pooled states go through text_proj (what zero-shot retrieval compares
    // modality embeddings with). Only the embedding is returned.
    if (path == Path::Encoder && modality == Modality::Text) {
        M4_ASSIGN_OR_RETURN(outs, run(Path::Backbone, Modality::Text, batch, {}));
        for (auto & o : outs) o.logits.clear(), o.n_positions = 0;
        return outs;
    }
    if (path == Path::Encoder) {
        const auto & ec = config_.encoder(modality);
        std::vector<float> tokens, z(B * E);
        encode_tokens(modality, batch, &tokens);
        std::vector<RowSegment> seg;
        for (int64_t b = 0; b < B; ++b) seg.push_back({b, b + 1, batch[b].adapter});
        encoder_pool(ec, weights_.encoders[static_cast<int>(modality)], tokens.data(), B, seg, E, z.data());
        for (int64_t b = 0; b < B; ++b) {
            outs[b].embedding = normalized(z.data() + b * E, E);
            if (batch[b].adapter && batch[b].adapter->head.type != HeadType::None)
                apply_head(batch[b].adapter->head, z.data() + b * E, &outs[b]);
        }
        return outs;
    }
    // Nothing is generated, so no KV cache: each layer's attention reads keys and values from the
    // pass's own activations. Whole sequences go through in passes of at most kRowsPerPass rows (a
    // longer sequence alone), which bounds activation memory whatever the batch size; GEMMs of
    // 512 rows already run at full speed.
    constexpr int64_t kRowsPerPass = 512;
    const int64_t Tm               = path == Path::Full ? config_.encoder(modality).tokens() : 0;
    for (int64_t b0 = 0, b1 = 0; b0 < B; b0 = b1) {
        int64_t rows = 0;
        for (b1 = b0; b1 < B; ++b1) {
            const int64_t n = 1 + Tm + static_cast<int64_t>(batch[b1].tokens.size());
            if (b1 > b0 && rows + n > kRowsPerPass) break;
            rows += n;
        }
        run_backbone_pass(path, modality, batch.subspan(b0, b1 - b0), options, outs.data() + b0);
    }
    return outs;
}

void Model::run_backbone_pass(Path path, Modality modality, std::span<const Request> batch, const RunOptions & options,
                              Output * outs) const {
    const auto & bc = config_.backbone;
    const int64_t B = static_cast<int64_t>(batch.size()), C = bc.width, V = config_.text.vocab_size,
                  E = config_.embed_dim;
    std::vector<float> x, hn;
    std::vector<int64_t> lens;
    build_backbone_inputs(path, modality, batch, &x, &lens);
    const int64_t N = static_cast<int64_t>(x.size()) / C;
    std::vector<SequenceSlice> seqs;
    int64_t row = 0;
    for (int64_t b = 0; b < B; ++b) {
        seqs.push_back({row, lens[b], nullptr, batch[b].adapter});
        row += lens[b];
    }
    hn.resize(N * C);
    backbone_forward(bc, weights_.backbone, x.data(), N, seqs, hn.data());
    for (int64_t b = 0; b < B; ++b) {
        const float * h = hn.data() + seqs[b].row_begin * C;
        const int64_t n = lens[b];
        std::vector<float> mean(C), z(E);
        ops::pool(h, mean.data(), 1, n, C);
        linear(weights_.backbone.text_proj, mean.data(), 1, z.data(), {{0, 1, batch[b].adapter}});
        outs[b].embedding         = normalized(z.data(), E);
        outs[b].n_positions       = n;
        const AdapterWeights * ad = batch[b].adapter;
        if (ad && ad->head.type != HeadType::None) {
            apply_head(ad->head, ad->head.pool == HeadPool::Mean ? mean.data() : h + (n - 1) * C, &outs[b]);
            continue;
        }
        int64_t first = options.all_logits ? 0 : n - 1;
        outs[b].logits.resize((n - first) * V);
        std::vector<RowSegment> seg{{0, n - first, ad}};
        linear(weights_.backbone.lm_head, h + first * C, n - first, outs[b].logits.data(), seg);
    }
}

void Model::run_generator(std::span<const Request> batch, Output * outs) const {
    const auto & dc = *config_.image_decoder;
    const int64_t B = static_cast<int64_t>(batch.size()), T = dc.tokens(), P = dc.patch_dim(), S = dc.image_size;
    std::vector<float> x(B * T * P), y(B * T * P);
    std::vector<RowSegment> seg;
    for (int64_t b = 0; b < B; ++b) {
        image_patches(dc, batch[b].signal.data(), x.data() + b * T * P);
        seg.push_back({b * T, (b + 1) * T, batch[b].adapter});
    }
    image_decoder_forward(dc, weights_.image_decoder, x.data(), B, seg, y.data());
    ops::add(x.data(), y.data(), y.data(), B * T * P, B * T * P);  // the decoder predicts a correction
    for (int64_t b = 0; b < B; ++b) {
        outs[b].image.resize(S * S * 3);
        outs[b].image_size = S;
        image_unpatchify(dc, y.data() + b * T * P, outs[b].image.data());
    }
}

void Model::run_speech(std::span<const Request> batch, Output * outs) const {
    const auto & sc = *config_.speech_decoder;
    const int64_t B = static_cast<int64_t>(batch.size()), T = sc.frames(), M = sc.n_mels;
    std::vector<float> x(B * T * kSpeechSymbols), y(B * T * M);
    std::vector<RowSegment> seg;
    for (int64_t b = 0; b < B; ++b) {
        speech_inputs(sc, batch[b].tokens.data(), batch[b].tokens.size(), x.data() + b * T * kSpeechSymbols);
        seg.push_back({b * T, (b + 1) * T, batch[b].adapter});
    }
    speech_decoder_forward(sc, weights_.speech_decoder, x.data(), B, seg, y.data());
    for (int64_t b = 0; b < B; ++b) {
        outs[b].mel.assign(y.begin() + b * T * M, y.begin() + (b + 1) * T * M);
        outs[b].audio.resize(sc.samples());
        outs[b].audio_rate = sc.sample_rate;
        griffin_lim(sc, *vocoder_, outs[b].mel.data(), outs[b].audio.data());
    }
}

Result<std::vector<float>> Model::audio_log_mel(const std::vector<float> & samples) const {
    if (!config_.has_encoder(Modality::Audio)) return incompatible("the firmware has no audio encoder");
    const auto & ec = config_.encoder(Modality::Audio);
    M4_RETURN_IF_ERROR(check_modal_input(ec, static_cast<int64_t>(samples.size())));
    std::vector<float> out(ec.n_frames() * ec.n_mels);
    model::audio_log_mel(ec, audio_fe_, samples.data(), static_cast<int64_t>(samples.size()), out.data());
    return out;
}

}  // namespace m4::model
