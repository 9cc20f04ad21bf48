#include "lib/bench/watch_load.h"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <thread>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "lib/bench/blocking_http.h"
#include "lib/bench/chunked_lines.h"
#include "lib/bench/response_parser.h"

namespace kvctl::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kReadRoom = 64 * 1024;
constexpr size_t kMaxHead = 64 * 1024;
constexpr auto kRetryConnect = std::chrono::milliseconds(100);
constexpr auto kMaxWait = std::chrono::milliseconds(10);

// The number after `field` at the start of `line` ({"revision":N...}).
bool NumberAfter(std::string_view line, std::string_view field, uint64_t* n) {
  if (!line.starts_with(field)) return false;
  const char* begin = line.data() + field.size();
  return std::from_chars(begin, line.data() + line.size(), *n).ec == std::errc();
}

struct Shared {
  const WatchLoadOptions& options;
  Endpoint endpoint;
  std::string auth;        // the Authorization line, or ""
  std::string probe_key;   // prefix + "probe"
  std::string probe_json;  // "key":"<probe key>" as an event line has it
  Clock::time_point measure_from;
  Clock::time_point probe_end;
  Clock::time_point end;
  // Watchers whose first stream has begun. The probes wait for all: a
  // probe written before a watcher subscribed would never reach it (its
  // watch starts at the next revision) and would count as missing.
  mutable std::atomic<int> subscribed{0};

  explicit Shared(const WatchLoadOptions& o) : options(o) {}
};

struct Arrival {
  uint64_t revision;
  Clock::time_point at;
};

struct Stream {
  int fd = -1;
  bool in_body = false;
  std::string head;
  std::unique_ptr<ChunkedLines> body;
  uint64_t last_revision = 0;  // of the last event: a resumed stream starts after it
  Clock::time_point retry_at{};
  bool subscribed = false;  // its first stream began
};

// Holds its share of the watchers on one epoll loop; counts what arrives.
class WatchWorker {
 public:
  WatchWorker(const Shared& shared, int streams) : s_(shared), streams_(static_cast<size_t>(streams)) {}

  WatchLoadResult& result() { return result_; }
  const std::vector<Arrival>& arrivals() const { return arrivals_; }
  int streaming() const {
    return static_cast<int>(std::count_if(streams_.begin(), streams_.end(),
                                          [](const Stream& w) { return w.fd >= 0 && w.in_body; }));
  }

  void Run() {
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    Clock::time_point now = Clock::now();
    for (Stream& w : streams_) Open(w, now);
    std::vector<epoll_event> events(std::max<size_t>(streams_.size(), 1));
    std::vector<char> buffer(kReadRoom);
    for (;;) {
      now = Clock::now();
      if (now >= s_.end) break;
      for (Stream& w : streams_) {
        if (w.fd < 0 && now >= w.retry_at) Open(w, now);
      }
      const auto wait = std::min<Clock::duration>(kMaxWait, s_.end - now);
      const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                                 static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count()));
      for (int i = 0; i < n; ++i) {
        Stream& w = streams_[events[static_cast<size_t>(i)].data.u32];
        if (w.fd >= 0) Read(w, buffer);
      }
    }
    for (Stream& w : streams_) {
      if (w.fd >= 0) ::close(w.fd);
    }
    ::close(epoll_fd_);
  }

 private:
  void Open(Stream& w, Clock::time_point now) {
    w.in_body = false;
    w.head.clear();
    w.body = std::make_unique<ChunkedLines>();
    auto fd = Dial(s_.endpoint, true);
    if (!fd) {
      ++result_.errors["connect"];
      w.retry_at = now + kRetryConnect;
      return;
    }
    std::string from = w.last_revision > 0 ? fmt::format("&from={}", w.last_revision + 1) : "";
    const std::string request =
        fmt::format("GET /v1/watch?prefix={}{} HTTP/1.1\r\nHost: {}\r\n{}\r\n", PercentEncode(s_.options.prefix),
                    from, s_.endpoint.host_header, s_.auth);
    // A few hundred bytes on a fresh socket: the send buffer takes them.
    if (::send(*fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
      ::close(*fd);
      ++result_.errors["connection closed"];
      w.retry_at = now + kRetryConnect;
      return;
    }
    w.fd = *fd;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;  // level-triggered: Read takes one buffer a turn
    ev.data.u32 = static_cast<uint32_t>(&w - streams_.data());
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, w.fd, &ev);
  }

  void Close(Stream& w, const char* error) {
    if (error != nullptr) ++result_.errors[error];
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, w.fd, nullptr);
    ::close(w.fd);
    w.fd = -1;
    w.in_body = false;
    w.retry_at = error == nullptr ? Clock::now() : Clock::now() + kRetryConnect;
  }

  void Read(Stream& w, std::vector<char>& buffer) {
    const ssize_t n = ::recv(w.fd, buffer.data(), buffer.size(), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return;
    const Clock::time_point now = Clock::now();
    if (n <= 0) {
      // The server ended the stream without its terminating chunk (or
      // before any answer): resume.
      ++result_.cut_off;
      Close(w, "connection closed");
      return;
    }
    std::string_view data(buffer.data(), static_cast<size_t>(n));
    if (!w.in_body) {
      w.head.append(data);
      const size_t end = w.head.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (w.head.size() > kMaxHead) Close(w, "bad response");
        return;
      }
      const ParsedResponse r = ParseResponse(std::string_view(w.head).substr(0, end + 4));
      if (r.status != 200) {
        ++result_.errors[r.status > 0 ? fmt::format("status {}", r.status) : "bad response"];
        Close(w, nullptr);
        w.retry_at = now + kRetryConnect;
        return;
      }
      w.in_body = true;
      if (!w.subscribed) {
        w.subscribed = true;
        ++s_.subscribed;
      }
      const std::string rest = w.head.substr(end + 4);
      w.head.clear();
      Body(w, rest, now);
      return;
    }
    Body(w, data, now);
  }

  void Body(Stream& w, std::string_view data, Clock::time_point now) {
    const bool measured = now >= s_.measure_from && now < s_.probe_end;
    const ChunkedLines::State state = w.body->Feed(data, [&](std::string_view line) {
      uint64_t revision = 0;
      if (NumberAfter(line, "{\"revision\":", &revision)) {
        w.last_revision = revision;
        if (measured) ++result_.events;
        if (line.find(s_.probe_json) != std::string_view::npos) arrivals_.push_back({revision, now});
      } else if (line.starts_with("{\"progress\":")) {
        if (measured) ++result_.progress;
      } else if (line.starts_with("{\"error\":")) {
        ++result_.cut_off;
      }
    });
    if (state == ChunkedLines::State::kBad) {
      Close(w, "bad response");
    } else if (state == ChunkedLines::State::kEnded) {
      Close(w, nullptr);  // cut off (counted from its last line): resume at once
    }
  }

  const Shared& s_;
  std::vector<Stream> streams_;
  int epoll_fd_ = -1;
  WatchLoadResult result_;
  std::vector<Arrival> arrivals_;
};

// PUTs the probe key at the probe rate on one blocking connection and notes
// when each answer came and which revision it names.
class Prober {
 public:
  explicit Prober(const Shared& shared) : s_(shared) {}

  const std::unordered_map<uint64_t, Clock::time_point>& acks() const { return acks_; }
  std::map<std::string, uint64_t>& errors() { return errors_; }

  void Run() {
    const auto interval = std::chrono::nanoseconds(static_cast<int64_t>(1e9 / s_.options.probe_rate));
    const std::string head = fmt::format("PUT /v1/kv/{} HTTP/1.1\r\nHost: {}\r\n{}Content-Length: 16\r\n\r\n",
                                         PercentEncode(s_.probe_key), s_.endpoint.host_header, s_.auth);
    std::vector<char> in(kReadRoom);
    uint64_t stamp = 0;
    while (s_.subscribed.load() < s_.options.watchers && Clock::now() < s_.probe_end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (Clock::time_point due = Clock::now(); due < s_.probe_end; due += interval) {
      std::this_thread::sleep_until(due);
      if (fd_ < 0 && !Reopen()) continue;
      // Every value differs: a PUT of the value the key holds writes nothing.
      const std::string request = head + fmt::format("{:016x}", ++stamp);
      if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
        Drop("probe connection closed");
        continue;
      }
      size_t len = 0;
      ParsedResponse r;
      while (r.outcome == ParsedResponse::Outcome::kIncomplete && len < in.size()) {
        const ssize_t n = ::recv(fd_, in.data() + len, in.size() - len, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += static_cast<size_t>(n);
        r = ParseResponse(std::string_view(in.data(), len));
      }
      const Clock::time_point acked = Clock::now();
      if (r.outcome != ParsedResponse::Outcome::kComplete) {
        Drop("probe connection closed");
        continue;
      }
      if (r.status < 200 || r.status >= 300) {
        ++errors_[fmt::format("probe status {}", r.status)];
      } else if (uint64_t revision = 0; !HeaderNumber(std::string_view(in.data(), r.bytes), "etag", &revision)) {
        ++errors_["probe answer without ETag"];
      } else if (acked >= s_.measure_from) {
        acks_[revision] = acked;
      }
      if (r.close) Drop(nullptr);
    }
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  bool Reopen() {
    auto fd = Dial(s_.endpoint, false);
    if (!fd) {
      ++errors_["probe connect"];
      return false;
    }
    fd_ = *fd;
    timeval tv{static_cast<time_t>(s_.options.timeout.count() / 1000),
               static_cast<suseconds_t>(s_.options.timeout.count() % 1000 * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return true;
  }

  void Drop(const char* error) {
    if (error != nullptr) ++errors_[error];
    ::close(fd_);
    fd_ = -1;
  }

  const Shared& s_;
  int fd_ = -1;
  std::unordered_map<uint64_t, Clock::time_point> acks_;
  std::map<std::string, uint64_t> errors_;
};

}  // namespace

uint64_t WatchLoadResult::error_count() const {
  uint64_t n = 0;
  for (const auto& [kind, count] : errors) n += count;
  return n;
}

core::Status ValidateWatchLoad(const WatchLoadOptions& o) {
  using core::Status;
  if (o.watchers < 1 || o.watchers > 100000) return Status::InvalidArgument("--watchers must be from 1 to 100000");
  if (o.threads < 0 || o.threads > 1024) return Status::InvalidArgument("--threads must be from 0 to 1024");
  if (o.probe_rate <= 0 || o.probe_rate > 10000) {
    return Status::InvalidArgument("--probe-rate must be above 0 and at most 10000 writes a second");
  }
  if (o.duration.count() <= 0) return Status::InvalidArgument("--watchers runs by time: give a --duration above 0");
  if (o.warmup.count() < 0) return Status::InvalidArgument("--warmup must not be negative");
  if (o.prefix.size() > 1024) return Status::InvalidArgument("--watch-prefix must be at most 1024 bytes");
  return Status::Ok();
}

core::Result<WatchLoadResult> RunWatchLoad(const WatchLoadOptions& options) {
  if (core::Status s = ValidateWatchLoad(options); !s.ok()) return s;
  Shared shared(options);
  shared.auth = options.token.empty() ? "" : fmt::format("Authorization: Bearer {}\r\n", options.token);
  shared.probe_key = options.prefix + "probe";
  // As the server writes a UTF-8 key (lib/core/json_string.h): only '"',
  // '\\' and control bytes are escaped, and the probe key has none of them
  // unless the prefix does, in which case no probe is matched and the
  // report says every probe event is missing.
  shared.probe_json = fmt::format("\"key\":\"{}\"", shared.probe_key);

  auto endpoint = Resolve(options.host, options.port);
  if (!endpoint) return endpoint.error();
  shared.endpoint = std::move(*endpoint);
  auto probe = Dial(shared.endpoint, false);
  if (!probe) return probe.error();
  ::close(*probe);

  const auto start = Clock::now();
  shared.measure_from = start + options.warmup;
  shared.probe_end = shared.measure_from + options.duration;
  shared.end = shared.probe_end + options.grace;

  int threads = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, options.watchers);
  std::vector<std::unique_ptr<WatchWorker>> workers;
  for (int t = 0; t < threads; ++t) {
    workers.push_back(std::make_unique<WatchWorker>(
        shared, options.watchers / threads + (t < options.watchers % threads ? 1 : 0)));
  }
  std::vector<std::thread> running;
  for (auto& w : workers) running.emplace_back([&w] { w->Run(); });
  Prober prober(shared);
  std::thread probing([&prober] { prober.Run(); });
  probing.join();
  for (std::thread& t : running) t.join();

  WatchLoadResult result;
  result.seconds = std::chrono::duration<double>(options.duration).count();
  result.watchers = options.watchers;
  result.errors = prober.errors();
  const auto& acks = prober.acks();
  result.probes = acks.size();
  std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> spread;  // revision -> first, last delay
  for (auto& w : workers) {
    const WatchLoadResult& r = w->result();
    result.streaming += w->streaming();
    result.events += r.events;
    result.progress += r.progress;
    result.cut_off += r.cut_off;
    for (const auto& [kind, count] : r.errors) result.errors[kind] += count;
    for (const Arrival& a : w->arrivals()) {
      const auto ack = acks.find(a.revision);
      if (ack == acks.end()) continue;
      ++result.probe_events;
      // The event may reach a watcher before the writer has read its
      // answer: that is no delay at all.
      const auto delay = std::max(Clock::duration::zero(), a.at - ack->second);
      const auto ns = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(delay).count());
      result.delay.Record(ns);
      auto [at, fresh] = spread.try_emplace(a.revision, ns, ns);
      if (!fresh) {
        at->second.first = std::min(at->second.first, ns);
        at->second.second = std::max(at->second.second, ns);
      }
    }
  }
  for (const auto& [revision, span] : spread) {
    result.delay_first.Record(span.first);
    result.delay_last.Record(span.second);
  }
  const uint64_t expected = result.probes * static_cast<uint64_t>(options.watchers);
  result.probe_missing = expected > result.probe_events ? expected - result.probe_events : 0;
  return result;
}

}  // namespace kvctl::bench
