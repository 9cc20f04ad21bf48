// The server's default TLS 1.2 ciphers (lib/server/tls.h), expanded by the
// OpenSSL kvctl runs with: only ECDHE key exchange (forward secrecy), only
// AEAD ciphers (no CBC), and none without authentication.
#include <openssl/ssl.h>

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "lib/server/tls.h"

namespace kvctl::server {
namespace {

TEST_CASE("the default TLS 1.2 ciphers are ECDHE with AEAD only: Mozilla intermediate without DHE") {
  std::unique_ptr<SSL_CTX, void (*)(SSL_CTX*)> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  REQUIRE(ctx != nullptr);
  REQUIRE(SSL_CTX_set_cipher_list(ctx.get(), std::string(kDefaultTls12Ciphers).c_str()) == 1);
  STACK_OF(SSL_CIPHER)* ciphers = SSL_CTX_get_ciphers(ctx.get());
  REQUIRE(ciphers != nullptr);
  int tls12 = 0;
  for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(ciphers, i);
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) continue;  // a TLS 1.3 suite: its own list
    ++tls12;
    const std::string name = SSL_CIPHER_get_name(c);
    CAPTURE(name);
    CHECK(SSL_CIPHER_get_kx_nid(c) == NID_kx_ecdhe);
    CHECK(SSL_CIPHER_is_aead(c) == 1);
    CHECK((SSL_CIPHER_get_auth_nid(c) == NID_auth_rsa || SSL_CIPHER_get_auth_nid(c) == NID_auth_ecdsa));
  }
  // AES-128/256-GCM and ChaCha20-Poly1305, each for RSA and ECDSA certificates.
  CHECK(tls12 == 6);
}

}  // namespace
}  // namespace kvctl::server
