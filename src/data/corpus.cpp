#include "data/corpus.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "base/mapped_file.h"
#include "data/dataset.h"
#include "data/rng.h"
#include "data/sources.h"

namespace m4::data {

bool test_side(const std::string & key) {
    return held_out(key, kTestShare, 20240801);
}

const std::vector<std::string> & english_fortune_files() {
    static const std::vector<std::string> f = {
        "art",       "computers", "cookie",        "definitions", "education",   "ethnic",     "food",       "fortunes",
        "humorists", "kids",      "law",           "linux",       "linuxcookie", "literature", "love",       "magic",
        "medicine",  "men-women", "miscellaneous", "news",        "people",      "pets",       "platitudes", "politics",
        "riddles",   "science",   "songs-poems",   "sports",      "wisdom",      "work"};
    return f;
}

Result<std::vector<Fortune>> load_fortunes(const std::vector<std::string> & files, const std::string & subdir) {
    std::vector<Fortune> out;
    std::set<std::string> seen;
    const std::string base = "/usr/share/games/fortunes/" + (subdir.empty() ? "" : subdir + "/");
    for (const auto & f : files) {
        auto text = read_file_bytes(base + f);
        if (!text) return not_found(base + f + ": missing (install the fortunes packages)");
        std::string cur;
        auto flush = [&] {
            std::string t = utf8_clean(join(split_words(cur), " "));
            cur.clear();
            if (t.size() < 8) return;
            if (!seen.insert(to_lower_ascii(t)).second) return;
            out.push_back({t, f, test_side("fortune:" + to_lower_ascii(t))});
        };
        for (const auto & line : split_lines(text.value())) {
            if (line == "%")
                flush();
            else
                cur += line + "\n";
        }
        flush();
    }
    return out;
}

const std::vector<std::string> & wordnet_lexnames() {
    static const std::vector<std::string> n = {"adj.all",          "adj.pert",           "adv.all",
                                               "noun.Tops",        "noun.act",           "noun.animal",
                                               "noun.artifact",    "noun.attribute",     "noun.body",
                                               "noun.cognition",   "noun.communication", "noun.event",
                                               "noun.feeling",     "noun.food",          "noun.group",
                                               "noun.location",    "noun.motive",        "noun.object",
                                               "noun.person",      "noun.phenomenon",    "noun.plant",
                                               "noun.possession",  "noun.process",       "noun.quantity",
                                               "noun.relation",    "noun.shape",         "noun.state",
                                               "noun.substance",   "noun.time",          "verb.body",
                                               "verb.change",      "verb.cognition",     "verb.communication",
                                               "verb.competition", "verb.consumption",   "verb.contact",
                                               "verb.creation",    "verb.emotion",       "verb.motion",
                                               "verb.perception",  "verb.possession",    "verb.social",
                                               "verb.stative",     "verb.weather",       "adj.ppl"};
    return n;
}

Result<std::vector<Synset>> load_wordnet() {
    std::vector<Synset> out;
    for (const char * part : {"noun", "verb", "adj", "adv"}) {
        const std::string path = std::string("/usr/share/wordnet/data.") + part;
        M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(path));
        for (const auto & line : split_lines(text)) {
            if (line.empty() || line[0] == ' ') continue;  // licence header
            auto bar = line.find(" | ");
            if (bar == std::string::npos) continue;
            auto f = split_words(line.substr(0, bar));
            if (f.size() < 6) continue;
            Synset s;
            s.offset  = static_cast<uint32_t>(std::stoul(f[0]));
            s.lexfile = std::stoi(f[1]);
            s.pos     = f[2];
            int n     = std::stoi(f[3], nullptr, 16);
            for (int i = 0; i < n && 4 + 2 * i < int(f.size()); ++i) {
                std::string w = f[4 + 2 * i];
                if (auto p = w.find('('); p != std::string::npos) w = w.substr(0, p);  // adj markers
                std::replace(w.begin(), w.end(), '_', ' ');
                s.words.push_back(w);
            }
            // Gloss: definition; then "quoted examples" separated by ';'.
            std::string g = trim(line.substr(bar + 3));
            std::string def;
            for (const auto & piece : split_lines([&] {
                     std::string t = g;
                     std::replace(t.begin(), t.end(), ';', '\n');
                     return t;
                 }())) {
                std::string p = trim(piece);
                if (p.size() > 2 && p.front() == '"') {
                    p.erase(std::remove(p.begin(), p.end(), '"'), p.end());
                    s.examples.push_back(trim(p));
                } else if (!p.empty()) {
                    def += (def.empty() ? "" : "; ") + p;
                }
            }
            s.gloss = def;
            if (s.words.empty() || s.gloss.empty() || s.lexfile < 0 || s.lexfile >= int(wordnet_lexnames().size()))
                continue;
            s.test = test_side("wordnet:" + s.pos + ":" + f[0]);
            out.push_back(std::move(s));
        }
    }
    return out;
}

const std::vector<WordList> & word_lists() {
    static const std::vector<WordList> w = {
        {"en", "wamerican", "/usr/share/dict/american-english", "en-us", "English"},
        {"de", "wngerman", "/usr/share/dict/ngerman", "de", "German"},
        {"fr", "wfrench", "/usr/share/dict/french", "fr", "French"},
        {"es", "wspanish", "/usr/share/dict/spanish", "es", "Spanish"},
        {"it", "witalian", "/usr/share/dict/italian", "it", "Italian"},
        {"nl", "wdutch", "/usr/share/dict/dutch", "nl", "Dutch"},
        {"pt", "wportuguese", "/usr/share/dict/portuguese", "pt", "Portuguese"},
        {"sv", "wswedish", "/usr/share/dict/swedish", "sv", "Swedish"},
    };
    return w;
}

std::vector<std::string> packages_of_words() {
    std::vector<std::string> p;
    for (const auto & w : word_lists()) p.push_back(w.package);
    return p;
}

Result<std::vector<std::string>> load_words(const WordList & wl) {
    M4_ASSIGN_OR_RETURN(std::string text, read_file_bytes(wl.path));
    std::vector<std::string> out;
    std::set<std::string> seen;
    for (auto & line : split_lines(text)) {
        std::string w = trim(line);
        if (w.empty() || w != utf8_clean(w)) continue;
        bool ok = true;
        for (unsigned char c : w)
            if (c < 0x80 && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) ok = false;
        size_t n = utf8_length(w);
        if (!ok || n < 2 || n > 16) continue;
        if (seen.insert(w).second) out.push_back(w);
    }
    return out;
}

const std::vector<MoDomain> & mo_domains() {
    static const std::vector<MoDomain> d = {{"coreutils", "coreutils", false},
                                            {"tar", "tar", false},
                                            {"grep", "grep", false},
                                            {"sed", "sed", false},
                                            {"diffutils", "diffutils", false},
                                            {"findutils", "findutils", false},
                                            {"dpkg", "dpkg", false},
                                            {"apt", "apt", false},
                                            {"libc", "libc-l10n", false},
                                            {"gnupg2", "gnupg-l10n", false},
                                            {"shadow", "login", false},
                                            {"gnutls30", "libgnutls30", false},
                                            {"bash", "bash", true},
                                            {"make", "make", true},
                                            {"wget", "wget", true},
                                            {"gettext-runtime", "gettext-base", true}};
    return d;
}

Result<std::vector<std::pair<std::string, std::string>>> load_mo(const std::string & path) {
    M4_ASSIGN_OR_RETURN(std::string b, read_file_bytes(path));
    auto u32 = [&](size_t o) {
        uint32_t v = 0;
        if (o + 4 <= b.size()) std::memcpy(&v, b.data() + o, 4);
        return v;
    };
    if (b.size() < 28 || u32(0) != 0x950412deu) return invalid_argument(path + ": not a little-endian .mo file");
    const uint32_t n = u32(8), orig = u32(12), trans = u32(16);
    std::vector<std::pair<std::string, std::string>> out;
    for (uint32_t i = 0; i < n; ++i) {
        uint32_t ol = u32(orig + 8 * i), oo = u32(orig + 8 * i + 4);
        uint32_t tl = u32(trans + 8 * i), to = u32(trans + 8 * i + 4);
        if (size_t(oo) + ol > b.size() || size_t(to) + tl > b.size())
            return invalid_argument(path + ": string table entry outside the file");
        std::string id(b.data() + oo, ol), str(b.data() + to, tl);
        if (id.empty() || str.empty() || id.find('\0') != std::string::npos || str.find('\0') != std::string::npos)
            continue;  // header entry or plural forms
        out.emplace_back(id, str);
    }
    return out;
}

const std::vector<FontFile> & font_files() {
    static const std::vector<FontFile> f = {
        {"DejaVu Sans", "fonts-dejavu-core", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", false},
        {"DejaVu Sans", "fonts-dejavu-core", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", false},
        {"DejaVu Serif", "fonts-dejavu-core", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", false},
        {"DejaVu Sans Mono", "fonts-dejavu-core", "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", false},
        {"Liberation Sans", "fonts-liberation", "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
         false},
        {"Liberation Serif", "fonts-liberation", "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
         false},
        {"Liberation Serif", "fonts-liberation", "/usr/share/fonts/truetype/liberation/LiberationSerif-Italic.ttf",
         false},
        {"Liberation Mono", "fonts-liberation", "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
         false},
        {"FreeSans", "fonts-freefont-ttf", "/usr/share/fonts/truetype/freefont/FreeSans.ttf", false},
        {"FreeSerif", "fonts-freefont-ttf", "/usr/share/fonts/truetype/freefont/FreeSerif.ttf", false},
        {"FreeMono", "fonts-freefont-ttf", "/usr/share/fonts/truetype/freefont/FreeMono.ttf", false},
        {"Carlito", "fonts-crosextra-carlito", "/usr/share/fonts/truetype/crosextra/Carlito-Regular.ttf", false},
        {"Carlito", "fonts-crosextra-carlito", "/usr/share/fonts/truetype/crosextra/Carlito-Italic.ttf", false},
        {"Open Sans", "fonts-open-sans", "/usr/share/fonts/truetype/open-sans/OpenSans-Regular.ttf", false},
        {"Roboto", "fonts-roboto-unhinted", "/usr/share/fonts/truetype/roboto/unhinted/RobotoTTF/Roboto-Regular.ttf",
         false},
        {"Linux Libertine", "fonts-linuxlibertine", "/usr/share/fonts/opentype/linux-libertine/LinLibertine_R.otf",
         false},
        {"Go", "fonts-go", "/usr/share/fonts/fonts-go/Go-Regular.ttf", false},
        {"Go Mono", "fonts-go", "/usr/share/fonts/fonts-go/Go-Mono.ttf", false},
        // Held-out families: never rendered on the training side.
        {"Caladea", "fonts-crosextra-caladea", "/usr/share/fonts/truetype/crosextra/Caladea-Regular.ttf", true},
        {"Caladea", "fonts-crosextra-caladea", "/usr/share/fonts/truetype/crosextra/Caladea-Italic.ttf", true},
        {"Cantarell", "fonts-cantarell", "/usr/share/fonts/opentype/cantarell/Cantarell-Regular.otf", true},
        {"Lato", "fonts-lato", "/usr/share/fonts/truetype/lato/Lato-Regular.ttf", true},
        {"Linux Biolinum", "fonts-linuxlibertine", "/usr/share/fonts/opentype/linux-libertine/LinBiolinum_R.otf", true},
        {"Roboto Condensed", "fonts-roboto-unhinted",
         "/usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Regular.ttf", true},
    };
    return f;
}

std::vector<std::string> packages_of_fonts() {
    std::set<std::string> s;
    for (const auto & f : font_files()) s.insert(f.package);
    return {s.begin(), s.end()};
}

const std::vector<SpeakerSpec> & english_speakers() {
    static const std::vector<SpeakerSpec> sp = [] {
        struct Acc {
            const char * name;
            bool test;
        };
        struct Var {
            const char * name;
            bool test, male;
        };
        const Acc accents[]  = {{"en-us", false},          {"en", false},
                                {"en-gb-x-rp", false},     {"en-gb-x-gbclan", false},
                                {"en-gb-x-gbcwmd", false}, {"en-gb-scotland", true},
                                {"en-029", true}};
        const Var variants[] = {{"m1", false, true}, {"m2", false, true},  {"m4", false, true},  {"m5", false, true},
                                {"m6", false, true}, {"f1", false, false}, {"f3", false, false}, {"f4", false, false},
                                {"m3", true, true},  {"m7", true, true},   {"f2", true, false},  {"f5", true, false}};
        std::vector<SpeakerSpec> out;
        for (const auto & a : accents)
            for (const auto & v : variants) {
                if (a.test != v.test) continue;  // mixed combinations are used on neither side
                for (int pitch : {38, 52, 66}) {
                    SpeakerSpec s;
                    s.voice.name  = std::string(a.name) + "+" + v.name;
                    s.voice.pitch = pitch;
                    s.id          = s.voice.name + "@p" + std::to_string(pitch);
                    s.test        = a.test;
                    s.male        = v.male;
                    out.push_back(s);
                }
            }
        return out;
    }();
    return sp;
}

}  // namespace m4::data
