// kvctl compact: through the running server (--addr, the default), or
// offline on a data dir no server holds (--data-dir).
#include <chrono>
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd/kvctl/client_setup.h"
#include "cmd/kvctl/command.h"
#include "cmd/kvctl/output.h"
#include "lib/core/file_log.h"
#include "lib/server/api.h"

namespace kvctl::cmd {
namespace {

// The deadline of a compaction through the server, its whole request:
// compaction reads and rewrites the whole live state, far more than one
// key request's client.timeout (which still bounds connecting).
constexpr std::chrono::hours kServerCompactionWait{1};

struct CompactArgs {
  OutputFormat output = OutputFormat::kText;
};

std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1000) return fmt::format("{} B", bytes);
  if (bytes < 1000 * 1000) return fmt::format("{:.1f} kB", static_cast<double>(bytes) / 1e3);
  if (bytes < 1000 * 1000 * 1000) return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
  return fmt::format("{:.2f} GB", static_cast<double>(bytes) / 1e9);
}

// "1 file", "2 files".
std::string Count(uint64_t n, const char* noun) { return fmt::format("{} {}{}", n, noun, n == 1 ? "" : "s"); }

std::string ReportText(const std::string& where, const core::CompactionStats& s) {
  if (!s.compacted) {
    return fmt::format("nothing to compact in {}: the log holds no history beyond the live keys ({})\n",
                       where, HumanBytes(s.bytes_after));
  }
  const uint64_t freed = s.bytes_before > s.bytes_after ? s.bytes_before - s.bytes_after : 0;
  return fmt::format(
      "compacted {} up to revision {}: {} -> {} ({} freed); {} read, {} kept, {} dropped; {} removed; {:.2f} s\n",
      where, s.covered_revision, HumanBytes(s.bytes_before), HumanBytes(s.bytes_after), HumanBytes(freed),
      Count(s.records_read, "record"), s.records_written, s.records_read - s.records_written,
      Count(s.files_removed, "file"), s.seconds);
}

// The server's JSON (POST /v1/admin/compact), but a compaction that did
// nothing covers no revision: its covered_revision is null, where 0 would
// read as "up to revision 0".
std::string ReportJson(const core::CompactionStats& s) {
  nlohmann::json j = nlohmann::json::parse(server::KvApi::CompactionJson(s));
  if (!s.compacted) j["covered_revision"] = nullptr;
  return j.dump() + "\n";
}

core::Result<core::CompactionStats> CompactOffline(const config::Config& cfg, core::Logger& logger) {
  const std::string& dir = cfg.storage.data_dir;
  if (!core::PosixFileSystem().Exists(dir)) {
    return core::Status::InvalidArgument(fmt::format("no data dir at {} (give the server's --data-dir)", dir));
  }
  core::FileLogOptions options{.dir = dir,
                               .fsync = core::FsyncPolicy::kAlways,
                               .segment_bytes = cfg.storage.segment_bytes,
                               .fs = nullptr,
                               .logger = &logger,
                               // As the server would: watchers of the next
                               // server find the retained tail.
                               .history_retention = cfg.storage.history_retention};
  auto log = core::FileLog::Open(options, [](const core::LogRecord&) { return core::Status::Ok(); }, nullptr);
  if (!log) {
    if (log.error().IsBusy()) {
      return core::Status::Busy(fmt::format(
          "{} is held by a running server or another compaction (compact through the server "
          "instead: kvctl compact --addr URL)",
          dir));
    }
    return log.error();
  }
  auto stats = (*log)->Compact();
  core::Status closed = (*log)->Close();
  if (!stats) return stats.error();
  if (!closed.ok()) return closed;
  return stats;
}

core::Status RunCompact(const CommandContext& ctx, const CompactArgs& args) {
  const bool offline = ctx.flags.contains("storage.data_dir");
  if (offline && ctx.flags.contains("client.addr")) {
    return core::Status::InvalidArgument(
        "--addr and --data-dir both given (give --addr to compact through a running server, or --data-dir to "
        "compact offline)");
  }
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();

  std::string where;
  core::Result<core::CompactionStats> stats = core::Status::Ok();
  if (offline) {
    core::Logger logger(core::LogLevel::kWarn,
                        cfg->log.format == "json" ? core::LogFormat::kJson : core::LogFormat::kText);
    where = cfg->storage.data_dir;
    stats = CompactOffline(*cfg, logger);
  } else {
    auto client = MakeClient(ctx);
    if (!client) return client.error();
    where = (*client)->base_url();
    stats = (*client)->Compact(kServerCompactionWait);
  }
  if (!stats) return stats.error();
  if (args.output == OutputFormat::kJson) return WriteStdout(ReportJson(*stats));
  return WriteStdout(ReportText(where, *stats));
}

}  // namespace

void AddCompactCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<CompactArgs>();
  CLI::App* sub = app.add_subcommand(
      "compact",
      "Shrink the log to the live keys: through the running server (--addr), or offline (--data-dir)");
  sub->group(kGroupOperator);
  AddOutputOption(*sub, args->output);
  config::AddSettingFlags(*sub, config::Scope::kCompact, ctx.flags);
  sub->footer(fmt::format(
      "Through a server, a compaction has a deadline of its own, {} hour for the whole request;\n"
      "--timeout bounds only connecting.",
      kServerCompactionWait.count()));
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunCompact(ctx, *args); }; });
}

}  // namespace kvctl::cmd
