// TLS over a non-blocking socket, for the programs' own event loops (the
// server's transport and the bench client): OpenSSL with a socket BIO whose
// writes use send(MSG_NOSIGNAL), so a peer that goes away is an error value
// and never SIGPIPE.
//
// Each call does what the socket allows now and says what it waits for:
// kWantRead (wait until the socket is readable, then call again) or
// kWantWrite (until it is writable). After kWantWrite from Write(), call
// Write() again with the same bytes (more may be appended after them; the
// buffer may move).
//
// Who configures what: lib/server/tls.cpp makes the server's context
// (certificate, key, client CA), lib/bench/bench_tls.cpp the client's.
//
// Thread safety: a Stream is used by one thread at a time; a Context may be
// shared by streams on any thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct ssl_st;
struct ssl_ctx_st;

namespace kvctl::tls {

// OpenSSL's reasons for the last failures on this thread, oldest first, and
// clears them; "unknown OpenSSL error" when there are none.
std::string OpenSslReasons();

// An SSL_CTX, freed with the last owner.
class Context {
 public:
  enum class Side { kServer, kClient };
  // Null when OpenSSL cannot make one (out of memory).
  static std::shared_ptr<Context> Make(Side side);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  ssl_ctx_st* get() const { return ctx_; }
  Side side() const { return side_; }

  // Keeps `owner` alive as long as the context: for what the context's
  // callbacks were given a raw pointer to. Call before sharing the context.
  void KeepAlive(std::shared_ptr<void> owner) { kept_.push_back(std::move(owner)); }

 private:
  Context(ssl_ctx_st* ctx, Side side) : ctx_(ctx), side_(side) {}
  ssl_ctx_st* ctx_;
  Side side_;
  std::vector<std::shared_ptr<void>> kept_;
};

struct IoResult {
  enum Status {
    kOk,         // done; `bytes` moved (for Read/Write)
    kWantRead,   // call again once the socket is readable
    kWantWrite,  // call again once the socket is writable
    kClosed,     // the peer ended the session (close_notify or EOF)
    kError,      // the session is unusable; error() says why
  };
  Status status = kOk;
  size_t bytes = 0;
};

class Stream {
 public:
  // A session on connected socket `fd` (not owned). For a client,
  // `server_name` is sent as SNI and, when the context verifies peers,
  // checked against the server's certificate (DNS name or IP address).
  // Null when OpenSSL cannot make one.
  static std::unique_ptr<Stream> Make(const std::shared_ptr<Context>& context, int fd,
                                      std::string_view server_name = {});
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Runs the handshake as far as the socket allows: kOk once complete.
  IoResult Handshake();
  bool handshake_done() const { return handshake_done_; }
  IoResult Read(char* buffer, size_t size);
  IoResult Write(const char* data, size_t size);
  // Sends close_notify if the socket takes it now; never waits.
  void Shutdown();

  // The subject Common Name of the peer's certificate when it presented
  // one and it was verified; "" otherwise.
  std::string VerifiedPeerCommonName() const;
  // Why the last call failed (kError), for logs.
  const std::string& error() const { return error_; }

 private:
  Stream(std::shared_ptr<Context> context, ssl_st* ssl) : context_(std::move(context)), ssl_(ssl) {}
  IoResult Outcome(int ret);

  std::shared_ptr<Context> context_;
  ssl_st* ssl_;
  bool handshake_done_ = false;
  std::string error_;
};

}  // namespace kvctl::tls
