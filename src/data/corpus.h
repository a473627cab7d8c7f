// Shared raw material of several tasks, each with ONE global train/test assignment so that an item
// held out by one task is never used on the training side of another task or of pretraining:
//   fortunes  — items assigned by hash of their normalised text (20 % test side)
//   WordNet   — synsets assigned by (pos, offset) (20 % test side)
//   words     — word-list entries assigned by hash of the word (20 % test side)
//   gettext   — whole message domains (source packages) are train or test
//   fonts     — whole font families are train or test
//   voices    — espeak-ng accents × variants are train or test
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "data/audio.h"

namespace m4::data {

inline constexpr double kTestShare = 0.2;

bool test_side(const std::string & key);  // the global 20 % assignment for a text key

// --- fortunes (packages fortunes-min, fortunes; fortunes-de/-es/-it for other languages) ----------
struct Fortune {
    std::string text;      // whitespace-normalised
    std::string category;  // file name
    bool test = false;
};
// Items of the named English files, deduplicated (an item found in several files keeps the first).
Result<std::vector<Fortune>> load_fortunes(const std::vector<std::string> & files, const std::string & subdir = "");
const std::vector<std::string> & english_fortune_files();

// --- WordNet (wordnet-base) ------------------------------------------------------------------
struct Synset {
    std::string pos;  // n v a s r
    uint32_t offset = 0;
    int lexfile     = 0;             // index into wordnet_lexnames()
    std::vector<std::string> words;  // lemmas, '_' → ' '
    std::string gloss;               // definition without the quoted examples
    std::vector<std::string> examples;
    bool test = false;
};
Result<std::vector<Synset>> load_wordnet();
const std::vector<std::string> & wordnet_lexnames();

// --- word lists (/usr/share/dict, w* packages) -----------------------------------------------
struct WordList {
    std::string lang, package, path;
    std::string espeak_voice;  // espeak-ng voice of that language
    std::string name;          // English name of the language
};
const std::vector<WordList> & word_lists();
// Words of one list: letters only (UTF-8 letters allowed, no digits or apostrophes), 2–16 code points.
Result<std::vector<std::string>> load_words(const WordList & wl);

// --- gettext catalogues (.mo) ----------------------------------------------------------------
struct MoDomain {
    std::string domain, package;
    bool test = false;
};
const std::vector<MoDomain> & mo_domains();
// (msgid, msgstr) pairs of a compiled catalogue, plural forms and empty strings skipped.
Result<std::vector<std::pair<std::string, std::string>>> load_mo(const std::string & path);

// --- fonts ----------------------------------------------------------------------------------
struct FontFile {
    std::string family, package, path;
    bool test = false;
};
const std::vector<FontFile> & font_files();

// --- voices ---------------------------------------------------------------------------------
struct SpeakerSpec {
    Voice voice;
    std::string id;  // "en-us+m3@p45"
    bool test = false;
    bool male = true;
};
// English espeak-ng speakers: accent × variant × pitch; the test side holds out whole accents and
// whole variants.
const std::vector<SpeakerSpec> & english_speakers();

// --- spoken commands (SLU) -------------------------------------------------------------------
struct Command {
    std::string text;    // "turn on the lights in the kitchen"
    std::string intent;  // "activate:lights:kitchen" (action:object:location, "none" when absent)
};
// Every (intent, phrasing) of the command grammar; the test side uses held-out phrasing templates.
std::vector<Command> spoken_commands(bool test);

std::vector<std::string> packages_of_fonts();
std::vector<std::string> packages_of_words();

}  // namespace m4::data
