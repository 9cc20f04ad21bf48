#include "lib/bench/lease_expiry.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lib/bench/blocking_http.h"
#include "lib/bench/chunked_lines.h"
#include "lib/bench/response_parser.h"
#include "lib/core/lease.h"

namespace kvctl::bench {
namespace {

using Clock = std::chrono::steady_clock;

// Connections granting leases and attaching their keys, each one request
// at a time: enough that 1,000 grants and attaches (two commits each) keep
// to their timetable over one second while the load's commits take
// milliseconds each.
constexpr int kGranters = 32;
constexpr auto kRetryWatch = std::chrono::milliseconds(100);
constexpr auto kWatchPoll = std::chrono::milliseconds(20);  // how soon the watch sees it should stop
constexpr size_t kMaxHead = 64 * 1024;

std::string KeyOf(const std::string& prefix, int index) { return fmt::format("{}{:06d}", prefix, index); }

// One lease of the run, as its granter saw it.
struct Lease {
  bool attached = false;
  Clock::time_point sent{};   // the grant went out
  Clock::time_point acked{};  // its answer came
  uint64_t attach_revision = 0;  // the PUT attaching the key (its ETag)
};

// A delete event of one of the run's keys.
struct Deletion {
  int index;
  uint64_t revision;
  Clock::time_point at;
};

// The watch on the prefix: one blocking stream, read by one thread, which
// notes every delete of a key PREFIX<digits>. A stream that ends is
// resumed after the last revision it reported.
class DeleteWatch {
 public:
  DeleteWatch(const Endpoint& endpoint, std::string auth, const LeaseExpiryOptions& o)
      : endpoint_(endpoint), auth_(std::move(auth)), options_(o),
        delete_json_(fmt::format("\"op\":\"delete\",\"key\":\"{}", o.prefix)) {}
  ~DeleteWatch() { Close(); }

  // Opens the stream and reads its head: the events start after it.
  core::Status Open() {
    auto fd = Dial(endpoint_, false);
    if (!fd) return fd.error();
    fd_ = *fd;
    const timeval tv{0, static_cast<suseconds_t>(std::chrono::microseconds(kWatchPoll).count())};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const std::string from = next_revision_ > 0 ? fmt::format("&from={}", next_revision_) : "";
    const std::string request = fmt::format("GET /v1/watch?prefix={}{} HTTP/1.1\r\nHost: {}\r\n{}\r\n",
                                            PercentEncode(options_.prefix), from, endpoint_.host_header, auth_);
    if (::send(fd_, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
      Close();
      return core::Status::Unavailable("connection closed");
    }
    std::string head;
    const auto give_up = Clock::now() + std::chrono::seconds(10);
    char buffer[4096];
    size_t end = std::string::npos;
    while ((end = head.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n > 0) {
        head.append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        Close();
        return core::Status::Unavailable("connection closed");
      }
      if (Clock::now() > give_up || head.size() > kMaxHead) {
        Close();
        return core::Status::Unavailable("no answer to the watch request");
      }
    }
    const ParsedResponse r = ParseResponse(std::string_view(head).substr(0, end + 4));
    if (r.status != 200) {
      Close();
      return core::Status::Unavailable(fmt::format("the watch answered status {}", r.status));
    }
    // Without `from` the stream starts after the revision the head names.
    if (uint64_t revision = 0; next_revision_ == 0 && HeaderNumber(head, "x-kvctl-revision", &revision)) {
      next_revision_ = revision + 1;
    }
    body_ = std::make_unique<ChunkedLines>();
    Feed(std::string_view(head).substr(end + 4), Clock::now());
    return core::Status::Ok();
  }

  // Reads until `stop`; resumes a stream that ends.
  void Run(const std::atomic<bool>& stop) {
    char buffer[64 * 1024];
    while (!stop.load()) {
      if (fd_ < 0) {
        if (core::Status s = Open(); !s.ok()) {
          ++errors_["watch reopen failed"];
          std::this_thread::sleep_for(kRetryWatch);
          continue;
        }
        ++resumed_;
      }
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (n <= 0) {
        Close();
        continue;
      }
      if (Feed(std::string_view(buffer, static_cast<size_t>(n)), Clock::now()) != ChunkedLines::State::kOpen) {
        Close();
      }
    }
    Close();
  }

  const std::vector<Deletion>& deletions() const { return deletions_; }
  uint64_t seen() const { return seen_.load(); }
  uint64_t resumed() const { return resumed_; }
  const std::map<std::string, uint64_t>& errors() const { return errors_; }

 private:
  ChunkedLines::State Feed(std::string_view data, Clock::time_point now) {
    const ChunkedLines::State state = body_->Feed(data, [&](std::string_view line) {
      uint64_t revision = 0;
      if (line.starts_with("{\"revision\":")) {
        std::from_chars(line.data() + 12, line.data() + line.size(), revision);
        next_revision_ = std::max(next_revision_, revision + 1);
        const size_t at = line.find(delete_json_);
        if (at == std::string_view::npos) return;
        const std::string_view rest = line.substr(at + delete_json_.size());
        int index = -1;
        const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), index);
        if (ec != std::errc() || end == rest.data() + rest.size() || *end != '"') return;
        if (index < 0 || index >= options_.leases) return;
        deletions_.push_back({index, revision, now});
        ++seen_;
      } else if (line.starts_with("{\"progress\":")) {
        std::from_chars(line.data() + 12, line.data() + line.size(), revision);
        next_revision_ = std::max(next_revision_, revision + 1);
      } else if (line.starts_with("{\"error\":")) {
        ++errors_["watch cut off"];
      }
    });
    if (state == ChunkedLines::State::kBad) ++errors_["watch bad response"];
    return state;
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  const Endpoint& endpoint_;
  const std::string auth_;
  const LeaseExpiryOptions& options_;
  const std::string delete_json_;  // what a delete event of PREFIX... holds, up to the digits
  int fd_ = -1;
  std::unique_ptr<ChunkedLines> body_;
  uint64_t next_revision_ = 0;  // where a resumed stream starts (0: not known yet)
  std::vector<Deletion> deletions_;
  std::atomic<uint64_t> seen_{0};
  uint64_t resumed_ = 0;
  std::map<std::string, uint64_t> errors_;
};

// Grants and attaches the leases i = first, first + step, ... each at its
// time on the timetable.
class Granter {
 public:
  Granter(const Endpoint& endpoint, const std::string& auth, const LeaseExpiryOptions& o,
          std::chrono::milliseconds timeout, std::vector<Lease>& leases)
      : http_(endpoint, auth, timeout), options_(o), leases_(leases),
        grant_body_(fmt::format("{{\"ttl\":{}}}", o.ttl.count())) {}

  const std::map<std::string, uint64_t>& errors() const { return errors_; }

  void Run(Clock::time_point start, int first, int step) {
    const auto n = static_cast<int64_t>(options_.leases);
    for (int i = first; i < options_.leases; i += step) {
      std::this_thread::sleep_until(start + std::chrono::duration_cast<Clock::duration>(options_.spread) * i / n);
      Lease& lease = leases_[static_cast<size_t>(i)];
      lease.sent = Clock::now();
      auto granted = http_.Send("POST", "/v1/lease", grant_body_);
      lease.acked = Clock::now();
      const std::optional<uint64_t> id = LeaseId(granted);
      if (!id) continue;
      auto attached =
          http_.Send("PUT", fmt::format("/v1/kv/{}?lease={}", PercentEncode(KeyOf(options_.prefix, i)), *id), "v");
      if (!attached) {
        ++errors_["attach " + attached.error().message()];
      } else if (attached->status < 200 || attached->status >= 300) {
        ++errors_[fmt::format("attach status {}", attached->status)];
      } else if (!HeaderNumber(attached->head, "etag", &lease.attach_revision)) {
        ++errors_["attach answer without ETag"];
      } else {
        lease.attached = true;
      }
    }
  }

 private:
  std::optional<uint64_t> LeaseId(const core::Result<HttpAnswer>& granted) {
    if (!granted) {
      ++errors_["grant " + granted.error().message()];
      return std::nullopt;
    }
    if (granted->status != 200) {
      ++errors_[fmt::format("grant status {}", granted->status)];
      return std::nullopt;
    }
    const nlohmann::json j = nlohmann::json::parse(granted->body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("id") || !j["id"].is_number_unsigned()) {
      ++errors_["grant answer without an id"];
      return std::nullopt;
    }
    return j["id"].get<uint64_t>();
  }

  BlockingHttp http_;
  const LeaseExpiryOptions& options_;
  std::vector<Lease>& leases_;
  const std::string grant_body_;
  std::map<std::string, uint64_t> errors_;
};

uint64_t Ns(Clock::duration d) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

}  // namespace

uint64_t LeaseExpiryResult::error_count() const {
  uint64_t n = 0;
  for (const auto& [kind, count] : errors) n += count;
  return n;
}

core::Status ValidateLeaseExpiry(const LeaseExpiryOptions& o, const LoadOptions& load) {
  using core::Status;
  if (o.leases < 1 || o.leases > 100000) return Status::InvalidArgument("--lease-expiry must be from 1 to 100000");
  if (o.ttl.count() < core::kMinLeaseTtl || o.ttl.count() > core::kMaxLeaseTtl) {
    return Status::InvalidArgument(
        fmt::format("--lease-ttl must be whole seconds from {}s to {}s (a year)", core::kMinLeaseTtl, core::kMaxLeaseTtl));
  }
  if (o.prefix.empty() || o.prefix.size() > 1024) {
    return Status::InvalidArgument("--lease-prefix must be from 1 to 1024 bytes");
  }
  // The watch's events carry the key as a JSON string: a prefix that JSON
  // escapes (or gives as base64) would not be found in them.
  if (std::any_of(o.prefix.begin(), o.prefix.end(), [](char c) {
        return c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e;
      })) {
    return Status::InvalidArgument("--lease-prefix must be printable ASCII without '\"' or '\\'");
  }
  if (load.requests > 0) return Status::InvalidArgument("--lease-expiry runs by --duration, not --requests");
  if (load.tls.enabled) return Status::InvalidArgument("--lease-expiry speaks plain HTTP only (give an http:// --addr)");
  // The deadlines, and a second for the ends, fall within the load.
  const auto needed = std::chrono::duration_cast<std::chrono::milliseconds>(o.ttl) + o.spread + std::chrono::seconds(1);
  if (load.duration < needed) {
    return Status::InvalidArgument(fmt::format(
        "--duration must be at least {}s with --lease-ttl {}s: the leases are granted over 1 s, and their ends "
        "must fall within the load",
        std::chrono::duration_cast<std::chrono::seconds>(needed).count(), o.ttl.count()));
  }
  return Status::Ok();
}

core::Result<LeaseExpiryRun> RunLeaseExpiry(const LeaseExpiryOptions& options, const LoadOptions& load) {
  if (core::Status s = ValidateLeaseExpiry(options, load); !s.ok()) return s;
  if (core::Status s = Validate(load); !s.ok()) return s;
  auto endpoint = Resolve(load.host, load.port);
  if (!endpoint) return endpoint.error();
  const std::string auth = load.token.empty() ? "" : fmt::format("Authorization: Bearer {}\r\n", load.token);

  DeleteWatch watch(*endpoint, auth, options);
  if (core::Status s = watch.Open(); !s.ok()) {
    return core::Status::Unavailable(fmt::format("cannot watch {}: {}", options.prefix, s.message()));
  }
  std::atomic<bool> stop_watch{false};
  std::thread watching([&] { watch.Run(stop_watch); });

  const Clock::time_point start = Clock::now();
  std::optional<core::Result<LoadResult>> loaded;
  std::thread loading([&] { loaded = RunLoad(load); });

  // The grants start once the load is past its warmup.
  std::vector<Lease> leases(static_cast<size_t>(options.leases));
  const Clock::time_point grants_from = start + load.warmup;
  const int granters = std::min(kGranters, options.leases);
  std::vector<std::unique_ptr<Granter>> granting;
  for (int g = 0; g < granters; ++g) {
    granting.push_back(std::make_unique<Granter>(*endpoint, auth, options, load.timeout, leases));
  }
  std::vector<std::thread> threads;
  for (int g = 0; g < granters; ++g) {
    threads.emplace_back([&, g] { granting[static_cast<size_t>(g)]->Run(grants_from, g, granters); });
  }
  for (std::thread& t : threads) t.join();

  LeaseExpiryResult result;
  result.leases = options.leases;
  Clock::time_point first_deadline = Clock::time_point::max();
  Clock::time_point last_deadline = Clock::time_point::min();
  for (const Lease& lease : leases) {
    if (!lease.attached) continue;
    ++result.attached;
    first_deadline = std::min(first_deadline, lease.acked + options.ttl);
    last_deadline = std::max(last_deadline, lease.acked + options.ttl);
  }
  if (result.attached > 0) {
    result.deadline_spread_s = std::chrono::duration<double>(last_deadline - first_deadline).count();
    const Clock::time_point give_up = last_deadline + options.grace;
    while (watch.seen() < result.attached && Clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  stop_watch = true;
  watching.join();
  loading.join();
  if (!loaded->has_value()) return loaded->error();

  const Clock::time_point load_end = start + load.warmup + load.duration;
  std::vector<bool> seen(leases.size(), false);
  for (const Deletion& d : watch.deletions()) {
    const Lease& lease = leases[static_cast<size_t>(d.index)];
    // Only the delete after this run's attach (an older one may be of a
    // key of an earlier run), and once.
    if (!lease.attached || d.revision <= lease.attach_revision || seen[static_cast<size_t>(d.index)]) continue;
    seen[static_cast<size_t>(d.index)] = true;
    ++result.seen;
    if (d.at < load_end) ++result.seen_under_load;
    const Clock::time_point deadline = lease.acked + options.ttl;
    if (d.at < deadline) ++result.before_deadline;
    result.delay.Record(d.at > deadline ? Ns(d.at - deadline) : 0);
    const Clock::time_point earliest = lease.sent + options.ttl;
    result.delay_from_sent.Record(d.at > earliest ? Ns(d.at - earliest) : 0);
  }
  result.missing = result.attached - result.seen;
  result.watch_resumed = watch.resumed();
  result.errors = watch.errors();
  for (const auto& g : granting) {
    for (const auto& [kind, count] : g->errors()) result.errors[kind] += count;
  }
  return LeaseExpiryRun{std::move(result), std::move(**loaded)};
}

}  // namespace kvctl::bench
