#include "tests/e2e/pki.h"

#include <sys/wait.h>

#include <cstdlib>

#include <doctest/doctest.h>

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;

constexpr const char* kQuiet = " >/dev/null 2>&1";

int Sh(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string Quote(const fs::path& p) { return "'" + p.string() + "'"; }

}  // namespace

Pki::Pki() {
  Ca("ca", "kvctl test CA");
  Ca("rogue-ca", "some other CA");
  KeyAndCsr("server", "localhost");
  Sign("server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost");
  Client("client", "backup");
  KeyAndCsr("rogue", "backup");
  Sign("rogue", "rogue-ca", "");
}

void Pki::Client(const std::string& name, const std::string& cn) {
  KeyAndCsr(name, cn);
  Sign(name, "ca", "");
}

void Pki::Revoke(const std::string& name) {
  WriteCaConfig();
  REQUIRE(Sh("openssl ca -config " + Quote(dir / "ca.cnf") + " -revoke " + Quote(dir / (name + ".pem")) + kQuiet) == 0);
}

void Pki::Crl(const fs::path& file) {
  WriteCaConfig();
  REQUIRE(Sh("openssl ca -config " + Quote(dir / "ca.cnf") + " -gencrl -out " + Quote(file) + kQuiet) == 0);
}

void Pki::KeyAndCsr(const std::string& name, const std::string& cn) {
  REQUIRE(Sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + Quote(dir / (name + ".key")) +
             " -out " + Quote(dir / (name + ".csr")) + " -subj '/CN=" + cn + "'" + kQuiet) == 0);
}

void Pki::Ca(const std::string& name, const std::string& cn) {
  REQUIRE_MESSAGE(Sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -keyout " +
                     Quote(dir / (name + ".key")) + " -out " + Quote(dir / (name + ".pem")) + " -subj '/CN=" + cn +
                     "'" + kQuiet) == 0,
                  "openssl is needed to make the test certificates (scripts/deps.sh test)");
}

void Pki::Sign(const std::string& name, const std::string& by, const std::string& extensions) {
  std::string ext;
  if (!extensions.empty()) {
    WriteFile(dir / (name + ".ext"), extensions + "\n");
    ext = " -extfile " + Quote(dir / (name + ".ext"));
  }
  REQUIRE(Sh("openssl x509 -req -days 2 -in " + Quote(dir / (name + ".csr")) + " -CA " + Quote(dir / (by + ".pem")) +
             " -CAkey " + Quote(dir / (by + ".key")) + " -CAcreateserial -out " + Quote(dir / (name + ".pem")) + ext +
             kQuiet) == 0);
}

void Pki::WriteCaConfig() {
  if (fs::exists(dir / "ca.cnf")) return;
  WriteFile(dir / "index.txt", "");
  WriteFile(dir / "crlnumber", "01\n");
  WriteFile(dir / "ca.cnf", "[ca]\ndefault_ca = ca_default\n[ca_default]\ndatabase = " + (dir / "index.txt").string() +
                                "\ncrlnumber = " + (dir / "crlnumber").string() +
                                "\ndefault_md = sha256\ndefault_crl_days = 2\nprivate_key = " +
                                (dir / "ca.key").string() + "\ncertificate = " + (dir / "ca.pem").string() + "\n");
}

std::function<bool(int)> TlsReady(const Pki& pki, bool client_cert) {
  return [&pki, client_cert](int port) {
    httplib::SSLClient probe("127.0.0.1", port, client_cert ? pki("client.pem") : "",
                             client_cert ? pki("client.key") : "");
    probe.set_ca_cert_path(pki("ca.pem"));
    probe.enable_server_certificate_verification(true);
    probe.set_connection_timeout(1);
    probe.set_read_timeout(2);
    auto res = probe.Get("/readyz");
    return res && res->status == 200;
  };
}

}  // namespace kvctl::e2e
