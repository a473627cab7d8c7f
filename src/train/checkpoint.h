// Training checkpoints: everything a run needs to continue exactly where it stopped — parameter
// values, AdamW moments, the update count, the data RNG state and the loss curve so far — in the
// m4 container (magic M4AD, JSON header {"format": "m4ckpt", …}, SHA-256 digest), written
// atomically (temp file, fsync, rename), so a kill -9 at any moment leaves the previous
// checkpoint or the new one, never a torn file.
//
//     TrainState st{.step = 120, .rng = rng.state(), .losses = curve, .run = describe_run()};
//     M4_RETURN_IF_ERROR(save_checkpoint("run.ckpt", params, st));
//     M4_RETURN_IF_ERROR(load_checkpoint("run.ckpt", &params, &st));   // st.run must match the caller's
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "train/params.h"
#include "train/rng.h"

namespace m4::train {

struct TrainState {
    int64_t step = 0;                                // optimizer updates done
    Rng::State rng{};                                // the data RNG after those updates
    std::vector<float> losses;                       // loss of every update so far
    nlohmann::json run  = nlohmann::json::object();  // what was being trained (mode, tasks, base, options)
    nlohmann::json eval = nlohmann::json::array();   // evaluation results so far
};

Status save_checkpoint(const std::string & path, const ParamStore & params, const TrainState & state);

// Restores into `params` (same names and shapes required) and `state`. When `expect_run` is not
// null, the checkpoint's run description must equal it (resuming a different run is refused,
// naming the first differing key).
Status load_checkpoint(const std::string & path, ParamStore * params, TrainState * state,
                       const nlohmann::json * expect_run = nullptr);

}  // namespace m4::train
