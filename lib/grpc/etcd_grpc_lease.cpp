// Lease: grant, revoke, the keepalive stream, time-to-live and the list,
// translated into the lease calls of lib/etcd/lease_ops.h and back. None
// holds a thread while the store answers.
#include "lib/grpc/etcd_grpc_services.h"

namespace kvctl::etcd_grpc {

namespace etcd = server::etcd;

namespace {

using KeepAliveReactor = grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>;

// A keepalive stream: reads one request, renews, writes its answer, reads
// the next. One operation is outstanding at a time, so a client that
// sends faster than it reads waits in gRPC's flow control, never in a
// queue here. Deletes itself when gRPC is done with it.
class KeepAliveStream final : public KeepAliveReactor {
 public:
  KeepAliveStream(core::KvStore& store, const EtcdOptions& options) : store_(store), options_(options) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side, or the call ended
      Finish(grpc::Status::OK);
      return;
    }
    etcd::LeaseKeepAlive(store_, request_.id(), [this](std::optional<Error> error, etcd::LeaseKeepAliveReply kept) {
      if (error) {
        Finish(StatusOf(*error));
        return;
      }
      response_.Clear();
      FillHeader(options_, kept.revision, response_.mutable_header());
      response_.set_id(kept.id);
      response_.set_ttl(kept.ttl);
      StartWrite(&response_);
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the keepalive stream ended"));
      return;
    }
    StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  core::KvStore& store_;
  const EtcdOptions& options_;
  etcdserverpb::LeaseKeepAliveRequest request_;
  etcdserverpb::LeaseKeepAliveResponse response_;
};

}  // namespace

grpc::ServerUnaryReactor* LeaseService::LeaseGrant(grpc::CallbackServerContext* context,
                                                   const etcdserverpb::LeaseGrantRequest* request,
                                                   etcdserverpb::LeaseGrantResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  etcd::LeaseGrant(store_, request->ttl(), request->id(),
                   FinishWith<etcd::LeaseGrantReply>(reactor, [this, response](const etcd::LeaseGrantReply& r) {
                     FillHeader(options_, r.revision, response->mutable_header());
                     response->set_id(r.id);
                     response->set_ttl(r.ttl);
                   }));
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseRevoke(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::LeaseRevokeRequest* request,
                                                    etcdserverpb::LeaseRevokeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  etcd::LeaseRevoke(store_, request->id(),
                    FinishWith<etcd::LeaseRevokeReply>(reactor, [this, response](const etcd::LeaseRevokeReply& r) {
                      FillHeader(options_, r.revision, response->mutable_header());
                    }));
  return reactor;
}

KeepAliveReactor* LeaseService::LeaseKeepAlive(grpc::CallbackServerContext*) {
  return new KeepAliveStream(store_, options_);
}

grpc::ServerUnaryReactor* LeaseService::LeaseTimeToLive(grpc::CallbackServerContext* context,
                                                        const etcdserverpb::LeaseTimeToLiveRequest* request,
                                                        etcdserverpb::LeaseTimeToLiveResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  etcd::LeaseTimeToLive(
      store_, request->id(), request->keys(),
      FinishWith<etcd::LeaseTimeToLiveReply>(reactor, [this, response](const etcd::LeaseTimeToLiveReply& r) {
        FillHeader(options_, r.revision, response->mutable_header());
        response->set_id(r.id);
        response->set_ttl(r.ttl);
        response->set_grantedttl(r.granted_ttl);
        for (const std::string& key : r.keys) response->add_keys(key);
      }));
  return reactor;
}

grpc::ServerUnaryReactor* LeaseService::LeaseLeases(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::LeaseLeasesRequest*,
                                                    etcdserverpb::LeaseLeasesResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  etcd::Leases(store_, FinishWith<etcd::LeasesReply>(reactor, [this, response](const etcd::LeasesReply& r) {
                 FillHeader(options_, r.revision, response->mutable_header());
                 for (int64_t id : r.ids) response->add_leases()->set_id(id);
               }));
  return reactor;
}

}  // namespace kvctl::etcd_grpc
