// End-to-end tests of the client commands (SPEC §3): `kvctl put/get/del` run as
// real processes against a real `kvctl serve`.
#include <algorithm>
#include <regex>
#include <set>
#include <sstream>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

constexpr size_t kMiB = 1024 * 1024;

std::string S(const char* bytes, size_t n) { return std::string(bytes, n); }

// Checks a successful command: exit 0, nothing on stderr worth failing for.
void CheckOk(const CliResult& r) {
  CHECK_MESSAGE(r.exit_code == 0, "exit " << r.exit_code << ", stderr: " << r.err);
}

// Checks a failed command: the exit code, empty stdout, one "kvctl: " line.
void CheckFails(const CliResult& r, int code) {
  CHECK_MESSAGE(r.exit_code == code,
                "expected exit " << code << ", got " << r.exit_code << "; stderr: " << r.err);
  CHECK_MESSAGE(r.out.empty(), "stdout not empty on error: " << r.out.substr(0, 200));
  CHECK_MESSAGE(IsOneErrorLine(r.err), "stderr is not one 'kvctl: ' line: [" << r.err << "]");
}

struct Cli {
  std::string addr;
  CliResult operator()(std::vector<std::string> args, std::string stdin_bytes = {}) const {
    args.push_back("--addr");
    args.push_back(addr);
    CliOptions options;
    options.stdin_bytes = std::move(stdin_bytes);
    return RunCli(args, options);
  }
};

}  // namespace

TEST_CASE("CLI put and get round-trip binary values exactly via stdin, --file and argument") {
  KvServer server;
  HttpClient http(server.port());
  Cli cli{server.addr()};

  SUBCASE("stdin with '-' and with VALUE omitted") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"nul", S("a\0b\0\0", 5)},
        {"newlines", "\n\nline\r\n"},
        {"invalid-utf8", "\xff\xfe\x80"},
        {"empty", ""},
        {"one-mib", RandomBytes(kMiB, 11)},
    };
    for (const auto& [name, value] : cases) {
      CAPTURE(name);
      CliResult dash = cli({"put", "dash/" + name, "-"}, value);
      CheckOk(dash);
      CHECK(dash.out.empty());
      CliResult omitted = cli({"put", "omitted/" + name}, value);
      CheckOk(omitted);
      CHECK(omitted.out.empty());
      for (const std::string& key : {"dash/" + name, "omitted/" + name}) {
        CAPTURE(key);
        CHECK(http.Get(key).body == value);  // what the server holds
        CliResult get = cli({"get", key});
        CheckOk(get);
        CHECK(get.out.size() == value.size());
        CHECK_MESSAGE(get.out == value, "kvctl get printed different bytes");
      }
    }
  }
  SUBCASE("--file") {
    const std::string value = RandomBytes(kMiB, 12);  // every byte value, exactly at the limit
    const auto path = server.tmp() / "value.bin";
    WriteFile(path, value);
    CheckOk(cli({"put", "from-file", "--file", path.string()}));
    CHECK(http.Get("from-file").body == value);
    CHECK(cli({"get", "from-file"}).out == value);
  }
  SUBCASE("VALUE argument with tabs, newlines and invalid UTF-8; empty argument") {
    const std::string value = "tab\there\nnew line \xff\xfe end";
    CheckOk(cli({"put", "arg", value}));
    CHECK(http.Get("arg").body == value);
    CHECK(cli({"get", "arg"}).out == value);
    CheckOk(cli({"put", "arg-empty", ""}));
    HttpResponse empty = http.Get("arg-empty");
    CHECK(empty.status == 200);
    CHECK(empty.body.empty());
    CliResult get = cli({"get", "arg-empty"});
    CheckOk(get);
    CHECK(get.out.empty());
  }
  SUBCASE("a value written over HTTP is read back exactly by the CLI") {
    const std::string value = S("\0\xff\n\r\t\x01 no newline at end", 25);
    REQUIRE(http.Put("http-written", value).status == 201);
    CliResult get = cli({"get", "http-written"});
    CheckOk(get);
    CHECK(get.out == value);
  }
  SUBCASE("a value over 1 MiB is refused and nothing is stored") {
    CliResult big = cli({"put", "too-big", "-"}, std::string(kMiB + 1, 'z'));
    CHECK(big.exit_code != 0);
    CHECK(big.out.empty());
    CHECK(IsOneErrorLine(big.err));
    CHECK(http.Get("too-big").status == 404);
  }
}

TEST_CASE("CLI keys with slash, percent, space, unicode, ?, # and invalid UTF-8 round-trip") {
  KvServer server;
  HttpClient http(server.port());
  Cli cli{server.addr()};
  const std::vector<std::string> keys = {
      "app/db/url", "100%",  "a b",  "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87/\xc3\xbc",
      "what?x=1&y", "frag#ment", "a%2Fb", "\xff\xfe", "..", "+"};
  for (const auto& key : keys) {
    CAPTURE(PercentEncode(key));
    CheckOk(cli({"put", key, "v:" + key}));
    HttpResponse get = http.Get(key);  // stored under exactly these bytes
    CHECK(get.status == 200);
    CHECK(get.body == "v:" + key);
    CliResult out = cli({"get", key});
    CheckOk(out);
    CHECK(out.out == "v:" + key);
  }
  auto items = http.ListAll("");
  std::set<std::string> listed;
  for (const auto& item : items) listed.insert(ItemKey(item));
  CHECK(listed == std::set<std::string>(keys.begin(), keys.end()));
  for (const auto& key : keys) {
    CAPTURE(PercentEncode(key));
    CheckOk(cli({"del", key}));
    CHECK(http.Get(key).status == 404);
  }
}

TEST_CASE("kvctl get KEY > file writes exactly the value's bytes") {
  KvServer server;
  HttpClient http(server.port());
  const std::string value = RandomBytes(300000, 21) + std::string("\n\n\0", 3);
  REQUIRE(http.Put("blob", value).status == 201);
  const auto out_path = server.tmp() / "out.bin";
  CliOptions options;
  options.stdout_path = out_path.string();
  CliResult r = RunCli({"get", "blob", "--addr", server.addr()}, options);
  CheckOk(r);
  const std::string written = ReadFile(out_path);
  CHECK(written.size() == value.size());
  CHECK_MESSAGE(written == value, "the file differs from the stored value");
}

TEST_CASE("CLI -o json prints the put result and the value as base64") {
  KvServer server;
  Cli cli{server.addr()};
  CliResult put = cli({"put", "j", "first", "-o", "json"});
  CheckOk(put);
  nlohmann::json pj = nlohmann::json::parse(put.out, nullptr, false);
  REQUIRE_MESSAGE(!pj.is_discarded(), "put -o json printed: " << put.out);
  CHECK(pj["key"] == "j");
  CHECK(pj["created"] == true);
  REQUIRE(pj["revision"].is_number_unsigned());
  const uint64_t rev = pj["revision"].get<uint64_t>();

  CliResult update = cli({"put", "j", "-", "-o", "json"}, S("bin\0\xff", 5));
  CheckOk(update);
  nlohmann::json uj = nlohmann::json::parse(update.out, nullptr, false);
  REQUIRE(!uj.is_discarded());
  CHECK(uj["created"] == false);
  CHECK(uj["revision"].get<uint64_t>() == rev + 1);

  CliResult get = cli({"get", "j", "-o", "json"});
  CheckOk(get);
  nlohmann::json gj = nlohmann::json::parse(get.out, nullptr, false);
  REQUIRE_MESSAGE(!gj.is_discarded(), "get -o json printed: " << get.out);
  CHECK(gj["key"] == "j");
  CHECK(Base64Decode(gj["value"].get<std::string>()) == S("bin\0\xff", 5));
  CHECK(gj["revision"].get<uint64_t>() == rev + 1);
}

TEST_CASE("kvctl get --prefix lists key and value lines, keys only, and JSON across pages") {
  KvServer server;
  HttpClient http(server.port());
  Cli cli{server.addr()};
  std::vector<std::string> keys;
  for (int i = 0; i < 250; ++i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "list/%03d", (i * 131) % 250);
    keys.push_back(buf);
    REQUIRE(http.Put(buf, std::string("value-") + buf).status == 201);
  }
  for (const std::string k : {"lis", "lisu/x", "list", "listx"}) {
    REQUIRE(http.Put(k, "neighbour").status == 201);
  }
  std::sort(keys.begin(), keys.end());

  SUBCASE("text: key line then value line") {
    CliResult r = cli({"get", "--prefix", "list/"});
    CheckOk(r);
    std::string expected;
    for (const auto& k : keys) expected += k + "\nvalue-" + k + "\n";
    CHECK(r.out == expected);
  }
  SUBCASE("--keys-only: one key per line") {
    CliResult r = cli({"get", "--prefix", "list/", "--keys-only"});
    CheckOk(r);
    std::string expected;
    for (const auto& k : keys) expected += k + "\n";
    CHECK(r.out == expected);
  }
  SUBCASE("-o json: every matching key, though the server pages by 100") {
    CliResult r = cli({"get", "--prefix", "list/", "-o", "json"});
    CheckOk(r);
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    REQUIRE_MESSAGE(!j.is_discarded(), "not JSON: " << r.out.substr(0, 300));
    REQUIRE(j["items"].is_array());
    CHECK(j["items"].size() == keys.size());
    std::vector<std::string> got;
    for (const auto& item : j["items"]) {
      got.push_back(ItemKey(item));
      CHECK(Base64Decode(item["value"].get<std::string>()) == "value-" + ItemKey(item));
      CHECK(item["revision"].is_number_unsigned());
    }
    CHECK(got == keys);
  }
  SUBCASE("a prefix with no keys prints nothing and succeeds") {
    CliResult r = cli({"get", "--prefix", "nothing/"});
    CheckOk(r);
    CHECK(r.out.empty());
  }
}

TEST_CASE("CLI conditional writes exit 4 on conflict and change nothing") {
  KvServer server;
  HttpClient http(server.port());
  Cli cli{server.addr()};
  HttpResponse first = http.Put("c", "v1");
  REQUIRE(first.status == 201);
  const uint64_t r1 = *first.EtagRevision();
  const std::string wrong = std::to_string(r1 + 50);

  CheckFails(cli({"put", "c", "v2", "--if-match", wrong}), 4);
  CHECK(http.Get("c").body == "v1");
  CheckFails(cli({"put", "c", "v2", "--create-only"}), 4);
  CHECK(http.Get("c").body == "v1");
  CheckFails(cli({"del", "c", "--if-match", wrong}), 4);
  CHECK(http.Get("c").body == "v1");
  CHECK(http.Get("c").EtagRevision() == r1);

  CheckOk(cli({"put", "c", "v2", "--if-match", std::to_string(r1)}));
  HttpResponse now = http.Get("c");
  CHECK(now.body == "v2");
  const uint64_t r2 = *now.EtagRevision();
  CHECK(r2 == r1 + 1);
  CheckFails(cli({"put", "c", "v3", "--if-match", std::to_string(r1)}), 4);  // stale
  CHECK(http.Get("c").body == "v2");
  CheckOk(cli({"put", "new", "n", "--create-only"}));
  CHECK(http.Get("new").body == "n");
  CheckOk(cli({"del", "c", "--if-match", std::to_string(r2)}));
  CHECK(http.Get("c").status == 404);
}

TEST_CASE("kvctl del exits 0 whether or not the key existed") {
  KvServer server;
  HttpClient http(server.port());
  Cli cli{server.addr()};
  REQUIRE(http.Put("d", "v").status == 201);
  CliResult existing = cli({"del", "d"});
  CheckOk(existing);
  CHECK(existing.out.empty());
  CHECK(http.Get("d").status == 404);
  CliResult missing = cli({"del", "d"});
  CheckOk(missing);
  CHECK(missing.out.empty());
  CheckOk(cli({"del", "never-was"}));
}

TEST_CASE("kvctl get of a missing key exits 1 with empty stdout and one error line") {
  KvServer server;
  Cli cli{server.addr()};
  CliResult r = cli({"get", "missing/key"});
  CheckFails(r, 1);
  CHECK_MESSAGE(r.err.find("missing/key") != std::string::npos, "stderr: " << r.err);
  CheckFails(cli({"get", "missing/key", "-o", "json"}), 1);
}

TEST_CASE("client commands against an unreachable server exit 3") {
  const std::string addr = Addr(FreePort());  // nothing listens there
  CheckFails(RunCli({"get", "k", "--addr", addr}), 3);
  CheckFails(RunCli({"put", "k", "v", "--addr", addr}), 3);
  CheckFails(RunCli({"del", "k", "--addr", addr}), 3);
  CheckFails(RunCli({"get", "--prefix", "k", "--addr", addr}), 3);
}

TEST_CASE("bad flags, bad values and missing arguments exit 2") {
  KvServer server;
  HttpClient http(server.port());
  const std::string addr = server.addr();
  CheckFails(RunCli({"get", "k", "--no-such-flag", "--addr", addr}), 2);
  CheckFails(RunCli({"put", "--addr", addr}), 2);                       // no KEY
  CheckFails(RunCli({"put", "k", "v", "--if-match", "abc", "--addr", addr}), 2);
  CheckFails(RunCli({"get", "k", "-o", "yaml-please", "--addr", addr}), 2);
  CheckFails(RunCli({"no-such-command"}), 2);
  CheckFails(RunCli({"put", "k", "--file", "/nonexistent/value", "--addr", addr}), 2);
  CHECK(http.Get("k").status == 404);  // none of them wrote anything
}

TEST_CASE("client commands find the server through KVCTL_CLIENT_ADDR and http:// addresses") {
  KvServer server;
  HttpClient http(server.port());
  CliOptions env_options;
  env_options.env = {{"KVCTL_CLIENT_ADDR", server.addr()}};
  CheckOk(RunCli({"put", "via-env", "e"}, env_options));
  CHECK(http.Get("via-env").body == "e");
  CHECK(RunCli({"get", "via-env"}, env_options).out == "e");

  CheckOk(RunCli({"put", "via-url", "u", "--addr", "http://" + server.addr()}));
  CHECK(http.Get("via-url").body == "u");

  // The flag overrides the environment.
  CliOptions wrong_env;
  wrong_env.env = {{"KVCTL_CLIENT_ADDR", Addr(FreePort())}};
  CliResult flag_wins = RunCli({"get", "via-url", "--addr", server.addr()}, wrong_env);
  CheckOk(flag_wins);
  CHECK(flag_wins.out == "u");
}

TEST_CASE("kvctl put refuses a value over limits.max_value_bytes as soon as it shows, exit 2, storing nothing") {
  KvServer server;
  HttpClient http(server.port());
  const std::string kvctl = KvctlBinary();
  auto sh = [&](const std::string& script) {
    CliOptions o;
    o.env = {{"KVCTL", kvctl}, {"ADDR", server.addr()}};
    return RunProgram({"/bin/sh", "-c", script}, o);
  };
  auto says = [](const CliResult& r, const std::string& what) {
    CHECK_MESSAGE(r.err.find(what) != std::string::npos, "stderr lacks \"" << what << "\": " << r.err);
  };
  // Endless input: the read stops after limit + 1 bytes.
  CliResult endless = sh("exec \"$KVCTL\" put k --addr \"$ADDR\" < /dev/zero");
  CheckFails(endless, 2);
  says(endless, "more than 1048576 bytes");
  CliResult device = RunCli({"put", "k", "--file", "/dev/zero", "--addr", server.addr()});
  CheckFails(device, 2);
  says(device, "more than 1048576 bytes");
  // A regular file's size is known before it is read.
  const auto big = server.tmp() / "big.bin";
  WriteFile(big, std::string(kMiB + 1, 'b'));
  CliResult file = RunCli({"put", "k", "--file", big.string(), "--addr", server.addr()});
  CheckFails(file, 2);
  says(file, "is 1048577 bytes");
  says(file, "limits.max_value_bytes");
  says(file, "KVCTL_LIMITS_MAX_VALUE_BYTES");
  CliResult redirected = sh("exec \"$KVCTL\" put k --addr \"$ADDR\" < '" + big.string() + "'");
  CheckFails(redirected, 2);
  says(redirected, "is 1048577 bytes");
  CHECK(http.Get("k").status == 404);

  // Raised on both sides, the value goes through.
  KvServer roomy({"--limits-max-value-bytes", "2MiB"});
  CliOptions raised_limit;
  raised_limit.env = {{"KVCTL_LIMITS_MAX_VALUE_BYTES", "2MiB"}};
  CliResult raised = RunCli({"put", "k", "--file", big.string(), "--addr", roomy.addr()}, raised_limit);
  CheckOk(raised);
  CHECK(HttpClient(roomy.port()).Get("k").body.size() == kMiB + 1);
}

TEST_CASE("kvctl put: an unreadable --file or a closed stdin is a local input error, exit 2, naming it") {
  KvServer server;
  HttpClient http(server.port());
  const std::string dir = server.tmp().str();
  CliResult is_dir = RunCli({"put", "k", "--file", dir, "--addr", server.addr()});
  CheckFails(is_dir, 2);
  CHECK_MESSAGE(is_dir.err.find("--file " + dir + ": is a directory") != std::string::npos, is_dir.err);
  CliOptions o;
  o.env = {{"KVCTL", KvctlBinary()}, {"ADDR", server.addr()}};
  CliResult closed = RunProgram({"/bin/sh", "-c", "exec \"$KVCTL\" put k --addr \"$ADDR\" <&-"}, o);
  CheckFails(closed, 2);
  CHECK_MESSAGE(closed.err.find("standard input: it is closed") != std::string::npos, closed.err);
  CHECK(http.Get("k").status == 404);
}

TEST_CASE("kvctl auth hash-token: a closed stdin or endless input is a local input error, exit 2") {
  CliOptions o;
  o.env = {{"KVCTL", KvctlBinary()}};
  CliResult closed = RunProgram({"/bin/sh", "-c", "exec \"$KVCTL\" auth hash-token <&-"}, o);
  CheckFails(closed, 2);
  CHECK_MESSAGE(closed.err.find("standard input") != std::string::npos, closed.err);
  CliResult endless = RunProgram({"/bin/sh", "-c", "exec \"$KVCTL\" auth hash-token < /dev/zero"}, o);
  CheckFails(endless, 2);
  CHECK_MESSAGE(endless.err.find("over 4096 bytes") != std::string::npos, endless.err);
}

TEST_CASE("every error line of the client and operator commands is `kvctl: <what> (<hint>)`") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("f/k", "v").status == 201);
  const std::string addr = server.addr();
  const std::string dir = server.tmp().str();
  const std::string unreachable = Addr(FreePort());
  const std::string kvctl = KvctlBinary();
  auto sh = [&](const std::string& script) {
    CliOptions o;
    o.env = {{"KVCTL", kvctl}, {"ADDR", addr}};
    return RunProgram({"/bin/sh", "-c", script}, o);
  };
  auto with_env = [](std::vector<std::string> args, Env env) {
    CliOptions o;
    o.env = std::move(env);
    return RunCli(args, o);
  };
  const std::regex line("kvctl: .+ \\(.+\\)");
  const std::vector<std::pair<std::string, CliResult>> cases = {
      {"unknown subcommand", RunCli({"frobnicate"})},
      {"unknown flag", RunCli({"get", "k", "--no-such-flag", "--addr", addr})},
      {"missing KEY", RunCli({"put", "--addr", addr})},
      {"get without KEY", RunCli({"get", "--addr", addr})},
      {"--keys-only without --prefix", RunCli({"get", "k", "--keys-only", "--addr", addr})},
      {"bad config value", with_env({"get", "k", "--addr", addr}, {{"KVCTL_LOG_LEVEL", "loud"}})},
      {"key not found", RunCli({"get", "nope", "--addr", addr})},
      {"create-only conflict", RunCli({"put", "f/k", "w", "--create-only", "--addr", addr})},
      {"if-match conflict", RunCli({"put", "f/k", "w", "--if-match", "99", "--addr", addr})},
      {"del conflict", RunCli({"del", "f/k", "--if-match", "99", "--addr", addr})},
      {"unreachable server", RunCli({"get", "k", "--addr", unreachable})},
      {"https to a plain server", RunCli({"get", "k", "--addr", "https://" + addr, "--timeout", "1s"})},
      {"TLS files on a plain address", RunCli({"get", "k", "--addr", addr, "--cacert", dir})},
      {"certificate without key", RunCli({"get", "k", "--addr", "https://" + addr, "--cert", dir})},
      {"value and --file", RunCli({"put", "k", "v", "--file", dir, "--addr", addr})},
      {"--file missing", RunCli({"put", "k", "--file", dir + "/missing", "--addr", addr})},
      {"--file a directory", RunCli({"put", "k", "--file", dir, "--addr", addr})},
      {"value too large", RunCli({"put", "k", "--file", "/dev/zero", "--addr", addr})},
      {"stdin closed", sh("exec \"$KVCTL\" put k --addr \"$ADDR\" <&-")},
      {"compact, both ways", RunCli({"compact", "--addr", addr, "--data-dir", dir})},
      {"compact, no data dir", RunCli({"compact", "--data-dir", dir + "/missing"})},
      {"compact, a held data dir", RunCli({"compact", "--data-dir", server.data_dir().string()})},
      {"compact, unreachable", RunCli({"compact", "--addr", unreachable})},
      {"replay, --from past --to", RunCli({"replay", "--data-dir", dir, "--from", "5", "--to", "2"})},
      {"replay, --state with --from", RunCli({"replay", "--data-dir", dir, "--state", "--from", "2"})},
      {"replay, no data dir", RunCli({"replay", "--data-dir", dir + "/missing"})},
      {"bench, bad duration", RunCli({"bench", "--duration", "soon", "--addr", addr})},
      {"bench, unreachable", RunCli({"bench", "-n", "10", "--addr", unreachable})},
      {"migrate down, neither N nor --all", RunCli({"migrate", "down"})},
      {"migrate down, N and --all", RunCli({"migrate", "down", "1", "--all"})},
      {"auth hash-token, no token", RunCli({"auth", "hash-token"})},
  };
  for (const auto& [what, r] : cases) {
    CAPTURE(what);
    CHECK_MESSAGE(r.exit_code != 0, "stdout: " << r.out);
    const std::vector<std::string> lines = Lines(r.err);
    CHECK_MESSAGE(lines.size() == 1, "stderr: " << r.err);
    for (const std::string& l : lines) CHECK_MESSAGE(std::regex_match(l, line), "stderr line: " << l);
  }
  CHECK(http.Get("f/k").body == "v");  // none of them changed anything
  CHECK(http.Get("k").status == 404);
}

}  // namespace kvctl::e2e
