// kvctl put KEY [VALUE]: VALUE omitted or "-" reads stdin; --file reads a file.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/client_setup.h"
#include "cmd/kvctl/output.h"

namespace kvctl::cmd {
namespace {

struct PutArgs {
  std::string key;
  std::optional<std::string> value;
  std::optional<std::string> file;
  std::optional<uint64_t> if_match;
  bool create_only = false;
  OutputFormat output = OutputFormat::kText;
};

core::Result<std::string> ReadAll(std::FILE* in, const std::string& what) {
  std::string data;
  char buf[1 << 16];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), in)) > 0) data.append(buf, n);
  if (std::ferror(in)) {
    return core::Status::IOError(fmt::format("cannot read {} (give a readable file, or the value as VALUE)", what));
  }
  return data;
}

core::Result<std::string> ReadValue(const PutArgs& args) {
  if (args.file) {
    if (args.value) {
      return core::Status::InvalidArgument("the value is given twice, as VALUE and with --file (give one of them)");
    }
    std::FILE* f = std::fopen(args.file->c_str(), "rb");
    if (f == nullptr) {
      return core::Status::InvalidArgument(
          fmt::format("cannot open --file {}: {} (check the path and its permissions)", *args.file, std::strerror(errno)));
    }
    auto data = ReadAll(f, *args.file);
    std::fclose(f);
    return data;
  }
  if (args.value && *args.value != "-") return *args.value;
  if (isatty(STDIN_FILENO)) std::fprintf(stderr, "kvctl: reading the value from standard input (end it with Ctrl-D)\n");
  return ReadAll(stdin, "standard input");
}

core::Status RunPut(const CommandContext& ctx, const PutArgs& args) {
  auto value = ReadValue(args);
  if (!value) return value.error();
  auto client = MakeClient(ctx);
  if (!client) return client.error();
  auto reply = (*client)->Put(args.key, *value, {args.if_match, args.create_only});
  if (!reply) {
    const core::Status& e = reply.error();
    if (!e.IsFailedPrecondition()) return e;
    return core::Status::FailedPrecondition(fmt::format(
        "put {} refused: {} ({})", args.key, e.message(),
        args.create_only ? "--create-only writes only a key that does not exist yet"
                         : "kvctl get KEY -o json shows the key's revision now; retry --if-match with it"));
  }
  if (args.output == OutputFormat::kJson) return WriteStdout(PutJson(args.key, *reply));
  return core::Status::Ok();
}

}  // namespace

void AddPutCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<PutArgs>();
  CLI::App* sub = app.add_subcommand("put", "Set KEY to VALUE (or to stdin, or to a file's bytes)");
  sub->group(kGroupClient);
  sub->add_option("key", args->key, "The key (any bytes but empty; '/' is an ordinary byte)")->required();
  sub->add_option("value", args->value, "The value; omitted or - reads standard input (binary-safe)");
  sub->add_option("--file", args->file, "Read the value from this file")->type_name("FILE");
  sub->add_option("--if-match", args->if_match,
                  "Write only if the key is at this revision (0: only if it does not exist); else exit 4");
  sub->add_flag("--create-only", args->create_only, "Write only if the key does not exist; else exit 4");
  AddOutputOption(*sub, args->output);
  config::AddSettingFlags(*sub, config::Scope::kClient, ctx.flags);
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunPut(ctx, *args); }; });
}

}  // namespace kvctl::cmd
