// The table of op cases (op_cases.cpp) and the checkers its rows call (test_kernels.cpp).
//
// A checker runs one op at one ISA level — the kernel_table(isa) entry where the op has one, and
// the public entry point under set_isa_ceiling(isa) — and compares it against the scalar
// reference (<op>_forward_ref) over odd shapes, with a tolerance suited to the op.
#pragma once

#include <vector>

#include "base/cpu.h"
#include "ops/ops.h"

namespace m4::test {

struct OpCase {
    ops::OpKind op;
    const char * variant;  // dtype or flavour, part of the test name: matmul_bf16_avx512
    void (*check)(Isa isa);
};

// All rows; every OpKind of ops.def has at least one (a test checks it).
const std::vector<OpCase> & op_cases();

// Checkers (test_kernels.cpp).
void check_matmul(Isa isa, DType w_dtype);
void check_softmax(Isa isa);
void check_rmsnorm(Isa isa);
void check_layernorm(Isa isa);
void check_silu(Isa isa);
void check_silu_backward(Isa isa);  // dx += dy · silu′(x)
void check_gelu_backward(Isa isa);  // GeluForm::Erf, dx += dy · gelu′(x)
void check_gelu(Isa isa);
void check_gelu_tanh(Isa isa);   // GeluForm::Tanh
void check_gelu_quick(Isa isa);  // GeluForm::Quick
void check_attention(Isa isa);
void check_attention_backward(Isa isa);  // ops::attention_backward_ref
void check_add(Isa isa);
void check_mul(Isa isa);
void check_rope(Isa isa);
void check_gather(Isa isa, DType table_dtype);
void check_pool(Isa isa);
void check_log(Isa isa);

}  // namespace m4::test
