// kvctl get KEY: the raw value on stdout, nothing added.
// kvctl get --prefix [P]: every key under P, etcdctl-style (key line, value line).
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/client_setup.h"
#include "cmd/kvctl/output.h"

namespace kvctl::cmd {
namespace {

constexpr size_t kPageSize = 1000;

struct GetArgs {
  std::optional<std::string> key;
  bool prefix = false;
  bool keys_only = false;
  size_t limit = 0;
  OutputFormat output = OutputFormat::kText;
};

core::Status RunList(client::KvClient& client, const GetArgs& args) {
  const std::string prefix = args.key.value_or("");
  std::vector<client::Item> items;
  std::optional<std::string> after;
  do {
    size_t want = kPageSize;
    if (args.limit > 0) want = std::min(want, args.limit - items.size());
    auto page = client.List(prefix, after, want, args.keys_only);
    if (!page) return page.error();
    for (auto& item : page->items) items.push_back(std::move(item));
    after = page->next;
  } while (after && (args.limit == 0 || items.size() < args.limit));

  if (args.output == OutputFormat::kJson) return WriteStdout(ItemsJson(items, args.keys_only));
  std::string out;
  for (const client::Item& item : items) {
    out += item.key;
    out += '\n';
    if (!args.keys_only) {
      out += item.value;
      out += '\n';
    }
  }
  return WriteStdout(out);
}

core::Status RunGet(const CommandContext& ctx, const GetArgs& args) {
  if (!args.prefix && !args.key) {
    return core::Status::InvalidArgument("no KEY given (give a KEY, or --prefix to list keys)");
  }
  if (!args.prefix && (args.keys_only || args.limit > 0)) {
    return core::Status::InvalidArgument("--keys-only and --limit work only with --prefix (add --prefix, or drop them)");
  }
  auto client = MakeClient(ctx);
  if (!client) return client.error();
  if (args.prefix) return RunList(**client, args);

  auto value = (*client)->Get(*args.key);
  if (!value) {
    if (value.error().IsNotFound()) {
      return core::Status::NotFound(
          fmt::format("key {} not found (kvctl get --prefix lists the keys there are)", *args.key));
    }
    return value.error();
  }
  if (args.output == OutputFormat::kJson) return WriteStdout(ValueJson(*args.key, *value));
  return WriteStdout(value->bytes);
}

}  // namespace

void AddGetCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<GetArgs>();
  CLI::App* sub = app.add_subcommand("get", "Print KEY's value, raw; or list keys with --prefix");
  sub->group(kGroupClient);
  sub->add_option("key", args->key, "The key; with --prefix, the prefix (omitted: every key)");
  sub->add_flag("--prefix", args->prefix, "List every key starting with KEY, in byte order");
  sub->add_flag("--keys-only", args->keys_only, "With --prefix: print only the keys");
  sub->add_option("--limit", args->limit, "With --prefix: print at most this many keys (0: all)");
  AddOutputOption(*sub, args->output);
  config::AddSettingFlags(*sub, config::Scope::kClient, ctx.flags);
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunGet(ctx, *args); }; });
}

}  // namespace kvctl::cmd
