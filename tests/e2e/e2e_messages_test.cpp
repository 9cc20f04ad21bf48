// End-to-end tests of what the command line says when something is wrong
// (SPEC §3: one line, `kvctl: <what> (<hint>)`, exit 2 for usage): the word
// that was not understood and what was probably meant, keys quoted, input
// checked before anything is sent, the server's limits and protocol named.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A usage error: exit 2, nothing on stdout, one `kvctl: ... (...)` line
// that says `says` and not `not`.
void CheckUsage(const CliResult& r, const std::vector<std::string>& says,
                const std::vector<std::string>& not_says = {}) {
  CHECK_MESSAGE(r.exit_code == 2, "exit " << r.exit_code << "; stderr: " << r.err);
  CHECK(r.out.empty());
  CHECK_MESSAGE(IsOneErrorLine(r.err), "stderr: [" << r.err << "]");
  CHECK_MESSAGE(r.err.ends_with(")\n"), "no hint at the end: " << r.err);
  for (const std::string& s : says) CHECK_MESSAGE(Has(r.err, s), "stderr lacks [" << s << "]: " << r.err);
  for (const std::string& s : not_says) CHECK_MESSAGE(!Has(r.err, s), "stderr has [" << s << "]: " << r.err);
}

// A TCP server on 127.0.0.1 that reads what a client sends and closes the
// connection without a word, as a plain server does with bytes it does not
// take for a request. Serves one connection, for at most 10 s.
class ClosingServer {
 public:
  ClosingServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd_, 4) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 10000) != 1) return;
      const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) return;
      pollfd c{client, POLLIN, 0};
      char buf[4096];
      if (::poll(&c, 1, 5000) == 1) (void)::read(client, buf, sizeof buf);
      ::close(client);
    });
  }
  ~ClosingServer() {
    ::shutdown(fd_, SHUT_RDWR);  // ends a poll still waiting for a client
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace

TEST_CASE("a command line kvctl cannot parse gets the word it did not understand, and what was meant") {
  SUBCASE("-o names its two formats, not the parser's internals") {
    CheckUsage(RunCli({"get", "k", "-o", "yaml"}), {"-o takes json or text, not \"yaml\"", "kvctl get --help"},
               {"Check", "FAILED", "->"});
  }
  SUBCASE("an unknown flag is named, in place of the words around it, with the flag it resembles") {
    CheckUsage(RunCli({"serve", "--data_dir", "x"}),
               {"unknown flag --data_dir for kvctl serve", "did you mean --data-dir?", "kvctl serve --help"},
               {"not expected", "x --data_dir"});
    CheckUsage(RunCli({"serve", "--port", "17105"}),
               {"unknown flag --port for kvctl serve", "did you mean --listen HOST:PORT?"}, {"17105"});
    CheckUsage(RunCli({"get", "k", "--adr", "127.0.0.1:1"}), {"unknown flag --adr for kvctl get", "--addr?"});
    CheckUsage(RunCli({"-v"}), {"unknown flag -v for kvctl", "did you mean --version?"}, {"A subcommand"});
  }
  SUBCASE("an unknown command is named, with the command it resembles") {
    CheckUsage(RunCli({"config", "shwo"}),
               {"unknown command \"shwo\" for kvctl config", "did you mean show?", "kvctl config --help"},
               {"A subcommand"});
    CheckUsage(RunCli({"help"}), {"unknown command \"help\"", "kvctl --help lists the commands"}, {"A subcommand"});
    CheckUsage(RunCli({"gte", "k"}), {"unknown command \"gte\"", "did you mean get?"});
    CheckUsage(RunCli({"config"}), {"kvctl config needs a command: show"}, {"A subcommand"});
  }
  SUBCASE("a bad value is named with what the flag takes") {
    CheckUsage(RunCli({"put", "k", "v", "--if-match", "abc"}), {"--if-match takes a whole number", "not \"abc\""},
               {"Could not convert"});
    CheckUsage(RunCli({"migrate", "up", "-1"}), {"N must be a number of migrations, 1 or more, not -1"},
               {"179769313486231570"});
  }
}

TEST_CASE("keys in messages are quoted with C escapes, so a message stays one readable line") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("x y", "v").status == 201);
  CliResult spaced = RunCli({"get", "no such thing", "--addr", server.addr()});
  CHECK(spaced.exit_code == 1);
  CHECK_MESSAGE(Has(spaced.err, "key \"no such thing\" not found"), spaced.err);
  CliResult newline = RunCli({"get", "a\nb\x1b", "--addr", server.addr()});
  CHECK(newline.exit_code == 1);
  CHECK_MESSAGE(IsOneErrorLine(newline.err), newline.err);
  CHECK_MESSAGE(Has(newline.err, "key \"a\\nb\\x1b\" not found"), newline.err);
  CliResult conflict = RunCli({"put", "x y", "w", "--create-only", "--addr", server.addr()});
  CHECK(conflict.exit_code == 4);
  CHECK_MESSAGE(Has(conflict.err, "put \"x y\" refused"), conflict.err);
  CliResult del = RunCli({"del", "x y", "--if-match", "99", "--addr", server.addr()});
  CHECK(del.exit_code == 4);
  CHECK_MESSAGE(Has(del.err, "del \"x y\" refused"), del.err);
}

TEST_CASE("an empty key is refused before anything is sent") {
  // Nothing listens there: a request sent would be exit 3, "cannot reach".
  const std::string nowhere = Addr(FreePort());
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"put", "", "x"}, {"get", ""}, {"del", ""}}) {
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--addr", nowhere});
    CAPTURE(args[0]);
    CheckUsage(RunCli(full), {"the key is empty"}, {"/v1/kv/", "reach"});
  }
}

TEST_CASE("a value the server refuses as too large is named with its size, and the limit as the server's") {
  KvServer server;  // limits.max_value_bytes: 1 MiB
  HttpClient http(server.port());
  const auto value = server.tmp() / "value.bin";
  WriteFile(value, std::string(1536 * 1024, 'v'));
  CliOptions roomy;
  roomy.env = {{"KVCTL_LIMITS_MAX_VALUE_BYTES", "2MiB"}};
  CheckUsage(RunCli({"put", "k", "--file", value.string(), "--addr", server.addr()}, roomy),
             {"1572864 bytes", "the server's limits.max_value_bytes", "this client's, 2 MiB",
              "raise limits.max_value_bytes in the server's config"});
  CHECK(http.Get("k").status == 404);
}

TEST_CASE("https:// to a server that does not answer TLS says so, and blames no certificate") {
  SUBCASE("a plain kvctl server") {
    KvServer server;
    CliResult r = RunCli({"get", "k", "--addr", "https://" + server.addr()});
    CHECK(r.exit_code == 3);
    CHECK_MESSAGE(IsOneErrorLine(r.err), r.err);
    CHECK_MESSAGE(Has(r.err, "did not answer TLS: it answered in another protocol"), r.err);
    CHECK_MESSAGE(Has(r.err, "give an http:// address"), r.err);
    CHECK_MESSAGE(!Has(r.err, "certificate"), r.err);
    CHECK_MESSAGE(!Has(r.err, "client.cert"), r.err);
  }
  SUBCASE("a server that closes the connection") {
    ClosingServer closing;
    CliResult r = RunCli({"get", "k", "--addr", "https://" + Addr(closing.port()), "--timeout", "5s"});
    CHECK(r.exit_code == 3);
    CHECK_MESSAGE(IsOneErrorLine(r.err), r.err);
    CHECK_MESSAGE(Has(r.err, "did not answer TLS: it closed the connection"), r.err);
    CHECK_MESSAGE(!Has(r.err, "certificate"), r.err);
    CHECK_MESSAGE(!Has(r.err, "client.cert"), r.err);
  }
}

TEST_CASE("small messages: counts, durations, --limit, replay's revisions past the end, compaction JSON, log paths") {
  SUBCASE("a count of one is singular: 1 file removed") {
    KvServer server;
    HttpClient http(server.port());
    REQUIRE(http.Put("k", "1").status == 201);
    REQUIRE(http.Put("k", "2").status == 200);
    http.Close();
    REQUIRE(server.Stop() == 0);
    CliResult r = RunCli({"compact", "--data-dir", server.data_dir().string()},
                         {.env = {{"KVCTL_STORAGE_HISTORY_RETENTION", "0"}}});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    CHECK_MESSAGE(Has(r.out, "2 records read, 1 kept, 1 dropped; 1 file removed;"), r.out);
    CHECK(!Has(r.out, "1 files"));
  }
  SUBCASE("a duration without a unit: did you mean 3s?") {
    CheckUsage(RunCli({"bench", "--duration", "3", "--addr", Addr(FreePort())}),
               {"--duration 3 has no unit", "did you mean 3s?"}, {"3:"});
  }
  SUBCASE("get --limit -1 is refused, not taken as all") {
    CheckUsage(RunCli({"get", "--prefix", "", "--limit", "-1", "--addr", Addr(FreePort())}),
               {"--limit -1 is negative"});
  }
  SUBCASE("replay: a revision past the end of the log stands for its end, for every flag") {
    KvServer server;
    HttpClient http(server.port());
    REQUIRE(http.Put("a", "1").status == 201);
    REQUIRE(http.Put("b", "2").status == 201);
    const std::string dir = server.data_dir().string();
    CliResult from = RunCli({"replay", "--data-dir", dir, "--from", "100"});
    CHECK_MESSAGE(from.exit_code == 0, from.err);
    CHECK(from.out.empty());
    CliResult to = RunCli({"replay", "--data-dir", dir, "--to", "100"});
    CHECK_MESSAGE(to.exit_code == 0, to.err);
    CHECK(Lines(to.out).size() == 2);
    CliResult state = RunCli({"replay", "--data-dir", dir, "--state", "--to", "100"});
    CHECK_MESSAGE(state.exit_code == 0, state.err);
    CHECK(state.out == RunCli({"replay", "--data-dir", dir, "--state"}).out);
    CHECK(state.out ==
          "1 \"a\" \"1\" create_revision=1 version=1 lease=0\n2 \"b\" \"2\" create_revision=2 version=1 lease=0\n");
  }
  SUBCASE("compact -o json with nothing to compact covers no revision: null, not 0") {
    KvServer server;
    CliResult r = RunCli({"compact", "--addr", server.addr(), "-o", "json"});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    REQUIRE_MESSAGE(j.is_object(), r.out);
    CHECK(j["compacted"] == false);
    CHECK(j["covered_revision"].is_null());
  }
  SUBCASE("serve's log lines name the data dir from the root, however it was given") {
    TempDir tmp;
    ServerProcess server(tmp.path(), ServerOptions{"./data", FreePort()});
    server.WaitReady();
    CHECK(server.Terminate() == 0);
    const std::string absolute = (tmp.path() / "data").string();
    CHECK_MESSAGE(Has(server.Stderr(), "data_dir=" + absolute + " "), server.Stderr());
    CHECK(!Has(server.Stderr(), "data_dir=./"));
  }
}

TEST_CASE("kvctl completion --help says how to install the completion") {
  CliResult r = RunCli({"completion", "--help"});
  CHECK(r.exit_code == 0);
  CHECK(Has(r.out, "source <(kvctl completion bash)"));
  CHECK(Has(r.out, "~/.bashrc"));
  CHECK(Has(r.out, "kvctl completion zsh >"));
  CHECK(Has(r.out, "kvctl completion fish >"));
}

}  // namespace kvctl::e2e
