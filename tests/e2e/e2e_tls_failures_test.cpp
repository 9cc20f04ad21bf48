// A TLS handshake that fails leaves a trace: a log line (warn, with the
// client's address and OpenSSL's reason; a flood is cut down to a few lines
// a second, each saying how many were left out) and a count in /metrics by
// reason. Certificates are made with the openssl command line.
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

int Sh(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

// A CA with a server certificate for 127.0.0.1 and a client certificate,
// and another CA with a client certificate of its own.
struct Pki {
  Pki() {
    const std::string quiet = " >/dev/null 2>&1";
    auto ca = [&](const std::string& name) {
      REQUIRE_MESSAGE(Sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout '" +
                         (*this)(name + ".key") + "' -out '" + (*this)(name + ".pem") + "' -subj '/CN=" + name +
                         "'" + quiet) == 0,
                      "openssl is needed to make the test certificates");
    };
    auto issue = [&](const std::string& name, const std::string& by, const std::string& ext) {
      REQUIRE(Sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout '" + (*this)(name + ".key") +
                 "' -out '" + (*this)(name + ".csr") + "' -subj '/CN=" + name + "'" + quiet) == 0);
      WriteFile(dir / (name + ".ext"), ext + "\n");
      REQUIRE(Sh("openssl x509 -req -days 2 -in '" + (*this)(name + ".csr") + "' -CA '" + (*this)(by + ".pem") +
                 "' -CAkey '" + (*this)(by + ".key") + "' -CAcreateserial -out '" + (*this)(name + ".pem") +
                 "' -extfile '" + (*this)(name + ".ext") + "'" + quiet) == 0);
    };
    ca("ca");
    ca("rogue-ca");
    issue("server", "ca", "subjectAltName=IP:127.0.0.1");
    issue("client", "ca", "extendedKeyUsage=clientAuth");
    issue("rogue", "rogue-ca", "extendedKeyUsage=clientAuth");
  }
  std::string operator()(const std::string& file) const { return (dir / file).string(); }
  TempDir dir;
};

// GET `path` over https, presenting client certificate `cert` ("" for
// none) and trusting the CA in `ca`.
httplib::Result TlsGet(const Pki& pki, int port, const std::string& path, const std::string& cert,
                       const std::string& ca = "ca.pem") {
  httplib::SSLClient c("127.0.0.1", port, cert.empty() ? "" : pki(cert + ".pem"), cert.empty() ? "" : pki(cert + ".key"));
  c.set_ca_cert_path(pki(ca));
  c.enable_server_certificate_verification(true);
  c.set_connection_timeout(2);
  c.set_read_timeout(2);
  return c.Get(path);
}

struct TlsServer {
  explicit TlsServer(const Pki& pki) {
    fs::create_directories(tmp / "data");
    ServerOptions o{(tmp / "data").string(), FreePort(),
                    {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--tls-client-ca", pki("ca.pem"),
                     "--server-read-timeout", "1s"}};
    o.ready_probe = [&pki](int port) {
      auto res = TlsGet(pki, port, "/readyz", "client");
      return res && res->status == 200;
    };
    process = std::make_unique<ServerProcess>(tmp.path(), o);
    process->WaitReady();
  }
  TempDir tmp;
  std::unique_ptr<ServerProcess> process;
};

// The value of a sample in /metrics, asked over mutual TLS.
double Sample(const Pki& pki, int port, const std::string& series) {
  auto res = TlsGet(pki, port, "/metrics", "client");
  REQUIRE(res);
  const size_t at = res->body.find("\n" + series + " ");
  REQUIRE_MESSAGE(at != std::string::npos, "no " << series << " in /metrics");
  return std::stod(res->body.substr(at + series.size() + 2));
}

size_t LinesWith(const std::string& text, const std::string& a, const std::string& b = "") {
  size_t n = 0;
  for (const std::string& line : Lines(text)) {
    if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) ++n;
  }
  return n;
}

TEST_CASE("failed TLS handshakes are logged with the client's address and reason, and counted by reason") {
  Pki pki;
  TlsServer server(pki);
  const int port = server.process->port();
  const auto failures = [&](const std::string& reason) {
    return Sample(pki, port, "kvctl_tls_handshake_failures_total{reason=\"" + reason + "\"}");
  };

  {  // Plain HTTP to the TLS port.
    RawSocket plain(port);
    plain.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(plain.ClosedWithin(milliseconds(5000)));
  }
  CHECK_FALSE(TlsGet(pki, port, "/healthz", ""));       // no client certificate
  CHECK_FALSE(TlsGet(pki, port, "/healthz", "rogue"));  // one from a CA the server does not trust
  // A client that does not trust the server's certificate, and says so
  // with an alert (openssl s_client does; cpp-httplib just hangs up).
  Sh("timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " -CAfile '" + pki("rogue-ca.pem") +
     "' -verify_return_error < /dev/null > /dev/null 2>&1");
  {  // A client that starts and never finishes (server.read_timeout is 1 s).
    RawSocket silent(port);
    CHECK(silent.ClosedWithin(milliseconds(5000)));
  }

  CHECK(Eventually([&] { return failures("timeout") >= 1; }));
  CHECK(failures("not_tls") == 1);
  CHECK(failures("no_client_certificate") == 1);
  CHECK(failures("bad_client_certificate") == 1);
  CHECK(failures("rejected_by_client") == 1);
  const std::string log = server.process->Stderr();
  for (const char* reason : {"not_tls", "no_client_certificate", "bad_client_certificate", "rejected_by_client",
                             "timeout"}) {
    CAPTURE(reason);
    CHECK(LinesWith(log, "TLS handshake failed", std::string("reason=") + reason) == 1);
  }
  CHECK(LinesWith(log, "TLS handshake failed", "remote=127.0.0.1") == 5);
  CHECK(LinesWith(log, " warn ", "TLS handshake failed") == 5);
  CHECK(LinesWith(log, "reason=not_tls", "http request") == 1);  // OpenSSL's own words
}

TEST_CASE("a flood of failed TLS handshakes writes a few log lines a second, and says how many it left out") {
  Pki pki;
  TlsServer server(pki);
  const int port = server.process->port();
  constexpr int kFlood = 100;
  for (int i = 0; i < kFlood; ++i) {
    RawSocket plain(port);
    plain.Send("GET / HTTP/1.1\r\n\r\n");
    CHECK(plain.ClosedWithin(milliseconds(5000)));
  }
  std::this_thread::sleep_for(milliseconds(1100));  // a new second of the log's budget
  {
    RawSocket plain(port);
    plain.Send("GET / HTTP/1.1\r\n\r\n");
    CHECK(plain.ClosedWithin(milliseconds(5000)));
  }
  CHECK(Eventually([&] {
    return Sample(pki, port, "kvctl_tls_handshake_failures_total{reason=\"not_tls\"}") == kFlood + 1;
  }));
  const std::string log = server.process->Stderr();
  const size_t lines = LinesWith(log, "TLS handshake failed");
  MESSAGE(lines << " log lines for " << kFlood + 1 << " failed handshakes");
  CHECK(lines >= 2);
  CHECK(lines < kFlood / 2);
  CHECK(LinesWith(log, "TLS handshake failed", "not_logged_before=") >= 1);
}

}  // namespace
}  // namespace kvctl::e2e
