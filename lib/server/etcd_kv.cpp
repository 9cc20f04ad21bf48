// etcd's kv/put, kv/range, kv/deleterange and kv/compaction in JSON: each
// request read into its ask, the caller's grants checked, the operation run
// (lib/etcd/kv_ops.h), its reply written as grpc-gateway writes it.
#include "lib/server/auth.h"
#include "lib/server/etcd_internal.h"

namespace kvctl::server {

using etcd::Error;
using etcd::ErrorAnswer;
using etcd::Json;

std::optional<HttpResponse> EtcdApi::ReadPut(Call& call, etcd::PutAsk* ask) {
  for (auto e : {etcd::ReadBytes(call.body, "key", &ask->key), etcd::ReadBytes(call.body, "value", &ask->value),
                 etcd::ReadInt(call.body, "lease", &ask->lease), etcd::ReadBool(call.body, "prev_kv", &ask->prev_kv),
                 etcd::ReadBool(call.body, "ignore_value", &ask->ignore_value),
                 etcd::ReadBool(call.body, "ignore_lease", &ask->ignore_lease)}) {
    if (e) return ErrorAnswer(*e);
  }
  return CheckPutAsk(call, *ask);
}

std::optional<HttpResponse> EtcdApi::CheckPutAsk(const Call& call, const etcd::PutAsk& ask) {
  if (auto e = etcd::CheckPut(options_, ask)) return ErrorAnswer(*e);
  if (!etcd::RangePermitted(call.caller, Op::kWrite, ask.key, "")) {
    admission_.CountForbidden();
    return ErrorAnswer(etcd::PermissionDenied());
  }
  return std::nullopt;
}

HttpResponse EtcdApi::PutAnswer(const std::optional<Error>& error, const etcd::PutReply& reply) const {
  if (error) return ErrorAnswer(*error);
  if (!reply.prev_kv) {
    HttpResponse res;
    res.status = 200;
    res.content_type = "application/json";
    res.body = etcd::HeaderOnlyBody(options_, reply.revision);
    return res;
  }
  Json body;
  body["header"] = etcd::Header(options_, reply.revision);
  const core::ListItem& prev = *reply.prev_kv;
  body["prev_kv"] = etcd::KeyValue(prev.key, prev.value, prev.revision, prev.meta);
  return etcd::Answer(body);
}

HttpResponse EtcdApi::Put(Call& call) {
  etcd::PutAsk ask;
  if (auto refused = ReadPut(call, &ask)) return std::move(*refused);
  etcd::PutReply reply;
  auto error = etcd::Put(store_, ask, &reply);
  return PutAnswer(error, reply);
}

HttpResponse EtcdApi::Range(Call& call) {
  etcd::RangeAsk ask;
  bool serializable = false;  // one member: every read is linearizable
  for (auto e : {etcd::ReadBytes(call.body, "key", &ask.key), etcd::ReadBytes(call.body, "range_end", &ask.range_end),
                 etcd::ReadInt(call.body, "revision", &ask.revision),
                 etcd::ReadBool(call.body, "serializable", &serializable),
                 etcd::ReadRangeShape(call.body, &ask.shape)}) {
    if (e) return ErrorAnswer(*e);
  }
  if (ask.key.empty()) return ErrorAnswer(etcd::KeyNotProvided());
  if (!etcd::RangePermitted(call.caller, Op::kRead, ask.key, ask.range_end)) {
    admission_.CountForbidden();
    return ErrorAnswer(etcd::PermissionDenied());
  }
  etcd::RangeReply reply;
  if (auto e = etcd::Range(store_, ask, &reply)) return ErrorAnswer(*e);
  Json body;
  body["header"] = etcd::Header(options_, reply.revision);
  etcd::AddRangeReply(reply, ask.shape.keys_only, &body);
  return etcd::Answer(body);
}

HttpResponse EtcdApi::DeleteRange(Call& call) {
  etcd::DeleteAsk ask;
  for (auto e : {etcd::ReadBytes(call.body, "key", &ask.key), etcd::ReadBytes(call.body, "range_end", &ask.range_end),
                 etcd::ReadBool(call.body, "prev_kv", &ask.prev_kv)}) {
    if (e) return ErrorAnswer(*e);
  }
  if (ask.key.empty()) return ErrorAnswer(etcd::KeyNotProvided());
  if (!etcd::RangePermitted(call.caller, Op::kWrite, ask.key, ask.range_end)) {
    admission_.CountForbidden();
    return ErrorAnswer(etcd::PermissionDenied());
  }
  etcd::DeleteReply reply;
  if (auto e = etcd::DeleteRange(store_, ask, &reply)) return ErrorAnswer(*e);
  Json body;
  body["header"] = etcd::Header(options_, reply.revision);
  if (reply.deleted != 0) body["deleted"] = std::to_string(reply.deleted);
  if (!reply.prev_kvs.empty()) {
    Json kvs = Json::array();
    for (const auto& it : reply.prev_kvs) kvs.push_back(etcd::KeyValue(it.key, it.value, it.revision, it.meta));
    body["prev_kvs"] = std::move(kvs);
  }
  return etcd::Answer(body);
}

HttpResponse EtcdApi::Compaction(Call& call) {
  int64_t revision = 0;
  if (auto e = etcd::ReadInt(call.body, "revision", &revision)) return ErrorAnswer(*e);
  if (!etcd::CompactionPermitted(call.caller)) {
    admission_.CountForbidden();
    return ErrorAnswer(etcd::PermissionDenied());
  }
  uint64_t header_revision = 0;
  if (auto e = etcd::Compaction(store_, revision, &header_revision)) return ErrorAnswer(*e);
  Json body;
  body["header"] = etcd::Header(options_, header_revision);
  return etcd::Answer(body);
}

}  // namespace kvctl::server
