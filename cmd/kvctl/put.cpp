// kvctl put KEY [VALUE]: VALUE omitted or "-" reads stdin; --file reads a file.
// --lease ID attaches the key to a lease; --ttl grants one of its own first.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/client_setup.h"
#include "cmd/kvctl/input.h"
#include "cmd/kvctl/lease_args.h"
#include "cmd/kvctl/output.h"
#include "cmd/kvctl/standard_streams.h"
#include "cmd/kvctl/text.h"

namespace kvctl::cmd {
namespace {

struct PutArgs {
  std::string key;
  std::optional<std::string> value;
  std::optional<std::string> file;
  std::optional<uint64_t> if_match;
  bool create_only = false;
  std::optional<std::string> lease;
  std::optional<std::string> ttl;
  OutputFormat output = OutputFormat::kText;
};

constexpr const char* kRaiseLimit =
    "raise limits.max_value_bytes in the config file or with KVCTL_LIMITS_MAX_VALUE_BYTES; the server's "
    "limit must be raised too";

core::Status TooLarge(const std::string& what, const std::string& size, size_t limit) {
  return core::Status::InvalidArgument(
      fmt::format("the value {} {}, over limits.max_value_bytes ({} bytes) ({})", what, size, limit, kRaiseLimit));
}

// Reads all of `fd` (`what` names it: "--file PATH", "standard input"), but
// never more than limit + 1 bytes: a value over the limit is refused as soon
// as it shows.
core::Result<std::string> ReadValueFrom(int fd, const std::string& what, size_t limit) {
  return ReadBounded(fd, {.what = what,
                          .limit = limit,
                          .unreadable_hint = "give the value as VALUE, with --file, or on standard input",
                          .read_failed_hint = "give a readable file, or the value as VALUE",
                          .too_large = [&what, limit](const std::string& size) {
                            return TooLarge("from " + what, size, limit);
                          }});
}

core::Result<std::string> ReadValue(const PutArgs& args, size_t limit) {
  if (args.file) {
    const std::string what = "--file " + *args.file;
    const int fd = ::open(args.file->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return core::Status::InvalidArgument(
          fmt::format("cannot open {}: {} (check the path and its permissions)", what, std::strerror(errno)));
    }
    auto data = ReadValueFrom(fd, what, limit);
    ::close(fd);
    return data;
  }
  if (args.value && *args.value != "-") {
    if (args.value->size() > limit) {
      return TooLarge("given as VALUE", fmt::format("is {} bytes", args.value->size()), limit);
    }
    return *args.value;
  }
  if (isatty(STDIN_FILENO)) std::fprintf(stderr, "kvctl: reading the value from standard input (end it with Ctrl-D)\n");
  return ReadValueFrom(STDIN_FILENO, "standard input", limit);
}

bool ReadsStdin(const PutArgs& args) { return !args.file && (!args.value || *args.value == "-"); }

core::Status RunPut(const CommandContext& ctx, const PutArgs& args) {
  if (core::Status s = CheckKey(args.key); !s.ok()) return s;
  if (args.file && args.value) {
    return core::Status::InvalidArgument("the value is given twice, as VALUE and with --file (give one of them)");
  }
  // Standard input closed at start holds /dev/null now (standard_streams.h):
  // read, it would give an empty value.
  if (ReadsStdin(args) && StandardStreamWasClosed(STDIN_FILENO)) {
    return core::Status::InvalidArgument(
        "cannot read the value from standard input: it is closed (give the value as VALUE, with --file, or on "
        "standard input)");
  }
  uint64_t lease = 0;
  int64_t ttl = 0;
  if (args.lease) {
    auto id = ParseLeaseId(*args.lease);
    if (!id) return id.error();
    lease = *id;
  }
  if (args.ttl) {
    auto seconds = ParseLeaseTtl(*args.ttl, "--ttl");
    if (!seconds) return seconds.error();
    ttl = *seconds;
  }
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  auto value = ReadValue(args, cfg->limits.max_value_bytes);
  if (!value) return value.error();
  auto client = MakeClient(*cfg);
  if (!client) return client.error();
  if (ttl > 0) {
    // A lease of the key's own, kept alive by nothing: the key lives TTL.
    auto granted = (*client)->LeaseGrant(ttl);
    if (!granted) return granted.error();
    lease = granted->id;
    if (args.output == OutputFormat::kText) std::fprintf(stderr, "lease %llu\n", static_cast<unsigned long long>(lease));
  }
  auto reply = (*client)->Put(args.key, *value, {args.if_match, args.create_only}, lease);
  if (!reply) {
    const core::Status& e = reply.error();
    if (!e.IsFailedPrecondition()) return e;
    return core::Status::FailedPrecondition(fmt::format(
        "put {} refused: {} ({})", QuoteBytes(args.key), e.message(),
        args.create_only ? "--create-only writes only a key that does not exist yet"
                         : "kvctl get KEY -o json shows the key's revision now; retry --if-match with it"));
  }
  if (args.output == OutputFormat::kJson) return WriteStdout(PutJson(args.key, *reply, lease));
  return core::Status::Ok();
}

}  // namespace

void AddPutCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<PutArgs>();
  CLI::App* sub = app.add_subcommand("put", "Set KEY to VALUE (or to stdin, or to a file's bytes)");
  sub->group(kGroupClient);
  sub->add_option("key", args->key, "The key (any bytes but empty; '/' is an ordinary byte)")->required();
  sub->add_option("value", args->value,
                  "The value; omitted or - reads standard input (binary-safe); at most limits.max_value_bytes");
  sub->add_option("--file", args->file, "Read the value from this file")->type_name("FILE");
  sub->add_option("--if-match", args->if_match,
                  "Write only if the key is at this revision (0: only if it does not exist); else exit 4");
  sub->add_flag("--create-only", args->create_only, "Write only if the key does not exist; else exit 4");
  CLI::Option* lease = sub->add_option("--lease", args->lease,
                                       "Attach the key to lease ID (kvctl lease grant); exit 1 if it is not alive")
                           ->type_name("ID");
  sub->add_option("--ttl", args->ttl,
                  "Grant a lease of TTL (30s, 5m, or seconds) and attach the key to it; its id goes to stderr "
                  "(-o json: \"lease\"). Nothing keeps it alive")
      ->type_name("TTL")
      ->excludes(lease);
  AddOutputOption(*sub, args->output);
  config::AddSettingFlags(*sub, config::Scope::kClient, ctx.flags);
  sub->footer(
      "--timeout is the deadline of the whole request: connecting, sending and the whole answer.\n"
      "A value over limits.max_value_bytes (default 1MiB; set it in the config file or with\n"
      "KVCTL_LIMITS_MAX_VALUE_BYTES) is refused before it is sent (exit 2).");
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunPut(ctx, *args); }; });
}

}  // namespace kvctl::cmd
