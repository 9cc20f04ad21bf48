// etcd's gRPC face (server.etcd_grpc_listen, docs/etcd.md#grpc): what it
// refuses at start. What it answers is proven with Debian's etcdctl
// against it and against Debian's etcd (e2e_etcdctl_test.cpp).
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include "tests/e2e/harness.h"

namespace fs = std::filesystem;
using namespace kvctl::e2e;

TEST_CASE("etcd gRPC: refused at start with a rate limit or auth, which it does not apply yet, naming both settings") {
  TempDir tmp;
  const std::string grpc_addr = Addr(FreePort());
  {
    auto [code, err] = ServeRefused(tmp, {"--etcd-grpc-listen", grpc_addr, "--ratelimit-rate", "100"});
    CHECK(code != 0);
    CHECK_MESSAGE(err.find("server.etcd_grpc_listen") != std::string::npos, err);
    CHECK_MESSAGE(err.find("ratelimit.rate") != std::string::npos, err);
    CHECK(IsOneErrorLine(err));
  }
  {
    const fs::path auth = tmp / "auth.toml";
    WriteFile(auth, "[[tokens]]\nname = \"app\"\nsha256 = \"" + HashToken("secret") +
                        "\"\ngrants = [{ prefix = \"\", ops = [\"read\", \"write\"] }]\n");
    auto [code, err] = ServeRefused(tmp, {"--etcd-grpc-listen", grpc_addr, "--auth-file", auth.string()});
    CHECK(code != 0);
    CHECK_MESSAGE(err.find("server.etcd_grpc_listen") != std::string::npos, err);
    CHECK_MESSAGE(err.find("auth") != std::string::npos, err);
  }
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
