// m4fw bench kernels [--min-time S] [--filter REGEX]
// Google Benchmark of the matmul kernels the dispatcher selects on this CPU (f32, bf16 and int8
// weights) for M ∈ {1, 16, 128, 512, 1024} and square K = N ∈ {512, 1024}, 2 threads by default
// (M4_THREADS), reported as GFLOP/s; the scalar reference is measured in the same run at M ≤ 128
// and the summary prints each kernel's ratio to it. Built with oneDNN (Debian's libdnnl-dev, linked
// into this benchmark only), the same shapes also run through oneDNN (dnnl_sgemm for f32, the
// matmul primitive on bf16 activations converted beforehand for bf16, dnnl_gemm_u8s8s32 on
// pre-quantized activations for int8 — m4's bf16 and int8 paths convert or quantize the
// activations inside the timed loop) and the summary prints m4 / oneDNN. oneDNN runs on OpenMP; its
// benchmarks are registered after m4's so its spinning threads do not share the cores with m4's.
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <cstdint>
#include <map>

#ifdef M4_HAVE_ONEDNN
#include <dnnl.h>
#endif

#include "base/cpu.h"
#include "base/thread_pool.h"
#include "commands.h"
#include "ops/ops.h"

namespace m4::cli {
namespace {

struct KernelBenchArgs {
    double min_time    = 0.2;
    std::string filter = ".*";
};

void bench_matmul(benchmark::State & st, DType dt, int64_t M, int64_t K, int64_t N, bool reference) {
    Tensor wf = Tensor::empty(DType::F32, {N, K});
    for (int64_t i = 0; i < N * K; ++i) wf.f32()[i] = 0.01f * float((i * 37) % 101 - 50);
    Tensor w = convert(wf, dt);
    std::vector<float> x(M * K), y(M * N);
    for (int64_t i = 0; i < M * K; ++i) x[i] = 0.02f * float((i * 13) % 97 - 48);
    kern::MatmulArgs a;
    a.x = x.data(), a.ldx = K, a.w = w.data(), a.w_scale = w.scales(), a.y = y.data(), a.ldy = N;
    a.M = M, a.N = N, a.K = K;
    for (auto _ : st) {
        if (reference)
            ops::matmul_forward_ref(a, dt);
        else
            ops::matmul(x.data(), K, w, nullptr, y.data(), N, M);
        benchmark::DoNotOptimize(y.data());
    }
    st.counters["GFLOP/s"] = benchmark::Counter(
        2.0 * double(M) * double(N) * double(K) * 1e-9 * double(st.iterations()), benchmark::Counter::kIsRate);
}

#ifdef M4_HAVE_ONEDNN
// bf16 through oneDNN's matmul primitive: x[M, K] bf16 × W[N, K] bf16 (W read as a K × N matrix
// with layout "ba", m4's layout) → y[M, N] f32; the primitive is created once, outside the loop.
void bench_onednn_bf16(benchmark::State & st, int64_t M, int64_t K, int64_t N) {
    std::vector<uint16_t> x(M * K), w(N * K);
    std::vector<float> y(M * N);
    for (size_t i = 0; i < w.size(); ++i) w[i] = f32_to_bf16(0.01f * float((i * 37) % 101 - 50.0f));
    for (size_t i = 0; i < x.size(); ++i) x[i] = f32_to_bf16(0.02f * float((i * 13) % 97 - 48.0f));
    dnnl_engine_t engine = nullptr;
    dnnl_stream_t stream = nullptr;
    dnnl_memory_desc_t src_md, wei_md, dst_md;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = nullptr;
    dnnl_primitive_t prim    = nullptr;
    dnnl_memory_t src = nullptr, wei = nullptr, dst = nullptr;
    const dnnl_dims_t src_dims = {M, K}, wei_dims = {K, N}, dst_dims = {M, N};
    bool ok = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success &&
              dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, dnnl_bf16, dnnl_ab) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&wei_md, 2, wei_dims, dnnl_bf16, dnnl_ba) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_f32, dnnl_ab) == dnnl_success &&
              dnnl_matmul_desc_init(&desc, &src_md, &wei_md, nullptr, &dst_md) == dnnl_success &&
              dnnl_primitive_desc_create(&pd, &desc, nullptr, engine, nullptr) == dnnl_success &&
              dnnl_primitive_create(&prim, pd) == dnnl_success &&
              dnnl_memory_create(&src, &src_md, engine, x.data()) == dnnl_success &&
              dnnl_memory_create(&wei, &wei_md, engine, w.data()) == dnnl_success &&
              dnnl_memory_create(&dst, &dst_md, engine, y.data()) == dnnl_success;
    const dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
    if (!ok)
        st.SkipWithError("oneDNN bf16 matmul unavailable on this CPU");
    else
        for (auto _ : st) {
            if (dnnl_primitive_execute(prim, stream, 3, args) != dnnl_success ||
                dnnl_stream_wait(stream) != dnnl_success) {
                st.SkipWithError("oneDNN bf16 matmul failed");
                break;
            }
            benchmark::DoNotOptimize(y.data());
        }
    for (dnnl_memory_t m : {src, wei, dst})
        if (m) dnnl_memory_destroy(m);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (stream) dnnl_stream_destroy(stream);
    if (engine) dnnl_engine_destroy(engine);
    st.counters["GFLOP/s"] = benchmark::Counter(
        2.0 * double(M) * double(N) * double(K) * 1e-9 * double(st.iterations()), benchmark::Counter::kIsRate);
}

// The same products through oneDNN: f32 as in bench_matmul, int8 as u8 activations × s8 weights.
void bench_onednn(benchmark::State & st, DType dt, int64_t M, int64_t K, int64_t N) {
    const bool f32 = dt == DType::F32;
    std::vector<float> w(f32 ? N * K : 0), x(f32 ? M * K : 0), y(f32 ? M * N : 0);
    std::vector<int8_t> wq(f32 ? 0 : N * K);
    std::vector<uint8_t> xq(f32 ? 0 : M * K);
    std::vector<int32_t> yq(f32 ? 0 : M * N);
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0.01f * float((i * 37) % 101 - 50.0f);
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.02f * float((i * 13) % 97 - 48.0f);
    for (size_t i = 0; i < wq.size(); ++i) wq[i] = static_cast<int8_t>(int((i * 37) % 101) - 50);
    for (size_t i = 0; i < xq.size(); ++i) xq[i] = static_cast<uint8_t>((i * 13) % 97 + 80);
    const int32_t co = 0;
    for (auto _ : st) {
        const dnnl_status_t rc = f32 ? dnnl_sgemm('N', 'T', M, N, K, 1.0f, x.data(), K, w.data(), K, 0.0f, y.data(), N)
                                     : dnnl_gemm_u8s8s32('N', 'T', 'F', M, N, K, 1.0f, xq.data(), K, 0, wq.data(), K, 0,
                                                         0.0f, yq.data(), N, &co);
        if (rc != dnnl_success) {
            st.SkipWithError("oneDNN GEMM failed");
            return;
        }
        benchmark::DoNotOptimize(f32 ? static_cast<void *>(y.data()) : static_cast<void *>(yq.data()));
    }
    st.counters["GFLOP/s"] = benchmark::Counter(
        2.0 * double(M) * double(N) * double(K) * 1e-9 * double(st.iterations()), benchmark::Counter::kIsRate);
}
#endif

// Collects GFLOP/s per benchmark name for the summary.
class CollectingReporter : public benchmark::ConsoleReporter {
  public:
    CollectingReporter() : ConsoleReporter(OO_Tabular) {}  // no colour codes: output goes to logs and docs
    std::map<std::string, double> gflops;
    void ReportRuns(const std::vector<Run> & runs) override {
        for (const auto & r : runs) {
            auto it = r.counters.find("GFLOP/s");
            if (it != r.counters.end()) gflops[r.run_name.function_name] = it->second.value;
        }
        ConsoleReporter::ReportRuns(runs);
    }
};

int run_kernel_bench(const KernelBenchArgs & a) {
    fmt::print("cpu: {} · kernels: {} · threads: {}\n", cpu_features().describe(), isa_name(selected_isa()),
               ThreadPool::global().size());
    std::vector<std::string> names;
    for (DType dt : {DType::F32, DType::BF16, DType::I8})
        for (int64_t KN : {512, 1024})
            for (int64_t M : {1, 16, 128, 512, 1024})
                for (bool ref : {false, true}) {
                    if (ref && M > 128) continue;  // the reference is slow; its rate does not depend on M much
                    std::string name =
                        fmt::format("matmul/{}/M{}/K{}/N{}/{}", dtype_name(dt), M, KN, KN, ref ? "reference" : "fast");
                    benchmark::RegisterBenchmark(name.c_str(), bench_matmul, dt, M, KN, KN, ref)
                        ->MinTime(a.min_time)
                        ->Unit(benchmark::kMicrosecond)
                        ->UseRealTime();
                    names.push_back(name);
                }
#ifdef M4_HAVE_ONEDNN
    for (DType dt : {DType::F32, DType::BF16, DType::I8})
        for (int64_t KN : {512, 1024})
            for (int64_t M : {1, 16, 128, 512, 1024}) {
                std::string name = fmt::format("matmul/{}/M{}/K{}/N{}/onednn", dtype_name(dt), M, KN, KN);
                auto * b = dt == DType::BF16 ? benchmark::RegisterBenchmark(name.c_str(), bench_onednn_bf16, M, KN, KN)
                                             : benchmark::RegisterBenchmark(name.c_str(), bench_onednn, dt, M, KN, KN);
                b->MinTime(a.min_time)->Unit(benchmark::kMicrosecond)->UseRealTime();
            }
#endif
    std::string filter = "--benchmark_filter=" + a.filter;
    std::string color  = "--benchmark_color=false";
    char * argv[]      = {const_cast<char *>("m4fw"), filter.data(), color.data()};
    int argc           = 3;
    benchmark::Initialize(&argc, argv);
    CollectingReporter rep;
    benchmark::RunSpecifiedBenchmarks(&rep);
    // Each "…/fast" result against its "…/<baseline>" twin of the same shape, where both ran.
    auto print_ratios = [&](const std::string & baseline, const std::string & title) {
        bool any = false;
        for (const auto & [name, g] : rep.gflops) {
            if (name.size() < 5 || name.substr(name.size() - 5) != "/fast") continue;
            const std::string shape = name.substr(0, name.size() - 5);
            auto it                 = rep.gflops.find(shape + "/" + baseline);
            if (it == rep.gflops.end()) continue;
            if (!any) fmt::print("\n{} (same run):\n", title);
            any = true;
            fmt::print("  {:<36} m4 {:8.1f}  {} {:8.1f} GFLOP/s  {:6.2f}x\n", shape, g, baseline, it->second,
                       g / it->second);
        }
    };
    print_ratios("reference", "speed-up over the scalar reference");
    print_ratios("onednn", "m4 / oneDNN");
    benchmark::Shutdown();
    return 0;
}

}  // namespace

void add_bench_kernels_command(CLI::App & bench, int * rc) {
    auto a = std::make_shared<KernelBenchArgs>();
    auto * cmd =
        bench.add_subcommand("kernels", "Google Benchmark of the matmul kernels (GFLOP/s, ratio to reference)");
    cmd->add_option("--min-time", a->min_time, "seconds per benchmark");
    cmd->add_option("--filter", a->filter, "regex over benchmark names");
    cmd->callback([a, rc] { *rc = run_kernel_bench(*a); });
}

}  // namespace m4::cli
