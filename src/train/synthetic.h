// Built-in synthetic tasks, until the benchmark data sets exist (docs/training.md lists them).
// Each is a DataSource that generates samples from the trainer's Rng (training) or from its own
// seed (a fixed evaluation set of `eval_size` samples), for any firmware configuration that has
// the modality. None can be solved by an untrained model (chance accuracy at initialisation):
//
//   image-grid     encoder/image  classify  which cell of a g×g grid (g = 2, 4 classes) is bright
//   imu-activity   encoder/imu    classify  4 activities = 1, 2, 4 or 8 oscillations per window
//   imu-intensity  encoder/imu    regress   the amplitude of the oscillation
//   imu-embed      encoder/imu    embed     a fixed unit vector per activity (InfoNCE)
//   audio-tone     encoder/audio  classify  3 tone pitches in noise
//   text-first     backbone       classify  the class (id mod 4) of the first token, head on the last position
//   text-successor backbone       lm        counting: each token is the previous one + 1 (mod 32)
//   image-caption  full/image     lm        the caption tokens of the bright cell (4×4 grid)
//   image-text     contrastive    align     4×4-grid images ↔ their caption tokens (pretraining)
#pragma once

#include <string>
#include <vector>

#include "train/data.h"

namespace m4::train {

std::vector<std::string> synthetic_task_names();
// One line per task: "name  path  objective  what it is" (m4fw train tasks).
std::vector<std::string> synthetic_task_summaries();
// Errors: an unknown name, or a firmware without the task's modality.
Result<std::unique_ptr<DataSource>> make_synthetic(const std::string & name, const model::ModelConfig & c,
                                                   uint64_t seed, int64_t eval_size);

}  // namespace m4::train
