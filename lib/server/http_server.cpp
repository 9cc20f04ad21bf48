#include "lib/server/http_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "lib/server/http_wire.h"
#include "lib/server/task_pool.h"
#include "lib/tls/tls_stream.h"

namespace kvctl::server {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 16 * 1024;
constexpr size_t kMaxPendingOut = 1 << 20;  // stop reading a client this far behind
// While a stream is sent, at most this much of the client's next requests
// is read ahead (pipelined behind the stream, they wait for its end).
constexpr size_t kMaxReadAheadWhileStreaming = 64 * 1024;
constexpr size_t kKeepBufferBytes = 64 * 1024;  // larger buffers are freed when empty
constexpr int kMaxAcceptsPerWake = 64;
constexpr int kMaxReadsPerTurn = 16;  // then other connections get a turn
constexpr auto kLinger = std::chrono::seconds(2);
constexpr int kTickMs = 100;
constexpr uint64_t kWakeTag = 1;
constexpr uint64_t kListenTag = 2;

// Received bytes: [begin, end) of `bytes` are unconsumed.
class InBuffer {
 public:
  std::string_view view() const { return {bytes_.data() + begin_, end_ - begin_}; }
  size_t size() const { return end_ - begin_; }
  void Consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) Clear();
  }
  void Clear() {
    begin_ = end_ = 0;
    if (bytes_.size() > kKeepBufferBytes) std::vector<char>().swap(bytes_);
  }
  // Room for at least `n` more bytes at the end.
  char* Prepare(size_t n) {
    if (bytes_.size() - end_ < n && begin_ > 0) {
      std::memmove(bytes_.data(), bytes_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (bytes_.size() - end_ < n) bytes_.resize(end_ + n);
    return bytes_.data() + end_;
  }
  size_t room() const { return bytes_.size() - end_; }
  void Commit(size_t n) { end_ += n; }

 private:
  std::vector<char> bytes_;
  size_t begin_ = 0;
  size_t end_ = 0;
};

enum class ConnState {
  kHandshake,  // TLS: the session is being set up
  kHead,     // waiting for a request head (idle when nothing is buffered)
  kBody,     // head read, waiting for the rest of the body
  kWaiting,  // the request runs on a worker thread, or its answer is deferred
  kStreaming,  // the answer's head is sent; its body is pulled from a StreamSource
  kLingering,  // refused and answered; dropping what the client still sends
};

class EventLoop;

// Between a stream's source (which wakes the loop from any thread) and its
// connection: cut when the connection is done with the stream, so a late
// wake (after the connection, or the loop, is gone) does nothing.
struct StreamLink {
  std::mutex mu;
  EventLoop* loop = nullptr;  // guarded by mu; null once cut
  uint64_t id = 0;
  std::atomic<bool> pending{false};  // a wake is queued and not yet pulled
};

struct Connection {
  int fd = -1;
  uint64_t id = 0;
  std::string remote_addr;
  ConnState state = ConnState::kHead;
  std::unique_ptr<tls::Stream> tls;  // null: plain HTTP
  std::string peer_common_name;      // a verified client certificate's CN
  // OpenSSL can need the other direction: a read that waits for the socket
  // to be writable, or a write that waits for it to be readable.
  bool read_wants_write = false;
  bool write_wants_read = false;
  InBuffer in;
  std::string out;
  size_t out_start = 0;  // first unsent byte of `out`
  bool readable = false;     // an input edge was seen and no EAGAIN since
  bool peer_closed = false;  // the client closed its side
  bool close_after_write = false;
  bool write_shut = false;
  bool closed = false;
  bool in_request = false;  // bytes of a request have arrived, its answer not yet queued
  size_t served = 0;

  // The request being read (kBody) or run (kWaiting).
  HttpRequest request;
  size_t body_needed = 0;
  bool request_keep_alive = true;
  bool request_is_head = false;
  int request_minor = 1;

  // kStreaming: the body's source; chunked (HTTP/1.1) or close-delimited.
  std::shared_ptr<StreamSource> stream;
  std::shared_ptr<StreamLink> stream_link;
  bool stream_chunked = true;
  // kWaiting on a deferred answer (a long poll).
  std::shared_ptr<DeferredAnswer> deferred;

  Clock::time_point request_started{};
  Clock::time_point idle_since{};
  Clock::time_point blocked_since{};  // a send hit EAGAIN with bytes left, and none went since
  Clock::time_point linger_until{};

  size_t pending_out() const { return out.size() - out_start; }
};

bool RunsOnLoop(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS";
}

std::string PeerAddress(const sockaddr_storage& ss) {
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(ss).sin_addr, text, sizeof text);
  } else if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(ss).sin6_addr, text, sizeof text);
  }
  return text;
}

// OpenSSL's reason words (lib/tls's Stream::error()) -> the metric's label.
TlsFailure ClassifyTlsFailure(std::string_view detail) {
  auto has = [detail](std::string_view words) { return detail.find(words) != std::string_view::npos; };
  if (has("http request") || has("wrong version number") || has("unknown protocol") ||
      has("packet length too long") || has("record layer failure") || has("unsupported protocol")) {
    return TlsFailure::kNotTls;
  }
  if (has("peer did not return a certificate")) return TlsFailure::kNoClientCert;
  if (has("certificate verify failed")) return TlsFailure::kBadClientCert;
  if (has("alert")) return TlsFailure::kRejectedByClient;
  if (has("unexpected eof") || has("connection closed") || has("Connection reset") || has("Broken pipe")) {
    return TlsFailure::kClosed;
  }
  return TlsFailure::kOther;
}

class EventLoop;

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  Handler handler;
  AsyncHandler async_handler;
  Admitter admitter;
  ErrorBodyMaker error_body;
  HeadLimits limits;
  std::shared_ptr<tls::Context> tls;  // null: plain HTTP
  int listen_fd = -1;
  std::vector<std::unique_ptr<EventLoop>> loops;
  std::unique_ptr<TaskPool> pool;
  std::atomic<bool> stopping{false};
  // Set before `stopping`: when requests still arriving are given up.
  Clock::time_point stop_reads_by = Clock::time_point::max();
  std::atomic<int> open_connections{0};
  std::atomic<uint64_t> next_loop{0};

  HttpResponse Call(const HttpRequest& request) const {
    try {
      return handler(request);
    } catch (...) {
      return error_body(500, {}, request.remote_addr);
    }
  }
  std::optional<HttpResponse> Admit(HttpRequest& request) const {
    if (!admitter) return std::nullopt;
    try {
      return admitter(request);
    } catch (...) {
      return error_body(500, {}, request.remote_addr);
    }
  }
  void TlsFailed(std::string_view remote_addr, TlsFailure why, std::string_view detail) const {
    if (options.on_tls_failure) options.on_tls_failure(remote_addr, why, detail);
  }
  // A complete response for a status the transport decides itself.
  HttpResponse Refusal(int status, std::string_view problem, std::string_view remote_addr) const {
    return error_body(status, problem, remote_addr);
  }
};

namespace {

class EventLoop {
 public:
  EventLoop(HttpServer::Impl& server, int index) : server_(server), index_(index) {}
  ~EventLoop() {
    for (auto& [id, c] : conns_) ::close(c->fd);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
  }

  core::Status Init() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      return core::Status::IOError(fmt::format("cannot set up an event loop: {}", std::strerror(errno)));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    if (index_ == 0) {
      ev.data.u64 = kListenTag;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, server_.listen_fd, &ev);
    }
    return core::Status::Ok();
  }

  void Wake() {
    const uint64_t one = 1;
    ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
    (void)ignored;
  }

  // From loop 0: a connection this loop now owns.
  void Adopt(int fd, std::string remote_addr) {
    {
      std::lock_guard lock(inbox_mu_);
      new_conns_.emplace_back(fd, std::move(remote_addr));
    }
    Wake();
  }

  // From a worker or the store's committer: the answer to the request
  // connection `id` waits for. The loop drains the whole inbox on one wake,
  // so only the answer that finds it empty needs to wake it (a group
  // commit's answers cost one wake, not one each).
  void Complete(uint64_t id, HttpResponse response) {
    bool was_empty;
    {
      std::lock_guard lock(inbox_mu_);
      was_empty = completions_.empty() && new_conns_.empty() && stream_wakes_.empty();
      completions_.emplace_back(id, std::move(response));
    }
    if (was_empty) Wake();
  }

  // From a stream's source, any thread: connection `id` has more to pull.
  void WakeStream(uint64_t id) {
    bool was_empty;
    {
      std::lock_guard lock(inbox_mu_);
      was_empty = completions_.empty() && new_conns_.empty() && stream_wakes_.empty();
      stream_wakes_.push_back(id);
    }
    if (was_empty) Wake();
  }

  void Run() {
    std::vector<epoll_event> events(256);
    Clock::time_point next_sweep = Clock::now();
    for (;;) {
      const int timeout = ready_.empty() ? kTickMs : 0;
      const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), timeout);
      now_ = Clock::now();
      RefreshDate();
      for (int i = 0; i < n; ++i) {
        const epoll_event& ev = events[static_cast<size_t>(i)];
        if (ev.data.u64 == kWakeTag) {
          uint64_t count;
          ssize_t ignored = ::read(wake_fd_, &count, sizeof count);
          (void)ignored;
          TakeInbox();
        } else if (ev.data.u64 == kListenTag) {
          AcceptSome();
        } else {
          Connection* c = static_cast<Connection*>(ev.data.ptr);
          if (c->closed) continue;
          if (ev.events & EPOLLERR) {
            Close(c);
            continue;
          }
          const bool in = (ev.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) != 0;
          const bool out = (ev.events & EPOLLOUT) != 0;
          if (in || (out && c->read_wants_write)) {
            c->readable = true;
            c->read_wants_write = false;
          }
          if (out || (in && c->write_wants_read)) {
            c->write_wants_read = false;
            Flush(c);
          }
          Drive(c);
        }
      }
      if (!ready_.empty()) {
        std::vector<uint64_t> again;
        again.swap(ready_);
        for (uint64_t id : again) {
          if (auto it = conns_.find(id); it != conns_.end()) Drive(it->second.get());
        }
      }
      if (server_.stopping && !stop_seen_) BeginStop();
      if (now_ >= next_sweep) {
        Sweep();
        next_sweep = now_ + std::chrono::milliseconds(kTickMs);
      }
      graveyard_.clear();
      if (stop_seen_ && conns_.empty()) {
        std::lock_guard lock(inbox_mu_);
        for (auto& [fd, addr] : new_conns_) ::close(fd);
        new_conns_.clear();
        return;
      }
    }
  }

 private:
  void RefreshDate() {
    const time_t t = ::time(nullptr);
    if (t != date_second_) {
      date_second_ = t;
      date_ = HttpDate(t);
    }
  }

  void TakeInbox() {
    std::vector<std::pair<int, std::string>> conns;
    std::vector<std::pair<uint64_t, HttpResponse>>& done = taken_completions_;
    std::vector<uint64_t>& woken = taken_stream_wakes_;
    {
      std::lock_guard lock(inbox_mu_);
      conns.swap(new_conns_);
      done.swap(completions_);  // the inbox gets the room of the last round's
      woken.swap(stream_wakes_);
    }
    for (auto& [fd, addr] : conns) Register(fd, std::move(addr));
    for (auto& [id, response] : done) {
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;  // the client went away meanwhile
      Connection* c = it->second.get();
      Respond(c, response);
      Drive(c);
    }
    done.clear();
    for (uint64_t id : woken) {
      auto it = conns_.find(id);
      if (it != conns_.end() && it->second->state == ConnState::kStreaming) Drive(it->second.get());
    }
    woken.clear();
  }

  void AcceptSome() {
    for (int i = 0; i < kMaxAcceptsPerWake; ++i) {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      const int fd = ::accept4(server_.listen_fd, reinterpret_cast<sockaddr*>(&ss), &len,
                               SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: leave the rest in the backlog for a tick,
          // instead of waking on them again at once.
          ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, server_.listen_fd, nullptr);
          accept_paused_ = true;
        }
        return;
      }
      if (server_.open_connections.load() >= server_.options.max_connections) {
        if (server_.tls) {  // no session to answer on, and none is worth making now
          ::close(fd);
          continue;
        }
        std::string answer;
        AppendResponse(server_.Refusal(503, {}, PeerAddress(ss)), false, false, 1, date_, &answer);
        ssize_t ignored = ::send(fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)ignored;
        ::close(fd);
        continue;
      }
      ++server_.open_connections;
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      const size_t n = server_.loops.size();
      EventLoop& owner = *server_.loops[server_.next_loop++ % n];
      if (&owner == this) {
        Register(fd, PeerAddress(ss));
      } else {
        owner.Adopt(fd, PeerAddress(ss));
      }
    }
  }

  void Register(int fd, std::string remote_addr) {
    if (stop_seen_) {
      ::close(fd);
      --server_.open_connections;
      return;
    }
    auto conn = std::make_unique<Connection>();
    Connection* c = conn.get();
    c->fd = fd;
    c->id = next_id_++;
    c->remote_addr = std::move(remote_addr);
    c->idle_since = now_;
    if (server_.tls) {
      c->tls = tls::Stream::Make(server_.tls, fd);
      if (c->tls == nullptr) {
        ::close(fd);
        --server_.open_connections;
        return;
      }
      c->state = ConnState::kHandshake;
      c->request_started = now_;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = c;
    if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      --server_.open_connections;
      return;
    }
    conns_.emplace(c->id, std::move(conn));
  }

  // Reads, parses and answers until the connection has to wait: for input,
  // for a worker, or for the client to take its answers.
  void Drive(Connection* c) {
    if (c->state == ConnState::kHandshake && !Handshake(c)) return;
    for (int turns = 0;; ++turns) {
      ProcessBuffered(c);
      if (c->closed) return;
      // Parsing stops while kMaxPendingOut of answers wait (ProcessBuffered):
      // send what the client takes, and parse on only once it took enough.
      // Otherwise its next EPOLLOUT drives it on, buffered requests and all.
      const bool blocked = c->pending_out() >= kMaxPendingOut;
      if (blocked) {
        Flush(c);
        if (c->closed || c->pending_out() >= kMaxPendingOut) return;
      }
      if (turns == kMaxReadsPerTurn) {
        ready_.push_back(c->id);
        break;
      }
      if (blocked) continue;
      if (c->state == ConnState::kWaiting) break;
      if (c->state == ConnState::kStreaming && c->in.size() >= kMaxReadAheadWhileStreaming) break;
      if (!c->readable || c->peer_closed) break;
      if (!ReadSome(c)) break;
    }
    if (c->closed) return;
    Flush(c);
    if (c->closed) return;
    if (!c->peer_closed) return;
    if (c->state == ConnState::kStreaming) {
      Close(c);  // the client went away: its stream is cancelled
    } else if (c->state == ConnState::kWaiting) {
      if (c->deferred) c->deferred->Hurry();  // no one waits for it any more
    } else if (c->pending_out() == 0 || c->state == ConnState::kLingering) {
      Close(c);
    }
  }

  // Moves the TLS handshake on; true once it is done. A failed handshake
  // (no or an untrusted client certificate, not TLS at all) closes the
  // connection: there is no session to send an answer on.
  bool Handshake(Connection* c) {
    switch (c->tls->Handshake().status) {
      case tls::IoResult::kOk:
        c->state = ConnState::kHead;
        c->peer_common_name = c->tls->VerifiedPeerCommonName();
        c->idle_since = now_;
        c->readable = true;  // the first request may have come with the last handshake bytes
        return true;
      case tls::IoResult::kWantRead:
      case tls::IoResult::kWantWrite:
        return false;
      case tls::IoResult::kClosed:
        server_.TlsFailed(c->remote_addr, TlsFailure::kClosed, "the client closed the connection");
        Close(c);
        return false;
      case tls::IoResult::kError:
        server_.TlsFailed(c->remote_addr, ClassifyTlsFailure(c->tls->error()), c->tls->error());
        Close(c);
        return false;
    }
    return false;
  }

  // One TLS read; as ReadSome.
  bool ReadTls(Connection* c, char* at, size_t room) {
    const tls::IoResult r = c->tls->Read(at, room);
    switch (r.status) {
      case tls::IoResult::kOk:
        c->in.Commit(r.bytes);
        return true;  // a record at a time: only kWantRead says the socket is drained
      case tls::IoResult::kWantWrite:
        c->read_wants_write = true;
        c->readable = false;
        return false;
      case tls::IoResult::kWantRead:
        c->readable = false;
        return false;
      case tls::IoResult::kClosed:
        c->readable = false;
        c->peer_closed = true;
        return false;
      case tls::IoResult::kError:
        Close(c);
        return false;
    }
    return false;
  }

  // One recv; false when nothing more can be read now.
  bool ReadSome(Connection* c) {
    size_t want = kReadChunk;
    if (c->state == ConnState::kBody && c->body_needed > c->in.size()) {
      want = std::max(want, std::min<size_t>(c->body_needed - c->in.size(), kMaxPendingOut));
    }
    if (c->state == ConnState::kLingering) c->in.Clear();
    char* at = c->in.Prepare(want);
    const size_t room = c->in.room();
    if (c->tls) return ReadTls(c, at, room);
    ssize_t n;
    do {
      n = ::recv(c->fd, at, room, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      c->in.Commit(static_cast<size_t>(n));
      // A short read drained the socket; the next edge says when there is more.
      if (static_cast<size_t>(n) < room) c->readable = false;
      return true;
    }
    c->readable = false;
    if (n == 0) {
      c->peer_closed = true;
    } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
      Close(c);
    }
    return false;
  }

  void ProcessBuffered(Connection* c) {
    while (!c->closed) {
      switch (c->state) {
        case ConnState::kLingering:
          c->in.Clear();
          return;
        case ConnState::kHandshake:  // no application bytes before the session is up
        case ConnState::kWaiting:
          return;
        case ConnState::kStreaming:
          Pump(c);
          if (c->state == ConnState::kStreaming) return;
          continue;  // ended: requests pipelined behind it go on
        case ConnState::kBody:
          if (c->in.size() < c->body_needed) return;
          c->request.body.assign(c->in.view().substr(0, c->body_needed));
          c->in.Consume(c->body_needed);
          Dispatch(c);
          continue;
        case ConnState::kHead:
          break;
      }
      if (c->in.size() == 0) return;
      if (c->close_after_write) {  // after "Connection: close", nothing more is read
        // Closing with these bytes unread would send a reset, which can
        // destroy the answer before the client reads it: linger instead.
        c->in.Clear();
        c->state = ConnState::kLingering;
        c->linger_until = now_ + kLinger;
        return;
      }
      // A client that pipelines without reading gets no more answers made
      // while this much waits: one 16 KiB read can hold hundreds of GETs
      // of 1 MiB values. Drive() goes on once the answers drain.
      if (c->pending_out() >= kMaxPendingOut) return;
      if (!c->in_request) {
        c->in_request = true;
        c->request_started = now_;
      }
      if (!ParseHead(c)) return;
    }
  }

  // Parses a buffered head into c->request and admits it; false when it
  // has to wait or the connection goes no further.
  bool ParseHead(Connection* c) {
    RequestHead& head = parsed_head_;
    switch (ParseRequestHead(c->in.view(), server_.limits, &head)) {
      case HeadParse::kComplete: break;
      case HeadParse::kIncomplete: return false;
      case HeadParse::kBad: Refuse(c, 400, head.problem); return false;
      case HeadParse::kLineTooLong: Refuse(c, 414); return false;
      case HeadParse::kHeadTooLarge: Refuse(c, 431); return false;
      case HeadParse::kBadVersion: Refuse(c, 505); return false;
    }
    const RequestFraming framing = FrameRequest(head, server_.options.max_body_bytes);
    // A head that can be read more than one way goes no further, not even
    // to admission. A body too large or chunked is refused once the
    // request is admitted: the client learns about its credentials first.
    if (framing.refusal == 400) {
      Refuse(c, 400, framing.problem);
      return false;
    }
    HttpRequest& r = c->request;
    r.method.assign(head.method);
    r.path.assign(head.path);  // also of an absolute-form target
    r.query.assign(head.query);
    r.headers.clear();
    for (const auto& [name, value] : head.headers) r.headers.emplace_back(name, value);
    r.remote_addr = c->remote_addr;
    r.peer_common_name = c->peer_common_name;
    r.body.clear();
    r.admission.done = false;
    c->request_is_head = head.method == "HEAD";
    c->request_minor = head.minor_version;
    c->request_keep_alive = framing.keep_alive;
    c->in.Consume(head.head_bytes);  // `head` points into the buffer: not used after this
    c->body_needed = framing.refusal == 0 ? framing.content_length : 0;
    // Admission, before a body byte is read and before 100 Continue.
    if (std::optional<HttpResponse> answer = server_.Admit(r)) {
      return AnswerFromHead(c, *answer, framing.refusal != 0 || c->body_needed > c->in.size());
    }
    if (framing.refusal != 0) {
      Refuse(c, framing.refusal);
      return false;
    }
    if (c->body_needed > c->in.size()) {
      if (framing.expects_continue) c->out.append("HTTP/1.1 100 Continue\r\n\r\n");
      c->state = ConnState::kBody;
      return true;
    }
    if (c->body_needed > 0) {
      r.body.assign(c->in.view().substr(0, c->body_needed));
      c->in.Consume(c->body_needed);
    }
    Dispatch(c);
    return true;
  }

  // Sends the answer the admitter gave from the head alone. A body that is
  // all here is dropped and the connection goes on; one still to come (or
  // one that cannot be framed) is not read: the connection closes after
  // the answer, dropping what still arrives for a short while, so the
  // client reads the answer instead of a reset. True when it goes on.
  bool AnswerFromHead(Connection* c, const HttpResponse& answer, bool body_unread) {
    ++c->served;
    if (!body_unread) {
      c->in.Consume(c->body_needed);
      Respond(c, answer);
      return true;
    }
    c->request_keep_alive = false;
    Respond(c, answer);
    c->state = ConnState::kLingering;
    c->in.Clear();
    c->linger_until = now_ + kLinger;
    return false;
  }

  void Dispatch(Connection* c) {
    ++c->served;
    if (RunsOnLoop(c->request.method)) {
      HttpResponse response = server_.Call(c->request);
      if (response.deferred) {
        Defer(c, std::move(response.deferred));
        return;
      }
      Respond(c, response);
      return;
    }
    c->state = ConnState::kWaiting;
    if (server_.async_handler) {
      bool taken = false;
      try {
        taken = server_.async_handler(c->request, [loop = this, id = c->id](HttpResponse response) {
          loop->Complete(id, std::move(response));
        });
      } catch (...) {
        taken = false;
      }
      if (taken) return;
    }
    server_.pool->Submit([server = &server_, loop = this, id = c->id, request = std::move(c->request)] {
      loop->Complete(id, server->Call(request));
    });
  }

  void Respond(Connection* c, const HttpResponse& response) {
    const bool keep_alive = c->request_keep_alive && !stop_seen_ && !server_.stopping &&
                            c->served < server_.options.keepalive_max_requests;
    c->deferred.reset();
    if (response.stream) {
      StartStream(c, response, keep_alive);
      return;
    }
    AppendResponse(response, c->request_is_head, keep_alive, c->request_minor, date_, &c->out);
    if (!keep_alive) c->close_after_write = true;
    c->state = ConnState::kHead;
    c->in_request = false;
    c->idle_since = now_;
  }

  // The handler's answer comes later; the connection waits for it without
  // a thread (Complete brings it).
  void Defer(Connection* c, std::shared_ptr<DeferredAnswer> deferred) {
    c->state = ConnState::kWaiting;
    c->deferred = deferred;
    deferred->Start([loop = this, id = c->id](HttpResponse response) { loop->Complete(id, std::move(response)); });
  }

  // Sends a stream's head, then its body as the source gives it (Pump).
  void StartStream(Connection* c, const HttpResponse& response, bool keep_alive) {
    const bool chunked = c->request_minor != 0;
    AppendStreamHead(response, keep_alive, c->request_minor, date_, &c->out);
    if (!keep_alive || !chunked) c->close_after_write = true;
    c->in_request = false;
    c->idle_since = now_;
    c->state = ConnState::kHead;
    if (c->request_is_head || stop_seen_ || server_.stopping) {
      response.stream->Cancel();  // HEAD: the head alone; stopping: an empty body
      if (!c->request_is_head && chunked) c->out.append(kLastChunk);
      return;
    }
    c->state = ConnState::kStreaming;
    c->stream = response.stream;
    c->stream_chunked = chunked;
    auto link = std::make_shared<StreamLink>();
    link->loop = this;
    link->id = c->id;
    c->stream_link = link;
    c->stream->Start([link] {
      if (link->pending.exchange(true)) return;  // one wake is enough until the next pull
      std::lock_guard lock(link->mu);
      if (link->loop != nullptr) link->loop->WakeStream(link->id);
    });
  }

  // Pulls the stream's body while the client takes it: at most
  // kMaxPendingOut waits to be sent, so a client that reads nothing holds
  // that much here and no more.
  void Pump(Connection* c) {
    while (c->state == ConnState::kStreaming && c->pending_out() < kMaxPendingOut) {
      c->stream_link->pending.store(false);
      pull_buffer_.clear();
      const bool more = c->stream->Pull(kMaxPendingOut - c->pending_out(), &pull_buffer_);
      if (c->stream_chunked) {
        AppendChunk(pull_buffer_, &c->out);
      } else {
        c->out.append(pull_buffer_);
      }
      if (!more) {
        EndStream(c);
      } else if (pull_buffer_.empty()) {
        break;  // the source wakes the loop when it has more
      }
    }
    if (pull_buffer_.capacity() > kKeepBufferBytes) std::string().swap(pull_buffer_);
  }

  // The stream's body is complete (or the server stops): the terminating
  // chunk, then the next request, if the connection stays.
  void EndStream(Connection* c) {
    DetachStream(c);
    if (c->stream_chunked) c->out.append(kLastChunk);
    c->state = ConnState::kHead;
    c->idle_since = now_;
    if (stop_seen_) c->close_after_write = true;
  }

  void DetachStream(Connection* c) {
    if (!c->stream) return;
    {
      std::lock_guard lock(c->stream_link->mu);
      c->stream_link->loop = nullptr;
    }
    c->stream->Cancel();
    c->stream.reset();
    c->stream_link.reset();
  }

  // Answers with an error and closes after a short lingering read, so the
  // client reads the answer instead of a reset.
  void Refuse(Connection* c, int status, std::string_view problem = {}) {
    c->request_is_head = false;
    AppendResponse(server_.Refusal(status, problem, c->remote_addr), false, false, 1, date_, &c->out);
    c->close_after_write = true;
    c->state = ConnState::kLingering;
    c->in_request = false;
    c->in.Clear();
    c->linger_until = now_ + kLinger;
  }

  // One TLS write of what is pending; false when the connection has to wait
  // (or was closed).
  bool SendTls(Connection* c) {
    const tls::IoResult r = c->tls->Write(c->out.data() + c->out_start, c->pending_out());
    if (r.status == tls::IoResult::kOk) {
      c->out_start += r.bytes;
      c->blocked_since = {};
      return true;
    }
    if (r.status == tls::IoResult::kClosed || r.status == tls::IoResult::kError) {
      Close(c);
      return false;
    }
    c->write_wants_read = r.status == tls::IoResult::kWantRead;
    if (c->blocked_since == Clock::time_point{}) c->blocked_since = now_;
    return false;
  }

  void Flush(Connection* c) {
    if (c->closed) return;
    while (c->pending_out() > 0) {
      if (c->tls) {
        if (!SendTls(c)) return;
        continue;
      }
      const ssize_t n = ::send(c->fd, c->out.data() + c->out_start, c->pending_out(), MSG_NOSIGNAL);
      if (n > 0) {
        // write_timeout is for a client that takes nothing: one that reads
        // a long pipeline of answers may always have more waiting.
        c->out_start += static_cast<size_t>(n);
        c->blocked_since = {};
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (c->blocked_since == Clock::time_point{}) c->blocked_since = now_;
        return;
      }
      Close(c);
      return;
    }
    c->blocked_since = {};
    c->out_start = 0;
    if (c->out.capacity() > kKeepBufferBytes) {
      std::string().swap(c->out);
    } else {
      c->out.clear();
    }
    if (!c->close_after_write) return;
    if (c->state == ConnState::kLingering) {
      if (!c->write_shut) {
        if (c->tls) c->tls->Shutdown();
        ::shutdown(c->fd, SHUT_WR);
        c->write_shut = true;
      }
    } else if (c->state == ConnState::kHead && !c->in_request) {
      Close(c);  // nothing in flight: a request being read or run is answered first
    }
  }

  void Close(Connection* c) {
    if (c->closed) return;
    c->closed = true;
    DetachStream(c);
    if (c->deferred) c->deferred->Hurry();
    if (c->tls && !c->peer_closed) c->tls->Shutdown();  // close_notify, if the socket takes it
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c->fd, nullptr);
    ::close(c->fd);
    --server_.open_connections;
    auto it = conns_.find(c->id);
    graveyard_.push_back(std::move(it->second));  // freed after this round of events
    conns_.erase(it);
  }

  // Time limits, checked every tick.
  void Sweep() {
    if (accept_paused_ && !stop_seen_) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = kListenTag;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, server_.listen_fd, &ev);
      accept_paused_ = false;
    }
    const auto& o = server_.options;
    std::vector<Connection*> expired_reads;
    std::vector<Connection*> stopped_reads;
    std::vector<Connection*> to_close;
    for (auto& [id, conn] : conns_) {
      Connection* c = conn.get();
      if (c->pending_out() > 0 && c->blocked_since != Clock::time_point{} &&
          now_ - c->blocked_since > o.write_timeout) {
        to_close.push_back(c);
      } else if (c->state == ConnState::kLingering) {
        // Past the stop's grace, an answered connection does not linger on.
        const bool grace_over = stop_seen_ && now_ >= server_.stop_reads_by && c->pending_out() == 0;
        if (now_ >= c->linger_until || grace_over) to_close.push_back(c);
      } else if (c->state == ConnState::kHandshake) {
        if (now_ - c->request_started > o.read_timeout) {
          server_.TlsFailed(c->remote_addr, TlsFailure::kTimeout,
                            "the handshake did not finish within server.read_timeout");
          to_close.push_back(c);
        }
      } else if (c->state == ConnState::kBody || (c->state == ConnState::kHead && c->in_request)) {
        if (now_ - c->request_started > o.read_timeout) {
          expired_reads.push_back(c);
        } else if (stop_seen_ && now_ >= server_.stop_reads_by) {
          stopped_reads.push_back(c);
        }
      } else if (c->state == ConnState::kHead && c->pending_out() == 0 &&
                 now_ - c->idle_since > o.keepalive_timeout) {
        to_close.push_back(c);
      }
    }
    for (Connection* c : to_close) Close(c);
    for (Connection* c : expired_reads) {
      Refuse(c, 408);
      Flush(c);
    }
    for (Connection* c : stopped_reads) {
      Refuse(c, 408, "the server is stopping and the request had not arrived whole within its grace");
      Flush(c);
    }
  }

  // Stop accepting, close what is idle; requests in flight finish and
  // their connections close after the answer.
  void BeginStop() {
    stop_seen_ = true;
    if (index_ == 0) {
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, server_.listen_fd, nullptr);
      ::close(server_.listen_fd);
      server_.listen_fd = -1;
    }
    std::vector<Connection*> idle;
    for (auto& [id, conn] : conns_) {
      Connection* c = conn.get();
      // A stream ends at once, cleanly (its terminating chunk); a long poll
      // is answered now.
      if (c->state == ConnState::kStreaming) {
        EndStream(c);
        c->close_after_write = true;
        continue;
      }
      if (c->state == ConnState::kWaiting && c->deferred) c->deferred->Hurry();
      // A request whose head or body is still arriving is in flight too
      // (SPEC §8): it is read to its end (within read_timeout), run, and
      // answered with Connection: close (Respond sees stop_seen_); then its
      // connection closes, and nothing pipelined behind it is started.
      if (c->in_request) continue;
      if (c->pending_out() == 0) {
        idle.push_back(c);
      } else {
        c->close_after_write = true;  // the answers already made go out first
      }
    }
    for (Connection* c : idle) Close(c);
    // Send the streams' ends (a connection whose end is all sent closes).
    std::vector<Connection*> ended;
    for (auto& [id, conn] : conns_) {
      if (conn->close_after_write && conn->state == ConnState::kHead) ended.push_back(conn.get());
    }
    for (Connection* c : ended) Flush(c);
  }

  HttpServer::Impl& server_;
  const int index_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  uint64_t next_id_ = 1;
  bool stop_seen_ = false;
  bool accept_paused_ = false;
  Clock::time_point now_ = Clock::now();
  time_t date_second_ = 0;
  std::string date_;
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> conns_;
  std::vector<std::unique_ptr<Connection>> graveyard_;
  std::vector<uint64_t> ready_;  // connections to drive again without waiting for an edge

  std::mutex inbox_mu_;
  std::vector<std::pair<int, std::string>> new_conns_;
  std::vector<std::pair<uint64_t, HttpResponse>> completions_;
  std::vector<uint64_t> stream_wakes_;
  std::vector<std::pair<uint64_t, HttpResponse>> taken_completions_;  // only the loop's thread
  std::vector<uint64_t> taken_stream_wakes_;                         // only the loop's thread
  std::string pull_buffer_;                                         // only the loop's thread
  RequestHead parsed_head_;  // only the loop's thread; reused so its header list keeps its room
};

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, Handler handler, ErrorBodyMaker error_body)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
  impl_->error_body = std::move(error_body);
}

void HttpServer::set_async_handler(AsyncHandler handler) { impl_->async_handler = std::move(handler); }

void HttpServer::set_admitter(Admitter admitter) { impl_->admitter = std::move(admitter); }

HttpServer::~HttpServer() {
  impl_->loops.clear();
  if (impl_->listen_fd >= 0) ::close(impl_->listen_fd);
}

core::Status HttpServer::Bind() {
  const HttpServerOptions& o = impl_->options;
  impl_->limits.max_head = o.max_header_bytes;
  if (o.tls.enabled()) {
    auto context = MakeServerTlsContext(o.tls);
    if (!context) return context.error();
    impl_->tls = std::move(*context);
  }
  std::string host = o.host;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto in_use = [&] {
    if (o.port == 0) return core::Status::Busy(fmt::format("cannot listen on {}: no free port could be bound", o.host));
    return core::Status::Busy(fmt::format(
        "cannot listen on {}:{}: the address is in use or not available here (stop the other "
        "process, or choose another with --listen)",
        o.host, o.port));
  };

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  const std::string port_text = std::to_string(o.port);
  if (::getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found) != 0) return in_use();
  int fd = -1;
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) return in_use();
  if (::listen(fd, o.listen_backlog) != 0) {
    ::close(fd);
    return core::Status::IOError(fmt::format("cannot listen on {}:{}: {}", o.host, o.port, std::strerror(errno)));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6&>(ss).sin6_port
                                         : reinterpret_cast<sockaddr_in&>(ss).sin_port);
  impl_->listen_fd = fd;

  int loops = o.io_threads > 0 ? o.io_threads : static_cast<int>(std::thread::hardware_concurrency());
  loops = std::max(1, loops);
  for (int i = 0; i < loops; ++i) {
    impl_->loops.push_back(std::make_unique<EventLoop>(*impl_, i));
    if (core::Status s = impl_->loops.back()->Init(); !s.ok()) return s;
  }
  return core::Status::Ok();
}

core::Status HttpServer::Serve() {
  if (impl_->loops.empty()) return core::Status::FailedPrecondition("Serve() before Bind()");
  impl_->pool = std::make_unique<TaskPool>(std::max(1, impl_->options.threads));
  std::vector<std::thread> others;
  for (size_t i = 1; i < impl_->loops.size(); ++i) {
    others.emplace_back([loop = impl_->loops[i].get()] { loop->Run(); });
  }
  impl_->loops[0]->Run();
  for (std::thread& t : others) t.join();
  impl_->pool->Shutdown();
  return core::Status::Ok();
}

void HttpServer::Stop(std::chrono::milliseconds read_grace) {
  const auto now = Clock::now();
  impl_->stop_reads_by = read_grace >= std::chrono::duration_cast<std::chrono::milliseconds>(
                                           Clock::time_point::max() - now)
                             ? Clock::time_point::max()
                             : now + read_grace;
  impl_->stopping = true;
  for (auto& loop : impl_->loops) loop->Wake();
}

}  // namespace kvctl::server
