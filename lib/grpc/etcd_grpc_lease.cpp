// Lease: grant, revoke, the keepalive stream, time-to-live and the list,
// translated into the lease calls of lib/etcd/lease_ops.h and back, for
// callers who may use leases (lib/etcd/access.h). None holds a thread
// while the store answers.
#include <memory>
#include <mutex>

#include "lib/etcd/access.h"
#include "lib/grpc/etcd_grpc_services.h"
#include "lib/grpc/etcd_grpc_stream.h"

namespace kvctl::etcd_grpc {

namespace etcd = server::etcd;

namespace {

// A keepalive stream: admitted when it opens (etcd_grpc_stream.h), then
// reads one request, renews, writes its answer, reads the next. One
// operation is outstanding at a time, so a client that sends faster than
// it reads waits in gRPC's flow control, never in a queue here. The
// renewal answers on the store's committer thread.
class KeepAliveStream final
    : public BidiStream<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveStream(core::KvStore& store, const EtcdOptions& options, const Admitter& admitter,
                  grpc::CallbackServerContext* context)
      : BidiStream(admitter, Method::kLeaseKeepAlive, context), store_(store), options_(options) {}

  void OnReadDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      ReadFinished(ok);
      if (!ok) SetEnd(grpc::Status::OK);  // the client closed its side, or the call ended
    }
    if (!ok) {
      MaybeFinish();
      return;
    }
    std::weak_ptr<BidiStream> weak = shared_from_this();
    etcd::LeaseKeepAlive(store_, request_.id(), [weak](std::optional<Error> error, etcd::LeaseKeepAliveReply kept) {
      if (auto s = weak.lock()) static_cast<KeepAliveStream*>(s.get())->Answer(std::move(error), kept);
    });
  }

  void OnWriteDone(bool ok) override {
    bool read = false;
    {
      std::lock_guard lock(mu_);
      WriteFinished(ok);
      read = ClaimRead();
    }
    if (read) StartClaimedRead();
    MaybeFinish();
  }

 private:
  // One renewal done: its answer, or the stream's end with its error.
  void Answer(std::optional<Error> error, const etcd::LeaseKeepAliveReply& kept) {
    bool write = false;
    {
      std::lock_guard lock(mu_);
      if (error) {
        SetEnd(StatusOf(*error));
      } else if (CanWrite()) {
        response_.Clear();
        FillHeader(options_, kept.revision, response_.mutable_header());
        response_.set_id(kept.id);
        response_.set_ttl(kept.ttl);
        write = ClaimWrite();
      }
    }
    if (write) {
      StartClaimedWrite();
    } else {
      MaybeFinish();
    }
  }

  core::KvStore& store_;
  const EtcdOptions& options_;
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

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext* context) {
  auto stream = std::make_shared<KeepAliveStream>(store_, options_, admitter_, context);
  stream->Open(streams_, etcd::LeasesPermitted(stream->caller()));
  return stream.get();
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
