// kvctl watch KEY [--prefix] [--from REV] [-o json] [-- CMD ARGS...]: every
// change to KEY (or under it) as it happens, across server restarts, none
// lost or repeated (lib/client/watch_session.h); or CMD run per change
// (lib/client/event_command.h).
#include <signal.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/client_setup.h"
#include "cmd/kvctl/output.h"
#include "cmd/kvctl/text.h"
#include "lib/client/event_command.h"
#include "lib/client/watch_session.h"

namespace kvctl::cmd {
namespace {

struct WatchArgs {
  std::string key;
  bool prefix = false;
  std::optional<uint64_t> from;
  OutputFormat output = OutputFormat::kText;
  std::vector<std::string> command;  // after --
};

// etcdctl's `watch` text: the op, the key, the value, a line each (a
// delete's value line is empty). On a terminal, a key or value that is not
// printable text is shown quoted (cmd/kvctl/text.h), so a stored escape
// sequence cannot act on it; pipes get the exact bytes.
std::string EventText(const client::WatchEvent& e, bool terminal) {
  auto shown = [terminal](const std::string& bytes) {
    return terminal && !IsPrintableText(bytes) ? QuoteBytes(bytes) : bytes;
  };
  return fmt::format("{}\n{}\n{}\n", e.deleted ? "DELETE" : "PUT", shown(e.key), shown(e.value));
}

// SIGINT (Ctrl-C) and SIGTERM end the watch with exit 0: they are blocked
// in every thread and taken by one of their own, which cancels the request
// in flight; a command running for an event gets Ctrl-C from the terminal
// itself and is waited for.
class StopOnSignal {
 public:
  StopOnSignal() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  void Start(client::KvClient* client) {
    thread_ = std::thread([this, client] {
      int signal = 0;
      sigwait(&set_, &signal);
      if (!finishing_) client->Cancel();
    });
  }
  // Before the client goes: wakes the thread if no signal came (the watch
  // is over either way) and waits for it.
  void Finish() {
    if (!thread_.joinable()) return;
    finishing_ = true;
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  ~StopOnSignal() { Finish(); }

 private:
  sigset_t set_;
  std::atomic<bool> finishing_{false};
  std::thread thread_;
};

core::Status RunWatch(const CommandContext& ctx, const WatchArgs& args) {
  if (!args.prefix) {
    if (core::Status s = CheckKey(args.key); !s.ok()) return s;
  }
  if (args.from && *args.from == 0) {
    return core::Status::InvalidArgument("--from 0: revisions start at 1 (give --from 1 for the whole history)");
  }
  if (!args.command.empty() && args.output == OutputFormat::kJson) {
    return core::Status::InvalidArgument("-o json prints events, a command after -- gets them instead (use one)");
  }
  // Before any thread starts, so that every thread inherits the mask.
  StopOnSignal stop;
  std::signal(SIGPIPE, SIG_IGN);
  auto client = MakeClient(ctx);
  if (!client) return client.error();
  stop.Start(client->get());

  const bool terminal = StdoutIsTerminal();
  client::WatchSession session(**client, {args.key, args.prefix, args.from});
  auto on_event = [&](const client::WatchEvent& e) -> core::Status {
    if (!args.command.empty()) {
      auto status = client::RunEventCommand(args.command, e);
      if (!status) return status.error();
      if (*status != 0) {
        std::fprintf(stderr, "kvctl: %s exited with status %d for the event at revision %llu (the watch goes on)\n",
                     args.command[0].c_str(), *status, static_cast<unsigned long long>(e.revision));
      }
      return core::Status::Ok();
    }
    if (args.output == OutputFormat::kJson) return WriteStdout(e.json + "\n");
    return WriteStdout(EventText(e, terminal));
  };
  auto notice = [](std::string_view line) { std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data()); };
  core::Status result = session.Run(on_event, notice);
  stop.Finish();
  return result;
}

}  // namespace

void AddWatchCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<WatchArgs>();
  CLI::App* sub = app.add_subcommand("watch", "Print every change to KEY (or under it) as it happens, or run a command per change");
  sub->group(kGroupClient);
  sub->add_option("key", args->key, "The key; with --prefix, the prefix (\"\": every key)")->required();
  sub->add_flag("--prefix", args->prefix, "Watch every key starting with KEY");
  sub->add_option("--from", args->from,
                  "Start at this revision (history first, then live); default: the next change");
  AddOutputOption(*sub, args->output);
  // The words after -- (after KEY, CLI11 takes them as the rest of the
  // positionals, options included).
  sub->add_option("command", args->command, "A command to run per event, after --: -- CMD ARGS...");
  config::AddSettingFlags(*sub, config::Scope::kClient, ctx.flags);
  sub->footer(
      "Text output is etcdctl's: PUT or DELETE, the key, the value, a line each. -o json prints each event as the\n"
      "server sends it: {\"revision\",\"op\",\"key\",\"value\" (base64),\"create_revision\",\"version\",\"lease\"}.\n"
      "With -- CMD ARGS..., CMD runs once per event with KVCTL_WATCH_REVISION, KVCTL_WATCH_OP (put or delete),\n"
      "KVCTL_WATCH_KEY, KVCTL_WATCH_KEY_BASE64 and KVCTL_WATCH_VALUE in its environment and the value on stdin.\n"
      "When the connection drops or the server restarts, kvctl reconnects and resumes where it was: no event is\n"
      "lost or printed twice; it says so on stderr. Ctrl-C ends it (exit 0). History older than the server keeps\n"
      "(storage.history_retention) is exit 5. --timeout bounds connecting and the answer's head only.");
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunWatch(ctx, *args); }; });
}

}  // namespace kvctl::cmd
