// A throwaway PKI for the TLS tests, made with the openssl command line in
// a temporary directory (no private key is checked in): a CA, a server
// certificate for 127.0.0.1 and localhost, a client certificate (CN=backup)
// from that CA, and one with the same CN from another CA the server does
// not trust (rogue). Client() makes more; Revoke() and Crl() keep the CA's
// revocation list with `openssl ca`. Fails the test when openssl cannot.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {

struct Pki {
  Pki();

  // The path of one of its files: "ca.pem", "server.key", "client.pem", ...
  std::string operator()(const std::string& file) const { return (dir / file).string(); }

  // name.key and name.pem: a client certificate for `cn` from the CA.
  void Client(const std::string& name, const std::string& cn);
  // Adds name.pem to the CA's list of revoked certificates.
  void Revoke(const std::string& name);
  // Writes the CA's current revocation list (PEM) to `file`.
  void Crl(const std::filesystem::path& file);

  TempDir dir;

 private:
  void KeyAndCsr(const std::string& name, const std::string& cn);
  void Ca(const std::string& name, const std::string& cn);
  void Sign(const std::string& name, const std::string& by, const std::string& extensions);
  // The least `openssl ca` needs to revoke and publish a CRL.
  void WriteCaConfig();
};

// A readiness probe over https (ServerOptions::ready_probe) trusting the
// PKI's CA, presenting its client certificate when `client_cert`.
std::function<bool(int port)> TlsReady(const Pki& pki, bool client_cert);

}  // namespace kvctl::e2e
