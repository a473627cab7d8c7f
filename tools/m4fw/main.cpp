// m4fw — the m4 command line: create, inspect, sign and run firmware images and adapters.
#include <fmt/format.h>

#include <sys/stat.h>

#include <cstdlib>

#include "../common/default_firmware.h"
#include "commands.h"

namespace m4::cli {

std::string default_firmware() {
    return tools::default_firmware();
}

void add_generation_options(CLI::App * cmd, model::GenerationOverrides * o) {
    cmd->add_option_function<int>(
        "--max-new-tokens", [o](const int & v) { o->max_new_tokens = v; },
        "generation length limit (1 .. the firmware's context)");
    cmd->add_option_function<float>(
        "--temperature", [o](const float & v) { o->temperature = v; }, "sampling temperature, 0 .. 100 (0: greedy)");
    cmd->add_option_function<int>(
        "--top-k", [o](const int & v) { o->top_k = v; }, "sample among the k most likely tokens (0: off)");
    cmd->add_option_function<float>(
        "--top-p", [o](const float & v) { o->top_p = v; }, "nucleus sampling threshold, (0, 1] (1: off)");
    cmd->add_option_function<uint64_t>(
        "--seed", [o](const uint64_t & v) { o->seed = v; }, "sampling seed");
    cmd->add_option_function<std::vector<std::string>>(
        "--stop", [o](const std::vector<std::string> & v) { o->stop = v; },
        "stop string (repeat for several; at most 8 of 1..64 bytes); replaces the adapter's list")
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);  // one value per --stop: inputs follow
    cmd->add_option("--choice", o->choices, "constrained output: exactly one of these (repeat the option)")
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->add_option("--json-schema", o->json_schema,
                    "constrained output: compact JSON following this schema (JSON text, or a file holding it)");
}

CLI::Option * add_firmware_option(CLI::App * cmd, std::string * firmware, const std::string & what) {
    *firmware = default_firmware();
    return cmd->add_option("--firmware", *firmware, what + " (default: " + *firmware + ")");
}

int report(const Status & st) {
    if (st.is_ok()) return 0;
    fmt::print(stderr, "m4fw: error: {}\n", st.message());
    switch (st.code()) {
        case StatusCode::InvalidArgument:
            return 3;
        case StatusCode::NotFound:
            return 4;
        case StatusCode::Incompatible:
            return 5;
        case StatusCode::PermissionDenied:
            return 6;
        case StatusCode::IoError:
            return 7;
        default:
            return 1;
    }
}

CLI::App & bench_group(CLI::App & app) {
    for (CLI::App * s : app.get_subcommands([](CLI::App *) { return true; }))
        if (s->get_name() == "bench") return *s;
    CLI::App * b = app.add_subcommand("bench", "benchmarks");
    b->require_subcommand(1);
    return *b;
}

}  // namespace m4::cli

int main(int argc, char ** argv) {
    CLI::App app{"m4fw — Mobile Foundation Model as Firmware: firmware and adapter tool"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "m4fw 0.1.0");
    int rc = 0;
    m4::cli::add_init_command(app, &rc);
    m4::cli::add_inspect_command(app, &rc);
    m4::cli::add_run_command(app, &rc);
    m4::cli::add_adapter_commands(app, &rc);
    m4::cli::add_train_commands(app, &rc);  // after adapter: adds `m4fw adapter train` too
    m4::cli::add_pretrain_command(app, &rc);
    m4::cli::add_eval_command(app, &rc);
    m4::cli::add_baseline_commands(app, &rc);
    m4::cli::add_demo_command(app, &rc);
    m4::cli::add_key_commands(app, &rc);
    m4::cli::add_quantize_command(app, &rc);
    m4::cli::add_export_gguf_command(app, &rc);
    m4::cli::add_import_commands(app, &rc);
    m4::cli::add_data_commands(app, &rc);
    m4::cli::add_bench_service_command(m4::cli::bench_group(app), &rc);
    m4::cli::add_bench_kernels_command(m4::cli::bench_group(app), &rc);
    m4::cli::add_bench_model_command(m4::cli::bench_group(app), &rc);
    m4::cli::add_bench_contention_command(m4::cli::bench_group(app), &rc);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError & e) {
        return app.exit(e);
    } catch (const std::exception & e) {
        // Library code reports input faults as Status; anything thrown here is still reported, not a crash.
        fmt::print(stderr, "m4fw: error: {}\n", e.what());
        return 1;
    }
    return rc;
}
