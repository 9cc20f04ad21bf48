#include "lib/server/api.h"

#include <charconv>
#include <chrono>
#include <optional>

#include <fmt/format.h>

#include "lib/core/forwarded_writes.h"
#include "lib/core/percent_encoding.h"
#include "lib/server/api_internal.h"
#include "lib/server/request_log.h"

namespace kvctl::server {
namespace api {

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

bool ParseUint(std::string_view text, uint64_t* out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

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

}  // namespace api

namespace {

using api::Json;
using api::json;
using RouteMatch = KvApi::RouteMatch;

constexpr std::string_view kKeyPrefix = "/v1/kv/";
constexpr std::string_view kListPath = "/v1/kv";
constexpr std::string_view kLeasesPath = "/v1/lease";
constexpr std::string_view kLeasePrefix = "/v1/lease/";
constexpr std::string_view kKeepAliveSuffix = "/keepalive";

RouteMatch MatchRoute(std::string_view path) {
  // "OPTIONS *" (the transport lets no other method have this target).
  if (path == "*") return {Route::kAsterisk, "GET, HEAD, PUT, DELETE, POST, OPTIONS", {}};
  if (path.starts_with(kKeyPrefix)) return {Route::kKey, "GET, HEAD, PUT, DELETE", path.substr(kKeyPrefix.size())};
  if (path == kListPath) return {Route::kList, "GET, HEAD", {}};
  if (path == "/v1/watch") return {Route::kWatch, "GET, HEAD", {}};
  if (path == "/v1/txn") return {Route::kTxn, "POST", {}};
  if (path == "/v1/admin/compact") return {Route::kAdminCompact, "POST", {}};
  if (path == core::kPeerWritesPath) return {Route::kPeerWrites, "POST", {}};
  if (path == kLeasesPath) return {Route::kLeases, "GET, HEAD, POST", {}};
  if (path.starts_with(kLeasePrefix)) {
    std::string_view id = path.substr(kLeasePrefix.size());
    if (id.ends_with(kKeepAliveSuffix)) {
      return {Route::kLeaseKeepAlive, "POST", id.substr(0, id.size() - kKeepAliveSuffix.size())};
    }
    return {Route::kLease, "GET, HEAD, DELETE", id};
  }
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

size_t HttpRequest::HeaderCount(std::string_view name) const {
  size_t n = 0;
  for (const auto& [k, v] : headers) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
        })) {
      ++n;
    }
  }
  return n;
}

KvApi::KvApi(core::KvStore& store, ApiOptions options, AdmissionPipeline& admission)
    : store_(store), options_(std::move(options)), admission_(admission) {}

Exchange KvApi::ExchangeOf(const HttpRequest& req, Route route, const Admission& admission) {
  return {.started = admission.started,
          .route = route,
          .method = req.method,
          .request_id = admission.request_id,
          .remote = req.remote_addr,
          .bytes_in = req.body.size(),
          .caller = admission.caller};
}

std::optional<HttpResponse> KvApi::Admit(HttpRequest& req) {
  const RouteMatch match = MatchRoute(req.path);
  std::optional<HttpResponse> res = AdmitHead(req, match, &req.admission);
  if (res) admission_.Finish(ExchangeOf(req, match.route, req.admission), &*res);
  return res;
}

HttpResponse KvApi::Handle(const HttpRequest& req) {
  const RouteMatch match = MatchRoute(req.path);
  Admission here;  // for a request that was not admitted at its head (tests, other callers)
  const Admission* admission = &req.admission;
  HttpResponse res;
  if (!admission->done) {
    admission = &here;
    if (std::optional<HttpResponse> early = AdmitHead(req, match, &here)) {
      res = std::move(*early);
      admission_.Finish(ExchangeOf(req, match.route, here), &res);
      return res;
    }
  }
  res = Dispatch(req, match, *admission);
  if (res.deferred) return res;  // finished when it is answered
  admission_.Finish(ExchangeOf(req, match.route, *admission), &res);
  return res;
}

std::optional<HttpResponse> KvApi::AdmitHead(const HttpRequest& req, const RouteMatch& match,
                                             Admission* admission) {
  admission_.Begin(req, admission);
  // Probes answer whoever asks, however often: a load balancer or an
  // orchestrator must be able to tell whether the process is alive.
  const bool probe = match.route == Route::kHealthz || match.route == Route::kReadyz;
  if (match.route == Route::kPeerWrites) {
    // A peer server, not a user: its user was admitted where it wrote
    // (grants included), and it proves it is a peer with the writer's token.
    if (auto refusal = AdmitPeer(req)) return refusal;
  } else if (!probe) {
    // /metrics asks who the caller is only when it needs admin.
    const bool needs_identity = match.route != Route::kMetrics || admission_.auth().metrics_need_admin();
    if (auto refusal = admission_.AdmitCaller(req, needs_identity, &admission->caller)) return refusal;
  } else if (match.route == Route::kReadyz && admission_.auth().enabled()) {
    // Open to all, but an admin who says who it is is told the revision
    // too. Credentials that do not hold are no refusal here: the caller is
    // anonymous.
    admission->caller = admission_.auth().Authenticate(req).principal;
  }
  // What the head alone decides, for an admitted caller only: an unknown
  // client learns nothing of the routes, and pays the rate limit for asking.
  if (match.route == Route::kUnknown) {
    return Error(404, "not_found",
                 fmt::format("no such route: {} (keys live under /v1/kv/{{key}}, listing is GET /v1/kv?prefix=)",
                             req.path));
  }
  if (req.method == "OPTIONS") {
    HttpResponse res;
    res.status = match.route == Route::kAsterisk ? 200 : 204;
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
  // A parameter the route does not know is refused, not ignored: a PUT
  // with ?lease=7 must not quietly write a key without its lease. The
  // listing judges its own parameters (HandleList).
  // (Judged only when there is a query: a plain GET or PUT pays nothing.)
  if (!req.query.empty() && match.route == Route::kKey && (req.method == "GET" || req.method == "HEAD")) {
    LongPollAsk ask;
    if (auto bad = ReadLongPoll(req.query, &ask)) return bad;
  } else if (!req.query.empty() && match.route == Route::kKey && req.method == "PUT") {
    uint64_t lease = 0;
    if (auto bad = ReadLeaseParameter(req, &lease)) return bad;
  } else if (!req.query.empty() && match.route != Route::kList && match.route != Route::kWatch) {
    auto params = api::ParseQuery(req.query);
    if (!params) return Error(400, "bad_parameter", params.error().message());
    if (!params->empty()) {
      return Error(400, "bad_parameter",
                   fmt::format("unknown query parameter \"{}\" ({} takes no query parameters)",
                               params->begin()->first, RouteLabel(match.route)));
    }
  }
  // The caller's grant for what it asks, before a body byte is read.
  const Principal* caller = admission->caller;
  switch (match.route) {
    case Route::kKey: {
      if (auto bad = DecodeKey(match.tail, &admission->key)) return bad;
      const bool read = req.method == "GET" || req.method == "HEAD";
      if (auto refusal = Authorize(caller, read ? Op::kRead : Op::kWrite, admission->key)) return refusal;
      break;
    }
    case Route::kList:
    case Route::kWatch:  // which keys: HandleWatch, once the parameters are read
      if (caller != nullptr && !caller->ReadsAnything()) {
        admission_.CountForbidden();
        return Error(403, "forbidden", fmt::format("{} may not read any key", caller->name));
      }
      break;
    case Route::kAdminCompact:
    case Route::kMetrics:  // caller is null unless auth.metrics = "admin"
      if (auto refusal = Authorize(caller, Op::kAdmin, "")) return refusal;
      break;
    case Route::kLeases:
    case Route::kLease:
    case Route::kLeaseKeepAlive:
      if (auto refusal = AuthorizeLeases(caller)) return refusal;
      break;
    default: break;
  }
  admission->done = true;
  return std::nullopt;
}

std::optional<HttpResponse> KvApi::Authorize(const Principal* caller, Op op, std::string_view key) {
  if (caller == nullptr || caller->Permits(op, key)) return std::nullopt;
  admission_.CountForbidden();
  return Error(403, "forbidden",
               op == Op::kAdmin
                   ? fmt::format("{} has no admin grant (admin is granted with prefix \"\")", caller->name)
                   : fmt::format("{} may not {} this key: no grant of {} covers it", caller->name,
                                 OpName(op), OpName(op)));
}

HttpResponse KvApi::Dispatch(const HttpRequest& req, const RouteMatch& match, const Admission& admission) {
  switch (match.route) {
    case Route::kKey:
      if (!req.query.empty() && (req.method == "GET" || req.method == "HEAD")) {
        LongPollAsk ask;
        if (auto bad = ReadLongPoll(req.query, &ask)) return std::move(*bad);
        return LongPollAnswer(req, admission, ask);
      }
      return HandleKey(req, admission.key);
    case Route::kList: return HandleList(req, admission.caller);
    case Route::kWatch: return HandleWatch(req, admission.caller);
    case Route::kTxn: return HandleTxn(req, admission.caller);
    case Route::kAdminCompact: return HandleCompact();
    case Route::kMetrics: return HandleMetrics();
    case Route::kHealthz: return HandleHealthz();
    case Route::kReadyz: return HandleReadyz(admission.caller);
    case Route::kLeases:
    case Route::kLease:
    case Route::kLeaseKeepAlive: return HandleLease(req, match, admission.caller);
    default: break;
  }
  return AdmissionPipeline::TransportError(500);
}

bool KvApi::HandleWriteAsync(HttpRequest& req, Reply reply) {
  const RouteMatch match = MatchRoute(req.path);
  const bool key_write = match.route == Route::kKey && (req.method == "PUT" || req.method == "DELETE");
  const bool txn = match.route == Route::kTxn && req.method == "POST";
  const bool peer = match.route == Route::kPeerWrites && req.method == "POST";
  if (!key_write && !txn && !peer && !IsLeaseWrite(match.route, req.method)) return false;
  Admission here;
  Admission* admission = &req.admission;
  std::optional<HttpResponse> refusal;
  if (!admission->done) {
    admission = &here;
    refusal = AdmitHead(req, match, &here);
  }
  // Moved, not copied: the answer outlives the request, which is done with them.
  auto write = std::make_shared<AsyncWrite>(AsyncWrite{.route = match.route,
                                                       .started = admission->started,
                                                       .method = req.method,
                                                       .request_id = std::move(admission->request_id),
                                                       .remote = req.remote_addr,
                                                       .bytes_in = req.body.size(),
                                                       .caller = admission->caller,
                                                       .key = std::move(admission->key)});
  req.admission.done = false;  // its parts are gone: were it handled again, it would be admitted again
  auto answer = [this, write, reply = std::move(reply)](HttpResponse res) {
    admission_.Finish(write->View(), &res);
    reply(std::move(res));
  };
  if (peer) {
    if (refusal) {
      answer(std::move(*refusal));
    } else {
      ServePeerWrites(req, std::move(answer));
    }
    return true;
  }
  if (txn) {
    // Held by the callback, so it outlives the call whichever way the store answers.
    auto request = std::make_shared<core::TxnRequest>();
    if (!refusal) refusal = ReadTxn(req, write->caller, request.get());
    if (refusal) {
      answer(std::move(*refusal));
      return true;
    }
    store_.TxnAsync(*request, [request, answer = std::move(answer)](core::Result<core::TxnResult> result) {
      answer(TxnAnswer(result));
    });
    return true;
  }
  if (!key_write) {
    if (refusal) {
      answer(std::move(*refusal));
    } else {
      ServeLease(req, match, write->caller, std::move(answer));
    }
    return true;
  }
  core::Precondition pre;
  uint64_t lease = 0;
  if (!refusal) refusal = CheckWrite(req, &pre);
  if (!refusal) refusal = ReadLeaseParameter(req, &lease);
  if (refusal) {
    answer(std::move(*refusal));
  } else if (req.method == "PUT") {
    // `key` stays valid: the AsyncWrite that holds it lives as long as `answer`.
    store_.PutAsync(write->key, req.body, pre, lease,
                    [&key = write->key, answer = std::move(answer)](core::Result<core::PutOutcome> put) {
                      answer(PutAnswer(key, put));
                    });
  } else {
    store_.DeleteAsync(write->key, pre, [answer = std::move(answer)](core::Result<core::DeleteOutcome> del) {
      answer(DeleteAnswer(del));
    });
  }
  return true;
}

}  // namespace kvctl::server
