#include "lib/grpc/gated_call.h"

namespace kvctl::etcd_grpc {
namespace {

std::string_view View(const grpc::string_ref& ref) { return {ref.data(), ref.size()}; }

// The address of gRPC's peer string ("ipv4:127.0.0.1:5000",
// "ipv6:[::1]:5000"), without scheme and port: what the rate limit and the
// request log know an HTTP client by.
std::string RemoteAddress(const std::string& peer) {
  std::string_view p = peer;
  for (std::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (p.starts_with(scheme)) p.remove_prefix(scheme.size());
  }
  if (p.starts_with('[')) {
    const size_t close = p.find(']');
    if (close != std::string_view::npos) return std::string(p.substr(1, close - 1));
  }
  const size_t colon = p.rfind(':');
  return std::string(colon == std::string_view::npos ? p : p.substr(0, colon));
}

}  // namespace

grpc::Status StatusOf(const server::etcd::Error& error) {
  return grpc::Status(static_cast<grpc::StatusCode>(error.code), error.message);
}

GatedCall::GatedCall(const Admitter& admitter, Method method, grpc::ServerContextBase* context, std::string_view name)
    : gate_(admitter.gate),
      method_(method),
      name_(name.empty() ? MethodName(method) : name),
      started_(std::chrono::steady_clock::now()),
      remote_(RemoteAddress(context->peer())) {
  CallStart start;
  start.method = method;
  start.remote = remote_;
  const auto& metadata = context->client_metadata();
  access::Credentials& credentials = start.credentials;
  credentials.fields_name = "credentials (authorization and token metadata)";
  // gRPC gives metadata keys in lower case. A value repeated counts once:
  // python3-etcd3 sends its token both as metadata and as call credentials.
  auto read = [&metadata, &credentials](const char* key, std::optional<std::string_view>* field) {
    for (auto [it, end] = metadata.equal_range(key); it != end; ++it) {
      if (*field == View(it->second)) continue;
      if (!*field) *field = View(it->second);
      ++credentials.fields;
    }
  };
  read("authorization", &credentials.authorization);
  read("token", &credentials.token);
  if (auto it = metadata.find("x-request-id"); it != metadata.end()) start.request_id = View(it->second);
  // The CN is there only when gRPC verified the certificate against
  // tls.client_ca (the listener requires and verifies one under mutual TLS).
  std::shared_ptr<const grpc::AuthContext> tls;
  if (admitter.client_certificates) {
    tls = context->auth_context();
    const std::vector<grpc::string_ref> names = tls->FindPropertyValues("x509_common_name");
    if (!names.empty()) credentials.peer_common_name = View(names.front());
  }
  admitted_ = gate_.Admit(start);
  context->AddInitialMetadata("x-request-id", admitted_.request_id);
}

grpc::Status GatedCall::Forbidden() const {
  gate_.CountForbidden();
  return StatusOf(server::etcd::PermissionDenied());
}

void GatedCall::Finished(const grpc::Status& status, size_t bytes_in, size_t bytes_out) const {
  gate_.Finished({.method = method_,
                  .name = name_,
                  .code = static_cast<int>(status.error_code()),
                  .message = status.error_message(),
                  .took = std::chrono::steady_clock::now() - started_,
                  .caller = admitted_.caller,
                  .remote = remote_,
                  .request_id = admitted_.request_id,
                  .bytes_in = bytes_in,
                  .bytes_out = bytes_out});
}

UnaryCall* UnaryCall::Start(const Admitter& admitter, Method method, grpc::CallbackServerContext* context,
                            const google::protobuf::MessageLite& request,
                            const google::protobuf::MessageLite& response) {
  auto* call = new UnaryCall(admitter, method, context, request, response);
  if (call->call_.refused()) call->Reply(call->call_.Refusal());
  return call;
}

grpc::ServerUnaryReactor* UnaryCall::Reply(const grpc::Status& status) {
  status_ = status;
  Finish(status);
  return this;
}

void UnaryCall::OnDone() {
  // gRPC cached the response's size when it serialized it.
  call_.Finished(status_, request_.ByteSizeLong(),
                 status_.ok() ? static_cast<size_t>(response_.GetCachedSize()) : 0);
  delete this;
}

namespace {

// An unserved method's call: answered at once, its request left unread.
class UnservedCall final : public grpc::ServerGenericBidiReactor {
 public:
  UnservedCall(const Admitter& admitter, grpc::GenericCallbackServerContext* context)
      : call_(admitter, Method::kOther, context, context->method()),
        status_(call_.refused() ? call_.Refusal() : StatusOf(server::etcd::Unimplemented(context->method()))) {
    Finish(status_);
  }
  void OnDone() override {
    call_.Finished(status_, 0, 0);
    delete this;
  }

 private:
  GatedCall call_;
  const grpc::Status status_;
};

}  // namespace

grpc::ServerGenericBidiReactor* UnservedCalls::CreateReactor(grpc::GenericCallbackServerContext* context) {
  return new UnservedCall(admitter_, context);
}

}  // namespace kvctl::etcd_grpc
