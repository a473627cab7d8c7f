#include "bench/samples.h"

#include "bench/super_resolution.h"
#include "bench/tts.h"

#include <algorithm>
#include <cstring>

#include "model/preprocess.h"

namespace m4::bench {
namespace {

std::string fill(const std::string & tmpl, std::string_view input) {
    return model::apply_prompt_template(tmpl, input);
}

std::string example_name(const data::Dataset & ds, size_t i) {
    return ds.path() + " #" + std::to_string(i);
}

}  // namespace

Result<std::vector<float>> model_signal(const data::Example & ex, data::Modality m, const model::EncoderConfig & c,
                                        const std::string & where) {
    switch (m) {
        case data::Modality::Image: {
            const uint32_t h = ex.dims[0], w = ex.dims[1], ch = ex.dims[2];
            if ((ch != 1 && ch != 3) || size_t(h) * w * ch != ex.payload_len || h == 0 || w == 0)
                return invalid_argument(where + ": image payload does not match its dims");
            auto out = model::image_input(ex.payload, h, w, static_cast<int>(ch), c);
            if (!out.is_ok()) return out.status().with_context(where);
            return out;
        }
        case data::Modality::Audio: {
            // 16-bit PCM; a clip longer than the encoder's is cut to it (the only step the serving
            // path does not repeat: it refuses such a file instead).
            const size_t n = std::min(ex.payload_len / 2, static_cast<size_t>(c.clip_samples));
            if (n == 0) return invalid_argument(where + ": empty audio clip");
            std::vector<float> pcm(n);
            for (size_t k = 0; k < n; ++k) {
                int16_t v;
                std::memcpy(&v, ex.payload + 2 * k, 2);
                pcm[k] = model::pcm16_to_float(v);
            }
            auto out = model::audio_input(pcm.data(), static_cast<int64_t>(n), c);
            if (!out.is_ok()) return out.status().with_context(where);
            return out;
        }
        case data::Modality::Imu: {
            // Rows of 6 floats; a window longer than the encoder's is cut to it (as for audio).
            const size_t rows = std::min(ex.payload_len / (6 * sizeof(float)), static_cast<size_t>(c.window));
            if (rows == 0) return invalid_argument(where + ": empty IMU window");
            std::vector<float> vals(rows * 6);
            std::memcpy(vals.data(), ex.payload, vals.size() * sizeof(float));
            auto out = model::imu_input(vals.data(), static_cast<int64_t>(rows), c);
            if (!out.is_ok()) return out.status().with_context(where);
            return out;
        }
        case data::Modality::Text:
            break;
    }
    return invalid_argument(where + ": a text example has no modality signal");
}

std::string text_input(const data::Example & ex) {
    if (ex.prompt.empty()) return std::string(ex.text());
    return std::string(ex.prompt) + " " + std::string(ex.text());
}

std::string prompt_text(const data::Example & ex, data::Modality m, const SampleRecipe & r) {
    return m == data::Modality::Text ? fill(r.prompt, text_input(ex)) : fill(r.prompt, ex.prompt);
}

Result<train::Sample> to_sample(const data::Dataset & ds, size_t i, const SampleRecipe & r, const model::Model & fw) {
    const data::Example ex  = ds.at(i);
    const std::string where = example_name(ds, i);
    const auto & tok        = fw.tokenizer();
    train::Sample s;
    if (r.objective == train::Objective::Reconstruct) {
        // img.super_resolution: examples alternate between ×2 and ×4 reductions of the original.
        if (!fw.config().has_decoder(model::Modality::Image))
            return incompatible(where + ": the firmware has no image decoder");
        M4_ASSIGN_OR_RETURN(SrPair p, sr_pair(ex, *fw.config().image_decoder, kSrScales[i % 2], where));
        s.signal = std::move(p.input);
        s.target = std::move(p.target);
        return s;
    }
    if (r.objective == train::Objective::Draw) {
        // img.draw_scene: the description → the stored drawing, on the decoder's grid.
        if (!fw.config().has_draw_path())
            return incompatible(where + ": the firmware has no image decoder with a projector from the backbone");
        if (ex.prompt.empty()) return invalid_argument(where + ": no description (prompt)");
        auto ids = tok.encode(std::string(ex.prompt));
        if (!ids) return ids.status().with_context(where);
        s.tokens           = std::move(ids).value();
        const int64_t S    = fw.config().image_decoder->image_size;
        const int64_t room = fw.config().backbone.max_seq - 1 - fw.config().image_decoder->tokens();
        if (room <= 0)
            return invalid_argument(where + ": the backbone has no room for text before the decoder queries");
        if (int64_t(s.tokens.size()) > room) s.tokens.resize(size_t(room));
        M4_ASSIGN_OR_RETURN(const std::vector<uint8_t> px, sr_original(ex, S, where));
        s.target.resize(px.size());
        for (size_t k = 0; k < px.size(); ++k) s.target[k] = (float(px[k]) / 255.0f - 0.5f) / 0.5f;
        return s;
    }
    if (r.objective == train::Objective::MelRegress) {
        // aud.tts: the word's speech symbols → the reference rendering's log-mel.
        M4_ASSIGN_OR_RETURN(TtsExample t, tts_example(ex, fw, where));
        s.tokens = std::move(t.symbols);
        s.target = std::move(t.logmel);
        return s;
    }
    const bool modal = ds.modality() != data::Modality::Text;
    // Modality input: every path but the backbone's reads it (contrastive too: encoder ↔ text).
    if (modal && r.path != model::Path::Backbone) {
        const auto mm = static_cast<model::Modality>(static_cast<int>(ds.modality()));
        if (!fw.config().has_encoder(mm))
            return invalid_argument(where + ": the firmware has no " + data::modality_name(ds.modality()) + " encoder");
        M4_ASSIGN_OR_RETURN(s.signal, model_signal(ex, ds.modality(), fw.config().encoder(mm), where));
    }
    if (!modal && r.path != model::Path::Backbone)
        return invalid_argument(where + ": a text example needs the backbone path");
    // Text: the filled prompt (backbone: always; full: when non-blank).
    auto encode = [&](const std::string & text, std::vector<int32_t> * ids) -> Status {
        if (text.find_first_not_of(" \t\n") == std::string::npos) return Status::ok();
        auto r2 = tok.encode(text);
        if (!r2) return r2.status().with_context(where);
        ids->insert(ids->end(), r2->begin(), r2->end());
        return Status::ok();
    };
    switch (r.objective) {
        case train::Objective::Reconstruct:
        case train::Objective::Draw:
        case train::Objective::MelRegress:
            break;  // handled above
        case train::Objective::Classify:
            if (ex.label < 0) return invalid_argument(where + ": no class label");
            s.label = ex.label;
            if (r.path != model::Path::Encoder)
                M4_RETURN_IF_ERROR(encode(prompt_text(ex, ds.modality(), r), &s.tokens));
            break;
        case train::Objective::Regress:
            s.target = {(ex.value - r.value_shift) / (r.value_scale != 0.0f ? r.value_scale : 1.0f)};
            if (r.path != model::Path::Encoder)
                M4_RETURN_IF_ERROR(encode(prompt_text(ex, ds.modality(), r), &s.tokens));
            break;
        case train::Objective::Contrastive:
        case train::Objective::Embed: {
            // The caption is the text side (contrastive pretraining pairs modality with text).
            const std::string caption(ex.target.empty() ? ex.text() : ex.target);
            M4_RETURN_IF_ERROR(encode(caption, &s.tokens));
            if (s.tokens.empty()) return invalid_argument(where + ": no caption text");
            break;
        }
        case train::Objective::LanguageModel: {
            if (r.path != model::Path::Encoder)
                M4_RETURN_IF_ERROR(encode(prompt_text(ex, ds.modality(), r), &s.tokens));
            const size_t prompt_len = s.tokens.size();
            // Plain text (no target): the whole text is modelled; otherwise prompt → target.
            if (ex.target.empty() && !modal && r.prompt == "{input}") {
                s.loss_mask.assign(s.tokens.size(), 1);
            } else {
                M4_RETURN_IF_ERROR(encode(std::string(ex.target), &s.tokens));
                s.loss_mask.assign(prompt_len, 0);
                s.loss_mask.resize(s.tokens.size(), 1);
            }
            if (r.eos_after_target) {
                s.tokens.push_back(tok.eos_id());
                s.loss_mask.push_back(1);
            }
            if (s.tokens.empty()) return invalid_argument(where + ": no text to model");
            break;
        }
    }
    // Longer texts are cut to what the backbone holds: BOS + modality tokens (full path) + text.
    if (r.path != model::Path::Encoder && r.objective != train::Objective::Contrastive &&
        r.objective != train::Objective::Embed) {
        int64_t room = fw.config().backbone.max_seq - 1;
        if (r.path == model::Path::Full && modal)
            room -= fw.config().encoder(static_cast<model::Modality>(static_cast<int>(ds.modality()))).tokens();
        if (room <= 0) return invalid_argument(where + ": the backbone has no room for text after the modality tokens");
        if (int64_t(s.tokens.size()) > room) {
            s.tokens.resize(size_t(room));
            if (!s.loss_mask.empty()) s.loss_mask.resize(size_t(room));
        }
    }
    // Contrastive captions go through the backbone's text tower: BOS + text must fit too.
    if (r.objective == train::Objective::Contrastive && int64_t(s.tokens.size()) > fw.config().backbone.max_seq - 1)
        s.tokens.resize(size_t(std::max<int64_t>(1, fw.config().backbone.max_seq - 1)));
    return s;
}

bool in_validation(const data::Example & ex, double val_share) {
    if (val_share <= 0) return false;
    uint32_t v;
    std::memcpy(&v, ex.hash.data() + 4, sizeof v);  // the content hash: stable across builds and seeds
    return v < val_share * 4294967296.0;
}

Result<std::unique_ptr<DatasetSource>> DatasetSource::create(train::TaskSpec spec, SampleRecipe recipe,
                                                             const std::string & data_dir, const std::string & task,
                                                             const model::Model & fw, const SourceOptions & o) {
    M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(data_dir, task, o.split));
    std::unique_ptr<DatasetSource> src(new DatasetSource(std::move(spec), std::move(recipe), std::move(ds), fw));
    std::vector<uint32_t> val_idx;
    std::vector<int64_t> per_class_count;
    for (size_t i = 0; i < src->ds_.size(); ++i) {
        const data::Example ex = src->ds_.at(i);
        if (in_validation(ex, o.val_share)) {
            val_idx.push_back(static_cast<uint32_t>(i));
            continue;
        }
        src->train_idx_.push_back(static_cast<uint32_t>(i));
    }
    if (o.per_class > 0) {
        // Few-shot: the first `per_class` examples of each class in a seeded order.
        std::vector<uint32_t> order = src->train_idx_;
        train::Rng rng(o.subset_seed);
        for (size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[rng.below(int64_t(k))]);
        std::vector<uint32_t> picked;
        for (uint32_t i : order) {
            const int32_t y = src->ds_.at(i).label;
            if (y < 0) continue;
            if (size_t(y) >= per_class_count.size()) per_class_count.resize(size_t(y) + 1, 0);
            if (per_class_count[size_t(y)] < o.per_class) {
                ++per_class_count[size_t(y)];
                picked.push_back(i);
            }
        }
        std::sort(picked.begin(), picked.end());
        src->train_idx_ = std::move(picked);
    } else if (o.max_train > 0 && int64_t(src->train_idx_.size()) > o.max_train) {
        src->train_idx_.resize(static_cast<size_t>(o.max_train));
    }
    if (src->train_idx_.empty())
        return invalid_argument(src->ds_.path() + ": no training examples left after the validation share");
    for (size_t k = 0; k < val_idx.size() && int64_t(k) < o.eval_size; ++k) {
        M4_ASSIGN_OR_RETURN(train::Sample s, to_sample(src->ds_, val_idx[k], src->recipe_, fw));
        src->eval_.push_back(std::move(s));
    }
    return src;
}

Status DatasetSource::next_batch(train::Rng & rng, int64_t n, train::Batch * out) {
    out->clear();
    for (int64_t k = 0; k < n; ++k) {
        const uint32_t i = train_idx_[static_cast<size_t>(rng.below(static_cast<int64_t>(train_idx_.size())))];
        M4_ASSIGN_OR_RETURN(train::Sample s, to_sample(ds_, i, recipe_, fw_));
        out->push_back(std::move(s));
    }
    return Status::ok();
}

Result<std::unique_ptr<TextWindowSource>> TextWindowSource::create(train::TaskSpec spec, const std::string & data_dir,
                                                                   const std::string & task, const model::Model & fw,
                                                                   const TextWindowOptions & o) {
    M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(data_dir, task, o.split));
    if (ds.modality() != data::Modality::Text)
        return invalid_argument(ds.path() + ": not a text split (language modelling needs text documents)");
    std::unique_ptr<TextWindowSource> src(new TextWindowSource(std::move(spec), std::move(ds), fw));
    const int64_t room = fw.config().backbone.max_seq - 1;
    if (room < 1) return invalid_argument(src->ds_.path() + ": the backbone has no room for text");
    src->window_bytes_ = o.window_bytes > 0 ? o.window_bytes : 6 * room;
    std::vector<uint32_t> val;
    uint64_t units = 0;
    for (size_t i = 0; i < src->ds_.size(); ++i) {
        const data::Example ex = src->ds_.at(i);
        if (ex.payload_len == 0) continue;
        if (in_validation(ex, o.val_share)) {
            val.push_back(static_cast<uint32_t>(i));
            continue;
        }
        units += (ex.payload_len + uint64_t(src->window_bytes_) - 1) / uint64_t(src->window_bytes_);
        src->docs_.push_back(static_cast<uint32_t>(i));
        src->unit_end_.push_back(units);
    }
    if (src->docs_.empty()) return invalid_argument(src->ds_.path() + ": no training documents");
    for (size_t k = 0; k < val.size() && int64_t(k) < o.eval_size; ++k) {
        M4_ASSIGN_OR_RETURN(train::Sample s, src->window(val[k], 0));
        src->eval_.push_back(std::move(s));
    }
    return src;
}

Result<train::Sample> TextWindowSource::window(size_t i, uint64_t offset) const {
    const data::Example ex     = ds_.at(i);
    const std::string_view doc = ex.text();
    const size_t wb            = static_cast<size_t>(window_bytes_);
    size_t a                   = std::min<size_t>(offset, doc.size());
    if (a > 0) {
        // Back to the start of the line (within half a window), else forward to the next word.
        const size_t nl = doc.rfind('\n', a - 1);
        if (nl != std::string_view::npos && a - (nl + 1) <= wb / 2) {
            a = nl + 1;
        } else {
            const size_t sp = doc.find_first_of(" \n", a);
            a               = sp == std::string_view::npos ? doc.size() : sp + 1;
        }
    }
    if (a >= doc.size()) a = 0;  // nothing after the offset: the document's start
    size_t b = std::min(doc.size(), a + wb);
    while (b > a && b < doc.size() && (static_cast<uint8_t>(doc[b]) & 0xC0) == 0x80) --b;  // whole UTF-8 chars
    const std::string where = ds_.path() + " #" + std::to_string(i);
    train::Sample s;
    const std::string text(doc.substr(a, b - a));
    if (text.find_first_not_of(" \t\n") != std::string::npos) {
        auto ids = fw_.tokenizer().encode(text);
        if (!ids) return ids.status().with_context(where);
        s.tokens = std::move(*ids);
    }
    const size_t room = static_cast<size_t>(fw_.config().backbone.max_seq - 1);
    if (s.tokens.size() > room)
        s.tokens.resize(room);
    else if (b == doc.size() && s.tokens.size() < room)
        s.tokens.push_back(fw_.tokenizer().eos_id());
    if (s.tokens.empty()) s.tokens.push_back(fw_.tokenizer().eos_id());
    s.loss_mask.assign(s.tokens.size(), 1);
    return s;
}

Status TextWindowSource::next_batch(train::Rng & rng, int64_t n, train::Batch * out) {
    out->clear();
    for (int64_t k = 0; k < n; ++k) {
        const uint64_t u = static_cast<uint64_t>(rng.below(static_cast<int64_t>(unit_end_.back())));
        const size_t d =
            static_cast<size_t>(std::upper_bound(unit_end_.begin(), unit_end_.end(), u) - unit_end_.begin());
        const uint32_t i = docs_[d];
        const size_t len = ds_.at(i).payload_len;
        // A document that fits in one window starts at 0; a longer one at a random byte.
        const uint64_t off = len <= size_t(window_bytes_) ? 0 : static_cast<uint64_t>(rng.below(int64_t(len)));
        M4_ASSIGN_OR_RETURN(train::Sample s, window(i, off));
        out->push_back(std::move(s));
    }
    return Status::ok();
}

}  // namespace m4::bench
