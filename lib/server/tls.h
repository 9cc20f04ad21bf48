// TLS for `kvctl serve`, on OpenSSL, independent of the HTTP transport:
// the transport makes the SSL_CTX and hands it here to be set up, and asks
// here who the peer is.
//
// - The certificate file may hold a chain (server certificate first).
// - TLS 1.2 is the oldest version accepted.
// - With a client CA file, every client must present a certificate that
//   chains to it; the handshake fails otherwise (mutual TLS).
#pragma once

#include <string>

#include <openssl/ssl.h>

#include "lib/core/status.h"

namespace kvctl::server {

struct TlsOptions {
  std::string cert_file;       // PEM; empty: plain HTTP
  std::string key_file;        // PEM, unencrypted
  std::string client_ca_file;  // PEM; empty: client certificates are not asked for

  bool enabled() const { return !cert_file.empty(); }
};

// Loads the certificate and key into `ctx` and checks they belong
// together; with a client CA, requires and verifies client certificates.
// InvalidArgument naming the setting, the file and OpenSSL's reason.
core::Status ConfigureServerTls(SSL_CTX& ctx, const TlsOptions& options);

// The subject Common Name of the peer's certificate when it was presented
// and verified; "" otherwise.
std::string VerifiedPeerCommonName(const SSL* ssl);

}  // namespace kvctl::server
