// etcd's gRPC face goes through the server's one admission pipeline (SPEC
// §7, "TLS, mutual TLS and tokens apply as on the JSON API"; STYLE "One
// admission pipeline"): TLS and mutual TLS (a client certificate's CN an
// identity), kvctl's tokens sent as etcd's clients send theirs (after
// Auth.Authenticate) or as kvctl's bearer token, the caller's grants per
// key, the rate limit, /metrics and the request log. Proven with software
// nobody here wrote: Debian's etcdctl 3.4 and python3-etcd3 (over
// python3-grpcio), and where etcd has the same case, the same client
// against Debian's etcd 3.4 with its own auth on, to see that kvctl
// answers as etcd does.
#include <csignal>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/e2e/etcd_differential.h"
#include "tests/e2e/etcdctl.h"
#include "tests/e2e/etcdctl_script.h"
#include "tests/e2e/harness.h"
#include "tests/e2e/pki.h"

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;

// A token, used as etcd's password too, so that both servers are asked the same.
const std::string kAppToken = "grpc-app-token-0123456789abcdef";
const std::string kRootToken = "grpc-root-token-0123456789abcdef";
const std::string kReaderToken = "grpc-reader-token-0123456789abcd";

// [[tokens]] app (read, write on app/), root (everything) and reader (read
// on app/), and `more` after them.
fs::path AuthFile(const TempDir& dir, const std::string& more = {}) {
  const fs::path file = dir / "auth.toml";
  WriteFile(file, "[[tokens]]\nname = \"app\"\nsha256 = \"" + HashToken(kAppToken) +
                      "\"\ngrants = [{ prefix = \"app/\", ops = [\"read\", \"write\"] }]\n"
                      "[[tokens]]\nname = \"root\"\nsha256 = \"" + HashToken(kRootToken) +
                      "\"\ngrants = [{ prefix = \"\", ops = [\"read\", \"write\", \"admin\"] }]\n"
                      "[[tokens]]\nname = \"reader\"\nsha256 = \"" + HashToken(kReaderToken) +
                      "\"\ngrants = [{ prefix = \"app/\", ops = [\"read\"] }]\n" + more);
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  return file;
}

// `kvctl serve` over TLS with `args`, ready (probed with the client
// certificate when `client_cert`).
std::unique_ptr<ServerProcess> ServeTls(const TempDir& tmp, const Pki& pki, std::vector<std::string> args,
                                        bool client_cert) {
  fs::create_directories(tmp / "data");
  ServerOptions o{(tmp / "data").string(), FreePort(), std::move(args), {}};
  o.ready_probe = TlsReady(pki, client_cert);
  auto server = std::make_unique<ServerProcess>(tmp.path(), std::move(o));
  server->WaitReady();
  return server;
}

// What a user sees of one etcdctl command: its exit code, its stdout, and
// the "Error: ..." line etcdctl ends a failure with ("" when none).
struct Seen {
  int exit_code = 0;
  std::string out, error;
  bool operator==(const Seen&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << "{exit " << s.exit_code << ", out \"" << s.out << "\", \"" << s.error << "\"}";
}

Seen See(const Etcdctl& etcdctl, const std::vector<std::string>& args) {
  const EtcdctlRun run = etcdctl.Exec(args);
  Seen seen{run.exit_code(), run.out(), ""};
  for (const std::string& line : Lines(run.err())) {
    if (line.starts_with("Error: ")) seen.error = line;
  }
  return seen;
}

// The python3-etcd3 probes (python_clients/etcd3_admission.py): "probe" ->
// what it printed after "probe: ".
std::map<std::string, std::string> Etcd3Probes(int port, const std::vector<std::string>& args) {
  std::vector<std::string> all = {Addr(port)};
  all.insert(all.end(), args.begin(), args.end());
  const std::string out = RunPythonClient("etcd3_admission.py", all);
  std::map<std::string, std::string> probes;
  for (const std::string& line : Lines(out)) {
    const size_t colon = line.find(": ");
    if (colon != std::string::npos) probes[line.substr(0, colon)] = line.substr(colon + 2);
  }
  return probes;
}

// Turns etcd's auth on with the user app (password kAppToken, read and
// write on the prefix app/) and root, as an operator would with etcdctl.
void EnableEtcdAuth(int port) {
  const Etcdctl etcdctl(port);
  etcdctl.Ok({"user", "add", "root:" + kRootToken});
  etcdctl.Ok({"user", "add", "app:" + kAppToken});
  etcdctl.Ok({"role", "add", "app"});
  etcdctl.Ok({"role", "grant-permission", "app", "--prefix=true", "readwrite", "app/"});
  etcdctl.Ok({"user", "grant-role", "app", "app"});
  CHECK(etcdctl.Ok({"auth", "enable"}) == "Authentication Enabled\n");
}

// The sample `series` (name and labels, as /metrics writes them) of a
// metrics text, or -1.
double Sample(const std::string& metrics, const std::string& series) {
  for (const std::string& line : Lines(metrics)) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

TEST_CASE("etcd gRPC: etcdctl --user NAME:TOKEN logs in, and what is refused is refused as Debian's etcd refuses it") {
  EtcdProcess etcd;
  EnableEtcdAuth(etcd.port());
  const int grpc_port = FreePort();
  TempDir dir;
  KvServer kvctl({"--auth-file", AuthFile(dir).string(), "--etcd-grpc-listen", Addr(grpc_port)});

  struct Step {
    std::string user;  // "" for none
    std::vector<std::string> args;
    Seen expected;
  };
  const std::string app = "app:" + kAppToken;
  const std::vector<Step> steps = {
      {app, {"put", "app/x", "1"}, {0, "OK\n", ""}},
      {app, {"get", "app/x"}, {0, "app/x\n1\n", ""}},
      {app, {"get", "other"}, {1, "", "Error: etcdserver: permission denied"}},
      {app, {"put", "other", "1"}, {1, "", "Error: etcdserver: permission denied"}},
      {app, {"del", "app/", "--prefix"}, {0, "1\n", ""}},
      {app, {"del", "", "--from-key"}, {1, "", "Error: etcdserver: permission denied"}},
      {"app:wrong-token", {"get", "app/x"}, {2, "", "Error: etcdserver: authentication failed, invalid user ID or password"}},
      {"nobody:" + kAppToken, {"get", "app/x"}, {2, "", "Error: etcdserver: authentication failed, invalid user ID or password"}},
      {"", {"get", "app/x"}, {1, "", "Error: etcdserver: user name is empty"}},
  };
  for (const Step& step : steps) {
    std::string shown;
    for (const auto& a : step.args) shown += a + " ";
    CAPTURE(step.user);
    CAPTURE(shown);
    const Seen on_etcd = See(Etcdctl(etcd.port(), {.user = step.user}), step.args);
    const Seen on_kvctl = See(Etcdctl(grpc_port, {.user = step.user}), step.args);
    CHECK(on_etcd == step.expected);  // the step is etcd's behaviour
    CHECK(on_kvctl == step.expected);
  }

  // kvctl's own rules past etcd's: leases need a write grant (the keepalive
  // stream is refused as it opens); compaction needs admin.
  const Etcdctl root(grpc_port, {.user = "root:" + kRootToken});
  const std::string granted = root.Ok({"lease", "grant", "60"});
  REQUIRE(granted.starts_with("lease "));
  const std::string lease = granted.substr(6, granted.find(' ', 6) - 6);
  const Etcdctl reader(grpc_port, {.user = "reader:" + kReaderToken});
  CHECK(reader.Ok({"get", "app/x"}).empty());  // read granted (the key was deleted above)
  reader.Refused({"lease", "grant", "60"}, 1, "failed to grant lease (etcdserver: permission denied)");
  const EtcdctlRun keepalive = reader.Exec({"lease", "keep-alive", "--once", lease});
  INFO(keepalive.Shown());
  CHECK(keepalive.exit_code() != 0);
  CHECK(keepalive.err().find("etcdserver: permission denied") != std::string::npos);
  CHECK(Etcdctl(grpc_port, {.user = app}).Ok({"lease", "keep-alive", "--once", lease}).find("keepalived") !=
        std::string::npos);
  Etcdctl(grpc_port, {.user = app}).Refused({"compaction", "1"}, 1, "etcdserver: permission denied");

  // A lease shows its caller only the keys it may read.
  CHECK(root.Ok({"put", "--lease", lease, "secret/k", "v"}) == "OK\n");
  CHECK(Etcdctl(grpc_port, {.user = app}).Ok({"put", "--lease", lease, "app/k", "v"}) == "OK\n");
  CHECK(root.Ok({"lease", "timetolive", lease, "--keys"}).find("attached keys([app/k secret/k])") !=
        std::string::npos);
  const std::string seen_by_app = Etcdctl(grpc_port, {.user = app}).Ok({"lease", "timetolive", lease, "--keys"});
  CHECK_MESSAGE(seen_by_app.find("attached keys([app/k])") != std::string::npos, seen_by_app);
}

TEST_CASE("etcd gRPC: python3-etcd3 logs in over TLS, and no, an invalid or an ambiguous token is refused as Debian's etcd refuses it") {
  EtcdProcess etcd;
  EnableEtcdAuth(etcd.port());
  Pki pki;
  TempDir tmp;
  const int grpc_port = FreePort();
  auto kvctl = ServeTls(tmp, pki,
                        {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--auth-file",
                         AuthFile(tmp).string(), "--etcd-grpc-listen", Addr(grpc_port)},
                        false);

  auto on_kvctl = Etcd3Probes(grpc_port, {"--cacert", pki("ca.pem"), "login", "app", kAppToken});
  // python3-etcd3 gives its login's token only to a TLS channel, which
  // Debian's etcd is not started with here: it shows the raw probes.
  auto on_etcd = Etcd3Probes(etcd.port(), {"login", "app", kAppToken});
  CHECK(on_kvctl["login"] == "from python3-etcd3");
  for (const char* probe : {"no token", "invalid token", "token", "same token twice"}) {
    CAPTURE(probe);
    CHECK(on_kvctl[probe] == on_etcd[probe]);
  }
  CHECK(on_kvctl["no token"] == "INVALID_ARGUMENT etcdserver: user name is empty");
  CHECK(on_kvctl["invalid token"] == "UNAUTHENTICATED etcdserver: invalid auth token");
  CHECK(on_kvctl["token"] == "OK");
  CHECK(on_kvctl["same token twice"] == "OK");
  // Where kvctl differs, on purpose (docs/etcd.md): two different tokens
  // are refused (etcd takes the first), and kvctl's own bearer form is
  // taken (etcd reads it as a token of that name).
  CHECK(on_etcd["two tokens"] == "OK");
  CHECK(on_kvctl["two tokens"] == "UNAUTHENTICATED etcdserver: invalid auth token");
  CHECK(on_etcd["bearer"] == "UNAUTHENTICATED etcdserver: invalid auth token");
  CHECK(on_kvctl["bearer"] == "OK");
}

TEST_CASE("etcd gRPC: etcdctl speaks TLS to it with --cacert, and a plain connection is not served") {
  Pki pki;
  TempDir tmp;
  const int grpc_port = FreePort();
  auto server = ServeTls(tmp, pki,
                         {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--etcd-grpc-listen",
                          Addr(grpc_port)},
                         false);
  const Etcdctl tls(grpc_port, {.cacert = pki("ca.pem")});
  CHECK(tls.Ok({"put", "over", "tls"}) == "OK\n");
  CHECK(tls.Ok({"get", "over", "--print-value-only"}) == "tls\n");
  const auto members = tls.Json({"member", "list"});
  CHECK(members["members"][0]["clientURLs"][0] == "https://" + tls.endpoint());

  const Seen plain = See(Etcdctl(grpc_port), {"get", "over"});
  CHECK(plain.exit_code != 0);
  CHECK(plain.out.empty());
  const Seen rogue = See(Etcdctl(grpc_port, {.cacert = pki("rogue-ca.pem")}), {"get", "over"});
  CHECK(rogue.exit_code != 0);
  CHECK(rogue.out.empty());
}

TEST_CASE("etcd gRPC: under mutual TLS a client certificate's CN is an identity with its grants, and no or a foreign certificate gets no answer") {
  Pki pki;
  pki.Client("stranger", "stranger");  // from the CA, but no [[certs]] entry
  TempDir tmp;
  const int grpc_port = FreePort();
  const fs::path auth =
      AuthFile(tmp, "[[certs]]\ncn = \"backup\"\ngrants = [{ prefix = \"app/\", ops = [\"read\", \"write\"] }]\n");
  auto server = ServeTls(tmp, pki,
                         {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--tls-client-ca",
                          pki("ca.pem"), "--auth-file", auth.string(), "--etcd-grpc-listen", Addr(grpc_port)},
                         true);
  const Etcdctl backup(grpc_port, {.cacert = pki("ca.pem"), .cert = pki("client.pem"), .key = pki("client.key")});
  CHECK(backup.Ok({"put", "app/cert", "by CN"}) == "OK\n");
  CHECK(backup.Ok({"get", "app/cert", "--print-value-only"}) == "by CN\n");
  backup.Refused({"get", "other"}, 1, "etcdserver: permission denied");
  // A token wins over the certificate, as on the JSON listeners.
  const Etcdctl backup_as_root(grpc_port, {.cacert = pki("ca.pem"), .cert = pki("client.pem"),
                                           .key = pki("client.key"), .user = "root:" + kRootToken});
  CHECK(backup_as_root.Ok({"get", "other"}).empty());

  Etcdctl(grpc_port, {.cacert = pki("ca.pem"), .cert = pki("stranger.pem"), .key = pki("stranger.key")})
      .Refused({"get", "app/cert"}, 1, "etcdserver: permission denied");
  for (const EtcdctlAccess& refused : std::vector<EtcdctlAccess>{
           {.cacert = pki("ca.pem")},                                                    // no certificate
           {.cacert = pki("ca.pem"), .cert = pki("rogue.pem"), .key = pki("rogue.key")},  // another CA's
       }) {
    CAPTURE(refused.cert);
    const Seen seen = See(Etcdctl(grpc_port, refused), {"get", "app/cert"});
    CHECK(seen.exit_code != 0);
    CHECK(seen.out.empty());
  }
}

TEST_CASE("etcd gRPC: Debian's etcdctl script passes against kvctl over mutual TLS with --user NAME:TOKEN") {
  Pki pki;
  TempDir tmp;
  const int grpc_port = FreePort();
  auto server = ServeTls(tmp, pki,
                         {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--tls-client-ca",
                          pki("ca.pem"), "--auth-file", AuthFile(tmp).string(), "--etcd-grpc-listen",
                          Addr(grpc_port)},
                         true);
  CheckEtcdctlScript(grpc_port, EtcdctlSteps::kKvctl,
                     {.cacert = pki("ca.pem"), .cert = pki("client.pem"), .key = pki("client.key"),
                      .user = "root:" + kRootToken});
}

TEST_CASE("etcd gRPC: a watch sees only the keys its caller may read, and one outside its grants is refused in the stream") {
  TempDir tmp;
  const int grpc_port = FreePort();
  KvServer server({"--auth-file", AuthFile(tmp).string(), "--etcd-grpc-listen", Addr(grpc_port)});
  const Etcdctl root(grpc_port, {.user = "root:" + kRootToken});
  const Etcdctl reader(grpc_port, {.user = "reader:" + kReaderToken});

  // A watch of every key by a caller who may read app/ only: as a listing
  // of them, it is opened and carries the events of app/.
  auto everything = reader.Start({"watch", "--prefix", ""});
  // etcdctl prints nothing when its watch is created: put until the first
  // app/ event shows, then the rest.
  bool ready = false;
  for (int i = 0; i < 50 && !ready; ++i) {
    root.Ok({"put", "app/ready", std::to_string(i)});
    ready = everything->WaitForStdout(
        [](const std::string& out) { return out.find("app/ready\n") != std::string::npos; },
        std::chrono::milliseconds(200));
  }
  REQUIRE_MESSAGE(ready, everything->Shown());
  root.Ok({"put", "secret/k", "hidden"});
  root.Ok({"put", "app/k", "shown"});
  const bool seen = everything->WaitForStdout(
      [](const std::string& out) { return out.find("app/k\nshown\n") != std::string::npos; });
  CHECK_MESSAGE(seen, everything->Shown());
  everything->Stop();
  CHECK_MESSAGE(everything->Stdout().find("secret") == std::string::npos, everything->Stdout());

  // A key outside the grants: etcd's refusal, in the stream; etcdctl says so.
  const EtcdctlRun refused = reader.Exec({"watch", "secret/k"});
  INFO(refused.Shown());
  CHECK(refused.exit_code() != 0);
  CHECK(refused.err().find("etcdserver: permission denied") != std::string::npos);
  CHECK(refused.out().empty());
}

TEST_CASE("etcd gRPC: a client certificate revoked in tls.client_crl is refused once SIGHUP rereads it, and counted") {
  Pki pki;
  pki.Client("laptop", "backup");
  TempDir tmp;
  const fs::path crl = tmp / "client.crl";
  pki.Crl(crl);
  const int grpc_port = FreePort();
  auto server = ServeTls(tmp, pki,
                         {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"), "--tls-client-ca",
                          pki("ca.pem"), "--tls-client-crl", crl.string(), "--etcd-grpc-listen", Addr(grpc_port)},
                         true);
  const Etcdctl laptop(grpc_port, {.cacert = pki("ca.pem"), .cert = pki("laptop.pem"), .key = pki("laptop.key")});
  CHECK(laptop.Ok({"put", "k", "v"}) == "OK\n");

  pki.Revoke("laptop");
  pki.Crl(crl);
  REQUIRE(::kill(server->pid(), SIGHUP) == 0);
  REQUIRE(Eventually([&] { return server->Stderr().find("reloaded the client certificate revocation list") !=
                                  std::string::npos; }));
  const Seen revoked = See(laptop, {"get", "k"});
  CHECK(revoked.exit_code != 0);
  CHECK(revoked.out.empty());
  CHECK(server->Stderr().find("certificate revoked") != std::string::npos);
  // Another certificate of the CA is still served.
  CHECK(Etcdctl(grpc_port, {.cacert = pki("ca.pem"), .cert = pki("client.pem"), .key = pki("client.key")})
            .Ok({"get", "k", "--print-value-only"}) == "v\n");

  httplib::SSLClient https("127.0.0.1", server->port(), pki("client.pem"), pki("client.key"));
  https.set_ca_cert_path(pki("ca.pem"));
  https.enable_server_certificate_verification(true);
  auto metrics = https.Get("/metrics");
  REQUIRE(metrics);
  CHECK(Sample(metrics->body, R"(kvctl_tls_handshake_failures_total{reason="bad_client_certificate"})") >= 1);
}

TEST_CASE("etcd gRPC: over the rate limit a call is refused with RESOURCE_EXHAUSTED, etcd's too many requests") {
  const int grpc_port = FreePort();
  KvServer server({"--ratelimit-rate", "1", "--ratelimit-burst", "2", "--etcd-grpc-listen", Addr(grpc_port)});
  const CliResult ranges = RunProgram({std::string(KVCTL_SOURCE_DIR) + "/tests/e2e/python_clients/etcd3_admission.py",
                                       Addr(grpc_port), "ranges", "6"});
  REQUIRE(ranges.exit_code == 0);
  size_t ok = 0, limited = 0;
  for (const std::string& line : Lines(ranges.out)) {
    if (line == "OK") ++ok;
    if (line == "RESOURCE_EXHAUSTED etcdserver: too many requests") ++limited;
  }
  INFO(ranges.out);
  CHECK(ok + limited == 6);
  CHECK(limited >= 3);  // a burst of 2, and at most one more token in the run's time
  CHECK(Etcdctl(grpc_port).Exec({"get", "x"}).err().find("Error: etcdserver: too many requests") != std::string::npos);

  HttpClient http(server.port());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // /metrics shares the client's bucket
  const HttpResponse metrics = http.Request("GET", "/metrics");
  REQUIRE(metrics.status == 200);
  CHECK(Sample(metrics.body, R"(kvctl_grpc_requests_total{route="etcd_grpc",method="/etcdserverpb.KV/Range",code="RESOURCE_EXHAUSTED"})") >=
        static_cast<double>(limited));
  CHECK(Sample(metrics.body, "kvctl_ratelimit_refusals_total") >= static_cast<double>(limited));
}

TEST_CASE("etcd gRPC: every call, refused and unserved ones too, is counted in /metrics by method and code, and logged") {
  const int grpc_port = FreePort();
  TempDir dir;
  KvServer server({"--auth-file", AuthFile(dir).string(), "--etcd-grpc-listen", Addr(grpc_port), "--log-requests",
                   "all", "--auth-metrics", "open"});
  const Etcdctl app(grpc_port, {.user = "app:" + kAppToken});
  CHECK(app.Ok({"put", "app/counted", "1"}) == "OK\n");
  app.Refused({"get", "other"}, 1, "etcdserver: permission denied");
  // Auth's user calls are not served: admitted, counted as "other", refused.
  app.Refused({"user", "list"}, 1,
              "rpc error: code = Unimplemented desc = kvctl: not implemented yet: /etcdserverpb.Auth/UserList (see "
              "docs/etcd.md)");

  HttpClient http(server.port());
  const HttpResponse metrics = http.Request("GET", "/metrics");
  REQUIRE(metrics.status == 200);
  auto calls = [&](const std::string& method, const std::string& code) {
    return Sample(metrics.body, "kvctl_grpc_requests_total{route=\"etcd_grpc\",method=\"" + method + "\",code=\"" +
                                    code + "\"}");
  };
  CHECK(calls("/etcdserverpb.KV/Put", "OK") == 1);
  CHECK(calls("/etcdserverpb.KV/Range", "PERMISSION_DENIED") == 1);
  CHECK(calls("/etcdserverpb.Auth/Authenticate", "OK") >= 3);  // each etcdctl run logs in
  CHECK(calls("other", "UNIMPLEMENTED") == 1);
  CHECK(Sample(metrics.body, R"(kvctl_grpc_request_duration_seconds_count{route="etcd_grpc",method="/etcdserverpb.KV/Put"})") == 1);
  CHECK(Sample(metrics.body, R"(kvctl_auth_failures_total{reason="forbidden"})") == 1);

  // The request log: method = gRPC's, status = grpc-gateway's for its
  // code, error = the code's name, identity = the token's name.
  const std::string log = server.process().Stderr();
  INFO(log);
  CHECK(log.find("method=/etcdserverpb.KV/Put route=etcd_grpc status=200 ") != std::string::npos);
  CHECK(log.find("identity=app") != std::string::npos);
  CHECK(log.find("method=/etcdserverpb.KV/Range route=etcd_grpc status=403 ") != std::string::npos);
  CHECK(log.find("error=PERMISSION_DENIED") != std::string::npos);
  CHECK(log.find("method=/etcdserverpb.Auth/UserList route=etcd_grpc status=501 ") != std::string::npos);
}

}  // namespace
}  // namespace kvctl::e2e
