#include "lib/grpc/etcd_grpc_server.h"

#include <fmt/format.h>

#include "lib/grpc/etcd_grpc_services.h"

namespace kvctl::etcd_grpc {

core::Result<std::unique_ptr<EtcdGrpcServer>> EtcdGrpcServer::Start(core::KvStore& store, EtcdGrpcOptions options) {
  std::unique_ptr<EtcdGrpcServer> server(new EtcdGrpcServer());
  server->services_ = std::make_unique<Services>(store, std::move(options.etcd), options.host);
  const std::string address = fmt::format("{}:{}", options.host, options.port);
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &bound_port);
  // etcd's own limit on a request (--max-request-bytes 1.5 MiB) plus room
  // for the message around a value of limits.max_value_bytes.
  builder.SetMaxReceiveMessageSize(static_cast<int>(server->services_->options.max_value_bytes +
                                                    server->services_->options.max_key_bytes + 64 * 1024));
  builder.RegisterService(&server->services_->kv);
  builder.RegisterService(&server->services_->lease);
  builder.RegisterService(&server->services_->watch);
  builder.RegisterService(&server->services_->maintenance);
  builder.RegisterService(&server->services_->cluster);
  server->server_ = builder.BuildAndStart();
  if (!server->server_ || bound_port == 0) {
    return core::Status::Busy(fmt::format("cannot listen for etcd's gRPC API on {}: the address is taken or "
                                          "not this machine's; choose another server.etcd_grpc_listen",
                                          address));
  }
  server->port_ = bound_port;
  server->services_->cluster.set_port(bound_port);
  return server;
}

EtcdGrpcServer::~EtcdGrpcServer() { Shutdown(std::chrono::milliseconds(0)); }

void EtcdGrpcServer::Shutdown(std::chrono::milliseconds grace) {
  std::lock_guard lock(shutdown_mu_);
  if (!server_ || shut_down_) return;
  shut_down_ = true;
  services_->streams.EndAll();
  server_->Shutdown(std::chrono::system_clock::now() + grace);
  server_->Wait();
}

}  // namespace kvctl::etcd_grpc
