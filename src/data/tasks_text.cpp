// Text tasks: real text from Debian packages (fortunes, WordNet, word lists, gettext catalogues,
// codespell's misspelling list); only the grammar-error task corrupts real sentences by rule.
#include <fmt/format.h>

#include <map>
#include <set>

#include "data/corpus.h"
#include "data/sources.h"
#include "data/task.h"

namespace m4::data {

namespace {

const std::vector<std::string> kFortunePkgs = {"fortunes-min", "fortunes"};

// --- txt.lang_id: which of 8 languages a phrase of 1-4 words is in -----------------------------
Status build_lang_id(TaskOutput & out) {
    std::vector<std::string> labels;
    std::vector<std::vector<std::string>> train, test;
    for (const auto & wl : word_lists()) {
        M4_ASSIGN_OR_RETURN(auto words, load_words(wl));
        labels.push_back(wl.lang);
        train.emplace_back();
        test.emplace_back();
        for (auto & w : words) (test_side("word:" + to_lower_ascii(w)) ? test.back() : train.back()).push_back(w);
    }
    out.set_labels(labels);
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng          = out.rng(t ? "test" : "train");
        const size_t per = out.n(t ? 300 : 1500);
        for (size_t l = 0; l < labels.size(); ++l)
            for (size_t i = 0; i < per; ++i) {
                const auto & pool = t ? test[l] : train[l];
                std::vector<std::string> ph;
                for (size_t k = 0, n = 1 + rng.below(4); k < n; ++k) ph.push_back(rng.pick(pool));
                ExampleIn ex = ExampleIn::text(join(ph, " "));
                ex.label     = int32_t(l);
                M4_RETURN_IF_ERROR(put(wr, ex));
            }
    }
    return Status::ok();
}

// --- txt.topic: the fortune file (category) an item comes from ---------------------------------
const std::vector<std::string> kTopics = {"computers", "food",     "law",     "love",        "medicine", "men-women",
                                          "pets",      "politics", "science", "songs-poems", "sports",   "work"};

Status build_topic(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(auto items, load_fortunes(kTopics));
    out.set_labels(kTopics);
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        std::vector<const Fortune *> pool;
        for (const auto & f : items)
            if (f.test == t && f.text.size() <= 600) pool.push_back(&f);
        Rng rng = out.rng(t ? "test" : "train");
        rng.shuffle(pool);
        pool.resize(std::min(pool.size(), out.n(pool.size())));
        for (const auto * f : pool) {
            ExampleIn ex = ExampleIn::text(f->text);
            ex.label     = int32_t(std::find(kTopics.begin(), kTopics.end(), f->category) - kTopics.begin());
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

std::string strip_punct(const std::string & w) {
    size_t a = 0, b = w.size();
    while (a < b && !std::isalnum(static_cast<unsigned char>(w[a]))) ++a;
    while (b > a && !std::isalnum(static_cast<unsigned char>(w[b - 1]))) --b;
    return to_lower_ascii(w.substr(a, b - a));
}

// --- txt.next_word: the next word after a context of 3-12 words (keyboard prediction) ----------
Status build_next_word(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(auto items, load_fortunes(english_fortune_files()));
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng        = out.rng(t ? "test" : "train");
        const size_t n = out.n(t ? 3000 : 20000);
        std::vector<const Fortune *> pool;
        for (const auto & f : items)
            if (f.test == t && split_words(f.text).size() >= 6) pool.push_back(&f);
        for (size_t i = 0, tries = 0; wr->count() < n && tries < 20 * n; ++tries) {
            auto w        = split_words(rng.pick(pool)->text);
            size_t pos    = 3 + rng.below(w.size() - 3);
            std::string y = strip_punct(w[pos]);
            if (y.empty() || !is_ascii_alpha_word(y)) continue;
            size_t from  = pos > 12 ? pos - 12 : 0;
            ExampleIn ex = ExampleIn::text(join(std::vector<std::string>(w.begin() + from, w.begin() + pos), " "));
            ex.target    = y;
            M4_RETURN_IF_ERROR(put(wr, ex));
            ++i;
        }
    }
    return Status::ok();
}

// --- txt.grammar: correct a sentence with one rule-made error (or none) -----------------------
std::vector<std::string> sentences_of(const std::vector<Fortune> & items, bool test) {
    std::vector<std::string> out;
    for (const auto & f : items) {
        if (f.test != test) continue;
        std::string cur;
        for (char c : f.text) {
            cur.push_back(c);
            if (c == '.' || c == '?' || c == '!') {
                std::string s = trim(cur);
                auto w        = split_words(s);
                bool ok       = w.size() >= 5 && w.size() <= 20 && std::isupper(static_cast<unsigned char>(s[0]));
                for (char ch : s)
                    if (ch == '"' || ch == '\t' || ch == ':' || ch == '(' || static_cast<unsigned char>(ch) >= 0x80)
                        ok = false;
                if (ok) out.push_back(s);
                cur.clear();
            }
        }
    }
    return out;
}

std::string corrupt(const std::string & s, Rng & rng, const std::map<std::string, std::string> & misspell) {
    auto w                                                              = split_words(s);
    static const std::vector<std::pair<std::string, std::string>> swaps = {
        {"is", "are"},   {"are", "is"},    {"was", "were"},    {"were", "was"}, {"has", "have"},
        {"have", "has"}, {"a", "an"},      {"an", "a"},        {"the", "a"},    {"in", "on"},
        {"on", "in"},    {"at", "in"},     {"to", "for"},      {"for", "to"},   {"does", "do"},
        {"do", "does"},  {"than", "then"}, {"their", "there"}, {"its", "it's"}, {"your", "you're"}};
    for (int attempt = 0; attempt < 20; ++attempt) {
        size_t i = rng.below(w.size());
        switch (rng.below(5)) {
            case 0:  // word confusion / agreement / article / preposition
                for (const auto & [a, b] : swaps)
                    if (w[i] == a) {
                        w[i] = b;
                        return join(w, " ");
                    }
                break;
            case 1:  // dropped article or preposition
                if (w[i] == "the" || w[i] == "a" || w[i] == "of" || w[i] == "to") {
                    w.erase(w.begin() + i);
                    return join(w, " ");
                }
                break;
            case 2:  // repeated word
                if (w[i].size() > 1 && std::isalpha(static_cast<unsigned char>(w[i].back()))) {
                    w.insert(w.begin() + i, w[i]);
                    return join(w, " ");
                }
                break;
            case 3:  // swapped neighbours
                if (i + 1 < w.size() - 1 && is_ascii_alpha_word(w[i]) && is_ascii_alpha_word(w[i + 1])) {
                    std::swap(w[i], w[i + 1]);
                    return join(w, " ");
                }
                break;
            default: {  // a real misspelling (codespell) of the word
                auto it = misspell.find(w[i]);
                if (it != misspell.end()) {
                    w[i] = it->second;
                    return join(w, " ");
                }
            }
        }
    }
    return s;
}

Result<std::vector<std::pair<std::string, std::string>>> codespell_pairs() {
    M4_ASSIGN_OR_RETURN(std::string text,
                        read_file_bytes("/usr/lib/python3/dist-packages/codespell_lib/data/dictionary.txt"));
    std::vector<std::pair<std::string, std::string>> out;  // (misspelling, correction)
    for (const auto & line : split_lines(text)) {
        auto arrow = line.find("->");
        if (arrow == std::string::npos) continue;
        std::string bad = trim(line.substr(0, arrow)), good = trim(line.substr(arrow + 2));
        if (good.find(',') != std::string::npos || !is_ascii_alpha_word(bad) || !is_ascii_alpha_word(good)) continue;
        out.emplace_back(bad, good);  // unambiguous fixes only
    }
    return out;
}

Status build_grammar(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(auto items, load_fortunes(english_fortune_files()));
    M4_ASSIGN_OR_RETURN(auto pairs, codespell_pairs());
    std::map<std::string, std::string> misspell;  // correct word → a misspelling
    for (const auto & [bad, good] : pairs) misspell.emplace(good, bad);
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        Rng rng  = out.rng(t ? "test" : "train");
        auto snt = sentences_of(items, t);
        rng.shuffle(snt);
        snt.resize(std::min(snt.size(), out.n(t ? 2000 : 15000)));
        for (const auto & s : snt) {
            ExampleIn ex = ExampleIn::text(rng.chance(0.15) ? s : corrupt(s, rng, misspell));
            ex.target    = s;
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- txt.spell: a real misspelling → its correction (codespell) --------------------------------
Status build_spell(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(auto pairs, codespell_pairs());
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        std::vector<std::pair<std::string, std::string>> pool;
        for (const auto & p : pairs)
            if (test_side("word:" + to_lower_ascii(p.second)) == t) pool.push_back(p);
        Rng rng = out.rng(t ? "test" : "train");
        rng.shuffle(pool);
        pool.resize(std::min(pool.size(), out.n(pool.size())));
        for (const auto & [bad, good] : pool) {
            ExampleIn ex = ExampleIn::text(bad);
            ex.target    = good;
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- txt.supersense / txt.reverse_dict: WordNet --------------------------------------------------
Status build_supersense(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(auto syn, load_wordnet());
    out.set_labels(wordnet_lexnames());
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        std::vector<const Synset *> pool;
        for (const auto & s : syn)
            if (s.test == t) pool.push_back(&s);
        Rng rng = out.rng(t ? "test" : "train");
        rng.shuffle(pool);
        pool.resize(std::min(pool.size(), out.n(t ? 5000 : 30000)));
        for (const auto * s : pool) {
            ExampleIn ex = ExampleIn::text(s->words[0] + ": " + s->gloss);
            ex.label     = s->lexfile;
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

Status build_reverse_dict(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(auto syn, load_wordnet());
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        std::vector<const Synset *> pool;
        for (const auto & s : syn)
            if (s.test == t && s.words[0].find(' ') == std::string::npos && s.pos != "r") pool.push_back(&s);
        Rng rng = out.rng(t ? "test" : "train");
        rng.shuffle(pool);
        pool.resize(std::min(pool.size(), out.n(t ? 3000 : 20000)));
        for (const auto * s : pool) {
            ExampleIn ex = ExampleIn::text("Which word means: " + s->gloss + "?");
            ex.target    = s->words[0];
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- txt.define: a word → its WordNet definition (generation) -----------------------------------
Status build_define(TaskOutput & out) {
    M4_ASSIGN_OR_RETURN(auto syn, load_wordnet());
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        std::vector<const Synset *> pool;
        for (const auto & s : syn)
            if (s.test == t && s.pos != "r") pool.push_back(&s);
        Rng rng = out.rng(t ? "test" : "train");
        rng.shuffle(pool);
        pool.resize(std::min(pool.size(), out.n(t ? 3000 : 20000)));
        for (const auto * s : pool) {
            static const char * pos_name[] = {"noun", "verb", "adjective", "adjective"};
            const int pi                   = s->pos == "n" ? 0 : s->pos == "v" ? 1 : 2;
            ExampleIn ex = ExampleIn::text(std::string("Define the ") + pos_name[pi] + " \"" + s->words[0] + "\"" +
                                           (s->words.size() > 1 ? " (as in: " + s->words[1] + ")" : "") + ".");
            ex.target    = s->gloss;
            M4_RETURN_IF_ERROR(put(wr, ex));
        }
    }
    return Status::ok();
}

// --- txt.translate: English UI messages → German / French / Spanish (gettext catalogues) --------
Status build_translate(TaskOutput & out) {
    const std::vector<std::pair<std::string, std::string>> langs = {
        {"de", "German"}, {"fr", "French"}, {"es", "Spanish"}};
    std::set<std::string> train_english;  // a message found in any train catalogue never enters test
    for (bool t : {false, true}) {
        M4_ASSIGN_OR_RETURN(DatasetWriter * wr, out.split(t ? "test" : "train"));
        std::vector<ExampleIn> pool;
        for (const auto & d : mo_domains()) {
            if (d.test != t) continue;
            for (const auto & [code, name] : langs) {
                const std::string path = "/usr/share/locale/" + code + "/LC_MESSAGES/" + d.domain + ".mo";
                if (!file_exists(path)) continue;
                M4_ASSIGN_OR_RETURN(auto pairs, load_mo(path));
                for (const auto & [en, tr] : pairs) {
                    auto nw = split_words(en).size();
                    if (nw < 2 || nw > 30 || en.find('\n') != std::string::npos) continue;
                    const std::string key = to_lower_ascii(join(split_words(en), " "));
                    if (!t)
                        train_english.insert(key);
                    else if (train_english.count(key))
                        continue;
                    ExampleIn ex = ExampleIn::text(en);
                    ex.prompt    = "Translate into " + name + ":";
                    ex.target    = utf8_clean(tr);
                    ex.group     = uint32_t(&d - mo_domains().data());
                    pool.push_back(std::move(ex));
                }
            }
        }
        Rng rng = out.rng(t ? "test" : "train");
        rng.shuffle(pool);
        pool.resize(std::min(pool.size(), out.n(t ? 3000 : 30000)));
        for (const auto & ex : pool) M4_RETURN_IF_ERROR(put(wr, ex));
    }
    return Status::ok();
}

}  // namespace

void register_text_tasks(std::vector<Task> & t) {
    std::vector<std::string> mo_pk;
    for (const auto & d : mo_domains()) mo_pk.push_back(d.package);
    auto wn = std::vector<std::string>{"wordnet-base"};
    t.push_back({{"txt.lang_id", "text", Modality::Text, "classify", "backbone", "accuracy", "real",
                  "which of 8 languages (en de fr es it nl pt sv) a phrase of 1-4 dictionary words is in; the "
                  "words are real, the phrases are random sequences",
                  "held-out words (20 % of every word list)", packages_of_words()},
                 build_lang_id});
    t.push_back({{"txt.topic", "text", Modality::Text, "classify", "backbone", "accuracy", "real",
                  "the fortune-cookie category (12 topics: computers, food, law, love, …) of a real quotation",
                  "held-out quotations (20 % of fortune items, shared with every task and pretraining)", kFortunePkgs},
                 build_topic});
    t.push_back({{"txt.next_word", "text", Modality::Text, "generate", "backbone", "top1_accuracy", "real",
                  "input word prediction: the next word after 3-12 words of a real English quotation",
                  "held-out quotations (20 % of fortune items)", kFortunePkgs},
                 build_next_word});
    auto gk = kFortunePkgs;
    gk.push_back("codespell");
    t.push_back({{"txt.grammar", "text", Modality::Text, "generate", "backbone", "exact_match", "real+generated",
                  "grammatical error correction: real sentences with one rule-made error (agreement, article, "
                  "preposition, repeated or swapped word, a real misspelling) or none → the original",
                  "held-out source sentences (quotations of the test side)", gk},
                 build_grammar});
    t.push_back({{"txt.spell",
                  "text",
                  Modality::Text,
                  "generate",
                  "backbone",
                  "exact_match",
                  "real",
                  "spelling correction: real misspellings collected by codespell → the correct word",
                  "held-out correct words (20 % of the word split)",
                  {"codespell"}},
                 build_spell});
    t.push_back({{"txt.supersense", "text", Modality::Text, "classify", "backbone", "accuracy", "real",
                  "WordNet lexicographer class (45 supersenses, e.g. noun.animal) of a word with its definition",
                  "held-out synsets (20 %)", wn},
                 build_supersense});
    t.push_back({{"txt.reverse_dict", "text", Modality::Text, "generate", "backbone", "exact_match", "real",
                  "question answering from a definition: \"Which word means: …?\" → the WordNet lemma",
                  "held-out synsets (20 %)", wn},
                 build_reverse_dict});
    t.push_back({{"txt.define", "text", Modality::Text, "generate", "backbone", "token_f1", "real",
                  "definition generation: a word (with a synonym when it has one) → its WordNet definition",
                  "held-out synsets (20 %)", wn},
                 build_define});
    t.push_back({{"txt.translate", "text", Modality::Text, "generate", "backbone", "chrf", "real",
                  "translation of real program messages English → German/French/Spanish from gettext catalogues",
                  "held-out catalogues (bash, make, wget, gettext-runtime); messages also in a train catalogue "
                  "are dropped from test",
                  mo_pk},
                 build_translate});
}

}  // namespace m4::data
