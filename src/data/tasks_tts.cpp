// aud.tts (docs/benchmark.md): text-to-speech for the speech decoder (path 4 over text). Each
// example is one word: its text (`target`) and a reference rendering by espeak-ng (the audio
// payload: the word trimmed of silence, peak 0.9, starting 50 ms into a 1 s clip at 16 kHz, no
// noise, speaking rate 160 wpm).
//
// Splits (words and voices both held out):
//   train  English words (wamerican, 2–8 letters, the 20 recogniser words excluded) on the train
//          side of the global word split, spoken by the training voices
//   val    words on the held-out side of the word split, held-out voices
//   test   the 20 words the committed recognisers know (aud.kws's 10 keywords, aud.digits's 10
//          digits), never in train or val, each by every held-out voice
//   text   the training words as one document (the tokenizer corpus of recipes/tts-decoder.json)
// Test labels index the 20 words (labels), so intelligibility is defined by the recognisers.
#include <fmt/format.h>

#include <set>

#include "data/audio.h"
#include "data/corpus.h"
#include "data/sources.h"
#include "data/task.h"

namespace m4::data {

namespace {

// The label sets of aud.kws (keywords) and aud.digits (tasks_audio.cpp); the evaluation maps each
// test word onto a recogniser adapter's own labels by name, so a drift is an error there.
const std::vector<std::string> kTtsKeywords = {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"};
const std::vector<std::string> kTtsDigits   = {"zero", "one", "two",   "three", "four",
                                               "five", "six", "seven", "eight", "nine"};
constexpr size_t kTtsMaxLetters             = 8;

Result<std::vector<float>> render(const std::string & word, Voice v) {
    v.rate = 160;
    M4_ASSIGN_OR_RETURN(auto wav, synthesize(word, v));
    std::vector<float> clip(kAudioRate, 0.0f), w = trim_silence(wav);
    const size_t at = kAudioRate / 20;
    for (size_t i = 0; i < w.size() && at + i < clip.size(); ++i) clip[at + i] = w[i];
    return clip;
}

Status build_tts(TaskOutput & out) {
    std::vector<std::string> labels = kTtsKeywords;
    labels.insert(labels.end(), kTtsDigits.begin(), kTtsDigits.end());
    out.set_labels(labels);
    const std::set<std::string> reserved(labels.begin(), labels.end());
    M4_ASSIGN_OR_RETURN(auto all, load_words(word_lists()[0]));
    std::vector<std::string> train_words, val_words;
    std::set<std::string> seen;
    for (auto & w : all) {
        const std::string l = to_lower_ascii(w);
        if (!is_ascii_alpha_word(w) || w != l || w.size() < 2 || w.size() > kTtsMaxLetters || reserved.count(l) ||
            !seen.insert(l).second)
            continue;
        (test_side("word:" + l) ? val_words : train_words).push_back(l);
    }
    std::vector<const SpeakerSpec *> train_voices, test_voices;
    for (const auto & s : english_speakers()) (s.test ? test_voices : train_voices).push_back(&s);
    auto put_word = [&](DatasetWriter * wr, const std::string & word, const SpeakerSpec * s, int label) -> Status {
        M4_ASSIGN_OR_RETURN(auto clip, render(word, s->voice));
        ExampleIn ex = ExampleIn::audio(clip);
        ex.target    = word;
        ex.label     = label;
        ex.group     = uint32_t(s - english_speakers().data());
        return put(wr, ex);
    };
    {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split("train"));
        Rng rng        = out.rng("train");
        const size_t n = out.n(12000, 24);
        for (size_t i = 0; i < n; ++i) {
            M4_RETURN_IF_ERROR(put_word(wr, rng.pick(train_words), rng.pick(train_voices), -1));
            if (i % 500 == 499) out.progress(fmt::format("train: {}/{} words", i + 1, n));
        }
    }
    {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split("val"));
        Rng rng        = out.rng("val");
        const size_t n = out.n(200, 8);
        for (size_t i = 0; i < n; ++i) M4_RETURN_IF_ERROR(put_word(wr, rng.pick(val_words), rng.pick(test_voices), -1));
    }
    {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split("test"));
        const size_t per_word = std::max<size_t>(1, std::min(test_voices.size(), out.n(test_voices.size(), 1)));
        for (size_t v = 0; v < per_word; ++v)
            for (size_t k = 0; k < labels.size(); ++k)
                M4_RETURN_IF_ERROR(put_word(wr, labels[k], test_voices[v], static_cast<int>(k)));
        out.progress(fmt::format("test: {} words × {} held-out voices", labels.size(), per_word));
    }
    {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split("text", Modality::Text));
        std::string doc;
        for (const auto & w : train_words) doc += w + "\n";
        M4_RETURN_IF_ERROR(put(wr, ExampleIn::text(doc)));
    }
    out.extra()["held_out_words"] = true;
    out.extra()["split_notes"]    = {
           {"train", "English words (2-8 letters) on the train side of the word split, training voices"},
           {"val", "held-out words, held-out voices"},
           {"test", "the 20 recogniser words (aud.kws keywords + aud.digits digits), every held-out voice"},
           {"text", "the training words, one document (tokenizer corpus)"}};
    out.extra()["rendering"] = "espeak-ng at 160 wpm, trimmed, peak 0.9, at 50 ms in a 1 s clip, 16 kHz, no noise";
    return Status::ok();
}

}  // namespace

void register_tts_tasks(std::vector<Task> & t) {
    t.push_back({{"aud.tts",
                  "audio",
                  Modality::Audio,
                  "mel_regress",
                  "generator",
                  "intelligibility+mel_l1",
                  "generated",
                  "text-to-speech of single words: text → log-mel (speech decoder) → Griffin-Lim; references are "
                  "espeak-ng renderings; scored by log-mel distance and by the committed keyword/digit recognisers",
                  "words: test = the 20 recogniser words, val = held-out dictionary words (never in train); voices: "
                  "the held-out espeak-ng accents and variants",
                  {"espeak-ng", "espeak-ng-data", "libespeak-ng1", "wamerican"}},
                 build_tts});
}

}  // namespace m4::data
