// Placeholder: filled in by the issue-6 work in progress.
#include "commands.h"

namespace m4::cli {
void add_eval_command(CLI::App &, int *) {}
}  // namespace m4::cli
