// kvctl: parse the command line, run the chosen subcommand, map its Status to
// the exit code of SPEC §3. Errors go to stderr as one line,
// "kvctl: <what> (<hint>)".
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/usage_error.h"

namespace {

using kvctl::core::Code;

// SPEC §3: 0 ok; 1 key not found; 2 usage or configuration error; 3 server
// unreachable or server error; 4 precondition failed; 5 corrupt data, or
// history that was compacted away (a watch from too old a revision, 410).
int ExitCodeFor(Code code) {
  switch (code) {
    case Code::kOk: return 0;
    case Code::kNotFound: return 1;
    case Code::kInvalidArgument:
    case Code::kBusy: return 2;
    case Code::kUnavailable:
    case Code::kIOError: return 3;
    case Code::kFailedPrecondition: return 4;
    case Code::kCorruption:
    case Code::kCompacted: return 5;
  }
  return 3;
}

std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

// The commands end their messages with a hint of their own; one that comes
// from deeper down without any (a library's, the config loader's) gets the
// one its code suggests, so every error line says what to do.
std::string WithHint(std::string message, Code code, const std::string& command) {
  if (message.ends_with(')')) return message;
  const char* hint = "";
  std::string help;
  switch (code) {
    case Code::kOk: return message;
    case Code::kNotFound:
    case Code::kInvalidArgument:
      help = "see kvctl " + command + " --help, and kvctl config show for the settings in effect";
      hint = help.c_str();
      break;
    case Code::kBusy: hint = "another process holds it: wait for it to finish, or stop it"; break;
    case Code::kUnavailable: hint = "check that the server or database is up and reachable, and its log"; break;
    case Code::kIOError:
      // lib/pg says "PostgreSQL error (SQLSTATE ...)" for what the database
      // refused: no path is involved.
      hint = message.find("PostgreSQL") != std::string::npos
                 ? "see the database's log, and kvctl migrate version for the schema this kvctl needs"
                 : "check the path, its permissions and the free disk space";
      break;
    case Code::kFailedPrecondition: hint = "read the current revision with kvctl get KEY -o json and retry"; break;
    case Code::kCorruption: hint = "kvctl replay --check reports what is damaged; see kvctl-replay(1)"; break;
    case Code::kCompacted: hint = "start from a newer revision"; break;
  }
  return message + " (" + hint + ")";
}

// "migrate up" for `kvctl migrate up ...`.
std::string CommandName(const CLI::App& app) {
  std::string name;
  for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
    sub = sub->get_subcommands().front();
    name += (name.empty() ? "" : " ") + sub->get_name();
  }
  return name;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"kvctl: a durable key-value store, its client and its tools, in one binary.\n"
               "Settings come from defaults < TOML file < KVCTL_* environment < flags.",
               "kvctl"};
  app.require_subcommand(1, 1);
  app.fallthrough();  // --config is accepted after the subcommand too
  app.set_version_flag("--version", kvctl::cmd::VersionLine());

  kvctl::cmd::CommandContext ctx;
  kvctl::config::AddConfigFileFlag(app, ctx.config_path);
  // Evaluated when help is printed, so it reflects --config if it came first.
  app.footer([&ctx] {
    return "Config file: " + kvctl::config::ConfigFileInUse(ctx.config_path, kvctl::config::ProcessEnvironment()) +
           "\nSee kvctl(1), and kvctl-SUBCOMMAND(1) for each subcommand (man kvctl-serve).";
  });
  kvctl::cmd::AddServeCommand(app, ctx);
  kvctl::cmd::AddPutCommand(app, ctx);
  kvctl::cmd::AddGetCommand(app, ctx);
  kvctl::cmd::AddDelCommand(app, ctx);
  kvctl::cmd::AddWatchCommand(app, ctx);
  kvctl::cmd::AddTxnCommand(app, ctx);
  kvctl::cmd::AddLeaseCommand(app, ctx);
  kvctl::cmd::AddLockCommand(app, ctx);
  kvctl::cmd::AddReplayCommand(app, ctx);
  kvctl::cmd::AddCompactCommand(app, ctx);
  kvctl::cmd::AddConfigCommand(app, ctx);
  kvctl::cmd::AddBenchCommand(app, ctx);
  kvctl::cmd::AddMigrateCommand(app, ctx);
  kvctl::cmd::AddAuthCommand(app, ctx);
  kvctl::cmd::AddVersionCommand(app, ctx);
  kvctl::cmd::AddCompletionCommand(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const std::vector<std::string> args(argv + 1, argv + argc);
    std::fprintf(stderr, "kvctl: %s\n", kvctl::cmd::UsageErrorLine(app, args, e).c_str());
    return 2;
  }

  const kvctl::core::Status status = ctx.run();
  if (!status.ok()) {
    const std::string line = WithHint(OneLine(status.message()), status.code(), CommandName(app));
    std::fprintf(stderr, "kvctl: %s\n", line.c_str());
  }
  if (status.ok() && ctx.exit_status) return *ctx.exit_status;
  return ExitCodeFor(status.code());
}
