#include "train/params.h"

#include <algorithm>
#include <cmath>

#include "base/thread_pool.h"

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

// Gradients are summed in chunks of kNormChunk elements of each parameter (in f64, eight
// interleaved partial sums), then the chunks in order: the same result for any thread count.
// Chunks run over the pool; each chunk's loop has a fixed trip count so the compiler vectorises it.
namespace {
constexpr int64_t kNormChunk = 1 << 13;
}

double ParamStore::grad_norm() const {
    std::vector<std::pair<const float *, int64_t>> chunks;
    for (const auto & p : params_) {
        const float * g = p.grad.f32();
        const int64_t n = p.numel();
        for (int64_t i = 0; i < n; i += kNormChunk) chunks.emplace_back(g + i, std::min(kNormChunk, n - i));
    }
    std::vector<double> partial(chunks.size());
    ThreadPool::global().parallel_for(
        static_cast<int64_t>(chunks.size()),
        [&](int64_t c0, int64_t c1) {
            for (int64_t c = c0; c < c1; ++c) {
                const auto [g, n] = chunks[static_cast<size_t>(c)];
                double acc[8]     = {};
                int64_t i         = 0;
                for (; i + 8 <= n; i += 8)
                    for (int j = 0; j < 8; ++j) acc[j] += double(g[i + j]) * double(g[i + j]);
                for (; i < n; ++i) acc[0] += double(g[i]) * double(g[i]);
                partial[static_cast<size_t>(c)] =
                    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            }
        },
        4);
    double s = 0;
    for (double v : partial) s += v;
    return std::sqrt(s);
}

void ParamStore::scale_grads(float s) {
    for (auto & p : params_) {
        float * g       = p.grad.f32();
        const int64_t n = p.numel();
        ThreadPool::global().parallel_for(
            n,
            [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) g[i] *= s;
            },
            1 << 15);
    }
}

}  // namespace m4::train
