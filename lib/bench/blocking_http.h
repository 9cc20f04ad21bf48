// Reaching the server for the bench's plain-HTTP parts (the watchers, the
// lease expiry): its address resolved once, sockets dialled to it, and one
// blocking keep-alive HTTP/1.1 connection that sends a request at a time,
// for the few control requests a benchmark makes beside its load (granting
// leases, attaching keys), where a thread per connection is
// simpler than an epoll loop and the cost per request does not matter.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "lib/core/status.h"

namespace kvctl::bench {

// Where the server is: its resolved address and the Host header for it.
struct Endpoint {
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string host_header;  // "host:port"
};

// InvalidArgument when `host` does not resolve.
core::Result<Endpoint> Resolve(const std::string& host, int port);

// A connected TCP socket with TCP_NODELAY, blocking unless `non_blocking`;
// Unavailable (naming --addr) when nothing listens there.
core::Result<int> Dial(const Endpoint& endpoint, bool non_blocking);

// `s` with the bytes a URL path or query value cannot carry as they are
// percent-encoded ('/' kept).
std::string PercentEncode(std::string_view s);

// The number a header of `head` carries, quoted or not: `name` in lower
// case. The ETag of a write's answer is that write's revision
// (X-Kvctl-Revision is the store's, which others may have moved past it).
bool HeaderNumber(std::string_view head, std::string_view name, uint64_t* number);

struct HttpAnswer {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

class BlockingHttp {
 public:
  // `auth`: an "Authorization: ...\r\n" line, or "".
  BlockingHttp(const Endpoint& endpoint, std::string auth, std::chrono::milliseconds timeout)
      : endpoint_(endpoint), auth_(std::move(auth)), timeout_(timeout) {}
  ~BlockingHttp();
  BlockingHttp(const BlockingHttp&) = delete;
  BlockingHttp& operator=(const BlockingHttp&) = delete;

  // Sends one request (connecting first if need be) and reads its whole
  // answer. Unavailable with what went wrong ("connect", "timeout",
  // "connection closed", "bad response"); the connection is then dropped
  // and the next request opens a new one.
  core::Result<HttpAnswer> Send(std::string_view method, std::string_view target, std::string_view body = {});

 private:
  void Drop();

  const Endpoint& endpoint_;
  std::string auth_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  std::string in_;
};

}  // namespace kvctl::bench
