// m4fw subcommands: each cmd_<noun>.cpp registers its subcommands on the CLI11 app and returns
// the process exit status through `*rc`.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "base/status.h"
#include "model/model.h"

namespace m4::cli {

void add_init_command(CLI::App & app, int * rc);
void add_inspect_command(CLI::App & app, int * rc);
void add_run_command(CLI::App & app, int * rc);
void add_adapter_commands(CLI::App & app, int * rc);
// `m4fw train …`, `m4fw adapter train` and `m4fw bench train` (call after add_adapter_commands).
void add_train_commands(CLI::App & app, int * rc);
// `m4fw pretrain --recipe R --out F` (cmd_pretrain.cpp).
void add_pretrain_command(CLI::App & app, int * rc);
// `m4fw eval --adapter A --task T` (cmd_eval.cpp).
void add_eval_command(CLI::App & app, int * rc);
// `m4fw baseline train --task T`: a task-specific model from scratch (cmd_baseline.cpp).
void add_baseline_commands(CLI::App & app, int * rc);
// `m4fw demo`: the main job on the default firmware (cmd_demo.cpp).
void add_demo_command(CLI::App & app, int * rc);
void add_key_commands(CLI::App & app, int * rc);
void add_quantize_command(CLI::App & app, int * rc);
void add_export_gguf_command(CLI::App & app, int * rc);
// `m4fw import`, `m4fw compose`, `m4fw import-adapter` (cmd_import.cpp, docs/import.md).
void add_import_commands(CLI::App & app, int * rc);
// `m4fw data build|list|audit|show` (benchmark data sets).
void add_data_commands(CLI::App & app, int * rc);
// Daemon clients; `adapter_group` is the `m4fw adapter` subcommand.
void add_service_commands(CLI::App & app, CLI::App & adapter_group, int * rc);
// The `m4fw bench` group, created on first use (several files add benchmarks to it).
CLI::App & bench_group(CLI::App & app);
// `m4fw bench service` under the `bench` group.
void add_bench_service_command(CLI::App & bench, int * rc);
void add_bench_kernels_command(CLI::App & bench, int * rc);
void add_bench_model_command(CLI::App & bench, int * rc);
// `m4fw bench contention` (cmd_bench_contention.cpp).
void add_bench_contention_command(CLI::App & bench, int * rc);

// The default firmware every command uses without --firmware: $M4_FIRMWARE, else the repository's
// firmware/m4-small.m4fw (this build's source tree), else the installed share/m4/firmware/m4-small.m4fw.
std::string default_firmware();
// Adds `--firmware` defaulting to default_firmware().
CLI::Option * add_firmware_option(CLI::App * cmd, std::string * firmware, const std::string & what = "firmware .m4fw");

// --max-new-tokens, --temperature, --top-k, --top-p, --seed, --stop (repeatable) of run and infer:
// each one given is recorded in `o` (it overrides the adapter manifest's default).
void add_generation_options(CLI::App * cmd, model::GenerationOverrides * o);

// --parent P of run/eval: "" without P; else P's fingerprint once `fw` is verified to be P's
// quantized sibling (model::verify_quantized_sibling), for adapter::Adapter::load.
Result<std::string> verified_parent(const std::string & parent_path, const model::Model & fw);

// Prints "m4fw: <message>" to stderr and returns the exit status for the status code.
int report(const Status & st);

}  // namespace m4::cli
