// To add an op: one row here (after its line in src/ops/ops.def and its reference in
// src/ops/<op>.cpp), pointing at a checker in test_kernels.cpp. Each row runs at every ISA level
// (scalar, avx2, avx512, amx) as test OpCases/OpCaseTest.Matches/<op>_<variant>_<isa>; levels the
// CPU lacks (or M4_ISA excludes) are reported as SKIPPED with the reason, never silently.
#include "op_cases.h"

namespace m4::test {

const std::vector<OpCase> & op_cases() {
    using ops::OpKind;
    // clang-format off
    static const std::vector<OpCase> cases = {
        // op               variant  checker
        {OpKind::matmul,    "f32",   [](Isa isa) { check_matmul(isa, DType::F32); }},
        {OpKind::matmul,    "bf16",  [](Isa isa) { check_matmul(isa, DType::BF16); }},
        {OpKind::matmul,    "i8",    [](Isa isa) { check_matmul(isa, DType::I8); }},
        {OpKind::add,       "f32",   check_add},
        {OpKind::mul,       "f32",   check_mul},
        {OpKind::rmsnorm,   "f32",   check_rmsnorm},
        {OpKind::layernorm, "f32",   check_layernorm},
        {OpKind::softmax,   "f32",   check_softmax},
        {OpKind::silu,      "f32",   check_silu},
        {OpKind::silu,      "f32_backward", check_silu_backward},
        {OpKind::gelu,      "f32",   check_gelu},
        {OpKind::gelu,      "f32_tanh",  check_gelu_tanh},
        {OpKind::gelu,      "f32_quick", check_gelu_quick},
        {OpKind::gelu,      "f32_backward", check_gelu_backward},
        {OpKind::rope,      "f32",   check_rope},
        {OpKind::attention, "f32",   check_attention},
        {OpKind::attention, "f32_backward", check_attention_backward},
        {OpKind::gather,    "f32",   [](Isa isa) { check_gather(isa, DType::F32); }},
        {OpKind::gather,    "bf16",  [](Isa isa) { check_gather(isa, DType::BF16); }},
        {OpKind::gather,    "i8",    [](Isa isa) { check_gather(isa, DType::I8); }},
        {OpKind::pool,      "f32",   check_pool},
        {OpKind::log,       "f32",   check_log},
    };
    // clang-format on
    return cases;
}

}  // namespace m4::test
