#include "tests/e2e/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>

#ifndef KVCTL_BINARY
#error "KVCTL_BINARY must be defined (CMake sets it to the kvctl executable's path)"
#endif

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A child that exits before reading its stdin must not kill the test runner
// with SIGPIPE when we write to the pipe; children get SIGPIPE back (below).
const bool kSigpipeIgnored = [] {
  ::signal(SIGPIPE, SIG_IGN);
  return true;
}();

// argv/envp built before fork(): the child only calls async-signal-safe functions.
class CStrings {
 public:
  explicit CStrings(std::vector<std::string> strings) : strings_(std::move(strings)) {
    for (auto& s : strings_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }
  char* const* get() { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

std::vector<std::string> BuildEnv(const std::string& home, const Env& extra) {
  Env env{{"PATH", "/usr/local/bin:/usr/bin:/bin"}, {"HOME", home}, {"LANG", "C.UTF-8"}};
  for (const auto& [k, v] : extra) env[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

// fork + execve with the given fds as 0/1/2 (stdin_fd < 0: /dev/null);
// `own_group`: the child leads a new process group, so that what it starts
// can be killed with it.
pid_t Spawn(const std::vector<std::string>& argv_strings, const std::vector<std::string>& env,
            const std::string& cwd, int stdin_fd, int stdout_fd, int stderr_fd, bool own_group = false) {
  CStrings argv(argv_strings);
  CStrings envp(env);
  const std::string binary = argv_strings.at(0);
  pid_t pid = ::fork();
  REQUIRE_MESSAGE(pid >= 0, "fork failed: " << std::strerror(errno));
  if (pid == 0) {
    if (own_group) ::setpgid(0, 0);
    if (stdin_fd >= 0) {
      ::dup2(stdin_fd, 0);
    } else {
      int null_fd = ::open("/dev/null", O_RDONLY);
      if (null_fd >= 0) ::dup2(null_fd, 0);
    }
    ::dup2(stdout_fd, 1);
    ::dup2(stderr_fd, 2);
    if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);
    }
    if (::chdir(cwd.c_str()) != 0) ::_exit(126);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, nullptr);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(binary.c_str(), argv.get(), envp.get());
    ::_exit(127);
  }
  // Also here, so the group exists before the parent may signal it.
  if (own_group) ::setpgid(pid, pid);
  return pid;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// HOME and working directory of CLI runs: empty, so no stray kvctl.toml is found.
const TempDir& CliScratch() {
  static TempDir dir;
  return dir;
}

}  // namespace

std::string KvctlBinary() {
  if (const char* over = std::getenv("E2E_KVCTL_BINARY"); over != nullptr && *over != '\0') {
    return over;
  }
  return KVCTL_BINARY;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TempDir::TempDir() {
  std::string templ = "/tmp/kvctl-e2e-XXXXXX";
  char* made = ::mkdtemp(templ.data());
  if (made == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = made;
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

// ---------------------------------------------------------------- ServerProcess

ServerProcess::ServerProcess(const fs::path& scratch, ServerOptions options)
    : options_(std::move(options)) {
  static int counter = 0;
  const std::string tag = std::to_string(++counter);
  stdout_path_ = scratch / ("server-" + tag + ".stdout");
  stderr_path_ = scratch / ("server-" + tag + ".stderr");
  std::vector<std::string> argv = options_.command_prefix;
  argv.push_back(KvctlBinary());
  argv.push_back("serve");
  if (options_.port != 0 && options_.listen_flag) {
    argv.push_back("--listen");
    argv.push_back(Addr(options_.port));
  }
  if (!options_.data_dir.empty()) {
    argv.push_back("--data-dir");
    argv.push_back(options_.data_dir);
  }
  for (const auto& a : options_.extra_args) argv.push_back(a);

  int out_fd = ::open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(out_fd >= 0);
  REQUIRE(err_fd >= 0);
  pid_ = Spawn(argv, BuildEnv(scratch.string(), options_.env), scratch.string(), -1, out_fd,
               err_fd);
  ::close(out_fd);
  ::close(err_fd);
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0 && !signalled_ && !Running()) {
    // It died without being asked: say so, since the test's own failure (a
    // refused connection, say) would not show why.
    std::fprintf(stderr, "[e2e] kvctl serve (pid %d) exited by itself with code %d; stderr:\n%s\n",
                 static_cast<int>(pid_), exit_code_.value_or(-1), Stderr().c_str());
  }
  if (pid_ > 0 && !exit_code_) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    exit_code_ = DecodeWaitStatus(status);
  }
}

void ServerProcess::Reap(int status) { exit_code_ = DecodeWaitStatus(status); }

bool ServerProcess::Running() {
  if (exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    Reap(status);
    return false;
  }
  return true;
}

void ServerProcess::WaitReady(std::chrono::milliseconds limit) {
  REQUIRE_MESSAGE(options_.port != 0, "WaitReady needs the port the server listens on");
  const auto deadline = Clock::now() + limit;
  int last_status = 0;
  while (Clock::now() < deadline) {
    if (!Running()) {
      FAIL("kvctl serve exited with code " << *exit_code_ << " before it was ready; stderr:\n"
                                           << Stderr());
    }
    if (options_.ready_probe) {
      if (options_.ready_probe(options_.port)) return;
    } else {
      httplib::Client probe("127.0.0.1", options_.port);
      probe.set_connection_timeout(1);
      probe.set_read_timeout(2);
      if (auto res = probe.Get("/readyz")) {
        last_status = res->status;
        if (res->status == 200) return;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("kvctl serve not ready on " << Addr(options_.port) << " (last /readyz status "
                                   << last_status << "); stderr:\n"
                                   << Stderr());
}

std::optional<int> ServerProcess::WaitExit(std::chrono::milliseconds limit) {
  signalled_ = true;  // the caller expects it to exit: not worth a report
  const auto deadline = Clock::now() + limit;
  while (Running()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_code_;
}

void ServerProcess::Kill9() {
  signalled_ = true;
  if (exit_code_) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  Reap(status);
}

int ServerProcess::Terminate() {
  signalled_ = true;
  if (exit_code_) return *exit_code_;
  ::kill(pid_, SIGTERM);
  auto code = WaitExit(std::chrono::seconds(20));
  if (!code) {
    Kill9();
    FAIL("kvctl serve did not exit within 20 s of SIGTERM; stderr:\n" << Stderr());
  }
  return *code;
}

std::string ServerProcess::Stderr() const { return ReadFile(stderr_path_); }
std::string ServerProcess::Stdout() const { return ReadFile(stdout_path_); }

// ---------------------------------------------------------------------- KvServer

KvServer::KvServer(std::vector<std::string> extra_args, Env env)
    : data_dir_(tmp_.path() / "data"), extra_args_(std::move(extra_args)), env_(std::move(env)) {
  fs::create_directories(data_dir_);
  Start();
}

void KvServer::Start() {
  process_.reset();
  port_ = FreePort();
  process_ = std::make_unique<ServerProcess>(
      tmp_.path(), ServerOptions{data_dir_.string(), port_, extra_args_, env_});
  process_->WaitReady();
}

int KvServer::Stop() { return process_->Terminate(); }

void KvServer::Restart() {
  int code = Stop();
  CHECK_MESSAGE(code == 0, "kvctl serve exited " << code << " after SIGTERM; stderr:\n"
                                                 << process_->Stderr());
  Start();
}

void KvServer::Kill9() { process_->Kill9(); }

// ---------------------------------------------------------------------- RunCli

CliResult RunCli(const std::vector<std::string>& args, const CliOptions& options) {
  std::vector<std::string> argv{KvctlBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProgram(argv, options);
}

std::vector<std::string> PythonClient(const std::string& script, const std::vector<std::string>& args) {
  REQUIRE_MESSAGE(std::filesystem::exists(kPython), "python3 is missing: scripts/deps.sh test installs it");
  std::vector<std::string> argv = {kPython, "-B", std::string(KVCTL_SOURCE_DIR) + "/tests/e2e/python_clients/" + script};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

std::string RunPythonClient(const std::string& script, const std::vector<std::string>& args,
                            std::chrono::seconds limit) {
  CliOptions options;
  options.limit = limit;
  const CliResult r = RunProgram(PythonClient(script, args), options);
  INFO(script << " stdout:\n" << r.out << "\nstderr:\n" << r.err);
  REQUIRE(r.exit_code == 0);
  return r.out;
}

CliResult RunProgram(const std::vector<std::string>& argv, const CliOptions& options) {
  const std::vector<std::string> args(argv.begin() + 1, argv.end());

  int in_pipe[2], out_pipe[2], err_pipe[2];
  REQUIRE(::pipe2(in_pipe, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(out_pipe, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err_pipe, O_CLOEXEC) == 0);
  int stdout_target = out_pipe[1];
  int file_fd = -1;
  if (!options.stdout_path.empty()) {
    file_fd = ::open(options.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE(file_fd >= 0);
    stdout_target = file_fd;
  }
  const std::string home = CliScratch().str();
  pid_t pid = Spawn(argv, BuildEnv(home, options.env), home, in_pipe[0], stdout_target,
                    err_pipe[1]);
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (file_fd >= 0) ::close(file_fd);

  int in_fd = in_pipe[1];
  ::fcntl(in_fd, F_SETFL, O_NONBLOCK);
  size_t written = 0;
  if (options.stdin_bytes.empty()) {
    ::close(in_fd);
    in_fd = -1;
  }
  int out_fd = out_pipe[0];
  int err_fd = err_pipe[0];
  CliResult result;
  const auto deadline = Clock::now() + options.limit;
  bool timed_out = false;
  while (in_fd >= 0 || out_fd >= 0 || err_fd >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3];
    int n = 0;
    int in_idx = -1, out_idx = -1, err_idx = -1;
    if (in_fd >= 0) { in_idx = n; fds[n++] = {in_fd, POLLOUT, 0}; }
    if (out_fd >= 0) { out_idx = n; fds[n++] = {out_fd, POLLIN, 0}; }
    if (err_fd >= 0) { err_idx = n; fds[n++] = {err_fd, POLLIN, 0}; }
    int r = ::poll(fds, n, static_cast<int>(std::min<long>(left.count(), 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) FAIL("poll failed: " << std::strerror(errno));
    if (in_idx >= 0 && fds[in_idx].revents != 0) {
      ssize_t w = ::write(in_fd, options.stdin_bytes.data() + written,
                          options.stdin_bytes.size() - written);
      if (w > 0) written += static_cast<size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == options.stdin_bytes.size()) {
        ::close(in_fd);  // done, or the child closed its end (EPIPE)
        in_fd = -1;
      }
    }
    auto drain = [](int& fd, std::string& sink) {
      char buf[65536];
      ssize_t got = ::read(fd, buf, sizeof buf);
      if (got > 0) {
        sink.append(buf, static_cast<size_t>(got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(fd);
        fd = -1;
      }
    };
    if (out_idx >= 0 && fds[out_idx].revents != 0) drain(out_fd, result.out);
    if (err_idx >= 0 && fds[err_idx].revents != 0) drain(err_fd, result.err);
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) ::close(fd);
  }
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = DecodeWaitStatus(status);
  if (timed_out) {
    std::string shown;
    for (const auto& a : args) shown += " " + a.substr(0, 60);
    FAIL(argv[0] << shown << " did not finish within the time limit; stderr:\n" << result.err);
  }
  return result;
}

// ------------------------------------------------------------ BackgroundProgram

BackgroundProgram::BackgroundProgram(const fs::path& scratch, std::vector<std::string> argv, const Env& env)
    : argv_(std::move(argv)) {
  static int counter = 0;
  const std::string tag = std::to_string(++counter);
  stdout_path_ = scratch / ("background-" + tag + ".stdout");
  stderr_path_ = scratch / ("background-" + tag + ".stderr");
  int out_fd = ::open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  int err_fd = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  REQUIRE(out_fd >= 0);
  REQUIRE(err_fd >= 0);
  pid_ = Spawn(argv_, BuildEnv(scratch.string(), env), scratch.string(), -1, out_fd, err_fd, true);
  ::close(out_fd);
  ::close(err_fd);
}

BackgroundProgram::~BackgroundProgram() {
  if (exit_code_) return;
  // The whole group: a child the program started (a command run under a
  // lock) must not outlive the test either. Its leader is not reaped yet,
  // so the group's id is still this program's.
  ::kill(-pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_code_ = DecodeWaitStatus(status);
}

bool BackgroundProgram::Running() {
  if (exit_code_) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_code_ = DecodeWaitStatus(status);
    return false;
  }
  return true;
}

std::optional<int> BackgroundProgram::WaitExit(std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Running()) {
    if (Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_code_;
}

bool BackgroundProgram::WaitForStdout(const std::function<bool(const std::string&)>& done,
                                      std::chrono::milliseconds limit) {
  const auto deadline = Clock::now() + limit;
  for (;;) {
    // Read before asking whether it runs: what it printed before exiting counts.
    const bool running = Running();
    if (done(Stdout())) return true;
    if (!running || Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int BackgroundProgram::Stop(std::chrono::milliseconds grace) {
  if (exit_code_) return *exit_code_;
  ::kill(pid_, SIGTERM);
  if (auto code = WaitExit(grace)) return *code;
  ::kill(-pid_, SIGKILL);
  WaitExit(std::chrono::seconds(10));
  FAIL(Shown() << "\ndid not exit within " << grace.count() << " ms of SIGTERM");
  return -1;
}

std::string BackgroundProgram::Stdout() const { return ReadFile(stdout_path_); }
std::string BackgroundProgram::Stderr() const { return ReadFile(stderr_path_); }

std::string BackgroundProgram::Shown() const {
  std::string shown;
  for (const auto& a : argv_) shown += (shown.empty() ? "" : " ") + a;
  return shown + "\nstdout:\n" + Stdout() + "\nstderr:\n" + Stderr();
}

std::string Addr(int port) { return "127.0.0.1:" + std::to_string(port); }

// ------------------------------------------------------------------- encodings

std::string PercentEncode(std::string_view bytes) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : bytes) {
    if (std::isalnum(c) != 0 && c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string KeyPath(std::string_view key) { return "/v1/kv/" + PercentEncode(key); }

static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(std::string_view bytes) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

std::string Base64Decode(std::string_view text) {
  // Validates the whole text first and asserts once (a 1 MiB value is 1.4 M
  // characters: one assertion per character would swamp the report).
  std::string out;
  std::string error;
  if (text.size() % 4 != 0) error = "length " + std::to_string(text.size()) + " is not a multiple of 4";
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (size_t i = 0; i < text.size() && error.empty(); ++i) {
    const char c = text[i];
    if (c == '=') {
      ++pad;
      if (i + 2 < text.size()) error = "misplaced '='";
      continue;
    }
    const char* p = c == '\0' ? nullptr : std::strchr(kB64, c);
    if (pad != 0 || p == nullptr) {
      error = "invalid character at " + std::to_string(i);
      break;
    }
    acc = (acc << 6) | static_cast<uint32_t>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  REQUIRE_MESSAGE(error.empty(), "invalid base64 (" << error << "): " << text.substr(0, 80));
  return out;
}

// --------------------------------------------------------------------- HTTP

std::string HttpResponse::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

nlohmann::json HttpResponse::Json() const {
  try {
    return nlohmann::json::parse(body);
  } catch (const std::exception& e) {
    FAIL("response (status " << status << ") is not JSON: " << e.what() << "\nbody: "
                             << body.substr(0, 500));
  }
  return {};
}

std::optional<uint64_t> HttpResponse::EtagRevision() const {
  std::string etag = Header("ETag");
  if (etag.size() < 3 || etag.front() != '"' || etag.back() != '"') return std::nullopt;
  std::string digits = etag.substr(1, etag.size() - 2);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stoull(digits);
}

HttpClient::HttpClient(int port) : client_("127.0.0.1", port) {
  client_.set_url_encode(false);
  client_.set_keep_alive(true);
  client_.set_tcp_nodelay(true);  // no Nagle delay between headers and body
  client_.set_connection_timeout(5);
  client_.set_read_timeout(30);
  client_.set_write_timeout(30);
}

httplib::Result HttpClient::Send(const std::string& method, const std::string& path,
                                 const std::string& body, const httplib::Headers& headers) {
  httplib::Request req;
  req.method = method;
  req.path = path;
  req.headers = headers;
  req.body = body;
  if ((method == "PUT" || method == "POST" || method == "PATCH") &&
      !req.has_header("Content-Type")) {
    req.headers.emplace("Content-Type", "application/octet-stream");
  }
  return client_.send(req);
}

std::optional<HttpResponse> HttpClient::TryRequest(const std::string& method,
                                                   const std::string& path,
                                                   const std::string& body,
                                                   const httplib::Headers& headers) {
  auto res = Send(method, path, body, headers);
  if (!res) return std::nullopt;
  return HttpResponse{res->status, res->body, res->headers};
}

HttpResponse HttpClient::Request(const std::string& method, const std::string& path,
                                 const std::string& body, const httplib::Headers& headers) {
  auto res = Send(method, path, body, headers);
  if (!res) {
    FAIL("no HTTP response to " << method << " " << path.substr(0, 120) << ": "
                                << httplib::to_string(res.error()));
  }
  return HttpResponse{res->status, res->body, res->headers};
}

HttpResponse HttpClient::Put(std::string_view key, const std::string& value,
                             const httplib::Headers& headers) {
  return Request("PUT", KeyPath(key), value, headers);
}

std::vector<nlohmann::json> HttpClient::ListAll(std::string_view prefix, int limit) {
  std::vector<nlohmann::json> items;
  std::optional<std::string> after;
  for (int page = 0; page < 100000; ++page) {
    std::string path = "/v1/kv?prefix=" + PercentEncode(prefix) + "&limit=" + std::to_string(limit);
    if (after) path += "&after=" + PercentEncode(*after);
    HttpResponse r = Request("GET", path);
    REQUIRE_MESSAGE(r.status == 200, "GET " << path << " -> " << r.status << " " << r.body);
    nlohmann::json j = r.Json();
    REQUIRE(j.contains("items"));
    REQUIRE(j["items"].is_array());
    for (const auto& item : j["items"]) items.push_back(item);
    REQUIRE(j.contains("next"));
    if (j["next"].is_null()) return items;
    std::string next = j.contains("next_base64") && j["next_base64"].is_string()
                           ? Base64Decode(j["next_base64"].get<std::string>())
                           : j["next"].get<std::string>();
    REQUIRE_MESSAGE((!after || next != *after), "listing made no progress at " << next);
    after = next;
  }
  FAIL("listing did not end");
  return items;
}

std::string ItemKey(const nlohmann::json& item) {
  if (item.contains("key_base64") && item["key_base64"].is_string()) {
    return Base64Decode(item["key_base64"].get<std::string>());
  }
  REQUIRE_MESSAGE((item.contains("key") && item["key"].is_string()), "item without key: "
                                                                        << item.dump());
  return item["key"].get<std::string>();
}

std::map<std::string, Stored> Snapshot(HttpClient& http) {
  std::map<std::string, Stored> out;
  for (const auto& item : http.ListAll("")) {
    REQUIRE(item.contains("value"));
    out[ItemKey(item)] = {Base64Decode(item["value"].get<std::string>()), item["revision"].get<uint64_t>()};
  }
  return out;
}

std::string ErrorCode(const HttpResponse& response) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(response.body);
  } catch (const std::exception&) {
    CHECK_MESSAGE(false, "error response " << response.status
                                           << " is not JSON: " << response.body.substr(0, 300));
    return "";
  }
  bool shape = j.is_object() && j.contains("error") && j["error"].is_string() &&
               !j["error"].get<std::string>().empty() && j.contains("code") &&
               j["code"].is_string();
  CHECK_MESSAGE(shape, "error body lacks {\"error\",\"code\"}: " << response.body.substr(0, 300));
  return shape ? j["code"].get<std::string>() : "";
}

// -------------------------------------------------------------------- files

std::vector<fs::path> Segments(const fs::path& data_dir) {
  static const std::regex kSegment("^[0-9]{20}\\.log$");
  std::vector<fs::path> out;
  for (const auto& entry : fs::directory_iterator(data_dir)) {
    if (entry.is_regular_file() && std::regex_match(entry.path().filename().string(), kSegment)) {
      out.push_back(entry.path());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE_MESSAGE(out.good(), "cannot write " << path);
}

std::vector<std::string> ListDir(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::string out(n, '\0');
  uint64_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x += 0x9E3779B97F4A7C15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    out[i] = static_cast<char>(z & 0xFF);
  }
  return out;
}

double Metric(HttpClient& http, const std::string& name) {
  const std::string body = http.Request("GET", "/metrics").body;
  const std::string needle = "\n" + name + " ";
  const size_t at = body.find(needle);
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + needle.size()));
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

bool IsOneErrorLine(const std::string& text) {
  if (text.rfind("kvctl: ", 0) != 0) return false;
  size_t nl = text.find('\n');
  return nl == std::string::npos || nl == text.size() - 1;
}

RawSocket::RawSocket(int port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd_ >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
}

RawSocket::~RawSocket() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawSocket::Send(std::string_view bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t w = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (w <= 0) return false;
    sent += static_cast<size_t>(w);
  }
  return true;
}

std::string RawSocket::ReadUntil(std::chrono::milliseconds limit,
                                 const std::function<bool(const std::string&)>& done) {
  std::string got;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done || !done(got)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

bool RawSocket::ClosedWithin(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return true;
  }
}

size_t StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoul(line.substr(field.size() + 1));
  }
  return 0;
}

bool ResetPeak(pid_t pid) {
  std::ofstream out("/proc/" + std::to_string(pid) + "/clear_refs");
  out << "5";
  out.flush();
  return out.good();
}

std::pair<int, std::string> ServeRefused(const TempDir& tmp, std::vector<std::string> args, Env env) {
  std::filesystem::create_directories(tmp / "data");
  ServerProcess server(tmp.path(), ServerOptions{(tmp / "data").string(), FreePort(), std::move(args), std::move(env)});
  auto code = server.WaitExit(std::chrono::seconds(20));
  REQUIRE_MESSAGE(code.has_value(), "kvctl serve started despite a configuration it must refuse");
  return {*code, server.Stderr()};
}

std::string HashToken(const std::string& token) {
  CliOptions in;
  in.stdin_bytes = token + "\n";
  const CliResult r = RunCli({"auth", "hash-token"}, in);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  REQUIRE(r.out.size() == 65);
  return r.out.substr(0, 64);
}

}  // namespace kvctl::e2e
