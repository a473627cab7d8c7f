// aud.tts (docs/benchmark.md): stored reference renderings → (text, target log-mel) pairs for the
// speech decoder, and scoring it against its baselines.
//
//     auto ex = tts_example(ds.at(i), fw, "test #i");   // ex->symbols, ex->logmel [T, n_mels], ex->clip
//
// Metrics:
//   intelligibility  the share of test words a committed recogniser adapter (aud.kws for the 10
//                    keywords, aud.digits for the 10 digits, on their own firmware) labels correctly
//                    in the synthesised audio (the Griffin-Lim waveform, zero-padded to the
//                    recogniser's clip)
//   mel_l1           mean |decoder log-mel − reference log-mel| over the decoder's T × n_mels grid
//                    (natural log of mel power, the audio front end's)
// Baselines: the reference rendering itself through the same recogniser (`chance`), the mean
// training log-mel (per frame and band) for mel_l1, and 1/labels of each recogniser for guessing.
#pragma once

#include <string>
#include <vector>

#include "bench/evaluate.h"

namespace m4::bench {

struct TtsExample {
    std::string word;
    std::vector<int32_t> symbols;  // speech_symbols(word)
    std::vector<float> clip;       // the reference rendering, samples in [-1, 1]
    std::vector<float> logmel;     // its log-mel on the decoder's grid [T, n_mels]
};
Result<TtsExample> tts_example(const data::Example & ex, const model::Model & fw, const std::string & where);

// The recognisers: a firmware with an audio encoder and classify adapters bound to it (`paths` for
// messages); a test word is scored by the first adapter whose labels hold it.
struct TtsRecognisers {
    const model::Model * fw = nullptr;
    std::vector<const adapter::Adapter *> adapters;
    std::vector<std::string> paths;
};

// Scores the speech decoder (with `ad`, an audio-output adapter, or alone) on `o.split`: headline
// intelligibility; `extra` holds mel_l1, the mean-mel baseline's mel_l1, the reference's
// intelligibility and the guessing rate; `samples` the (recognised, word) pairs.
Result<EvalReport> evaluate_tts(const model::Model & fw, const adapter::Adapter * ad, const std::string & ad_path,
                                const TaskPlan & plan, const std::string & data_dir, const EvalOptions & o,
                                const TtsRecognisers & rec);

}  // namespace m4::bench
