#include "lib/client/peer_forwarder.h"

#include <httplib.h>

#include <fmt/format.h>

namespace kvctl::client {
namespace {

using Clock = std::chrono::steady_clock;

// A keep-alive connection idle this long is opened afresh: the writer may
// have closed it (server.keepalive_timeout, 1 s at least), and a request
// written into a closed connection would leave its outcome unknown.
constexpr std::chrono::milliseconds kFreshAfterIdle{500};

}  // namespace

struct PeerForwarder::Connection {
  std::string url;
  httplib::Client client;
  Clock::time_point last_used;
  explicit Connection(const std::string& u) : url(u), client(u) {}
};

PeerForwarder::PeerForwarder(Options options) : options_(options) {}
PeerForwarder::~PeerForwarder() = default;

core::ForwardReply PeerForwarder::Send(const std::string& url, const std::string& token, const std::string& body) {
  using Kind = core::ForwardReply::Kind;
  std::unique_ptr<Connection> conn;
  {
    std::lock_guard lock(mu_);
    while (!idle_.empty() && !conn) {
      conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->url != url || Clock::now() - conn->last_used > kFreshAfterIdle) conn.reset();
    }
  }
  if (!conn) {
    conn = std::make_unique<Connection>(url);
    if (!conn->client.is_valid()) {
      return {Kind::kNotSent, {}, fmt::format("the writer's URL {} is not an http:// URL kvctl can reach", url)};
    }
    conn->client.set_keep_alive(true);
    // The head and the body go out in two writes: with Nagle's algorithm
    // the body would wait for the writer's delayed ACK (40 ms a batch).
    conn->client.set_tcp_nodelay(true);
    conn->client.set_connection_timeout(options_.connect_timeout);
    conn->client.set_read_timeout(options_.answer_timeout);
    conn->client.set_write_timeout(options_.answer_timeout);
  }
  const httplib::Headers headers{{std::string(core::kPeerTokenHeader), token}};
  httplib::Result r =
      conn->client.Post(std::string(core::kPeerWritesPath), headers, body, "application/octet-stream");
  if (!r) {
    // No connection: nothing was sent. Anything later: the request may
    // have reached the writer whole.
    const httplib::Error error = r.error();
    const bool not_sent = error == httplib::Error::Connection || error == httplib::Error::ConnectionTimeout;
    return {not_sent ? Kind::kNotSent : Kind::kUnknown, {}, fmt::format("{} to {}", httplib::to_string(error), url)};
  }
  conn->last_used = Clock::now();
  core::ForwardReply reply;
  if (r->status != 200) {
    // The writer answers 200 once it has queued the writes; any other
    // answer means it queued none.
    reply = {Kind::kNotSent, {}, fmt::format("{} answered {}: {}", url, r->status, r->body.substr(0, 300))};
  } else {
    reply = {Kind::kAnswered, std::move(r->body), {}};
  }
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(conn));
  return reply;
}

}  // namespace kvctl::client
