// The etcdserverpb services of the gRPC face (etcd_grpc_server.h), each a
// translator between etcd's protobuf messages and the etcd operations of
// lib/etcd: requests into asks, replies and errors into etcd's responses
// and gRPC statuses (etcd's codes and messages).
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"
#include "lib/core/kv_store.h"
#include "lib/etcd/kv_ops.h"
#include "lib/etcd/lease_ops.h"
#include "lib/etcd/types.h"
#include "lib/grpc/etcd_grpc_server.h"
#include "lib/grpc/etcd_grpc_stream.h"

namespace kvctl::etcd_grpc {

using server::EtcdOptions;
using server::etcd::Error;

// etcd's error as gRPC's status: its code and message, as etcd's server
// sends them (etcdctl prints the message).
grpc::Status StatusOf(const Error& error);
// A unary call's reactor, finished at once with `status`.
grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context, const grpc::Status& status);
// The answer of an operation that may wait (lib/etcd's Done): `reactor`
// finished with the error, or with OK once `fill` wrote the reply into
// the call's response.
template <typename Reply, typename Fill>
server::etcd::Done<Reply> FinishWith(grpc::ServerUnaryReactor* reactor, Fill fill) {
  return [reactor, fill = std::move(fill)](std::optional<Error> error, Reply reply) {
    if (error) {
      reactor->Finish(StatusOf(*error));
      return;
    }
    fill(reply);
    reactor->Finish(grpc::Status::OK);
  };
}
void FillHeader(const EtcdOptions& options, uint64_t revision, etcdserverpb::ResponseHeader* header);
void FillKeyValue(const core::ListItem& item, bool keys_only, mvccpb::KeyValue* kv);

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  KvService(core::KvStore& store, const EtcdOptions& options) : store_(store), options_(options) {}

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* context, const etcdserverpb::RangeRequest* request,
                                  etcdserverpb::RangeResponse* response) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* context, const etcdserverpb::PutRequest* request,
                                etcdserverpb::PutResponse* response) override;
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* context,
                                        const etcdserverpb::DeleteRangeRequest* request,
                                        etcdserverpb::DeleteRangeResponse* response) override;
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* context, const etcdserverpb::TxnRequest* request,
                                etcdserverpb::TxnResponse* response) override;
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* context,
                                    const etcdserverpb::CompactionRequest* request,
                                    etcdserverpb::CompactionResponse* response) override;

 private:
  core::KvStore& store_;
  const EtcdOptions& options_;
};

class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  LeaseService(core::KvStore& store, const EtcdOptions& options, OpenStreams& streams)
      : store_(store), options_(options), streams_(streams) {}

  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* context,
                                       const etcdserverpb::LeaseGrantRequest* request,
                                       etcdserverpb::LeaseGrantResponse* response) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* context,
                                        const etcdserverpb::LeaseRevokeRequest* request,
                                        etcdserverpb::LeaseRevokeResponse* response) override;
  // One keepalive answered per request, in order; a stream holds no thread.
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest, etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* context,
                                            const etcdserverpb::LeaseTimeToLiveRequest* request,
                                            etcdserverpb::LeaseTimeToLiveResponse* response) override;
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* context,
                                        const etcdserverpb::LeaseLeasesRequest* request,
                                        etcdserverpb::LeaseLeasesResponse* response) override;

 private:
  core::KvStore& store_;
  const EtcdOptions& options_;
  OpenStreams& streams_;
};

using WatchReactor = grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;

// etcd's watch streams (etcd_grpc_watch.cpp); each holds no thread.
class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  // Watches one stream may hold open at once: etcd's clients keep every
  // watch of a client on one stream, so this is higher than the JSON
  // face's per-POST limit.
  static constexpr size_t kMaxWatchesPerStream = 10000;

  WatchService(core::KvStore& store, const EtcdOptions& options, OpenStreams& streams)
      : store_(store), options_(options), streams_(streams) {}
  WatchReactor* Watch(grpc::CallbackServerContext* context) override;

 private:
  class Stream;

  core::KvStore& store_;
  const EtcdOptions& options_;
  OpenStreams& streams_;
  // The streams' news from the watch hub, one thread for all; shared with
  // the streams' notifies, which may come late.
  std::shared_ptr<WakeQueue> wakes_ = std::make_shared<WakeQueue>();
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  MaintenanceService(core::KvStore& store, const EtcdOptions& options) : store_(store), options_(options) {}
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context, const etcdserverpb::StatusRequest* request,
                                   etcdserverpb::StatusResponse* response) override;

 private:
  core::KvStore& store_;
  const EtcdOptions& options_;
};

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  ClusterService(const EtcdOptions& options, std::string host) : options_(options), host_(std::move(host)) {}
  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* context,
                                       const etcdserverpb::MemberListRequest* request,
                                       etcdserverpb::MemberListResponse* response) override;
  // The port bound, known once the server has started (it may take calls
  // a moment before).
  void set_port(int port) { port_.store(port); }

 private:
  const EtcdOptions& options_;
  const std::string host_;
  std::atomic<int> port_{0};
};

class EtcdGrpcServer::Services {
 public:
  Services(core::KvStore& store, EtcdOptions etcd_options, std::string host)
      : options(std::move(etcd_options)),
        kv(store, this->options),
        lease(store, this->options, streams),
        watch(store, this->options, streams),
        maintenance(store, this->options),
        cluster(this->options, std::move(host)) {}

  const EtcdOptions options;
  // The keepalive and watch streams open now, which a shutdown ends.
  OpenStreams streams;
  KvService kv;
  LeaseService lease;
  WatchService watch;
  MaintenanceService maintenance;
  ClusterService cluster;
};

}  // namespace kvctl::etcd_grpc
