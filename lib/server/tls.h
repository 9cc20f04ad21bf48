// TLS for `kvctl serve`: the server's OpenSSL context, made from the
// settings tls.cert, tls.key and tls.client_ca. The transport
// (http_server.cpp) runs each connection's session on it through
// lib/tls/tls_stream.h, non-blocking, on its event loops.
//
// - The certificate file may hold a chain (server certificate first).
// - TLS 1.2 is the oldest version accepted.
// - With a client CA file, every client must present a certificate that
//   chains to it (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT); the
//   handshake fails otherwise (mutual TLS). The certificate's subject CN is
//   then the client's identity for auth ([[auth.certs]]).
#pragma once

#include <memory>
#include <string>

#include "lib/core/status.h"
#include "lib/tls/tls_stream.h"

namespace kvctl::server {

struct TlsOptions {
  std::string cert_file;       // PEM; empty: plain HTTP
  std::string key_file;        // PEM, unencrypted
  std::string client_ca_file;  // PEM; empty: client certificates are not asked for

  bool enabled() const { return !cert_file.empty(); }
};

// The server context with the certificate and key loaded and checked to
// belong together; with a client CA, client certificates required and
// verified. InvalidArgument naming the setting, the file and OpenSSL's
// reason.
core::Result<std::shared_ptr<tls::Context>> MakeServerTlsContext(const TlsOptions& options);

}  // namespace kvctl::server
