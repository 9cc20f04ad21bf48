// kvctl version
#include <CLI/CLI.hpp>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/output.h"

namespace kvctl::cmd {

void AddVersionCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* sub = app.add_subcommand("version", "Print kvctl's version");
  sub->callback([&ctx] {
    ctx.run = [] { return WriteStdout(std::string("kvctl ") + KVCTL_VERSION + "\n"); };
  });
}

}  // namespace kvctl::cmd
