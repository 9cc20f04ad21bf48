// Debian's etcdctl 3.4 (etcd-client) pointed at one etcd gRPC endpoint, for
// the tests that drive it (etcdctl_script.h, and the gRPC admission tests):
// every run bounded in time, every one left running stopped by its PID.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {

// How etcdctl reaches the endpoint, given before every command: TLS
// (--cacert; --cert and --key for mutual TLS) and etcd's login (--user).
struct EtcdctlAccess {
  std::string cacert;
  std::string cert, key;
  std::string user;  // "NAME:PASSWORD"
};

// One finished etcdctl run: its arguments (after the global flags) and what
// it printed, for failure messages.
struct EtcdctlRun {
  std::vector<std::string> args;
  CliResult result;

  const std::string& out() const { return result.out; }
  const std::string& err() const { return result.err; }
  int exit_code() const { return result.exit_code; }
  std::string Shown() const;
};

// etcdctl pointed at one endpoint, in the v3 API, with short timeouts so a
// server that does not answer fails a check instead of hanging the test.
class Etcdctl {
 public:
  explicit Etcdctl(int port, EtcdctlAccess access = {});

  std::string endpoint() const { return Addr(port_); }
  // "https" when etcdctl speaks TLS to it, else "http".
  std::string scheme() const { return access_.cacert.empty() ? "http" : "https"; }
  const TempDir& scratch() const { return scratch_; }

  std::vector<std::string> Argv(const std::vector<std::string>& args) const;
  EtcdctlRun Exec(const std::vector<std::string>& args, const std::string& stdin_bytes = {}) const;
  // Runs a command that must succeed; its stdout.
  std::string Ok(const std::vector<std::string>& args, const std::string& stdin_bytes = {}) const;
  // Runs a command with `-w json` that must succeed; its output parsed.
  nlohmann::json Json(std::vector<std::string> args) const;
  // Checks a command is refused: its exit code, and `error` on a line of
  // stderr as "Error: <error>" (etcdctl also logs its retries there).
  void Refused(const std::vector<std::string>& args, int exit_code, const std::string& error) const;
  // The store's revision now, as a read's header says it.
  int64_t Revision() const;
  // The keys under `prefix`, as `get --prefix --keys-only` lists them.
  std::vector<std::string> KeysUnder(const std::string& prefix) const;
  // A command left running (a watch, a lock holder).
  std::unique_ptr<BackgroundProgram> Start(const std::vector<std::string>& args) const;

 private:
  int port_;
  EtcdctlAccess access_;
  TempDir scratch_;  // HOME and working directory of the etcdctl runs left running
};

}  // namespace kvctl::e2e
