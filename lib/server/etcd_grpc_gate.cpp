#include "lib/server/etcd_grpc_gate.h"

#include <vector>

namespace kvctl::server {
namespace {

std::vector<std::string> MethodNames() {
  std::vector<std::string> names;
  for (size_t m = 0; m < etcd_grpc::kMethods; ++m) names.emplace_back(etcd_grpc::MethodName(static_cast<etcd_grpc::Method>(m)));
  return names;
}

// The pipeline's refusal in etcd's words (the table in the header).
etcd::Error EtcdRefusal(const AdmissionPipeline::Verdict& verdict, const access::Credentials& credentials) {
  if (verdict.refusal == AdmissionPipeline::Verdict::Refusal::kRateLimited) return etcd::TooManyRequests();
  if (verdict.failure == AuthFailure::kMissing) {
    // etcd takes a certificate's CN as a user name, and one it does not
    // know is denied each operation.
    return credentials.peer_common_name.empty() ? etcd::UserEmpty() : etcd::PermissionDenied();
  }
  return etcd::InvalidAuthToken();  // a token of no entry, or two different credentials
}

}  // namespace

EtcdGrpcGate::EtcdGrpcGate(AdmissionPipeline& admission, const RequestLog* request_log)
    : admission_(admission), request_log_(request_log), metrics_("etcd_grpc", MethodNames()) {}

etcd_grpc::Admitted EtcdGrpcGate::Admit(const etcd_grpc::CallStart& call) {
  etcd_grpc::Admitted admitted;
  admitted.request_id = RequestIdFor(call.request_id);
  // Authenticate is how a client gets its token: it needs none.
  const bool needs_identity = call.method != etcd_grpc::Method::kAuthenticate;
  const AdmissionPipeline::Verdict verdict =
      admission_.Judge([&call] { return call.credentials; }, call.remote, needs_identity);
  admitted.caller = verdict.caller;
  if (verdict.refusal != AdmissionPipeline::Verdict::Refusal::kNone) {
    admitted.refusal = EtcdRefusal(verdict, call.credentials);
  }
  return admitted;
}

std::optional<etcd::Error> EtcdGrpcGate::Authenticate(std::string_view name, std::string_view password,
                                                      std::string* token) {
  // etcd answers so with auth off, and its clients then go on without a token.
  if (!admission_.auth().enabled()) return etcd::AuthNotEnabled();
  if (admission_.auth().AuthenticateToken(name, password) == nullptr) {
    admission_.CountAuthFailure(AuthFailure::kInvalid);
    return etcd::AuthFailed();
  }
  // The token itself: what the client proved it holds, judged again (by
  // its hash) on every call; the server keeps no session.
  *token = std::string(password);
  return std::nullopt;
}

void EtcdGrpcGate::Finished(const etcd_grpc::CallEnd& call) {
  metrics_.CountCall(static_cast<size_t>(call.method), call.code, call.took);
  if (request_log_ == nullptr) return;
  const int status = etcd::HttpStatusOf(call.code);
  LogRequest(*request_log_,
             {.method = call.name,
              .route = "etcd_grpc",
              .status = status,
              .bytes_in = call.bytes_in,
              .bytes_out = call.bytes_out,
              .duration = call.took,
              .request_id = call.request_id,
              .remote = call.remote,
              .identity = call.caller != nullptr ? std::string_view(call.caller->name) : std::string_view(),
              .error_code = call.code != 0 ? std::string_view(etcd::GrpcCodeName(call.code)) : std::string_view(),
              .cause = status >= 500 ? call.message : std::string_view()});
}

}  // namespace kvctl::server
