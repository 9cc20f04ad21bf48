#include "lib/server/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509err.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace kvctl::server {
namespace {

// A missing or unreadable file gets the plain system reason, which says
// more than OpenSSL's "system lib".
core::Status CheckReadable(std::string_view setting, const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return core::Status::InvalidArgument(
        fmt::format("{} = {}: cannot read it: {}", setting, path, std::strerror(errno)));
  }
  return core::Status::Ok();
}

// At the start of each handshake: the client's certificate will be
// verified with the trust store as it is now (the CRL reread if its file
// changed), held by this session until it ends.
int UseCurrentTrust(SSL* ssl, int* /*alert*/, void* arg) {
  auto* trust = static_cast<ClientTrust*>(arg);
  trust->ReloadIfChanged();
  SSL_set0_verify_cert_store(ssl, trust->Acquire());
  return SSL_CLIENT_HELLO_SUCCESS;
}

core::Status SetVersionsAndCiphers(SSL_CTX* ctx, const TlsOptions& o) {
  if (o.min_version != "1.2" && o.min_version != "1.3") {
    return core::Status::InvalidArgument(
        fmt::format("tls.min_version = {} is not one of: 1.2, 1.3", o.min_version));
  }
  SSL_CTX_set_min_proto_version(ctx, o.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  // Both lists must name at least one cipher OpenSSL has; names it does not
  // know are otherwise skipped, as in every OpenSSL program.
  if (SSL_CTX_set_cipher_list(ctx, o.ciphers.c_str()) != 1) {
    return core::Status::InvalidArgument(fmt::format(
        "tls.ciphers = {} names no TLS 1.2 cipher this OpenSSL offers: {} (see openssl ciphers -v, or leave "
        "the default)",
        o.ciphers, tls::OpenSslReasons()));
  }
  if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, o.ciphersuites.c_str()) != 1) {
    return core::Status::InvalidArgument(fmt::format(
        "tls.ciphersuites = {} is not a list of TLS 1.3 cipher suites: {} (e.g. TLS_AES_128_GCM_SHA256, "
        "or leave the default)",
        o.ciphersuites, tls::OpenSslReasons()));
  }
  return core::Status::Ok();
}

}  // namespace

core::Result<std::string> ReadTlsFile(std::string_view setting, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return core::Status::InvalidArgument(fmt::format("{} = {}: cannot read it: {}", setting, path, std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

core::Status CheckGrpcCanHonour(const TlsOptions& o) {
  if (!o.enabled()) return core::Status::Ok();
  // gRPC 1.51 has no setting for either (its TLS takes the versions and
  // cipher lists of its own): refused rather than served otherwise than
  // the operator asked. Its own lists are within the defaults' (TLS 1.2
  // and 1.3; ECDHE with AES-GCM for TLS 1.2, every TLS 1.3 suite).
  constexpr std::string_view kWhy =
      "cannot be honoured on server.etcd_grpc_listen: Debian's gRPC (1.51) has no setting for it and accepts "
      "TLS 1.2 and 1.3 with its own ciphers (ECDHE with AES-GCM for TLS 1.2), which are within the defaults";
  if (o.min_version != "1.2") {
    return core::Status::InvalidArgument(fmt::format(
        "tls.min_version = {} {}; leave tls.min_version at 1.2, or turn server.etcd_grpc_listen off", o.min_version,
        kWhy));
  }
  if (o.ciphers != kDefaultTls12Ciphers) {
    return core::Status::InvalidArgument(fmt::format(
        "tls.ciphers = {} {}; leave tls.ciphers at its default, or turn server.etcd_grpc_listen off", o.ciphers, kWhy));
  }
  if (o.ciphersuites != kDefaultTls13Ciphersuites) {
    return core::Status::InvalidArgument(
        fmt::format("tls.ciphersuites = {} {}; leave tls.ciphersuites at its default, or turn "
                    "server.etcd_grpc_listen off",
                    o.ciphersuites, kWhy));
  }
  return core::Status::Ok();
}

core::Result<std::shared_ptr<tls::Context>> MakeServerTlsContext(const TlsOptions& o) {
  ERR_clear_error();
  if (o.key_file.empty()) {
    return core::Status::InvalidArgument("tls.cert is set but tls.key is not: give the certificate's private key too");
  }
  if (core::Status s = CheckReadable("tls.cert", o.cert_file); !s.ok()) return s;
  if (core::Status s = CheckReadable("tls.key", o.key_file); !s.ok()) return s;
  std::shared_ptr<tls::Context> context = tls::Context::Make(tls::Context::Side::kServer);
  if (context == nullptr) {
    return core::Status::IOError("cannot set up TLS: " + tls::OpenSslReasons());
  }
  SSL_CTX* ctx = context->get();
  if (core::Status s = SetVersionsAndCiphers(ctx, o); !s.ok()) return s;
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
    return core::Status::InvalidArgument(
        fmt::format("tls.cert = {} is not a PEM certificate (chain): {}", o.cert_file, tls::OpenSslReasons()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return core::Status::InvalidArgument(fmt::format(
          "tls.key = {} does not belong to the certificate in tls.cert = {}", o.key_file, o.cert_file));
    }
    return core::Status::InvalidArgument(fmt::format(
        "tls.key = {} is not an unencrypted PEM private key: {}", o.key_file, tls::OpenSslReasons()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return core::Status::InvalidArgument(fmt::format("tls.key = {} does not belong to the certificate in tls.cert = {}",
                                                     o.key_file, o.cert_file));
  }
  if (!o.client_ca_file.empty()) {
    if (core::Status s = CheckReadable("tls.client_ca", o.client_ca_file); !s.ok()) return s;
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca_file.c_str());
    if (names == nullptr || SSL_CTX_load_verify_locations(ctx, o.client_ca_file.c_str(), nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      return core::Status::InvalidArgument(fmt::format(
          "tls.client_ca = {} holds no usable PEM CA certificate: {}", o.client_ca_file, tls::OpenSslReasons()));
    }
    SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    if (!o.client_crl_file.empty()) {
      std::shared_ptr<ClientTrust> trust = o.client_trust;
      if (trust == nullptr) {
        auto loaded = ClientTrust::Load(o.client_ca_file, o.client_crl_file, o.logger);
        if (!loaded) return loaded.error();
        trust = std::move(*loaded);
      }
      // Each session verifies with the store its handshake began with; the
      // context's own parameters ask for the CRL check on every session.
      X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx), X509_V_FLAG_CRL_CHECK);
      SSL_CTX_set_client_hello_cb(ctx, UseCurrentTrust, trust.get());
      context->KeepAlive(std::move(trust));
    }
    // Session resumption would need a session id context; a fresh full
    // handshake per connection is simpler and keeps the check every time.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
  }
  return context;
}

}  // namespace kvctl::server
