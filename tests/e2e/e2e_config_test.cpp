// End-to-end tests of configuration (SPEC §4): TOML file < KVCTL_* environment
// < flags, and errors that name the offending key and where it came from.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;

// True if something answers HTTP on 127.0.0.1:port.
bool Answers(int port) {
  httplib::Client probe("127.0.0.1", port);
  probe.set_connection_timeout(1);
  probe.set_read_timeout(2);
  return static_cast<bool>(probe.Get("/healthz"));
}

fs::path WriteConfig(const TempDir& tmp, const std::string& text) {
  fs::path path = tmp / "kvctl.toml";
  WriteFile(path, text);
  return path;
}

}  // namespace

TEST_CASE("the listen address comes from the config file, then KVCTL_SERVER_LISTEN, then --listen") {
  TempDir tmp;
  fs::create_directories(tmp / "data");
  const int p1 = FreePort(), p2 = FreePort(), p3 = FreePort();
  REQUIRE(p1 != p2);
  REQUIRE(p2 != p3);
  REQUIRE(p1 != p3);
  const fs::path config = WriteConfig(tmp, "[server]\nlisten = \"127.0.0.1:" + std::to_string(p1) + "\"\n");
  const std::string data = (tmp / "data").string();

  SUBCASE("file only") {
    ServerProcess server(tmp.path(), ServerOptions{data, p1, {"--config", config.string()}, {}, false});
    server.WaitReady();
    CHECK(Answers(p1));
    CHECK(server.Terminate() == 0);
  }
  SUBCASE("the environment overrides the file") {
    ServerProcess server(tmp.path(), ServerOptions{data, p2, {"--config", config.string()},
                                                   {{"KVCTL_SERVER_LISTEN", Addr(p2)}}, false});
    server.WaitReady();
    CHECK_FALSE(Answers(p1));
    CHECK(server.Terminate() == 0);
  }
  SUBCASE("the flag overrides the environment and the file") {
    ServerProcess server(tmp.path(), ServerOptions{data, p3, {"--config", config.string()},
                                                   {{"KVCTL_SERVER_LISTEN", Addr(p2)}}, true});
    server.WaitReady();
    CHECK_FALSE(Answers(p1));
    CHECK_FALSE(Answers(p2));
    CHECK(server.Terminate() == 0);
  }
  SUBCASE("KVCTL_CONFIG names the file when --config is absent") {
    ServerProcess server(tmp.path(), ServerOptions{data, p1, {}, {{"KVCTL_CONFIG", config.string()}},
                                                   false});
    server.WaitReady();
    CHECK(server.Terminate() == 0);
  }
}

TEST_CASE("client commands take the address from the config file, then KVCTL_CLIENT_ADDR, then --addr") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("where", "found").status == 201);
  const std::string nowhere = Addr(FreePort());
  TempDir tmp;
  const fs::path good = tmp / "good.toml";
  const fs::path bad = tmp / "bad.toml";
  WriteFile(good, "[client]\naddr = \"" + server.addr() + "\"\n");
  WriteFile(bad, "[client]\naddr = \"" + nowhere + "\"\n");

  CliResult from_file = RunCli({"get", "where", "--config", good.string()});
  CHECK_MESSAGE(from_file.exit_code == 0, from_file.err);
  CHECK(from_file.out == "found");

  CliOptions env_wins;
  env_wins.env = {{"KVCTL_CLIENT_ADDR", server.addr()}};
  CliResult from_env = RunCli({"get", "where", "--config", bad.string()}, env_wins);
  CHECK_MESSAGE(from_env.exit_code == 0, from_env.err);
  CHECK(from_env.out == "found");

  CliOptions env_loses;
  env_loses.env = {{"KVCTL_CLIENT_ADDR", nowhere}};
  CliResult from_flag =
      RunCli({"get", "where", "--config", bad.string(), "--addr", server.addr()}, env_loses);
  CHECK_MESSAGE(from_flag.exit_code == 0, from_flag.err);
  CHECK(from_flag.out == "found");

  CliResult unreachable = RunCli({"get", "where", "--config", bad.string()});
  CHECK(unreachable.exit_code == 3);
}

TEST_CASE("an unknown key in the config file makes serve exit 2 naming the key and the file") {
  TempDir tmp;
  const fs::path config = WriteConfig(
      tmp, "[server]\nlisten = \"127.0.0.1:" + std::to_string(FreePort()) + "\"\nno_such_option = 1\n");
  auto [code, err] = ServeRefused(tmp, {"--config", config.string()});
  CHECK_MESSAGE(code == 2, "exit " << code << "; stderr:\n" << err);
  CHECK_MESSAGE(err.find("no_such_option") != std::string::npos, "stderr:\n" << err);
  CHECK_MESSAGE(err.find(config.string()) != std::string::npos, "stderr:\n" << err);
}

TEST_CASE("an unknown section or a wrongly typed value in the config file makes serve exit 2") {
  TempDir tmp;
  SUBCASE("unknown section") {
    const fs::path config = WriteConfig(tmp, "[nonsense]\nkey = 1\n");
    auto [code, err] = ServeRefused(tmp, {"--config", config.string()});
    CHECK_MESSAGE(code == 2, "exit " << code << "; stderr:\n" << err);
    CHECK_MESSAGE(err.find("nonsense") != std::string::npos, "stderr:\n" << err);
  }
  SUBCASE("wrong type") {
    const fs::path config = WriteConfig(tmp, "[storage]\nfsync = 5\n");
    auto [code, err] = ServeRefused(tmp, {"--config", config.string()});
    CHECK_MESSAGE(code == 2, "exit " << code << "; stderr:\n" << err);
    CHECK_MESSAGE(err.find("fsync") != std::string::npos, "stderr:\n" << err);
    CHECK_MESSAGE(err.find(config.string()) != std::string::npos, "stderr:\n" << err);
  }
  SUBCASE("not TOML") {
    const fs::path config = WriteConfig(tmp, "[server\nlisten = \n");
    auto [code, err] = ServeRefused(tmp, {"--config", config.string()});
    CHECK_MESSAGE(code == 2, "exit " << code << "; stderr:\n" << err);
    CHECK_MESSAGE(err.find(config.string()) != std::string::npos, "stderr:\n" << err);
  }
  SUBCASE("a --config file that does not exist") {
    auto [code, err] = ServeRefused(tmp, {"--config", (tmp / "missing.toml").string()});
    CHECK_MESSAGE(code == 2, "exit " << code << "; stderr:\n" << err);
  }
}

TEST_CASE("a bad KVCTL_STORAGE_FSYNC value makes serve exit 2 naming the variable") {
  TempDir tmp;
  auto [code, err] = ServeRefused(tmp, {}, {{"KVCTL_STORAGE_FSYNC", "sometimes"}});
  CHECK_MESSAGE(code == 2, "exit " << code << "; stderr:\n" << err);
  CHECK_MESSAGE(err.find("KVCTL_STORAGE_FSYNC") != std::string::npos, "stderr:\n" << err);
  CHECK_MESSAGE(err.find("sometimes") != std::string::npos, "stderr:\n" << err);
}

TEST_CASE("bad serve flags exit 2: unknown flag, bad --fsync, bad --listen") {
  TempDir tmp;
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--no-such-flag"}, {"--fsync", "sometimes"}}) {
    CAPTURE(args[0]);
    auto [code, err] = ServeRefused(tmp, args);
    CHECK_MESSAGE(code == 2, "exit " << code << "; stderr:\n" << err);
  }
  fs::create_directories(tmp / "data");
  ServerProcess bad_listen(tmp.path(), ServerOptions{(tmp / "data").string(), 0,
                                                     {"--listen", "not-an-address"}, {}});
  auto code = bad_listen.WaitExit(std::chrono::seconds(20));
  REQUIRE(code.has_value());
  CHECK_MESSAGE(*code == 2, "exit " << *code << "; stderr:\n" << bad_listen.Stderr());
}

TEST_CASE("every fsync policy serves, and SIGTERM exits 0 with the writes kept") {
  for (const std::string policy : {"always", "interval", "never"}) {
    CAPTURE(policy);
    KvServer server({"--fsync", policy});
    HttpClient http(server.port());
    for (int i = 0; i < 20; ++i) {
      REQUIRE(http.Put("k" + std::to_string(i), "v" + std::to_string(i)).status == 201);
    }
    http.Close();
    server.Restart();  // CHECKs exit 0
    HttpClient again(server.port());
    for (int i = 0; i < 20; ++i) CHECK(again.Get("k" + std::to_string(i)).body == "v" + std::to_string(i));
  }
}


// ------------------------------------------------- the data dir, before anything is written

TEST_CASE("a data dir that is a regular file is a configuration error: exit 2 naming the path") {
  TempDir tmp;
  const fs::path file = tmp / "data";
  WriteFile(file, "not a directory\n");
  ServerProcess server(tmp.path(), ServerOptions{file.string(), FreePort(), {}, {}});
  auto code = server.WaitExit(std::chrono::seconds(20));
  REQUIRE_MESSAGE(code.has_value(), "serve started on a data dir that is a file");
  CHECK_MESSAGE(*code == 2, "exit " << *code << "; stderr:\n" << server.Stderr());
  const std::string err = server.Stderr();
  CHECK(err.find(file.string()) != std::string::npos);
  CHECK(err.find("is a regular file, not a directory") != std::string::npos);
  CHECK(IsOneErrorLine(err));
  CHECK(ReadFile(file) == "not a directory\n");  // left as it was
}

TEST_CASE("a data dir the server's user cannot write is a configuration error: exit 2, nothing created") {
  TempDir tmp;
  const fs::path data = tmp / "data";
  fs::create_directories(data);
  const fs::path inside = data / "sub";  // to be created in a directory kvctl cannot write
  std::vector<std::string> prefix;
  if (::geteuid() == 0) {
    // root may write anywhere: run as nobody, who owns nothing here.
    REQUIRE(::chmod(tmp.path().c_str(), 0755) == 0);
    prefix = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  } else {
    REQUIRE(::chmod(data.c_str(), 0555) == 0);
  }
  for (const fs::path& dir : {data, inside}) {
    CAPTURE(dir);
    ServerOptions o{dir.string(), FreePort(), {}, {}};
    o.command_prefix = prefix;
    ServerProcess server(tmp.path(), std::move(o));
    auto code = server.WaitExit(std::chrono::seconds(20));
    REQUIRE_MESSAGE(code.has_value(), "serve started on a data dir it cannot write");
    CHECK_MESSAGE(*code == 2, "exit " << *code << "; stderr:\n" << server.Stderr());
    const std::string err = server.Stderr();
    CHECK(err.find(data.string() + " is not writable by uid ") != std::string::npos);
    CHECK(err.find("chown") != std::string::npos);
    CHECK(IsOneErrorLine(err));
  }
  CHECK(ListDir(data).empty());
  ::chmod(data.c_str(), 0755);
}

TEST_CASE("serve on a busy port exits 2 before it creates or recovers the data dir") {
  TempDir tmp;
  KvServer other;  // holds the port
  const fs::path data = tmp / "new" / "data";
  ServerProcess server(tmp.path(), ServerOptions{data.string(), other.port(), {}, {}});
  auto code = server.WaitExit(std::chrono::seconds(20));
  REQUIRE_MESSAGE(code.has_value(), "serve started on a port in use");
  CHECK_MESSAGE(*code == 2, "exit " << *code << "; stderr:\n" << server.Stderr());
  CHECK(server.Stderr().find("address is in use") != std::string::npos);
  CHECK(server.Stderr().find("recovered") == std::string::npos);
  CHECK_FALSE(fs::exists(tmp / "new"));
}

TEST_CASE("config show masks every secret of postgres.dsn as libpq parses it, in text and JSON") {
  for (const std::string dsn : {"host=db password=S3CRET application_name=http://x",
                                "host=db sslpassword=S3CRET dbname=kv",
                                "postgresql://app@db/kv?%70assword=S3CRET"}) {
    CAPTURE(dsn);
    CliResult text = RunCli({"config", "show", "--dsn", dsn});
    REQUIRE_MESSAGE(text.exit_code == 0, text.err);
    CHECK(text.out.find("S3CRET") == std::string::npos);
    CHECK(text.out.find("password=********") != std::string::npos);
    CHECK(text.out.find("host=db") != std::string::npos);  // where it points is still shown
    CliResult json = RunCli({"config", "show", "--dsn", dsn, "-o", "json"});
    REQUIRE_MESSAGE(json.exit_code == 0, json.err);
    CHECK(json.out.find("S3CRET") == std::string::npos);
  }
}

}  // namespace kvctl::e2e

namespace kvctl::e2e {

TEST_CASE("a DSN libpq cannot parse is named in the error without the piece it stumbled on") {
  // libpq says: missing "=" after "s3cretpw" in connection info string.
  CliResult r = RunCli({"migrate", "version", "--dsn", "host=db user=kv s3cretpw dbname=app"});
  CHECK(r.exit_code == 2);
  CHECK(IsOneErrorLine(r.err));
  CHECK_MESSAGE(r.err.find("s3cretpw") == std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find("missing \"=\"") != std::string::npos, r.err);
}

}  // namespace kvctl::e2e
