// Lease: grant, revoke, the keepalive stream, time-to-live and the list,
// translated into the lease calls of lib/etcd/lease_ops.h and back, for
// callers who may use leases (lib/etcd/access.h). None holds a thread
// while the store answers.
#include "lib/etcd/access.h"
#include "lib/grpc/etcd_grpc_services.h"

namespace kvctl::etcd_grpc {

namespace etcd = server::etcd;

namespace {

using KeepAliveReactor = grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>;

// A keepalive stream: admitted when it opens, then reads one request,
// renews, writes its answer, reads the next. One operation is outstanding
// at a time, so a client that sends faster than it reads waits in gRPC's
// flow control, never in a queue here. Reported to the gate, and deleted,
// when gRPC is done with it.
class KeepAliveStream final : public KeepAliveReactor {
 public:
  KeepAliveStream(core::KvStore& store, const EtcdOptions& options, const Admitter& admitter,
                  grpc::CallbackServerContext* context)
      : store_(store), options_(options), call_(admitter, Method::kLeaseKeepAlive, context) {
    if (call_.refused()) {
      End(call_.Refusal());
    } else if (!etcd::LeasesPermitted(call_.caller())) {
      End(call_.Forbidden());
    } else {
      StartRead(&request_);
    }
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side, or the call ended
      End(grpc::Status::OK);
      return;
    }
    bytes_in_ += request_.ByteSizeLong();
    etcd::LeaseKeepAlive(store_, request_.id(), [this](std::optional<Error> error, etcd::LeaseKeepAliveReply kept) {
      if (error) {
        End(StatusOf(*error));
        return;
      }
      response_.Clear();
      FillHeader(options_, kept.revision, response_.mutable_header());
      response_.set_id(kept.id);
      response_.set_ttl(kept.ttl);
      bytes_out_ += response_.ByteSizeLong();
      StartWrite(&response_);
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      End(grpc::Status(grpc::StatusCode::CANCELLED, "the keepalive stream ended"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override {
    call_.Finished(status_, bytes_in_, bytes_out_);
    delete this;
  }

 private:
  void End(const grpc::Status& status) {
    status_ = status;
    Finish(status);
  }

  core::KvStore& store_;
  const EtcdOptions& options_;
  const GatedCall call_;
  etcdserverpb::LeaseKeepAliveRequest request_;
  etcdserverpb::LeaseKeepAliveResponse response_;
  grpc::Status status_;
  size_t bytes_in_ = 0, bytes_out_ = 0;
};

}  // namespace

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* context,
                                                   const etcdserverpb::LeaseGrantRequest* request,
                                                   etcdserverpb::LeaseGrantResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kLeaseGrant, context, *request, *response);
  if (call->refused()) return call;
  if (!etcd::LeasesPermitted(call->caller())) return call->Forbidden();
  etcd::LeaseGrant(store_, request->ttl(), request->id(),
                   call->FinishWith<etcd::LeaseGrantReply>([this, response](const etcd::LeaseGrantReply& r) {
                     FillHeader(options_, r.revision, response->mutable_header());
                     response->set_id(r.id);
                     response->set_ttl(r.ttl);
                   }));
  return call;
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::LeaseRevokeRequest* request,
                                                    etcdserverpb::LeaseRevokeResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kLeaseRevoke, context, *request, *response);
  if (call->refused()) return call;
  if (!etcd::LeasesPermitted(call->caller())) return call->Forbidden();
  etcd::LeaseRevoke(store_, request->id(),
                    call->FinishWith<etcd::LeaseRevokeReply>([this, response](const etcd::LeaseRevokeReply& r) {
                      FillHeader(options_, r.revision, response->mutable_header());
                    }));
  return call;
}

KeepAliveReactor* LeaseService::LeaseKeepAlive(grpc::CallbackServerContext* context) {
  return new KeepAliveStream(store_, options_, admitter_, context);
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(grpc::CallbackServerContext* context,
                                                        const etcdserverpb::LeaseTimeToLiveRequest* request,
                                                        etcdserverpb::LeaseTimeToLiveResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kLeaseTimeToLive, context, *request, *response);
  if (call->refused()) return call;
  if (!etcd::LeasesPermitted(call->caller())) return call->Forbidden();
  etcd::LeaseTimeToLive(
      store_, request->id(), request->keys(),
      // The caller lives as long as the gate, past this call.
      call->FinishWith<etcd::LeaseTimeToLiveReply>([this, response, caller = call->caller()](
                                                       etcd::LeaseTimeToLiveReply& r) {
        FillHeader(options_, r.revision, response->mutable_header());
        response->set_id(r.id);
        response->set_ttl(r.ttl);
        response->set_grantedttl(r.granted_ttl);
        etcd::KeepReadable(caller, &r.keys);
        for (const std::string& key : r.keys) response->add_keys(key);
      }));
  return call;
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::LeaseLeasesRequest* request,
                                                    etcdserverpb::LeaseLeasesResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kLeaseLeases, context, *request, *response);
  if (call->refused()) return call;
  if (!etcd::LeasesPermitted(call->caller())) return call->Forbidden();
  etcd::Leases(store_, call->FinishWith<etcd::LeasesReply>([this, response](const etcd::LeasesReply& r) {
                 FillHeader(options_, r.revision, response->mutable_header());
                 for (int64_t id : r.ids) response->add_leases()->set_id(id);
               }));
  return call;
}

}  // namespace kvctl::etcd_grpc
