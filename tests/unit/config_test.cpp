// Tests for lib/config: the settings table, value parsing, and Load's layers,
// file discovery and error messages.
#include "lib/config/config.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "lib/config/effective.h"
#include "lib/config/parse.h"
#include "lib/config/settings.h"
#include "lib/server/tls.h"

namespace kvctl::config {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// A fresh directory under the system temp dir, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "kvctl-config-test-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }

  // Writes `content` to path()/relative, creating directories; returns the path.
  std::string Write(const std::string& relative, const std::string& content) const {
    fs::path p = path_ / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << content;
    return p.string();
  }

 private:
  fs::path path_;
};

// Changes the working directory for one scope.
class ScopedChdir {
 public:
  explicit ScopedChdir(const fs::path& dir) : old_(fs::current_path()) { fs::current_path(dir); }
  ~ScopedChdir() {
    std::error_code ec;
    fs::current_path(old_, ec);
  }
  ScopedChdir(const ScopedChdir&) = delete;
  ScopedChdir& operator=(const ScopedChdir&) = delete;

 private:
  fs::path old_;
};

// Loads with `toml` as the --config file.
core::Result<Config> LoadToml(const TempDir& dir, const std::string& toml,
                              std::map<std::string, std::string> env = {},
                              std::map<std::string, std::string> flags = {}) {
  LoadInputs in;
  in.config_path_flag = dir.Write("kvctl.toml", toml);
  in.environment = std::move(env);
  in.flags = std::move(flags);
  return Load(in);
}

// The error message of a Load that must fail with InvalidArgument.
std::string LoadError(const core::Result<Config>& r) {
  REQUIRE_FALSE(r.has_value());
  CHECK(r.error().IsInvalidArgument());
  return r.error().message();
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---------------------------------------------------------------- table

TEST_CASE("every default in the settings table parses and is reported as default") {
  Config c = Defaults();
  for (const Setting& s : Settings()) {
    INFO(s.key);
    CHECK(c.sources.at(s.key) == Source::kDefault);
    Config scratch;
    CHECK(s.value.parse(s.default_value, scratch).ok());
  }
  CHECK(c.sources.size() == Settings().size());
  CHECK(c.config_file.empty());
}

TEST_CASE("defaults match the documented values") {
  Config c = Defaults();
  CHECK(c.server.listen == "127.0.0.1:7070");
  CHECK(c.server.threads == 16);
  CHECK(c.server.keepalive_timeout == milliseconds(5000));
  CHECK(c.server.keepalive_max_requests == 100000);
  CHECK(c.server.read_timeout == milliseconds(10000));
  CHECK(c.server.write_timeout == milliseconds(10000));
  CHECK(c.server.shutdown_timeout == milliseconds(10000));
  CHECK(c.storage.backend == "file");
  CHECK(c.storage.data_dir == "kvctl-data");
  CHECK(c.storage.fsync == core::FsyncPolicy::kAlways);
  CHECK(c.storage.fsync_interval == milliseconds(100));
  CHECK(c.storage.segment_bytes == 64u << 20);
  CHECK(c.limits.max_key_bytes == 1024);
  CHECK(c.limits.max_value_bytes == 1u << 20);
  CHECK(c.limits.max_txn_ops == 128);
  CHECK(c.log.level == "info");
  CHECK(c.log.format == "text");
  CHECK(c.client.addr == "http://127.0.0.1:7070");
  CHECK(c.client.timeout == milliseconds(10000));
}

TEST_CASE("env and flag names are derived from the key") {
  CHECK(EnvName("storage.fsync_interval") == "KVCTL_STORAGE_FSYNC_INTERVAL");
  CHECK(FlagName("storage.fsync_interval") == "--storage-fsync-interval");
  CHECK(EnvName("server.listen") == "KVCTL_SERVER_LISTEN");
  CHECK(FlagName("log.level") == "--log-level");
  REQUIRE(FindSetting("storage.fsync") != nullptr);
  CHECK(PreferredFlag(*FindSetting("storage.fsync")) == "--fsync");
  CHECK(PreferredFlag(*FindSetting("server.keepalive_timeout")) == "--server-keepalive-timeout");
  CHECK(FindSetting("storage.nope") == nullptr);
}

TEST_CASE("keys, env names and flag names are well formed and unique") {
  std::set<std::string> envs, flags;
  for (const Setting& s : Settings()) {
    INFO(s.key);
    CHECK(s.key.find('.') != std::string::npos);
    CHECK(s.key.find('.') == s.key.rfind('.'));
    CHECK_FALSE(s.scopes.empty());
    CHECK_FALSE(s.help.empty());
    CHECK(envs.insert(EnvName(s.key)).second);
    CHECK(flags.insert(FlagName(s.key)).second);
  }
  // An alias may equal its own derived flag (--log-level), never another's.
  for (const Setting& s : Settings()) {
    if (s.alias.empty() || "--" + s.alias == FlagName(s.key)) continue;
    INFO(s.alias);
    CHECK(flags.insert("--" + s.alias).second);
  }
  CHECK(envs.count("KVCTL_CONFIG") == 0);
}

TEST_CASE("settings belong to the scopes of the subcommands that use them") {
  CHECK(FindSetting("server.threads")->UsedBy(Scope::kServe));
  CHECK_FALSE(FindSetting("server.threads")->UsedBy(Scope::kClient));
  CHECK(FindSetting("client.addr")->UsedBy(Scope::kClient));
  CHECK_FALSE(FindSetting("client.addr")->UsedBy(Scope::kServe));
  CHECK(FindSetting("log.level")->UsedBy(Scope::kServe));
  CHECK(FindSetting("log.level")->UsedBy(Scope::kClient));
}

// ---------------------------------------------------------------- parsing

TEST_CASE("durations parse with units and compose") {
  CHECK(*ParseDuration("100ms") == milliseconds(100));
  CHECK(*ParseDuration("5s") == milliseconds(5000));
  CHECK(*ParseDuration("2m") == milliseconds(120000));
  CHECK(*ParseDuration("1h") == milliseconds(3600000));
  CHECK(*ParseDuration("1h30m") == milliseconds(5400000));
  CHECK(*ParseDuration("1.5s") == milliseconds(1500));
  CHECK(*ParseDuration("0s") == milliseconds(0));
  CHECK(*ParseDuration("0.250s") == milliseconds(250));
}

TEST_CASE("durations without a unit or with a bad one are rejected with a hint") {
  auto reason = [](std::string_view text) {
    core::Result<milliseconds> r = ParseDuration(text);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().IsInvalidArgument());
    return r.error().message();
  };
  CHECK(Contains(reason("100"), "missing unit"));
  CHECK(Contains(reason("100"), "\"100ms\""));
  CHECK(Contains(reason("5us"), "unknown unit \"us\""));
  CHECK(Contains(reason("5S"), "unknown unit \"S\""));
  CHECK(Contains(reason(""), "empty"));
  CHECK(Contains(reason("-1s"), "negative"));
  CHECK(Contains(reason("1.5ms"), "whole number of milliseconds"));
  CHECK(Contains(reason("5 s"), "not a duration"));
  CHECK(Contains(reason("s"), "not a duration"));
  CHECK(Contains(reason("1.s"), "not a duration"));
  CHECK(Contains(reason("99999999999999999999h"), "too large"));
  CHECK(Contains(reason("9999999999999999h"), "too large"));
}

TEST_CASE("byte sizes parse as integers or with binary and decimal units") {
  CHECK(*ParseByteSize("1048576") == 1048576u);
  CHECK(*ParseByteSize("0") == 0u);
  CHECK(*ParseByteSize("64MiB") == 64u << 20);
  CHECK(*ParseByteSize("1MiB") == 1u << 20);
  CHECK(*ParseByteSize("512KiB") == 512u << 10);
  CHECK(*ParseByteSize("1GiB") == 1u << 30);
  CHECK(*ParseByteSize("1MB") == 1000000u);
  CHECK(*ParseByteSize("1kb") == 1000u);
  CHECK(*ParseByteSize("1.5KiB") == 1536u);
  CHECK(*ParseByteSize("10B") == 10u);
}

TEST_CASE("byte sizes with ambiguous or unknown units are rejected") {
  auto reason = [](std::string_view text) {
    core::Result<uint64_t> r = ParseByteSize(text);
    REQUIRE_FALSE(r.has_value());
    return r.error().message();
  };
  CHECK(Contains(reason("1M"), "unknown unit \"M\""));
  CHECK(Contains(reason("1M"), "KiB, MiB"));
  CHECK(Contains(reason("1 MiB"), "unknown unit"));
  CHECK(Contains(reason("MiB"), "not a size"));
  CHECK(Contains(reason("-1"), "negative"));
  CHECK(Contains(reason(""), "empty"));
  CHECK(Contains(reason("1.5"), "whole number of bytes"));
  CHECK(Contains(reason("99999999999TiB"), "too large"));
}

TEST_CASE("formatted durations and sizes parse back to the same value") {
  for (int64_t ms : {0, 1, 100, 1000, 1500, 60000, 90000, 3600000, 5400000}) {
    INFO(ms);
    CHECK(*ParseDuration(FormatDuration(milliseconds(ms))) == milliseconds(ms));
  }
  CHECK(FormatDuration(milliseconds(100)) == "100ms");
  CHECK(FormatDuration(milliseconds(5000)) == "5s");
  CHECK(FormatDuration(milliseconds(3600000)) == "1h");
  for (uint64_t b : {uint64_t{0}, uint64_t{1}, uint64_t{1000}, uint64_t{1536}, uint64_t{1} << 20,
                     uint64_t{4} << 30}) {
    INFO(b);
    CHECK(*ParseByteSize(FormatByteSize(b)) == b);
  }
  CHECK(FormatByteSize(64u << 20) == "64MiB");
  CHECK(FormatByteSize(1536) == "1536");
}

TEST_CASE("integers reject trailing text and overflow") {
  CHECK(*ParseInteger("512") == 512);
  CHECK(*ParseInteger("-3") == -3);
  CHECK(Contains(ParseInteger("12abc").error().message(), "not an integer"));
  CHECK(Contains(ParseInteger("").error().message(), "not an integer"));
  CHECK(Contains(ParseInteger("99999999999999999999").error().message(), "out of range"));
}

TEST_CASE("listen addresses need a host and a port from 0 to 65535") {
  CHECK(*ParseListenAddress("127.0.0.1:7070") == "127.0.0.1:7070");
  CHECK(ParseListenAddress("localhost:0").has_value());
  CHECK(ParseListenAddress("[::1]:65535").has_value());
  CHECK(ParseListenAddress("0.0.0.0:80").has_value());
  CHECK(Contains(ParseListenAddress("127.0.0.1").error().message(), "host:port"));
  CHECK(Contains(ParseListenAddress(":7070").error().message(), "no host"));
  CHECK(Contains(ParseListenAddress("h:65536").error().message(), "0 to 65535"));
  CHECK(Contains(ParseListenAddress("h:").error().message(), "0 to 65535"));
  CHECK(Contains(ParseListenAddress("::1:80").error().message(), "brackets"));
  CHECK(Contains(ParseListenAddress("[::1]").error().message(), "host:port"));
  CHECK_FALSE(ParseListenAddress("a b:80").has_value());
}

TEST_CASE("client addresses are normalized to scheme://host:port") {
  CHECK(*NormalizeClientAddress("localhost:7070") == "http://localhost:7070");
  CHECK(*NormalizeClientAddress("http://10.0.0.1:7070") == "http://10.0.0.1:7070");
  CHECK(*NormalizeClientAddress("http://h:1/") == "http://h:1");
  CHECK(*NormalizeClientAddress("https://kv.example.com") == "https://kv.example.com:443");
  CHECK(*NormalizeClientAddress("http://kv.example.com") == "http://kv.example.com:80");
  CHECK(*NormalizeClientAddress("[::1]:7070") == "http://[::1]:7070");
  CHECK(Contains(NormalizeClientAddress("ftp://h:1").error().message(), "unsupported scheme"));
  CHECK(Contains(NormalizeClientAddress("localhost").error().message(), "no port"));
  CHECK(Contains(NormalizeClientAddress("http://h:1/v1").error().message(), "path"));
  CHECK(Contains(NormalizeClientAddress("h:0").error().message(), "1 to 65535"));
}

// ---------------------------------------------------------------- layers

TEST_CASE("file < environment < flag for one key, and sources say which won") {
  TempDir dir;
  const std::string toml = "[storage]\nfsync = \"never\"\n";
  SUBCASE("file alone") {
    core::Result<Config> c = LoadToml(dir, toml);
    REQUIRE(c.has_value());
    CHECK(c->storage.fsync == core::FsyncPolicy::kNever);
    CHECK(c->sources.at("storage.fsync") == Source::kFile);
    CHECK(c->sources.at("storage.backend") == Source::kDefault);
    CHECK(c->config_file == (dir.path() / "kvctl.toml").string());
  }
  SUBCASE("environment beats file") {
    core::Result<Config> c = LoadToml(dir, toml, {{"KVCTL_STORAGE_FSYNC", "interval"}});
    REQUIRE(c.has_value());
    CHECK(c->storage.fsync == core::FsyncPolicy::kInterval);
    CHECK(c->sources.at("storage.fsync") == Source::kEnv);
  }
  SUBCASE("flag beats environment and file") {
    core::Result<Config> c =
        LoadToml(dir, toml, {{"KVCTL_STORAGE_FSYNC", "interval"}}, {{"storage.fsync", "always"}});
    REQUIRE(c.has_value());
    CHECK(c->storage.fsync == core::FsyncPolicy::kAlways);
    CHECK(c->sources.at("storage.fsync") == Source::kFlag);
  }
}

TEST_CASE("a file sets every kind of value, integers where a count or size is meant") {
  TempDir dir;
  core::Result<Config> c = LoadToml(dir, R"(
[server]
listen = "0.0.0.0:0"
threads = 8
keepalive_timeout = "1m"
shutdown_timeout = "0s"

[storage]
data_dir = "/var/lib/kvctl"
fsync_interval = "250ms"
segment_bytes = 8192

[limits]
max_value_bytes = "2MiB"
max_key_bytes = 512

[log]
format = "json"

[client]
addr = "example.com:7000"
)");
  REQUIRE(c.has_value());
  CHECK(c->server.listen == "0.0.0.0:0");
  CHECK(c->server.threads == 8);
  CHECK(c->server.keepalive_timeout == milliseconds(60000));
  CHECK(c->server.shutdown_timeout == milliseconds(0));
  CHECK(c->storage.data_dir == "/var/lib/kvctl");
  CHECK(c->storage.fsync_interval == milliseconds(250));
  CHECK(c->storage.segment_bytes == 8192);
  CHECK(c->limits.max_value_bytes == 2u << 20);
  CHECK(c->limits.max_key_bytes == 512);
  CHECK(c->log.format == "json");
  CHECK(c->client.addr == "http://example.com:7000");
}

TEST_CASE("environment variables outside KVCTL_ are ignored and KVCTL_CONFIG is not a setting") {
  TempDir dir;
  std::string path = dir.Write("c.toml", "[log]\nlevel = \"debug\"\n");
  LoadInputs in;
  in.environment = {{"PATH", "/bin"}, {"KVCTL_CONFIG", path}, {"kvctl_lower", "x"}};
  core::Result<Config> c = Load(in);
  REQUIRE(c.has_value());
  CHECK(c->log.level == "debug");
  CHECK(c->config_file == path);
}

TEST_CASE("RenderEffective shows every value with where it came from") {
  TempDir dir;
  core::Result<Config> c =
      LoadToml(dir, "[server]\nthreads = 64\n", {{"KVCTL_STORAGE_FSYNC", "interval"}},
               {{"client.timeout", "3s"}});
  REQUIRE(c.has_value());
  std::string out = RenderEffective(*c);
  CHECK(Contains(out, "storage.fsync = \"interval\"  # env KVCTL_STORAGE_FSYNC\n"));
  CHECK(Contains(out, "server.threads = 64  # file " + c->config_file + "\n"));
  CHECK(Contains(out, "client.timeout = \"3s\"  # flag --timeout\n"));
  CHECK(Contains(out, "storage.segment_bytes = \"64MiB\"  # default\n"));
  CHECK(Contains(out, "server.listen = \"127.0.0.1:7070\"  # default\n"));
}

// ---------------------------------------------------------------- discovery

TEST_CASE("config file discovery order: --config, KVCTL_CONFIG, ./kvctl.toml, XDG, HOME") {
  TempDir dir;
  fs::create_directories(dir.path() / "work");
  ScopedChdir cd(dir.path() / "work");
  std::string xdg_file = dir.Write("xdg/kvctl/config.toml", "");
  std::map<std::string, std::string> env = {{"XDG_CONFIG_HOME", (dir.path() / "xdg").string()},
                                            {"HOME", (dir.path() / "home").string()}};
  LoadInputs in;
  in.environment = env;

  CHECK(ConfigFileCandidates(env) ==
        std::vector<std::string>{"./kvctl.toml", xdg_file, "/etc/kvctl/config.toml"});

  SUBCASE("XDG file when there is no ./kvctl.toml") { CHECK(*FindConfigFile(in) == xdg_file); }
  SUBCASE("./kvctl.toml before XDG") {
    dir.Write("work/kvctl.toml", "");
    CHECK(*FindConfigFile(in) == "./kvctl.toml");
    SUBCASE("KVCTL_CONFIG before ./kvctl.toml") {
      std::string named = dir.Write("named.toml", "");
      in.environment["KVCTL_CONFIG"] = named;
      CHECK(*FindConfigFile(in) == named);
      SUBCASE("--config before KVCTL_CONFIG") {
        std::string flagged = dir.Write("flagged.toml", "");
        in.config_path_flag = flagged;
        CHECK(*FindConfigFile(in) == flagged);
      }
    }
    SUBCASE("empty KVCTL_CONFIG counts as unset") {
      in.environment["KVCTL_CONFIG"] = "";
      CHECK(*FindConfigFile(in) == "./kvctl.toml");
    }
  }
  SUBCASE("$HOME/.config when XDG_CONFIG_HOME is unset") {
    in.environment.erase("XDG_CONFIG_HOME");
    std::string home_file = dir.Write("home/.config/kvctl/config.toml", "");
    CHECK(ConfigFileCandidates(in.environment)[1] == home_file);
    CHECK(*FindConfigFile(in) == home_file);
  }
  SUBCASE("a relative XDG_CONFIG_HOME is ignored") {
    in.environment["XDG_CONFIG_HOME"] = "relative/dir";
    CHECK(ConfigFileCandidates(in.environment)[1] ==
          (dir.path() / "home" / ".config" / "kvctl" / "config.toml").string());
  }
  SUBCASE("Load reads the discovered file") {
    dir.Write("work/kvctl.toml", "[server]\nthreads = 3\n");
    core::Result<Config> c = Load(in);
    REQUIRE(c.has_value());
    CHECK(c->config_file == "./kvctl.toml");
    CHECK(c->server.threads == 3);
    CHECK(c->sources.at("server.threads") == Source::kFile);
  }
}

TEST_CASE("no config file at all leaves defaults") {
  if (fs::exists("/etc/kvctl/config.toml")) {
    MESSAGE("skipped: /etc/kvctl/config.toml exists on this machine");
    return;
  }
  TempDir dir;
  ScopedChdir cd(dir.path());
  LoadInputs in;
  in.environment = {{"XDG_CONFIG_HOME", dir.path().string()}};
  core::Result<Config> c = Load(in);
  REQUIRE(c.has_value());
  CHECK(c->config_file.empty());
  CHECK(c->server.threads == 16);
}

TEST_CASE("an explicitly named config file that does not exist is an error") {
  TempDir dir;
  std::string missing = (dir.path() / "missing.toml").string();
  LoadInputs in;
  in.config_path_flag = missing;
  std::string msg = LoadError(Load(in));
  CHECK(Contains(msg, missing));
  CHECK(Contains(msg, "--config"));
  CHECK(Contains(msg, "does not exist"));

  LoadInputs by_env;
  by_env.environment = {{"KVCTL_CONFIG", missing}};
  msg = LoadError(Load(by_env));
  CHECK(Contains(msg, missing));
  CHECK(Contains(msg, "KVCTL_CONFIG"));
}

// ---------------------------------------------------------------- errors

TEST_CASE("a bad enum value names the key, the value, the env var and the choices") {
  TempDir dir;
  std::string msg = LoadError(LoadToml(dir, "", {{"KVCTL_STORAGE_FSYNC", "sometimes"}}));
  CHECK(msg ==
        "storage.fsync = \"sometimes\" (from environment KVCTL_STORAGE_FSYNC) is not one of: "
        "always, interval, never");
}

TEST_CASE("a bad value from a flag names the flag") {
  TempDir dir;
  std::string msg = LoadError(LoadToml(dir, "", {}, {{"server.threads", "0"}}));
  CHECK(msg == "server.threads = \"0\" (from flag --threads) must be an integer from 1 to 16384");
  msg = LoadError(LoadToml(dir, "", {}, {{"server.read_timeout", "500ms"}}));
  CHECK(Contains(msg, "server.read_timeout = \"500ms\" (from flag --server-read-timeout)"));
  CHECK(Contains(msg, "at least 1s"));
}

TEST_CASE("a bad value in the file names the file and line") {
  TempDir dir;
  std::string msg = LoadError(LoadToml(dir, "[storage]\n\nfsync = \"sometimes\"\n"));
  std::string path = (dir.path() / "kvctl.toml").string();
  CHECK(msg == "storage.fsync = \"sometimes\" (from " + path +
                   ", line 3) is not one of: always, interval, never");
  msg = LoadError(LoadToml(dir, "[storage]\nsegment_bytes = \"1KiB\"\n"));
  CHECK(Contains(msg, "storage.segment_bytes = \"1KiB\""));
  CHECK(Contains(msg, "line 2"));
  CHECK(Contains(msg, "from 4KiB to 4GiB"));
  msg = LoadError(LoadToml(dir, "[limits]\nmax_value_bytes = -1\n"));
  CHECK(Contains(msg, "limits.max_value_bytes = -1 ("));
  CHECK(Contains(msg, "negative"));
}

TEST_CASE("an unknown key in the file names it, the file, the line and the known keys") {
  TempDir dir;
  std::string msg =
      LoadError(LoadToml(dir, "[storage]\nbackend = \"file\"\nfsyncc = \"always\"\n"));
  std::string path = (dir.path() / "kvctl.toml").string();
  CHECK(Contains(msg, "unknown key \"storage.fsyncc\" in " + path + " (line 3)"));
  CHECK(Contains(msg, "did you mean \"storage.fsync\"?"));
  CHECK(Contains(msg,
                 "known keys in [storage]: backend, data_dir, fsync, fsync_interval, "
                 "segment_bytes"));
}

TEST_CASE("a key in the wrong section suggests the right one") {
  TempDir dir;
  std::string msg = LoadError(LoadToml(dir, "[server]\ndata_dir = \"x\"\n"));
  CHECK(Contains(msg, "unknown key \"server.data_dir\""));
  CHECK(Contains(msg, "did you mean \"storage.data_dir\"?"));
}

TEST_CASE("unknown sections and keys outside a section are errors") {
  TempDir dir;
  std::string msg = LoadError(LoadToml(dir, "[strage]\nfsync = \"always\"\n"));
  CHECK(Contains(msg, "unknown section [strage]"));
  CHECK(Contains(msg, "line 1"));
  CHECK(Contains(msg, "did you mean [storage]?"));
  CHECK(Contains(msg, "[server]"));

  msg = LoadError(LoadToml(dir, "threads = 4\n"));
  CHECK(Contains(msg, "\"threads\""));
  CHECK(Contains(msg, "outside any section"));
  CHECK(Contains(msg, "[server]"));

  msg = LoadError(LoadToml(dir, "server = 4\n"));
  CHECK(Contains(msg, "must be a table"));
}

TEST_CASE("a wrong TOML type names the key, the file and line, and both types") {
  TempDir dir;
  std::string path = (dir.path() / "kvctl.toml").string();
  std::string msg = LoadError(LoadToml(dir, "[server]\nthreads = \"8\"\n"));
  CHECK(msg == "server.threads in " + path + " (line 2) must be an integer, got a string");

  msg = LoadError(LoadToml(dir, "[storage]\nfsync_interval = 100\n"));
  CHECK(Contains(msg, "storage.fsync_interval in " + path + " (line 2)"));
  CHECK(Contains(msg, "got an integer"));
  CHECK(Contains(msg, "\"100ms\""));

  msg = LoadError(LoadToml(dir, "[storage]\nfsync = true\n"));
  CHECK(Contains(msg, "must be a string, got a boolean"));

  msg = LoadError(LoadToml(dir, "[storage]\nsegment_bytes = 1.5\n"));
  CHECK(Contains(msg, "got a float"));
}

TEST_CASE("TOML syntax errors give file, line and column") {
  TempDir dir;
  std::string path = (dir.path() / "kvctl.toml").string();
  std::string msg = LoadError(LoadToml(dir, "[server]\nthreads = = 4\n"));
  CHECK(Contains(msg, "invalid TOML in " + path));
  CHECK(Contains(msg, "line 2"));
  CHECK(Contains(msg, "column"));
}

TEST_CASE("file problems are reported in line order") {
  TempDir dir;
  std::string msg = LoadError(LoadToml(dir, "[storage]\nzzz = 1\n[server]\nthreads = 0\n"));
  CHECK(Contains(msg, "storage.zzz"));
}

TEST_CASE("a bad file value is an error even when a flag overrides it") {
  TempDir dir;
  std::string msg = LoadError(
      LoadToml(dir, "[storage]\nfsync = \"sometimes\"\n", {}, {{"storage.fsync", "always"}}));
  CHECK(Contains(msg, "storage.fsync = \"sometimes\""));
}

TEST_CASE("an unknown KVCTL_ variable is an error naming it and suggesting the closest") {
  TempDir dir;
  std::string msg = LoadError(LoadToml(dir, "", {{"KVCTL_STORAGE_FSYNCC", "always"}}));
  CHECK(msg ==
        "unknown environment variable KVCTL_STORAGE_FSYNCC; did you mean "
        "KVCTL_STORAGE_FSYNC?");
  msg = LoadError(LoadToml(dir, "", {{"KVCTL_DATA_DIR", "/x"}}));
  CHECK(Contains(msg, "KVCTL_DATA_DIR"));
  CHECK(Contains(msg, "did you mean KVCTL_STORAGE_DATA_DIR?"));
  msg = LoadError(LoadToml(dir, "", {{"KVCTL_FROBNICATE", "1"}}));
  CHECK(Contains(msg, "unknown environment variable KVCTL_FROBNICATE"));
}

TEST_CASE("the postgres backend and its dsn come from the file, the environment or a flag") {
  TempDir dir;
  auto c = LoadToml(dir, "[storage]\nbackend = \"postgres\"\n[postgres]\ndsn = \"host=/a\"\n");
  REQUIRE(c.has_value());
  CHECK(c->storage.backend == "postgres");
  CHECK(c->postgres.dsn == "host=/a");
  c = LoadToml(dir, "[postgres]\ndsn = \"host=/a\"\n", {{"KVCTL_POSTGRES_DSN", "host=/b"}});
  REQUIRE(c.has_value());
  CHECK(c->postgres.dsn == "host=/b");
  c = LoadToml(dir, "", {{"KVCTL_POSTGRES_DSN", "host=/b"}}, {{"postgres.dsn", "host=/c"}});
  REQUIRE(c.has_value());
  CHECK(c->postgres.dsn == "host=/c");
  CHECK(PreferredFlag(*FindSetting("postgres.dsn")) == "--dsn");
  std::string msg = LoadError(LoadToml(dir, "", {}, {{"storage.backend", "sqlite"}}));
  CHECK(Contains(msg, "is not one of: file, postgres"));
}

TEST_CASE("range limits are enforced per setting") {
  TempDir dir;
  CHECK(LoadToml(dir, "", {{"KVCTL_LIMITS_MAX_VALUE_BYTES", "0"}}).has_value());
  CHECK(Contains(LoadError(LoadToml(dir, "", {{"KVCTL_LIMITS_MAX_VALUE_BYTES", "513MiB"}})),
                 "up to 512MiB"));
  CHECK(Contains(LoadError(LoadToml(dir, "", {{"KVCTL_STORAGE_FSYNC_INTERVAL", "2h"}})),
                 "from 1ms to 1h"));
  CHECK(Contains(LoadError(LoadToml(dir, "", {{"KVCTL_LIMITS_MAX_KEY_BYTES", "2049"}})),
                 "from 1 to 2048"));
  CHECK(Contains(LoadError(LoadToml(dir, "", {{"KVCTL_LIMITS_MAX_TXN_OPS", "0"}})), "from 1 to 10000"));
  CHECK(LoadToml(dir, "", {{"KVCTL_LIMITS_MAX_TXN_OPS", "10000"}})->limits.max_txn_ops == 10000);
  CHECK(Contains(LoadError(LoadToml(dir, "", {{"KVCTL_SERVER_KEEPALIVE_MAX_REQUESTS", "0"}})),
                 "at least 1"));
  CHECK(Contains(LoadError(LoadToml(dir, "", {{"KVCTL_STORAGE_DATA_DIR", ""}})),
                 "must not be empty"));
  CHECK(Contains(LoadError(LoadToml(dir, "", {{"KVCTL_CLIENT_TIMEOUT", "0s"}})), "at least 1ms"));
}

// ---------------------------------------------------------------- security

const std::string kHashA = std::string(64, 'a');
const std::string kHashB = std::string(63, 'b') + "B";  // either case; stored lowercase

TEST_CASE("[[auth.tokens]] and [[auth.certs]] are read with their grants") {
  TempDir dir;
  core::Result<Config> c = LoadToml(dir, R"(
[tls]
cert = "/etc/kvctl/server.pem"
key = "/etc/kvctl/server.key"
client_ca = "/etc/kvctl/ca.pem"

[[auth.tokens]]
name = "deploy"
sha256 = ")" + kHashA + R"("
grants = [{ prefix = "app/", ops = ["read", "write"] }, { prefix = "shared/", ops = ["read"] }]

[[auth.tokens]]
name = "ops"
sha256 = ")" + kHashB + R"("
grants = [{ prefix = "", ops = ["admin", "read"] }]

[[auth.certs]]
cn = "backup.example"
grants = [{ prefix = "", ops = ["read"] }]
)");
  REQUIRE_MESSAGE(c.has_value(), c.error().message());
  REQUIRE(c->auth.tokens.size() == 2);
  CHECK(c->auth.tokens[0].name == "deploy");
  CHECK(c->auth.tokens[0].sha256 == kHashA);
  CHECK(c->auth.tokens[0].grants ==
        std::vector<AuthGrant>{{"app/", true, true, false}, {"shared/", true, false, false}});
  CHECK(c->auth.tokens[1].sha256 == std::string(64, 'b'));
  CHECK(c->auth.tokens[1].grants == std::vector<AuthGrant>{{"", true, false, true}});
  REQUIRE(c->auth.certs.size() == 1);
  CHECK(c->auth.certs[0].name == "backup.example");
  CHECK(c->auth.enabled());
  CHECK(c->sources.at("auth.tokens") == Source::kFile);
  CHECK(Contains(RenderEffective(*c), "auth.certs = [{ cn = \"backup.example\", grants = [{ prefix = \"\", "
                                      "ops = [\"read\"] }] }]  # file"));
  CHECK_FALSE(Defaults().auth.enabled());
}

TEST_CASE("bad auth tables are errors naming the entry, the file and line, and what to write") {
  TempDir dir;
  auto error = [&](const std::string& toml) { return LoadError(LoadToml(dir, toml)); };
  const std::string grants = "grants = [{ prefix = \"\", ops = [\"read\"] }]\n";
  std::string msg = error("[[auth.tokens]]\nname = \"x\"\nsha256 = \"s3cret\"\n" + grants);
  CHECK(Contains(msg, "auth.tokens[0] (in "));
  CHECK(Contains(msg, "line 1)"));
  CHECK(Contains(msg, "64 hex digits"));
  CHECK(Contains(msg, "sha256sum"));
  msg = error("[[auth.tokens]]\nname = \"x\"\nsha256 = \"" + kHashA + "\"\ntoken = \"t\"\n" + grants);
  CHECK(Contains(msg, "unknown field \"token\""));
  msg = error("[[auth.tokens]]\nname = \"x\"\nsha256 = \"" + kHashA + "\"\n");
  CHECK(Contains(msg, "needs grants"));
  msg = error("[[auth.tokens]]\nname = \"x\"\nsha256 = \"" + kHashA +
              "\"\ngrants = [{ prefix = \"app/\", ops = [\"admin\"] }]\n");
  CHECK(Contains(msg, "admin is store-wide"));
  msg = error("[[auth.tokens]]\nname = \"x\"\nsha256 = \"" + kHashA +
              "\"\ngrants = [{ prefix = \"\", ops = [\"rw\"] }]\n");
  CHECK(Contains(msg, "\"rw\", which is not one of"));
  msg = error("[[auth.tokens]]\nsha256 = \"" + kHashA + "\"\n" + grants);
  CHECK(Contains(msg, "lacks name"));
  msg = error("[auth]\ntokens = \"abc\"\n");
  CHECK(Contains(msg, "must be an array of tables"));
  msg = error("[[auth.tokens]]\nname = \"x\"\nsha256 = \"" + kHashA + "\"\n" + grants +
              "[[auth.tokens]]\nname = \"x\"\nsha256 = \"" + kHashB + "\"\n" + grants);
  CHECK(Contains(msg, "\"x\" is defined twice"));
  msg = error("[[auth.tokens]]\nname = \"x\"\nsha256 = \"" + kHashA + "\"\n" + grants +
              "[[auth.tokens]]\nname = \"y\"\nsha256 = \"" + kHashA + "\"\n" + grants);
  CHECK(Contains(msg, "same sha256"));
  msg = error("[[auth.certs]]\ncn = \"c\"\n" + grants);
  CHECK(Contains(msg, "tls.client_ca is not set"));
}

TEST_CASE("auth tables cannot come from the environment, and have no flag") {
  TempDir dir;
  std::string msg = LoadError(LoadToml(dir, "", {{"KVCTL_AUTH_TOKENS", "[]"}}));
  CHECK(Contains(msg, "KVCTL_AUTH_TOKENS"));
  CHECK(Contains(msg, "auth.file"));
}

TEST_CASE("auth.file adds [[tokens]] and [[certs]] from its own file, read only by LoadAuthFile") {
  TempDir dir;
  const std::string grants = "grants = [{ prefix = \"app/\", ops = [\"read\"] }]\n";
  const std::string file = dir.Write("tokens.toml", "[[tokens]]\nname = \"ci\"\nsha256 = \"" + kHashA + "\"\n" + grants);
  core::Result<Config> c = LoadToml(dir, "", {{"KVCTL_AUTH_FILE", file}});
  REQUIRE(c.has_value());
  CHECK(c->auth.file_tokens.empty());  // a client command never reads it
  REQUIRE(LoadAuthFile(*c).ok());
  REQUIRE(c->auth.file_tokens.size() == 1);
  CHECK(c->auth.file_tokens[0].name == "ci");
  CHECK(c->auth.enabled());
  CHECK_FALSE(Contains(RenderEffective(*c), "\"ci\""));  // not shown as if set in the config file

  Config same_name = *c;
  same_name.auth.tokens = same_name.auth.file_tokens;
  same_name.auth.tokens[0].sha256 = std::string(64, 'c');
  CHECK(Contains(LoadAuthFile(same_name).message(), "defined twice"));

  Config empty = *c;
  empty.auth.file = dir.Write("empty.toml", "# nothing yet\n");
  CHECK(Contains(LoadAuthFile(empty).message(), "defines no [[tokens]] and no [[certs]]"));
  Config stray = *c;
  stray.auth.file = dir.Write("stray.toml", "[[token]]\nname = \"x\"\n");
  CHECK(Contains(LoadAuthFile(stray).message(), "unknown key \"token\""));
  Config missing = *c;
  missing.auth.file = (dir.path() / "nope.toml").string();
  CHECK(Contains(LoadAuthFile(missing).message(), "is not a file that exists"));
}

TEST_CASE("client.token is a secret: neither config show nor an error prints it") {
  TempDir dir;
  core::Result<Config> c = LoadToml(dir, "", {{"KVCTL_CLIENT_TOKEN", "s3cret-token"}});
  REQUIRE(c.has_value());
  CHECK(c->client.token == "s3cret-token");
  const std::string shown = RenderEffective(*c);
  CHECK_FALSE(Contains(shown, "s3cret"));
  CHECK(Contains(shown, "client.token = \"********\"  # env KVCTL_CLIENT_TOKEN"));
  CHECK(Contains(RenderEffective(Defaults()), "client.token = \"\"  # default"));
}

TEST_CASE("log.requests is errors by default, all and off, and the old booleans, from file, env and flags") {
  TempDir dir;
  CHECK(Defaults().log.requests == "errors");
  CHECK(Defaults().log.slow_request == std::chrono::milliseconds(100));
  auto requests = [&](const std::string& toml, const std::map<std::string, std::string>& env = {},
                      const std::map<std::string, std::string>& flags = {}) {
    core::Result<Config> c = LoadToml(dir, toml, env, flags);
    REQUIRE_MESSAGE(c.has_value(), c.error().message());
    return c->log.requests;
  };
  CHECK(requests("[log]\nrequests = \"all\"\n") == "all");
  CHECK(requests("[log]\nrequests = \"off\"\n") == "off");
  // A config file written when it was a boolean keeps its meaning.
  CHECK(requests("[log]\nrequests = true\n") == "all");
  CHECK(requests("[log]\nrequests = false\n") == "off");
  CHECK(requests("", {{"KVCTL_LOG_REQUESTS", "false"}}) == "off");
  CHECK(requests("", {{"KVCTL_LOG_REQUESTS", "errors"}}) == "errors");
  CHECK(requests("", {}, {{"log.requests", "true"}}) == "all");
  CHECK(requests("", {}, {{"log.requests", "1"}}) == "all");
  const std::string bad = LoadError(LoadToml(dir, "", {}, {{"log.requests", "maybe"}}));
  CHECK(Contains(bad, "is not one of: errors, all, off"));
  CHECK(Contains(bad, "true = all, false = off"));
  CHECK(Contains(LoadError(LoadToml(dir, "[log]\nrequests = 1\n")), "must be a string"));
  // config show says what true came to mean.
  core::Result<Config> c = LoadToml(dir, "[log]\nrequests = true\nslow_request = \"2s\"\n");
  REQUIRE(c.has_value());
  CHECK(c->log.slow_request == std::chrono::seconds(2));
  CHECK(Contains(RenderEffective(*c), "log.requests = \"all\""));
  CHECK(Contains(LoadError(LoadToml(dir, "[log]\nslow_request = 100\n")), "unit"));
}

TEST_CASE("the TLS defaults of the settings are the server's own, tls.min_version is 1.2 or 1.3") {
  const Config d = Defaults();
  CHECK(d.tls.ciphers == kvctl::server::kDefaultTls12Ciphers);
  CHECK(d.tls.ciphersuites == kvctl::server::kDefaultTls13Ciphersuites);
  CHECK(d.tls.min_version == "1.2");
  TempDir dir;
  CHECK(Contains(LoadError(LoadToml(dir, "[tls]\nmin_version = \"1.1\"\n")), "is not one of: 1.2, 1.3"));
  CHECK(LoadToml(dir, "[tls]\nmin_version = \"1.3\"\n")->tls.min_version == "1.3");
}

TEST_CASE("tls.client_crl needs tls.client_ca") {
  TempDir dir;
  CHECK(Contains(LoadError(LoadToml(dir, "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_crl = \"r.pem\"\n")),
                 "tls.client_crl is set but tls.client_ca is not"));
  CHECK(LoadToml(dir, "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\nclient_ca = \"ca.pem\"\nclient_crl = \"r.pem\"\n")
            .has_value());
}

TEST_CASE("TLS files go together") {
  TempDir dir;
  CHECK(Contains(LoadError(LoadToml(dir, "[tls]\ncert = \"c.pem\"\n")), "tls.key is not"));
  CHECK(Contains(LoadError(LoadToml(dir, "[tls]\nkey = \"k.pem\"\n")), "tls.cert is not"));
  CHECK(Contains(LoadError(LoadToml(dir, "[tls]\nclient_ca = \"ca.pem\"\n")), "tls.client_ca is set"));
  CHECK(LoadToml(dir, "[tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n").has_value());
}

TEST_CASE("security settings default to off: no TLS, no auth, no rate limit") {
  Config c = Defaults();
  CHECK(c.tls.cert.empty());
  CHECK(c.tls.client_ca.empty());
  CHECK(c.auth.metrics == "open");
  CHECK(c.ratelimit.rate == 0);
  CHECK(c.server.max_header_bytes == 16u << 10);
  CHECK(c.client.token.empty());
}

}  // namespace
}  // namespace kvctl::config
