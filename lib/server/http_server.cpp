#include "lib/server/http_server.h"

#include <sys/socket.h>

#include <cerrno>
#include <charconv>
#include <cstring>

#include <thread>

#include <fmt/format.h>
#include <httplib.h>

namespace kvctl::server {
namespace {

// Gives access to the listening socket, which the library keeps protected,
// so its backlog can be raised after binding.
class TunedServer : public httplib::Server {
 public:
  int listening_socket() const { return svr_sock_; }
};

// Matches every path, newlines included (the path is percent-decoded by
// the library; kvctl routes on the raw target instead).
constexpr const char* kAnyPath = R"([\s\S]*)";

std::pair<time_t, time_t> SecUsec(std::chrono::milliseconds d) {
  return {static_cast<time_t>(d.count() / 1000), static_cast<time_t>((d.count() % 1000) * 1000)};
}

}  // namespace

struct HttpServer::Impl {
  TunedServer server;
};

HttpServer::HttpServer(HttpServerOptions options, Handler handler, ErrorBodyMaker error_body)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  httplib::Server& s = impl_->server;
  const int threads = options_.threads;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  s.set_tcp_nodelay(true);
  s.set_keep_alive_max_count(options_.keepalive_max_requests);
  s.set_keep_alive_timeout(std::max<time_t>(1, static_cast<time_t>(options_.keepalive_timeout.count() / 1000)));
  auto [rs, ru] = SecUsec(options_.read_timeout);
  s.set_read_timeout(rs, ru);
  auto [ws, wu] = SecUsec(options_.write_timeout);
  s.set_write_timeout(ws, wu);
  s.set_payload_max_length(options_.max_body_bytes);

  // Requests reach the handler from two places: the pre-routing hook below
  // (before the library reads a body) and the library's own routing (after
  // it has read the body into req.body).
  auto call = [handler](const httplib::Request& req, httplib::Response& res, std::string body) {
    HttpRequest r;
    r.method = req.method;
    std::string_view target = req.target;
    const size_t q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    r.headers.reserve(req.headers.size());
    for (const auto& [k, v] : req.headers) r.headers.emplace_back(k, v);
    r.body = std::move(body);
    r.remote_addr = req.remote_addr;

    HttpResponse out = handler(r);
    res.status = out.status;
    for (auto& [k, v] : out.headers) res.set_header(k.c_str(), v);
    if (!out.content_type.empty()) res.set_content(std::move(out.body), out.content_type.c_str());
  };
  auto adapt = [call](const httplib::Request& req, httplib::Response& res) { call(req, res, req.body); };
  s.Get(kAnyPath, adapt);
  s.Put(kAnyPath, adapt);
  s.Post(kAnyPath, adapt);
  s.Delete(kAnyPath, adapt);
  s.Patch(kAnyPath, adapt);
  s.Options(kAnyPath, adapt);

  // Decided from the headers alone, before any body byte is read:
  // - a Content-Length over the limit: 413 now, and the connection closes
  //   (the library would otherwise read and discard the whole body first);
  // - a chunked body: 411, since its size is unknown until it has been read;
  // - a write with neither header has an empty body (RFC 9112 6.3), which
  //   the library would refuse with a bare 400;
  // - methods the library has no handler slot for (TRACE): the API's 405.
  const size_t max_body = options_.max_body_bytes;
  // The status a body's headers alone decide: 413 (too large), 411 (size
  // unknown), 400 (unreadable Content-Length); 0 when the body may come.
  auto body_refusal = [max_body](const httplib::Request& req) {
    if (req.has_header("Content-Length")) {
      const std::string len = req.get_header_value("Content-Length");
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), n);
      if (ec != std::errc() || end != len.data() + len.size()) return 400;
      return n > max_body ? 413 : 0;
    }
    return req.has_header("Transfer-Encoding") ? 411 : 0;
  };
  auto refuse = [error_body](httplib::Response& res, int status) {
    HttpResponse out = error_body(status);
    res.status = status;
    res.set_header("Connection", "close");
    res.set_content(out.body, out.content_type.c_str());
  };
  // A client that asks "Expect: 100-continue" is told no before it sends a
  // body that would be refused.
  s.set_expect_100_continue_handler([body_refusal, refuse](const httplib::Request& req, httplib::Response& res) {
    const int status = body_refusal(req);
    if (status == 0) return 100;
    refuse(res, status);
    return status;
  });
  s.set_pre_routing_handler([call, body_refusal, refuse](const httplib::Request& req, httplib::Response& res) {
    using Outcome = httplib::Server::HandlerResponse;
    const std::string& m = req.method;
    const bool has_slot = m == "GET" || m == "HEAD" || m == "PUT" || m == "POST" || m == "DELETE" ||
                          m == "PATCH" || m == "OPTIONS";
    if (!has_slot) {
      call(req, res, {});
      return Outcome::Handled;
    }
    if (const int status = body_refusal(req); status != 0) {
      refuse(res, status);
      return Outcome::Handled;
    }
    if (req.has_header("Content-Length")) return Outcome::Unhandled;
    if (m == "PUT" || m == "POST" || m == "PATCH" || m == "DELETE") {
      call(req, res, {});
      return Outcome::Handled;
    }
    return Outcome::Unhandled;
  });

  // Errors the library finds itself (bad request line, 413 from the
  // Content-Length, 414) get kvctl's JSON body; handler bodies are kept.
  s.set_error_handler([error_body](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    HttpResponse out = error_body(res.status);
    res.set_content(out.body, out.content_type.c_str());
  });
  s.set_exception_handler([error_body](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    res.status = 500;
    HttpResponse out = error_body(500);
    res.set_content(out.body, out.content_type.c_str());
  });
}

HttpServer::~HttpServer() = default;

core::Status HttpServer::Bind() {
  TunedServer& s = impl_->server;
  std::string host = options_.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (options_.port == 0) {
    port_ = s.bind_to_any_port(host);
    if (port_ <= 0) {
      return core::Status::Busy(fmt::format("cannot listen on {}: no free port could be bound", host));
    }
  } else {
    if (!s.bind_to_port(host, options_.port)) {
      return core::Status::Busy(fmt::format(
          "cannot listen on {}:{}: the address is in use or not available here (stop the other "
          "process, or choose another with --listen)",
          options_.host, options_.port));
    }
    port_ = options_.port;
  }
  // Linux lets a listening socket's backlog be changed by listening again.
  if (::listen(s.listening_socket(), options_.listen_backlog) != 0) {
    return core::Status::IOError(fmt::format("cannot raise the listen backlog: {}", std::strerror(errno)));
  }
  return core::Status::Ok();
}

core::Status HttpServer::Serve() {
  serve_entered_ = true;
  if (stop_requested_) {
    serve_done_ = true;
    return core::Status::Ok();
  }
  const bool ok = impl_->server.listen_after_bind();
  serve_done_ = true;
  if (!ok && !stop_requested_) return core::Status::IOError("the HTTP server stopped unexpectedly");
  return core::Status::Ok();
}

void HttpServer::Stop() {
  stop_requested_ = true;
  // The library ignores stop() until its accept loop runs: wait for that,
  // unless Serve() saw the request first or has already returned.
  while (serve_entered_ && !serve_done_ && !impl_->server.is_running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->server.stop();
}

}  // namespace kvctl::server
