// kvctl del KEY: succeeds whether or not the key existed (SPEC §1).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/client_setup.h"
#include "cmd/kvctl/text.h"

namespace kvctl::cmd {
namespace {

struct DelArgs {
  std::string key;
  std::optional<uint64_t> if_match;
};

core::Status RunDel(const CommandContext& ctx, const DelArgs& args) {
  if (core::Status s = CheckKey(args.key); !s.ok()) return s;
  auto client = MakeClient(ctx);
  if (!client) return client.error();
  core::Status s = (*client)->Delete(args.key, {args.if_match, false});
  if (!s.IsFailedPrecondition()) return s;
  return core::Status::FailedPrecondition(
      fmt::format("del {} refused: {} (kvctl get KEY -o json shows the key's revision now; retry --if-match with it)",
                  QuoteBytes(args.key), s.message()));
}

}  // namespace

void AddDelCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<DelArgs>();
  CLI::App* sub = app.add_subcommand("del", "Delete KEY (no error if it does not exist)");
  sub->group(kGroupClient);
  sub->add_option("key", args->key, "The key")->required();
  sub->add_option("--if-match", args->if_match, "Delete only if the key is at this revision; else exit 4");
  config::AddSettingFlags(*sub, config::Scope::kClient, ctx.flags);
  sub->footer("--timeout is the deadline of the whole request: connecting, sending and the whole answer.");
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunDel(ctx, *args); }; });
}

}  // namespace kvctl::cmd
