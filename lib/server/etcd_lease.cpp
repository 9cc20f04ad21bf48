// etcd's lease/grant, revoke, keepalive, timetolive and leases in JSON:
// each request read, the caller's grants checked, the lease call run
// (lib/etcd/lease_ops.h), its reply written as grpc-gateway writes it.
#include <future>
#include <optional>

#include "lib/core/base64.h"
#include "lib/etcd/lease_ops.h"
#include "lib/server/auth.h"
#include "lib/server/etcd_internal.h"

namespace kvctl::server {

using etcd::Error;
using etcd::ErrorAnswer;
using etcd::Json;

namespace {

// The refusal (counted) of a caller who may not use leases, or nothing.
std::optional<HttpResponse> LeasesRefused(const Principal* caller, AdmissionPipeline& admission) {
  if (etcd::LeasesPermitted(caller)) return std::nullopt;
  admission.CountForbidden();
  return ErrorAnswer(etcd::PermissionDenied());
}

// The handlers run on the transport's worker pool, which may wait: the
// lease call's error or reply.
template <typename Reply, typename Start>
std::pair<std::optional<Error>, Reply> Wait(Start start) {
  auto promise = std::make_shared<std::promise<std::pair<std::optional<Error>, Reply>>>();
  auto future = promise->get_future();
  start([promise](std::optional<Error> error, Reply reply) {
    promise->set_value({std::move(error), std::move(reply)});
  });
  return future.get();
}

}  // namespace

HttpResponse EtcdApi::LeaseGrant(Call& call) {
  int64_t ttl = 0, id = 0;
  for (auto e : {etcd::ReadInt(call.body, "TTL", &ttl), etcd::ReadInt(call.body, "ID", &id)}) {
    if (e) return ErrorAnswer(*e);
  }
  if (auto refused = LeasesRefused(call.caller, admission_)) return std::move(*refused);
  auto [error, lease] = Wait<etcd::LeaseGrantReply>([&](auto done) { etcd::LeaseGrant(store_, ttl, id, done); });
  if (error) return ErrorAnswer(*error);
  Json body;
  body["header"] = etcd::Header(options_, lease.revision);
  body["ID"] = std::to_string(lease.id);
  body["TTL"] = std::to_string(lease.ttl);
  return etcd::Answer(body);
}

HttpResponse EtcdApi::LeaseRevoke(Call& call) {
  int64_t id = 0;
  if (auto e = etcd::ReadInt(call.body, "ID", &id)) return ErrorAnswer(*e);
  if (auto refused = LeasesRefused(call.caller, admission_)) return std::move(*refused);
  auto [error, revoked] = Wait<etcd::LeaseRevokeReply>([&](auto done) { etcd::LeaseRevoke(store_, id, done); });
  if (error) return ErrorAnswer(*error);
  Json body;
  body["header"] = etcd::Header(options_, revoked.revision);
  return etcd::Answer(body);
}

HttpResponse EtcdApi::LeaseKeepAlive(Call& call) {
  int64_t id = 0;
  if (auto e = etcd::ReadInt(call.body, "ID", &id)) return ErrorAnswer(*e);
  if (auto refused = LeasesRefused(call.caller, admission_)) return std::move(*refused);
  auto [error, kept] = Wait<etcd::LeaseKeepAliveReply>([&](auto done) { etcd::LeaseKeepAlive(store_, id, done); });
  if (error) return ErrorAnswer(*error);
  // A one-message stream, as the gateway sends it: {"result": ...} and a
  // newline; a lease that is not alive has no TTL.
  Json result;
  result["header"] = etcd::Header(options_, kept.revision);
  result["ID"] = std::to_string(kept.id);
  if (kept.ttl != 0) result["TTL"] = std::to_string(kept.ttl);
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
  auto [error, lease] =
      Wait<etcd::LeaseTimeToLiveReply>([&](auto done) { etcd::LeaseTimeToLive(store_, id, keys, done); });
  if (error) return ErrorAnswer(*error);
  etcd::KeepReadable(call.caller, &lease.keys);
  Json body;
  body["header"] = etcd::Header(options_, lease.revision);
  body["ID"] = std::to_string(lease.id);
  body["TTL"] = std::to_string(lease.ttl);
  if (lease.ttl < 0) return etcd::Answer(body);
  body["grantedTTL"] = std::to_string(lease.granted_ttl);
  if (!lease.keys.empty()) {
    Json list = Json::array();
    for (const std::string& k : lease.keys) list.push_back(core::Base64Encode(k));
    body["keys"] = std::move(list);
  }
  return etcd::Answer(body);
}

HttpResponse EtcdApi::Leases(Call& call) {
  if (auto refused = LeasesRefused(call.caller, admission_)) return std::move(*refused);
  auto [error, leases] = Wait<etcd::LeasesReply>([&](auto done) { etcd::Leases(store_, done); });
  if (error) return ErrorAnswer(*error);
  Json body;
  body["header"] = etcd::Header(options_, leases.revision);
  if (!leases.ids.empty()) {
    Json list = Json::array();
    for (int64_t id : leases.ids) list.push_back(Json{{"ID", std::to_string(id)}});
    body["leases"] = std::move(list);
  }
  return etcd::Answer(body);
}

}  // namespace kvctl::server
