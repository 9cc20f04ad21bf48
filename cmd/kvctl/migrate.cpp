// kvctl migrate up [N] | down [N | --all] | goto V | force V | version:
// the PostgreSQL schema, with golang-migrate's commands and semantics.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/output.h"
#include "lib/pg/migrator.h"

namespace kvctl::cmd {
namespace {

// N of `up N` and `down N`: CLI::PositiveNumber's message prints the
// largest double in full.
const CLI::Validator kSteps(
    [](std::string& text) -> std::string {
      int n = 0;
      if (CLI::detail::lexical_cast(text, n) && n >= 1) return {};
      return fmt::format("N must be a number of migrations, 1 or more, not {}", text);
    },
    "");

struct MigrateArgs {
  std::optional<int> steps;  // up N / down N
  bool all = false;          // down --all
  int64_t version = 0;       // goto V / force V
};

core::Result<std::unique_ptr<pg::Migrator>> Connect(const CommandContext& ctx) {
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  return pg::Migrator::Connect(
      {cfg->postgres.dsn, cfg->postgres.connect_timeout, cfg->postgres.migrate_lock_timeout});
}

// "2/u compaction watermark (12ms)", like golang-migrate.
void PrintStep(const pg::MigrationStep& step) {
  (void)WriteStdout(fmt::format("{}/{} {} ({}ms)\n", step.version, step.up ? "u" : "d", step.name,
                                step.took.count()));
}

core::Status Report(const core::Result<int>& steps) {
  if (!steps) return steps.error();
  if (*steps == 0) return WriteStdout("no change\n");
  return core::Status::Ok();
}

// `down` with neither N nor --all undoes everything, which drops every key:
// golang-migrate asks first, and so do we, but only a person at a terminal
// can answer.
core::Result<bool> ConfirmDownAll() {
  if (::isatty(STDIN_FILENO) == 0) {
    return core::Status::InvalidArgument(
        "`kvctl migrate down` without N would undo every migration and drop all data (say "
        "`kvctl migrate down N` for N steps, or `kvctl migrate down --all`)");
  }
  std::fprintf(stderr, "Are you sure you want to apply all down migrations? [y/N] ");
  std::fflush(stderr);
  std::string answer;
  std::getline(std::cin, answer);
  if (answer == "y" || answer == "Y" || answer == "yes") return true;
  std::fprintf(stderr, "Not applying all down migrations\n");
  return false;
}

core::Status RunUp(const CommandContext& ctx, const MigrateArgs& args) {
  auto m = Connect(ctx);
  if (!m) return m.error();
  return Report((*m)->Up(args.steps, PrintStep));
}

core::Status RunDown(const CommandContext& ctx, const MigrateArgs& args) {
  if (args.steps && args.all) {
    return core::Status::InvalidArgument("N and --all both given to `kvctl migrate down` (give one of them)");
  }
  if (!args.steps && !args.all) {
    auto confirmed = ConfirmDownAll();
    if (!confirmed) return confirmed.error();
    if (!*confirmed) return core::Status::Ok();
  }
  auto m = Connect(ctx);
  if (!m) return m.error();
  return Report((*m)->Down(args.steps, PrintStep));
}

core::Status RunGoto(const CommandContext& ctx, const MigrateArgs& args) {
  auto m = Connect(ctx);
  if (!m) return m.error();
  return Report((*m)->Goto(args.version, PrintStep));
}

core::Status RunForce(const CommandContext& ctx, const MigrateArgs& args) {
  auto m = Connect(ctx);
  if (!m) return m.error();
  return (*m)->Force(args.version);
}

core::Status RunVersion(const CommandContext& ctx) {
  auto m = Connect(ctx);
  if (!m) return m.error();
  auto v = (*m)->Version();
  if (!v) return v.error();
  if (!v->version) {
    return core::Status::NotFound(
        "no migration has been applied to this database (run `kvctl migrate up`)");
  }
  return WriteStdout(fmt::format("{}{}\n", *v->version, v->dirty ? " (dirty)" : ""));
}

}  // namespace

void AddMigrateCommand(CLI::App& app, CommandContext& ctx) {
  CLI::App* migrate = app.add_subcommand(
      "migrate",
      "Move the PostgreSQL schema between versions (migrations built into kvctl, recorded in "
      "schema_migrations as golang-migrate does)");
  migrate->group(kGroupOperator);
  migrate->require_subcommand(1, 1);
  config::AddSettingFlags(*migrate, config::Scope::kMigrate, ctx.flags);
  auto args = std::make_shared<MigrateArgs>();

  CLI::App* up = migrate->add_subcommand("up", "Apply all pending migrations, or the next N");
  up->add_option("N", args->steps, "how many migrations to apply")->check(kSteps);
  up->fallthrough();
  up->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunUp(ctx, *args); }; });

  CLI::App* down = migrate->add_subcommand(
      "down", "Undo the last N migrations, or all with --all (without either: asks at a terminal, "
              "refuses otherwise)");
  down->add_option("N", args->steps, "how many migrations to undo")->check(kSteps);
  down->add_flag("--all", args->all, "undo every migration (drops all kvctl data)");
  down->fallthrough();
  down->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunDown(ctx, *args); }; });

  CLI::App* to = migrate->add_subcommand("goto", "Migrate up or down to version V");
  to->add_option("V", args->version, "the version to reach")->required();
  to->fallthrough();
  to->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunGoto(ctx, *args); }; });

  CLI::App* force = migrate->add_subcommand(
      "force", "Record version V (-1: none) as clean without running anything, after fixing a "
               "failed migration by hand");
  force->add_option("V", args->version, "the version the schema is really at")
      ->required()
      ->allow_extra_args(false);
  force->fallthrough();
  force->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunForce(ctx, *args); }; });

  CLI::App* version = migrate->add_subcommand(
      "version", "Print the schema version (\"(dirty)\" after a failed migration)");
  version->fallthrough();
  version->callback([&ctx] { ctx.run = [&ctx] { return RunVersion(ctx); }; });
}

}  // namespace kvctl::cmd
