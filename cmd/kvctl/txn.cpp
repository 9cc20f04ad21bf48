// kvctl txn [--file F]: a transaction (SPEC §6) read as JSON from standard
// input or a file, sent as it is to POST /v1/txn. Exit 0 when its compares
// held (the success ops ran), 4 when they did not (the failure ops ran).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd/kvctl/client_setup.h"
#include "cmd/kvctl/input.h"
#include "cmd/kvctl/output.h"
#include "cmd/kvctl/standard_streams.h"
#include "cmd/kvctl/text.h"
#include "lib/core/base64.h"

namespace kvctl::cmd {
namespace {

using nlohmann::json;

struct TxnArgs {
  std::optional<std::string> file;
  OutputFormat output = OutputFormat::kText;
};

constexpr const char* kSeeMan = "see kvctl-txn(1) for the transaction's JSON";

// The transaction's JSON, whole and within the server's body limit
// (limits.max_value_bytes), checked to be JSON before it is sent.
core::Result<std::string> ReadTransaction(const TxnArgs& args, size_t limit, json* parsed) {
  const std::string what = args.file ? "--file " + *args.file : "standard input";
  const BoundedInput input{
      .what = what,
      .limit = limit,
      .unreadable_hint = "give the transaction with --file or on standard input",
      .read_failed_hint = "give a readable file",
      .too_large = [&what, limit](const std::string& size) {
        return core::Status::InvalidArgument(fmt::format(
            "the transaction from {} {}, over limits.max_value_bytes ({} bytes), the most a request body may be "
            "(split it into smaller transactions, or raise limits.max_value_bytes here and on the server)",
            what, size, limit));
      }};
  core::Result<std::string> text = core::Status::Ok();
  if (args.file) {
    const int fd = ::open(args.file->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return core::Status::InvalidArgument(
          fmt::format("cannot open {}: {} (check the path and its permissions)", what, std::strerror(errno)));
    }
    text = ReadBounded(fd, input);
    ::close(fd);
  } else {
    if (StandardStreamWasClosed(STDIN_FILENO)) {
      return core::Status::InvalidArgument(
          "cannot read the transaction from standard input: it is closed (give it with --file or on standard "
          "input)");
    }
    if (isatty(STDIN_FILENO)) {
      std::fprintf(stderr, "kvctl: reading the transaction from standard input (end it with Ctrl-D)\n");
    }
    text = ReadBounded(STDIN_FILENO, input);
  }
  if (!text) return text.error();
  try {
    *parsed = json::parse(*text);
  } catch (const json::exception& e) {
    return core::Status::InvalidArgument(fmt::format("the transaction from {} is not JSON: {} ({})", what, e.what(), kSeeMan));
  }
  if (!parsed->is_object()) {
    return core::Status::InvalidArgument(
        fmt::format("the transaction from {} is not a JSON object ({})", what, kSeeMan));
  }
  return text;
}

// The key of the put at `index` of the branch that ran, as sent (the
// server checked it was base64); "" if it cannot be found.
std::string PutKey(const json& txn, bool succeeded, size_t index) {
  const auto branch = txn.find(succeeded ? "success" : "failure");
  if (branch == txn.end() || !branch->is_array() || index >= branch->size()) return {};
  const json& op = (*branch)[index];
  if (!op.is_object() || !op.contains("put") || !op["put"].is_object()) return {};
  const auto key = op["put"].find("key");
  if (key == op["put"].end() || !key->is_string()) return {};
  auto bytes = core::Base64Decode(key->get<std::string>());
  return bytes ? *bytes : std::string();
}

// What reaches a terminal is printable text or quoted (text.h); a pipe or
// a file gets the exact bytes.
std::string Shown(const std::string& bytes, bool terminal) {
  return terminal && !IsPrintableText(bytes) ? QuoteBytes(bytes) : bytes;
}

std::string TextOf(const client::TxnReply& reply, const json& txn, bool terminal) {
  std::string out = reply.succeeded ? "SUCCEEDED\n" : "FAILED\n";
  for (size_t i = 0; i < reply.results.size(); ++i) {
    const client::TxnOpReply& r = reply.results[i];
    switch (r.kind) {
      case client::TxnOpReply::Kind::kPut:
        out += fmt::format("PUT {} revision {}\n", Shown(PutKey(txn, reply.succeeded, i), terminal), r.revision);
        break;
      case client::TxnOpReply::Kind::kDelete: out += fmt::format("DELETE {}\n", r.deleted); break;
      case client::TxnOpReply::Kind::kGet:
        for (const client::Item& item : r.items) {
          out += Shown(item.key, terminal) + '\n';
          out += Shown(item.value, terminal) + '\n';
        }
        break;
    }
  }
  return out;
}

core::Status RunTxn(const CommandContext& ctx, const TxnArgs& args) {
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  json txn;
  auto body = ReadTransaction(args, cfg->limits.max_value_bytes, &txn);
  if (!body) return body.error();
  auto client = MakeClient(*cfg);
  if (!client) return client.error();
  auto reply = (*client)->Txn(*body);
  if (!reply) return reply.error();
  const std::string shown =
      args.output == OutputFormat::kJson ? reply->json : TextOf(*reply, txn, StdoutIsTerminal());
  if (core::Status s = WriteStdout(shown); !s.ok()) return s;
  if (reply->succeeded) return core::Status::Ok();
  return core::Status::FailedPrecondition(fmt::format(
      "the transaction's compares did not all hold: its failure ops ran, at revision {} (read the keys with "
      "kvctl get KEY -o json, and retry with compares that hold)",
      reply->revision));
}

}  // namespace

void AddTxnCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<TxnArgs>();
  CLI::App* sub = app.add_subcommand(
      "txn", "Run a transaction: compares, then the success or the failure ops, all at one revision");
  sub->group(kGroupClient);
  sub->add_option("--file", args->file, "Read the transaction's JSON from this file (default: standard input)")
      ->type_name("FILE");
  AddOutputOption(*sub, args->output);
  config::AddSettingFlags(*sub, config::Scope::kClient, ctx.flags);
  sub->footer(
      "The transaction is JSON as POST /v1/txn takes it, keys and values in base64:\n"
      "  {\"compare\":[{\"key\":\"...\",\"target\":\"value|revision|create_revision|version|lease\",\n"
      "               \"op\":\"=|!=|<|>\",\"value\":...}],\n"
      "   \"success\":[{\"put\":{\"key\":\"...\",\"value\":\"...\"}}, {\"delete\":{\"key\":\"...\"}}, ...],\n"
      "   \"failure\":[{\"get\":{\"key\":\"...\"}}, ...]}\n"
      "Exit 0 when every compare held (the success ops ran), 4 when one did not (the failure ops ran).\n"
      "See kvctl-txn(1) for every field and an example with jq and base64.");
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunTxn(ctx, *args); }; });
}

}  // namespace kvctl::cmd
