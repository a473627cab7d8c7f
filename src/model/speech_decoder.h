// TTS-Dec, the firmware's speech decoder (docs/architecture.md, "Speech decoder"), and the
// Griffin-Lim vocoder that path 4 (`generator`) runs after it:
//
//     auto ids = speech_symbols(cfg, "hello world");                 // characters → symbol ids
//     speech_inputs(cfg, ids->data(), ids->size(), x);               // x [T, kSpeechSymbols]
//     speech_decoder_forward(cfg, w, x, 1, seg, logmel);             // logmel [T, n_mels]
//     const SpeechVocoder voc = make_speech_vocoder(cfg);            // fixed DFT bases, mel inverse
//     griffin_lim(cfg, voc, logmel, wav);                            // wav [cfg.samples()]
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "model/frontend.h"
#include "model/lora.h"

namespace m4::model {

// The decoder's alphabet: symbol 0 is padding (no character; the frames after the text), then
// " abcdefghijklmnopqrstuvwxyz'-.," (upper case folds to lower case).
const std::string & speech_alphabet();
// text → symbol ids (1 … kSpeechSymbols−1), one per character. Errors name the character and its
// position ("text: character '#' at 3 is not in the speech decoder's alphabet …") or the length
// ("text: 17 characters exceed the speech decoder's 12").
Result<std::vector<int32_t>> speech_symbols(const SpeechDecoderConfig & c, const std::string & text);
// ids [n ≤ max_chars] → x [T, kSpeechSymbols]: frame t holds the one-hot of character
// t / frames_per_char (the padding symbol beyond the text).
void speech_inputs(const SpeechDecoderConfig & c, const int32_t * ids, size_t n, float * x);

// TTS-Dec: x [B·T, kSpeechSymbols] → logmel [B·T, n_mels] = out_proj(trunk(x)).
void speech_decoder_forward(const SpeechDecoderConfig & c, const DecoderWeights & w, const float * x, int64_t B,
                            const std::vector<RowSegment> & seg, float * logmel);

// Constant matrices of Griffin-Lim, generated deterministically from the config.
struct SpeechVocoder {
    AudioFrontEnd fe;  // analysis: windowed DFT bases [bins, n_fft], the mel filterbank [n_mels, bins]
    Tensor inv_cos;    // [n_fft, bins] synthesis bases: w[n]·c_k·cos(2πkn/N)/N (c_k = 1 at DC/Nyquist, else 2)
    Tensor inv_sin;    // [n_fft, bins] −w[n]·c_k·sin(2πkn/N)/N
    Tensor mel_inv;    // [bins, n_mels] mel power → linear power: the filterbank's transpose, normalised
    Tensor mel_rl;     // [bins, n_mels] the filterbank's transpose over each bin's coverage (Richardson–Lucy)
    std::vector<float> ola_norm;  // [samples] 1 / Σ w² of the frames overlapping each sample (0 where none)
};
SpeechVocoder make_speech_vocoder(const SpeechDecoderConfig & c);

// logmel [T, n_mels] (natural log of mel power, as audio_log_mel) → linear power by mel_inv, refined
// by 24 Richardson–Lucy steps towards the target mel power → wav [c.samples()] by
// c.griffin_lim_iters iterations of Griffin-Lim from a fixed pseudo-random phase. STFT and
// inverse STFT are ops::matmul with the vocoder's bases; the elementwise steps (exp, magnitude,
// phase normalisation) are scalar loops. The output is scaled to a peak of at most 0.9.
void griffin_lim(const SpeechDecoderConfig & c, const SpeechVocoder & v, const float * logmel, float * wav);

// wav [n ≤ c.samples()] → its log-mel [T, n_mels] on the decoder's grid (the training target).
void speech_log_mel(const SpeechDecoderConfig & c, const SpeechVocoder & v, const float * wav, int64_t n,
                    float * logmel);

}  // namespace m4::model
