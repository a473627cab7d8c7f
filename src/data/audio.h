// Audio sources for the benchmark: WAV decoding, resampling to 16 kHz, speech synthesis with
// espeak-ng (libespeak-ng loaded at run time, so building m4 needs no TTS headers) and flite
// (its command-line tool), and clip shaping (trim, place in a fixed-length window, add noise).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "data/rng.h"

namespace m4::data {

// PCM16 / PCM8 / float WAV (mono or the first channel), returned as floats in [-1, 1].
Result<std::vector<float>> read_wav(const std::string & path, int * rate);
Result<std::vector<float>> parse_wav(const std::string & bytes, const std::string & name, int * rate);
// Band-limited (windowed-sinc) resampling.
std::vector<float> resample(const std::vector<float> & x, int from, int to);

struct Voice {
    std::string name;  // espeak-ng: "en-us+m3"; flite: "flite:slt"
    int rate  = 160;   // words per minute (espeak-ng)
    int pitch = 50;    // 0 … 99 (espeak-ng)
    int range = 50;    // pitch range 0 … 99 (espeak-ng)
};
// Speech for `text` at 16 kHz; deterministic (each espeak-ng utterance runs in a fresh forked child).
Result<std::vector<float>> synthesize(const std::string & text, const Voice & v);

// Removes leading/trailing silence (below `thresh` of the peak), normalises the peak to `peak`.
std::vector<float> trim_silence(const std::vector<float> & x, float thresh = 0.02f);
// Places `x` in a clip of `n` samples at a random offset (cut at the end when longer), applies a
// random gain and adds white noise at a random SNR in [snr_lo, snr_hi] dB.
std::vector<float> fit_clip(const std::vector<float> & x, size_t n, Rng & rng, double snr_lo = 15, double snr_hi = 40);

}  // namespace m4::data
