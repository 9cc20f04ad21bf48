#include "lib/tls/tls_stream.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace kvctl::tls {
namespace {

int SocketOf(BIO* bio) { return static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio))); }

int SocketWrite(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::send(SocketOf(bio), data, static_cast<size_t>(size), MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int SocketRead(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  ssize_t n;
  do {
    n = ::recv(SocketOf(bio), data, static_cast<size_t>(size), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) BIO_set_retry_read(bio);
  return static_cast<int>(n);
}

long SocketCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

int SocketCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

// OpenSSL's own socket BIO writes with write(2): a closed peer would raise
// SIGPIPE. This one is the same over send(MSG_NOSIGNAL) and recv.
const BIO_METHOD* SocketMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "kvctl socket");
    if (m == nullptr) return m;
    BIO_meth_set_write(m, SocketWrite);
    BIO_meth_set_read(m, SocketRead);
    BIO_meth_set_ctrl(m, SocketCtrl);
    BIO_meth_set_create(m, SocketCreate);
    return m;
  }();
  return method;
}

bool IsIpAddress(std::string_view host) {
  const std::string h(host);
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

}  // namespace

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

std::shared_ptr<Context> Context::Make(Side side) {
  SSL_CTX* ctx = SSL_CTX_new(side == Side::kServer ? TLS_server_method() : TLS_client_method());
  if (ctx == nullptr) return nullptr;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  // The event loops retry a write with a buffer that may have moved or
  // grown, and take what part of it the socket accepted.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  // A peer that closes without close_notify has ended the session; HTTP
  // frames its messages itself, so nothing can be cut off unnoticed.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  return std::shared_ptr<Context>(new Context(ctx, side));
}

// The SSL_CTX first: its callbacks may point into what is kept.
Context::~Context() {
  SSL_CTX_free(ctx_);
  kept_.clear();
}

std::unique_ptr<Stream> Stream::Make(const std::shared_ptr<Context>& context, int fd,
                                     std::string_view server_name) {
  const BIO_METHOD* method = SocketMethod();
  if (method == nullptr) return nullptr;
  SSL* ssl = SSL_new(context->get());
  if (ssl == nullptr) return nullptr;
  BIO* bio = BIO_new(method);
  if (bio == nullptr) {
    SSL_free(ssl);
    return nullptr;
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
  SSL_set_bio(ssl, bio, bio);  // the session owns the BIO
  std::unique_ptr<Stream> stream(new Stream(context, ssl));
  if (context->side() == Context::Side::kServer) {
    SSL_set_accept_state(ssl);
    return stream;
  }
  SSL_set_connect_state(ssl);
  if (!server_name.empty()) {
    const std::string name(server_name);
    if (IsIpAddress(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, name.c_str());
      SSL_set1_host(ssl, name.c_str());
    }
  }
  return stream;
}

Stream::~Stream() { SSL_free(ssl_); }

IoResult Stream::Outcome(int ret) {
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_NONE: return {IoResult::kOk, 0};
    case SSL_ERROR_WANT_READ: return {IoResult::kWantRead, 0};
    case SSL_ERROR_WANT_WRITE: return {IoResult::kWantWrite, 0};
    case SSL_ERROR_ZERO_RETURN: return {IoResult::kClosed, 0};
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        error_ = errno != 0 ? std::strerror(errno) : "the connection closed";
        return {IoResult::kError, 0};
      }
      break;
    default: break;
  }
  error_ = OpenSslReasons();
  const long verify = SSL_get_verify_result(ssl_);
  if (!handshake_done_ && verify != X509_V_OK) {
    error_ += std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
  }
  return {IoResult::kError, 0};
}

IoResult Stream::Handshake() {
  if (handshake_done_) return {IoResult::kOk, 0};
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_do_handshake(ssl_);
  if (ret == 1) {
    handshake_done_ = true;
    return {IoResult::kOk, 0};
  }
  return Outcome(ret);
}

IoResult Stream::Read(char* buffer, size_t size) {
  ERR_clear_error();
  errno = 0;
  size_t n = 0;
  const int ret = SSL_read_ex(ssl_, buffer, size, &n);
  if (ret == 1) return {IoResult::kOk, n};
  return Outcome(ret);
}

IoResult Stream::Write(const char* data, size_t size) {
  if (size == 0) return {IoResult::kOk, 0};
  ERR_clear_error();
  errno = 0;
  size_t n = 0;
  const int ret = SSL_write_ex(ssl_, data, size, &n);
  if (ret == 1) return {IoResult::kOk, n};
  return Outcome(ret);
}

void Stream::Shutdown() {
  if (!handshake_done_) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

std::string Stream::VerifiedPeerCommonName() const {
  if (SSL_get_verify_result(ssl_) != X509_V_OK) return "";
  X509* cert = SSL_get1_peer_certificate(ssl_);
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

}  // namespace kvctl::tls
