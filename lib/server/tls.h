// TLS for `kvctl serve`: the server's OpenSSL context, made from the
// settings tls.cert, tls.key and tls.client_ca. The transport
// (http_server.cpp) runs each connection's session on it through
// lib/tls/tls_stream.h, non-blocking, on its event loops.
//
// - The certificate file may hold a chain (server certificate first).
// - TLS 1.2 is the oldest version accepted (tls.min_version may raise it to
//   1.3). TLS 1.2 offers only ECDHE key exchange with AEAD ciphers by
//   default (Mozilla's "intermediate" list without DHE): forward secrecy,
//   no CBC, no static RSA. tls.ciphers and tls.ciphersuites (TLS 1.3)
//   change the lists, in OpenSSL's syntax.
// - With a client CA file, every client must present a certificate that
//   chains to it (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT); the
//   handshake fails otherwise (mutual TLS). The certificate's subject CN is
//   then the client's identity for auth ([[auth.certs]]).
// - With a client CRL file as well, a revoked client certificate fails the
//   handshake; the file is reread on change (client_trust.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "lib/core/logger.h"
#include "lib/core/status.h"
#include "lib/server/client_trust.h"
#include "lib/tls/tls_stream.h"

namespace kvctl::server {

// The defaults of tls.ciphers and tls.ciphersuites (lib/config/settings.cpp
// holds the same text; a unit test checks they agree).
// TLS 1.2: ECDHE key exchange with AES-GCM or ChaCha20-Poly1305, for ECDSA
// or RSA certificates: the six ciphers of Mozilla's "intermediate" TLS 1.2
// list that have no DHE, in OpenSSL's words.
inline constexpr std::string_view kDefaultTls12Ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
// TLS 1.3: "" leaves OpenSSL's own list (AES-256-GCM, ChaCha20-Poly1305,
// AES-128-GCM): every TLS 1.3 suite is AEAD with forward secrecy.
inline constexpr std::string_view kDefaultTls13Ciphersuites = "";

struct TlsOptions {
  std::string cert_file;        // PEM; empty: plain HTTP
  std::string key_file;         // PEM, unencrypted
  std::string client_ca_file;   // PEM; empty: client certificates are not asked for
  std::string client_crl_file;  // PEM CRLs of client_ca; empty: revocation is not checked
  std::string min_version = "1.2";  // "1.2" or "1.3"
  std::string ciphers{kDefaultTls12Ciphers};            // TLS 1.2, OpenSSL cipher list syntax
  std::string ciphersuites{kDefaultTls13Ciphersuites};  // TLS 1.3; "": OpenSSL's
  // With client_crl_file: the trust store to use, so its owner can reload
  // it (SIGHUP); null: MakeServerTlsContext loads one of its own.
  std::shared_ptr<ClientTrust> client_trust;
  core::Logger* logger = nullptr;  // CRL (re)loads; may be null

  bool enabled() const { return !cert_file.empty(); }
};

// The server context with the certificate and key loaded and checked to
// belong together, the protocol versions and ciphers set; with a client
// CA, client certificates required and verified (and checked against the
// CRL when there is one). InvalidArgument naming the setting, the file or
// value and OpenSSL's reason.
core::Result<std::shared_ptr<tls::Context>> MakeServerTlsContext(const TlsOptions& options);

// The text of one of the TLS files, for a TLS stack that takes PEM texts
// rather than files (gRPC's). InvalidArgument naming the setting and the
// file when it cannot be read.
core::Result<std::string> ReadTlsFile(std::string_view setting, const std::string& path);

// Whether etcd's gRPC listener, whose TLS is Debian's gRPC 1.51's, can
// honour these settings as the JSON listeners do: InvalidArgument naming
// the first it cannot (tls.min_version 1.3; tls.ciphers or
// tls.ciphersuites other than their defaults) and why.
core::Status CheckGrpcCanHonour(const TlsOptions& options);

}  // namespace kvctl::server
