// Where training batches come from: a source of (inputs, targets) for one task.
//
//     class MySource : public DataSource { … };          // or VectorSource over samples in memory
//     Batch b;  M4_RETURN_IF_ERROR(src.next_batch(rng, 16, &b));
//
// Determinism contract: a source draws its training samples only through the Rng it is given (the
// trainer's, which the checkpoint saves), so a run resumed from a checkpoint sees exactly the
// batches an uninterrupted run would. The evaluation set is fixed (independent of that Rng).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "train/rng.h"
#include "train/train_model.h"

namespace m4::train {

class DataSource {
  public:
    virtual ~DataSource()                 = default;
    virtual const TaskSpec & task() const = 0;
    // Fills `out` with `n` training samples. Errors name the source and the fault.
    virtual Status next_batch(Rng & rng, int64_t n, Batch * out) = 0;
    // The validation samples (may be empty: no evaluation).
    virtual const Batch & eval_set() const = 0;
};

// Samples held in memory; training batches are drawn uniformly with replacement.
class VectorSource : public DataSource {
  public:
    VectorSource(TaskSpec task, Batch train, Batch eval)
        : task_(std::move(task)), train_(std::move(train)), eval_(std::move(eval)) {}
    const TaskSpec & task() const override { return task_; }
    Status next_batch(Rng & rng, int64_t n, Batch * out) override;
    const Batch & eval_set() const override { return eval_; }

  private:
    TaskSpec task_;
    Batch train_, eval_;
};

}  // namespace m4::train
