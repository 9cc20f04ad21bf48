// End-to-end harness: runs the real kvctl binary and talks real HTTP to it.
//
// Everything here works on real processes, sockets and files:
//  - TempDir: a mkdtemp directory under /tmp, removed (recursively) on scope exit.
//  - ServerProcess: `kvctl serve` started with fork/exec, its stdout/stderr sent to
//    files, a clean environment (PATH, HOME=<temp dir> plus what the test adds;
//    nothing is inherited from the runner, KVCTL_* in particular). Its destructor
//    kills (SIGKILL) and reaps the process if it still runs, so a failed
//    assertion never leaks a server.
//  - RunCli: one `kvctl ...` invocation with stdin fed from a pipe (binary-safe)
//    and stdout/stderr captured, bounded in time.
//  - HttpClient: an httplib::Client that sends paths verbatim (no re-encoding),
//    so tests control every byte of the request target.
//
// The harness uses doctest assertions (REQUIRE/FAIL) to stop a test when the
// environment is broken (the server never gets ready, a child hangs), with the
// server's stderr in the message.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace kvctl::e2e {

using Env = std::map<std::string, std::string>;

// Absolute path of the kvctl binary under test (KVCTL_BINARY from CMake, or the
// runner's E2E_KVCTL_BINARY to point the suite at another build).
std::string KvctlBinary();

// A port on 127.0.0.1 that was free a moment ago (bind to port 0, read, close).
int FreePort();

// "127.0.0.1:PORT"
std::string Addr(int port);

class TempDir {
 public:
  TempDir();  // /tmp/kvctl-e2e-XXXXXX
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct ServerOptions {
  // The first five fields in order; the rest are set by name afterwards.
  ServerOptions(std::string data_dir_ = {}, int port_ = 0, std::vector<std::string> extra_args_ = {},
                Env env_ = {}, bool listen_flag_ = true)
      : data_dir(std::move(data_dir_)),
        port(port_),
        extra_args(std::move(extra_args_)),
        env(std::move(env_)),
        listen_flag(listen_flag_) {}

  // The data dir passed with --data-dir; empty: don't pass the flag.
  std::string data_dir;
  // Port passed as --listen 127.0.0.1:PORT (0: don't pass --listen).
  int port = 0;
  std::vector<std::string> extra_args;  // appended after the standard ones
  Env env;                              // added to PATH and HOME
  // false: don't pass --listen; `port` is then only where WaitReady looks (the
  // address comes from the config file or the environment).
  bool listen_flag = true;
  // Run through this command first (e.g. setpriv to drop root); its first
  // element is an absolute path.
  std::vector<std::string> command_prefix;
  // How WaitReady asks whether the server is ready (true: ready); unset:
  // GET /readyz over plain HTTP answers 200. A TLS server needs its own.
  std::function<bool(int port)> ready_probe;
};

class ServerProcess {
 public:
  // Starts `kvctl serve ...`; `scratch` holds the captured stdout/stderr files
  // and is the process's HOME and working directory.
  ServerProcess(const std::filesystem::path& scratch, ServerOptions options);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Polls GET /readyz on `port` until 200 (at most `limit`); fails the test with
  // the server's stderr if it exits first or never gets ready.
  void WaitReady(std::chrono::milliseconds limit = std::chrono::seconds(15));
  // Waits (bounded) for the process to exit by itself; returns its exit code, or
  // nullopt if it still runs after `limit`.
  std::optional<int> WaitExit(std::chrono::milliseconds limit = std::chrono::seconds(15));
  void Kill9();     // SIGKILL and reap
  int Terminate();  // SIGTERM, wait (bounded, then SIGKILL + fail), return exit code

  bool Running();
  // Exit code once exited: the status for a normal exit, 128+signal if killed.
  std::optional<int> ExitCode() const { return exit_code_; }
  std::string Stderr() const;
  std::string Stdout() const;
  int port() const { return options_.port; }
  pid_t pid() const { return pid_; }

 private:
  void Reap(int status);

  ServerOptions options_;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  bool signalled_ = false;  // we stopped it (or expected it to exit)
};

// A kvctl server on a temp data dir (TempDir/data, created empty), started and
// ready on a fresh port. Restart() stops it with SIGTERM (checking exit 0) and
// starts it again on the same data dir and a new port.
class KvServer {
 public:
  explicit KvServer(std::vector<std::string> extra_args = {}, Env env = {});

  void Start();     // on a fresh port; waits until ready
  int Stop();       // SIGTERM; returns the exit code
  void Restart();   // Stop() (CHECKs exit code 0) then Start()
  void Kill9();
  // The environment for the next Start() (added to PATH and HOME).
  void set_env(Env env) { env_ = std::move(env); }

  int port() const { return port_; }
  std::string addr() const { return Addr(port_); }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const TempDir& tmp() const { return tmp_; }
  ServerProcess& process() { return *process_; }

 private:
  TempDir tmp_;
  std::filesystem::path data_dir_;
  std::vector<std::string> extra_args_;
  Env env_;
  int port_ = 0;
  std::unique_ptr<ServerProcess> process_;
};

struct CliResult {
  int exit_code = -1;  // 128+signal when killed by a signal
  std::string out;     // stdout bytes (empty when redirected to a file)
  std::string err;     // stderr text
};

struct CliOptions {
  std::string stdin_bytes;
  Env env;                  // added to PATH and HOME
  std::string stdout_path;  // non-empty: stdout goes to this file (like `> file`)
  std::chrono::milliseconds limit = std::chrono::seconds(30);
};

// Runs `kvctl args...`; fails the test if it does not finish within the limit.
CliResult RunCli(const std::vector<std::string>& args, const CliOptions& options = {});

// Starts `kvctl serve` with `args` that it must refuse, with a data dir in
// `tmp`; fails the test if it is still running after 20 s. Returns its exit
// code and what it wrote to stderr.
std::pair<int, std::string> ServeRefused(const TempDir& tmp, std::vector<std::string> args, Env env = {});

// The SHA-256 of `token` as `kvctl auth hash-token` prints it (the token
// given on stdin with a newline, as `echo TOKEN |` gives it).
std::string HashToken(const std::string& token);
// Runs any program (argv[0] is its absolute path) the same way.
CliResult RunProgram(const std::vector<std::string>& argv, const CliOptions& options = {});
// Debian's python3 (scripts/deps.sh test installs it and the clients).
inline constexpr const char* kPython = "/usr/bin/python3";
// The argv that runs tests/e2e/python_clients/`script` with `args`, under
// python3 -B (the scripts import their neighbours; no bytecode is left in
// the tree).
std::vector<std::string> PythonClient(const std::string& script, const std::vector<std::string>& args);
// Runs it and fails the test unless it exits 0 within `limit`: its stdout.
std::string RunPythonClient(const std::string& script, const std::vector<std::string>& args,
                            std::chrono::seconds limit = std::chrono::seconds(60));

// A program left running while the test goes on (a watch, a lock holder),
// in its own process group, its stdout and stderr sent to files in
// `scratch` (also its HOME and working directory) that the test reads as
// they grow. Stop() asks it to end (SIGTERM, bounded); the destructor
// kills (SIGKILL) its whole group and reaps it, so a failed assertion
// never leaves it, or what it started, running.
class BackgroundProgram {
 public:
  // argv[0] is an absolute path; `env` is added to PATH, HOME and LANG.
  BackgroundProgram(const std::filesystem::path& scratch, std::vector<std::string> argv, const Env& env = {});
  ~BackgroundProgram();
  BackgroundProgram(const BackgroundProgram&) = delete;
  BackgroundProgram& operator=(const BackgroundProgram&) = delete;

  // Polls its stdout until `done(stdout)` holds (true), or it exits or
  // `limit` passes without it holding (false).
  bool WaitForStdout(const std::function<bool(const std::string&)>& done,
                     std::chrono::milliseconds limit = std::chrono::seconds(10));
  // Waits (bounded) for it to exit by itself: its exit code (128+signal when
  // killed), or nullopt if it still runs after `limit`.
  std::optional<int> WaitExit(std::chrono::milliseconds limit);
  // SIGTERM, then waits up to `grace` for it to exit: its exit code. If it
  // does not, kills its group and fails the test.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10));
  bool Running();

  std::string Stdout() const;
  std::string Stderr() const;
  // Its command line, stdout and stderr, for a failure message.
  std::string Shown() const;
  pid_t pid() const { return pid_; }

 private:
  std::vector<std::string> argv_;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// The tests' own encoders, written apart from lib/core's on purpose: they
// are the independent side that checks what the server decodes and sends.
// Percent-encodes every byte except RFC 3986 unreserved characters.
std::string PercentEncode(std::string_view bytes);
std::string KeyPath(std::string_view key);  // "/v1/kv/" + PercentEncode(key)

std::string Base64Encode(std::string_view bytes);
// Fails the test on invalid base64.
std::string Base64Decode(std::string_view text);

struct HttpResponse {
  int status = 0;
  std::string body;
  httplib::Headers headers;

  bool HasHeader(const std::string& name) const { return headers.count(name) > 0; }
  std::string Header(const std::string& name) const;
  // The body parsed as JSON; fails the test if it is not JSON.
  nlohmann::json Json() const;
  // The revision in the ETag header ("<rev>"); nullopt if missing or malformed.
  std::optional<uint64_t> EtagRevision() const;
};

class HttpClient {
 public:
  explicit HttpClient(int port);

  // Sends the request with `path` as the exact request target; fails the test
  // if no response arrives.
  HttpResponse Request(const std::string& method, const std::string& path,
                       const std::string& body = {}, const httplib::Headers& headers = {});
  // Same, but returns nullopt instead of failing (for racing a crash).
  std::optional<HttpResponse> TryRequest(const std::string& method, const std::string& path,
                                         const std::string& body = {},
                                         const httplib::Headers& headers = {});

  HttpResponse Put(std::string_view key, const std::string& value,
                   const httplib::Headers& headers = {});
  HttpResponse Get(std::string_view key) { return Request("GET", KeyPath(key)); }
  HttpResponse Head(std::string_view key) { return Request("HEAD", KeyPath(key)); }
  HttpResponse Delete(std::string_view key, const httplib::Headers& headers = {}) {
    return Request("DELETE", KeyPath(key), {}, headers);
  }

  // Closes the kept-alive connection (the next request opens a new one). Tests
  // call it before stopping a server: kvctl (via httplib) waits for an idle
  // keep-alive connection to time out (5 s) before it exits on SIGTERM.
  void Close() { client_.stop(); }

  // Walks GET /v1/kv?prefix=P with after= until next is null; returns every item
  // in the order received (fails the test on a non-200 page).
  std::vector<nlohmann::json> ListAll(std::string_view prefix, int limit = 1000);

 private:
  httplib::Result Send(const std::string& method, const std::string& path, const std::string& body,
                       const httplib::Headers& headers);

  httplib::Client client_;
};

// A raw TCP connection to 127.0.0.1:port, for requests the HTTP client
// library would not send (pipelined, cut short, malformed). Closed on scope
// exit.
class RawSocket {
 public:
  explicit RawSocket(int port);  // fails the test if it cannot connect
  ~RawSocket();
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  // Sends all of `bytes`; false if the server closed or reset.
  bool Send(std::string_view bytes);
  // Reads what arrives until `done(received)` is true, the server closes,
  // or `limit` passes.
  std::string ReadUntil(std::chrono::milliseconds limit,
                        const std::function<bool(const std::string&)>& done = nullptr);
  // True once the server has closed its side (read returns 0 or a reset),
  // waiting at most `limit`.
  bool ClosedWithin(std::chrono::milliseconds limit);
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// The exact key bytes of a listing item: key_base64 if present, else key.
std::string ItemKey(const nlohmann::json& item);

struct Stored {
  std::string value;
  uint64_t revision = 0;
  bool operator==(const Stored&) const = default;
};
// The whole store, read through the listing API.
std::map<std::string, Stored> Snapshot(HttpClient& http);

// Checks the body is a JSON error {"error": non-empty string, "code": string};
// returns the code ("" if the check failed).
std::string ErrorCode(const HttpResponse& response);

// The value of an unlabelled metric in GET /metrics, or -1.
double Metric(HttpClient& http, const std::string& name);

// Segment files (<20 digits>.log) in a data dir, sorted by name.
std::vector<std::filesystem::path> Segments(const std::filesystem::path& data_dir);
std::string ReadFile(const std::filesystem::path& path);
void WriteFile(const std::filesystem::path& path, std::string_view bytes);
std::vector<std::string> ListDir(const std::filesystem::path& dir);  // file names, sorted

// Deterministic pseudo-random bytes (all 256 values), for values and garbage.
std::string RandomBytes(size_t n, uint64_t seed);

// The lines of `text`, without their newlines.
std::vector<std::string> Lines(const std::string& text);

// Polls `pred` every 20 ms until it holds or `limit` passes; its last answer.
template <typename Pred>
bool Eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

// True if `text` is exactly one line (optionally newline-terminated) starting
// with "kvctl: ".
bool IsOneErrorLine(const std::string& text);

// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"); 0 if unreadable.
size_t StatusKiB(pid_t pid, const std::string& field);
// Resets the process's peak resident memory to its current one; false if
// the kernel does not allow it (the peak then counts from the start).
bool ResetPeak(pid_t pid);

}  // namespace kvctl::e2e
