#include "lib/server/tls.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509err.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

namespace kvctl::server {
namespace {

// OpenSSL's reasons for the last failure, oldest first, and clears them.
std::string OpenSslReasons() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

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

}  // namespace

core::Status ConfigureServerTls(SSL_CTX& ctx, const TlsOptions& o) {
  ERR_clear_error();
  if (o.key_file.empty()) {
    return core::Status::InvalidArgument("tls.cert is set but tls.key is not: give the certificate's private key too");
  }
  if (core::Status s = CheckReadable("tls.cert", o.cert_file); !s.ok()) return s;
  if (core::Status s = CheckReadable("tls.key", o.key_file); !s.ok()) return s;
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(&ctx, o.cert_file.c_str()) != 1) {
    return core::Status::InvalidArgument(
        fmt::format("tls.cert = {} is not a PEM certificate (chain): {}", o.cert_file, OpenSslReasons()));
  }
  if (SSL_CTX_use_PrivateKey_file(&ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return core::Status::InvalidArgument(fmt::format(
          "tls.key = {} does not belong to the certificate in tls.cert = {}", o.key_file, o.cert_file));
    }
    return core::Status::InvalidArgument(fmt::format(
        "tls.key = {} is not an unencrypted PEM private key: {}", o.key_file, OpenSslReasons()));
  }
  if (SSL_CTX_check_private_key(&ctx) != 1) {
    return core::Status::InvalidArgument(fmt::format("tls.key = {} does not belong to the certificate in tls.cert = {}",
                                                     o.key_file, o.cert_file));
  }
  if (!o.client_ca_file.empty()) {
    if (core::Status s = CheckReadable("tls.client_ca", o.client_ca_file); !s.ok()) return s;
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.client_ca_file.c_str());
    if (names == nullptr || SSL_CTX_load_verify_locations(&ctx, o.client_ca_file.c_str(), nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      return core::Status::InvalidArgument(fmt::format(
          "tls.client_ca = {} holds no usable PEM CA certificate: {}", o.client_ca_file, OpenSslReasons()));
    }
    SSL_CTX_set_client_CA_list(&ctx, names);  // takes ownership
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return core::Status::Ok();
}

std::string VerifiedPeerCommonName(const SSL* ssl) {
  if (ssl == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return "";
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return "";
  std::string out;
  X509_NAME* subject = X509_get_subject_name(cert);
  const int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (i >= 0) {
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n > 0) out.assign(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
  }
  X509_free(cert);
  return out;
}

}  // namespace kvctl::server
