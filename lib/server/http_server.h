// The HTTP/1.1 transport of `kvctl serve`: epoll event loops over
// non-blocking sockets, behind kvctl's own request/response types.
//
// Why its own (README "Server"): with cpp-httplib every keep-alive
// connection held a blocking thread, and GET throughput stopped at about a
// third of nginx's on two cores; a few event loops serve thousands of
// connections with a system call or two per request.
//
// Shape:
// - `io_threads` event loops. Loop 0 accepts and hands connections out in
//   turn; a connection then lives on one loop (no locks on its state).
// - GET, HEAD and OPTIONS are answered on the loop: they never wait.
//   Other methods may wait for the disk (a write under fsync = "always"
//   waits for its group commit). The async handler, when set, takes the
//   ones it can answer without blocking (key writes: the store calls back
//   once the change is durable); the rest run on a pool of `threads`
//   worker threads. Either way the loop sends the answer when it comes.
// - Pipelined requests are answered in order; answers to one read are sent
//   with one write.
// - Two more kinds of answer (http_types.h), neither holding a thread:
//   a stream (HttpResponse::stream: a watch) sends its head, then its body
//   chunked (HTTP/1.1) or up to the close (HTTP/1.0), pulled from its
//   source on the loop whenever less than 1 MiB waits to be sent; the
//   source wakes the loop from any thread when it has more. The client
//   going away cancels the source; requests pipelined behind a stream wait
//   for its end. A deferred answer (HttpResponse::deferred, from a GET: a
//   long poll) is sent once its reply comes, from any thread.
//   Stop() ends every stream at once with its terminating chunk and hurries
//   every deferred answer.
// - Admission first: once a request's head is parsed, and before its body
//   is read or "100 Continue" is sent, the admitter (set_admitter) sees it.
//   An answer it gives is final (a refusal, or what the head alone
//   decides): the body is not read, and if it has not all arrived the
//   connection closes after the answer and a short lingering read, so an
//   unauthenticated client never uploads a body it is refused for.
// - The head is read as http_wire.h says (RFC 9112): a bare LF or CR is
//   400 at once, empty lines before the request line are skipped, an
//   absolute-form target is taken by its path, "*" is for OPTIONS only.
// - The body is framed by Content-Length only. Decided from the head,
//   before a body byte is read: 413 over max_body_bytes, 411 for chunked,
//   400 for an unreadable length, a missing Host (HTTP/1.1) or two Host
//   fields; the connection then closes after a short lingering read, so
//   the client sees the answer and not a reset; 413 and 411 come after
//   admission. Expect: 100-continue (on HTTP/1.1 only: 1.0 has no 1xx) gets
//   "100 Continue" once the request is admitted, or the refusal instead.
// - Limits, so a slow or hostile client cannot hold the server: the request
//   line (8 KiB, else 414) and the head (max_header_bytes, else 431; at
//   most 100 header fields); a request must arrive whole within
//   read_timeout (else 408 and close); a TLS handshake must finish within
//   read_timeout (else the connection closes: there is no session to
//   answer on); an idle
//   keep-alive connection closes after keepalive_timeout; a connection
//   whose client takes no byte of its answers for write_timeout closes; at
//   most max_connections are open (more get 503 and are closed); a client
//   that pipelines without reading its answers gets no further request
//   parsed, and is not read from, while 1 MiB of answers waits for it (one
//   answer may be larger); what is already buffered is parsed once the
//   answers drain.
// - Stop(read_grace): stops accepting, closes idle connections at once,
//   finishes the requests in flight (their answers say Connection: close),
//   then Serve() returns once every connection is closed and the worker
//   pool is idle. A request still arriving is read on for at most
//   read_grace more (and within read_timeout), then answered 408: a slow
//   client cannot hold the stop past the caller's own deadline.
//
// - TLS (options.tls): each connection's session runs on its loop through
//   lib/tls/tls_stream.h, non-blocking: the handshake, then every read and
//   write, wait for whichever of readable or writable OpenSSL asks for. A
//   verified client certificate's CN reaches the handler as
//   HttpRequest::peer_common_name. Over max_connections, a TLS connection
//   is closed without an answer (a 503 needs a handshake first). A
//   handshake that fails or times out is reported to
//   options.on_tls_failure.
//
// Thread safety: Stop() may be called from any thread, once Bind() is done.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/status.h"
#include "lib/server/http_types.h"
#include "lib/server/tls.h"

namespace kvctl::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 7070;  // 0: any free port, see port()
  int io_threads = 0;  // event loops; 0: one per CPU core
  int threads = 16;    // worker threads for requests that may block and are not async
  int listen_backlog = 4096;
  int max_connections = 10000;
  size_t keepalive_max_requests = 100000;
  std::chrono::milliseconds keepalive_timeout{5000};
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds write_timeout{10000};
  // Bodies over this are refused with 413 from their Content-Length, before
  // they are read.
  size_t max_body_bytes = 1 << 20;
  // The request line plus header fields; more is refused with 431. At
  // least 8 KiB, the request line's own limit (414).
  size_t max_header_bytes = 16 * 1024;
  // HTTPS when tls.cert is set; mutual TLS with tls.client_ca.
  TlsOptions tls;
  // Called from a loop thread for each TLS handshake that fails or times
  // out: the client's address, why (a fixed set), and OpenSSL's words. The
  // transport logs nothing itself.
  std::function<void(std::string_view remote_addr, TlsFailure why, std::string_view detail)> on_tls_failure;
};

// Turns an error status the transport decided itself (before any handler
// ran) into kvctl's JSON answer; called once per refusal, from a loop
// thread, so it may count and log it. `problem` says what was wrong with a
// 400 ("" otherwise).
using ErrorBodyMaker =
    std::function<HttpResponse(int status, std::string_view problem, std::string_view remote_addr)>;

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  HttpServer(HttpServerOptions options, Handler handler, ErrorBodyMaker error_body);
  ~HttpServer();

  // Optional, set before Serve(): tries a request that may wait (not GET,
  // HEAD, OPTIONS) without blocking. True when it took the request and
  // will call the reply exactly once, from any thread; false sends the
  // request to the worker pool and `handler`. With it, a write waits for
  // its group commit without holding a thread.
  using Reply = std::function<void(HttpResponse)>;
  // It may move parts of the request out (it is not used again).
  using AsyncHandler = std::function<bool(HttpRequest&, Reply)>;
  void set_async_handler(AsyncHandler handler);

  // Optional, set before Serve(): called once a request's head is parsed,
  // before its body is read and before "100 Continue", on a loop thread
  // (so it must not block). An answer returned here is final: the request
  // goes no further. Otherwise the request, with what the admitter wrote
  // into it (HttpRequest::admission), goes on to the handlers once its
  // body is in.
  using Admitter = std::function<std::optional<HttpResponse>(HttpRequest&)>;
  void set_admitter(Admitter admitter);

  // Binds and listens. Busy when the address is taken; InvalidArgument
  // when the TLS files are unusable.
  core::Status Bind();
  int port() const { return port_; }
  // Serves until Stop(); in-flight requests finish first.
  core::Status Serve();
  void Stop(std::chrono::milliseconds read_grace = std::chrono::milliseconds::max());

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace kvctl::server
