// End-to-end tests of `kvctl get` writing to a terminal: stdout is the slave
// end of a real pseudo-terminal (openpty), read from the master end as a
// terminal emulator reads it. Only printable text reaches it, ended with a
// newline; files and pipes keep getting the exact bytes.
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

using std::chrono::milliseconds;

bool Has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A pseudo-terminal in raw mode (the bytes as written, no \n -> \r\n),
// read from the start in a thread of its own, so a writer never blocks.
class Terminal {
 public:
  Terminal() {
    REQUIRE(::openpty(&master_, &slave_, nullptr, nullptr, nullptr) == 0);
    termios mode{};
    REQUIRE(::tcgetattr(slave_, &mode) == 0);
    ::cfmakeraw(&mode);
    REQUIRE(::tcsetattr(slave_, TCSANOW, &mode) == 0);
    const char* name = ::ttyname(slave_);
    REQUIRE(name != nullptr);
    path_ = name;
    reader_ = std::thread([this] {
      // The kernel hands what the slave wrote to the master a moment later:
      // once asked to stop, read on until it has been quiet for 300 ms.
      auto quiet_since = std::chrono::steady_clock::now();
      for (;;) {
        pollfd p{master_, POLLIN, 0};
        if (::poll(&p, 1, 50) == 1) {
          char buf[65536];
          const ssize_t n = ::read(master_, buf, sizeof buf);
          if (n <= 0) break;
          received_.append(buf, static_cast<size_t>(n));
          quiet_since = std::chrono::steady_clock::now();
        } else if (stop_ && std::chrono::steady_clock::now() - quiet_since > milliseconds(300)) {
          break;
        }
      }
    });
  }
  ~Terminal() {
    Screen();
    ::close(slave_);
    ::close(master_);
  }

  // Runs `kvctl args...` with this terminal as its stdout (stderr stays a pipe).
  CliResult Run(const std::vector<std::string>& args) {
    CliOptions options;
    options.stdout_path = path_;
    return RunCli(args, options);
  }
  // What the terminal received, once the commands run are done.
  const std::string& Screen() {
    if (reader_.joinable()) {
      stop_ = true;
      reader_.join();
    }
    return received_;
  }

 private:
  int master_ = -1;
  int slave_ = -1;
  std::string path_;
  std::atomic<bool> stop_{false};
  std::string received_;
  std::thread reader_;
};

}  // namespace

TEST_CASE("kvctl get on a terminal refuses a value that is not printable text, exit 2, writing nothing to it") {
  KvServer server;
  HttpClient http(server.port());
  const std::string title = "\x1b]0;pwned\a";  // would retitle the window
  const std::string binary = RandomBytes(1 << 20, 7);
  REQUIRE(http.Put("title", title).status == 201);
  REQUIRE(http.Put("blob", binary).status == 201);
  REQUIRE(http.Put("c1", "a\xc2\x9b" "2J").status == 201);  // U+009B, CSI to some terminals
  REQUIRE(http.Put("lone-cr", "safe\rEVIL").status == 201);

  for (const std::string key : {"title", "blob", "c1", "lone-cr"}) {
    CAPTURE(key);
    Terminal terminal;
    CliResult r = terminal.Run({"get", key, "--addr", server.addr()});
    CHECK_MESSAGE(r.exit_code == 2, "exit " << r.exit_code << "; stderr: " << r.err);
    CHECK_MESSAGE(IsOneErrorLine(r.err), r.err);
    CHECK_MESSAGE(Has(r.err, "the value of \"" + key + "\" is not printable text"), r.err);
    CHECK_MESSAGE(Has(r.err, "kvctl get KEY > FILE"), r.err);
    CHECK_MESSAGE(Has(r.err, "-o json"), r.err);
    CHECK_MESSAGE(terminal.Screen().empty(), "the terminal got " << terminal.Screen().size() << " bytes");
  }
  Terminal terminal;
  CliResult named = terminal.Run({"get", "title", "--addr", server.addr()});
  CHECK_MESSAGE(Has(named.err, "byte 0 of 10 is \\x1b"), named.err);

  // A pipe and a file still get the exact bytes.
  CHECK(RunCli({"get", "title", "--addr", server.addr()}).out == title);
  CHECK(RunCli({"get", "blob", "--addr", server.addr()}).out == binary);
  CliOptions to_file;
  to_file.stdout_path = (server.tmp() / "blob.out").string();
  CHECK(RunCli({"get", "blob", "--addr", server.addr()}, to_file).exit_code == 0);
  CHECK(ReadFile(server.tmp() / "blob.out") == binary);
  // -o json shows any value, in base64.
  Terminal json_terminal;
  CliResult json = json_terminal.Run({"get", "blob", "--addr", server.addr(), "-o", "json"});
  CHECK(json.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(json_terminal.Screen(), nullptr, false);
  REQUIRE(j.is_object());
  CHECK(Base64Decode(j["value"].get<std::string>()) == binary);
}

TEST_CASE("kvctl get ends a printable value with a newline on a terminal only") {
  KvServer server;
  HttpClient http(server.port());
  const std::vector<std::pair<std::string, std::string>> values = {
      {"plain", "hello"},
      {"ends-in-newline", "line one\nline two\n"},
      {"utf8-crlf-tab", "gr\xc3\xbc\xc3\x9f" "e\tok\r\n"},
      {"empty", ""},
  };
  for (const auto& [key, value] : values) REQUIRE(http.Put(key, value).status == 201);
  for (const auto& [key, value] : values) {
    CAPTURE(key);
    Terminal terminal;
    CliResult r = terminal.Run({"get", key, "--addr", server.addr()});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    const std::string expected = value.empty() || value.back() == '\n' ? value : value + "\n";
    CHECK(terminal.Screen() == expected);
    CHECK(RunCli({"get", key, "--addr", server.addr()}).out == value);  // a pipe: nothing added
  }
}

TEST_CASE("kvctl get --prefix on a terminal stops at a key or value that is not printable text") {
  KvServer server;
  HttpClient http(server.port());
  REQUIRE(http.Put("list/a", "ok").status == 201);
  REQUIRE(http.Put("list/b", "\x1b[2J").status == 201);  // would clear the screen
  REQUIRE(http.Put("list/c", "fine").status == 201);

  Terminal terminal;
  CliResult r = terminal.Run({"get", "--prefix", "list/", "--addr", server.addr()});
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(IsOneErrorLine(r.err), r.err);
  CHECK_MESSAGE(Has(r.err, "the value of \"list/b\" is not printable text"), r.err);
  CHECK_MESSAGE(Has(r.err, "--keys-only"), r.err);
  CHECK(terminal.Screen() == "list/a\nok\n");  // what came before it

  Terminal keys;
  CliResult keys_only = keys.Run({"get", "--prefix", "list/", "--keys-only", "--addr", server.addr()});
  CHECK_MESSAGE(keys_only.exit_code == 0, keys_only.err);
  CHECK(keys.Screen() == "list/a\nlist/b\nlist/c\n");

  REQUIRE(http.Put("list/\x1b[2J", "v").status == 201);
  Terminal bad_key;
  CliResult key_refused = bad_key.Run({"get", "--prefix", "list/", "--keys-only", "--addr", server.addr()});
  CHECK(key_refused.exit_code == 2);
  CHECK_MESSAGE(Has(key_refused.err, "the key \"list/\\x1b[2J\" is not printable text"), key_refused.err);

  // A pipe gets every key and value as they are.
  CliResult piped = RunCli({"get", "--prefix", "list/", "--addr", server.addr()});
  CHECK(piped.exit_code == 0);
  CHECK(Has(piped.out, "list/b\n\x1b[2J\n"));
}

}  // namespace kvctl::e2e
