// The pretraining corpus (`m4fw data build pretrain`): text for language modelling and
// modality–caption pairs for image, audio and IMU, drawn ONLY from training-side sources (the
// same global assignments as the tasks: train-side fortunes, WordNet synsets, words, gettext
// catalogues, fonts, voices; simulator and scene seeds of their own streams). `m4fw data audit`
// checks that no test example of any task occurs here.
#include <fmt/format.h>

#include <functional>
#include <memory>
#include <mutex>

#include "data/audio.h"
#include "data/corpus.h"
#include "data/imu_sim.h"
#include "data/raster.h"
#include "data/scenes.h"
#include "data/sources.h"
#include "data/task.h"

namespace m4::data {

namespace {

// The pretraining text documents, in a fixed order; `n(full)` scales counts (TaskOutput::n).
Status pretrain_text_docs(const std::function<size_t(size_t)> & n, const std::function<Status(std::string)> & emit) {
    M4_ASSIGN_OR_RETURN(auto fortunes, load_fortunes(english_fortune_files()));
    for (const auto & f : fortunes)
        if (!f.test) M4_RETURN_IF_ERROR(emit(f.text));
    M4_ASSIGN_OR_RETURN(auto syn, load_wordnet());
    const size_t n_syn = n(syn.size());
    for (size_t i = 0; i < syn.size() && i < n_syn; ++i) {
        const auto & s = syn[i];
        if (s.test) continue;
        std::string doc = join(s.words, ", ") + " (" + wordnet_lexnames()[s.lexfile] + "): " + s.gloss + ".";
        for (const auto & e : s.examples) doc += "\n" + e;
        M4_RETURN_IF_ERROR(emit(std::move(doc)));
    }
    static const std::vector<std::pair<std::string, std::string>> langs = {
        {"de", "German"}, {"fr", "French"}, {"es", "Spanish"}};
    for (const auto & d : mo_domains()) {
        if (d.test) continue;
        for (const auto & [code, name] : langs) {
            const std::string path = "/usr/share/locale/" + code + "/LC_MESSAGES/" + d.domain + ".mo";
            if (!file_exists(path)) continue;
            M4_ASSIGN_OR_RETURN(auto pairs, load_mo(path));
            std::string doc;
            for (size_t i = 0; i < pairs.size() && i < n(pairs.size()); ++i)
                doc += "English: " + pairs[i].first + " | " + name + ": " + utf8_clean(pairs[i].second) + "\n";
            M4_RETURN_IF_ERROR(emit(std::move(doc)));
        }
    }
    return Status::ok();
}

Status pretrain_text(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split("text", Modality::Text));
    M4_RETURN_IF_ERROR(pretrain_text_docs([&](size_t full) { return out.n(full); },
                                          [&](std::string doc) { return put(wr, ExampleIn::text(doc)); }));
    out.progress(fmt::format("text: {} documents", wr->count()));
    return Status::ok();
}

Status pretrain_images(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split("image_caption", Modality::Image));
    Rng rng = out.rng("images");
    // Fashion-MNIST training images (every third) with their class as a caption.
    static const char * fm[] = {"t-shirt", "pair of trousers", "pullover", "dress",     "coat", "sandal",
                                "shirt",   "sneaker",          "bag",      "ankle boot"};
    M4_ASSIGN_OR_RETURN(auto img, read_gz("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"));
    M4_ASSIGN_OR_RETURN(auto lab, read_gz("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz"));
    const size_t n_fm = std::min<size_t>(out.n(20000), (img.size() - 16) / 784);
    for (size_t i = 0; i < n_fm; ++i) {
        size_t k = i * 3 % 60000;
        std::vector<uint8_t> px(img.begin() + 16 + k * 784, img.begin() + 16 + (k + 1) * 784);
        ExampleIn ex = ExampleIn::image(std::move(px), 28, 28, 1);
        ex.target    = std::string("a photo of a ") + fm[lab[8 + k]];
        M4_RETURN_IF_ERROR(put(wr, ex));
    }
    // Generated scenes from this corpus's own seed stream.
    for (size_t i = 0, n = out.n(10000); i < n; ++i) {
        Scene s      = make_scene(rng, 1, 4, 64);
        ExampleIn ex = ExampleIn::image(s.image.to_u8(), 64, 64, 3);
        ex.target    = scene_caption(s);
        M4_RETURN_IF_ERROR(put(wr, ex));
    }
    // Training-side words in training-side fonts.
    M4_ASSIGN_OR_RETURN(auto words, load_words(word_lists()[0]));
    std::vector<std::string> tw;
    for (auto & w : words)
        if (is_ascii_alpha_word(w) && w.size() >= 3 && w.size() <= 10 && !test_side("word:" + to_lower_ascii(w)))
            tw.push_back(w);
    std::vector<std::pair<std::string, Font>> fonts;
    for (const auto & f : font_files())
        if (!f.test) {
            M4_ASSIGN_OR_RETURN(Font font, Font::load(f.path));
            fonts.emplace_back(f.family, std::move(font));
        }
    for (size_t i = 0, n = out.n(10000); i < n; ++i) {
        const auto & w = rng.pick(tw);
        const auto & f = fonts[rng.below(fonts.size())];
        Canvas c       = place_ink(f.second.render(w, 40), 128, 32, 0.9f, &rng, 0.03f, 0.04f);
        ExampleIn ex   = ExampleIn::image(c.to_u8(), 32, 128, 1);
        ex.target      = "the word \"" + w + "\" written in " + f.first;
        M4_RETURN_IF_ERROR(put(wr, ex));
    }
    out.progress(fmt::format("image_caption: {} pairs", wr->count()));
    return Status::ok();
}

Status pretrain_audio(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split("audio_caption", Modality::Audio));
    Rng rng = out.rng("audio");
    M4_ASSIGN_OR_RETURN(auto words, load_words(word_lists()[0]));
    std::vector<std::string> tw;
    for (auto & w : words)
        if (is_ascii_alpha_word(w) && w.size() >= 3 && w.size() <= 9 && w == to_lower_ascii(w) &&
            !test_side("word:" + w))
            tw.push_back(w);
    std::vector<const SpeakerSpec *> sp;
    for (const auto & s : english_speakers())
        if (!s.test) sp.push_back(&s);
    for (size_t i = 0, n = out.n(3000); i < n; ++i) {
        const auto * s = rng.pick(sp);
        const auto & w = rng.pick(tw);
        Voice v        = s->voice;
        v.rate         = 140 + int(rng.below(60));
        M4_ASSIGN_OR_RETURN(auto wav, synthesize(w, v));
        ExampleIn ex = ExampleIn::audio(fit_clip(trim_silence(wav), kAudioRate, rng));
        ex.target    = std::string(s->male ? "a man" : "a woman") + " saying \"" + w + "\"";
        M4_RETURN_IF_ERROR(put(wr, ex));
        if (i % 500 == 499) out.progress(fmt::format("audio_caption: {}/{}", i + 1, n));
    }
    return Status::ok();
}

Status pretrain_imu(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split("imu_caption", Modality::Imu));
    Rng rng = out.rng("imu");
    for (size_t i = 0, n = out.n(5000); i < n; ++i) {
        Subject b         = Subject::draw(rng);  // a fresh simulated person each time, own stream
        SensorErrors e    = SensorErrors::draw(rng);
        auto a            = static_cast<Activity>(rng.below(kActivityCount));
        auto p            = static_cast<Placement>(rng.below(kPlacementCount));
        ActivityParams ap = activity_params(a, b, rng);
        Motion m          = activity_motion(a, p, b, ap, random_rotation(rng), rng);
        ExampleIn ex      = ExampleIn::imu(sense(m, rng.uniform(1, 30), out.imu_rows(), e, rng));
        ex.target         = fmt::format("{} with the phone at the {}", activity_name(a), placement_name(p));
        M4_RETURN_IF_ERROR(put(wr, ex));
    }
    return Status::ok();
}

Status build_pretrain(TaskOutput & out) {
    M4_RETURN_IF_ERROR(pretrain_text(out));
    M4_RETURN_IF_ERROR(pretrain_images(out));
    M4_RETURN_IF_ERROR(pretrain_audio(out));
    return pretrain_imu(out);
}

}  // namespace

void register_pretrain_task(std::vector<Task> & t) {
    std::vector<std::string> pk = {"fortunes-min", "fortunes",  "wordnet-base",   "dataset-fashion-mnist",
                                   "wamerican",    "espeak-ng", "espeak-ng-data", "libespeak-ng1"};
    for (const auto & p : packages_of_fonts()) pk.push_back(p);
    for (const auto & d : mo_domains())
        if (!d.test) pk.push_back(d.package);
    t.push_back({{"pretrain", "pretrain", Modality::Text, "pretrain", "all", "-", "real+generated",
                  "pretraining corpus: text documents (train-side fortunes, WordNet, gettext pairs) and "
                  "image/audio/IMU–caption pairs from training-side sources only",
                  "everything any task holds out", pk},
                 build_pretrain});
}

Result<const HashSet *> pretrain_text_index() {
    static std::mutex mu;
    static std::unique_ptr<HashSet> index;
    std::lock_guard<std::mutex> lock(mu);
    if (index) return index.get();
    auto built  = std::make_unique<HashSet>();
    auto insert = [&](std::string doc) {
        built->insert(text_hash(doc));
        size_t a = 0;
        while (a < doc.size()) {
            size_t b = doc.find('\n', a);
            if (b == std::string::npos) b = doc.size();
            if (b > a) built->insert(text_hash(std::string_view(doc).substr(a, b - a)));
            a = b + 1;
        }
        return Status::ok();
    };
    M4_RETURN_IF_ERROR(pretrain_text_docs([](size_t full) { return full; }, insert));
    index = std::move(built);
    return index.get();
}

}  // namespace m4::data
