#include "lib/client/kv_client.h"

#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "lib/core/base64.h"
#include "lib/core/percent_encoding.h"

namespace kvctl::client {
namespace {

using nlohmann::json;
using core::Status;

std::string NormalizeBaseUrl(std::string addr) {
  if (addr.find("://") == std::string::npos) addr = "http://" + addr;
  while (!addr.empty() && addr.back() == '/') addr.pop_back();
  return addr;
}

std::string KeyPath(std::string_view key) { return "/v1/kv/" + core::PercentEncode(key); }

// The server's own message from a JSON error body, else the raw status.
std::string ServerMessage(const httplib::Response& res) {
  json j = json::parse(res.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  return fmt::format("HTTP {}", res.status);
}

uint64_t RevisionFromETag(const httplib::Response& res) {
  std::string tag = res.get_header_value("ETag");
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

// What a transport failure means to someone at a shell prompt, and what
// to try.
std::string Describe(httplib::Error error, bool https) {
  constexpr std::string_view kWhere =
      " (is `kvctl serve` running there? point --addr or KVCTL_CLIENT_ADDR at it)";
  switch (error) {
    case httplib::Error::Connection: return fmt::format("connection refused or failed{}", kWhere);
    case httplib::Error::ConnectionTimeout: return fmt::format("connecting timed out{}", kWhere);
    case httplib::Error::Read:
    case httplib::Error::Write:
      // With TLS 1.3 a server that requires a client certificate refuses
      // it after the client thinks the handshake is done: the refusal
      // shows up as a failed write or read.
      return fmt::format(
          "{} ({})",
          error == httplib::Error::Read ? "no answer: the connection was closed or timed out"
                                        : "sending the request failed",
          https ? "a server that requires client certificates closes the connection when --cert "
                  "and --key are missing or not signed by its CA"
                : "if the server uses TLS, give an https:// address");
    case httplib::Error::SSLConnection:
      return "the TLS handshake failed (a server that requires client certificates refuses a "
             "client without --cert and --key, or with one its CA did not sign)";
    case httplib::Error::SSLServerVerification:
      return "the server's certificate did not verify (it must be signed by --cacert, or a "
             "system CA, and name this host)";
    case httplib::Error::SSLLoadingCerts:
      return "cannot load the CA certificates (check client.cacert, --cacert: a PEM file)";
    default: return fmt::format("{} (check client.addr, --addr)", httplib::to_string(error));
  }
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

httplib::Headers ConditionHeaders(const Condition& cond) {
  httplib::Headers h;
  if (cond.if_revision) h.emplace("If-Match", fmt::format("\"{}\"", *cond.if_revision));
  if (cond.create_only) h.emplace("If-None-Match", "*");
  return h;
}

}  // namespace

struct KvClient::Impl {
  Impl(const std::string& base_url, const ClientOptions& o) : http(base_url, o.cert, o.key) {
    https = base_url.starts_with("https://");
  }
  httplib::Client http;
  bool https = false;

  // Turns a transport failure or an error status into a Status.
  Status Check(const httplib::Result& r, const std::string& base_url, std::initializer_list<int> ok) {
    if (!r) {
      return Status::Unavailable(
          fmt::format("cannot reach the kvctl server at {}: {}", base_url, Describe(r.error(), https)));
    }
    for (int code : ok) {
      if (r->status == code) return Status::Ok();
    }
    const std::string msg = ServerMessage(*r);
    switch (r->status) {
      case 404: return Status::NotFound(msg);
      case 412: return Status::FailedPrecondition(msg);
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
                                               r->get_header_value("Retry-After")));
      case 503:
        return Status::Unavailable(fmt::format(
            "the server at {} is unavailable: {} (its /readyz and log say why; retry once it is ready)", base_url,
            msg));
      default: break;
    }
    if (r->status >= 400 && r->status < 500) {
      return Status::InvalidArgument(
          fmt::format("the server refused the request: {} (HTTP {}; see the server's log)", msg, r->status));
    }
    return Status::Unavailable(
        fmt::format("server error {} from {}: {} (see the server's log)", r->status, base_url, msg));
  }
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
    : base_url_(NormalizeBaseUrl(std::move(options.addr))),
      impl_(std::make_unique<Impl>(base_url_, options)) {
  auto& http = impl_->http;
  if (impl_->https) {
    http.enable_server_certificate_verification(true);
    if (!options.cacert.empty()) http.set_ca_cert_path(options.cacert);
  }
  if (!options.token.empty()) http.set_bearer_token_auth(options.token);
  http.set_url_encode(false);  // paths are percent-encoded here, exactly once
  http.set_keep_alive(true);
  http.set_tcp_nodelay(true);
  http.set_connection_timeout(options.timeout);
  http.set_read_timeout(options.timeout);
  options_timeout_ = options.timeout;
  http.set_write_timeout(options.timeout);
}

KvClient::~KvClient() = default;

core::Result<Value> KvClient::Get(std::string_view key) {
  SigpipeBlocked no_sigpipe;
  auto r = impl_->http.Get(KeyPath(key));
  if (Status s = impl_->Check(r, base_url_, {200}); !s.ok()) return s;
  return Value{std::move(r->body), RevisionFromETag(*r)};
}

core::Result<PutReply> KvClient::Put(std::string_view key, std::string_view value, const Condition& cond) {
  SigpipeBlocked no_sigpipe;
  auto r = impl_->http.Put(KeyPath(key), ConditionHeaders(cond), value.data(), value.size(),
                           "application/octet-stream");
  if (Status s = impl_->Check(r, base_url_, {200, 201}); !s.ok()) return s;
  return PutReply{RevisionFromETag(*r), r->status == 201};
}

Status KvClient::Delete(std::string_view key, const Condition& cond) {
  SigpipeBlocked no_sigpipe;
  auto r = impl_->http.Delete(KeyPath(key), ConditionHeaders(cond));
  return impl_->Check(r, base_url_, {204, 200});
}

core::Result<Page> KvClient::List(std::string_view prefix, const std::optional<std::string>& after,
                                  size_t limit, bool keys_only) {
  std::string path = fmt::format("/v1/kv?prefix={}&limit={}", core::PercentEncode(prefix), limit);
  if (after) path += "&after=" + core::PercentEncode(*after);
  if (keys_only) path += "&keys_only=1";
  SigpipeBlocked no_sigpipe;
  auto r = impl_->http.Get(path);
  if (Status s = impl_->Check(r, base_url_, {200}); !s.ok()) return s;

  json body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("items") || !body["items"].is_array()) {
    return Status::Unavailable(
        "the server's listing is not the JSON kvctl expects (is it another version of kvctl? compare kvctl "
        "version on both sides)");
  }
  Page page;
  for (const json& j : body["items"]) {
    auto key = KeyField(j, "key");
    if (!key) return key.error();
    Item item{std::move(*key), {}, j.value("revision", uint64_t{0})};
    if (!keys_only) {
      auto value = core::Base64Decode(j.value("value", std::string()));
      if (!value) return value.error();
      item.value = std::move(*value);
    }
    page.items.push_back(std::move(item));
  }
  if (body.contains("next") && !body["next"].is_null()) {
    auto next = KeyField(body, "next");
    if (!next) return next.error();
    page.next = std::move(*next);
  }
  return page;
}

core::Result<core::CompactionStats> KvClient::Compact(std::chrono::milliseconds wait) {
  impl_->http.set_read_timeout(wait);
  auto r = impl_->http.Post("/v1/admin/compact");
  impl_->http.set_read_timeout(options_timeout_);
  if (r && r->status == 500) {
    json err = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
    if (err.is_object() && err.value("code", std::string()) == "corrupt_log") {
      return Status::Corruption(fmt::format(
          "{} (the server found its log corrupt: see its log, and kvctl replay --check on its data dir)",
          err.value("error", std::string("the server found a corrupt log"))));
    }
  }
  if (Status s = impl_->Check(r, base_url_, {200}); !s.ok()) return s;
  json body = json::parse(r->body, nullptr, /*allow_exceptions=*/false);
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

}  // namespace kvctl::client
