// etcd's gRPC face (server.etcd_grpc_listen, docs/etcd.md#grpc): what it
// refuses at start. What it answers is proven with Debian's etcdctl
// against it and against Debian's etcd (e2e_etcdctl_test.cpp), and how it
// admits its callers in e2e_etcd_grpc_admission_test.cpp.
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"
#include "tests/e2e/pki.h"

namespace fs = std::filesystem;
using namespace kvctl::e2e;

TEST_CASE("etcd gRPC: TLS settings gRPC 1.51 cannot honour are refused at start, naming the setting and why") {
  Pki pki;
  TempDir tmp;
  const std::vector<std::string> tls = {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"),
                                        "--etcd-grpc-listen", Addr(FreePort())};
  struct Case {
    std::vector<std::string> flags;
    std::string setting;
  };
  for (const Case& c : std::vector<Case>{{{"--tls-min-version", "1.3"}, "tls.min_version = 1.3"},
                                         {{"--tls-ciphers", "ECDHE+AESGCM"}, "tls.ciphers = ECDHE+AESGCM"},
                                         {{"--tls-ciphersuites", "TLS_AES_128_GCM_SHA256"},
                                          "tls.ciphersuites = TLS_AES_128_GCM_SHA256"}}) {
    std::vector<std::string> args = tls;
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    auto [code, err] = ServeRefused(tmp, args);
    CHECK(code == 2);
    CHECK_MESSAGE(err.find(c.setting) != std::string::npos, err);
    CHECK_MESSAGE(err.find("server.etcd_grpc_listen") != std::string::npos, err);
    CHECK_MESSAGE(err.find("gRPC (1.51) has no setting for it") != std::string::npos, err);
    CHECK(IsOneErrorLine(err));
  }
  // The same settings without the gRPC listener are served.
  std::vector<std::string> args = {"--tls-cert", pki("server.pem"), "--tls-key", pki("server.key"),
                                   "--tls-min-version", "1.3"};
  ServerOptions o{(tmp / "data").string(), FreePort(), args, {}};
  o.ready_probe = TlsReady(pki, false);
  ServerProcess served(tmp.path(), std::move(o));
  served.WaitReady();
}

TEST_CASE("etcd gRPC: an address already taken is refused at start, naming the setting") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t len = sizeof(addr);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  const int taken = ntohs(addr.sin_port);
  TempDir tmp;
  auto [code, err] = ServeRefused(tmp, {"--etcd-grpc-listen", Addr(taken)});
  ::close(fd);
  CHECK(code != 0);
  CHECK_MESSAGE(err.find("server.etcd_grpc_listen") != std::string::npos, err);
  CHECK_MESSAGE(err.find(Addr(taken)) != std::string::npos, err);
}
