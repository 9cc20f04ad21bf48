#include "lib/server/admission.h"

#include <algorithm>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kvctl::server {

HttpResponse JsonError(int status, std::string_view code, std::string_view message) {
  HttpResponse res;
  res.status = status;
  res.content_type = "application/json";
  res.body = nlohmann::json{{"error", message}, {"code", code}}.dump(-1, ' ', false,
                                                                     nlohmann::json::error_handler_t::replace);
  res.body.push_back('\n');
  res.error_code = code;
  if (status >= 500) res.error_cause = message;
  return res;
}

AdmissionPipeline::AdmissionPipeline(const core::KvStore& store, AdmissionOptions options)
    : store_(store), options_(std::move(options)), auth_(std::move(options_.auth)) {
  if (options_.rate_limit > 0) {
    rate_limiter_ = std::make_unique<RateLimiter>(
        options_.rate_limit, options_.rate_burst > 0 ? options_.rate_burst : options_.rate_limit);
  }
}

void AdmissionPipeline::Begin(const HttpRequest& req, Admission* admission) const {
  admission->done = false;
  admission->started = std::chrono::steady_clock::now();
  admission->request_id = RequestIdFor(req);
  admission->caller = nullptr;
  admission->key.clear();
}

AdmissionPipeline::Verdict AdmissionPipeline::Judge(const std::function<Credentials()>& credentials,
                                                    std::string_view remote, bool needs_identity) {
  needs_identity = needs_identity && auth_.enabled();
  Verdict verdict;
  Authenticator::Outcome who;
  if (needs_identity) {
    who = auth_.Authenticate(credentials());
    verdict.caller = who.principal;
  }
  // A client is its identity once known, else its address.
  if (rate_limiter_) {
    const std::string client = who.principal != nullptr ? "id:" + who.principal->name : fmt::format("ip:{}", remote);
    if (auto wait = rate_limiter_->Acquire(client)) {
      metrics_.CountRateLimited();
      verdict.refusal = Verdict::Refusal::kRateLimited;
      verdict.retry_after = *wait;
      return verdict;
    }
  }
  if (!needs_identity || who.principal != nullptr) return verdict;
  metrics_.CountAuthFailure(who.failure);
  verdict.refusal = Verdict::Refusal::kUnauthenticated;
  verdict.failure = who.failure;
  verdict.message = std::move(who.message);
  return verdict;
}

std::optional<HttpResponse> AdmissionPipeline::AdmitCaller(const HttpRequest& req, bool needs_identity,
                                                           const Principal** caller) {
  Verdict verdict = Judge([&req] { return CredentialsOf(req); }, req.remote_addr, needs_identity);
  *caller = verdict.caller;
  switch (verdict.refusal) {
    case Verdict::Refusal::kNone: return std::nullopt;
    case Verdict::Refusal::kRateLimited: {
      const int64_t seconds = std::max<int64_t>(1, (verdict.retry_after.count() + 999) / 1000);
      HttpResponse res = JsonError(429, "rate_limited",
                                   fmt::format("too many requests from this client; retry in {} s "
                                               "(ratelimit.rate and ratelimit.burst set the limit)",
                                               seconds));
      res.SetHeader("Retry-After", std::to_string(seconds));
      return res;
    }
    case Verdict::Refusal::kUnauthenticated: break;
  }
  if (verdict.failure == AuthFailure::kDuplicate) return JsonError(400, "duplicate_authorization", verdict.message);
  HttpResponse res = JsonError(401, "unauthorized", verdict.message);
  res.SetHeader("WWW-Authenticate", "Bearer realm=\"kvctl\"");
  return res;
}

std::optional<HttpResponse> AdmissionPipeline::AdmitRequest(const HttpRequest& req, Admission* admission) {
  Begin(req, admission);
  if (auto refusal = AdmitCaller(req, true, &admission->caller)) return refusal;
  admission->done = true;
  return std::nullopt;
}

void AdmissionPipeline::Finish(const Exchange& x, HttpResponse* res) {
  res->SetHeader("X-Request-Id", std::string(x.request_id));
  // Every answer says which store revision it reflects (SPEC §6); the
  // client also takes it as the mark of a kvctl server (SPEC §8). With auth
  // on, an answer to a caller who showed no valid credentials reflects
  // nothing of the store and says 0: how far the revision moves tells how
  // busy the store is, which is for its users only (as /readyz).
  const bool anonymous = auth_.enabled() && x.caller == nullptr;
  res->SetHeader("X-Kvctl-Revision",
                 anonymous ? std::string("0") : std::to_string(res->revision != HttpResponse::kRevisionAtFinish
                                                       ? res->revision
                                                       : store_.revision()));
  const auto took = std::chrono::steady_clock::now() - x.started;
  metrics_.CountRequest(x.route, MethodFromString(x.method), res->status, took);
  if (options_.request_logger == nullptr) return;
  LogRequest(*options_.request_logger,
             {.method = x.method,
              .route = RouteLabel(x.route),
              .status = res->status,
              .bytes_in = x.bytes_in,
              .bytes_out = x.method == "HEAD" ? 0 : res->body.size(),  // a stream's: not known yet
              .duration = took,
              .request_id = x.request_id,
              .remote = x.remote,
              .identity = x.caller != nullptr ? std::string_view(x.caller->name) : std::string_view(),
              .error_code = res->error_code,
              .cause = res->error_cause});
}

void AdmissionPipeline::Finish(Route route, std::string_view method, const Admission& admission,
                               std::string_view remote, size_t bytes_in, HttpResponse* res) {
  Finish({.started = admission.started,
          .route = route,
          .method = method,
          .request_id = admission.request_id,
          .remote = remote,
          .bytes_in = bytes_in,
          .caller = admission.caller},
         res);
}

HttpResponse AdmissionPipeline::TransportError(int status, std::string_view problem) {
  switch (status) {
    case 411:
      return JsonError(411, "length_required",
                       "send the value with a Content-Length header (chunked bodies are refused: "
                       "their size is unknown until they are read)");
    case 413: return JsonError(413, "value_too_large", "the request body is over limits.max_value_bytes");
    case 414: return JsonError(414, "key_too_long", "the request line is too long");
    case 431:
      return JsonError(431, "headers_too_large", "the request line and headers are over server.max_header_bytes");
    case 404: return JsonError(404, "not_found", "no such route");
    case 408:
      return JsonError(408, "request_timeout",
                       problem.empty() ? std::string_view("the request did not arrive whole within server.read_timeout")
                                       : problem);
    case 503:
      return JsonError(503, "too_many_connections",
                       "the server has server.max_connections connections open; retry shortly");
    case 505: return JsonError(505, "http_version", "only HTTP/1.0 and HTTP/1.1 are spoken here");
    case 500: return JsonError(500, "internal", "internal error");
    default:
      return JsonError(status, "bad_request",
                       problem.empty() ? std::string("the request is malformed")
                                       : fmt::format("the request is malformed: {}", problem));
  }
}

HttpResponse AdmissionPipeline::Refused(int status, std::string_view problem, std::string_view remote_addr) {
  HttpRequest unread;
  unread.method = "-";
  unread.remote_addr = remote_addr;
  Admission admission;
  Begin(unread, &admission);
  HttpResponse res = TransportError(status, problem);
  Finish(Route::kUnknown, unread.method, admission, remote_addr, 0, &res);
  return res;
}

void AdmissionPipeline::TlsHandshakeFailed(std::string_view remote_addr, TlsFailure why,
                                           std::string_view detail) {
  metrics_.CountTlsFailure(why);
  if (options_.logger == nullptr) return;
  uint64_t suppressed = 0;
  if (!tls_log_throttle_.Allow(std::chrono::steady_clock::now(), &suppressed)) return;
  const core::LogLevel level = why == TlsFailure::kClosed ? core::LogLevel::kDebug : core::LogLevel::kWarn;
  if (suppressed == 0) {
    options_.logger->Log(level, "TLS handshake failed",
                         {{"remote", std::string(remote_addr)}, {"reason", TlsFailureLabel(why)},
                          {"detail", std::string(detail)}});
  } else {
    options_.logger->Log(level, "TLS handshake failed",
                         {{"remote", std::string(remote_addr)}, {"reason", TlsFailureLabel(why)},
                          {"detail", std::string(detail)}, {"not_logged_before", suppressed}});
  }
}

}  // namespace kvctl::server
