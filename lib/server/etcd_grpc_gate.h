// etcd's gRPC face (lib/grpc) through the server's one admission pipeline
// (admission.h): the server's side of etcd_grpc::CallGate. A call is
// judged by the pipeline's identity and rate-limit verdict, as an HTTP
// request is (AdmissionPipeline::Judge), and refused in etcd 3.4's words,
// which etcd's clients match by message:
//
// | verdict | gRPC code | message |
// |---|---|---|
// | over the rate limit | RESOURCE_EXHAUSTED | etcdserver: too many requests |
// | no credentials | INVALID_ARGUMENT | etcdserver: user name is empty |
// | a token of no entry; two different credentials | UNAUTHENTICATED | etcdserver: invalid auth token |
// | a client certificate whose CN has no entry | PERMISSION_DENIED | etcdserver: permission denied |
//
// Auth.Authenticate takes a token entry's name and its token and answers
// the token itself: the client sends it back as "token" metadata, where
// it is judged as a bearer token (docs/etcd.md says why that is safe).
// Every call is counted in /metrics (kvctl_grpc_requests_total, route
// "etcd_grpc", by method and code) and logged as the request log's policy
// says, with the HTTP status grpc-gateway maps its code to.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lib/grpc/call_gate.h"
#include "lib/server/admission.h"
#include "lib/server/metrics.h"
#include "lib/server/request_log.h"

namespace kvctl::server {

class EtcdGrpcGate final : public etcd_grpc::CallGate {
 public:
  // `admission` and `request_log` (null: no request log) must outlive this.
  EtcdGrpcGate(AdmissionPipeline& admission, const RequestLog* request_log);

  etcd_grpc::Admitted Admit(const etcd_grpc::CallStart& call) override;
  void CountForbidden() override { admission_.CountForbidden(); }
  std::optional<etcd::Error> Authenticate(std::string_view name, std::string_view password,
                                          std::string* token) override;
  void Finished(const etcd_grpc::CallEnd& call) override;

  // The face's metric families, for /metrics.
  void RenderMetrics(std::string* out) const { metrics_.Render(out); }

 private:
  AdmissionPipeline& admission_;
  const RequestLog* request_log_;
  GrpcMetrics metrics_;
};

}  // namespace kvctl::server
