// KV: Range, Put, DeleteRange, Txn and Compact, translated into the
// key-value and txn operations of lib/etcd (kv_ops.h, txn_ops.h) and back,
// each judged against the caller's grants first (lib/etcd/access.h).
#include "lib/etcd/access.h"
#include "lib/etcd/txn_ops.h"
#include "lib/grpc/etcd_grpc_services.h"

namespace kvctl::etcd_grpc {

namespace etcd = server::etcd;

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

namespace {

using Kind = etcd::RequestAsk::Kind;
using access::Op;

void RangeAskOf(const etcdserverpb::RangeRequest& request, etcd::RangeAsk* ask) {
  ask->key = request.key();
  ask->range_end = request.range_end();
  ask->revision = request.revision();
  ask->shape.limit = request.limit();
  ask->shape.sort_order = request.sort_order();
  ask->shape.sort_target = request.sort_target();
  ask->shape.keys_only = request.keys_only();
  ask->shape.count_only = request.count_only();
  ask->shape.min_mod = request.min_mod_revision();
  ask->shape.max_mod = request.max_mod_revision();
  ask->shape.min_create = request.min_create_revision();
  ask->shape.max_create = request.max_create_revision();
}

void PutAskOf(const etcdserverpb::PutRequest& request, etcd::PutAsk* ask) {
  ask->key = request.key();
  ask->value = request.value();
  ask->lease = request.lease();
  ask->prev_kv = request.prev_kv();
  ask->ignore_value = request.ignore_value();
  ask->ignore_lease = request.ignore_lease();
}

void DeleteAskOf(const etcdserverpb::DeleteRangeRequest& request, etcd::DeleteAsk* ask) {
  ask->key = request.key();
  ask->range_end = request.range_end();
  ask->prev_kv = request.prev_kv();
}

void FillRange(const etcd::RangeReply& reply, bool keys_only, etcdserverpb::RangeResponse* response) {
  for (const core::ListItem& item : reply.kvs) FillKeyValue(item, keys_only, response->add_kvs());
  response->set_more(reply.more);
  response->set_count(static_cast<int64_t>(reply.count));
}

// A txn's request as its ask; a request of no kind is etcd's refusal.
std::optional<Error> TxnAskOf(const etcdserverpb::TxnRequest& request, etcd::TxnAsk* ask) {
  for (const etcdserverpb::Compare& c : request.compare()) {
    etcd::CompareAsk& compare = ask->compare.emplace_back();
    compare.key = c.key();
    compare.range_end = c.range_end();
    compare.target = c.target();
    compare.result = c.result();
    compare.version = c.version();
    compare.create_revision = c.create_revision();
    compare.mod_revision = c.mod_revision();
    compare.lease = c.lease();
    compare.value = c.value();
  }
  for (auto [ops, asks] : {std::pair{&request.success(), &ask->success}, std::pair{&request.failure(), &ask->failure}}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      etcd::RequestAsk& r = asks->emplace_back();
      switch (op.request_case()) {
        case etcdserverpb::RequestOp::kRequestRange:
          r.kind = Kind::kRange;
          RangeAskOf(op.request_range(), &r.range);
          break;
        case etcdserverpb::RequestOp::kRequestPut:
          r.kind = Kind::kPut;
          PutAskOf(op.request_put(), &r.put);
          break;
        case etcdserverpb::RequestOp::kRequestDeleteRange:
          r.kind = Kind::kDelete;
          DeleteAskOf(op.request_delete_range(), &r.del);
          break;
        case etcdserverpb::RequestOp::kRequestTxn:
          r.kind = Kind::kTxn;
          r.txn = std::make_shared<etcd::TxnAsk>();
          if (auto e = TxnAskOf(op.request_txn(), r.txn.get())) return e;
          break;
        default: return Error{etcd::kInvalidArgument, "etcdserver: key not found"};
      }
    }
  }
  return std::nullopt;
}

// The responses of the branch that ran; inner headers carry the revision
// only, as etcd's do.
void FillResponses(const std::vector<etcd::ResponseReply>& replies, const std::vector<etcd::RequestAsk>& asked,
                   google::protobuf::RepeatedPtrField<etcdserverpb::ResponseOp>* out) {
  for (size_t i = 0; i < replies.size(); ++i) {
    const etcd::ResponseReply& r = replies[i];
    etcdserverpb::ResponseOp* op = out->Add();
    switch (r.kind) {
      case Kind::kPut: {
        etcdserverpb::PutResponse* put = op->mutable_response_put();
        put->mutable_header()->set_revision(static_cast<int64_t>(r.revision));
        if (r.put.prev_kv) FillKeyValue(*r.put.prev_kv, false, put->mutable_prev_kv());
        break;
      }
      case Kind::kRange: {
        etcdserverpb::RangeResponse* range = op->mutable_response_range();
        range->mutable_header()->set_revision(static_cast<int64_t>(r.revision));
        FillRange(r.range, asked[i].range.shape.keys_only, range);
        break;
      }
      case Kind::kDelete: {
        etcdserverpb::DeleteRangeResponse* del = op->mutable_response_delete_range();
        del->mutable_header()->set_revision(static_cast<int64_t>(r.revision));
        del->set_deleted(static_cast<int64_t>(r.del.deleted));
        for (const core::ListItem& item : r.del.prev_kvs) FillKeyValue(item, false, del->add_prev_kvs());
        break;
      }
      case Kind::kTxn: {
        etcdserverpb::TxnResponse* txn = op->mutable_response_txn();
        txn->mutable_header();
        txn->set_succeeded(r.txn->succeeded);
        const etcd::TxnAsk& inner = *asked[i].txn;
        FillResponses(r.txn->responses, r.txn->succeeded ? inner.success : inner.failure, txn->mutable_responses());
        break;
      }
    }
  }
}

}  // namespace

grpc::ServerUnaryReactor* KvService::Range(grpc::CallbackServerContext* context,
                                           const etcdserverpb::RangeRequest* request,
                                           etcdserverpb::RangeResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kRange, context, *request, *response);
  if (call->refused()) return call;
  etcd::RangeAsk ask;
  RangeAskOf(*request, &ask);
  if (ask.key.empty()) return call->Reply(etcd::KeyNotProvided());
  if (!etcd::RangePermitted(call->caller(), Op::kRead, ask.key, ask.range_end)) return call->Forbidden();
  etcd::RangeReply reply;
  if (auto e = etcd::Range(store_, ask, &reply)) return call->Reply(*e);
  FillHeader(options_, reply.revision, response->mutable_header());
  FillRange(reply, ask.shape.keys_only, response);
  return call->Reply(grpc::Status::OK);
}

grpc::ServerUnaryReactor* KvService::Put(grpc::CallbackServerContext* context,
                                         const etcdserverpb::PutRequest* request,
                                         etcdserverpb::PutResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kPut, context, *request, *response);
  if (call->refused()) return call;
  etcd::PutAsk ask;
  PutAskOf(*request, &ask);
  if (auto e = etcd::CheckPut(options_, ask)) return call->Reply(*e);
  if (!etcd::RangePermitted(call->caller(), Op::kWrite, ask.key, "")) return call->Forbidden();
  auto fill = [this, response](const etcd::PutReply& reply) {
    FillHeader(options_, reply.revision, response->mutable_header());
    if (reply.prev_kv) FillKeyValue(*reply.prev_kv, false, response->mutable_prev_kv());
  };
  if (ask.NeedsRead()) {
    // Reads, then writes on condition: waits for the commit on this thread.
    etcd::PutReply reply;
    if (auto e = etcd::Put(store_, ask, &reply)) return call->Reply(*e);
    fill(reply);
    return call->Reply(grpc::Status::OK);
  }
  // The answer comes from the store's committer thread once the put is
  // durable; `response` lives until the call finishes.
  etcd::PlainPutAsync(store_, ask, call->FinishWith<etcd::PutReply>(fill));
  return call;
}

grpc::ServerUnaryReactor* KvService::DeleteRange(grpc::CallbackServerContext* context,
                                                 const etcdserverpb::DeleteRangeRequest* request,
                                                 etcdserverpb::DeleteRangeResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kDeleteRange, context, *request, *response);
  if (call->refused()) return call;
  etcd::DeleteAsk ask;
  DeleteAskOf(*request, &ask);
  if (ask.key.empty()) return call->Reply(etcd::KeyNotProvided());
  if (!etcd::RangePermitted(call->caller(), Op::kWrite, ask.key, ask.range_end)) return call->Forbidden();
  etcd::DeleteReply reply;
  if (auto e = etcd::DeleteRange(store_, ask, &reply)) return call->Reply(*e);
  FillHeader(options_, reply.revision, response->mutable_header());
  response->set_deleted(static_cast<int64_t>(reply.deleted));
  for (const core::ListItem& item : reply.prev_kvs) FillKeyValue(item, false, response->add_prev_kvs());
  return call->Reply(grpc::Status::OK);
}

grpc::ServerUnaryReactor* KvService::Txn(grpc::CallbackServerContext* context, const etcdserverpb::TxnRequest* request,
                                         etcdserverpb::TxnResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kTxn, context, *request, *response);
  if (call->refused()) return call;
  auto ask = std::make_shared<etcd::TxnAsk>();
  if (auto e = TxnAskOf(*request, ask.get())) return call->Reply(*e);
  if (!etcd::TxnPermitted(call->caller(), *ask)) return call->Forbidden();
  etcd::Txn(store_, options_, *ask,
            call->FinishWith<etcd::TxnReply>([this, ask, response](const etcd::TxnReply& reply) {
              FillHeader(options_, reply.revision, response->mutable_header());
              response->set_succeeded(reply.succeeded);
              FillResponses(reply.responses, reply.succeeded ? ask->success : ask->failure,
                            response->mutable_responses());
            }));
  return call;
}

grpc::ServerUnaryReactor* KvService::Compact(grpc::CallbackServerContext* context,
                                             const etcdserverpb::CompactionRequest* request,
                                             etcdserverpb::CompactionResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kCompact, context, *request, *response);
  if (call->refused()) return call;
  if (!etcd::CompactionPermitted(call->caller())) return call->Forbidden();
  uint64_t header_revision = 0;
  if (auto e = etcd::Compaction(store_, request->revision(), &header_revision)) return call->Reply(*e);
  FillHeader(options_, header_revision, response->mutable_header());
  return call->Reply(grpc::Status::OK);
}

}  // namespace kvctl::etcd_grpc
