// End-to-end tests of what the client commands believe (SPEC §8): only a
// kvctl server, only as much as an answer may hold, only until the request's
// deadline. The other side is a scripted HTTP server in this process (a
// socket on 127.0.0.1 and a thread), which answers as another program would:
// a static file server on the wrong port, a server streaming without end,
// one sending a byte at a time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <regex>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

using std::chrono::milliseconds;
constexpr size_t kMiB = 1024 * 1024;

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

CliOptions WithEnv(Env env) {
  CliOptions options;
  options.env = std::move(env);
  return options;
}

// Checks a failed command: the exit code, empty stdout, and one error line
// `kvctl: <what> (<hint>)` that contains `needle`.
void CheckFails(const CliResult& r, int code, const std::string& needle) {
  CHECK_MESSAGE(r.exit_code == code, "expected exit " << code << ", got " << r.exit_code << "; stderr: " << r.err);
  CHECK_MESSAGE(r.out.size() < 200, "stdout on error: " << r.out.size() << " bytes: " << r.out.substr(0, 200));
  CHECK_MESSAGE(std::regex_match(r.err, std::regex("kvctl: .+ \\(.+\\)\n")), "stderr: [" << r.err << "]");
  CHECK_MESSAGE(Contains(r.err, needle), "stderr lacks \"" << needle << "\": " << r.err);
}

// One connection to the scripted server, as its script sees it.
class Peer {
 public:
  Peer(int fd, const std::atomic<bool>& stopping) : fd_(fd), stopping_(stopping) {}
  // Sends all of `bytes`; false once the client has gone (or the test ends).
  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      if (stopping_) return false;
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent_ += static_cast<size_t>(n);
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  // Waits `d`, or less when the client goes away or the test ends; false
  // then.
  bool Pause(milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      if (stopping_) return false;
      pollfd p{fd_, POLLIN, 0};
      char byte;
      if (::poll(&p, 1, 10) == 1 && ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0) return false;
    }
    return !stopping_;
  }
  size_t sent() const { return sent_; }

 private:
  int fd_;
  const std::atomic<bool>& stopping_;
  size_t sent_ = 0;
};

// The request line ("GET /v1/kv/k HTTP/1.1") and the connection to answer on.
using Script = std::function<void(Peer& peer, const std::string& request_line)>;

// An HTTP server on a free 127.0.0.1 port that answers every request with
// `script`, one connection at a time, in a thread of its own; stopped and
// joined on scope exit. It reads each request whole (head and body) first.
class ScriptedServer {
 public:
  explicit ScriptedServer(Script script) : script_(std::move(script)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(listener_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(listener_, 16) == 0);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    thread_.join();
    ::close(listener_);
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  std::string addr() const { return Addr(port_); }
  // Every request line received so far.
  std::vector<std::string> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  // Bytes the script sent on its last connection.
  size_t last_sent() const { return last_sent_; }

 private:
  void Serve() {
    while (!stopping_) {
      const int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;  // shut down: stopping_ ends the loop
      timeval tv{5, 0};      // a request that never comes whole does not hold the test
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      // Nor a client that stopped reading: one that shut its socket down
      // and closed it with our bytes unread leaves a zero window, and a send
      // would block until the kernel gives the connection up (about 100 s).
      timeval send_tv{3, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &send_tv, sizeof send_tv);
      for (;;) {
        std::string line;
        if (!ReadRequest(fd, &line)) break;
        {
          std::lock_guard lock(mu_);
          requests_.push_back(line);
        }
        Peer peer(fd, stopping_);
        script_(peer, line);
        last_sent_ = peer.sent();
        if (stopping_) break;
      }
      ::close(fd);
    }
  }

  // Reads one request (head, then a Content-Length body); false when the
  // client closed or sent something else.
  static bool ReadRequest(int fd, std::string* request_line) {
    std::string in;
    size_t head_end = std::string::npos;
    char buf[65536];
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0 || in.size() > kMiB) return false;
      in.append(buf, static_cast<size_t>(n));
    }
    *request_line = in.substr(0, in.find("\r\n"));
    size_t body = 0;
    std::smatch m;
    const std::string head = in.substr(0, head_end);
    if (std::regex_search(head, m, std::regex("\r\nContent-Length: *([0-9]+)", std::regex::icase))) {
      body = std::stoul(m[1]);
    }
    size_t have = in.size() - head_end - 4;
    while (have < body) {
      const ssize_t n = ::recv(fd, buf, std::min(sizeof buf, body - have), 0);
      if (n <= 0) return false;
      have += static_cast<size_t>(n);
    }
    return true;
  }

  Script script_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> last_sent_{0};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

std::string Response(int status, const std::string& reason, const std::string& headers, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n" + headers +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// What kvctl's own answers carry; the scripts below that pose as kvctl send it.
const std::string kKvctlHeaders = "X-Kvctl-Revision: 7\r\nContent-Type: application/json\r\n";

// Answers as `python3 -m http.server` does from a directory holding the
// file v1/kv/foo: GET of it is 200 with its bytes, any other GET 404 with an
// HTML page, other methods 501.
void StaticFileServer(Peer& peer, const std::string& line) {
  if (line.starts_with("GET /v1/kv/foo ")) {
    peer.Send(Response(200, "OK", "Server: SimpleHTTP/0.6 Python/3.11.2\r\nContent-type: application/octet-stream\r\n",
                       "hello from a file\n"));
  } else if (line.starts_with("GET ")) {
    peer.Send(Response(404, "File not found", "Server: SimpleHTTP/0.6 Python/3.11.2\r\nContent-Type: text/html\r\n",
                       "<html><body><h1>Error response</h1><p>Error code: 404</p></body></html>\n"));
  } else {
    peer.Send(Response(501, "Unsupported method", "Content-Type: text/html\r\n", "<p>Error code: 501</p>\n"));
  }
}

}  // namespace

TEST_CASE("client commands pointed at another HTTP server say it is not kvctl, exit 3, and print nothing") {
  ScriptedServer other(StaticFileServer);
  const std::string addr = other.addr();
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"get", "foo"},            // the foreign 200: its body is no value
           {"get", "bar"},            // the foreign 404: no "key not found"
           {"get", "foo", "-o", "json"},
           {"get", "--prefix", ""},
           {"put", "bar", "x"},
           {"del", "bar"},
           {"compact"}}) {
    std::vector<std::string> argv = args;
    argv.insert(argv.end(), {"--addr", addr});
    CAPTURE(args.front() + " " + args.at(1 % args.size()));
    CliResult r = RunCli(argv);
    CheckFails(r, 3, "not a kvctl server at http://" + addr);
    CHECK(Contains(r.err, "--addr"));
    CHECK_FALSE(Contains(r.out, "hello"));
  }
}

TEST_CASE("a 404 is 'key not found' only with the kvctl header and kvctl's no_such_key code") {
  SUBCASE("kvctl's JSON without the header is still not kvctl") {
    ScriptedServer other([](Peer& peer, const std::string&) {
      peer.Send(Response(404, "Not Found", "Content-Type: application/json\r\n",
                         R"({"error":"no such key","code":"no_such_key"})"));
    });
    CheckFails(RunCli({"get", "k", "--addr", other.addr()}), 3, "not a kvctl server");
  }
  SUBCASE("another 404 from a kvctl server is not a missing key") {
    ScriptedServer kvctl_like([](Peer& peer, const std::string&) {
      peer.Send(Response(404, "Not Found", kKvctlHeaders, R"({"error":"no such route","code":"not_found"})"));
    });
    CheckFails(RunCli({"get", "k", "--addr", kvctl_like.addr()}), 3, "no such route");
  }
  SUBCASE("no_such_key with the header is a missing key") {
    ScriptedServer kvctl_like([](Peer& peer, const std::string&) {
      peer.Send(Response(404, "Not Found", kKvctlHeaders, R"({"error":"no such key","code":"no_such_key"})"));
    });
    CheckFails(RunCli({"get", "k", "--addr", kvctl_like.addr()}), 1, R"(key "k" not found)");
  }
}

TEST_CASE("an answer larger than it may be is refused, before its body is read when it says so") {
  SUBCASE("a value streamed without end stops at limits.max_value_bytes") {
    ScriptedServer endless([](Peer& peer, const std::string&) {
      if (!peer.Send("HTTP/1.1 200 OK\r\nX-Kvctl-Revision: 7\r\nConnection: close\r\n\r\n")) return;
      const std::string chunk(64 * 1024, 'z');
      for (int i = 0; i < 64 * 16 && peer.Send(chunk); ++i) {  // 64 MiB at most, then the end
      }
    });
    CheckFails(RunCli({"get", "k", "--addr", endless.addr()}), 3, "answer too large from http://" + endless.addr());
  }
  SUBCASE("a Content-Length of 100 GB is refused before the body") {
    ScriptedServer huge([](Peer& peer, const std::string&) {
      if (peer.Send("HTTP/1.1 200 OK\r\nX-Kvctl-Revision: 7\r\nContent-Length: 100000000000\r\n\r\nabc")) {
        peer.Pause(milliseconds(20000));  // the client must not wait for the rest
      }
    });
    CliResult r = RunCli({"get", "k", "--addr", huge.addr(), "--timeout", "15s"});
    CheckFails(r, 3, "answer too large");
    CHECK(Contains(r.err, "100000000000 bytes announced"));
    CHECK(Contains(r.err, "limits.max_value_bytes"));
  }
  SUBCASE("a value over limits.max_value_bytes is read when the client's limit is raised") {
    const std::string value(2 * kMiB, 'v');
    ScriptedServer big([&value](Peer& peer, const std::string&) {
      peer.Send(Response(200, "OK", "X-Kvctl-Revision: 7\r\nETag: \"3\"\r\n", value));
    });
    CheckFails(RunCli({"get", "k", "--addr", big.addr()}), 3, "2097152 bytes announced for a value, more than its 1 MiB");
    CliResult raised = RunCli({"get", "k", "--addr", big.addr()}, WithEnv({{"KVCTL_LIMITS_MAX_VALUE_BYTES", "2MiB"}}));
    CHECK_MESSAGE(raised.exit_code == 0, raised.err);
    CHECK(raised.out == value);
  }
  SUBCASE("a PUT's answer streamed without end") {
    ScriptedServer endless([](Peer& peer, const std::string&) {
      if (!peer.Send("HTTP/1.1 200 OK\r\nX-Kvctl-Revision: 7\r\nConnection: close\r\n\r\n")) return;
      const std::string chunk(64 * 1024, '{');
      for (int i = 0; i < 64 * 16 && peer.Send(chunk); ++i) {
      }
    });
    CheckFails(RunCli({"put", "k", "v", "--addr", endless.addr()}), 3, "answer too large");
  }
  SUBCASE("a response head without end") {
    ScriptedServer endless([](Peer& peer, const std::string&) {
      if (!peer.Send("HTTP/1.1 200 OK\r\nX-Kvctl-Revision: 7\r\nX-Padding: ")) return;
      const std::string chunk(64 * 1024, 'p');
      for (int i = 0; i < 64 * 16 && peer.Send(chunk); ++i) {
      }
    });
    CheckFails(RunCli({"get", "k", "--addr", endless.addr()}), 3, "answer too large");
  }
}

TEST_CASE("a listing page too large to take is asked for again with fewer keys, one item too large fails") {
  // The first page asked for (1000 keys) announces 200 MiB; the next, for
  // fewer, gets a real page.
  ScriptedServer server([](Peer& peer, const std::string& line) {
    if (Contains(line, "limit=1000")) {
      peer.Send("HTTP/1.1 200 OK\r\nX-Kvctl-Revision: 7\r\nContent-Length: 209715200\r\n\r\n");
      peer.Pause(milliseconds(20000));
      return;
    }
    peer.Send(Response(200, "OK", kKvctlHeaders,
                       R"({"items":[{"key":"a","value":"MQ==","revision":1},{"key":"b","value":"Mg==","revision":2}],)"
                       R"("next":null})"));
  });
  CliResult r = RunCli({"get", "--prefix", "", "--addr", server.addr(), "--timeout", "15s"});
  CHECK_MESSAGE(r.exit_code == 0, r.err);
  CHECK(r.out == "a\n1\nb\n2\n");
  const std::vector<std::string> asked = server.requests();
  REQUIRE(asked.size() == 2);
  CHECK(Contains(asked[0], "limit=1000"));
  std::smatch m;
  REQUIRE(std::regex_search(asked[1], m, std::regex("limit=([0-9]+)")));
  CHECK(std::stoul(m[1]) < 1000);
  CHECK(std::stoul(m[1]) >= 1);

  ScriptedServer always_huge([](Peer& peer, const std::string&) {
    peer.Send("HTTP/1.1 200 OK\r\nX-Kvctl-Revision: 7\r\nContent-Length: 209715200\r\n\r\n");
  });
  CheckFails(RunCli({"get", "--prefix", "", "--addr", always_huge.addr()}), 3, "answer too large");
  CHECK(std::regex_search(always_huge.requests().back(), std::regex("limit=1[^0-9]")));
}

TEST_CASE("a listing whose next key does not move on is refused, not followed for ever") {
  ScriptedServer loop([](Peer& peer, const std::string&) {
    peer.Send(Response(200, "OK", kKvctlHeaders, R"({"items":[{"key":"a","value":"MQ==","revision":1}],"next":"a"})"));
  });
  CheckFails(RunCli({"get", "--prefix", "", "--addr", loop.addr()}), 3, "does not move on");
}

TEST_CASE("--timeout is the deadline of the whole request, even when the server trickles") {
  SUBCASE("the body a byte at a time") {
    ScriptedServer trickle([](Peer& peer, const std::string&) {
      if (!peer.Send("HTTP/1.1 200 OK\r\nX-Kvctl-Revision: 7\r\nContent-Length: 1000\r\n\r\n")) return;
      for (int i = 0; i < 1000 && peer.Send("x") && peer.Pause(milliseconds(200)); ++i) {
      }
    });
    // Each byte comes well within --timeout, so only a deadline on the
    // whole request ends this before the 30 s RunCli allows.
    CheckFails(RunCli({"get", "k", "--addr", trickle.addr(), "--timeout", "1s"}), 3,
               "no whole answer from http://" + trickle.addr() + " within 1s");
  }
  SUBCASE("the head a byte at a time") {
    ScriptedServer trickle([](Peer& peer, const std::string&) {
      const std::string head = "HTTP/1.1 200 OK\r\nX-Kvctl-Revision: 7\r\nX-Padding: " + std::string(500, 'p');
      for (char c : head) {
        if (!peer.Send(std::string(1, c)) || !peer.Pause(milliseconds(200))) return;
      }
    });
    CheckFails(RunCli({"put", "k", "v", "--addr", trickle.addr(), "--timeout", "1s"}), 3, "within 1s");
  }
  SUBCASE("compact has a deadline of its own, longer than --timeout") {
    ScriptedServer slow([](Peer& peer, const std::string&) {
      if (!peer.Pause(milliseconds(2500))) return;
      peer.Send(Response(200, "OK", kKvctlHeaders,
                         R"({"compacted":true,"covered_revision":7,"bytes_before":2000,"bytes_after":1000,)"
                         R"("records_read":7,"records_kept":3,"records_dropped":4,"files_removed":1,"seconds":2.5})"));
    });
    CliResult r = RunCli({"compact", "--addr", slow.addr(), "--timeout", "500ms"});
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    CHECK(Contains(r.out, "compacted http://" + slow.addr() + " up to revision 7"));
    CliResult help = RunCli({"compact", "--help"});
    CHECK(Contains(help.out, "deadline of its own"));
  }
}

}  // namespace kvctl::e2e
