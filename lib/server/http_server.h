// The HTTP transport of `kvctl serve`: cpp-httplib behind kvctl's own
// request/response types. The only file on the server side that includes
// httplib.h is http_server.cpp.
//
// Tuning (cpp-httplib 0.11.4 as Debian builds it; measured with wrk -c64):
// - TCP_NODELAY on: with Nagle and delayed ACK a response waits ~40 ms.
// - The listen backlog is raised to `listen_backlog` after binding (the
//   library compiles in 5, which drops connects under a burst of clients).
// - Keep-alive for up to keepalive_max_requests requests (the library's
//   default is 5, which reconnects constantly).
// - Each open connection holds a worker thread until it closes or idles
//   past keepalive_timeout, so `threads` must exceed the number of
//   concurrent keep-alive clients; the default (512) serves 256 with room.
// Thread safety: Stop() may be called from any thread, once Bind() is done.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "lib/core/status.h"
#include "lib/server/http_types.h"

namespace kvctl::server {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 7070;  // 0: any free port, see port()
  int threads = 512;
  int listen_backlog = 4096;
  size_t keepalive_max_requests = 100000;
  std::chrono::milliseconds keepalive_timeout{5000};
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds write_timeout{10000};
  // Bodies over this are refused with 413 from their Content-Length, before
  // they are read.
  size_t max_body_bytes = 1 << 20;
};

// Turns an error status the transport produced itself into kvctl's JSON.
using ErrorBodyMaker = std::function<HttpResponse(int status)>;

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  HttpServer(HttpServerOptions options, Handler handler, ErrorBodyMaker error_body);
  ~HttpServer();

  // Binds and listens. Busy when the address is taken.
  core::Status Bind();
  int port() const { return port_; }
  // Serves until Stop(); in-flight requests finish first.
  core::Status Serve();
  void Stop();

 private:
  struct Impl;
  HttpServerOptions options_;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> serve_entered_{false};
  std::atomic<bool> serve_done_{false};
};

}  // namespace kvctl::server
