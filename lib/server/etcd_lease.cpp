// etcd's lease/grant, revoke, keepalive, timetolive and leases over
// KvStore's lease calls.
#include <algorithm>
#include <future>
#include <optional>

#include <fmt/format.h>

#include "lib/core/base64.h"
#include "lib/core/lease.h"
#include "lib/server/auth.h"
#include "lib/server/etcd_internal.h"

namespace kvctl::server {

using etcd::ErrorAnswer;
using etcd::Json;

namespace {

// etcd's smallest TTL with its default election timeout (1 s): a grant of
// less is granted this.
constexpr int64_t kEtcdMinTtl = 2;

// Leases are store-wide: only a caller that may write some key may use
// them, as in kvctl's own API. The refusal (counted), or nothing.
std::optional<HttpResponse> LeasesRefused(const Principal* caller, AdmissionPipeline& admission) {
  if (caller == nullptr) return std::nullopt;
  if (std::any_of(caller->grants.begin(), caller->grants.end(), [](const Grant& g) { return g.write; })) {
    return std::nullopt;
  }
  admission.CountForbidden();
  return ErrorAnswer(etcd::PermissionDenied());
}

// The handlers run on the transport's worker pool, which may wait.
template <typename T, typename Start>
core::Result<T> Wait(Start start) {
  auto promise = std::make_shared<std::promise<core::Result<T>>>();
  auto future = promise->get_future();
  start([promise](core::Result<T> r) { promise->set_value(std::move(r)); });
  return future.get();
}

}  // namespace

HttpResponse EtcdApi::LeaseGrant(Call& call) {
  int64_t ttl = 0, id = 0;
  for (auto e : {etcd::ReadInt(call.body, "TTL", &ttl), etcd::ReadInt(call.body, "ID", &id)}) {
    if (e) return ErrorAnswer(*e);
  }
  if (auto refused = LeasesRefused(call.caller, admission_)) return std::move(*refused);
  if (id < 0) {
    // etcd takes any int64; kvctl's ids are positive (docs/etcd.md).
    return ErrorAnswer({etcd::kInvalidArgument, "kvctl: a lease ID is positive, or 0 for the server to pick one"});
  }
  ttl = std::clamp(ttl, kEtcdMinTtl, core::kMaxLeaseTtl);
  auto lease = Wait<core::LeaseInfo>(
      [&](auto done) { store_.LeaseGrantAsync(ttl, static_cast<uint64_t>(id), std::move(done)); });
  if (!lease) {
    return ErrorAnswer(lease.error().code() == core::Code::kFailedPrecondition ? etcd::LeaseAlreadyExists()
                                                                                : etcd::FromStatus(lease.error()));
  }
  Json body;
  body["header"] = etcd::Header(options_, store_.revision());
  body["ID"] = std::to_string(lease->id);
  body["TTL"] = std::to_string(lease->ttl);
  return etcd::Answer(body);
}

HttpResponse EtcdApi::LeaseRevoke(Call& call) {
  int64_t id = 0;
  if (auto e = etcd::ReadInt(call.body, "ID", &id)) return ErrorAnswer(*e);
  if (auto refused = LeasesRefused(call.caller, admission_)) return std::move(*refused);
  if (id <= 0) return ErrorAnswer(etcd::LeaseNotFound());
  auto revoked = Wait<uint64_t>([&](auto done) { store_.LeaseRevokeAsync(static_cast<uint64_t>(id), std::move(done)); });
  if (!revoked) {
    return ErrorAnswer(revoked.error().code() == core::Code::kNotFound ? etcd::LeaseNotFound()
                                                                        : etcd::FromStatus(revoked.error()));
  }
  Json body;
  body["header"] = etcd::Header(options_, std::max(*revoked, store_.revision()));
  return etcd::Answer(body);
}

HttpResponse EtcdApi::LeaseKeepAlive(Call& call) {
  int64_t id = 0;
  if (auto e = etcd::ReadInt(call.body, "ID", &id)) return ErrorAnswer(*e);
  if (auto refused = LeasesRefused(call.caller, admission_)) return std::move(*refused);
  core::Result<core::LeaseInfo> lease = core::Status::NotFound("no such lease");
  if (id > 0) lease = store_.LeaseKeepAlive(static_cast<uint64_t>(id));
  if (!lease && lease.error().code() != core::Code::kNotFound) return ErrorAnswer(etcd::FromStatus(lease.error()));
  // A one-message stream, as the gateway sends it: {"result": ...} and a
  // newline; a lease that is not alive has no TTL.
  Json result;
  result["header"] = etcd::Header(options_, store_.revision());
  result["ID"] = std::to_string(id);
  if (lease) result["TTL"] = std::to_string(lease->ttl);
  HttpResponse res = etcd::Answer(Json{{"result", std::move(result)}});
  res.body.push_back('\n');
  return res;
}

HttpResponse EtcdApi::LeaseTimeToLive(Call& call) {
  int64_t id = 0;
  bool keys = false;
  for (auto e : {etcd::ReadInt(call.body, "ID", &id), etcd::ReadBool(call.body, "keys", &keys)}) {
    if (e) return ErrorAnswer(*e);
  }
  if (auto refused = LeasesRefused(call.caller, admission_)) return std::move(*refused);
  core::Result<core::LeaseInfo> lease = core::Status::NotFound("no such lease");
  if (id > 0) lease = store_.LeaseTimeToLive(static_cast<uint64_t>(id));
  if (!lease && lease.error().code() != core::Code::kNotFound) return ErrorAnswer(etcd::FromStatus(lease.error()));
  Json body;
  body["header"] = etcd::Header(options_, store_.revision());
  body["ID"] = std::to_string(id);
  if (!lease) {
    body["TTL"] = "-1";
    return etcd::Answer(body);
  }
  body["TTL"] = std::to_string(lease->remaining);
  body["grantedTTL"] = std::to_string(lease->ttl);
  if (keys && !lease->keys.empty()) {
    Json list = Json::array();
    for (const std::string& k : lease->keys) list.push_back(core::Base64Encode(k));
    body["keys"] = std::move(list);
  }
  return etcd::Answer(body);
}

HttpResponse EtcdApi::Leases(Call& call) {
  if (auto refused = LeasesRefused(call.caller, admission_)) return std::move(*refused);
  auto leases = store_.Leases();
  if (!leases) return ErrorAnswer(etcd::FromStatus(leases.error()));
  Json body;
  body["header"] = etcd::Header(options_, store_.revision());
  if (!leases->empty()) {
    Json list = Json::array();
    for (const core::LeaseInfo& l : *leases) list.push_back(Json{{"ID", std::to_string(l.id)}});
    body["leases"] = std::move(list);
  }
  return etcd::Answer(body);
}

}  // namespace kvctl::server
