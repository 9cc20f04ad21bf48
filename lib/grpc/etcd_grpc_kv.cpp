// KV: Range, Put, DeleteRange and Compact, translated into the etcd
// operations of lib/etcd/kv_ops.h and back. Txn is not served yet.
#include "lib/grpc/etcd_grpc_services.h"

namespace kvctl::etcd_grpc {

namespace etcd = server::etcd;

grpc::Status StatusOf(const Error& error) {
  return grpc::Status(static_cast<grpc::StatusCode>(error.code), error.message);
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context, const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

void FillHeader(const EtcdOptions& options, uint64_t revision, etcdserverpb::ResponseHeader* header) {
  header->set_cluster_id(options.cluster_id);
  header->set_member_id(options.member_id);
  header->set_revision(static_cast<int64_t>(revision));
  // One member, never an election: the term is always 1.
  header->set_raft_term(1);
}

void FillKeyValue(const core::ListItem& item, bool keys_only, mvccpb::KeyValue* kv) {
  kv->set_key(item.key);
  kv->set_create_revision(static_cast<int64_t>(item.meta.create_revision));
  kv->set_mod_revision(static_cast<int64_t>(item.revision));
  kv->set_version(static_cast<int64_t>(item.meta.version));
  if (!keys_only) kv->set_value(item.value);
  kv->set_lease(static_cast<int64_t>(item.meta.lease));
}

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* context,
                                           const etcdserverpb::RangeRequest* request,
                                           etcdserverpb::RangeResponse* response) {
  etcd::RangeAsk ask;
  ask.key = request->key();
  ask.range_end = request->range_end();
  ask.revision = request->revision();
  ask.shape.limit = request->limit();
  ask.shape.sort_order = request->sort_order();
  ask.shape.sort_target = request->sort_target();
  ask.shape.keys_only = request->keys_only();
  ask.shape.count_only = request->count_only();
  ask.shape.min_mod = request->min_mod_revision();
  ask.shape.max_mod = request->max_mod_revision();
  ask.shape.min_create = request->min_create_revision();
  ask.shape.max_create = request->max_create_revision();
  etcd::RangeReply reply;
  if (auto e = etcd::Range(store_, ask, &reply)) return FinishNow(context, StatusOf(*e));
  FillHeader(options_, reply.revision, response->mutable_header());
  for (const core::ListItem& item : reply.kvs) FillKeyValue(item, ask.shape.keys_only, response->add_kvs());
  response->set_more(reply.more);
  response->set_count(static_cast<int64_t>(reply.count));
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* context,
                                         const etcdserverpb::PutRequest* request,
                                         etcdserverpb::PutResponse* response) {
  etcd::PutAsk ask;
  ask.key = request->key();
  ask.value = request->value();
  ask.lease = request->lease();
  ask.prev_kv = request->prev_kv();
  ask.ignore_value = request->ignore_value();
  ask.ignore_lease = request->ignore_lease();
  if (auto e = etcd::CheckPut(options_, ask)) return FinishNow(context, StatusOf(*e));
  auto fill = [this, response](const etcd::PutReply& reply) {
    FillHeader(options_, reply.revision, response->mutable_header());
    if (reply.prev_kv) FillKeyValue(*reply.prev_kv, false, response->mutable_prev_kv());
  };
  if (ask.NeedsRead()) {
    // Reads, then writes on condition: waits for the commit on this thread.
    etcd::PutReply reply;
    if (auto e = etcd::Put(store_, ask, &reply)) return FinishNow(context, StatusOf(*e));
    fill(reply);
    return FinishNow(context, grpc::Status::OK);
  }
  // The answer comes from the store's committer thread once the put is
  // durable; `response` lives until the reactor finishes.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  etcd::PlainPutAsync(store_, ask, FinishWith<etcd::PutReply>(reactor, fill));
  return reactor;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* context,
                                                 const etcdserverpb::DeleteRangeRequest* request,
                                                 etcdserverpb::DeleteRangeResponse* response) {
  etcd::DeleteAsk ask;
  ask.key = request->key();
  ask.range_end = request->range_end();
  ask.prev_kv = request->prev_kv();
  etcd::DeleteReply reply;
  if (auto e = etcd::DeleteRange(store_, ask, &reply)) return FinishNow(context, StatusOf(*e));
  FillHeader(options_, reply.revision, response->mutable_header());
  response->set_deleted(static_cast<int64_t>(reply.deleted));
  for (const core::ListItem& item : reply.prev_kvs) FillKeyValue(item, false, response->add_prev_kvs());
  return FinishNow(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* context, const etcdserverpb::TxnRequest*,
                                         etcdserverpb::TxnResponse*) {
  return FinishNow(context, StatusOf(etcd::Unimplemented("Txn over gRPC (kv/txn is served on server.etcd_listen)")));
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* context,
                                             const etcdserverpb::CompactionRequest* request,
                                             etcdserverpb::CompactionResponse* response) {
  uint64_t header_revision = 0;
  if (auto e = etcd::Compaction(store_, request->revision(), &header_revision)) {
    return FinishNow(context, StatusOf(*e));
  }
  FillHeader(options_, header_revision, response->mutable_header());
  return FinishNow(context, grpc::Status::OK);
}

}  // namespace kvctl::etcd_grpc
