#include "lib/server/api.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lib/core/base64.h"
#include "lib/core/json_string.h"
#include "lib/core/percent_encoding.h"
#include "lib/core/utf8.h"
#include "lib/server/request_log.h"

namespace kvctl::server {

struct KvApi::RouteMatch {
  Route route = Route::kUnknown;
  std::string_view allow;    // the methods the route answers
  std::string_view tail;     // for kKey: the raw (encoded) key
};

namespace {

using nlohmann::json;
using RouteMatch = KvApi::RouteMatch;

constexpr std::string_view kKeyPrefix = "/v1/kv/";
constexpr std::string_view kListPath = "/v1/kv";

RouteMatch MatchRoute(std::string_view path) {
  if (path.starts_with(kKeyPrefix)) return {Route::kKey, "GET, HEAD, PUT, DELETE", path.substr(kKeyPrefix.size())};
  if (path == kListPath) return {Route::kList, "GET, HEAD", {}};
  if (path == "/v1/admin/compact") return {Route::kAdminCompact, "POST", {}};
  if (path == "/healthz") return {Route::kHealthz, "GET, HEAD", {}};
  if (path == "/readyz") return {Route::kReadyz, "GET, HEAD", {}};
  if (path == "/metrics") return {Route::kMetrics, "GET, HEAD", {}};
  return {};
}

bool Allows(std::string_view allow, std::string_view method) {
  size_t start = 0;
  while (start < allow.size()) {
    size_t end = allow.find(',', start);
    if (end == std::string_view::npos) end = allow.size();
    std::string_view m = allow.substr(start, end - start);
    while (!m.empty() && m.front() == ' ') m.remove_prefix(1);
    if (m == method) return true;
    start = end + 1;
  }
  return false;
}

// Puts `bytes` into obj[name], plus obj[name + "_base64"] when it is not
// valid UTF-8 (see api.h).
void SetKeyField(json& obj, const std::string& name, const std::string& bytes) {
  obj[name] = bytes;
  if (!core::IsValidUtf8(bytes)) obj[name + "_base64"] = core::Base64Encode(bytes);
}

std::string Dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

HttpResponse Json(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = Dump(body);
  r.body.push_back('\n');
  return r;
}

std::string ETag(uint64_t revision) { return '"' + std::to_string(revision) + '"'; }

HttpResponse FromStoreError(const core::Status& s) {
  if (s.IsFailedPrecondition()) return KvApi::Error(412, "precondition_failed", s.message());
  if (s.IsUnavailable()) return KvApi::Error(503, "unavailable", s.message());
  if (s.IsNotFound()) return KvApi::Error(404, "no_such_key", s.message());
  return KvApi::Error(500, "internal", s.message());
}

json CompactionObject(const core::CompactionStats& s) {
  return json{{"compacted", s.compacted},
              {"covered_revision", s.covered_revision},
              {"bytes_before", s.bytes_before},
              {"bytes_after", s.bytes_after},
              {"records_read", s.records_read},
              {"records_kept", s.records_written},
              {"records_dropped", s.records_read - s.records_written},
              {"files_removed", s.files_removed},
              {"seconds", s.seconds}};
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ParseUint(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Reads If-Match / If-None-Match into `pre`; an error response if malformed.
std::optional<HttpResponse> ReadPreconditions(const HttpRequest& req, bool is_put,
                                              core::Precondition* pre) {
  if (auto v = req.Header("If-Match")) {
    std::string_view tag = Trim(*v);
    if (tag == "*") {
      pre->must_exist = true;
    } else {
      if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') tag = tag.substr(1, tag.size() - 2);
      uint64_t rev = 0;
      if (!ParseUint(tag, &rev)) {
        return KvApi::Error(400, "bad_precondition",
                            fmt::format("If-Match must be one revision as the ETag gives it "
                                        "(e.g. \"7\") or *, got {}",
                                        *v));
      }
      pre->if_revision = rev;
    }
  }
  if (auto v = req.Header("If-None-Match")) {
    if (!is_put || Trim(*v) != "*") {
      return KvApi::Error(400, "bad_precondition",
                          "If-None-Match is only understood as * on PUT (create only)");
    }
    pre->create_only = true;
  }
  return std::nullopt;
}

// Splits a raw query string into decoded name -> value ('+' is a space).
core::Result<std::map<std::string, std::string>> ParseQuery(std::string_view query) {
  std::map<std::string, std::string> params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string name(pair.substr(0, eq));
    std::string value(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    for (char& c : value) {
      if (c == '+') c = ' ';
    }
    auto decoded_name = core::PercentDecode(name);
    auto decoded_value = core::PercentDecode(value);
    if (!decoded_name || !decoded_value) {
      return core::Status::InvalidArgument(fmt::format(
          "query parameter {}: {}", name,
          (!decoded_name ? decoded_name.error() : decoded_value.error()).message()));
    }
    if (!params.emplace(*decoded_name, *decoded_value).second) {
      return core::Status::InvalidArgument(
          fmt::format("query parameter {} is given more than once", *decoded_name));
    }
  }
  return params;
}

// One page of a listing over several prefixes that do not overlap, given
// in key order: what a caller may read of list.prefix. `next` is set when
// more keys may follow (a later range is not looked at to find out).
core::ListPage ListWithin(const core::KvStore& store, const core::ListOptions& list,
                          const std::vector<std::string>& ranges) {
  core::ListPage out;
  for (size_t i = 0; i < ranges.size(); ++i) {
    core::ListOptions part = list;
    part.prefix = ranges[i];
    part.limit = list.limit - out.items.size();
    core::ListPage page = store.List(part);
    for (core::ListItem& item : page.items) out.items.push_back(std::move(item));
    if (out.items.size() == list.limit) {
      if (page.next || i + 1 < ranges.size()) out.next = out.items.back().key;
      break;
    }
  }
  return out;
}

}  // namespace

std::optional<std::string_view> HttpRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      return std::string_view(v);
    }
  }
  return std::nullopt;
}

KvApi::KvApi(core::KvStore& store, ApiOptions options)
    : store_(store), options_(std::move(options)), auth_(std::move(options_.auth)) {
  if (options_.rate_limit > 0) {
    rate_limiter_ = std::make_unique<RateLimiter>(
        options_.rate_limit, options_.rate_burst > 0 ? options_.rate_burst : options_.rate_limit);
  }
}

HttpResponse KvApi::Error(int status, std::string_view code, std::string_view message) {
  HttpResponse res = Json(status, json{{"error", message}, {"code", code}});
  res.error_code = code;
  if (status >= 500) res.error_cause = message;
  return res;
}

HttpResponse KvApi::TransportError(int status) {
  switch (status) {
    case 411:
      return Error(411, "length_required",
                   "send the value with a Content-Length header (chunked bodies are refused: "
                   "their size is unknown until they are read)");
    case 413: return Error(413, "value_too_large", "the request body is over limits.max_value_bytes");
    case 414: return Error(414, "key_too_long", "the request line is too long");
    case 431:
      return Error(431, "headers_too_large",
                   "the request line and headers are over server.max_header_bytes");
    case 404: return Error(404, "not_found", "no such route");
    case 408:
      return Error(408, "request_timeout", "the request did not arrive whole within server.read_timeout");
    case 503:
      return Error(503, "too_many_connections",
                   "the server has server.max_connections connections open; retry shortly");
    case 505: return Error(505, "http_version", "only HTTP/1.0 and HTTP/1.1 are spoken here");
    case 500: return Error(500, "internal", "internal error");
    default: return Error(status, "bad_request", "the request is malformed");
  }
}

struct KvApi::Exchange {
  std::chrono::steady_clock::time_point started;
  Route route = Route::kUnknown;
  std::string method;
  std::string request_id;
  std::string remote;
  size_t bytes_in = 0;
  const Principal* caller = nullptr;  // set once authenticated; lives as long as the API
  std::string key{};  // an async write's decoded key, kept here for its answer
};

KvApi::Exchange KvApi::Begin(const HttpRequest& req, const RouteMatch& match) const {
  return {.started = std::chrono::steady_clock::now(),
          .route = match.route,
          .method = req.method,
          .request_id = RequestIdFor(req),
          .remote = req.remote_addr,
          .bytes_in = req.body.size()};
}

void KvApi::Finish(const Exchange& x, HttpResponse* res) {
  res->SetHeader("X-Request-Id", x.request_id);
  // Every answer says which store revision it reflects (SPEC §6); the
  // client also takes it as the mark of a kvctl server (SPEC §8).
  res->SetHeader("X-Kvctl-Revision", std::to_string(store_.revision()));
  const auto took = std::chrono::steady_clock::now() - x.started;
  metrics_.CountRequest(x.route, MethodFromString(x.method), res->status, took);
  if (options_.request_logger == nullptr) return;
  LogRequest(*options_.request_logger,
             {.method = x.method,
              .route = RouteLabel(x.route),
              .status = res->status,
              .bytes_in = x.bytes_in,
              .bytes_out = x.method == "HEAD" ? 0 : res->body.size(),
              .duration = took,
              .request_id = x.request_id,
              .remote = x.remote,
              .identity = x.caller != nullptr ? std::string_view(x.caller->name) : std::string_view(),
              .error_code = res->error_code,
              .cause = res->error_cause});
}

HttpResponse KvApi::Refused(int status, std::string_view remote_addr) {
  HttpRequest unread;
  unread.method = "-";
  unread.remote_addr = remote_addr;
  Exchange exchange = Begin(unread, RouteMatch{});
  HttpResponse res = TransportError(status);
  Finish(exchange, &res);
  return res;
}

HttpResponse KvApi::Handle(const HttpRequest& req) {
  const RouteMatch match = MatchRoute(req.path);
  Exchange exchange = Begin(req, match);
  HttpResponse res = Dispatch(req, match, &exchange.caller);
  Finish(exchange, &res);
  return res;
}

HttpResponse KvApi::Dispatch(const HttpRequest& req, const RouteMatch& match, const Principal** caller) {
  if (match.route == Route::kUnknown) {
    return Error(404, "not_found",
                 fmt::format("no such route: {} (keys live under /v1/kv/{{key}}, listing is GET /v1/kv?prefix=)",
                             req.path));
  }
  if (req.method == "OPTIONS") {
    HttpResponse res;
    res.status = 204;
    res.SetHeader("Allow", std::string(match.allow));
    return res;
  }
  if (!Allows(match.allow, req.method)) {
    HttpResponse res = Error(405, "method_not_allowed",
                             fmt::format("{} does not answer {}; it answers {}", RouteLabel(match.route),
                                         req.method, match.allow));
    res.SetHeader("Allow", std::string(match.allow));
    return res;
  }
  // Probes answer whoever asks, however often: a load balancer or an
  // orchestrator must be able to tell whether the process is alive.
  if (match.route == Route::kHealthz) return HandleHealthz();
  if (match.route == Route::kReadyz) return HandleReadyz();
  if (auto refusal = Admit(req, match, caller)) return std::move(*refusal);
  switch (match.route) {
    case Route::kKey: return HandleKey(req, match.tail, *caller);
    case Route::kList: return HandleList(req, *caller);
    case Route::kAdminCompact:
      if (auto refusal = Authorize(*caller, Op::kAdmin, "")) return std::move(*refusal);
      return HandleCompact();
    case Route::kMetrics: return HandleMetrics();
    default: break;
  }
  return TransportError(500);
}

std::optional<HttpResponse> KvApi::Admit(const HttpRequest& req, const RouteMatch& match,
                                         const Principal** caller) {
  const bool needs_identity =
      auth_.enabled() && (match.route != Route::kMetrics || auth_.metrics_need_admin());
  Authenticator::Outcome who;
  if (needs_identity) {
    who = auth_.Authenticate(req);
    *caller = who.principal;
  }
  // The limit applies before credentials are judged, so guessing tokens
  // is limited too; a client is its identity once known, else its address.
  if (rate_limiter_) {
    const std::string client =
        who.principal != nullptr ? "id:" + who.principal->name : "ip:" + req.remote_addr;
    if (auto wait = rate_limiter_->Acquire(client)) {
      metrics_.CountRateLimited();
      const int64_t seconds = std::max<int64_t>(1, (wait->count() + 999) / 1000);
      HttpResponse res = Error(429, "rate_limited",
                               fmt::format("too many requests from this client; retry in {} s "
                                           "(ratelimit.rate and ratelimit.burst set the limit)",
                                           seconds));
      res.SetHeader("Retry-After", std::to_string(seconds));
      return res;
    }
  }
  if (!needs_identity) return std::nullopt;
  if (who.principal == nullptr) {
    metrics_.CountAuthFailure(who.failure);
    HttpResponse res = Error(401, "unauthorized", who.message);
    res.SetHeader("WWW-Authenticate", "Bearer realm=\"kvctl\"");
    return res;
  }
  if (match.route == Route::kMetrics) return Authorize(who.principal, Op::kAdmin, "");
  return std::nullopt;
}

std::optional<HttpResponse> KvApi::Authorize(const Principal* caller, Op op, std::string_view key) {
  if (caller == nullptr || caller->Permits(op, key)) return std::nullopt;
  metrics_.CountAuthFailure(AuthFailure::kForbidden);
  return Error(403, "forbidden",
               op == Op::kAdmin
                   ? fmt::format("{} has no admin grant (admin is granted with prefix \"\")", caller->name)
                   : fmt::format("{} may not {} this key: no grant of {} covers it", caller->name,
                                 OpName(op), OpName(op)));
}

std::optional<HttpResponse> KvApi::CheckKeyRequest(const HttpRequest& req, std::string_view raw_key,
                                                   const Principal* caller, std::string* key,
                                                   core::Precondition* pre) {
  auto decoded = core::PercentDecode(raw_key);
  if (!decoded) return Error(400, "bad_encoding", "key: " + decoded.error().message());
  if (decoded->empty()) return Error(400, "empty_key", "the key is empty: put it after /v1/kv/");
  if (decoded->size() > options_.max_key_bytes) {
    return Error(414, "key_too_long",
                 fmt::format("the key is {} bytes, over limits.max_key_bytes = {}", decoded->size(),
                             options_.max_key_bytes));
  }
  *key = std::move(*decoded);
  const bool read = req.method == "GET" || req.method == "HEAD";
  if (auto refusal = Authorize(caller, read ? Op::kRead : Op::kWrite, *key)) return refusal;
  if (read) return std::nullopt;
  if (auto bad = ReadPreconditions(req, req.method == "PUT", pre)) return bad;
  if (req.method == "PUT" && req.body.size() > options_.max_value_bytes) {
    return Error(413, "value_too_large",
                 fmt::format("the value is {} bytes, over limits.max_value_bytes = {}", req.body.size(),
                             options_.max_value_bytes));
  }
  return std::nullopt;
}

HttpResponse KvApi::PutAnswer(const std::string& key, const core::Result<core::PutOutcome>& put) {
  if (!put) return FromStoreError(put.error());
  const int status = put->created ? 201 : 200;
  HttpResponse res;
  res.headers.reserve(3);  // ETag here, X-Request-Id and X-Kvctl-Revision in Finish
  if (core::IsValidUtf8(key)) {
    // Every write's answer: written by hand (the same bytes nlohmann writes,
    // keys in its order) since a nlohmann object per PUT was a third of
    // kvctl's own instructions per PUT (callgrind).
    res.status = status;
    res.content_type = "application/json";
    res.body.reserve(key.size() + 64);
    res.body.append(put->created ? "{\"created\":true,\"key\":" : "{\"created\":false,\"key\":");
    core::AppendJsonString(key, &res.body);
    res.body.append(",\"revision\":").append(std::to_string(put->revision)).append("}\n");
  } else {
    json body{{"revision", put->revision}, {"created", put->created}};
    SetKeyField(body, "key", key);
    res = Json(status, body);
  }
  res.SetHeader("ETag", ETag(put->revision));
  return res;
}

HttpResponse KvApi::DeleteAnswer(const core::Result<core::DeleteOutcome>& del) {
  if (!del) return FromStoreError(del.error());
  HttpResponse res;
  res.status = 204;
  return res;
}

HttpResponse KvApi::HandleKey(const HttpRequest& req, std::string_view raw_key, const Principal* caller) {
  std::string key;
  core::Precondition pre;
  if (auto bad = CheckKeyRequest(req, raw_key, caller, &key, &pre)) return std::move(*bad);
  if (req.method == "GET" || req.method == "HEAD") {
    auto entry = store_.Get(key);
    if (!entry) return Error(404, "no_such_key", "no such key");
    HttpResponse res;
    res.content_type = "application/octet-stream";
    res.body = std::move(entry->value);
    res.SetHeader("ETag", ETag(entry->revision));
    return res;
  }
  if (req.method == "PUT") return PutAnswer(key, store_.Put(key, req.body, pre));
  return DeleteAnswer(store_.Delete(key, pre));
}

bool KvApi::HandleWriteAsync(const HttpRequest& req, Reply reply) {
  const RouteMatch match = MatchRoute(req.path);
  if (match.route != Route::kKey || (req.method != "PUT" && req.method != "DELETE")) return false;
  auto exchange = std::make_shared<Exchange>(Begin(req, match));
  std::optional<HttpResponse> refusal = Admit(req, match, &exchange->caller);
  auto answer = [this, exchange, reply = std::move(reply)](HttpResponse res) {
    Finish(*exchange, &res);
    reply(std::move(res));
  };
  core::Precondition pre;
  if (!refusal) refusal = CheckKeyRequest(req, match.tail, exchange->caller, &exchange->key, &pre);
  if (refusal) {
    answer(std::move(*refusal));
  } else if (req.method == "PUT") {
    // `key` stays valid: the exchange that holds it lives as long as `answer`.
    store_.PutAsync(exchange->key, req.body, pre,
                    [&key = exchange->key, answer = std::move(answer)](core::Result<core::PutOutcome> put) {
                      answer(PutAnswer(key, put));
                    });
  } else {
    store_.DeleteAsync(exchange->key, pre, [answer = std::move(answer)](core::Result<core::DeleteOutcome> del) {
      answer(DeleteAnswer(del));
    });
  }
  return true;
}

HttpResponse KvApi::HandleList(const HttpRequest& req, const Principal* caller) {
  auto params = ParseQuery(req.query);
  if (!params) return Error(400, "bad_parameter", params.error().message());
  core::ListOptions list;
  list.limit = options_.default_list_limit;
  for (const auto& [name, value] : *params) {
    if (name == "prefix") {
      list.prefix = value;
    } else if (name == "after") {
      list.after = value;
    } else if (name == "limit") {
      uint64_t n = 0;
      if (!ParseUint(value, &n) || n < 1 || n > options_.max_list_limit) {
        return Error(400, "bad_parameter",
                     fmt::format("limit must be a whole number from 1 to {}, got \"{}\"",
                                 options_.max_list_limit, value));
      }
      list.limit = n;
    } else if (name == "keys_only") {
      if (value == "1" || value == "true") {
        list.keys_only = true;
      } else if (value == "0" || value == "false") {
        list.keys_only = false;
      } else {
        return Error(400, "bad_parameter",
                     fmt::format("keys_only must be 1, true, 0 or false, got \"{}\"", value));
      }
    } else {
      return Error(400, "bad_parameter",
                   fmt::format("unknown query parameter \"{}\" (known: prefix, after, limit, keys_only)",
                               name));
    }
  }

  core::ListPage page;
  if (caller == nullptr) {
    page = store_.List(list);
  } else {
    if (!caller->ReadsAnything()) {
      metrics_.CountAuthFailure(AuthFailure::kForbidden);
      return Error(403, "forbidden", fmt::format("{} may not read any key", caller->name));
    }
    page = ListWithin(store_, list, caller->ReadableWithin(list.prefix));
  }
  json items = json::array();
  for (const core::ListItem& item : page.items) {
    json j{{"revision", item.revision}};
    SetKeyField(j, "key", item.key);
    if (!list.keys_only) j["value"] = core::Base64Encode(item.value);
    items.push_back(std::move(j));
  }
  json body{{"items", std::move(items)}, {"next", nullptr}};
  if (page.next) SetKeyField(body, "next", *page.next);
  return Json(200, body);
}

std::string KvApi::CompactionJson(const core::CompactionStats& stats) {
  return Dump(CompactionObject(stats));
}

HttpResponse KvApi::HandleCompact() {
  // Runs on this request's thread; the store keeps serving meanwhile, and a
  // second request waits for the running compaction (ChangeLog::Compact).
  auto stats = store_.Compact();
  if (!stats) {
    const core::Status& s = stats.error();
    if (s.IsUnavailable()) return Error(503, "unavailable", s.message());
    if (s.IsCorruption()) return Error(500, "corrupt_log", s.message());
    return Error(500, "compaction_failed", s.message());
  }
  return Json(200, CompactionObject(*stats));
}

HttpResponse KvApi::HandleHealthz() { return Json(200, json{{"status", "ok"}}); }

HttpResponse KvApi::HandleReadyz() {
  if (core::Status writable = store_.Writable(); !writable.ok()) {
    return Error(503, "not_ready", writable.message());
  }
  return Json(200, json{{"status", "ready"}, {"revision", store_.revision()}});
}

HttpResponse KvApi::HandleMetrics() {
  const core::StoreStats s = store_.stats();
  const bool writable = store_.Writable().ok();
  std::string out;
  out.reserve(4096);
  metrics_.Render(&out);
  if (rate_limiter_) {
    AppendSingle(&out, "kvctl_ratelimit_clients", "gauge",
                 "Clients with a rate-limit bucket (seen within one refill period).",
                 rate_limiter_->clients());
  }
  auto gauge = [&](std::string_view name, std::string_view help, std::string_view type, auto v) {
    out.append(fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, v));
  };
  gauge("kvctl_keys", "Live keys in memory.", "gauge", s.keys);
  gauge("kvctl_live_bytes",
        "Bytes of the live keys and values, counted as log records (with their headers): the data "
        "held in memory, and what a snapshot of it takes.",
        "gauge", s.live_bytes);
  gauge("kvctl_revision", "The last committed store-wide revision.", "gauge", s.revision);
  gauge("kvctl_writable", "1 while writes are accepted, 0 after the log failed or during shutdown.",
        "gauge", writable ? 1 : 0);
  gauge("kvctl_store_puts_total", "PUT changes committed (unchanged PUTs are not changes).", "counter",
        s.puts);
  gauge("kvctl_store_deletes_total", "DELETE changes committed.", "counter", s.deletes);
  gauge("kvctl_commit_batches_total", "Group commits: log appends, each covering one or more changes.",
        "counter", s.commit_batches);
  gauge("kvctl_committed_changes_total", "Changes made durable through group commits.", "counter",
        s.committed_changes);
  for (const core::BackendMetric& m : store_.BackendMetrics()) gauge(m.name, m.help, m.type, m.value);
  if (options_.render_backend_metrics) options_.render_backend_metrics(&out);
  HttpResponse res;
  res.content_type = "text/plain; version=0.0.4";
  res.body = std::move(out);
  return res;
}

}  // namespace kvctl::server
