// Audio tasks: 16 kHz mono clips (stored as i16). Speech is synthesised by espeak-ng and flite
// (generated, labelled so); spoken digits also have a small real test set (Asterisk prompts).
// Test splits hold out whole voices (accents × voice variants), and where words are the content,
// held-out words too.
#include <fmt/format.h>

#include <set>

#include "data/audio.h"
#include "data/corpus.h"
#include "data/sources.h"
#include "data/task.h"

namespace m4::data {

namespace {

const std::vector<std::string> kTts = {"espeak-ng", "espeak-ng-data", "libespeak-ng1"};

std::vector<const SpeakerSpec *> speakers(bool test) {
    std::vector<const SpeakerSpec *> out;
    for (const auto & s : english_speakers())
        if (s.test == test) out.push_back(&s);
    return out;
}

// One spoken clip of `text` by `sp` at a random speaking rate, placed in `seconds`, with noise.
Result<std::vector<float>> speak(const std::string & text, Voice v, Rng & rng, double seconds, int rate_lo = 140,
                                 int rate_hi = 200) {
    v.rate = rate_lo + int(rng.below(size_t(rate_hi - rate_lo + 1)));
    M4_ASSIGN_OR_RETURN(auto wav, synthesize(text, v));
    return fit_clip(trim_silence(wav), size_t(seconds * kAudioRate), rng);
}

Result<std::pair<std::vector<std::string>, std::vector<std::string>>> english_words(
    const std::set<std::string> & skip) {
    M4_ASSIGN_OR_RETURN(auto words, load_words(word_lists()[0]));
    std::vector<std::string> tr, te;
    for (auto & w : words) {
        std::string l = to_lower_ascii(w);
        if (!is_ascii_alpha_word(w) || w.size() < 3 || w.size() > 9 || w != l || skip.count(l)) continue;
        (test_side("word:" + l) ? te : tr).push_back(w);
    }
    return std::make_pair(tr, te);
}

const std::vector<std::string> kKeywords = {"yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"};
const std::vector<std::string> kDigits   = {"zero", "one", "two",   "three", "four",
                                            "five", "six", "seven", "eight", "nine"};

std::set<std::string> reserved_words() {
    std::set<std::string> s(kKeywords.begin(), kKeywords.end());
    s.insert(kDigits.begin(), kDigits.end());
    return s;
}

// --- aud.kws: 10 keywords + unknown word + silence ---------------------------------------------
Status build_kws(TaskOutput & out) {
    auto labels = kKeywords;
    labels.push_back("_unknown_");
    labels.push_back("_silence_");
    out.set_labels(labels);
    M4_ASSIGN_OR_RETURN(auto words, english_words(reserved_words()));
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        auto sp        = speakers(t);
        const size_t n = out.n(t ? 1200 : 6000, 24);
        for (size_t i = 0; i < n; ++i) {
            const int label = int(i % labels.size());
            std::vector<float> clip;
            const SpeakerSpec * s = rng.pick(sp);
            if (label == 11) {
                clip.assign(kAudioRate, 0.0f);
                clip = fit_clip(clip, kAudioRate, rng, 0, 0);
                for (float & v : clip) v = float(rng.normal(0, rng.uniform(0.001, 0.02)));
            } else {
                const std::string & w = label == 10 ? rng.pick(t ? words.second : words.first) : kKeywords[label];
                M4_ASSIGN_OR_RETURN(clip, speak(w, s->voice, rng, 1.0));
            }
            ExampleIn ex = ExampleIn::audio(clip);
            ex.label     = label;
            ex.group     = uint32_t(s - english_speakers().data());
            M4_RETURN_IF_ERROR(put(wr, ex));
            if (i % 500 == 499) out.progress(fmt::format("{}: {}/{} clips", t ? "test" : "train", i + 1, n));
        }
    }
    return Status::ok();
}

// --- aud.digits: spoken digits; test = held-out espeak voices + flite voices; test_real = Asterisk
Status build_digits(TaskOutput & out) {
    out.set_labels(kDigits);
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        auto sp        = speakers(t);
        const size_t n = out.n(t ? 600 : 4000, 20);
        for (size_t i = 0; i < n; ++i) {
            const int d  = int(i % 10);
            Voice v      = rng.pick(sp)->voice;
            uint32_t grp = 0;
            if (t && i % 3 == 0) {  // a third of the test clips come from another synthesiser
                static const std::vector<std::string> fl = {"kal", "awb", "rms", "slt"};
                v.name                                   = "flite:" + fl[(i / 3) % fl.size()];
                grp                                      = 1;
            }
            M4_ASSIGN_OR_RETURN(auto clip, speak(kDigits[d], v, rng, 1.0));
            ExampleIn ex = ExampleIn::audio(clip);
            ex.label     = d;
            ex.group     = grp;
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    // Real recorded speech: one professional speaker (Allison Smith, Asterisk prompts), 8 kHz
    // telephone band resampled to 16 kHz. Ten clips, no augmentation: a sanity check of transfer.
    M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split("test_real"));
    for (int d = 0; d < 10; ++d) {
        int rate = 0;
        M4_ASSIGN_OR_RETURN(
            auto w, read_wav("/usr/share/asterisk/sounds/en_US_f_Allison/digits/" + std::to_string(d) + ".wav", &rate));
        auto x = trim_silence(resample(w, rate, kAudioRate));
        x.resize(kAudioRate, 0.0f);
        ExampleIn ex = ExampleIn::audio(x);
        ex.label     = d;
        ex.group     = 2;
        M4_RETURN_IF_ERROR(put(wr, ex));
    }
    out.extra()["split_notes"] = {{"test", "2/3 held-out espeak-ng voices (group 0), 1/3 flite voices (group 1)"},
                                  {"test_real", "10 real recordings (Asterisk en_US_f_Allison digits, 8 kHz source)"}};
    return Status::ok();
}

// --- aud.speaker_id: which of 16 synthetic speakers says a word; held-out words --------------
Status build_speaker(TaskOutput & out) {
    auto sp = speakers(false);
    std::vector<const SpeakerSpec *> pick;
    std::vector<std::string> labels;
    for (size_t i = 0; i < sp.size() && pick.size() < 16; i += sp.size() / 16) {
        pick.push_back(sp[i]);
        labels.push_back(sp[i]->id);
    }
    out.set_labels(labels);
    M4_ASSIGN_OR_RETURN(auto words, english_words(reserved_words()));
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng          = out.rng(t ? "test" : "train");
        const size_t per = out.n(t ? 40 : 160, 2);
        for (size_t k = 0; k < pick.size(); ++k)
            for (size_t i = 0; i < per; ++i) {
                M4_ASSIGN_OR_RETURN(auto clip,
                                    speak(rng.pick(t ? words.second : words.first), pick[k]->voice, rng, 1.0));
                ExampleIn ex = ExampleIn::audio(clip);
                ex.label     = int32_t(k);
                M4_RETURN_IF_ERROR(put(wr, ex));
            }
    }
    return Status::ok();
}

// --- aud.gender: male / female voice; held-out voices and words -------------------------------
Status build_gender(TaskOutput & out) {
    out.set_labels({"male", "female"});
    M4_ASSIGN_OR_RETURN(auto words, english_words(reserved_words()));
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng = out.rng(t ? "test" : "train");
        std::vector<const SpeakerSpec *> by[2];
        for (const auto * s : speakers(t)) by[s->male ? 0 : 1].push_back(s);
        const size_t n = out.n(t ? 600 : 3000, 8);
        for (size_t i = 0; i < n; ++i) {
            const int g = int(i % 2);
            M4_ASSIGN_OR_RETURN(auto clip,
                                speak(rng.pick(t ? words.second : words.first), rng.pick(by[g])->voice, rng, 1.0));
            ExampleIn ex = ExampleIn::audio(clip);
            ex.label     = g;
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- aud.lang_id: spoken language of a word (8 languages); held-out variants and words -------
Status build_spoken_lang(TaskOutput & out) {
    static const std::vector<std::string> train_var = {"m1", "m2", "m4", "m5", "f1", "f3", "f4"};
    static const std::vector<std::string> test_var  = {"m3", "m7", "f2", "f5"};
    std::vector<std::string> labels;
    std::vector<std::vector<std::string>> tr, te;
    for (const auto & wl : word_lists()) {
        M4_ASSIGN_OR_RETURN(auto words, load_words(wl));
        labels.push_back(wl.lang);
        tr.emplace_back();
        te.emplace_back();
        for (auto & w : words) (test_side("word:" + to_lower_ascii(w)) ? te.back() : tr.back()).push_back(w);
    }
    out.set_labels(labels);
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng          = out.rng(t ? "test" : "train");
        const size_t per = out.n(t ? 150 : 600, 2);
        for (size_t l = 0; l < labels.size(); ++l)
            for (size_t i = 0; i < per; ++i) {
                Voice v;
                v.name  = word_lists()[l].espeak_voice + "+" + rng.pick(t ? test_var : train_var);
                v.pitch = 35 + int(rng.below(35));
                M4_ASSIGN_OR_RETURN(auto clip, speak(rng.pick(t ? te[l] : tr[l]), v, rng, 1.0));
                ExampleIn ex = ExampleIn::audio(clip);
                ex.label     = int32_t(l);
                M4_RETURN_IF_ERROR(put(wr, ex));
            }
    }
    return Status::ok();
}

// --- aud.intent: spoken commands → intent (action:object:location); 3 s clips ------------------
Status build_intent(TaskOutput & out) {
    auto all = spoken_commands(false);
    std::vector<std::string> labels;
    for (const auto & c : all)
        if (std::find(labels.begin(), labels.end(), c.intent) == labels.end()) labels.push_back(c.intent);
    std::sort(labels.begin(), labels.end());
    out.set_labels(labels);
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        auto cmds      = spoken_commands(t);
        auto sp        = speakers(t);
        const size_t n = out.n(t ? 800 : 4000, 16);
        for (size_t i = 0; i < n; ++i) {
            const Command & c = rng.pick(cmds);
            M4_ASSIGN_OR_RETURN(auto clip, speak(c.text, rng.pick(sp)->voice, rng, 3.0, 170, 220));
            ExampleIn ex = ExampleIn::audio(clip);
            ex.label     = int32_t(std::lower_bound(labels.begin(), labels.end(), c.intent) - labels.begin());
            ex.target    = c.text;
            M4_RETURN_IF_ERROR(put(wr, ex));
            if (i % 500 == 499) out.progress(fmt::format("{}: {}/{} clips", t ? "test" : "train", i + 1, n));
        }
    }
    out.extra()["clip_seconds"] = 3;
    return Status::ok();
}

}  // namespace

std::vector<Command> spoken_commands(bool test) {
    struct Act {
        const char * action;
        std::vector<std::string> verbs_train, verbs_test;
        std::vector<const char *> objects;
    };
    static const std::vector<Act> acts = {
        {"activate",
         {"turn on the {o}", "switch on the {o}", "{o} on"},
         {"put the {o} on", "start the {o}"},
         {"lights", "music", "heating", "lamp"}},
        {"deactivate",
         {"turn off the {o}", "switch off the {o}", "{o} off"},
         {"shut off the {o}", "stop the {o}"},
         {"lights", "music", "heating", "lamp"}},
        {"increase",
         {"turn up the {o}", "increase the {o}", "more {o}"},
         {"raise the {o}", "{o} up"},
         {"volume", "heating", "brightness"}},
        {"decrease",
         {"turn down the {o}", "decrease the {o}", "less {o}"},
         {"lower the {o}", "{o} down"},
         {"volume", "heating", "brightness"}},
        {"bring",
         {"bring me the {o}", "get me the {o}", "fetch the {o}"},
         {"I need the {o}", "go get the {o}"},
         {"newspaper", "juice", "socks", "shoes"}},
    };
    static const std::vector<std::pair<std::string, std::string>> locs = {
        {"", "none"}, {" in the kitchen", "kitchen"}, {" in the bedroom", "bedroom"}, {" in the bathroom", "bathroom"}};
    std::vector<Command> out;
    for (const auto & a : acts)
        for (const auto & tmpl : test ? a.verbs_test : a.verbs_train)
            for (const char * o : a.objects)
                for (const auto & [lp, ln] : locs) {
                    if (std::string(a.action) == "bring" && ln != "none") continue;
                    std::string text = tmpl;
                    text.replace(text.find("{o}"), 3, o);
                    out.push_back({text + lp, std::string(a.action) + ":" + o + ":" + ln});
                }
    return out;
}

void register_audio_tasks(std::vector<Task> & t) {
    auto words = kTts;
    words.push_back("wamerican");
    t.push_back({{"aud.kws", "audio", Modality::Audio, "classify", "encoder", "accuracy", "generated",
                  "keyword spotting: 10 command words, an unknown word or silence, spoken by espeak-ng English "
                  "voices with random rate, gain and noise; 1 s clips",
                  "voices: accents en-gb-scotland and en-029 with variants m3 m7 f2 f5 (never in train); "
                  "held-out unknown words",
                  words},
                 build_kws});
    auto dg = kTts;
    dg.push_back("flite");
    dg.push_back("asterisk-core-sounds-en-wav");
    t.push_back({{"aud.digits", "audio", Modality::Audio, "classify", "encoder", "accuracy", "real+generated",
                  "spoken digits zero-nine; train: espeak-ng voices (generated); test: held-out espeak-ng voices and "
                  "flite voices; test_real: 10 real recordings of one speaker (Asterisk prompts)",
                  "held-out voices and a different synthesiser (flite); a real speaker in test_real", dg},
                 build_digits});
    t.push_back({{"aud.speaker_id", "audio", Modality::Audio, "classify", "encoder", "accuracy", "generated",
                  "which of 16 synthetic espeak-ng speakers (accent × voice variant × pitch) says a word; 1 s",
                  "held-out words (speakers are the classes, so they are shared by design)", words},
                 build_speaker});
    t.push_back({{"aud.gender", "audio", Modality::Audio, "classify", "encoder", "accuracy", "generated",
                  "male or female espeak-ng voice variant saying a word; 1 s",
                  "held-out voices (accents × variants) and held-out words", words},
                 build_gender});
    auto sl = kTts;
    for (const auto & p : packages_of_words()) sl.push_back(p);
    t.push_back({{"aud.lang_id", "audio", Modality::Audio, "classify", "encoder", "accuracy", "generated",
                  "spoken language identification (en de fr es it nl pt sv): a dictionary word spoken by the "
                  "espeak-ng voice of that language; 1 s",
                  "voice variants m3 m7 f2 f5 and held-out words", sl},
                 build_spoken_lang});
    t.push_back({{"aud.intent", "audio", Modality::Audio, "classify", "encoder", "accuracy", "generated",
                  "spoken language understanding (Fluent-Speech-Commands-like): a spoken smart-home command → "
                  "action:object:location intent; 3 s clips; target = transcript",
                  "held-out voices and held-out phrasing templates", kTts},
                 build_intent});
}

}  // namespace m4::data
