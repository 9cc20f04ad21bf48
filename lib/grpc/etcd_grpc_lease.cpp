// Lease: grant, revoke, the keepalive stream, time-to-live and the list,
// translated into the lease calls of lib/etcd/lease_ops.h and back. None
// holds a thread while the store answers.
#include <memory>
#include <mutex>

#include "lib/grpc/etcd_grpc_services.h"
#include "lib/grpc/etcd_grpc_stream.h"

namespace kvctl::etcd_grpc {

namespace etcd = server::etcd;

namespace {

// A keepalive stream: reads one request, renews, writes its answer, reads
// the next. One operation is outstanding at a time, so a client that
// sends faster than it reads waits in gRPC's flow control, never in a
// queue here. The renewal answers on the store's committer thread.
class KeepAliveStream final
    : public BidiStream<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveStream(core::KvStore& store, const EtcdOptions& options) : store_(store), options_(options) {}

  void OnReadDone(bool ok) override {
    {
      std::lock_guard lock(mu_);
      ReadFinished();
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

grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(grpc::CallbackServerContext*) {
  auto stream = std::make_shared<KeepAliveStream>(store_, options_);
  stream->Open(streams_);
  return stream.get();
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
