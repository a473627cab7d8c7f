// The classic second baseline of eAIBench (docs/eaibench-method.md): multinomial logistic
// regression on the raw input features a practitioner would try first, for encoder-path
// classification tasks:
//   image  the normalised pixels the encoder sees (32×32×3, bench::model_signal)
//   audio  the log-mel spectrogram of the firmware's front end (frames × 40 bands)
//   IMU    the raw 6-axis window (100 × 6)
// Features are standardised with the training share's mean and deviation. Trained by mini-batch
// SGD (momentum 0.9, cosine learning rate, L2) on the train split minus the same validation share
// as the adapters; the learning rate is chosen on that share, the test split is read once.
//
//     auto r = train_classic("img.fashion_mnist", "data", fw->config(), {});   // JSON, also written
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "model/config.h"

namespace m4::bench {

struct ClassicOptions {
    std::vector<float> lrs = {0.01f, 0.1f};  // the validation grid
    int64_t epochs         = 8;
    int64_t batch          = 64;
    float l2               = 1e-4f;
    double val_share       = 0.1;
    uint64_t seed          = 1;
    std::string out;  // result JSON path ("" → not written)
};

// Errors: a task that is not encoder-path classification, data missing (named).
Result<nlohmann::json> train_classic(const std::string & task, const std::string & data_dir,
                                     const model::ModelConfig & fw, const ClassicOptions & o);

}  // namespace m4::bench
