// The lease routes (SPEC §6 "Leases"): grant, keepalive, revoke, show and
// list, and ?lease=ID of a key PUT. They only translate: the store owns the
// table, the clock and the log records (KvStore's lease calls).
//
// Who may use them (docs/http-api.md): with auth on, any identity with a
// write grant on some prefix. A lease holds no key by itself; attaching
// one is a PUT, which needs write on that key. Showing a lease lists only
// the attached keys the caller may read.
#include <algorithm>
#include <future>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "lib/core/base64.h"
#include "lib/core/lease.h"
#include "lib/core/utf8.h"
#include "lib/server/api.h"
#include "lib/server/api_internal.h"
#include "lib/server/auth.h"

namespace kvctl::server {
namespace {

using api::Json;
using api::json;

HttpResponse FromLeaseError(const core::Status& s) {
  if (s.IsNotFound()) return KvApi::Error(404, "no_such_lease", s.message());
  if (s.IsInvalidArgument()) return KvApi::Error(400, "bad_ttl", s.message());
  if (s.IsUnavailable()) return KvApi::Error(503, "unavailable", s.message());
  return KvApi::Error(500, "internal", s.message());
}

// The id of /v1/lease/{id}: a whole number (400 otherwise; 404 for a
// deeper path, which names no route).
std::optional<HttpResponse> ReadLeaseId(const KvApi::RouteMatch& match, uint64_t* id) {
  if (match.tail.find('/') != std::string_view::npos) {
    return KvApi::Error(404, "not_found", "no such route (a lease is /v1/lease/{id}, renewed at /v1/lease/{id}/keepalive)");
  }
  if (!api::ParseUint(match.tail, id)) {
    return KvApi::Error(400, "bad_parameter",
                        fmt::format("the lease id \"{}\" is not a whole number (ids are what POST /v1/lease answers)",
                                    match.tail));
  }
  return std::nullopt;
}

// {"ttl": seconds}, a whole number within the lease TTL range.
std::optional<HttpResponse> ReadGrant(const std::string& body, int64_t* ttl) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return KvApi::Error(400, "bad_json", "the body must be a JSON object: {\"ttl\": seconds}");
  const auto it = j.find("ttl");
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < core::kMinLeaseTtl ||
      it->get<int64_t>() > core::kMaxLeaseTtl) {
    return KvApi::Error(400, "bad_ttl",
                        fmt::format("\"ttl\" must be a whole number of seconds from {} to {} (a year)",
                                    core::kMinLeaseTtl, core::kMaxLeaseTtl));
  }
  *ttl = it->get<int64_t>();
  return std::nullopt;
}

HttpResponse IdAndTtl(const core::LeaseInfo& lease) {
  return Json(200, json{{"id", lease.id}, {"ttl", lease.ttl}});
}

}  // namespace

std::optional<HttpResponse> KvApi::ReadLeaseParameter(const HttpRequest& req, uint64_t* lease) const {
  *lease = 0;
  if (req.query.empty()) return std::nullopt;
  auto params = api::ParseQuery(req.query);
  if (!params) return Error(400, "bad_parameter", params.error().message());
  for (const auto& [name, value] : *params) {
    if (name != "lease") {
      return Error(400, "bad_parameter",
                   fmt::format("unknown query parameter \"{}\" (a PUT takes only lease=ID)", name));
    }
    if (!api::ParseUint(value, lease)) {
      return Error(400, "bad_parameter",
                   fmt::format("lease=\"{}\" is not a whole number (give the id POST /v1/lease answered)", value));
    }
  }
  return std::nullopt;
}

std::optional<HttpResponse> KvApi::AuthorizeLeases(const Principal* caller) {
  if (caller == nullptr || caller->WritesAnything()) return std::nullopt;
  admission_.CountForbidden();
  return Error(403, "forbidden",
               fmt::format("{} may not use leases: they need a write grant on some prefix", caller->name));
}

bool KvApi::IsLeaseWrite(Route route, std::string_view method) {
  return (route == Route::kLeases && method == "POST") || (route == Route::kLease && method == "DELETE") ||
         route == Route::kLeaseKeepAlive;
}

void KvApi::ServeLease(const HttpRequest& req, const RouteMatch& match, const Principal* caller,
                       std::function<void(HttpResponse)> done) {
  const bool read = req.method == "GET" || req.method == "HEAD";
  if (match.route == Route::kLeases && read) {
    return store_.LeasesAsync([done = std::move(done)](core::Result<std::vector<core::LeaseInfo>> listed) {
      if (!listed) return done(FromLeaseError(listed.error()));
      json leases = json::array();
      for (const core::LeaseInfo& lease : *listed) {
        leases.push_back(json{{"id", lease.id}, {"ttl", lease.ttl}, {"remaining", lease.remaining}});
      }
      done(Json(200, json{{"leases", std::move(leases)}}));
    });
  }
  if (match.route == Route::kLeases) {
    int64_t ttl = 0;
    if (auto bad = ReadGrant(req.body, &ttl)) return done(std::move(*bad));
    return store_.LeaseGrantAsync(ttl, 0, [done = std::move(done)](core::Result<core::LeaseInfo> granted) {
      done(granted ? IdAndTtl(*granted) : FromLeaseError(granted.error()));
    });
  }
  uint64_t id = 0;
  if (auto bad = ReadLeaseId(match, &id)) return done(std::move(*bad));
  if (match.route == Route::kLeaseKeepAlive) {
    return store_.LeaseKeepAliveAsync(id, [done = std::move(done)](core::Result<core::LeaseInfo> renewed) {
      done(renewed ? IdAndTtl(*renewed) : FromLeaseError(renewed.error()));
    });
  }
  if (!read) {
    return store_.LeaseRevokeAsync(id, [id, done = std::move(done)](core::Result<uint64_t> revoked) {
      if (!revoked) return done(FromLeaseError(revoked.error()));
      HttpResponse res = Json(200, json{{"id", id}, {"revision", *revoked}});
      res.revision = *revoked;
      done(std::move(res));
    });
  }
  // The caller is copied: the answer may come on the store's thread, after
  // this request's own state is gone.
  std::optional<Principal> reader;
  if (caller != nullptr) reader = *caller;
  store_.LeaseTimeToLiveAsync(id, [reader = std::move(reader), done = std::move(done)](
                                      core::Result<core::LeaseInfo> lease) {
    if (!lease) return done(FromLeaseError(lease.error()));
    // Keys as the listing writes them: "key", plus "key_base64" with the
    // exact bytes when they are not valid UTF-8.
    json keys = json::array();
    for (const std::string& key : lease->keys) {
      if (reader && !reader->Permits(Op::kRead, key)) continue;
      json item{{"key", key}};
      if (!core::IsValidUtf8(key)) item["key_base64"] = core::Base64Encode(key);
      keys.push_back(std::move(item));
    }
    done(Json(200, json{{"id", lease->id}, {"ttl", lease->ttl}, {"remaining", lease->remaining}, {"keys", keys}}));
  });
}

HttpResponse KvApi::HandleLease(const HttpRequest& req, const RouteMatch& match, const Principal* caller) {
  std::promise<HttpResponse> answered;
  std::future<HttpResponse> answer = answered.get_future();
  ServeLease(req, match, caller, [&answered](HttpResponse res) { answered.set_value(std::move(res)); });
  return answer.get();
}

}  // namespace kvctl::server
