#include "lib/bench/load.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "lib/bench/key_chooser.h"
#include "lib/bench/response_parser.h"
#include "lib/core/base64.h"

namespace kvctl::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadRoom = 16 * 1024;
constexpr auto kRetryConnect = std::chrono::milliseconds(100);
constexpr auto kMaxWait = std::chrono::milliseconds(10);

enum class RequestKind { kGet, kPut, kTxn };

// What every worker thread reads (and the few counters they share).
struct Shared {
  const LoadOptions& options;
  std::shared_ptr<tls::Context> tls;  // null: plain HTTP
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  std::string host_header;
  std::string value;
  std::string get_tail;  // " HTTP/1.1\r\nHost: ...\r\n\r\n"
  std::string put_tail;  // the same with Content-Length, then the value
  std::string txn_head;  // " HTTP/1.1\r\nHost: ...\r\nContent-Length: " (the body's length follows)
  KeyChooser chooser;
  Clock::time_point measure_from;
  Clock::time_point end;  // time_point::max() unless the run is by duration
  std::atomic<int64_t> quota{0};  // by request count: measured requests not yet sent
  std::atomic<uint64_t> next_fill{0};
  LoadProgress* progress;

  Shared(const LoadOptions& o, LoadProgress* p)
      : options(o), chooser(o.keys, o.zipf_s), progress(p) {}
  bool by_count() const { return options.fill || options.requests > 0; }
};

struct Connection {
  int fd = -1;
  std::unique_ptr<tls::Stream> tls;  // null: plain HTTP
  std::string out;
  size_t sent = 0;
  std::vector<char> in = std::vector<char>(kReadRoom);
  size_t in_len = 0;
  bool busy = false;  // a request is out, its answer not yet in
  RequestKind kind = RequestKind::kGet;
  bool measured = false;
  Clock::time_point due{};      // open loop: when the next request is due
  Clock::time_point started{};  // latency runs from here (sent, or due)
  Clock::time_point sent_at{};  // for the timeout
  Clock::time_point retry_at{};
};

core::Result<int> ConnectTo(const Shared& s) {
  const int fd = ::socket(s.addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return core::Status::IOError(fmt::format("socket: {}", std::strerror(errno)));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&s.addr), s.addr_len) != 0) {
    const int err = errno;
    ::close(fd);
    return core::Status::Unavailable(
        fmt::format("cannot connect to {}: {} (is the server running there? see --addr)",
                    s.host_header, std::strerror(err)));
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

// Whether a transaction's answer says "succeeded": true (JSON, any spacing).
// A transaction without compares always succeeds; anything else is a
// server that did not run it as asked.
bool TxnSucceeded(std::string_view response) {
  const size_t head_end = response.find("\r\n\r\n");
  if (head_end == std::string_view::npos) return false;
  std::string_view body = response.substr(head_end + 4);
  constexpr std::string_view kField = "\"succeeded\"";
  const size_t at = body.find(kField);
  if (at == std::string_view::npos) return false;
  body.remove_prefix(at + kField.size());
  auto skip_space = [&body] {
    while (!body.empty() && (body.front() == ' ' || body.front() == '\t' || body.front() == '\n' ||
                             body.front() == '\r')) {
      body.remove_prefix(1);
    }
  };
  skip_space();
  if (body.empty() || body.front() != ':') return false;
  body.remove_prefix(1);
  skip_space();
  return body.starts_with("true");
}

class Worker {
 public:
  Worker(Shared& shared, int connections, int first_index, uint64_t seed)
      : s_(shared), o_(shared.options), conns_(static_cast<size_t>(connections)), random_(seed) {
    if (o_.rate > 0 && !o_.fill) {
      // Each connection carries rate / clients; their timetables are
      // staggered so the load is smooth rather than in bursts.
      interval_ = std::chrono::nanoseconds(static_cast<int64_t>(1e9 * o_.clients / o_.rate));
      for (size_t i = 0; i < conns_.size(); ++i) {
        conns_[i].due = s_.measure_from - o_.warmup +
                        interval_ * (static_cast<int64_t>(first_index) + static_cast<int64_t>(i)) / o_.clients;
      }
    }
  }

  LoadResult& result() { return result_; }
  Clock::time_point last_answer() const { return last_answer_; }

  void Run() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    Clock::time_point now = Clock::now();
    for (Connection& c : conns_) Reconnect(c, now);
    for (Connection& c : conns_) {
      if (c.fd >= 0 && interval_.count() == 0) Issue(c, now);
    }
    std::vector<epoll_event> events(std::max<size_t>(conns_.size(), 1));
    for (;;) {
      now = Clock::now();
      if (now >= s_.end) break;
      if (s_.by_count() && exhausted_ && std::none_of(conns_.begin(), conns_.end(),
                                                      [](const Connection& c) { return c.busy; })) {
        break;
      }
      Clock::time_point wake = now + kMaxWait;
      for (Connection& c : conns_) {
        if (c.fd < 0) {
          if (now >= c.retry_at && Reconnect(c, now) && !c.busy && interval_.count() == 0) Issue(c, now);
          continue;
        }
        if (c.busy && now - c.sent_at > o_.timeout) {
          Fail(c, "timeout", now);
          continue;
        }
        if (interval_.count() > 0 && !c.busy && !exhausted_) {
          if (now >= c.due) {
            Issue(c, now);
          } else {
            wake = std::min(wake, c.due);
          }
        }
      }
      wake = std::min(wake, s_.end);
      const auto wait = std::max(std::chrono::nanoseconds(0), wake - now);
      timespec ts{static_cast<time_t>(wait.count() / 1000000000), static_cast<long>(wait.count() % 1000000000)};
      const int n = ::epoll_pwait2(epoll_fd_, events.data(), static_cast<int>(events.size()), &ts, nullptr);
      now = Clock::now();
      for (int i = 0; i < n; ++i) {
        Connection& c = conns_[events[static_cast<size_t>(i)].data.u32];
        const uint32_t ev = events[static_cast<size_t>(i)].events;
        if (c.fd < 0) continue;
        if (c.tls) {
          // OpenSSL may need either direction for either call (the
          // handshake runs inside them): try both.
          Flush(c, now);
          if (c.fd >= 0) Read(c, now);
          continue;
        }
        if (ev & EPOLLOUT) Flush(c, now);
        if (c.fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP))) Read(c, now);
      }
    }
    for (Connection& c : conns_) {
      c.tls.reset();
      if (c.fd >= 0) ::close(c.fd);
    }
    ::close(epoll_fd_);
  }

 private:
  bool Reconnect(Connection& c, Clock::time_point now) {
    c.tls.reset();
    if (c.fd >= 0) {
      ::close(c.fd);
      c.fd = -1;
    }
    c.in_len = 0;
    auto fd = ConnectTo(s_);
    if (fd && s_.tls) {
      // The handshake runs inside the first write and read.
      c.tls = tls::Stream::Make(s_.tls, *fd, o_.host);
      if (c.tls == nullptr) {
        ::close(*fd);
        fd = core::Status::IOError("cannot set up TLS");
      }
    }
    if (!fd) {
      if (now >= s_.measure_from) ++result_.errors["connect"];
      if (s_.progress) ++s_.progress->errors;
      c.retry_at = now + kRetryConnect;
      return false;
    }
    c.fd = *fd;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u32 = static_cast<uint32_t>(&c - conns_.data());
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev);
    return true;
  }

  void Issue(Connection& c, Clock::time_point now) {
    // Past the end nothing more goes out: its answer would not be counted,
    // and a write the server makes without being counted skews what the
    // server's revision says of the run.
    if (exhausted_ || now >= s_.end) return;
    uint64_t key = 0;
    RequestKind kind = RequestKind::kPut;
    if (o_.fill) {
      key = s_.next_fill++;
      if (key >= o_.keys) {
        exhausted_ = true;
        return;
      }
    } else {
      const Clock::time_point at = interval_.count() > 0 ? c.due : now;
      if (o_.requests > 0 && at >= s_.measure_from && s_.quota.fetch_sub(1) <= 0) {
        exhausted_ = true;
        return;
      }
      key = s_.chooser.Next(random_);
      if (o_.read_ratio >= 1.0 || random_.NextDouble() < o_.read_ratio) {
        kind = RequestKind::kGet;
      } else if (o_.txn_ratio >= 1.0 || (o_.txn_ratio > 0 && random_.NextDouble() < o_.txn_ratio)) {
        kind = RequestKind::kTxn;
      }
    }
    c.out.clear();
    c.sent = 0;
    if (kind == RequestKind::kTxn) {
      AppendTxn(key, &c.out);
    } else {
      const bool read = kind == RequestKind::kGet;
      c.out.append(read ? "GET /v1/kv/" : "PUT /v1/kv/");
      AppendKeyName(key, o_.key_size, &c.out);
      c.out.append(read ? s_.get_tail : s_.put_tail);
      if (!read) StampValue(c.out.data() + c.out.size() - o_.value_size);
    }
    c.kind = kind;
    c.busy = true;
    c.sent_at = now;
    if (interval_.count() > 0) {
      c.started = c.due;
      c.due += interval_;
    } else {
      c.started = now;
    }
    c.measured = o_.fill || c.started >= s_.measure_from;
    Flush(c, now);
  }

  // Makes this PUT's value (value_size bytes at `at`) differ from every
  // other: a PUT of the value a key already holds changes nothing and
  // writes nothing (SPEC §1), so a repeated value would measure no-ops
  // instead of durable writes.
  void StampValue(char* at) {
    static constexpr char kHex[] = "0123456789abcdef";
    const size_t n = std::min<size_t>(16, o_.value_size);
    uint64_t stamp = random_.Next();
    for (size_t i = 0; i < n; ++i, stamp >>= 4) at[i] = kHex[stamp & 15];
  }

  // POST /v1/txn with no compares and kTxnKeys PUTs of keys `first`,
  // first+1, ... (wrapped around the key space), each value stamped as a
  // PUT's is, keys and values base64 (SPEC §6). The body's length differs
  // with the key and the stamps' encodings, so it is built first.
  void AppendTxn(uint64_t first, std::string* out) {
    txn_body_.assign(R"({"compare":[],"success":[)");
    for (uint64_t i = 0; i < kTxnKeys; ++i) {
      if (i > 0) txn_body_.push_back(',');
      txn_key_.clear();
      AppendKeyName((first + i) % o_.keys, o_.key_size, &txn_key_);
      txn_value_.assign(s_.value);
      StampValue(txn_value_.data());
      txn_body_.append(R"({"put":{"key":")");
      txn_body_.append(core::Base64Encode(txn_key_));
      txn_body_.append(R"(","value":")");
      txn_body_.append(core::Base64Encode(txn_value_));
      txn_body_.append(R"("}})");
    }
    txn_body_.append(R"(],"failure":[]})");
    out->append("POST /v1/txn");
    out->append(s_.txn_head);
    out->append(std::to_string(txn_body_.size()));
    out->append("\r\n\r\n");
    out->append(txn_body_);
  }

  void Flush(Connection& c, Clock::time_point now) {
    while (c.sent < c.out.size()) {
      if (c.tls) {
        const tls::IoResult r = c.tls->Write(c.out.data() + c.sent, c.out.size() - c.sent);
        if (r.status == tls::IoResult::kOk) {
          c.sent += r.bytes;
          continue;
        }
        if (r.status == tls::IoResult::kWantRead || r.status == tls::IoResult::kWantWrite) return;
        Fail(c, r.status == tls::IoResult::kClosed ? "connection closed" : "tls", now);
        return;
      }
      const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return;  // the next EPOLLOUT edge resumes
      } else {
        Fail(c, "connection closed", now);
        return;
      }
    }
  }

  void Read(Connection& c, Clock::time_point now) {
    for (;;) {
      if (c.in.size() - c.in_len < kReadRoom / 2) c.in.resize(c.in.size() * 2);
      const size_t room = c.in.size() - c.in_len;
      ssize_t n;
      if (c.tls) {
        const tls::IoResult r = c.tls->Read(c.in.data() + c.in_len, room);
        if (r.status == tls::IoResult::kWantRead || r.status == tls::IoResult::kWantWrite) return;
        if (r.status == tls::IoResult::kError) {
          Fail(c, "tls", now);
          return;
        }
        n = r.status == tls::IoResult::kOk ? static_cast<ssize_t>(r.bytes) : 0;
      } else {
        n = ::recv(c.fd, c.in.data() + c.in_len, room, 0);
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n <= 0) {
        if (c.busy) {
          Fail(c, "connection closed", now);
        } else if (Reconnect(c, now) && interval_.count() == 0) {
          Issue(c, now);
        }
        return;
      }
      c.in_len += static_cast<size_t>(n);
      const ParsedResponse r = ParseResponse(std::string_view(c.in.data(), c.in_len));
      if (r.outcome == ParsedResponse::Outcome::kBad || (r.outcome == ParsedResponse::Outcome::kComplete && !c.busy)) {
        Fail(c, "bad response", now);
        return;
      }
      if (r.outcome == ParsedResponse::Outcome::kComplete) {
        Answered(c, r.status, std::string_view(c.in.data(), r.bytes), now);
        std::memmove(c.in.data(), c.in.data() + r.bytes, c.in_len - r.bytes);
        c.in_len -= r.bytes;
        if (r.close) {
          if (Reconnect(c, now) && interval_.count() == 0) Issue(c, now);
        } else if (interval_.count() == 0 || now >= c.due) {
          Issue(c, now);
        }
        return;
      }
      // Drained; the next edge brings the rest. (TLS reads a record at a
      // time: only kWantRead says the socket is drained.)
      if (!c.tls && static_cast<size_t>(n) < room) return;
    }
  }

  // `response`: the whole answer, head and body.
  void Answered(Connection& c, int status, std::string_view response, Clock::time_point now) {
    c.busy = false;
    const bool txn_failed = c.kind == RequestKind::kTxn && status == 200 && !TxnSucceeded(response);
    const bool ok = status >= 200 && status < 300 && !txn_failed;
    if (s_.progress) {
      // In batches: one shared counter bumped per answer would bounce its
      // cache line between the threads.
      if (++unreported_ == kReportEvery) {
        s_.progress->done.fetch_add(unreported_, std::memory_order_relaxed);
        unreported_ = 0;
      }
      if (!ok) ++s_.progress->errors;
    }
    if (!c.measured || now > s_.end) return;
    last_answer_ = std::max(last_answer_, now);
    if (txn_failed) {
      ++result_.errors["txn not succeeded"];
      return;
    }
    if (!ok) {
      ++result_.errors[fmt::format("status {}", status)];
      return;
    }
    const uint64_t ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.started).count());
    ++result_.ok;
    result_.latency.Record(ns);
    switch (c.kind) {
      case RequestKind::kGet:
        ++result_.reads;
        result_.read_latency.Record(ns);
        break;
      case RequestKind::kPut:
        ++result_.writes;
        result_.write_latency.Record(ns);
        break;
      case RequestKind::kTxn:
        ++result_.txns;
        result_.txn_latency.Record(ns);
        break;
    }
  }

  void Fail(Connection& c, const char* kind, Clock::time_point now) {
    if (c.busy && c.measured) ++result_.errors[kind];
    if (s_.progress) ++s_.progress->errors;
    c.busy = false;
    if (Reconnect(c, now) && interval_.count() == 0) Issue(c, now);
  }

  Shared& s_;
  const LoadOptions& o_;
  std::string txn_body_;  // AppendTxn's scratch, reused
  std::string txn_key_;
  std::string txn_value_;
  std::vector<Connection> conns_;
  Random random_;
  std::chrono::nanoseconds interval_{0};
  bool exhausted_ = false;
  int epoll_fd_ = -1;
  static constexpr uint64_t kReportEvery = 64;
  uint64_t unreported_ = 0;
  LoadResult result_;
  Clock::time_point last_answer_{};
};

}  // namespace

uint64_t LoadResult::error_count() const {
  uint64_t n = 0;
  for (const auto& [kind, count] : errors) n += count;
  return n;
}

core::Status Validate(const LoadOptions& o) {
  using core::Status;
  if (o.clients < 1 || o.clients > 100000) return Status::InvalidArgument("--clients must be from 1 to 100000");
  if (o.threads < 0 || o.threads > 1024) return Status::InvalidArgument("--threads must be from 0 to 1024");
  if (o.read_ratio < 0 || o.read_ratio > 1) {
    return Status::InvalidArgument("--read-ratio must be from 0 to 1 (0.9: nine GETs in ten)");
  }
  if (o.txn_ratio < 0 || o.txn_ratio > 1) {
    return Status::InvalidArgument(
        "--txn-ratio must be from 0 to 1 (the share of writes sent as 3-key transactions; 1: every write)");
  }
  if (o.keys < 1) return Status::InvalidArgument("--keys must be at least 1");
  if (o.txn_ratio > 0 && o.keys < kTxnKeys) {
    // One key written twice in a transaction is refused (SPEC §6).
    return Status::InvalidArgument(
        fmt::format("--txn-ratio above 0 needs --keys {} or more: each transaction writes {} distinct keys",
                    kTxnKeys, kTxnKeys));
  }
  if (o.zipf_s < 0 || o.zipf_s > 10) return Status::InvalidArgument("--zipf must be from 0 (uniform) to 10");
  const size_t digits = std::to_string(o.keys - 1).size();
  if (o.key_size < digits + 1 || o.key_size > 1024) {
    return Status::InvalidArgument(fmt::format(
        "--key-size must be from {} (\"k\" and the digits of the largest of --keys {}) to 1024", digits + 1,
        o.keys));
  }
  if (o.value_size > (64u << 20)) return Status::InvalidArgument("--value-size must be at most 64 MiB");
  if (o.rate < 0) return Status::InvalidArgument("--rate must be 0 (closed loop) or more requests per second");
  if (o.requests == 0 && o.duration.count() <= 0 && !o.fill) {
    return Status::InvalidArgument("give a --duration above 0 or a number of --requests");
  }
  if (o.warmup.count() < 0) return Status::InvalidArgument("--warmup must not be negative");
  if (o.timeout.count() <= 0) return Status::InvalidArgument("the request timeout must be above 0");
  return Status::Ok();
}

core::Result<LoadResult> RunLoad(const LoadOptions& options, LoadProgress* progress) {
  if (core::Status s = Validate(options); !s.ok()) return s;
  Shared shared(options, progress);
  shared.host_header = fmt::format("{}:{}", options.host, options.port);
  shared.value.resize(options.value_size);
  for (size_t i = 0; i < shared.value.size(); ++i) shared.value[i] = static_cast<char>('a' + i % 26);
  const std::string auth =
      options.token.empty() ? "" : fmt::format("Authorization: Bearer {}\r\n", options.token);
  shared.get_tail = fmt::format(" HTTP/1.1\r\nHost: {}\r\n{}\r\n", shared.host_header, auth);
  shared.put_tail = fmt::format(" HTTP/1.1\r\nHost: {}\r\n{}Content-Length: {}\r\n\r\n{}", shared.host_header,
                                auth, shared.value.size(), shared.value);
  shared.txn_head = fmt::format(" HTTP/1.1\r\nHost: {}\r\n{}Content-Type: application/json\r\nContent-Length: ",
                                shared.host_header, auth);
  if (options.tls.enabled) {
    auto context = MakeClientTlsContext(options.tls);
    if (!context) return context.error();
    shared.tls = std::move(*context);
  }

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string host = options.host;
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (::getaddrinfo(host.c_str(), std::to_string(options.port).c_str(), &hints, &found) != 0 || !found) {
    return core::Status::InvalidArgument(fmt::format("cannot resolve the host {} (see --addr)", options.host));
  }
  std::memcpy(&shared.addr, found->ai_addr, found->ai_addrlen);
  shared.addr_len = found->ai_addrlen;
  ::freeaddrinfo(found);
  // One connection first, so an absent server is one clear error.
  auto probe = ConnectTo(shared);
  if (!probe) return probe.error();
  if (shared.tls) {
    core::Status handshake = ProbeHandshake(shared.tls, *probe, options.host, options.timeout);
    ::close(*probe);
    if (!handshake.ok()) return handshake;
  } else {
    ::close(*probe);
  }

  const auto start = Clock::now();
  const bool fill = options.fill;
  shared.measure_from = fill ? start : start + options.warmup;
  shared.end = shared.by_count() ? Clock::time_point::max() : shared.measure_from + options.duration;
  shared.quota = static_cast<int64_t>(options.requests);

  int threads = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, options.clients);
  std::vector<std::unique_ptr<Worker>> workers;
  int first = 0;
  for (int t = 0; t < threads; ++t) {
    const int n = options.clients / threads + (t < options.clients % threads ? 1 : 0);
    workers.push_back(std::make_unique<Worker>(shared, n, first, options.seed * 1000003 + static_cast<uint64_t>(t)));
    first += n;
  }
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w] { w->Run(); });
  if (progress) {
    while (Clock::now() < shared.measure_from) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    progress->measuring = true;
  }
  for (std::thread& t : running) t.join();

  LoadResult result;
  Clock::time_point last = shared.measure_from;
  for (auto& w : workers) {
    LoadResult& r = w->result();
    result.ok += r.ok;
    result.reads += r.reads;
    result.writes += r.writes;
    result.txns += r.txns;
    for (const auto& [kind, count] : r.errors) result.errors[kind] += count;
    result.latency.Merge(r.latency);
    result.read_latency.Merge(r.read_latency);
    result.write_latency.Merge(r.write_latency);
    result.txn_latency.Merge(r.txn_latency);
    last = std::max(last, w->last_answer());
  }
  const auto span = shared.by_count() ? last - shared.measure_from : options.duration;
  result.seconds = std::chrono::duration<double>(span).count();
  return result;
}

}  // namespace kvctl::bench
