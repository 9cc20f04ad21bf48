#include "lib/client/event_command.h"

#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "lib/core/base64.h"

extern char** environ;

namespace kvctl::client {
namespace {

// Linux's MAX_ARG_STRLEN: the longest one environment string may be.
constexpr size_t kMaxEnvString = size_t{128} << 10;

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

// kvctl's environment without any KVCTL_WATCH_* of its own (a watch run
// from another's command), then the event's.
std::vector<std::string> EventEnvironment(const WatchEvent& event) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "KVCTL_WATCH_", 12) != 0) env.emplace_back(*e);
  }
  env.push_back(fmt::format("KVCTL_WATCH_REVISION={}", event.revision));
  env.push_back(fmt::format("KVCTL_WATCH_OP={}", event.deleted ? "delete" : "put"));
  if (!HasNul(event.key)) env.push_back("KVCTL_WATCH_KEY=" + event.key);
  env.push_back("KVCTL_WATCH_KEY_BASE64=" + core::Base64Encode(event.key));
  if (!HasNul(event.value) && event.value.size() + 20 < kMaxEnvString) {
    env.push_back("KVCTL_WATCH_VALUE=" + event.value);
  }
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  p.reserve(strings.size() + 1);
  for (std::string& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

}  // namespace

core::Result<int> RunEventCommand(const std::vector<std::string>& argv, const WatchEvent& event) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return core::Status::IOError(fmt::format("cannot make a pipe for {}: {}", argv[0], std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[0], STDIN_FILENO);
  // kvctl blocks SIGINT and SIGTERM in its threads (a thread of its own
  // takes them) and ignores SIGPIPE: the command starts with neither.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> args = argv;
  std::vector<std::string> env = EventEnvironment(event);
  std::vector<char*> arg_p = Pointers(args);
  std::vector<char*> env_p = Pointers(env);
  pid_t pid = -1;
  const int err = ::posix_spawnp(&pid, args[0].c_str(), &actions, &attr, arg_p.data(), env_p.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(pipe_fds[0]);
  if (err != 0) {
    ::close(pipe_fds[1]);
    return core::Status::InvalidArgument(
        fmt::format("cannot run {}: {} (give a command on PATH, or its path, after --)", argv[0], std::strerror(err)));
  }
  // A command that does not read its stdin ends, and the rest of the value
  // is not wanted: EPIPE (SIGPIPE is ignored) ends the writing.
  std::string_view rest = event.value;
  while (!rest.empty()) {
    const ssize_t n = ::write(pipe_fds[1], rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    rest.remove_prefix(static_cast<size_t>(n));
  }
  ::close(pipe_fds[1]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return core::Status::IOError(fmt::format("cannot wait for {}: {}", argv[0], std::strerror(errno)));
    }
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

}  // namespace kvctl::client
