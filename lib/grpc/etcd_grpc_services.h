// The etcdserverpb services of the gRPC face (etcd_grpc_server.h), each a
// translator between etcd's protobuf messages and the etcd operations of
// lib/etcd: requests into asks, replies and errors into etcd's responses
// and gRPC statuses (etcd's codes and messages). Every call passes the
// server's admission first (gated_call.h), and its caller's grants are
// judged as the JSON face judges them (lib/etcd/access.h).
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
#include "lib/grpc/gated_call.h"

namespace kvctl::etcd_grpc {

using server::EtcdOptions;
using server::etcd::Error;

void FillHeader(const EtcdOptions& options, uint64_t revision, etcdserverpb::ResponseHeader* header);
void FillKeyValue(const core::ListItem& item, bool keys_only, mvccpb::KeyValue* kv);

class KvService final : public ServedOnly<etcdserverpb::KV> {
 public:
  KvService(core::KvStore& store, const EtcdOptions& options, const Admitter& admitter)
      : store_(store), options_(options), admitter_(admitter) {}

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
  const Admitter& admitter_;
};

class LeaseService final : public ServedOnly<etcdserverpb::Lease> {
 public:
  LeaseService(core::KvStore& store, const EtcdOptions& options, const Admitter& admitter, OpenStreams& streams)
      : store_(store), options_(options), admitter_(admitter), streams_(streams) {}

  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* context,
                                       const etcdserverpb::LeaseGrantRequest* request,
                                       etcdserverpb::LeaseGrantResponse* response) override;
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* context,
                                        const etcdserverpb::LeaseRevokeRequest* request,
                                        etcdserverpb::LeaseRevokeResponse* response) override;
  // One keepalive answered per request, in order; a stream holds no thread.
  // Admitted once, when it opens.
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
  const Admitter& admitter_;
  OpenStreams& streams_;
};

using WatchReactor = grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>;

// etcd's watch streams (etcd_grpc_watch.cpp); each holds no thread.
class WatchService final : public ServedOnly<etcdserverpb::Watch> {
 public:
  // Watches one stream may hold open at once: etcd's clients keep every
  // watch of a client on one stream, so this is higher than the JSON
  // face's per-POST limit.
  static constexpr size_t kMaxWatchesPerStream = 10000;

  WatchService(core::KvStore& store, const EtcdOptions& options, const Admitter& admitter, OpenStreams& streams)
      : store_(store), options_(options), admitter_(admitter), streams_(streams) {}
  WatchReactor* Watch(grpc::CallbackServerContext* context) override;

 private:
  class Stream;

  core::KvStore& store_;
  const EtcdOptions& options_;
  const Admitter& admitter_;
  OpenStreams& streams_;
  // The streams' news from the watch hub, one thread for all; shared with
  // the streams' notifies, which may come late.
  std::shared_ptr<WakeQueue> wakes_ = std::make_shared<WakeQueue>();
};

class MaintenanceService final : public ServedOnly<etcdserverpb::Maintenance> {
 public:
  MaintenanceService(core::KvStore& store, const EtcdOptions& options, const Admitter& admitter)
      : store_(store), options_(options), admitter_(admitter) {}
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context, const etcdserverpb::StatusRequest* request,
                                   etcdserverpb::StatusResponse* response) override;

 private:
  core::KvStore& store_;
  const EtcdOptions& options_;
  const Admitter& admitter_;
};

class ClusterService final : public ServedOnly<etcdserverpb::Cluster> {
 public:
  ClusterService(const EtcdOptions& options, const Admitter& admitter, std::string host, std::string scheme)
      : options_(options), admitter_(admitter), host_(std::move(host)), scheme_(std::move(scheme)) {}
  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* context,
                                       const etcdserverpb::MemberListRequest* request,
                                       etcdserverpb::MemberListResponse* response) override;
  // The port bound, known once the server has started (it may take calls
  // a moment before).
  void set_port(int port) { port_.store(port); }

 private:
  const EtcdOptions& options_;
  const Admitter& admitter_;
  const std::string host_;
  const std::string scheme_;  // "http", or "https" with TLS
  std::atomic<int> port_{0};
};

// Auth: Authenticate, so that etcd's clients log in with a token entry's
// name and token (etcdctl --user NAME:TOKEN); the user and role calls are
// not served (kvctl's identities are its configuration).
class AuthService final : public ServedOnly<etcdserverpb::Auth> {
 public:
  AuthService(const core::KvStore& store, const EtcdOptions& options, const Admitter& admitter)
      : store_(store), options_(options), admitter_(admitter) {}
  grpc::ServerUnaryReactor* Authenticate(grpc::CallbackServerContext* context,
                                         const etcdserverpb::AuthenticateRequest* request,
                                         etcdserverpb::AuthenticateResponse* response) override;

 private:
  const core::KvStore& store_;
  const EtcdOptions& options_;
  const Admitter& admitter_;
};

class EtcdGrpcServer::Services {
 public:
  Services(core::KvStore& store, EtcdOptions etcd_options, Admitter admitter_of_calls, std::string host,
           std::string scheme)
      : options(std::move(etcd_options)),
        admitter(admitter_of_calls),
        kv(store, this->options, this->admitter),
        lease(store, this->options, this->admitter, streams),
        watch(store, this->options, this->admitter, streams),
        maintenance(store, this->options, this->admitter),
        cluster(this->options, this->admitter, std::move(host), std::move(scheme)),
        auth(store, this->options, this->admitter),
        unserved(this->admitter) {}

  const EtcdOptions options;
  const Admitter admitter;
  // The keepalive and watch streams open now, which a shutdown ends.
  OpenStreams streams;
  KvService kv;
  LeaseService lease;
  WatchService watch;
  MaintenanceService maintenance;
  ClusterService cluster;
  AuthService auth;
  UnservedCalls unserved;
};

}  // namespace kvctl::etcd_grpc
