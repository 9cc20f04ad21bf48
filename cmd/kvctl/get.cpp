// kvctl get KEY: the raw value on stdout, nothing added.
// kvctl get --prefix [P]: every key under P, etcdctl-style (key line, value line).
// On a terminal, only printable text, as curl does ("Binary output can mess
// up your terminal"): a stored "\x1b]0;pwned\a" would retitle the window and
// a binary value flood the screen; a file or a pipe gets the exact bytes.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/client_setup.h"
#include "cmd/kvctl/output.h"
#include "cmd/kvctl/text.h"

namespace kvctl::cmd {
namespace {

constexpr size_t kPageSize = 1000;

struct GetArgs {
  std::optional<std::string> key;
  bool prefix = false;
  bool keys_only = false;
  int64_t limit = 0;
  OutputFormat output = OutputFormat::kText;
};

// Why `bytes` (what: "the value of \"k\"") do not go to a terminal, or Ok.
core::Status ForTerminal(const std::string& what, std::string_view bytes, const char* more_hint) {
  const size_t at = FirstUnprintable(bytes);
  if (at == std::string_view::npos) return core::Status::Ok();
  const size_t width = static_cast<unsigned char>(bytes[at]) == 0xc2 && at + 1 < bytes.size() ? 2 : 1;
  const std::string shown = QuoteBytes(bytes.substr(at, width));
  return core::Status::InvalidArgument(fmt::format(
      "{} is not printable text, so it is not written to a terminal: byte {} of {} is {} (redirect it: "
      "kvctl get KEY > FILE, or pipe it: kvctl get KEY | xxd; {}-o json shows it in base64)",
      what, at, bytes.size(), shown.substr(1, shown.size() - 2), more_hint));
}

// Prints each page as it comes, so a listing takes one page's memory
// however many keys there are (or a server keeps sending).
core::Status RunList(client::KvClient& client, const GetArgs& args) {
  const std::string prefix = args.key.value_or("");
  const bool json = args.output == OutputFormat::kJson;
  const bool terminal = !json && StdoutIsTerminal();
  std::string out = json ? "{\"items\":[" : "";
  int64_t printed = 0;
  std::optional<std::string> after;
  do {
    size_t want = kPageSize;
    if (args.limit > 0) want = std::min(want, static_cast<size_t>(args.limit - printed));
    auto page = client.List(prefix, after, want, args.keys_only);
    if (!page) return page.error();
    for (const client::Item& item : page->items) {
      if (json) {
        if (printed > 0) out += ',';
        out += ItemJson(item, args.keys_only);
      } else {
        core::Status shown = core::Status::Ok();
        if (terminal) shown = ForTerminal("the key " + QuoteBytes(item.key), item.key, "");
        if (terminal && shown.ok() && !args.keys_only) {
          shown = ForTerminal("the value of " + QuoteBytes(item.key), item.value, "--keys-only lists only the keys; ");
        }
        if (!shown.ok()) {
          // What came before stays printed, as when a later page fails.
          if (core::Status s = WriteStdout(out); !s.ok()) return s;
          return shown;
        }
        out += item.key;
        out += '\n';
        if (!args.keys_only) {
          out += item.value;
          out += '\n';
        }
      }
      ++printed;
    }
    after = std::move(page->next);
    if (core::Status s = WriteStdout(out); !s.ok()) return s;
    out.clear();
  } while (after && (args.limit == 0 || printed < args.limit));
  return json ? WriteStdout("]}\n") : core::Status::Ok();
}

core::Status RunGet(const CommandContext& ctx, const GetArgs& args) {
  if (!args.prefix && !args.key) {
    return core::Status::InvalidArgument("no KEY given (give a KEY, or --prefix to list keys)");
  }
  if (!args.prefix) {
    if (core::Status s = CheckKey(*args.key); !s.ok()) return s;
  }
  if (args.limit < 0) {
    return core::Status::InvalidArgument(
        fmt::format("--limit {} is negative (give the most keys to print, or 0 for all)", args.limit));
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
          fmt::format("key {} not found (kvctl get --prefix lists the keys there are)", QuoteBytes(*args.key)));
    }
    return value.error();
  }
  if (args.output == OutputFormat::kJson) return WriteStdout(ValueJson(*args.key, *value));
  if (!StdoutIsTerminal()) return WriteStdout(value->bytes);
  if (core::Status s = ForTerminal("the value of " + QuoteBytes(*args.key), value->bytes, ""); !s.ok()) return s;
  // The prompt that follows starts on a line of its own.
  if (!value->bytes.empty() && value->bytes.back() != '\n') value->bytes += '\n';
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
  sub->footer(
      "The value goes to a file or a pipe as it is, byte for byte. On a terminal, a value that is not\n"
      "printable text (control characters, invalid UTF-8) is refused (exit 2), and a printable one\n"
      "gets a final newline if it has none.\n"
      "--timeout is the deadline of each whole request (with --prefix, of each page): connecting,\n"
      "sending and the whole answer. A value over limits.max_value_bytes (default 1MiB) is not read\n"
      "(exit 3); raise it in the config file or with KVCTL_LIMITS_MAX_VALUE_BYTES.");
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunGet(ctx, *args); }; });
}

}  // namespace kvctl::cmd
