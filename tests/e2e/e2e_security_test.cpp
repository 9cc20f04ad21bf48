// End-to-end tests of running kvctl in production (issue "Run it in
// production"): TLS and mutual TLS, bearer tokens with per-prefix grants,
// the rate limit, a slowloris client, /metrics checked by promtool, the
// structured request log, and a server that runs as a non-root user.
//
// Certificates are made by each test (pki.h); no private key is checked in.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"
#include "tests/e2e/pki.h"

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Runs a shell command (openssl, promtool) and returns its exit code.
int Sh(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string Quote(const fs::path& p) { return "'" + p.string() + "'"; }

// `kvctl serve` on a fresh data dir in `tmp`, with `args`, ready.
std::unique_ptr<ServerProcess> Serve(const TempDir& tmp, std::vector<std::string> args,
                                     std::function<bool(int)> ready = {}) {
  static int n = 0;
  const fs::path data = tmp / ("data-" + std::to_string(++n));
  fs::create_directories(data);
  ServerOptions o{data.string(), FreePort(), std::move(args), {}};
  o.ready_probe = std::move(ready);
  auto server = std::make_unique<ServerProcess>(tmp.path(), std::move(o));
  server->WaitReady();
  return server;
}

std::string Https(int port) { return "https://127.0.0.1:" + std::to_string(port); }

httplib::Headers Bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

// The value of the sample `series` (name plus labels, as written) in a
// Prometheus text body; fails the test when absent.
double Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  FAIL("no sample " << series << " in /metrics");
  return 0;
}

// Checks `text` with promtool, the Prometheus project's own parser and linter.
void CheckWithPromtool(const TempDir& tmp, const std::string& text) {
  REQUIRE_MESSAGE(Sh("command -v promtool >/dev/null") == 0,
                  "promtool is needed (Debian package prometheus; scripts/deps.sh test)");
  const fs::path file = tmp / "metrics.txt";
  const fs::path report = tmp / "promtool.txt";
  WriteFile(file, text);
  const int rc = Sh("promtool check metrics < " + Quote(file) + " > " + Quote(report) + " 2>&1");
  CHECK_MESSAGE(rc == 0, "promtool check metrics failed:\n" << ReadFile(report));
}

}  // namespace

// ---------------------------------------------------------------- TLS

TEST_CASE("TLS: a client trusting the server's CA is served over https, others are refused") {
  Pki pki;
  TempDir tmp;
  auto server = Serve(tmp, {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key")}, TlsReady(pki, false));
  const std::string addr = Https(server->port());

  CliResult put = RunCli({"put", "greeting", "hello", "--addr", addr, "--cacert", pki("ca.pem")});
  CHECK_MESSAGE(put.exit_code == 0, put.err);
  CliResult get = RunCli({"get", "greeting", "--addr", addr, "--cacert", pki("ca.pem")});
  CHECK(get.exit_code == 0);
  CHECK(get.out == "hello");

  // The handshake refused: the system CAs do not know the test CA, and a
  // rogue CA is not the server's.
  CliResult unknown_ca = RunCli({"get", "greeting", "--addr", addr});
  CHECK(unknown_ca.exit_code == 3);
  CHECK(unknown_ca.err.find("certificate did not verify") != std::string::npos);
  CHECK(IsOneErrorLine(unknown_ca.err));
  CHECK(RunCli({"get", "greeting", "--addr", addr, "--cacert", pki("rogue-ca.pem")}).exit_code == 3);

  // Plain HTTP to the TLS port gets no answer, and no data.
  CliResult plain = RunCli({"get", "greeting", "--addr", Addr(server->port())});
  CHECK(plain.exit_code == 3);
  CHECK(plain.err.find("https://") != std::string::npos);
  CHECK(plain.out.empty());

  // A watch streams over TLS like any answer (chunked, through the session).
  httplib::SSLClient watch("127.0.0.1", server->port());
  watch.set_ca_cert_path(pki("ca.pem"));
  watch.enable_server_certificate_verification(true);
  watch.set_read_timeout(10);
  std::string lines;
  auto streamed = watch.Get("/v1/watch?key=greeting&from=1", [&](const char* data, size_t n) {
    lines.append(data, n);
    return lines.find('\n') == std::string::npos;  // one line is enough: then hang up
  });
  CHECK(lines.find("\"revision\":1,\"op\":\"put\",\"key\":\"greeting\"") != std::string::npos);
  CHECK(server->Terminate() == 0);
}

TEST_CASE("TLS: unusable certificate or key files stop serve with exit 2 naming the setting") {
  Pki pki;
  TempDir tmp;
  fs::create_directories(tmp / "data");
  auto refused = [&](std::vector<std::string> args) {
    ServerProcess server(tmp.path(), ServerOptions{(tmp / "data").string(), FreePort(), std::move(args), {}});
    auto code = server.WaitExit(seconds(20));
    REQUIRE_MESSAGE(code.has_value(), "serve started with bad TLS files");
    CHECK(*code == 2);
    return server.Stderr();
  };
  CHECK(refused({"--tls-cert", pki("missing.pem"), "--tls-key", pki("server.key")}).find("tls.cert") !=
        std::string::npos);
  CHECK(refused({"--tls-cert", pki("server.pem"), "--tls-key", pki("client.key")}).find("does not belong") !=
        std::string::npos);
  CHECK(refused({"--tls-cert", pki("server.key"), "--tls-key", pki("server.key")}).find("not a PEM certificate") !=
        std::string::npos);
  CHECK(refused({"--tls-key", pki("server.key")}).find("tls.cert is not") != std::string::npos);
}

TEST_CASE("a private key or auth file open to other users stops serve and the client with exit 2 and the chmod") {
  Pki pki;
  TempDir tmp;
  fs::create_directories(tmp / "data");
  auto refused = [&](std::vector<std::string> args) {
    ServerProcess server(tmp.path(), ServerOptions{(tmp / "data").string(), FreePort(), std::move(args), {}});
    auto code = server.WaitExit(seconds(20));
    REQUIRE_MESSAGE(code.has_value(), "serve started with a file open to other users");
    CHECK(*code == 2);
    CHECK(IsOneErrorLine(server.Stderr()));
    return server.Stderr();
  };
  // tls.key readable by everyone.
  REQUIRE(::chmod(pki("server.key").c_str(), 0644) == 0);
  const std::string key_err = refused({"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key")});
  CHECK(key_err.find("tls.key = " + pki("server.key") + " is open to other users (mode 0644)") != std::string::npos);
  CHECK(key_err.find("(chmod 6") != std::string::npos);
  REQUIRE(::chmod(pki("server.key").c_str(), 0600) == 0);

  // An auth file anyone may write: anyone could add an admin token.
  const fs::path tokens = tmp / "tokens.toml";
  WriteFile(tokens, "[[tokens]]\nname = \"a\"\nsha256 = \"" + HashToken("token-0123456789abcdef") +
                        "\"\ngrants = [{ prefix = \"\", ops = [\"read\"] }]\n");
  REQUIRE(::chmod(tokens.c_str(), 0666) == 0);
  const std::string auth_err = refused({"--auth-file", tokens.string()});
  CHECK(auth_err.find("auth.file = " + tokens.string() + " is writable by") != std::string::npos);
  CHECK(auth_err.find("(chmod go-w " + tokens.string() + ")") != std::string::npos);
  // Made private, the same files serve.
  REQUIRE(::chmod(tokens.c_str(), 0644) == 0);
  auto server = Serve(tmp, {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--auth-file",
                            tokens.string()},
                      TlsReady(pki, false));

  // The client's key, readable by everyone: refused before any request.
  REQUIRE(::chmod(pki("client.key").c_str(), 0644) == 0);
  CliResult client = RunCli({"get", "k", "--addr", Https(server->port()), "--cacert", pki("ca.pem"), "--cert",
                             pki("client.pem"), "--key", pki("client.key")});
  CHECK(client.exit_code == 2);
  CHECK(client.err.find("client.key = " + pki("client.key") + " is open to other users") != std::string::npos);
  CHECK(IsOneErrorLine(client.err));
  CliResult bench = RunCli({"bench", "--addr", Https(server->port()), "--cacert", pki("ca.pem"), "--cert",
                            pki("client.pem"), "--key", pki("client.key"), "--requests", "10"});
  CHECK(bench.exit_code == 2);
  CHECK(bench.err.find("client.key = ") != std::string::npos);
  CHECK(server->Terminate() == 0);
}

TEST_CASE("mutual TLS: no client certificate or one from another CA is refused, tls.client_ca's is served") {
  Pki pki;
  TempDir tmp;
  auto server = Serve(tmp,
                      {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--tls-client-ca",
                       pki("ca.pem")},
                      TlsReady(pki, true));
  const std::string addr = Https(server->port());
  const std::vector<std::string> trust{"--addr", addr, "--cacert", pki("ca.pem")};
  auto cli = [&](std::vector<std::string> args, std::vector<std::string> extra) {
    args.insert(args.end(), trust.begin(), trust.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args);
  };

  // The server's TLS alert is named, with the settings to check.
  CliResult none = cli({"put", "k", "v"}, {});
  CHECK(none.exit_code == 3);
  CHECK(none.err.find("--cert") != std::string::npos);
  CHECK_MESSAGE(none.err.find("refused the TLS handshake") != std::string::npos, none.err);
  CHECK(none.err.find("tlsv13 alert certificate required (") != std::string::npos);
  CHECK(none.err.find("client.cert") != std::string::npos);
  CliResult rogue = cli({"put", "k", "v"}, {"--cert", pki("rogue.pem"), "--key", pki("rogue.key")});
  CHECK(rogue.exit_code == 3);
  CHECK_MESSAGE(rogue.err.find("alert unknown ca (") != std::string::npos, rogue.err);
  CHECK(IsOneErrorLine(rogue.err));
  // A key that is not the certificate's is the client's own mistake, named.
  CliResult mismatch = cli({"put", "k", "v"}, {"--cert", pki("client.pem"), "--key", pki("rogue.key")});
  CHECK(mismatch.exit_code == 2);
  CHECK_MESSAGE(mismatch.err.find("client.key " + pki("rogue.key") + ": key values mismatch") != std::string::npos,
                mismatch.err);
  CliResult good = cli({"put", "k", "v"}, {"--cert", pki("client.pem"), "--key", pki("client.key")});
  CHECK_MESSAGE(good.exit_code == 0, good.err);
  CliResult back = cli({"get", "k"}, {"--cert", pki("client.pem"), "--key", pki("client.key")});
  CHECK(back.out == "v");

  // Without a certificate nothing was stored: only the good client's write.
  httplib::SSLClient direct("127.0.0.1", server->port(), pki("client.pem"), pki("client.key"));
  direct.set_ca_cert_path(pki("ca.pem"));
  direct.enable_server_certificate_verification(true);
  auto ready = direct.Get("/readyz");
  REQUIRE(ready);
  CHECK(nlohmann::json::parse(ready->body)["revision"] == 1);
  CHECK(server->Terminate() == 0);
}

TEST_CASE("tls.client_crl: a revoked client certificate is refused, a CRL revoking more is reloaded on "
          "SIGHUP and when its file changes, a bad one keeps the old") {
  Pki pki;
  TempDir tmp;
  for (const char* name : {"laptop-a", "laptop-b", "laptop-c", "desk"}) pki.Client(name, name);
  pki.Revoke("laptop-a");
  const fs::path crl = tmp / "clients.crl";
  pki.Crl(crl);
  auto server = Serve(tmp,
                      {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--tls-client-ca",
                       pki("ca.pem"), "--tls-client-crl", crl.string()},
                      TlsReady(pki, true));
  auto get_as = [&](const std::string& name) {
    return RunCli({"get", "k", "--addr", Https(server->port()), "--cacert", pki("ca.pem"), "--cert",
                   pki(name + ".pem"), "--key", pki(name + ".key")});
  };
  auto served = [&](const std::string& name) {
    CliResult r = get_as(name);
    return r.exit_code == 1;  // the handshake passed: key k is not found
  };
  auto log_count = [&](const std::string& text) {
    const std::string log = server->Stderr();
    size_t n = 0;
    for (size_t at = log.find(text); at != std::string::npos; at = log.find(text, at + 1)) ++n;
    return n;
  };
  CHECK(log_count("loaded the client certificate revocation list") == 1);

  CliResult revoked = get_as("laptop-a");
  CHECK(revoked.exit_code == 3);
  CHECK(IsOneErrorLine(revoked.err));
  CHECK(served("laptop-b"));
  CHECK(served("desk"));

  // laptop-b is lost: revoked, published, SIGHUP (systemctl reload).
  pki.Revoke("laptop-b");
  pki.Crl(tmp / "next.crl");
  fs::rename(tmp / "next.crl", crl);
  REQUIRE(::kill(server->pid(), SIGHUP) == 0);
  REQUIRE(Eventually([&] { return log_count("reloaded the client certificate revocation list") >= 1; }));
  CHECK(get_as("laptop-b").exit_code == 3);
  CHECK(get_as("laptop-a").exit_code == 3);
  CHECK(served("desk"));
  CHECK(served("laptop-c"));

  // A file that is not a CRL: the old list stays, and the log says why.
  WriteFile(tmp / "bad.crl", "not a CRL\n");
  fs::rename(tmp / "bad.crl", crl);
  REQUIRE(::kill(server->pid(), SIGHUP) == 0);
  REQUIRE(Eventually([&] { return log_count("kept the client certificate revocation list loaded before") >= 1; }));
  CHECK(get_as("laptop-b").exit_code == 3);
  CHECK(served("desk"));
  CHECK(server->Running());

  // No signal: a new file is picked up at a handshake (looked at once a second).
  pki.Revoke("laptop-c");
  pki.Crl(tmp / "next.crl");
  fs::rename(tmp / "next.crl", crl);
  CHECK(Eventually([&] { return get_as("laptop-c").exit_code == 3; }, seconds(10)));
  CHECK(served("desk"));
  CHECK(get_as("laptop-a").exit_code == 3);
  CHECK(server->Terminate() == 0);
}

TEST_CASE("SIGHUP does not stop a server with nothing to reread: it says so and serves on") {
  TempDir tmp;
  auto server = Serve(tmp, {});
  REQUIRE(::kill(server->pid(), SIGHUP) == 0);
  // Before, SIGHUP's default action ended the process.
  REQUIRE(Eventually([&] { return server->Stderr().find("nothing to reread") != std::string::npos; }));
  CHECK(server->Running());
  HttpClient http(server->port());
  CHECK(http.Put("k", "v").status == 201);
  http.Close();
  CHECK(server->Terminate() == 0);
}

TEST_CASE("tls.client_crl that cannot be used at start is exit 2 naming it, it needs tls.client_ca") {
  Pki pki;
  TempDir tmp;
  fs::create_directories(tmp / "data");
  auto refused = [&](std::vector<std::string> args) {
    ServerProcess server(tmp.path(), ServerOptions{(tmp / "data").string(), FreePort(), std::move(args), {}});
    auto code = server.WaitExit(seconds(20));
    REQUIRE_MESSAGE(code.has_value(), "serve started with an unusable CRL");
    CHECK(*code == 2);
    CHECK(IsOneErrorLine(server.Stderr()));
    return server.Stderr();
  };
  const std::vector<std::string> mtls{"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"),
                                      "--tls-client-ca", pki("ca.pem")};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = mtls;
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  };
  const std::string missing = (tmp / "missing.crl").string();
  CHECK(refused(with({"--tls-client-crl", missing})).find("tls.client_crl = " + missing + ": cannot read it") !=
        std::string::npos);
  WriteFile(tmp / "empty.crl", "");
  CHECK(refused(with({"--tls-client-crl", (tmp / "empty.crl").string()})).find("holds no PEM certificate revocation list") !=
        std::string::npos);
  // A CRL from a CA that did not issue the client certificates.
  Pki other;
  other.Crl(tmp / "other.crl");
  CHECK(refused(with({"--tls-client-crl", (tmp / "other.crl").string()})).find("is not signed by a CA of tls.client_ca") !=
        std::string::npos);
  pki.Crl(tmp / "good.crl");
  CHECK(refused({"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--tls-client-crl",
                 (tmp / "good.crl").string()})
            .find("tls.client_crl is set but tls.client_ca is not") != std::string::npos);
}

TEST_CASE("TLS 1.2 offers only ECDHE with AEAD ciphers by default: no CBC, no static RSA, both are settable") {
  Pki pki;
  TempDir tmp;
  // An RSA certificate, the kind static-RSA key exchange works with.
  const std::string quiet = " >/dev/null 2>&1";
  REQUIRE(Sh("openssl req -newkey rsa:2048 -nodes -keyout " + Quote(tmp / "rsa.key") + " -out " +
             Quote(tmp / "rsa.csr") + " -subj '/CN=localhost'" + quiet) == 0);
  WriteFile(tmp / "rsa.ext", "subjectAltName=IP:127.0.0.1\n");
  REQUIRE(Sh("openssl x509 -req -days 2 -in " + Quote(tmp / "rsa.csr") + " -CA " + Quote(pki("ca.pem")) + " -CAkey " +
             Quote(pki("ca.key")) + " -CAcreateserial -extfile " + Quote(tmp / "rsa.ext") + " -out " +
             Quote(tmp / "rsa.pem") + quiet) == 0);
  auto handshake = [&](int port, const std::string& how) {
    return Sh("timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(port) + " -CAfile " +
              Quote(pki("ca.pem")) + " -verify_return_error " + how + " </dev/null" + quiet) == 0;
  };
  {
    auto server = Serve(tmp, {"--tls-cert", (tmp / "rsa.pem").string(), "--tls-key", (tmp / "rsa.key").string()},
                        [&](int port) { return handshake(port, "-tls1_3"); });
    const int port = server->port();
    CHECK_FALSE(handshake(port, "-tls1_2 -cipher AES128-SHA"));             // CBC, static RSA
    CHECK_FALSE(handshake(port, "-tls1_2 -cipher AES128-GCM-SHA256"));      // static RSA: no forward secrecy
    CHECK_FALSE(handshake(port, "-tls1_2 -cipher ECDHE-RSA-AES128-SHA"));   // ECDHE, but CBC
    CHECK(handshake(port, "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256"));
    CHECK(handshake(port, "-tls1_2 -cipher ECDHE-RSA-CHACHA20-POLY1305"));
    CHECK(handshake(port, "-tls1_3"));
    CHECK(server->Terminate() == 0);
  }
  {
    // Settable, for those who must: TLS 1.3 only, one suite.
    auto server = Serve(tmp,
                        {"--tls-cert", (tmp / "rsa.pem").string(), "--tls-key", (tmp / "rsa.key").string(),
                         "--tls-min-version", "1.3", "--tls-ciphersuites", "TLS_AES_256_GCM_SHA384"},
                        [&](int port) { return handshake(port, "-tls1_3"); });
    const int port = server->port();
    CHECK_FALSE(handshake(port, "-tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256"));
    CHECK_FALSE(handshake(port, "-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256"));
    CHECK(handshake(port, "-tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384"));
    CHECK(server->Terminate() == 0);
  }
  // A list OpenSSL finds nothing in is exit 2 naming the setting.
  fs::create_directories(tmp / "data");
  ServerProcess bad(tmp.path(), ServerOptions{(tmp / "data").string(), FreePort(),
                                              {"--tls-cert", (tmp / "rsa.pem").string(), "--tls-key",
                                               (tmp / "rsa.key").string(), "--tls-ciphers", "NO-SUCH-CIPHER"},
                                              {}});
  auto code = bad.WaitExit(seconds(20));
  REQUIRE(code.has_value());
  CHECK(*code == 2);
  CHECK(bad.Stderr().find("tls.ciphers = NO-SUCH-CIPHER") != std::string::npos);
}

// ---------------------------------------------------------------- auth

TEST_CASE("auth: each route answers 401 without a valid token and 403 outside the grant") {
  TempDir tmp;
  const std::string reader = "reader-token-0123456789", writer = "writer-token-0123456789",
                    admin = "admin-token-0123456789";
  const fs::path config = tmp / "kvctl.toml";
  WriteFile(config, R"(
[auth]
metrics = "admin"

[[auth.tokens]]
name = "reader"
sha256 = ")" + HashToken(reader) + R"("
grants = [{ prefix = "app/", ops = ["read"] }]

[[auth.tokens]]
name = "writer"
sha256 = ")" + HashToken(writer) + R"("
grants = [{ prefix = "app/", ops = ["read", "write"] }]

[[auth.tokens]]
name = "admin"
sha256 = ")" + HashToken(admin) + R"("
grants = [{ prefix = "", ops = ["read", "write", "admin"] }]
)");
  auto server = Serve(tmp, {"--config", config.string(), "--log-requests", "all"});
  HttpClient http(server->port());
  REQUIRE(http.Put("other/secret", "s", Bearer(admin)).status == 201);

  // Without a token, or with a wrong one: 401 on every route that holds data.
  for (const httplib::Headers& h : {httplib::Headers{}, Bearer("not-a-token"), httplib::Headers{{"Authorization", "Basic eDp5"}}}) {
    CHECK(http.Request("GET", KeyPath("app/a"), {}, h).status == 401);
    CHECK(http.Request("HEAD", KeyPath("app/a"), {}, h).status == 401);
    CHECK(http.Request("PUT", KeyPath("app/a"), "v", h).status == 401);
    CHECK(http.Request("DELETE", KeyPath("app/a"), {}, h).status == 401);
    HttpResponse list = http.Request("GET", "/v1/kv?prefix=", {}, h);
    CHECK(list.status == 401);
    CHECK(ErrorCode(list) == "unauthorized");
    CHECK(list.Header("WWW-Authenticate") == "Bearer realm=\"kvctl\"");
    CHECK(http.Request("GET", "/metrics", {}, h).status == 401);
  }
  CHECK(http.Request("GET", "/healthz").status == 200);
  CHECK(http.Request("GET", "/readyz").status == 200);

  // Inside the grant: allowed. Outside: 403, and nothing changes.
  CHECK(http.Put("app/a", "1", Bearer(writer)).status == 201);
  CHECK(http.Request("GET", KeyPath("app/a"), {}, Bearer(reader)).body == "1");
  CHECK(http.Request("HEAD", KeyPath("app/a"), {}, Bearer(reader)).status == 200);
  CHECK(ErrorCode(http.Put("app/a", "2", Bearer(reader))) == "forbidden");
  CHECK(http.Request("DELETE", KeyPath("app/a"), {}, Bearer(reader)).status == 403);
  CHECK(http.Request("GET", KeyPath("other/secret"), {}, Bearer(reader)).status == 403);
  CHECK(http.Put("other/secret", "x", Bearer(writer)).status == 403);
  CHECK(http.Request("GET", "/metrics", {}, Bearer(writer)).status == 403);
  CHECK(http.Request("GET", "/metrics", {}, Bearer(admin)).status == 200);
  CHECK(http.Request("DELETE", KeyPath("app/a"), {}, Bearer(writer)).status == 204);
  CHECK(http.Put("app/b", "2", Bearer(writer)).status == 201);

  // A listing shows only what the token may read.
  HttpResponse list = http.Request("GET", "/v1/kv?prefix=", {}, Bearer(reader));
  REQUIRE(list.status == 200);
  nlohmann::json items = list.Json()["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["key"] == "app/b");
  CHECK(http.Request("GET", "/v1/kv?prefix=", {}, Bearer(admin)).Json()["items"].size() == 2);

  // The CLI: 401 and 403 exit 2 with the server's reason; the token comes
  // from --token or KVCTL_CLIENT_TOKEN.
  const std::string addr = Addr(server->port());
  CliResult no_token = RunCli({"get", "app/b", "--addr", addr});
  CHECK(no_token.exit_code == 2);
  CHECK(no_token.err.find("KVCTL_CLIENT_TOKEN") != std::string::npos);
  CliOptions env;
  env.env = {{"KVCTL_CLIENT_TOKEN", reader}};
  CliResult by_env = RunCli({"get", "app/b", "--addr", addr}, env);
  CHECK(by_env.exit_code == 0);
  CHECK(by_env.out == "2");
  CliResult forbidden = RunCli({"put", "other/x", "v", "--addr", addr, "--token", writer});
  CHECK(forbidden.exit_code == 2);
  CHECK(forbidden.err.find("may not write") != std::string::npos);
  CliResult listing = RunCli({"get", "--prefix", "", "--keys-only", "--addr", addr, "--token", reader});
  CHECK(listing.exit_code == 0);
  CHECK(listing.out == "app/b\n");

  // Compaction is admin's: POST /v1/admin/compact and `kvctl compact`.
  CHECK(http.Request("POST", "/v1/admin/compact").status == 401);
  CHECK(http.Request("POST", "/v1/admin/compact", {}, Bearer(writer)).status == 403);
  CHECK(http.Request("POST", "/v1/admin/compact", {}, Bearer(admin)).status == 200);
  CHECK(RunCli({"compact", "--addr", addr, "--token", writer}).exit_code == 2);
  CliResult compact = RunCli({"compact", "--addr", addr, "--token", admin});
  CHECK_MESSAGE(compact.exit_code == 0, compact.err);

  HttpResponse metrics = http.Request("GET", "/metrics", {}, Bearer(admin));
  CHECK(Sample(metrics.body, "kvctl_auth_failures_total{reason=\"missing_credentials\"}") == 8);
  CHECK(Sample(metrics.body, "kvctl_auth_failures_total{reason=\"invalid_token\"}") == 12);
  CHECK(Sample(metrics.body, "kvctl_auth_failures_total{reason=\"forbidden\"}") == 8);

  // The tokens never reach the log.
  http.Close();
  CHECK(server->Terminate() == 0);
  const std::string log = server->Stderr();
  for (const std::string& token : {reader, writer, admin}) CHECK(log.find(token) == std::string::npos);
}

TEST_CASE("mutual TLS with auth: the client certificate's CN is the identity, with its grants") {
  Pki pki;
  TempDir tmp;
  const fs::path config = tmp / "kvctl.toml";
  const std::string writer = "writer-token-abcdefabcdef";
  WriteFile(config, "[tls]\ncert = \"" + pki("server.pem") + "\"\nkey = \"" + pki("server.key") +
                        "\"\nclient_ca = \"" + pki("ca.pem") +
                        "\"\n\n[[auth.certs]]\ncn = \"backup\"\ngrants = [{ prefix = \"\", ops = [\"read\"] }]\n\n"
                        "[[auth.tokens]]\nname = \"deployer\"\nsha256 = \"" +
                        HashToken(writer) + "\"\ngrants = [{ prefix = \"app/\", ops = [\"read\", \"write\"] }]\n");
  auto server = Serve(tmp, {"--config", config.string(), "--log-requests", "all"}, TlsReady(pki, true));
  const std::vector<std::string> tls{"--addr", Https(server->port()), "--cacert", pki("ca.pem"), "--cert",
                                     pki("client.pem"), "--key", pki("client.key")};
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.end(), tls.begin(), tls.end());
    return RunCli(args);
  };
  // The certificate (CN=backup) may read everything and write nothing; a
  // token sent on the same connection takes precedence.
  CHECK(cli({"put", "app/k", "v"}).exit_code == 2);
  CHECK(cli({"put", "app/k", "v", "--token", writer}).exit_code == 0);
  CliResult read = cli({"get", "app/k"});
  CHECK(read.exit_code == 0);
  CHECK(read.out == "v");
  CHECK(server->Terminate() == 0);
  CHECK(server->Stderr().find("identity=backup") != std::string::npos);
}

TEST_CASE("kvctl bench speaks mutual TLS and sends its token, and each write is logged with its identity") {
  Pki pki;
  TempDir tmp;
  const fs::path config = tmp / "kvctl.toml";
  const std::string writer = "bench-token-0123456789", reader = "read-token-0123456789";
  WriteFile(config, "[tls]\ncert = \"" + pki("server.pem") + "\"\nkey = \"" + pki("server.key") +
                        "\"\nclient_ca = \"" + pki("ca.pem") + "\"\n\n[[auth.tokens]]\nname = \"bencher\"\nsha256 = \"" +
                        HashToken(writer) + "\"\ngrants = [{ prefix = \"k\", ops = [\"read\", \"write\"] }]\n\n" +
                        "[[auth.tokens]]\nname = \"reader\"\nsha256 = \"" + HashToken(reader) +
                        "\"\ngrants = [{ prefix = \"k\", ops = [\"read\"] }]\n");
  auto server = Serve(tmp, {"--config", config.string(), "--log-requests", "all"}, TlsReady(pki, true));
  const std::vector<std::string> bench{"bench",   "--addr",       Https(server->port()),
                                       "--cacert", pki("ca.pem"), "--cert",
                                       pki("client.pem"), "--key", pki("client.key"),
                                       "--requests", "400", "--clients", "4",
                                       "--keys", "50", "--read-ratio", "0.5",
                                       "-o", "json"};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = bench;
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args);
  };

  CliResult ok = run({"--token", writer});
  REQUIRE_MESSAGE(ok.exit_code == 0, ok.err);
  const nlohmann::json j = nlohmann::json::parse(ok.out);
  CHECK(j["ok"] == 400);
  CHECK(j["errors"]["total"] == 0);
  CHECK(j["writes"]["count"].get<uint64_t>() > 100);

  // Without a token its writes are refused (401), with a read-only one
  // they are forbidden (403): the fill fails and says so.
  CliResult anonymous = run({});
  CHECK(anonymous.exit_code == 3);
  CHECK(anonymous.err.find("status 401") != std::string::npos);
  CliResult read_only = run({"--token", reader});
  CHECK(read_only.exit_code == 3);
  CHECK(read_only.err.find("status 403") != std::string::npos);
  // Without trusting the server's CA, or without a client certificate:
  // the handshake is refused, with a clear error.
  CliResult untrusted = RunCli({"bench", "--addr", Https(server->port()), "--requests", "10", "--token", writer});
  CHECK(untrusted.exit_code == 3);
  CHECK(untrusted.err.find("TLS handshake") != std::string::npos);
  CHECK(IsOneErrorLine(untrusted.err));
  CliResult no_cert =
      RunCli({"bench", "--addr", Https(server->port()), "--cacert", pki("ca.pem"), "--requests", "10", "--token", writer});
  CHECK(no_cert.exit_code == 3);
  CHECK(no_cert.err.find("TLS handshake") != std::string::npos);
  // A plain address with TLS flags is a usage error, as for the client commands.
  CHECK(RunCli({"bench", "--addr", Addr(server->port()), "--cacert", pki("ca.pem"), "--requests", "10"}).exit_code == 2);

  // The async write path is logged with the real status and the identity.
  CHECK(server->Terminate() == 0);
  const std::string log = server->Stderr();
  CHECK(log.find("method=PUT route=/v1/kv/{key} status=201") != std::string::npos);
  CHECK(log.find("status=403") != std::string::npos);
  CHECK(log.find("identity=bencher") != std::string::npos);
  CHECK(log.find(writer) == std::string::npos);
}

// ---------------------------------------------------------------- rate limit

TEST_CASE("rate limit: over the burst a client gets 429 with Retry-After, and is served again after it") {
  TempDir tmp;
  auto server = Serve(tmp, {"--ratelimit-rate", "1", "--ratelimit-burst", "3"});
  HttpClient http(server->port());
  // Readiness probes are never limited (WaitReady asked /readyz already).
  // The burst of 3 goes through; a request soon after is refused (the loop
  // allows for a slow machine refilling a token in between).
  int served = 0;
  std::optional<HttpResponse> limited;
  for (int i = 0; i < 20 && !limited; ++i) {
    HttpResponse r = http.Get("k");
    if (r.status == 429) {
      limited = r;
    } else {
      CHECK(r.status == 404);
      ++served;
    }
  }
  REQUIRE_MESSAGE(limited.has_value(), "20 requests at once were never limited");
  CHECK(served >= 3);
  CHECK(ErrorCode(*limited) == "rate_limited");
  REQUIRE(limited->Header("Retry-After") == "1");
  CHECK(http.Request("GET", "/healthz").status == 200);

  std::this_thread::sleep_for(milliseconds(1100));  // what Retry-After asked for
  CHECK(http.Get("k").status == 404);

  // The CLI, refused: exit 3 (unavailable, try later) with the reason.
  while (http.Get("k").status != 429) {
  }
  CliResult cli = RunCli({"get", "k", "--addr", Addr(server->port())});
  CHECK(cli.exit_code == 3);
  CHECK(cli.err.find("rate limited") != std::string::npos);
  std::this_thread::sleep_for(milliseconds(1100));
  HttpResponse metrics = http.Request("GET", "/metrics");
  CHECK(Sample(metrics.body, "kvctl_ratelimit_refusals_total") >= 3);
  http.Close();
  CHECK(server->Terminate() == 0);
}

// ---------------------------------------------------------------- slowloris

// Clients that open connections and send a byte a second (slowloris)
// hold no thread of the event-loop transport, and the read timeout runs
// from a request's first byte, not from its last: each slow client is cut
// off with 408 after server.read_timeout, and others are served throughout.
TEST_CASE("slowloris: connections sending a byte a second do not stop other clients from being served") {
  TempDir tmp;
  auto server = Serve(tmp, {"--threads", "2", "--server-io-threads", "1", "--server-read-timeout", "3s"});
  const int port = server->port();
  constexpr int kSlowClients = 48;
  std::vector<std::unique_ptr<RawSocket>> slow;
  for (int i = 0; i < kSlowClients; ++i) {
    slow.push_back(std::make_unique<RawSocket>(port));
    REQUIRE(slow.back()->Send("GET /v1/kv/k HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "));
  }
  std::atomic<bool> stop{false};
  std::thread dripper([&] {
    while (!stop) {
      for (auto& s : slow) s->Send("x");
      for (int i = 0; i < 10 && !stop; ++i) std::this_thread::sleep_for(milliseconds(100));
    }
  });

  // Meanwhile a well-behaved client asks five times, each on a new
  // connection, and is answered promptly each time.
  int served = 0;
  milliseconds slowest{0};
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(milliseconds(400));
    const auto started = std::chrono::steady_clock::now();
    HttpClient client(port);
    if (client.Request("GET", "/healthz").status == 200) ++served;
    slowest = std::max(slowest, std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started));
  }
  CHECK_MESSAGE(served == 5, "only " << served << " of 5 requests were served while " << kSlowClients
                                      << " slow clients held connections");
  CHECK_MESSAGE(slowest < milliseconds(1000), "a request took " << slowest.count() << " ms beside the slow clients");

  // Still trickling, every slow client is refused once its request has
  // taken read_timeout (3 s), not kept alive by each new byte.
  int timed_out = 0;
  for (auto& s : slow) {
    const std::string got = s->ReadUntil(seconds(5), [](const std::string& r) { return r.find("\r\n\r\n") != std::string::npos; });
    if (got.starts_with("HTTP/1.1 408")) ++timed_out;
  }
  stop = true;
  dripper.join();
  CHECK(timed_out == kSlowClients);
  CHECK(server->Terminate() == 0);
}

TEST_CASE("TLS: a client that never finishes its handshake is closed after read_timeout, others are served") {
  Pki pki;
  TempDir tmp;
  auto server = Serve(tmp,
                      {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--server-read-timeout", "2s"},
                      TlsReady(pki, false));
  // Connections that say nothing, and one that sends half a ClientHello.
  std::vector<std::unique_ptr<RawSocket>> stalled;
  for (int i = 0; i < 20; ++i) stalled.push_back(std::make_unique<RawSocket>(server->port()));
  REQUIRE(stalled.back()->Send(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));

  CliResult put = RunCli({"put", "k", "v", "--addr", Https(server->port()), "--cacert", pki("ca.pem")});
  CHECK_MESSAGE(put.exit_code == 0, put.err);
  for (auto& s : stalled) CHECK(s->ClosedWithin(seconds(5)));
  CHECK(server->Terminate() == 0);
}

// ---------------------------------------------------------------- metrics

TEST_CASE("/metrics parses with promtool and its figures move when requests are made") {
  TempDir tmp;
  auto server = Serve(tmp, {});
  HttpClient http(server->port());
  const std::string before = http.Request("GET", "/metrics").body;
  CheckWithPromtool(tmp, before);
  CHECK(Sample(before, "kvctl_keys") == 0);
  CHECK(Sample(before, "kvctl_log_fsync_duration_seconds_count") == 0);

  for (int i = 0; i < 3; ++i) REQUIRE(http.Put("k" + std::to_string(i), "value").status == 201);
  REQUIRE(http.Get("k0").status == 200);
  REQUIRE(http.Get("missing").status == 404);
  REQUIRE(http.Request("GET", "/v1/kv?prefix=k").status == 200);

  const std::string after = http.Request("GET", "/metrics").body;
  CheckWithPromtool(tmp, after);
  CHECK(Sample(after, "kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"PUT\",code=\"201\"}") == 3);
  CHECK(Sample(after, "kvctl_http_requests_total{route=\"/v1/kv/{key}\",method=\"GET\",code=\"404\"}") == 1);
  CHECK(Sample(after, "kvctl_http_requests_total{route=\"/v1/kv\",method=\"GET\",code=\"200\"}") == 1);
  CHECK(Sample(after, "kvctl_http_request_duration_seconds_count{route=\"/v1/kv/{key}\"}") == 5);
  CHECK(Sample(after, "kvctl_http_request_duration_seconds_bucket{route=\"/v1/kv/{key}\",le=\"+Inf\"}") == 5);
  CHECK(Sample(after, "kvctl_http_request_duration_seconds_sum{route=\"/v1/kv/{key}\"}") > 0);
  CHECK(Sample(after, "kvctl_log_append_duration_seconds_count") >= 3);
  CHECK(Sample(after, "kvctl_log_fsync_duration_seconds_count") >= 3);  // fsync = always
  CHECK(Sample(after, "kvctl_commit_batch_changes_count") >= 1);
  CHECK(Sample(after, "kvctl_commit_batch_changes_sum") == 3);
  CHECK(Sample(after, "kvctl_keys") == 3);
  // Three keys of 2 bytes with values of 5, as log records (with headers).
  const double live = Sample(after, "kvctl_live_bytes");
  CHECK(live > 3 * (2 + 5));
  REQUIRE(http.Delete("k2").status == 204);
  CHECK(Sample(http.Request("GET", "/metrics").body, "kvctl_live_bytes") == live * 2 / 3);
  CHECK(Sample(after, "kvctl_log_segments") == 1);
  CHECK(Sample(after, "kvctl_log_bytes") > Sample(before, "kvctl_log_bytes"));
  http.Close();
  CHECK(server->Terminate() == 0);
}

// ---------------------------------------------------------------- logs

TEST_CASE("log.format = json: each request is one JSON line with its fields, and no key, value or token") {
  TempDir tmp;
  auto server = Serve(tmp, {"--log-format", "json", "--log-requests", "all"});
  HttpClient http(server->port());
  REQUIRE(http.Put("secret/db-password", "hunter2-value", {{"X-Request-Id", "req-42"}}).status == 201);
  HttpResponse missing = http.Request("GET", KeyPath("secret/none"), {}, {{"Authorization", "Bearer tok-xyz"}});
  REQUIRE(missing.status == 404);
  const std::string made_id = missing.Header("X-Request-Id");
  CHECK(made_id.size() == 16);
  http.Close();
  CHECK(server->Terminate() == 0);

  std::vector<nlohmann::json> requests;
  std::istringstream lines(server->Stderr());
  for (std::string line; std::getline(lines, line);) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      FAIL("a log line is not JSON: " << line);
    }
    CHECK(j["time"].is_string());
    CHECK(j["level"].is_string());
    if (j["msg"] == "request" && j["route"] == "/v1/kv/{key}") requests.push_back(j);
  }
  REQUIRE(requests.size() == 2);
  const nlohmann::json& put = requests[0];
  CHECK(put["level"] == "info");
  CHECK(put["method"] == "PUT");
  CHECK(put["status"] == 201);
  CHECK(put["bytes_in"] == 13);
  CHECK(put["bytes_out"].get<int>() > 0);
  CHECK(put["duration_ms"].is_number());
  CHECK(put["duration_ms"].get<double>() >= 0);
  CHECK(put["request_id"] == "req-42");
  CHECK(put["remote"] == "127.0.0.1");
  CHECK_FALSE(put.contains("error"));
  const nlohmann::json& get = requests[1];
  CHECK(get["status"] == 404);
  CHECK(get["request_id"] == made_id);
  CHECK(get["error"] == "no_such_key");

  const std::string log = server->Stderr();
  for (const char* secret : {"db-password", "hunter2", "secret/", "tok-xyz"}) {
    CHECK_MESSAGE(log.find(secret) == std::string::npos, secret << " is in the log");
  }
}

TEST_CASE("log.requests: errors by default (no line for a fast 2xx or 4xx), all, off, and the old booleans") {
  TempDir tmp;
  // Lines of one PUT (201) and one GET of a missing key (404), made fast.
  auto request_lines = [&](std::vector<std::string> args) {
    auto server = Serve(tmp, std::move(args));
    HttpClient http(server->port());
    REQUIRE(http.Put("k", "v").status == 201);
    REQUIRE(http.Get("missing").status == 404);
    http.Close();
    CHECK(server->Terminate() == 0);
    const std::string log = server->Stderr();
    CHECK(log.find("listening") != std::string::npos);  // other events stay
    size_t n = 0;
    for (const std::string& line : Lines(log)) n += line.find(" request method=") != std::string::npos &&
                                                   line.find("route=/v1/kv/{key}") != std::string::npos;
    return std::pair(n, log);
  };
  // A minute of slow_request: nothing here is slow, so only 5xx would show.
  auto [by_default, default_log] = request_lines({"--log-slow-request", "1m"});
  CHECK_MESSAGE(by_default == 0, default_log);
  CHECK(default_log.find(" request method=") == std::string::npos);  // not /readyz's either
  CHECK(default_log.find("request_log=\"5xx answers and slower than 60000ms\"") != std::string::npos);
  CHECK(request_lines({"--log-requests", "all"}).first == 2);
  CHECK(request_lines({"--log-requests", "true"}).first == 2);  // the old boolean: every request
  CHECK(request_lines({"--log-requests", "off"}).first == 0);
  CHECK(request_lines({"--log-requests", "false"}).first == 0);
}

// ---------------------------------------------------------------- hardening

TEST_CASE("request headers over server.max_header_bytes are refused with 431") {
  TempDir tmp;
  auto server = Serve(tmp, {"--server-max-header-bytes", "8KiB"});
  HttpClient http(server->port());
  CHECK(http.Request("GET", KeyPath("k"), {}, {{"X-Padding", std::string(6000, 'p')}}).status == 404);
  HttpResponse big = http.Request("GET", KeyPath("k"), {}, {{"X-Padding", std::string(9000, 'p')}});
  CHECK(big.status == 431);
  CHECK(ErrorCode(big) == "headers_too_large");
  http.Close();
  CHECK(server->Terminate() == 0);
}

TEST_CASE("the server runs as a non-root user and says it listens on loopback only") {
  TempDir tmp;
  std::vector<std::string> prefix;
  const fs::path data = tmp / "data";
  fs::create_directories(data);
  if (::geteuid() == 0) {
    // As CI runs: drop to nobody, which owns only the data dir.
    REQUIRE(::chown(data.c_str(), 65534, 65534) == 0);
    REQUIRE(::chmod(tmp.path().c_str(), 0755) == 0);
    prefix = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  }
  ServerOptions o{data.string(), FreePort(), {}, {}};
  o.command_prefix = prefix;
  ServerProcess server(tmp.path(), std::move(o));
  server.WaitReady();
  HttpClient http(server.port());
  CHECK(http.Put("k", "v").status == 201);
  CHECK(http.Get("k").body == "v");
  http.Close();
  CHECK(server.Terminate() == 0);
  const std::string log = server.Stderr();
  CHECK(log.find("reachable_from=\"this host only (loopback") != std::string::npos);
  for (const fs::path& segment : Segments(data)) {
    struct stat st {};
    REQUIRE(::stat(segment.c_str(), &st) == 0);
    const uid_t owner = ::geteuid() == 0 ? 65534 : ::geteuid();
    CHECK(st.st_uid == owner);  // written by the server's user
  }
}

}  // namespace kvctl::e2e
