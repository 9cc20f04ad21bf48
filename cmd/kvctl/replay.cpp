// kvctl replay: read and verify a data dir's history without a server (or
// beside a running one), print its events or the state as of a revision,
// or copy it into a new data dir.
#include <memory>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/output.h"
#include "cmd/kvctl/replay_output.h"
#include "lib/core/history_copy.h"
#include "lib/core/history_reader.h"

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
    return core::Status::InvalidArgument(fmt::format("--from {} is past --to {}", a.from, a.to));
  }
  if (a.state && a.from != 0) {
    return core::Status::InvalidArgument("--state shows the state as of --to; --from does not apply");
  }
  if (a.check && (a.state || a.from != 0 || a.to != 0)) {
    return core::Status::InvalidArgument("--check verifies the whole log; drop --state, --from and --to");
  }
  if (!a.into.empty() && (a.state || a.check || a.from != 0)) {
    return core::Status::InvalidArgument("--into copies the history from its start; drop --state, --check and --from");
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

core::Status RunCheck(const std::string& dir, const ReplayArgs& args) {
  core::HistoryReport report;
  core::Status s = core::ReadHistory(
      core::PosixFileSystem(), dir, [](const core::LogRecord&, bool) { return core::Status::Ok(); },
      &report);
  if (!s.ok()) return s;
  return WriteStdout(args.output == OutputFormat::kJson ? ReportJson(dir, report) : ReportText(dir, report));
}

core::Status RunState(const std::string& dir, const ReplayArgs& args) {
  core::HistoryReport report;
  auto state = core::ReadStateAt(core::PosixFileSystem(), dir, args.to, &report);
  if (!state) return state.error();
  Printer out;
  for (const auto& [key, entry] : *state) {
    std::string line = args.output == OutputFormat::kJson ? StateJson(key, entry.value, entry.revision)
                                                          : StateText(key, entry.value, entry.revision);
    if (core::Status s = out.Add(std::move(line)); !s.ok()) return s;
  }
  return out.Flush();
}

core::Status RunEvents(const std::string& dir, const ReplayArgs& args) {
  core::HistoryReport report;
  Printer out;
  core::Status read = core::ReadHistory(
      core::PosixFileSystem(), dir,
      [&](const core::LogRecord& r, bool from_snapshot) {
        if (r.revision < args.from || (args.to != 0 && r.revision > args.to)) return core::Status::Ok();
        return out.Add(args.output == OutputFormat::kJson ? EventJson(r, from_snapshot) : EventText(r));
      },
      &report);
  // What was read before any damage is printed, then the damage is reported.
  core::Status flushed = out.Flush();
  return read.ok() ? flushed : read;
}

core::Status RunInto(const std::string& dir, const ReplayArgs& args) {
  auto copied = core::CopyHistoryToDataDir(core::PosixFileSystem(), dir, args.into, args.to);
  if (!copied) return copied.error();
  if (args.output == OutputFormat::kJson) {
    nlohmann::json j{{"from", dir},
                     {"into", args.into},
                     {"records", copied->records_written},
                     {"last_revision", copied->last_revision},
                     {"covered_revision", copied->source.covered_revision}};
    return WriteStdout(j.dump() + "\n");
  }
  return WriteStdout(fmt::format("copied {} records (up to revision {}) from {} into {}\n",
                                 copied->records_written, copied->last_revision, dir, args.into));
}

core::Status RunReplay(const CommandContext& ctx, const ReplayArgs& args) {
  if (core::Status s = Validate(args); !s.ok()) return s;
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  const std::string& dir = cfg->storage.data_dir;
  if (!args.into.empty()) return RunInto(dir, args);
  if (args.check) return RunCheck(dir, args);
  if (args.state) return RunState(dir, args);
  return RunEvents(dir, args);
}

}  // namespace

void AddReplayCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* sub = app.add_subcommand(
      "replay", "Verify a data dir's log and print its events, or the state as of a revision");
  sub->group(kGroupOperator);
  sub->add_option("--from", args->from, "Print events from this revision on")->type_name("REV");
  sub->add_option("--to", args->to, "Stop after this revision; with --state, the point in time")
      ->type_name("REV");
  sub->add_flag("--state", args->state, "Print every live key and value as of --to (default: the end)");
  sub->add_flag("--check", args->check,
                "Only verify every checksum and print a report: files, records, bytes, where it stopped");
  sub->add_option("--into", args->into, "Copy the history into this new, empty data dir, keeping revisions")
      ->type_name("DIR");
  AddOutputOption(*sub, args->output);
  config::AddSettingFlags(*sub, config::Scope::kReplay, ctx.flags);
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunReplay(ctx, *args); }; });
}

}  // namespace kvctl::cmd
