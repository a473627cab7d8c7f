#include "bench/tts.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "model/preprocess.h"
#include "model/speech_decoder.h"

namespace m4::bench {

Result<TtsExample> tts_example(const data::Example & ex, const model::Model & fw, const std::string & where) {
    const auto & c = fw.config();
    if (!c.speech_decoder) return incompatible(where + ": the firmware has no speech decoder (\"decoders.speech\")");
    const auto & sc = *c.speech_decoder;
    TtsExample t;
    t.word = std::string(ex.target);
    if (t.word.empty()) return invalid_argument(where + ": no text (target) for the rendering");
    auto ids = model::speech_symbols(sc, t.word);
    if (!ids) return ids.status().with_context(where);
    t.symbols      = std::move(ids).value();
    const size_t n = ex.payload_len / 2;
    if (n == 0) return invalid_argument(where + ": empty reference rendering");
    t.clip.resize(n);
    for (size_t k = 0; k < n; ++k) {
        int16_t v;
        std::memcpy(&v, ex.payload + 2 * k, 2);
        t.clip[k] = model::pcm16_to_float(v);
    }
    t.logmel.resize(static_cast<size_t>(sc.frames() * sc.n_mels));
    model::speech_log_mel(sc, *fw.speech_vocoder(), t.clip.data(), static_cast<int64_t>(n), t.logmel.data());
    return t;
}

namespace {

double mel_l1(const std::vector<float> & a, const std::vector<float> & b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += std::fabs(double(a[i]) - double(b[i]));
    return s / double(a.size());
}

// Which recogniser knows `word`, and its label index there (-1, -1: none).
std::pair<int, int> recogniser_for(const TtsRecognisers & rec, const std::string & word) {
    for (size_t a = 0; a < rec.adapters.size(); ++a) {
        const auto & labels = rec.adapters[a]->manifest().labels;
        for (size_t k = 0; k < labels.size(); ++k)
            if (labels[k] == word) return {static_cast<int>(a), static_cast<int>(k)};
    }
    return {-1, -1};
}

// The recogniser's label for `samples` (cut to its clip, zero-padded).
Result<int> recognise(const TtsRecognisers & rec, int a, const std::vector<float> & samples) {
    const auto & ec = rec.fw->config().encoder(model::Modality::Audio);
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(samples.size()), ec.clip_samples);
    model::Request r;
    r.adapter = &rec.adapters[a]->weights();
    M4_ASSIGN_OR_RETURN(r.signal, model::audio_input(samples.data(), n, ec));
    M4_ASSIGN_OR_RETURN(auto outs, rec.fw->run(model::Path::Encoder, model::Modality::Audio, {&r, 1}));
    const auto & h = outs[0].head;
    return static_cast<int>(std::max_element(h.begin(), h.end()) - h.begin());
}

}  // namespace

Result<EvalReport> evaluate_tts(const model::Model & fw, const adapter::Adapter * ad, const std::string & ad_path,
                                const TaskPlan & plan, const std::string & data_dir, const EvalOptions & o,
                                const TtsRecognisers & rec) {
    const auto t0 = std::chrono::steady_clock::now();
    if (!fw.config().has_decoder(model::Modality::Audio))
        return incompatible(plan.facts.name + ": the firmware has no speech decoder (\"decoders.speech\")");
    if (ad && ad->manifest().output != adapter::OutputKind::Audio)
        return incompatible(ad_path + ": a " + adapter::output_kind_name(ad->manifest().output) +
                            "-output adapter cannot score " + plan.facts.name + " (it needs audio output)");
    if (rec.fw && !rec.fw->config().has_encoder(model::Modality::Audio))
        return incompatible("the recogniser firmware has no audio encoder");
    for (size_t a = 0; a < rec.adapters.size(); ++a) {
        const auto & m = rec.adapters[a]->manifest();
        if (m.task != adapter::Task::Classify || m.path != model::Path::Encoder || m.modality != model::Modality::Audio)
            return invalid_argument(rec.paths[a] + ": a recogniser is an audio classify adapter on the encoder path");
    }
    const auto & sc = *fw.config().speech_decoder;
    const size_t G  = static_cast<size_t>(sc.frames() * sc.n_mels);
    // The trivial baseline: the mean training log-mel (the first 1,000 training renderings).
    M4_ASSIGN_OR_RETURN(data::Dataset train, data::Dataset::open(data_dir, plan.facts.name, "train"));
    std::vector<double> mean(G, 0.0);
    const size_t nt = std::min<size_t>(train.size(), 1000);
    for (size_t i = 0; i < nt; ++i) {
        M4_ASSIGN_OR_RETURN(TtsExample t, tts_example(train.at(i), fw, train.path() + " #" + std::to_string(i)));
        for (size_t k = 0; k < G; ++k) mean[k] += t.logmel[k] / double(nt);
    }
    const std::vector<float> mean_mel(mean.begin(), mean.end());

    M4_ASSIGN_OR_RETURN(data::Dataset ds, data::Dataset::open(data_dir, plan.facts.name, o.split));
    size_t n = ds.size();
    if (o.limit > 0) n = std::min(n, static_cast<size_t>(o.limit));
    if (n == 0) return invalid_argument(ds.path() + ": no examples to score");
    EvalReport rep;
    rep.task = plan.facts.name, rep.split = o.split, rep.adapter = ad_path;
    if (ad)
        rep.adapter_bytes = static_cast<int64_t>(ad->file_size()), rep.adapter_params = adapter_parameter_count(*ad);
    rep.examples = static_cast<int64_t>(n), rep.total = static_cast<int64_t>(ds.size());
    double l1 = 0, base_l1 = 0, guess = 0;
    int64_t known = 0, right = 0, ref_right = 0;
    const int64_t batch = std::max<int64_t>(1, std::min<int64_t>(o.batch, 16));
    for (size_t i0 = 0; i0 < n; i0 += static_cast<size_t>(batch)) {
        const size_t i1 = std::min(n, i0 + static_cast<size_t>(batch));
        std::vector<TtsExample> refs;
        std::vector<model::Request> reqs;
        for (size_t i = i0; i < i1; ++i) {
            M4_ASSIGN_OR_RETURN(TtsExample t, tts_example(ds.at(i), fw, ds.path() + " #" + std::to_string(i)));
            model::Request r;
            r.adapter = ad ? &ad->weights() : nullptr;
            r.tokens  = t.symbols;
            reqs.push_back(std::move(r));
            refs.push_back(std::move(t));
        }
        M4_ASSIGN_OR_RETURN(auto outs, fw.run(model::Path::Generator, model::Modality::Audio, reqs));
        for (size_t k = 0; k < outs.size(); ++k) {
            l1 += mel_l1(outs[k].mel, refs[k].logmel);
            base_l1 += mel_l1(mean_mel, refs[k].logmel);
            if (!rec.fw) continue;
            const auto [a, label] = recogniser_for(rec, refs[k].word);
            if (a < 0) continue;
            ++known;
            guess += 1.0 / double(rec.adapters[a]->manifest().labels.size());
            M4_ASSIGN_OR_RETURN(int got, recognise(rec, a, outs[k].audio));
            M4_ASSIGN_OR_RETURN(int ref, recognise(rec, a, refs[k].clip));
            right += got == label;
            ref_right += ref == label;
            rep.samples.push_back({rec.adapters[a]->manifest().labels[got], refs[k].word});
        }
    }
    const double d = double(n);
    if (known > 0) {
        rep.metric      = "intelligibility";
        rep.score       = double(right) / double(known);
        rep.chance      = double(ref_right) / double(known);
        rep.chance_rule = "the reference espeak-ng rendering through the same recogniser";
        rep.extra.push_back({"reference_intelligibility", rep.chance});
        rep.extra.push_back({"guessing", guess / double(known)});
        rep.extra.push_back({"recognised_words", double(known)});
    } else {
        rep.metric      = "mel_l1";
        rep.score       = l1 / d;
        rep.chance      = base_l1 / d;
        rep.chance_rule = "the mean training log-mel (per frame and band)";
    }
    rep.extra.push_back({"mel_l1", l1 / d});
    rep.extra.push_back({"mean_mel_l1", base_l1 / d});
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rep;
}

}  // namespace m4::bench
