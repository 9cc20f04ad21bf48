#include "lib/bench/blocking_http.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "lib/bench/response_parser.h"

namespace kvctl::bench {

core::Result<Endpoint> Resolve(const std::string& host_in, int port) {
  Endpoint e;
  e.host_header = fmt::format("{}:{}", host_in, port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string host = host_in;
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || !found) {
    return core::Status::InvalidArgument(fmt::format("cannot resolve the host {} (see --addr)", host_in));
  }
  std::memcpy(&e.addr, found->ai_addr, found->ai_addrlen);
  e.addr_len = found->ai_addrlen;
  ::freeaddrinfo(found);
  return e;
}

core::Result<int> Dial(const Endpoint& e, bool non_blocking) {
  const int fd = ::socket(e.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return core::Status::IOError(fmt::format("socket: {}", std::strerror(errno)));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&e.addr), e.addr_len) != 0) {
    const int err = errno;
    ::close(fd);
    return core::Status::Unavailable(fmt::format("cannot connect to {}: {} (is the server running there? see --addr)",
                                                 e.host_header, std::strerror(err)));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (non_blocking) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

std::string PercentEncode(std::string_view s) {
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.append(fmt::format("%{:02X}", c));
    }
  }
  return out;
}

bool HeaderNumber(std::string_view head, std::string_view name, uint64_t* number) {
  for (size_t at = head.find("\r\n"); at != std::string_view::npos; at = head.find("\r\n", at + 2)) {
    const std::string_view line = head.substr(at + 2);
    if (line.size() <= name.size() || line[name.size()] != ':') continue;
    bool same = true;
    for (size_t i = 0; i < name.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(line[i])) == name[i];
    }
    if (!same) continue;
    size_t i = name.size() + 1;
    while (i < line.size() && line[i] == ' ') ++i;
    if (i < line.size() && line[i] == '"') ++i;
    return std::from_chars(line.data() + i, line.data() + line.size(), *number).ec == std::errc();
  }
  return false;
}

BlockingHttp::~BlockingHttp() { Drop(); }

void BlockingHttp::Drop() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_.clear();
}

core::Result<HttpAnswer> BlockingHttp::Send(std::string_view method, std::string_view target, std::string_view body) {
  if (fd_ < 0) {
    auto fd = Dial(endpoint_, false);
    if (!fd) return core::Status::Unavailable("connect");
    fd_ = *fd;
    timeval tv{static_cast<time_t>(timeout_.count() / 1000), static_cast<suseconds_t>(timeout_.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  const std::string request = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\n{}Content-Length: {}\r\n\r\n{}", method,
                                          target, endpoint_.host_header, auth_, body.size(), body);
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Drop();
      return core::Status::Unavailable("connection closed");
    }
    sent += static_cast<size_t>(n);
  }
  char buffer[16 * 1024];
  ParsedResponse r = ParseResponse(in_);
  while (r.outcome == ParsedResponse::Outcome::kIncomplete) {
    const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      Drop();
      return core::Status::Unavailable("timeout");
    }
    if (n == 0 || n < 0) {
      Drop();
      return core::Status::Unavailable("connection closed");
    }
    in_.append(buffer, static_cast<size_t>(n));
    r = ParseResponse(in_);
  }
  if (r.outcome == ParsedResponse::Outcome::kBad) {
    Drop();
    return core::Status::Unavailable("bad response");
  }
  HttpAnswer answer;
  answer.status = r.status;
  const size_t head_end = in_.find("\r\n\r\n");
  answer.head = in_.substr(0, head_end + 2);
  answer.body = in_.substr(head_end + 4, r.bytes - head_end - 4);
  in_.erase(0, r.bytes);
  if (r.close) Drop();
  return answer;
}

}  // namespace kvctl::bench
