// kvctl version: the version, the git commit it was built from and the build
// type (cmake/build_info.cmake writes them into kvctl_build_info.h).
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/output.h"
#include "kvctl_build_info.h"

namespace kvctl::cmd {
namespace {

core::Status RunVersion(OutputFormat output) {
  if (output == OutputFormat::kJson) {
    nlohmann::json j{{"version", KVCTL_VERSION}, {"commit", KVCTL_GIT_COMMIT}, {"build_type", KVCTL_BUILD_TYPE}};
    return WriteStdout(j.dump() + "\n");
  }
  return WriteStdout(fmt::format("kvctl {}\ncommit: {}\nbuild type: {}\n", KVCTL_VERSION, KVCTL_GIT_COMMIT,
                                 KVCTL_BUILD_TYPE));
}

}  // namespace

std::string VersionLine() { return fmt::format("kvctl {} (commit {}, {})", KVCTL_VERSION, KVCTL_GIT_COMMIT, KVCTL_BUILD_TYPE); }

void AddVersionCommand(CLI::App& app, CommandContext& ctx) {
  auto output = std::make_shared<OutputFormat>(OutputFormat::kText);
  CLI::App* sub = app.add_subcommand("version", "Print kvctl's version, git commit and build type");
  sub->group(kGroupTools);
  AddOutputOption(*sub, *output);
  sub->callback([&ctx, output] { ctx.run = [output] { return RunVersion(*output); }; });
}

}  // namespace kvctl::cmd
