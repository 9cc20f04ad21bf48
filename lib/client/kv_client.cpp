#include "lib/client/kv_client.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/err.h>

#include "lib/bench/bench_tls.h"
#include "lib/core/base64.h"
#include "lib/core/percent_encoding.h"
#include "lib/tls/tls_stream.h"

namespace kvctl::client {
namespace {

using nlohmann::json;
using core::Status;
using Clock = std::chrono::steady_clock;

// The header every kvctl answer carries (SPEC §6, §8).
constexpr const char* kRevisionHeader = "X-Kvctl-Revision";

// What a listing item may take in JSON besides its value's base64: a key of
// limits.max_key_bytes (at most 2048 bytes) escaped as \u00XX and again as
// key_base64, its revision and the field names.
constexpr size_t kListingItemOverhead = size_t{32} << 10;

// How often the watchdog looks at what a running request has received.
constexpr std::chrono::milliseconds kWatchEvery{50};

// How long a failed https request's second look for the server's TLS alert
// may take (within the request's deadline); the alert comes at once.
constexpr std::chrono::seconds kTlsProbeWait{2};

std::string NormalizeBaseUrl(std::string addr) {
  if (addr.find("://") == std::string::npos) addr = "http://" + addr;
  while (!addr.empty() && addr.back() == '/') addr.pop_back();
  return addr;
}

std::string KeyPath(std::string_view key) { return "/v1/kv/" + core::PercentEncode(key); }

std::string HumanBytes(uint64_t n) {
  if (n >= (uint64_t{1} << 20) && n % (uint64_t{1} << 20) == 0) return fmt::format("{} MiB", n >> 20);
  if (n >= (uint64_t{1} << 10) && n % (uint64_t{1} << 10) == 0) return fmt::format("{} KiB", n >> 10);
  return fmt::format("{} bytes", n);
}

std::string Seconds(std::chrono::milliseconds d) {
  if (d.count() % 1000 == 0) return fmt::format("{}s", d.count() / 1000);
  return fmt::format("{}ms", d.count());
}

// The listing page bound for values of up to `max_value_bytes`.
size_t ListingPageBound(size_t max_value_bytes) {
  const size_t one_item = (max_value_bytes + 2) / 3 * 4 + kListingItemOverhead;
  return std::max(kMaxListingPageBytes, one_item);
}

// A kvctl answer, read whole and within its bound.
struct Answer {
  int status = 0;
  httplib::Headers headers;
  std::string body;

  std::string Header(const char* name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  // The JSON error's "code" and "error", if the body is one.
  std::string Code() const { return Field("code"); }
  std::string Message() const {
    std::string m = Field("error");
    return m.empty() ? fmt::format("HTTP {}", status) : m;
  }

 private:
  std::string Field(const char* name) const {
    json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains(name) && j[name].is_string()) return j[name].get<std::string>();
    return {};
  }
};

uint64_t NumberHeader(const Answer& a, const char* name) {
  const std::string text = a.Header(name);
  uint64_t n = 0;
  std::from_chars(text.data(), text.data() + text.size(), n);
  return n;
}

core::KeyMeta MetaFromHeaders(const Answer& a) {
  return {NumberHeader(a, "X-Kvctl-Create-Revision"), NumberHeader(a, "X-Kvctl-Version"),
          NumberHeader(a, "X-Kvctl-Lease")};
}

uint64_t RevisionFromETag(const Answer& a) {
  std::string tag = a.Header("ETag");
  if (tag.size() >= 2 && tag.front() == '"') tag = tag.substr(1, tag.size() - 2);
  uint64_t rev = 0;
  std::from_chars(tag.data(), tag.data() + tag.size(), rev);
  return rev;
}

// A key field of a JSON object: the exact bytes from "<name>_base64" when
// the server sent it (the key is not valid UTF-8), else the string.
core::Result<std::string> KeyField(const json& obj, const std::string& name) {
  if (auto it = obj.find(name + "_base64"); it != obj.end() && it->is_string()) {
    return core::Base64Decode(it->get<std::string>());
  }
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) {
    return Status::Unavailable(fmt::format("the server's reply lacks \"{}\" (is the server a kvctl of another "
                                           "version? compare kvctl version on both sides)",
                                           name));
  }
  return it->get<std::string>();
}

// OpenSSL's reason for the failure of the request that just ended on this
// thread (its first error, the cause), e.g. "tlsv13 alert certificate
// required"; "" when it left none. Empties the thread's error queue.
std::string TakeTlsReason() {
  std::string reason;
  for (unsigned long e = ERR_get_error(); e != 0; e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    if (reason.empty() && r != nullptr) reason = r;
  }
  return reason;
}

bool Has(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// Which setting to look at for an OpenSSL reason.
std::string TlsHint(std::string_view reason) {
  if (Has(reason, "certificate required")) {
    return "the server requires a client certificate: set client.cert and client.key (--cert, --key)";
  }
  if (Has(reason, "certificate expired")) return "client.cert (--cert) has expired: renew it";
  if (Has(reason, "certificate revoked")) return "client.cert (--cert) was revoked: get a new one";
  if (Has(reason, "unknown ca") || Has(reason, "bad certificate") || Has(reason, "certificate unknown") ||
      Has(reason, "unsupported certificate") || Has(reason, "decrypt error") || Has(reason, "access denied")) {
    return "the server does not accept this client certificate: check client.cert and client.key (--cert, "
           "--key); the certificate must be signed by a CA in the server's tls.client_ca";
  }
  if (Has(reason, "protocol version") || Has(reason, "handshake failure") || Has(reason, "no shared cipher") ||
      Has(reason, "insufficient security")) {
    return "the server and kvctl share no TLS version or cipher: check the server's TLS settings";
  }
  return "check client.cert, client.key and client.cacert (--cert, --key, --cacert) against the server's "
         "TLS settings";
}

// How OpenSSL says that what came back to its ClientHello was no TLS: bytes
// of another protocol (a plain HTTP answer), or the connection closed. A TLS
// server always answers the ClientHello, even one that refuses the client
// (with an alert), so neither comes from a refused client certificate.
std::string NotTls(httplib::Error error, std::string_view reason) {
  if (Has(reason, "wrong version number") || Has(reason, "packet length too long") ||
      Has(reason, "record layer failure") || Has(reason, "http request")) {
    return "it answered in another protocol";
  }
  if (error == httplib::Error::SSLConnection && Has(reason, "unexpected eof")) return "it closed the connection";
  return {};
}

// What a transport failure means to someone at a shell prompt, and what to
// try. `tls_reason` is OpenSSL's, when it gave one.
std::string Describe(const std::string& base_url, httplib::Error error, bool https, const std::string& tls_reason) {
  if (const std::string not_tls = https ? NotTls(error, tls_reason) : ""; !not_tls.empty()) {
    return fmt::format(
        "the server at {} did not answer TLS: {}, OpenSSL says \"{}\" (does it speak plain HTTP there? then give an "
        "http:// address; else check client.addr, --addr)",
        base_url, not_tls, tls_reason);
  }
  if (https && !tls_reason.empty() && error != httplib::Error::SSLServerVerification &&
      error != httplib::Error::SSLLoadingCerts) {
    return fmt::format("{} {}: {} ({})",
                       Has(tls_reason, "alert") ? "the server refused the TLS handshake at"
                                                : "the TLS handshake failed with",
                       base_url, tls_reason, TlsHint(tls_reason));
  }
  constexpr std::string_view kWhere =
      " (is `kvctl serve` running there? point --addr or KVCTL_CLIENT_ADDR at it)";
  std::string what;
  switch (error) {
    case httplib::Error::Connection: what = fmt::format("connection refused or failed{}", kWhere); break;
    case httplib::Error::ConnectionTimeout: what = fmt::format("connecting timed out{}", kWhere); break;
    case httplib::Error::Read:
    case httplib::Error::Write:
      what = fmt::format(
          "{} ({})",
          error == httplib::Error::Read ? "no answer: the connection was closed or timed out"
                                        : "sending the request failed",
          https ? "a server that does not speak TLS closes the connection, and so does one that requires client "
                  "certificates when --cert and --key are missing or not signed by its CA"
                : "if the server uses TLS, give an https:// address");
      break;
    case httplib::Error::SSLConnection:
      what = "the TLS handshake failed (is it a TLS server? give an http:// address if not; a server that "
             "requires client certificates refuses a client without --cert and --key, or with one its CA did not "
             "sign)";
      break;
    case httplib::Error::SSLServerVerification:
      what = "the server's certificate did not verify (it must be signed by --cacert, or a "
             "system CA, and name this host)";
      break;
    case httplib::Error::SSLLoadingCerts:
      what = "cannot load the CA certificates (check client.cacert, --cacert: a PEM file)";
      break;
    default: what = fmt::format("{} (check client.addr, --addr)", httplib::to_string(error)); break;
  }
  return fmt::format("cannot reach the kvctl server at {}: {}", base_url, what);
}

// "host", "port" of "scheme://host:port" ("[::1]:7070" too).
std::pair<std::string, std::string> HostAndPort(const std::string& base_url) {
  std::string hostport = base_url.substr(base_url.find("://") + 3);
  const size_t colon = hostport.rfind(':');
  std::string port = colon == std::string::npos ? "443" : hostport.substr(colon + 1);
  std::string host = hostport.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, port};
}

// A non-blocking socket connected to host:port by `until`, or -1.
int ConnectBy(const std::string& host, const std::string& port, Clock::time_point until) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      pollfd p{fd, POLLOUT, 0};
      int error = 0;
      socklen_t len = sizeof(error);
      if (errno != EINPROGRESS || left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1 ||
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
        ::close(fd);
        fd = -1;
      }
    }
  }
  ::freeaddrinfo(found);
  return fd;
}

// Why a server closed a TLS connection once the handshake was done, read
// from a second session: with TLS 1.3 the server judges the client's
// certificate after the client's side of the handshake is over, and its
// alert arrives while httplib writes the request; the write fails and
// nothing ever reads the alert. This session reads before it writes.
// OpenSSL's reason ("tlsv13 alert certificate required"), or "" when the
// server sent none by `until`.
std::string ProbeTlsRefusal(const std::string& base_url, const ClientOptions& o, Clock::time_point until) {
  auto context = bench::MakeClientTlsContext({true, o.cacert, o.cert, o.key});
  if (!context) return {};
  const auto [host, port] = HostAndPort(base_url);
  const int fd = ConnectBy(host, port, until);
  if (fd < 0) return {};
  std::string reason;
  std::unique_ptr<tls::Stream> stream = tls::Stream::Make(*context, fd, host);
  while (stream != nullptr) {
    tls::IoResult r = stream->Handshake();
    if (r.status == tls::IoResult::kOk) {
      char ignored[256];
      r = stream->Read(ignored, sizeof ignored);
    }
    if (r.status == tls::IoResult::kError) {
      // "error:0A00045C:SSL routines::tlsv13 alert certificate required; ..."
      const std::string first = stream->error().substr(0, stream->error().find("; "));
      reason = first.substr(first.rfind(':') + 1);
      break;
    }
    if (r.status != tls::IoResult::kWantRead && r.status != tls::IoResult::kWantWrite) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    pollfd p{fd, static_cast<short>(r.status == tls::IoResult::kWantRead ? POLLIN : POLLOUT), 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1) break;
  }
  stream.reset();
  ::close(fd);
  return reason;
}

// OpenSSL writes to the socket with write(2), which raises SIGPIPE when the
// server has closed the connection (say, after refusing the handshake), and
// SIGPIPE would kill the process before the error could be reported. The
// signal is blocked in this thread while a request runs, and one raised
// meanwhile is taken off the thread before unblocking: per thread, so
// clients on other threads and the process's own disposition are untouched.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlocked() {
    if (sigismember(&old_, SIGPIPE) == 0) {
      const timespec none{0, 0};
      while (sigtimedwait(&pipe_, nullptr, &none) == SIGPIPE) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t pipe_;
  sigset_t old_;
};

// The bytes a TCP socket has received since it was opened, or nullopt.
// glibc's struct tcp_info stops before tcpi_bytes_received (Linux 4.1), and
// <linux/tcp.h> cannot be included beside it; the kernel only ever appends
// to the struct, so its layout up to there is fixed.
std::optional<uint64_t> BytesReceived(int fd) {
  struct {
    tcp_info glibc;
    uint64_t pacing_rate;
    uint64_t max_pacing_rate;
    uint64_t bytes_acked;
    uint64_t bytes_received;
  } info{};
  socklen_t len = sizeof(info);
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 || len < sizeof(info)) return std::nullopt;
  return info.bytes_received;
}

// Why the watchdog ended a request.
enum class Fired { kNo, kDeadline, kTooMuch, kCancelled };

// No bound on what a request may receive (a stream, once its head is in).
constexpr uint64_t kUnbounded = UINT64_MAX;

// Ends the request in flight at its deadline, or when its socket has
// received more than the answer may hold. httplib bounds each socket
// operation, not a request (a server sending a byte every few seconds holds
// it for ever), and reads a response head of any size; shutting the socket
// down fails the request at once, wherever httplib is.
class Watchdog {
 public:
  Watchdog() : thread_([this] { Loop(); }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      quit_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // httplib made a new socket for the client (before connecting it).
  void OnSocket(int fd) {
    std::lock_guard lock(mu_);
    fd_ = fd;
    baseline_ = 0;
    if (cancelled_) ::shutdown(fd_, SHUT_RDWR);
  }
  void Arm(Clock::time_point deadline, uint64_t max_bytes) {
    {
      std::lock_guard lock(mu_);
      armed_ = true;
      fired_ = Fired::kNo;
      deadline_ = deadline;
      max_bytes_ = max_bytes;
      // A kept-alive connection has received earlier answers.
      baseline_ = fd_ >= 0 ? BytesReceived(fd_).value_or(0) : 0;
      if (cancelled_) Stop(Fired::kCancelled);
    }
    cv_.notify_one();
  }
  // A stream's body: a new deadline (now + its idle time) each time bytes
  // arrive, and no bound on the bytes in all.
  void Extend(Clock::time_point deadline) {
    {
      std::lock_guard lock(mu_);
      deadline_ = deadline;
      max_bytes_ = kUnbounded;
    }
    cv_.notify_one();
  }
  // Ends the request in flight, and any later one as it is armed.
  void Cancel() {
    {
      std::lock_guard lock(mu_);
      cancelled_ = true;
      if (armed_) Stop(Fired::kCancelled);
    }
    cv_.notify_one();
  }
  bool cancelled() const {
    std::lock_guard lock(mu_);
    return cancelled_;
  }
  // `socket_open`: whether httplib kept the connection; a closed socket's
  // number may be reused, so it is forgotten.
  Fired Disarm(bool socket_open) {
    std::lock_guard lock(mu_);
    armed_ = false;
    if (!socket_open) fd_ = -1;
    return fired_;
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (!quit_) {
      if (!armed_ || fired_ != Fired::kNo) {
        cv_.wait(lock);
        continue;
      }
      const auto now = Clock::now();
      if (now >= deadline_) {
        Stop(Fired::kDeadline);
        continue;
      }
      if (max_bytes_ == kUnbounded) {  // only the deadline to watch
        cv_.wait_until(lock, deadline_);
        continue;
      }
      if (fd_ >= 0) {
        const std::optional<uint64_t> got = BytesReceived(fd_);
        if (got && *got > baseline_ && *got - baseline_ > max_bytes_) {
          Stop(Fired::kTooMuch);
          continue;
        }
      }
      cv_.wait_until(lock, std::min(deadline_, now + kWatchEvery));
    }
  }
  void Stop(Fired why) {
    fired_ = why;
    if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool quit_ = false;
  bool armed_ = false;
  bool cancelled_ = false;
  Fired fired_ = Fired::kNo;
  int fd_ = -1;
  uint64_t baseline_ = 0;
  uint64_t max_bytes_ = 0;
  Clock::time_point deadline_;
  std::thread thread_;  // last: starts once the rest is initialized
};

Status CheckReadable(std::string_view setting, const std::string& path) {
  if (path.empty()) return Status::Ok();
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    return Status::InvalidArgument(fmt::format("{} = {}: cannot read it: {} (check the path and its permissions)",
                                               setting, path, std::strerror(errno)));
  }
  std::fclose(f);
  return Status::Ok();
}

// A listing item as the server writes it (also a transaction's get results).
core::Result<Item> ItemFrom(const json& j, bool with_value) {
  if (!j.is_object()) return Status::Unavailable("the server's item is not a JSON object (is it another version of kvctl?)");
  auto key = KeyField(j, "key");
  if (!key) return key.error();
  Item item{std::move(*key), {}, j.value("revision", uint64_t{0}),
            {j.value("create_revision", uint64_t{0}), j.value("version", uint64_t{0}), j.value("lease", uint64_t{0})}};
  if (with_value) {
    auto value = core::Base64Decode(j.value("value", std::string()));
    if (!value) return value.error();
    item.value = std::move(*value);
  }
  return item;
}

httplib::Headers ConditionHeaders(const Condition& cond) {
  httplib::Headers h;
  if (cond.if_revision) h.emplace("If-Match", fmt::format("\"{}\"", *cond.if_revision));
  if (cond.create_only) h.emplace("If-None-Match", "*");
  return h;
}

}  // namespace

struct KvClient::Impl {
  Impl(const std::string& url, const ClientOptions& o) : http(url, o.cert, o.key), base_url(url), options(o) {
    https = base_url.starts_with("https://");
    // httplib drops the TLS context when the certificate or key does not load.
    if (https && !http.is_valid()) tls_setup_error = TakeTlsReason();
    http.set_socket_options([this](int fd) { watchdog.OnSocket(fd); });
  }

  httplib::Client http;
  std::string base_url;
  ClientOptions options;
  bool https = false;
  std::string tls_setup_error;
  Watchdog watchdog;

  // What one request may bring back: the body of a 2xx answer, and of any
  // other (an error's JSON).
  struct Bounds {
    size_t ok_body = kMaxOtherAnswerBytes;
    std::string_view what = "an answer";  // for the message: "a value", "a listing page"
  };
  // A 2xx answer whose body is handed on as it arrives, not kept: a
  // watch's. The deadline then bounds the head only; the body may take any
  // time, as long as no `idle` passes without a byte.
  struct Sink {
    std::function<bool(const char* data, size_t n)> take;  // false: stop reading
    std::chrono::milliseconds idle;
    std::function<void(uint64_t)> on_head;  // the head's X-Kvctl-Revision
  };
  // When a request must be over.
  struct Deadline {
    Clock::time_point at;
    std::chrono::milliseconds length;
    bool compaction = false;  // its own deadline, not client.timeout
  };

  // Sends the request and reads the answer within `bounds` and by
  // `deadline`: a transport failure, a deadline passed, an answer without
  // kvctl's header or over its bound are errors here; any status is not.
  // On "too large", *announced is the Content-Length that was refused.
  core::Result<Answer> Send(const char* method, std::string path, httplib::Headers headers, std::string_view body,
                            const Bounds& bounds, const Deadline& deadline, uint64_t* announced = nullptr,
                            const Sink* sink = nullptr) {
    if (watchdog.cancelled()) return Status::Unavailable("cancelled (kvctl was asked to stop)");
    if (https && !http.is_valid()) {
      return Status::InvalidArgument(fmt::format(
          "cannot use client.cert {} with client.key {}: {} (both must be PEM, and the key the certificate's)",
          options.cert, options.key, tls_setup_error.empty() ? "OpenSSL refused them" : tls_setup_error));
    }
    httplib::Request req;
    req.method = method;
    req.path = std::move(path);
    req.headers = std::move(headers);
    req.body.assign(body);
    if (req.method == "PUT") req.headers.emplace("Content-Type", "application/octet-stream");

    enum class Cut { kNo, kForeign, kTooLarge } cut = Cut::kNo;
    uint64_t content_length = 0;
    bool success = false;  // a 2xx, whose body has bounds.ok_body
    bool streaming = false;  // a 2xx into `sink`: its body has no bound
    Answer stream_head;       // its status and headers
    size_t limit = kMaxOtherAnswerBytes;
    std::string received;
    req.response_handler = [&](const httplib::Response& r) {
      if (!r.has_header(kRevisionHeader)) {
        cut = Cut::kForeign;
        return false;
      }
      success = r.status >= 200 && r.status < 300;
      if (success && sink != nullptr) {
        streaming = true;
        stream_head.status = r.status;
        stream_head.headers = r.headers;
        sink->on_head(NumberHeader(stream_head, kRevisionHeader));
        watchdog.Extend(Clock::now() + sink->idle);
        return true;
      }
      if (success) limit = bounds.ok_body;
      if (r.has_header("Content-Length")) {
        const std::string text = r.get_header_value("Content-Length");
        uint64_t n = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
        if (ec != std::errc() || n > limit) {  // unparsable: more than anything
          content_length = ec == std::errc() ? n : UINT64_MAX;
          cut = Cut::kTooLarge;
          return false;
        }
        received.reserve(n);
      }
      return true;
    };
    req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
      if (streaming) {
        watchdog.Extend(Clock::now() + sink->idle);
        return sink->take(data, n);
      }
      if (n > limit - received.size()) {
        cut = Cut::kTooLarge;
        return false;
      }
      received.append(data, n);
      return true;
    };

    const auto now = Clock::now();
    if (deadline.at <= now) return TimedOut(deadline);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline.at - now);
    http.set_connection_timeout(std::min(left, options.timeout));
    // For one socket operation; the watchdog has the whole (and a stream's
    // idle time, which may be longer than a request's deadline).
    http.set_read_timeout(sink != nullptr ? std::max(deadline.length, sink->idle) : deadline.length);
    http.set_write_timeout(deadline.length);
    ERR_clear_error();
    SigpipeBlocked no_sigpipe;
    watchdog.Arm(deadline.at, std::max(bounds.ok_body, kMaxOtherAnswerBytes) + kMaxHeadBytes);
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    const bool sent = http.send(req, res, error);
    const Fired fired = watchdog.Disarm(http.is_socket_open() != 0);
    if (fired == Fired::kCancelled) {
      ERR_clear_error();
      return Status::Unavailable("cancelled (kvctl was asked to stop)");
    }
    if (streaming) {
      ERR_clear_error();
      if (fired == Fired::kDeadline) {
        return Status::Unavailable(fmt::format(
            "the server at {} sent nothing for {} (a watch gets a progress line at least every "
            "server.watch_progress_interval; the connection is taken as lost)",
            base_url, Seconds(sink->idle)));
      }
      // The sink stopped reading (sent false), or the server ended the
      // answer: either way the stream is over, and the caller knows which.
      if (sent || error == httplib::Error::Canceled) return stream_head;
      return Status::Unavailable(fmt::format("the connection to {} was lost during a watch ({})", base_url,
                                             httplib::to_string(error)));
    }

    if (cut == Cut::kForeign || (sent && !res.has_header(kRevisionHeader))) {
      ERR_clear_error();
      return NotKvctl(res.status);
    }
    if (cut == Cut::kTooLarge || fired == Fired::kTooMuch) {
      ERR_clear_error();
      if (announced != nullptr && success) *announced = content_length;
      return TooLarge(success ? bounds.what : "an error answer", content_length,
                      fired == Fired::kTooMuch ? 0 : limit, bounds);
    }
    if (!sent) {
      std::string tls_reason = TakeTlsReason();
      if (fired == Fired::kDeadline) {
        if (https && error == httplib::Error::SSLConnection) {
          return Status::Unavailable(fmt::format(
              "no TLS handshake with {} within {} (is it a TLS server? give an http:// address if not)", base_url,
              Seconds(deadline.length)));
        }
        return TimedOut(deadline);
      }
      if (https && tls_reason.empty() && (error == httplib::Error::Read || error == httplib::Error::Write)) {
        tls_reason = ProbeTlsRefusal(base_url, options, std::min(deadline.at, Clock::now() + kTlsProbeWait));
      }
      return Status::Unavailable(Describe(base_url, error, https, tls_reason));
    }
    return Answer{res.status, std::move(res.headers), std::move(received)};
  }

  Status NotKvctl(int status) const {
    return Status::Unavailable(fmt::format(
        "not a kvctl server at {}: {} without the {} header every kvctl answer carries (check --addr or "
        "client.addr: is it the address `kvctl serve` listens on?)",
        base_url, status > 0 ? fmt::format("it answered HTTP {}", status) : std::string("it answered"),
        kRevisionHeader));
  }

  // `limit` 0: the watchdog found the whole answer, head included, too large.
  Status TooLarge(std::string_view what, uint64_t content_length, size_t limit, const Bounds& bounds) const {
    std::string size;
    if (limit == 0) {
      size = fmt::format("more than {} in all", HumanBytes(std::max(bounds.ok_body, kMaxOtherAnswerBytes) +
                                                           kMaxHeadBytes));
    } else if (content_length > 0 && content_length != UINT64_MAX) {
      size = fmt::format("{} bytes announced for {}, more than its {}", content_length, what, HumanBytes(limit));
    } else {
      size = fmt::format("more than {} for {}", HumanBytes(limit), what);
    }
    const std::string hint =
        what == "a value"
            ? "if the server allows larger values, raise limits.max_value_bytes for kvctl too: in its config "
              "file or with KVCTL_LIMITS_MAX_VALUE_BYTES"
            : "is it the kvctl server you meant? check --addr or client.addr";
    return Status::Unavailable(fmt::format("answer too large from {}: {} ({})", base_url, size, hint));
  }

  Status TimedOut(const Deadline& deadline) const {
    if (deadline.compaction) {
      return Status::Unavailable(fmt::format(
          "no answer from {} within {}, the deadline of a compaction (it may still be running: see the "
          "server's log and /metrics)",
          base_url, Seconds(deadline.length)));
    }
    return Status::Unavailable(fmt::format(
        "no whole answer from {} within {}, the deadline of a request (raise --timeout or client.timeout if "
        "the server is just slow)",
        base_url, Seconds(deadline.length)));
  }

  // Turns an answer that is not one of `ok` into a Status.
  Status Check(const Answer& a, std::initializer_list<int> ok) const {
    for (int code : ok) {
      if (a.status == code) return Status::Ok();
    }
    const std::string msg = a.Message();
    const std::string code = a.Code();
    switch (a.status) {
      case 404:
        if (code == "no_such_key") return Status::NotFound(msg);
        if (code == "no_such_lease") {
          return Status::NotFound(fmt::format("{} (kvctl lease list shows the leases alive)", msg));
        }
        return Status::Unavailable(fmt::format(
            "the kvctl server at {} has no such route: {} (is it another version of kvctl? compare kvctl "
            "version on both sides)",
            base_url, msg));
      case 412: return Status::FailedPrecondition(msg);
      case 410: {
        json j = json::parse(a.body, nullptr, /*allow_exceptions=*/false);
        const uint64_t compacted = j.is_object() ? j.value("compact_revision", uint64_t{0}) : 0;
        return Status::Compacted(fmt::format(
            "the server no longer has that history: {} (its history starts after revision {}: watch --from {} "
            "or later, or from now without --from)",
            msg, compacted, compacted + 1));
      }
      case 401:
        return Status::InvalidArgument(fmt::format(
            "the server refused the credentials: {} (give a valid token: KVCTL_CLIENT_TOKEN, client.token or "
            "--token)",
            msg));
      case 403:
        return Status::InvalidArgument(fmt::format(
            "the server refused: {} (the token's grants in the server's auth settings do not cover this)", msg));
      case 413:
        return Status::InvalidArgument(fmt::format(
            "the server refused the value: {} (its limits.max_value_bytes is lower than this client's; store "
            "a smaller value or raise the server's limit)",
            msg));
      case 414:
        return Status::InvalidArgument(
            fmt::format("the server refused the key: {} (keys are at most limits.max_key_bytes long)", msg));
      case 429:
        return Status::Unavailable(fmt::format("rate limited by the server: {} (retry after {} s)", msg,
                                               a.Header("Retry-After")));
      case 503:
        return Status::Unavailable(fmt::format(
            "the server at {} is unavailable: {} (its /readyz and log say why; retry once it is ready)", base_url,
            msg));
      default: break;
    }
    if (a.status >= 400 && a.status < 500) {
      return Status::InvalidArgument(
          fmt::format("the server refused the request: {} (HTTP {}; see the server's log)", msg, a.status));
    }
    return Status::Unavailable(
        fmt::format("server error {} from {}: {} (see the server's log)", a.status, base_url, msg));
  }

  Deadline RequestDeadline() const { return {Clock::now() + options.timeout, options.timeout}; }
};

Status CheckClientOptions(const ClientOptions& o) {
  const bool https = NormalizeBaseUrl(o.addr).starts_with("https://");
  if (!https) {
    for (const auto& [setting, value] : {std::pair{"client.cacert (--cacert)", &o.cacert},
                                         std::pair{"client.cert (--cert)", &o.cert},
                                         std::pair{"client.key (--key)", &o.key}}) {
      if (!value->empty()) {
        return Status::InvalidArgument(
            fmt::format("{} is set but the server address {} is plain HTTP (give an https:// address, or drop "
                        "the TLS settings)",
                        setting, o.addr));
      }
    }
  }
  if (o.cert.empty() != o.key.empty()) {
    return Status::InvalidArgument("a client certificate needs its key (give both client.cert, --cert, and "
                                   "client.key, --key, or neither)");
  }
  for (const auto& [setting, value] :
       {std::pair{"client.cacert", &o.cacert}, std::pair{"client.cert", &o.cert}, std::pair{"client.key", &o.key}}) {
    if (Status s = CheckReadable(setting, *value); !s.ok()) return s;
  }
  return Status::Ok();
}

KvClient::KvClient(ClientOptions options)
    : base_url_(NormalizeBaseUrl(std::move(options.addr))), impl_(std::make_unique<Impl>(base_url_, options)) {
  auto& http = impl_->http;
  if (impl_->https) {
    http.enable_server_certificate_verification(true);
    if (!options.cacert.empty()) http.set_ca_cert_path(options.cacert);
  }
  if (!options.token.empty()) http.set_bearer_token_auth(options.token);
  http.set_url_encode(false);  // paths are percent-encoded here, exactly once
  http.set_keep_alive(true);
  http.set_tcp_nodelay(true);
}

KvClient::~KvClient() = default;

core::Result<Value> KvClient::Get(std::string_view key) {
  auto a = impl_->Send("GET", KeyPath(key), {}, {}, {impl_->options.max_value_bytes, "a value"},
                       impl_->RequestDeadline());
  if (!a) return a.error();
  if (Status s = impl_->Check(*a, {200}); !s.ok()) return s;
  return Value{std::move(a->body), RevisionFromETag(*a), MetaFromHeaders(*a)};
}

core::Result<PutReply> KvClient::Put(std::string_view key, std::string_view value, const Condition& cond,
                                     uint64_t lease) {
  std::string path = KeyPath(key);
  if (lease != 0) path += fmt::format("?lease={}", lease);
  auto a = impl_->Send("PUT", std::move(path), ConditionHeaders(cond), value, {}, impl_->RequestDeadline());
  if (!a) return a.error();
  if (a->status == 413) {
    // The server's JSON does not say its limit; this client's is known, and
    // the value was within it, so the server's is lower.
    return Status::InvalidArgument(fmt::format(
        "the server refused the value: {} bytes is over the server's limits.max_value_bytes, which is lower than "
        "this client's, {} (store a smaller value, or raise limits.max_value_bytes in the server's config file "
        "or its KVCTL_LIMITS_MAX_VALUE_BYTES, and restart it)",
        value.size(), HumanBytes(impl_->options.max_value_bytes)));
  }
  if (Status s = impl_->Check(*a, {200, 201}); !s.ok()) return s;
  return PutReply{RevisionFromETag(*a), a->status == 201};
}

Status KvClient::Delete(std::string_view key, const Condition& cond) {
  auto a = impl_->Send("DELETE", KeyPath(key), ConditionHeaders(cond), {}, {}, impl_->RequestDeadline());
  if (!a) return a.error();
  return impl_->Check(*a, {204, 200});
}

core::Result<Page> KvClient::List(std::string_view prefix, const std::optional<std::string>& after, size_t limit,
                                  bool keys_only) {
  const Impl::Bounds bounds{ListingPageBound(impl_->options.max_value_bytes), "a listing page"};
  core::Result<Answer> a = Status::Ok();
  for (;;) {
    std::string path = fmt::format("/v1/kv?prefix={}&limit={}", core::PercentEncode(prefix), limit);
    if (after) path += "&after=" + core::PercentEncode(*after);
    if (keys_only) path += "&keys_only=1";
    uint64_t announced = 0;
    a = impl_->Send("GET", std::move(path), {}, {}, bounds, impl_->RequestDeadline(), &announced);
    // Large values make a page of `limit` items too large to take: ask for
    // as many as would fit, going by the size the server announced, and
    // at least halve the count, so a few tries reach a single item.
    if (a || announced == 0 || announced == UINT64_MAX || limit <= 1) break;
    const auto fit = static_cast<size_t>(static_cast<double>(limit) * static_cast<double>(bounds.ok_body) /
                                         static_cast<double>(announced));
    limit = std::max<size_t>(1, std::min(fit, limit / 2));
  }
  if (!a) return a.error();
  if (Status s = impl_->Check(*a, {200}); !s.ok()) return s;

  json body = json::parse(a->body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("items") || !body["items"].is_array()) {
    return Status::Unavailable(
        "the server's listing is not the JSON kvctl expects (is it another version of kvctl? compare kvctl "
        "version on both sides)");
  }
  Page page;
  page.revision = NumberHeader(*a, kRevisionHeader);
  page.items.reserve(body["items"].size());
  for (const json& j : body["items"]) {
    auto item = ItemFrom(j, !keys_only);
    if (!item) return item.error();
    page.items.push_back(std::move(*item));
  }
  if (body.contains("next") && !body["next"].is_null()) {
    auto next = KeyField(body, "next");
    if (!next) return next.error();
    // Keys come in byte order: a next that does not move on would list the
    // same keys for ever.
    if (after && *next <= *after) {
      return Status::Unavailable(
          "the server's listing does not move on from where it was asked to start (is it another version of "
          "kvctl? compare kvctl version on both sides)");
    }
    page.next = std::move(*next);
  }
  return page;
}

namespace {

Status NotLeaseJson() {
  return Status::Unavailable(
      "the server's lease answer is not the JSON kvctl expects (is it another version of kvctl? compare kvctl "
      "version on both sides)");
}

// {"id","ttl"[,"remaining"][,"keys":[{"key"[,"key_base64"]}]]}
core::Result<core::LeaseInfo> LeaseFromJson(const json& j) {
  if (!j.is_object() || !j.contains("id") || !j["id"].is_number_unsigned()) return NotLeaseJson();
  core::LeaseInfo lease;
  lease.id = j["id"].get<uint64_t>();
  lease.ttl = j.value("ttl", int64_t{0});
  lease.remaining = j.value("remaining", int64_t{0});
  if (auto keys = j.find("keys"); keys != j.end() && keys->is_array()) {
    for (const json& k : *keys) {
      auto key = KeyField(k, "key");
      if (!key) return key.error();
      lease.keys.push_back(std::move(*key));
    }
  }
  return lease;
}

std::string LeasePath(uint64_t id) { return fmt::format("/v1/lease/{}", id); }

}  // namespace

core::Result<core::LeaseInfo> KvClient::LeaseGrant(int64_t ttl_seconds) {
  auto a = impl_->Send("POST", "/v1/lease", {{"Content-Type", "application/json"}},
                       json{{"ttl", ttl_seconds}}.dump(), {}, impl_->RequestDeadline());
  if (!a) return a.error();
  if (Status s = impl_->Check(*a, {200}); !s.ok()) return s;
  return LeaseFromJson(json::parse(a->body, nullptr, /*allow_exceptions=*/false));
}

core::Result<core::LeaseInfo> KvClient::LeaseKeepAlive(uint64_t id) {
  auto a = impl_->Send("POST", LeasePath(id) + "/keepalive", {}, {}, {}, impl_->RequestDeadline());
  if (!a) return a.error();
  if (Status s = impl_->Check(*a, {200}); !s.ok()) return s;
  return LeaseFromJson(json::parse(a->body, nullptr, /*allow_exceptions=*/false));
}

core::Result<uint64_t> KvClient::LeaseRevoke(uint64_t id) {
  auto a = impl_->Send("DELETE", LeasePath(id), {}, {}, {}, impl_->RequestDeadline());
  if (!a) return a.error();
  if (Status s = impl_->Check(*a, {200}); !s.ok()) return s;
  const json j = json::parse(a->body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("revision") || !j["revision"].is_number_unsigned()) return NotLeaseJson();
  return j["revision"].get<uint64_t>();
}

core::Result<core::LeaseInfo> KvClient::LeaseShow(uint64_t id) {
  auto a = impl_->Send("GET", LeasePath(id), {}, {}, {kMaxListingPageBytes, "a lease"}, impl_->RequestDeadline());
  if (!a) return a.error();
  if (Status s = impl_->Check(*a, {200}); !s.ok()) return s;
  return LeaseFromJson(json::parse(a->body, nullptr, /*allow_exceptions=*/false));
}

core::Result<std::vector<core::LeaseInfo>> KvClient::Leases() {
  auto a = impl_->Send("GET", "/v1/lease", {}, {}, {kMaxListingPageBytes, "a lease list"}, impl_->RequestDeadline());
  if (!a) return a.error();
  if (Status s = impl_->Check(*a, {200}); !s.ok()) return s;
  const json j = json::parse(a->body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("leases") || !j["leases"].is_array()) return NotLeaseJson();
  std::vector<core::LeaseInfo> leases;
  for (const json& l : j["leases"]) {
    auto lease = LeaseFromJson(l);
    if (!lease) return lease.error();
    leases.push_back(std::move(*lease));
  }
  return leases;
}

core::Result<core::CompactionStats> KvClient::Compact(std::chrono::milliseconds wait) {
  auto a = impl_->Send("POST", "/v1/admin/compact", {}, {}, {}, {Clock::now() + wait, wait, true});
  if (!a) return a.error();
  if (a->status == 500 && a->Code() == "corrupt_log") {
    return Status::Corruption(fmt::format(
        "{} (the server found its log corrupt: see its log, and kvctl replay --check on its data dir)",
        a->Message()));
  }
  if (Status s = impl_->Check(*a, {200}); !s.ok()) return s;
  json body = json::parse(a->body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("compacted")) {
    return Status::Unavailable(
        "the server's compaction report is not the JSON kvctl expects (is it another version of kvctl? "
        "compare kvctl version on both sides)");
  }
  core::CompactionStats stats;
  stats.compacted = body.value("compacted", false);
  stats.covered_revision = body.value("covered_revision", uint64_t{0});
  stats.bytes_before = body.value("bytes_before", uint64_t{0});
  stats.bytes_after = body.value("bytes_after", uint64_t{0});
  stats.records_read = body.value("records_read", uint64_t{0});
  stats.records_written = body.value("records_kept", uint64_t{0});
  stats.files_removed = body.value("files_removed", uint64_t{0});
  stats.seconds = body.value("seconds", 0.0);
  return stats;
}

core::Result<TxnReply> KvClient::Txn(std::string_view body) {
  // A transaction's gets answer listing items: the same bound as a page.
  const Impl::Bounds bounds{ListingPageBound(impl_->options.max_value_bytes), "a transaction's answer"};
  auto a = impl_->Send("POST", "/v1/txn", {{"Content-Type", "application/json"}}, body, bounds,
                       impl_->RequestDeadline());
  if (!a) return a.error();
  if (a->status == 404 && a->Code() == "no_such_lease") {
    return Status::NotFound(fmt::format("{} (a put names a lease that does not exist, or no longer does)",
                                        a->Message()));
  }
  if (a->status == 413) {
    return Status::InvalidArgument(fmt::format(
        "the server refused the transaction: its body is {} bytes, over the server's body limit, "
        "limits.max_value_bytes (split the transaction, or raise the server's limit)",
        body.size()));
  }
  if (a->status == 400 && a->Code() == "bad_txn") {
    return Status::InvalidArgument(
        fmt::format("the server refused the transaction: {} (see kvctl-txn(1) for its JSON)", a->Message()));
  }
  if (Status s = impl_->Check(*a, {200}); !s.ok()) return s;
  const auto unexpected = [] {
    return Status::Unavailable(
        "the server's transaction answer is not the JSON kvctl expects (is it another version of kvctl? compare "
        "kvctl version on both sides)");
  };
  json j = json::parse(a->body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("succeeded") || !j["succeeded"].is_boolean() || !j.contains("results") ||
      !j["results"].is_array()) {
    return unexpected();
  }
  TxnReply reply;
  reply.succeeded = j["succeeded"].get<bool>();
  reply.revision = j.value("revision", uint64_t{0});
  for (const json& r : j["results"]) {
    if (!r.is_object() || r.size() != 1 || !r.begin().value().is_object()) return unexpected();
    const std::string& kind = r.begin().key();
    const json& body_of = r.begin().value();
    TxnOpReply op;
    if (kind == "put") {
      op.kind = TxnOpReply::Kind::kPut;
      op.revision = body_of.value("revision", uint64_t{0});
      op.meta = {body_of.value("create_revision", uint64_t{0}), body_of.value("version", uint64_t{0}), 0};
    } else if (kind == "delete") {
      op.kind = TxnOpReply::Kind::kDelete;
      op.deleted = body_of.value("deleted", uint64_t{0});
    } else if (kind == "get") {
      op.kind = TxnOpReply::Kind::kGet;
      if (!body_of.contains("items") || !body_of["items"].is_array()) return unexpected();
      for (const json& item : body_of["items"]) {
        auto parsed = ItemFrom(item, true);
        if (!parsed) return parsed.error();
        op.items.push_back(std::move(*parsed));
      }
      op.more = body_of.value("more", false);
    } else {
      return unexpected();
    }
    reply.results.push_back(std::move(op));
  }
  reply.json = std::move(a->body);
  return reply;
}

Status KvClient::Stream(std::string path, std::chrono::milliseconds idle,
                        const std::function<void(uint64_t revision)>& on_head,
                        const std::function<bool(std::string_view line)>& on_line) {
  // One line holds one event: its value in base64 and its key, escaped,
  // with room to spare; the server never sends more.
  const size_t max_line = (impl_->options.max_value_bytes + 2) / 3 * 4 + kListingItemOverhead;
  std::string pending;
  bool too_long = false;
  bool stopped = false;
  Impl::Sink sink{[&](const char* data, size_t n) {
                    std::string_view chunk(data, n);
                    while (!chunk.empty()) {
                      const size_t nl = chunk.find('\n');
                      const size_t take = nl == std::string_view::npos ? chunk.size() : nl;
                      if (take > max_line - pending.size()) {
                        too_long = true;
                        return false;
                      }
                      pending.append(chunk.substr(0, take));
                      if (nl == std::string_view::npos) break;
                      chunk.remove_prefix(nl + 1);
                      if (!on_line(pending)) {
                        stopped = true;
                        return false;
                      }
                      pending.clear();
                    }
                    return true;
                  },
                  idle, on_head};
  auto a = impl_->Send("GET", std::move(path), {}, {}, {}, impl_->RequestDeadline(), nullptr, &sink);
  if (!a) {
    if (cancelled()) return Status::Ok();
    return a.error();
  }
  if (too_long) {
    return Status::Unavailable(fmt::format(
        "a line of the watch from {} is longer than {} (is it the kvctl server you meant? check --addr)", base_url_,
        HumanBytes(max_line)));
  }
  if (stopped || a->status / 100 == 2) return Status::Ok();
  return impl_->Check(*a, {200});
}

void KvClient::Cancel() { impl_->watchdog.Cancel(); }

bool KvClient::cancelled() const { return impl_->watchdog.cancelled(); }

}  // namespace kvctl::client
