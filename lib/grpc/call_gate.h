// The gRPC face's door into the server's one admission pipeline
// (lib/server/admission.h), with no gRPC types in it. lib/grpc may not
// include lib/server (tests/check_layering.sh), so the server implements
// this over its pipeline (lib/server/etcd_grpc_gate.h) and hands it to the
// face; every call of the face goes through it (gated_call.h):
//
// - admitted once when it starts (a stream when it opens): identity from
//   the call's credentials, then the rate limit, as for an HTTP request;
//   a refusal is etcd's own answer (code and message);
// - judged by the face against the caller's grants (lib/etcd/access.h),
//   a refusal counted through CountForbidden();
// - counted in /metrics and written to the request log when it ends.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lib/access/credentials.h"
#include "lib/access/grants.h"
#include "lib/etcd/types.h"

namespace kvctl::etcd_grpc {

// The methods the face serves, by which its calls are counted. kOther is
// every other one (answered UNIMPLEMENTED, after admission like any call).
enum class Method : uint8_t {
  kRange, kPut, kDeleteRange, kTxn, kCompact,
  kWatch,
  kLeaseGrant, kLeaseRevoke, kLeaseKeepAlive, kLeaseTimeToLive, kLeaseLeases,
  kStatus, kMemberList, kAuthenticate,
  kOther, kCount
};
inline constexpr size_t kMethods = static_cast<size_t>(Method::kCount);
// gRPC's full name, e.g. "/etcdserverpb.KV/Range"; "other" for kOther.
const char* MethodName(Method method);
// The served method of that full name; kOther for any other name.
Method MethodNamed(std::string_view name);

// A call as it starts.
struct CallStart {
  Method method = Method::kOther;
  access::Credentials credentials;  // views into the call's metadata
  std::string_view remote;           // the peer's address, without its port
  std::optional<std::string_view> request_id;  // the client's x-request-id, if it sent one
};

// What admission made of it.
struct Admitted {
  const access::Principal* caller = nullptr;  // null without auth; lives as long as the gate
  std::optional<server::etcd::Error> refusal;  // set: the call's answer, nothing else runs
  std::string request_id;  // the client's when usable, else a new one
};

// A call as it ends.
struct CallEnd {
  Method method = Method::kOther;
  std::string_view name;  // the method as called (what kOther asked for)
  int code = 0;           // the gRPC status code answered
  std::string_view message;
  std::chrono::nanoseconds took{0};
  const access::Principal* caller = nullptr;
  std::string_view remote, request_id;
  size_t bytes_in = 0, bytes_out = 0;  // the messages' sizes, both ways
};

class CallGate {
 public:
  virtual ~CallGate() = default;

  // Identity (every method but Auth.Authenticate needs one when auth is
  // on) and the rate limit.
  virtual Admitted Admit(const CallStart& call) = 0;
  // A call refused for the caller's grants, for /metrics.
  virtual void CountForbidden() = 0;
  // etcd's Auth.Authenticate: the token the client is then to send as
  // "token" metadata, or etcd's refusal.
  virtual std::optional<server::etcd::Error> Authenticate(std::string_view name, std::string_view password,
                                                          std::string* token) = 0;
  virtual void Finished(const CallEnd& call) = 0;
};

}  // namespace kvctl::etcd_grpc
