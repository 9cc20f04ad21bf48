#include "lib/bench/bench_tls.h"

#include <openssl/ssl.h>
#include <poll.h>

#include <fmt/format.h>

namespace kvctl::bench {

core::Result<std::shared_ptr<tls::Context>> MakeClientTlsContext(const TlsClientOptions& o) {
  std::shared_ptr<tls::Context> context = tls::Context::Make(tls::Context::Side::kClient);
  if (context == nullptr) return core::Status::IOError("cannot set up TLS: " + tls::OpenSslReasons());
  SSL_CTX* ctx = context->get();
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  const int loaded = o.cacert.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                      : SSL_CTX_load_verify_locations(ctx, o.cacert.c_str(), nullptr);
  if (loaded != 1) {
    return core::Status::InvalidArgument(
        fmt::format("cannot load the CA certificates ({}): {}",
                    o.cacert.empty() ? "the system's" : "--cacert " + o.cacert, tls::OpenSslReasons()));
  }
  if (!o.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1) {
      return core::Status::InvalidArgument(
          fmt::format("--cert {} is not a PEM certificate: {}", o.cert, tls::OpenSslReasons()));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      return core::Status::InvalidArgument(fmt::format(
          "--key {} is not the unencrypted PEM key of --cert {}: {}", o.key, o.cert, tls::OpenSslReasons()));
    }
  }
  return context;
}

core::Status ProbeHandshake(const std::shared_ptr<tls::Context>& context, int fd, const std::string& host,
                            std::chrono::milliseconds timeout) {
  std::unique_ptr<tls::Stream> stream = tls::Stream::Make(context, fd, host);
  if (stream == nullptr) return core::Status::IOError("cannot set up TLS: " + tls::OpenSslReasons());
  // With TLS 1.3 the client's handshake is done before the server has
  // judged the client's certificate; its refusal arrives with the first
  // read. So the probe asks for /healthz and waits for the answer's first
  // bytes.
  const std::string request = fmt::format("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", host);
  size_t sent = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    tls::IoResult r = stream->Handshake();
    if (r.status == tls::IoResult::kOk && sent < request.size()) {
      r = stream->Write(request.data() + sent, request.size() - sent);
      sent += r.bytes;
      if (r.status == tls::IoResult::kOk) continue;
    } else if (r.status == tls::IoResult::kOk) {
      char answer[64];
      r = stream->Read(answer, sizeof answer);
      if (r.status == tls::IoResult::kOk) return core::Status::Ok();
    }
    if (r.status == tls::IoResult::kClosed || r.status == tls::IoResult::kError) {
      return core::Status::Unavailable(fmt::format(
          "the TLS handshake with {} failed: {} (check --cacert, and --cert/--key if the server requires "
          "client certificates)",
          host, r.status == tls::IoResult::kClosed ? "the server closed the connection" : stream->error()));
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, static_cast<short>(r.status == tls::IoResult::kWantRead ? POLLIN : POLLOUT), 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return core::Status::Unavailable(fmt::format("the TLS handshake with {} did not finish within {} ms", host,
                                                   timeout.count()));
    }
  }
}

}  // namespace kvctl::bench
