// kvctl replay: read and verify a data dir's (or a PostgreSQL database's)
// history without a server (or beside a running one), print its events or
// the state as of a revision, or copy it into a new data dir or database.
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/output.h"
#include "cmd/kvctl/replay_output.h"
#include "lib/core/history_copy.h"
#include "lib/core/history_reader.h"
#include "lib/pg/pg_history.h"

namespace kvctl::cmd {
namespace {

constexpr size_t kFlushBytes = 64 << 10;

struct ReplayArgs {
  uint64_t from = 0;
  uint64_t to = 0;  // 0: to the end
  bool state = false;
  bool check = false;
  std::string into;
  OutputFormat output = OutputFormat::kText;
};

core::Status Validate(const ReplayArgs& a) {
  if (a.to != 0 && a.from > a.to) {
    return core::Status::InvalidArgument(
        fmt::format("--from {} is past --to {} (give --from at most --to)", a.from, a.to));
  }
  if (a.state && a.from != 0) {
    return core::Status::InvalidArgument("--from does not go with --state (--state shows the state as of --to; drop --from)");
  }
  if (a.check && (a.state || a.from != 0 || a.to != 0)) {
    return core::Status::InvalidArgument(
        "--check does not go with --state, --from or --to (--check verifies the whole log; drop them)");
  }
  if (!a.into.empty() && (a.state || a.check || a.from != 0)) {
    return core::Status::InvalidArgument(
        "--into does not go with --state, --check or --from (--into copies the history from its start; drop them)");
  }
  return core::Status::Ok();
}

// Buffers stdout so a long history is not one write per line.
class Printer {
 public:
  core::Status Add(std::string line) {
    buffer_ += line;
    return buffer_.size() >= kFlushBytes ? Flush() : core::Status::Ok();
  }
  core::Status Flush() {
    core::Status s = WriteStdout(buffer_);
    buffer_.clear();
    return s;
  }

 private:
  std::string buffer_;
};

std::string ReportText(const std::string& dir, const core::HistoryReport& r) {
  std::string out = fmt::format("ok: {} verified: {} files, {} records, {} bytes, last revision {}", dir,
                                r.files, r.records, r.bytes, r.last_revision);
  if (r.covered_revision > 0) {
    out += fmt::format(" (history up to revision {} is compacted into a snapshot)", r.covered_revision);
  }
  out += "\n";
  if (r.incomplete_tail) {
    out += fmt::format(
        "stopped at {} offset {}: {} (a write in progress, or left by a crash; never acknowledged, "
        "and the server cuts it off when it starts)\n",
        r.tail_file, r.tail_offset, r.tail_reason);
  } else {
    out += "stopped at the end of the log\n";
  }
  return out;
}

std::string ReportJson(const std::string& dir, const core::HistoryReport& r) {
  nlohmann::json j{{"ok", true},
                   {"data_dir", dir},
                   {"files", r.files},
                   {"records", r.records},
                   {"bytes", r.bytes},
                   {"last_revision", r.last_revision},
                   {"covered_revision", r.covered_revision},
                   {"incomplete_tail", nullptr}};
  if (r.incomplete_tail) {
    j["incomplete_tail"] = {{"file", r.tail_file}, {"offset", r.tail_offset}, {"reason", r.tail_reason}};
  }
  return j.dump() + "\n";
}

// Where replay reads from: a data dir, or a PostgreSQL database.
struct Source {
  std::string where;  // the dir, or the database as DescribeTarget shows it
  core::HistorySource read;
  std::optional<pg::PgDatabase> pg;
};

core::Status RunCheck(const Source& source, const ReplayArgs& args) {
  const std::string& dir = source.where;
  core::HistoryReport report;
  core::Status s = source.read([](const core::LogRecord&, bool) { return core::Status::Ok(); }, &report);
  if (!s.ok()) return s;
  return WriteStdout(args.output == OutputFormat::kJson ? ReportJson(dir, report) : ReportText(dir, report));
}

core::Status RunState(const Source& source, const ReplayArgs& args) {
  core::HistoryReport report;
  bool read_whole = false;
  const core::HistorySource watched = [&](const core::HistorySink& sink, core::HistoryReport* r) {
    core::Status s = source.read(sink, r);
    read_whole = s.ok();
    return s;
  };
  auto state = core::ReadStateAt(watched, args.to, &report);
  // One rule for every revision flag: a revision past the end of the log
  // stands for its end, as --from past it prints nothing and --to past it
  // reads to the end. ReadStateAt refuses it once it has read the whole
  // log; the state at the end is what it gives for 0 (a second read, only
  // in this case).
  if (!state && read_whole && args.to > report.last_revision) {
    core::HistoryReport again;
    state = core::ReadStateAt(source.read, 0, &again);
  }
  if (!state) return state.error();
  Printer out;
  for (const auto& [key, entry] : *state) {
    std::string line = args.output == OutputFormat::kJson ? StateJson(key, entry.value, entry.revision, entry.meta)
                                                          : StateText(key, entry.value, entry.revision, entry.meta);
    if (core::Status s = out.Add(std::move(line)); !s.ok()) return s;
  }
  return out.Flush();
}

core::Status RunEvents(const Source& source, const ReplayArgs& args) {
  core::HistoryReport report;
  Printer out;
  core::Status read = source.read(
      [&](const core::LogRecord& r, bool from_snapshot) {
        if (r.revision < args.from || (args.to != 0 && r.revision > args.to)) return core::Status::Ok();
        return out.Add(args.output == OutputFormat::kJson ? EventJson(r, from_snapshot) : EventText(r));
      },
      &report);
  // What was read before any damage is printed, then the damage is reported.
  core::Status flushed = out.Flush();
  return read.ok() ? flushed : read;
}

// --into a PostgreSQL database rather than a dir: a postgres:// URI or a
// libpq key=value string (a dir name with '=' in it is not supported).
bool IntoIsDatabase(const std::string& into) {
  return into.starts_with("postgres://") || into.starts_with("postgresql://") ||
         into.find('=') != std::string::npos;
}

core::Result<core::CopyReport> Copy(const Source& source, const ReplayArgs& args,
                                    const config::Config& cfg) {
  if (IntoIsDatabase(args.into)) {
    return pg::CopyHistoryToPg(source.read, {args.into, cfg.postgres.connect_timeout}, args.to);
  }
  if (!source.pg) {
    return core::CopyHistoryToDataDir(core::PosixFileSystem(), source.where, args.into, args.to);
  }
  if (args.to != 0) {
    auto covered = pg::PgCoveredRevision(*source.pg);
    if (!covered) return covered.error();
    if (args.to < *covered) {
      return core::Status::InvalidArgument(fmt::format(
          "the history before revision {} was compacted (give --to {} or later)", *covered, *covered));
    }
  }
  return core::CopyHistoryToDataDir(core::PosixFileSystem(), source.read, args.into, args.to);
}

core::Status RunInto(const Source& source, const ReplayArgs& args, const config::Config& cfg) {
  const std::string& dir = source.where;
  auto copied = Copy(source, args, cfg);
  if (!copied) return copied.error();
  if (args.output == OutputFormat::kJson) {
    const std::string into =
        IntoIsDatabase(args.into) ? pg::DescribeDatabase(args.into) : args.into;
    nlohmann::json j{{"from", dir},
                     {"into", into},
                     {"records", copied->records_written},
                     {"last_revision", copied->last_revision},
                     {"covered_revision", copied->source.covered_revision}};
    return WriteStdout(j.dump() + "\n");
  }
  return WriteStdout(fmt::format(
      "copied {} records (up to revision {}) from {} into {}\n", copied->records_written,
      copied->last_revision, dir,
      IntoIsDatabase(args.into) ? pg::DescribeDatabase(args.into) : args.into));
}

core::Status RunReplay(const CommandContext& ctx, const ReplayArgs& args) {
  if (core::Status s = Validate(args); !s.ok()) return s;
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  // PostgreSQL when --dsn is given, or the config says so and no --data-dir.
  const bool from_pg = ctx.flags.contains("postgres.dsn") ||
                       (cfg->storage.backend == "postgres" && !ctx.flags.contains("storage.data_dir"));
  Source source;
  if (from_pg) {
    source.pg = pg::PgDatabase{cfg->postgres.dsn, cfg->postgres.connect_timeout};
    source.where = pg::DescribeDatabase(cfg->postgres.dsn);
    source.read = pg::PgHistorySource(*source.pg);
  } else {
    source.where = cfg->storage.data_dir;
    source.read = [dir = source.where](const core::HistorySink& sink, core::HistoryReport* report) {
      return core::ReadHistory(core::PosixFileSystem(), dir, sink, report);
    };
  }
  if (!args.into.empty()) return RunInto(source, args, *cfg);
  if (args.check) return RunCheck(source, args);
  if (args.state) return RunState(source, args);
  return RunEvents(source, args);
}

}  // namespace

void AddReplayCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* sub = app.add_subcommand(
      "replay",
      "Verify the log (a data dir, or PostgreSQL with --dsn) and print its events, or the state "
      "as of a revision; or copy it (--into a dir or a database)");
  sub->group(kGroupOperator);
  sub->add_option("--from", args->from, "Print events from this revision on")->type_name("REV");
  sub->add_option("--to", args->to, "Stop after this revision; with --state, the point in time")
      ->type_name("REV");
  sub->add_flag("--state", args->state, "Print every live key and value as of --to (default: the end)");
  sub->add_flag("--check", args->check,
                "Only verify every checksum and print a report: files, records, bytes, where it stopped");
  sub->add_option("--into", args->into,
                  "Copy the history, keeping revisions, into this new, empty data dir, or into "
                  "this migrated, empty PostgreSQL database (a postgres:// URI or key=value DSN)")
      ->type_name("DIR|DSN");
  AddOutputOption(*sub, args->output);
  config::AddSettingFlags(*sub, config::Scope::kReplay, ctx.flags);
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunReplay(ctx, *args); }; });
}

}  // namespace kvctl::cmd
