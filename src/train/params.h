// Trainable parameters: f32 master values with their gradients and AdamW moments, by name.
//
//     ParamStore ps;
//     Param & w = ps.add("head.weight", Tensor::zeros(DType::F32, {10, 64}), /*decay=*/true);
//     ps.zero_grad();  … backward adds into w.grad …
//     double norm = ps.grad_norm();
//
// Names are the firmware / adapter tensor names ("backbone.layers.0.attn.q.weight",
// "lora.backbone.layers.0.attn.q.a", "head.weight"), so export and checkpoints need no mapping.
// A Param never moves once added (the store holds pointers), so views into its value (the model's
// weight structs, LoRA pairs) stay valid for the store's lifetime.
#pragma once

#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensor/tensor.h"

namespace m4::train {

struct Param {
    std::string name;
    Tensor value;       // f32 master weight
    Tensor grad;        // f32, same shape
    Tensor m, v;        // AdamW first / second moments
    bool decay = true;  // decoupled weight decay applies (matrices; not norms, biases, temperatures)
    // The bf16 copy of `value` the matmuls read in bf16 training (owned by TrainModel), or null;
    // adamw_step rewrites it in the same pass as the master.
    uint16_t * bf16_copy = nullptr;
    int64_t numel() const { return value.numel(); }
};

class ParamStore {
  public:
    // Adds a parameter holding a copy of `init` converted to f32. Names must be unique.
    Param & add(const std::string & name, const Tensor & init, bool decay);
    Param * find(const std::string & name);
    const Param * find(const std::string & name) const;
    // The parameter whose value starts at `data` (a weight the model's structs point to), or null
    // for memory no parameter owns (a frozen base weight in the mapped firmware).
    Param * owner_of(const void * data) const;
    // Registers another buffer whose gradient belongs to `p` (a bf16 copy of its value).
    void alias(const void * data, Param * p) { by_data_[data] = p; }

    std::deque<Param> & params() { return params_; }
    const std::deque<Param> & params() const { return params_; }
    int64_t numel() const;

    void zero_grad();
    double grad_norm() const;  // global L2 norm over all gradients (f64 sum, fixed order)
    void scale_grads(float s);

  private:
    std::deque<Param> params_;
    std::unordered_map<std::string, Param *> by_name_;
    std::unordered_map<const void *, Param *> by_data_;
};

}  // namespace m4::train
