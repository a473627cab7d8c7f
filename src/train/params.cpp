#include "train/params.h"

#include <cmath>
#include <cstring>

#include "base/status.h"

namespace m4::train {

Param & ParamStore::add(const std::string & name, const Tensor & init, bool decay) {
    M4_CHECK_MSG(!by_name_.count(name), "duplicate parameter " + name);
    Param & p                = params_.emplace_back();
    p.name                   = name;
    p.value                  = to_f32(init);  // always a copy, never a view of the source
    p.grad                   = Tensor::zeros(DType::F32, init.shape());
    p.m                      = Tensor::zeros(DType::F32, init.shape());
    p.v                      = Tensor::zeros(DType::F32, init.shape());
    p.decay                  = decay;
    by_name_[name]           = &p;
    by_data_[p.value.data()] = &p;
    return p;
}

Param * ParamStore::find(const std::string & name) {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
}

const Param * ParamStore::find(const std::string & name) const {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
}

Param * ParamStore::owner_of(const void * data) const {
    auto it = by_data_.find(data);
    return it == by_data_.end() ? nullptr : it->second;
}

int64_t ParamStore::numel() const {
    int64_t n = 0;
    for (const auto & p : params_) n += p.numel();
    return n;
}

void ParamStore::zero_grad() {
    for (auto & p : params_) std::memset(p.grad.f32(), 0, p.grad.nbytes());
}

double ParamStore::grad_norm() const {
    double s = 0;
    for (const auto & p : params_) {
        const float * g = p.grad.f32();
        for (int64_t i = 0; i < p.numel(); ++i) s += double(g[i]) * double(g[i]);
    }
    return std::sqrt(s);
}

void ParamStore::scale_grads(float s) {
    for (auto & p : params_) {
        float * g = p.grad.f32();
        for (int64_t i = 0; i < p.numel(); ++i) g[i] *= s;
    }
}

}  // namespace m4::train
