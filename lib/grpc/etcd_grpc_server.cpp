#include "lib/grpc/etcd_grpc_server.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <fmt/format.h>

#include "lib/grpc/etcd_grpc_services.h"

namespace kvctl::etcd_grpc {
namespace {

namespace gx = grpc::experimental;

// After gRPC has verified a client's certificate against the client CA:
// the server's own check of it (its revocation list), synchronously.
class ClientCheck final : public gx::ExternalCertificateVerifier {
 public:
  explicit ClientCheck(std::function<std::optional<std::string>(std::string_view, std::string_view)> check)
      : check_(std::move(check)) {}

  bool Verify(gx::TlsCustomVerificationCheckRequest* request, std::function<void(grpc::Status)> /*callback*/,
              grpc::Status* sync_status) override {
    const grpc::string_ref cert = request->peer_cert();
    const grpc::string_ref chain = request->peer_cert_full_chain();
    std::optional<std::string> refused = check_({cert.data(), cert.size()}, {chain.data(), chain.size()});
    *sync_status = refused ? grpc::Status(grpc::StatusCode::UNAUTHENTICATED, *refused) : grpc::Status::OK;
    return true;  // answered here, not through the callback
  }
  void Cancel(gx::TlsCustomVerificationCheckRequest* /*request*/) override {}

 private:
  std::function<std::optional<std::string>(std::string_view, std::string_view)> check_;
};

std::shared_ptr<grpc::ServerCredentials> CredentialsOf(const TlsPems& tls) {
  if (tls.cert_chain.empty()) return grpc::InsecureServerCredentials();
  // Loaded once, as the JSON listener loads its files once.
  auto provider = std::make_shared<gx::StaticDataCertificateProvider>(
      tls.client_ca, std::vector<gx::IdentityKeyCertPair>{{tls.private_key, tls.cert_chain}});
  gx::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.client_ca.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    if (tls.check_client) options.set_certificate_verifier(gx::ExternalCertificateVerifier::Create<ClientCheck>(tls.check_client));
  }
  return gx::TlsServerCredentials(options);
}

}  // namespace

core::Result<std::unique_ptr<EtcdGrpcServer>> EtcdGrpcServer::Start(core::KvStore& store, CallGate& gate,
                                                                     EtcdGrpcOptions options) {
  std::unique_ptr<EtcdGrpcServer> server(new EtcdGrpcServer());
  const bool tls = !options.tls.cert_chain.empty();
  server->services_ = std::make_unique<Services>(
      store, std::move(options.etcd), Admitter{gate, !options.tls.client_ca.empty()}, options.host,
      tls ? "https" : "http");
  const std::string address = fmt::format("{}:{}", options.host, options.port);
  std::shared_ptr<grpc::ServerCredentials> credentials = CredentialsOf(options.tls);
  if (credentials == nullptr) {
    return core::Status::InvalidArgument(
        fmt::format("cannot serve etcd's gRPC API over TLS on {}: gRPC did not take the files of tls.cert, "
                    "tls.key or tls.client_ca",
                    address));
  }
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(address, credentials, &bound_port);
  // etcd's own limit on a request (--max-request-bytes 1.5 MiB) plus room
  // for the message around a value of limits.max_value_bytes.
  builder.SetMaxReceiveMessageSize(static_cast<int>(server->services_->options.max_value_bytes +
                                                    server->services_->options.max_key_bytes + 64 * 1024));
  builder.RegisterService(&server->services_->kv);
  builder.RegisterService(&server->services_->lease);
  builder.RegisterService(&server->services_->watch);
  builder.RegisterService(&server->services_->maintenance);
  builder.RegisterService(&server->services_->cluster);
  builder.RegisterService(&server->services_->auth);
  // Every method the services leave unserved, and every other service:
  // admitted, counted and answered UNIMPLEMENTED.
  builder.RegisterCallbackGenericService(&server->services_->unserved);
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
