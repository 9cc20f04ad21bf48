// Tests for lib/server/etcd_grpc_gate.h: a gRPC call's credentials judged
// by the admission pipeline, refused in etcd 3.4's words, and counted.
#include "lib/server/etcd_grpc_gate.h"

#include <doctest/doctest.h>

#include <string>

#include "lib/core/store.h"

namespace kvctl::server {
namespace {

using etcd_grpc::CallStart;
using etcd_grpc::Method;

TEST_SUITE_BEGIN("etcd grpc gate");

const std::string kToken = "gate-test-token";

AdmissionOptions WithToken(double rate_limit = 0) {
  AdmissionOptions o;
  o.auth.tokens.push_back({"app", *ParseSha256Hex(Sha256Hex(kToken)), {Grant{"app/", true, true, false}}});
  o.rate_limit = rate_limit;
  o.rate_burst = rate_limit;
  return o;
}

CallStart Call(Method method, access::Credentials credentials = {}) {
  CallStart call;
  call.method = method;
  call.credentials = credentials;
  call.remote = "127.0.0.1";
  return call;
}

access::Credentials Token(std::string_view token) {
  access::Credentials c;
  c.fields = 1;
  c.token = token;
  return c;
}

TEST_CASE("a call is admitted with etcd's token or kvctl's bearer form, and refused in etcd's words without") {
  core::Store store;  // never started: the gate only judges
  AdmissionPipeline admission(store, WithToken());
  EtcdGrpcGate gate(admission, nullptr);

  const auto by_token = gate.Admit(Call(Method::kRange, Token(kToken)));
  CHECK_FALSE(by_token.refusal);
  REQUIRE(by_token.caller != nullptr);
  CHECK(by_token.caller->name == "app");
  CHECK(by_token.request_id.size() == 16);
  const std::string header = "Bearer " + kToken;  // credentials are views
  access::Credentials bearer;
  bearer.fields = 1;
  bearer.authorization = header;
  CHECK(gate.Admit(Call(Method::kPut, bearer)).caller == by_token.caller);

  const auto none = gate.Admit(Call(Method::kRange));
  REQUIRE(none.refusal);
  CHECK(none.refusal->code == etcd::kInvalidArgument);
  CHECK(none.refusal->message == "etcdserver: user name is empty");
  const auto wrong = gate.Admit(Call(Method::kRange, Token("not-it")));
  REQUIRE(wrong.refusal);
  CHECK(wrong.refusal->code == etcd::kUnauthenticated);
  CHECK(wrong.refusal->message == "etcdserver: invalid auth token");
  access::Credentials stranger;
  stranger.peer_common_name = "stranger";
  const auto cn = gate.Admit(Call(Method::kStatus, stranger));
  REQUIRE(cn.refusal);
  CHECK(cn.refusal->code == etcd::kPermissionDenied);
  // Authenticate is how a client gets its token: it needs none.
  CHECK_FALSE(gate.Admit(Call(Method::kAuthenticate)).refusal);
}

TEST_CASE("Authenticate answers a token entry's token for its name, etcd's refusal otherwise") {
  core::Store store;
  AdmissionPipeline admission(store, WithToken());
  EtcdGrpcGate gate(admission, nullptr);
  std::string token;
  CHECK_FALSE(gate.Authenticate("app", kToken, &token));
  CHECK(token == kToken);
  for (auto [name, password] : {std::pair{"app", "not-it"}, std::pair{"other", kToken.c_str()}}) {
    auto refused = gate.Authenticate(name, password, &token);
    REQUIRE(refused);
    CHECK(refused->code == etcd::kInvalidArgument);
    CHECK(refused->message == "etcdserver: authentication failed, invalid user ID or password");
  }
  std::string metrics;
  admission.metrics().Render(&metrics);
  CHECK(metrics.find("kvctl_auth_failures_total{reason=\"invalid_token\"} 2") != std::string::npos);

  AdmissionPipeline off(store, {});
  EtcdGrpcGate no_auth(off, nullptr);
  auto refused = no_auth.Authenticate("app", kToken, &token);
  REQUIRE(refused);
  CHECK(refused->code == etcd::kFailedPrecondition);
  CHECK(refused->message == "etcdserver: authentication is not enabled");
}

TEST_CASE("over the rate limit a call is etcd's too many requests, and every call is counted by method and code") {
  core::Store store;
  AdmissionPipeline admission(store, WithToken(1));
  EtcdGrpcGate gate(admission, nullptr);
  CHECK_FALSE(gate.Admit(Call(Method::kRange, Token(kToken))).refusal);
  const auto limited = gate.Admit(Call(Method::kRange, Token(kToken)));
  REQUIRE(limited.refusal);
  CHECK(limited.refusal->code == etcd::kResourceExhausted);
  CHECK(limited.refusal->message == "etcdserver: too many requests");

  gate.Finished({.method = Method::kRange, .name = "/etcdserverpb.KV/Range", .code = 8});
  gate.Finished({.method = Method::kOther, .name = "/etcdserverpb.Maintenance/Defragment", .code = 12});
  gate.Finished({.method = Method::kPut, .name = "/etcdserverpb.KV/Put", .code = 99});  // no such code
  std::string metrics;
  gate.RenderMetrics(&metrics);
  CHECK(metrics.find(R"(kvctl_grpc_requests_total{route="etcd_grpc",method="/etcdserverpb.KV/Range",code="RESOURCE_EXHAUSTED"} 1)") !=
        std::string::npos);
  CHECK(metrics.find(R"(kvctl_grpc_requests_total{route="etcd_grpc",method="other",code="UNIMPLEMENTED"} 1)") !=
        std::string::npos);
  CHECK(metrics.find(R"(kvctl_grpc_requests_total{route="etcd_grpc",method="/etcdserverpb.KV/Put",code="UNKNOWN"} 1)") !=
        std::string::npos);
  CHECK(metrics.find(R"(kvctl_grpc_request_duration_seconds_count{route="etcd_grpc",method="other"} 1)") !=
        std::string::npos);
}

TEST_SUITE_END();

}  // namespace
}  // namespace kvctl::server
