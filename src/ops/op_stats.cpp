// Op names and formulas (generated from ops.def) and the thread-local operator-type recorder that
// `m4fw inspect` uses to report which op types a path runs.
#include <string>
#include <vector>

#include "base/status.h"
#include "ops/ops.h"

namespace m4::ops {
namespace {

constexpr const char * kNames[] = {
#define M4_OP(name, formula) #name,
#include "ops/ops.def"
#undef M4_OP
};

constexpr const char * kFormulas[] = {
#define M4_OP(name, formula) formula,
#include "ops/ops.def"
#undef M4_OP
};

static_assert(sizeof(kNames) / sizeof(kNames[0]) == kOpCount);

// The live recorders of this thread, innermost last. Recorders nest: an op run inside an inner
// scope also ran inside every enclosing one, so record_op marks them all.
thread_local OpRecorder * t_recorder = nullptr;
thread_local std::vector<std::vector<bool> *> t_used;

}  // namespace

const char * op_name(OpKind op) {
    const int i = static_cast<int>(op);
    M4_CHECK(i >= 0 && i < kOpCount);
    return kNames[i];
}

const char * op_formula(OpKind op) {
    const int i = static_cast<int>(op);
    M4_CHECK(i >= 0 && i < kOpCount);
    return kFormulas[i];
}

OpRecorder::OpRecorder() : used_(kOpCount, false), prev_(t_recorder) {
    t_recorder = this;
    t_used.push_back(&used_);
}

OpRecorder::~OpRecorder() {
    // Recorders are scoped objects: they must die in reverse order of creation, on their thread.
    M4_CHECK(t_recorder == this && !t_used.empty() && t_used.back() == &used_);
    t_recorder = prev_;
    t_used.pop_back();
}

std::vector<std::string> OpRecorder::used_names() const {
    std::vector<std::string> names;
    for (int i = 0; i < kOpCount; ++i)
        if (used_[i]) names.emplace_back(kNames[i]);
    return names;
}

void record_op(OpKind op) {
    const int i = static_cast<int>(op);
    for (std::vector<bool> * used : t_used) (*used)[i] = true;
}

}  // namespace m4::ops
