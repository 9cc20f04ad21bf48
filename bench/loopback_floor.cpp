// loopback_floor: how long this machine's kernel takes to deliver one small
// line on each of N loopback TCP connections, the floor under kvctl's watch
// delay (bench/run.sh --only watch measures the two under the same load).
//
// A server with one connection per watcher makes at least one send per
// watcher for each event; this program makes those sends and nothing else:
// no HTTP, no store, no event queue. Each round, sender threads write one
// line on each of N accepted connections, and reader threads read them on the
// other ends with epoll, as the watchers' client in `kvctl bench --watchers`
// does. A delivery's delay runs from the round's start (the first sender
// about to make its first send) to the read that completes its line, on one
// steady clock; how long this program takes to wake its senders is reported
// apart (wake_ms). kvctl's delay over this one, in the same run, is what its
// HTTP, store and event queue add.
//
//   loopback_floor                          # 1000 connections, 40 rounds, text
//   loopback_floor --connections 200 --rounds 10 -o json
//
// Only 127.0.0.1. Exit 0 with the figures, 2 for bad arguments, 1 when the
// run fails (a socket call, or a round not delivered within kRoundTimeout),
// with what failed on stderr.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

// A round that has not delivered every line by then has failed: on a
// loopback a line takes milliseconds, so this only ends a run that is stuck.
constexpr auto kRoundTimeout = std::chrono::seconds(10);
// Between rounds, so one round's stragglers and the next round's sends do
// not overlap, and the rounds sample the load at different moments.
constexpr auto kPauseBetweenRounds = std::chrono::milliseconds(100);

struct Options {
  int connections = 1000;
  int rounds = 40;
  int line_bytes = 200;  // before the newline: 200 makes a 201-byte line, about one watch event
  int senders = 2;
  int readers = 2;
  bool json = false;
  bool help = false;
};

std::string ErrnoText(int error) { return std::string(std::strerror(error)); }

// Owns one file descriptor; closes it once.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Close();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) ::close(std::exchange(fd_, -1));
  }

 private:
  int fd_ = -1;
};

// Parses the command line; on a bad argument, says which and returns nothing.
std::optional<Options> ParseOptions(int argc, char** argv) {
  Options o;
  auto number = [&](int& i, const char* flag, int& out, int min, int max) {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "loopback_floor: %s needs a value\n", flag);
      return false;
    }
    const std::string text = argv[++i];
    char* end = nullptr;
    errno = 0;
    const long value = std::strtol(text.c_str(), &end, 10);
    if (errno != 0 || end == text.c_str() || *end != '\0' || value < min || value > max) {
      std::fprintf(stderr, "loopback_floor: %s %s: want a whole number from %d to %d\n", flag, text.c_str(), min, max);
      return false;
    }
    out = static_cast<int>(value);
    return true;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    bool ok = true;
    if (arg == "--connections") {
      ok = number(i, "--connections", o.connections, 1, 100000);
    } else if (arg == "--rounds") {
      ok = number(i, "--rounds", o.rounds, 1, 100000);
    } else if (arg == "--line-bytes") {
      ok = number(i, "--line-bytes", o.line_bytes, 1, 65536);
    } else if (arg == "--senders") {
      ok = number(i, "--senders", o.senders, 1, 64);
    } else if (arg == "--readers") {
      ok = number(i, "--readers", o.readers, 1, 64);
    } else if (arg == "-o") {
      if (i + 1 < argc && (std::string_view(argv[i + 1]) == "json" || std::string_view(argv[i + 1]) == "text")) {
        o.json = std::string_view(argv[++i]) == "json";
      } else {
        std::fprintf(stderr, "loopback_floor: -o wants json or text\n");
        ok = false;
      }
    } else if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else {
      std::fprintf(stderr, "loopback_floor: unknown argument %s (see --help)\n", argv[i]);
      ok = false;
    }
    if (!ok) return std::nullopt;
  }
  return o;
}

// The run's first failure, from whichever thread meets it; the main thread
// sees it in RunRound and ends the run.
class Failure {
 public:
  void Set(std::string what) {
    std::lock_guard lock(mu_);
    if (what_.empty()) what_ = std::move(what);
    failed_.store(true);
  }
  bool failed() const { return failed_.load(); }
  std::string what() const {
    std::lock_guard lock(mu_);
    return what_;
  }

 private:
  mutable std::mutex mu_;
  std::string what_;
  std::atomic<bool> failed_{false};
};

// One connection: the accepted end the senders write on, the connected end
// the readers read from, and what its reader has of the current round's line.
struct Connection {
  Fd sending;
  Fd receiving;
  size_t received = 0;  // bytes of the current round's line so far; only its reader touches it
};

// N connections, the sender and reader threads (made once, for every round),
// and each round's delays. Stop() (or the destructor) ends and joins every
// thread; the Fds close every socket.
class FloorRun {
 public:
  explicit FloorRun(const Options& options)
      : options_(options),
        line_(static_cast<size_t>(options.line_bytes), 'x'),
        wake_ms_(static_cast<size_t>(options.rounds) + 1),
        delays_ms_(static_cast<size_t>(options.rounds) + 1, std::vector<double>(options.connections)) {
    line_ += '\n';
  }
  FloorRun(const FloorRun&) = delete;
  FloorRun& operator=(const FloorRun&) = delete;
  ~FloorRun() { Stop(); }

  // Opens the connections and starts the threads; false (and failure()) if
  // a socket call fails.
  bool Start() {
    if (!RaiseFileLimit() || !Connect() || !SetUpReaders()) return false;
    for (int s = 0; s < options_.senders; ++s) threads_.emplace_back([this, s] { SendLoop(s); });
    for (int r = 0; r < options_.readers; ++r) threads_.emplace_back([this, r] { ReadLoop(r); });
    return true;
  }

  // Round `round` (0 is the warm-up, not reported): every line sent and read,
  // or false on a failure or after kRoundTimeout.
  bool RunRound(int round) {
    {
      std::lock_guard lock(mu_);
      delivered_ = 0;
      round_ = round;
      round_signaled_ = Clock::now();
      round_start_.reset();
      ++generation_;
    }
    go_.notify_all();
    std::unique_lock lock(mu_);
    const bool done = delivered_cv_.wait_until(lock, round_signaled_ + kRoundTimeout, [this] {
      return delivered_ == options_.connections || failure_.failed();
    });
    if (failure_.failed()) return false;
    if (!done) {
      failure_.Set("round " + std::to_string(round) + ": " + std::to_string(delivered_) + " of " +
                   std::to_string(options_.connections) + " lines delivered after " +
                   std::to_string(std::chrono::seconds(kRoundTimeout).count()) + " s");
      return false;
    }
    return true;
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    go_.notify_all();
    if (wake_readers_.valid()) {
      // Stays readable: every reader's epoll_wait returns at once from now on.
      const uint64_t one = 1;
      if (::write(wake_readers_.get(), &one, sizeof one) < 0) {
        failure_.Set("waking the readers (eventfd write): " + ErrnoText(errno));
      }
    }
    for (std::thread& t : threads_) t.join();
    threads_.clear();
  }

  const Failure& failure() const { return failure_; }
  const std::vector<double>& delays_ms(int round) const { return delays_ms_[static_cast<size_t>(round)]; }
  double wake_ms(int round) const { return wake_ms_[static_cast<size_t>(round)]; }

 private:
  // 2 descriptors per connection, beyond the usual soft limit of 1024.
  bool RaiseFileLimit() {
    const rlim_t want = static_cast<rlim_t>(options_.connections) * 2 + 64;
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
      failure_.Set("getrlimit(RLIMIT_NOFILE): " + ErrnoText(errno));
      return false;
    }
    if (limit.rlim_cur >= want) return true;
    if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < want) {
      failure_.Set(std::to_string(options_.connections) + " connections need " + std::to_string(want) +
                   " open files; the hard limit is " + std::to_string(limit.rlim_max) + " (ulimit -Hn)");
      return false;
    }
    limit.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      failure_.Set("setrlimit(RLIMIT_NOFILE, " + std::to_string(want) + "): " + ErrnoText(errno));
      return false;
    }
    return true;
  }

  bool Connect() {
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!listener.valid()) {
      failure_.Set("socket (listener): " + ErrnoText(errno));
      return false;
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;  // any free port
    socklen_t length = sizeof address;
    if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener.get(), 128) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      failure_.Set("listening on 127.0.0.1: " + ErrnoText(errno));
      return false;
    }
    connections_.resize(static_cast<size_t>(options_.connections));
    const int one = 1;
    for (size_t i = 0; i < connections_.size(); ++i) {
      Connection& c = connections_[i];
      c.receiving = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!c.receiving.valid() ||
          ::connect(c.receiving.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        failure_.Set("connection " + std::to_string(i) +
                     ": connect to 127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + ": " + ErrnoText(errno));
        return false;
      }
      c.sending = Fd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!c.sending.valid()) {
        failure_.Set("connection " + std::to_string(i) + ": accept: " + ErrnoText(errno));
        return false;
      }
      // As a server sending events does: each line leaves at once, not held
      // back for more (Nagle).
      if (::setsockopt(c.sending.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0) {
        failure_.Set("connection " + std::to_string(i) + ": TCP_NODELAY: " + ErrnoText(errno));
        return false;
      }
    }
    return true;
  }

  // One epoll set per reader over its share of the connections (i % readers),
  // and an eventfd in each that Stop() makes readable.
  bool SetUpReaders() {
    wake_readers_ = Fd(::eventfd(0, EFD_CLOEXEC));
    if (!wake_readers_.valid()) {
      failure_.Set("eventfd: " + ErrnoText(errno));
      return false;
    }
    for (int r = 0; r < options_.readers; ++r) {
      Fd epoll(::epoll_create1(EPOLL_CLOEXEC));
      if (!epoll.valid()) {
        failure_.Set("epoll_create1: " + ErrnoText(errno));
        return false;
      }
      epoll_event wake{};
      wake.events = EPOLLIN;
      wake.data.u32 = kWakeTag;
      if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake_readers_.get(), &wake) != 0) {
        failure_.Set("epoll_ctl (eventfd): " + ErrnoText(errno));
        return false;
      }
      epolls_.push_back(std::move(epoll));
    }
    for (size_t i = 0; i < connections_.size(); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;  // level-triggered, as kvctl bench's watchers
      ev.data.u32 = static_cast<uint32_t>(i);
      if (::epoll_ctl(epolls_[i % epolls_.size()].get(), EPOLL_CTL_ADD, connections_[i].receiving.get(), &ev) != 0) {
        failure_.Set("connection " + std::to_string(i) + ": epoll_ctl: " + ErrnoText(errno));
        return false;
      }
    }
    return true;
  }

  // Sender s writes on connections s, s + senders, ... once per round.
  void SendLoop(int s) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        go_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        // The first sender to wake starts the round: the floor is the
        // kernel's sends and reads, not this program waking its senders.
        if (!round_start_) {
          round_start_ = Clock::now();
          wake_ms_[static_cast<size_t>(round_)] =
              std::chrono::duration<double, std::milli>(*round_start_ - round_signaled_).count();
        }
      }
      for (size_t i = static_cast<size_t>(s); i < connections_.size(); i += static_cast<size_t>(options_.senders)) {
        if (!SendLine(i)) return;
      }
    }
  }

  bool SendLine(size_t i) {
    size_t sent = 0;
    while (sent < line_.size()) {
      const ssize_t n = ::send(connections_[i].sending.get(), line_.data() + sent, line_.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        Fail("connection " + std::to_string(i) + ": send: " + (n < 0 ? ErrnoText(errno) : "sent nothing"));
        return false;
      }
      sent += static_cast<size_t>(n);
    }
    return true;
  }

  void ReadLoop(int r) {
    const int epoll = epolls_[static_cast<size_t>(r)].get();
    std::vector<epoll_event> events(256);
    std::vector<char> buffer(line_.size() + 4096);
    for (;;) {
      const int n = ::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        Fail("epoll_wait: " + ErrnoText(errno));
        return;
      }
      for (int e = 0; e < n; ++e) {
        const uint32_t tag = events[static_cast<size_t>(e)].data.u32;
        if (tag == kWakeTag) return;  // Stop()
        if (!ReadLine(tag, buffer)) return;
      }
    }
  }

  // Reads what connection i has; when that completes the round's line,
  // records the delay and counts it.
  bool ReadLine(uint32_t i, std::vector<char>& buffer) {
    Connection& c = connections_[i];
    const ssize_t n = ::recv(c.receiving.get(), buffer.data(), buffer.size(), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    const Clock::time_point now = Clock::now();  // as kvctl bench's watchers: right after the read
    if (n <= 0) {
      Fail("connection " + std::to_string(i) + ": recv: " + (n < 0 ? ErrnoText(errno) : "closed by the other end"));
      return false;
    }
    c.received += static_cast<size_t>(n);
    if (c.received < line_.size()) return true;
    if (c.received > line_.size()) {
      Fail("connection " + std::to_string(i) + ": " + std::to_string(c.received) + " bytes in one round, want " +
           std::to_string(line_.size()));
      return false;
    }
    c.received = 0;  // the next round's line starts afresh
    std::lock_guard lock(mu_);
    delays_ms_[static_cast<size_t>(round_)][i] = std::chrono::duration<double, std::milli>(now - *round_start_).count();
    if (++delivered_ == options_.connections) delivered_cv_.notify_one();
    return true;
  }

  void Fail(std::string what) {
    failure_.Set(std::move(what));
    std::lock_guard lock(mu_);  // so RunRound's wait cannot miss the wake-up
    delivered_cv_.notify_one();
  }

  static constexpr uint32_t kWakeTag = UINT32_MAX;

  const Options options_;
  std::string line_;
  std::vector<Connection> connections_;
  std::vector<Fd> epolls_;
  Fd wake_readers_;
  std::vector<std::thread> threads_;
  Failure failure_;

  std::mutex mu_;
  std::condition_variable go_;            // senders: a new round (generation_) or stopping_
  std::condition_variable delivered_cv_;  // RunRound: delivered_ reached N, or a failure
  uint64_t generation_ = 0;
  bool stopping_ = false;
  int round_ = 0;
  Clock::time_point round_signaled_{};            // RunRound woke the senders
  std::optional<Clock::time_point> round_start_;  // the first sender began sending
  std::vector<double> wake_ms_;                   // [round]: signaled -> start
  int delivered_ = 0;
  std::vector<std::vector<double>> delays_ms_;  // [round][connection]
};

// The nearest-rank percentile of sorted values: the smallest value with at
// least per_mille thousandths of them at or below it (integers: no rounding).
double Percentile(const std::vector<double>& sorted, size_t per_mille) {
  const size_t rank = std::clamp<size_t>((per_mille * sorted.size() + 999) / 1000, 1, sorted.size());
  return sorted[rank - 1];
}

}  // namespace

int main(int argc, char** argv) {
  const std::optional<Options> options = ParseOptions(argc, argv);
  if (!options) return 2;
  if (options->help) {
    std::printf(
        "usage: loopback_floor [--connections N] [--rounds R] [--line-bytes B] [--senders S] [--readers R]\n"
        "                      [-o json|text]\n"
        "Writes B bytes and a newline on each of N loopback TCP connections (S sender threads), reads\n"
        "them (R epoll threads), R rounds, and prints the delay percentiles in ms.\n"
        "Defaults: 1000 connections, 40 rounds, 200 bytes, 2 senders, 2 readers, text.\n");
    return 0;
  }

  std::vector<double> delays;  // every delivery of every reported round
  std::vector<double> lasts;   // each reported round's last delivery
  std::vector<double> wakes;   // each reported round's signal -> first send
  {
    FloorRun run(*options);
    bool ok = run.Start();
    // Round 0 warms up (first sends on fresh connections) and is not reported.
    for (int round = 0; ok && round <= options->rounds; ++round) {
      if (round > 0) std::this_thread::sleep_for(kPauseBetweenRounds);
      ok = run.RunRound(round);
      if (ok && round > 0) {
        const std::vector<double>& d = run.delays_ms(round);
        delays.insert(delays.end(), d.begin(), d.end());
        lasts.push_back(*std::max_element(d.begin(), d.end()));
        wakes.push_back(run.wake_ms(round));
      }
    }
    run.Stop();
    if (run.failure().failed()) {
      std::fprintf(stderr, "loopback_floor: %s\n", run.failure().what().c_str());
      return 1;
    }
  }  // every socket closed here

  std::sort(delays.begin(), delays.end());
  std::sort(lasts.begin(), lasts.end());
  std::sort(wakes.begin(), wakes.end());
  const Options& o = *options;
  if (o.json) {
    std::printf(
        "{\"connections\":%d,\"rounds\":%d,\"bytes_per_line\":%d,\"senders\":%d,\"readers\":%d,"
        "\"delay_ms\":{\"p50\":%.3f,\"p99\":%.3f},\"last_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},"
        "\"wake_ms\":{\"p50\":%.3f,\"max\":%.3f}}\n",
        o.connections, o.rounds, o.line_bytes + 1, o.senders, o.readers, Percentile(delays, 500),
        Percentile(delays, 990), Percentile(lasts, 500), Percentile(lasts, 990), lasts.back(), Percentile(wakes, 500),
        wakes.back());
  } else {
    std::printf(
        "loopback floor: %d connections, %d rounds, one %d-byte line each, %d sender and %d reader threads\n"
        "  delay from a round's start to each line read: p50 %.2f ms, p99 %.2f ms\n"
        "  to a round's last line:                       p50 %.2f ms, p99 %.2f ms, max %.2f ms\n"
        "  (not counted: waking the senders took p50 %.2f ms, max %.2f ms)\n",
        o.connections, o.rounds, o.line_bytes + 1, o.senders, o.readers, Percentile(delays, 500),
        Percentile(delays, 990), Percentile(lasts, 500), Percentile(lasts, 990), lasts.back(), Percentile(wakes, 500),
        wakes.back());
  }
  return 0;
}
