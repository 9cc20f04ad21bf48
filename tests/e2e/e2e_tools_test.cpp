// End-to-end tests of the tool subcommands a user meets first: `version`,
// `--help`, `config show` and `completion json` (the completion scripts
// themselves run in real shells in tests/shell/completion_test.sh).
#include <regex>
#include <set>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

json Setting(const json& show, const std::string& key) {
  for (const json& s : show["settings"]) {
    if (s["key"] == key) return s;
  }
  FAIL("config show -o json has no setting " << key);
  return {};
}

}  // namespace

TEST_CASE("kvctl version prints the version, the git commit and the build type") {
  CliResult r = RunCli({"version"});
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK(std::regex_match(r.out, std::regex("kvctl [0-9]+\\.[0-9]+\\.[0-9]+\n"
                                           "commit: ([0-9a-f]{12}(-dirty)?|unknown)\n"
                                           "build type: [A-Za-z]+\n")));
  CliResult j = RunCli({"version", "-o", "json"});
  REQUIRE(j.exit_code == 0);
  json v = json::parse(j.out);
  CHECK(Contains(r.out, "kvctl " + v["version"].get<std::string>() + "\n"));
  CHECK(Contains(r.out, "commit: " + v["commit"].get<std::string>() + "\n"));
  CHECK(Contains(r.out, "build type: " + v["build_type"].get<std::string>() + "\n"));
  CliResult line = RunCli({"--version"});
  CHECK(line.exit_code == 0);
  CHECK(line.out == "kvctl " + v["version"].get<std::string>() + " (commit " + v["commit"].get<std::string>() +
                        ", " + v["build_type"].get<std::string>() + ")\n");
}

TEST_CASE("kvctl --help groups the subcommands and names the config file in use") {
  CliResult none = RunCli({"--help"});
  REQUIRE(none.exit_code == 0);
  for (const char* group : {"\nServer:\n", "\nClient:\n", "\nTools:\n"}) CHECK(Contains(none.out, group));
  CHECK_FALSE(Contains(none.out, "Subcommands:"));
  CHECK(Contains(none.out, "Config file: none found (searched ./kvctl.toml, "));
  CHECK(Contains(none.out, "/etc/kvctl/config.toml)"));

  TempDir tmp;
  WriteFile(tmp / "c.toml", "[log]\nlevel = \"warn\"\n");
  CliResult named = RunCli({"--config", (tmp / "c.toml").string(), "--help"});
  CHECK(named.exit_code == 0);
  CHECK(Contains(named.out, "Config file: " + (tmp / "c.toml").string() + " (from --config)"));
  CliResult env = RunCli({"--help"}, {.env = {{"KVCTL_CONFIG", (tmp / "c.toml").string()}}});
  CHECK(Contains(env.out, "Config file: " + (tmp / "c.toml").string() + " (from KVCTL_CONFIG)"));
}

TEST_CASE("every top-level subcommand is in a help group, and completion json describes them all") {
  CliResult r = RunCli({"completion", "json"});
  REQUIRE(r.exit_code == 0);
  json tree = json::parse(r.out);
  REQUIRE(tree["subcommands"].size() >= 7);
  std::set<std::string> names;
  for (const json& sub : tree["subcommands"]) {
    names.insert(sub["name"].get<std::string>());
    const std::string group = sub["group"].get<std::string>();
    CHECK_MESSAGE((group == "Server" || group == "Client" || group == "Operator" || group == "Tools"),
                  "kvctl " << sub["name"] << " is in help group \"" << group
                           << "\"; set one of cmd/kvctl/command.h's kGroup* on it");
  }
  for (const char* name : {"serve", "put", "get", "del", "config", "version", "completion"}) {
    CHECK_MESSAGE(names.count(name) == 1, name);
  }
  // Value choices come through for completion.
  for (const json& sub : tree["subcommands"]) {
    if (sub["name"] != "serve") continue;
    bool fsync = false;
    for (const json& o : sub["options"]) {
      if (o["names"].back() == "--storage-fsync") {
        fsync = true;
        CHECK(o["value"]["words"] == json::array({"always", "interval", "never"}));
      }
    }
    CHECK(fsync);
  }
}

TEST_CASE("kvctl completion refuses an unknown shell") {
  CliResult r = RunCli({"completion", "powershell"});
  CHECK(r.exit_code == 2);
  CHECK(IsOneErrorLine(r.err));
  CHECK(r.out.empty());
}

TEST_CASE("kvctl config show names the layer of every setting: default, file, env, flag") {
  TempDir tmp;
  const fs::path config = tmp / "kvctl.toml";
  WriteFile(config, "[server]\nthreads = 64\n[storage]\nfsync = \"never\"\n");
  CliResult r = RunCli({"config", "show", "--config", config.string(), "--timeout", "3s"},
                       {.env = {{"KVCTL_STORAGE_FSYNC", "interval"}}});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  CHECK(Contains(r.out, "# config file: " + config.string() + " (from --config)\n"));
  CHECK(Contains(r.out, "\nserver.threads = 64  # file " + config.string() + "\n"));
  CHECK(Contains(r.out, "\nstorage.fsync = \"interval\"  # env KVCTL_STORAGE_FSYNC\n"));
  CHECK(Contains(r.out, "\nclient.timeout = \"3s\"  # flag --timeout\n"));
  CHECK(Contains(r.out, "\nstorage.segment_bytes = \"64MiB\"  # default\n"));

  CliResult j = RunCli({"config", "show", "-o", "json", "--config", config.string(), "--fsync", "always"},
                       {.env = {{"KVCTL_STORAGE_FSYNC", "interval"}}});
  REQUIRE_MESSAGE(j.exit_code == 0, j.err);
  json show = json::parse(j.out);
  CHECK(show["config_file"] == config.string());
  CHECK(Setting(show, "storage.fsync")["value"] == "always");
  CHECK(Setting(show, "storage.fsync")["source"] == "flag");
  CHECK(Setting(show, "server.threads")["source"] == "file");
  CHECK(Setting(show, "server.threads")["value"] == "64");
  CHECK(Setting(show, "server.listen")["source"] == "default");
  CHECK(Setting(show, "server.listen")["env"] == "KVCTL_SERVER_LISTEN");
  CHECK(Setting(show, "server.listen")["flags"] == json::array({"--listen", "--server-listen"}));
}

TEST_CASE("kvctl config show never prints a secret setting's value, nor a password in a URL") {
  CliResult list = RunCli({"config", "show", "-o", "json"});
  REQUIRE(list.exit_code == 0);
  const std::string secret = "s3cret-e2e-password";
  Env env;
  for (const json& s : json::parse(list.out)["settings"]) {
    // A value every secret kind accepts: a token takes any text, a DSN a URL.
    if (s["secret"] == true) env[s["env"].get<std::string>()] = "postgres://kvctl:" + secret + "@127.0.0.1/kv";
  }
  for (const char* format : {"text", "json"}) {
    CliResult r = RunCli({"config", "show", "-o", format}, {.env = env});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    CHECK_FALSE(Contains(r.out, secret));
    CHECK(Contains(r.out, "client.addr"));  // the output is there, only secrets are masked
  }
}

TEST_CASE("kvctl config show reports a bad setting like every command does, exit 2") {
  CliResult r = RunCli({"config", "show"}, {.env = {{"KVCTL_LOG_LEVEL", "loud"}}});
  CHECK(r.exit_code == 2);
  CHECK(IsOneErrorLine(r.err));
  CHECK(Contains(r.err, "KVCTL_LOG_LEVEL"));
  CHECK(r.out.empty());
}

TEST_CASE("kvctl config show output is a config file that loads back to the same values") {
  TempDir tmp;
  CliResult first = RunCli({"config", "show", "--fsync", "interval", "--listen", "127.0.0.1:9"});
  REQUIRE(first.exit_code == 0);
  WriteFile(tmp / "round.toml", first.out);
  CliResult again = RunCli({"config", "show", "--config", (tmp / "round.toml").string()});
  REQUIRE_MESSAGE(again.exit_code == 0, again.err);
  CHECK(Contains(again.out, "storage.fsync = \"interval\"  # file "));
  CHECK(Contains(again.out, "server.listen = \"127.0.0.1:9\"  # file "));
}

}  // namespace kvctl::e2e
