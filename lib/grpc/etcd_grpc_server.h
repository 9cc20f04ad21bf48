// etcd's gRPC API (SPEC §7) on its own listener (server.etcd_grpc_listen):
// the etcdserverpb services etcdctl and etcd's gRPC clients call, over the
// same store and the same etcd operations as the JSON face
// (lib/etcd/kv_ops.h). Each service only translates etcd's protobuf
// messages into those operations' asks and their replies back
// (etcd_grpc_services.h).
//
// A port of its own, not the JSON face's: gRPC's C++ server owns its
// listening socket, its HTTP/2 and its TLS, while server.etcd_listen is
// kvctl's own HTTP/1.1 transport; sharing one port would mean relaying
// every gRPC connection through a second hop (docs/etcd.md).
//
// Served so far: KV (Range, Put, DeleteRange, Txn, Compact); Watch's
// stream; Lease's calls and keepalive stream; Maintenance's Status;
// Cluster's MemberList; Auth's Authenticate. Every other method answers
// UNIMPLEMENTED. Calls run on gRPC's callback API: a plain put, a txn and
// the lease calls wait for the store without holding a thread, and no
// stream holds one.
//
// Admission is the server's one pipeline, reached through a CallGate
// (call_gate.h): every call (an unserved one too) is admitted when it
// starts (a stream when it opens), judged against its caller's grants,
// counted and logged. TLS is gRPC's own, from the PEM texts given
// (TlsPems): with a client CA, client certificates are required and
// verified (mutual TLS), and a check of the server's may refuse one after
// gRPC has verified it (the CRL).
//
// Thread safety: Start() and Shutdown() from one thread; calls are
// answered on gRPC's threads and the store's committer thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "lib/core/kv_store.h"
#include "lib/core/status.h"
#include "lib/etcd/types.h"
#include "lib/grpc/call_gate.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace kvctl::etcd_grpc {

// The listener's TLS, as PEM texts (gRPC reads no files of its own).
struct TlsPems {
  std::string cert_chain;   // empty: plain gRPC
  std::string private_key;
  std::string client_ca;    // non-empty: client certificates required and verified against it
  // Set: asked of every client certificate gRPC has verified (the leaf and
  // the chain the client sent, PEM): the reason it is refused, or nothing.
  std::function<std::optional<std::string>(std::string_view cert, std::string_view chain)> check_client;
};

struct EtcdGrpcOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port, see port()
  // Every answer's header (client_url is not used: the member list names
  // this listener's address).
  server::EtcdOptions etcd;
  TlsPems tls;
};

class EtcdGrpcServer {
 public:
  // Binds host:port and serves on gRPC's threads; `store` and `gate` must
  // outlive this. Busy when the address cannot be bound; InvalidArgument
  // when gRPC takes no TLS from the PEM texts.
  static core::Result<std::unique_ptr<EtcdGrpcServer>> Start(core::KvStore& store, CallGate& gate,
                                                             EtcdGrpcOptions options);
  ~EtcdGrpcServer();
  EtcdGrpcServer(const EtcdGrpcServer&) = delete;
  EtcdGrpcServer& operator=(const EtcdGrpcServer&) = delete;

  int port() const { return port_; }
  // Stops taking calls; those in flight get until `grace` to finish, then
  // are cancelled; returns once none is left. Idempotent; any thread.
  void Shutdown(std::chrono::milliseconds grace);

  class Services;  // etcd_grpc_services.h

 private:
  EtcdGrpcServer() = default;

  int port_ = 0;
  std::mutex shutdown_mu_;  // Shutdown() may come from two threads at once
  bool shut_down_ = false;
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace kvctl::etcd_grpc
