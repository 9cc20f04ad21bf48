#include "tests/e2e/etcdctl.h"

#include <algorithm>
#include <chrono>
#include <filesystem>

#include <doctest/doctest.h>

namespace kvctl::e2e {
namespace {

constexpr const char* kEtcdctl = "/usr/bin/etcdctl";

Env Environment() { return {{"ETCDCTL_API", "3"}}; }

}  // namespace

std::string EtcdctlRun::Shown() const {
  std::string shown = "etcdctl";
  for (const auto& a : args) shown += " " + a;
  return shown + "\n-> exit " + std::to_string(result.exit_code) + "\nstdout:\n" + result.out + "\nstderr:\n" +
         result.err;
}

Etcdctl::Etcdctl(int port, EtcdctlAccess access) : port_(port), access_(std::move(access)) {
  REQUIRE_MESSAGE(std::filesystem::exists(kEtcdctl), "etcdctl is missing: scripts/deps.sh test installs etcd-client");
}

std::vector<std::string> Etcdctl::Argv(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{kEtcdctl, "--endpoints", endpoint(), "--dial-timeout", "2s", "--command-timeout", "5s"};
  if (!access_.cacert.empty()) argv.insert(argv.end(), {"--cacert", access_.cacert});
  if (!access_.cert.empty()) argv.insert(argv.end(), {"--cert", access_.cert, "--key", access_.key});
  if (!access_.user.empty()) argv.insert(argv.end(), {"--user", access_.user});
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

EtcdctlRun Etcdctl::Exec(const std::vector<std::string>& args, const std::string& stdin_bytes) const {
  CliOptions options;
  options.env = Environment();
  options.stdin_bytes = stdin_bytes;
  options.limit = std::chrono::seconds(20);  // past the dial and command timeouts: etcdctl gives up first
  return EtcdctlRun{args, RunProgram(Argv(args), options)};
}

std::string Etcdctl::Ok(const std::vector<std::string>& args, const std::string& stdin_bytes) const {
  const EtcdctlRun r = Exec(args, stdin_bytes);
  INFO(r.Shown());
  CHECK(r.exit_code() == 0);
  return r.out();
}

nlohmann::json Etcdctl::Json(std::vector<std::string> args) const {
  args.insert(args.end(), {"-w", "json"});
  const EtcdctlRun r = Exec(args);
  INFO(r.Shown());
  CHECK(r.exit_code() == 0);
  nlohmann::json parsed = nlohmann::json::parse(r.out(), nullptr, false);
  REQUIRE_MESSAGE(!parsed.is_discarded(), "not JSON");
  return parsed;
}

void Etcdctl::Refused(const std::vector<std::string>& args, int exit_code, const std::string& error) const {
  const EtcdctlRun r = Exec(args);
  INFO(r.Shown());
  CHECK(r.exit_code() == exit_code);
  const auto lines = Lines(r.err());
  CHECK(std::find(lines.begin(), lines.end(), "Error: " + error) != lines.end());
}

int64_t Etcdctl::Revision() const { return Json({"get", "revision-probe"})["header"]["revision"].get<int64_t>(); }

std::vector<std::string> Etcdctl::KeysUnder(const std::string& prefix) const {
  std::vector<std::string> keys;
  for (const auto& line : Lines(Ok({"get", prefix, "--prefix", "--keys-only"}))) {
    if (!line.empty()) keys.push_back(line);  // each key is followed by an empty line
  }
  return keys;
}

std::unique_ptr<BackgroundProgram> Etcdctl::Start(const std::vector<std::string>& args) const {
  return std::make_unique<BackgroundProgram>(scratch_.path(), Argv(args), Environment());
}

}  // namespace kvctl::e2e
