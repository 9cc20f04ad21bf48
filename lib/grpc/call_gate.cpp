#include "lib/grpc/call_gate.h"

#include <array>

namespace kvctl::etcd_grpc {
namespace {

constexpr std::array<const char*, kMethods> kNames = {
    "/etcdserverpb.KV/Range",
    "/etcdserverpb.KV/Put",
    "/etcdserverpb.KV/DeleteRange",
    "/etcdserverpb.KV/Txn",
    "/etcdserverpb.KV/Compact",
    "/etcdserverpb.Watch/Watch",
    "/etcdserverpb.Lease/LeaseGrant",
    "/etcdserverpb.Lease/LeaseRevoke",
    "/etcdserverpb.Lease/LeaseKeepAlive",
    "/etcdserverpb.Lease/LeaseTimeToLive",
    "/etcdserverpb.Lease/LeaseLeases",
    "/etcdserverpb.Maintenance/Status",
    "/etcdserverpb.Cluster/MemberList",
    "/etcdserverpb.Auth/Authenticate",
    "other",
};

}  // namespace

const char* MethodName(Method method) {
  const auto i = static_cast<size_t>(method);
  return i < kNames.size() ? kNames[i] : "other";
}

Method MethodNamed(std::string_view name) {
  for (size_t i = 0; i + 1 < kNames.size(); ++i) {
    if (name == kNames[i]) return static_cast<Method>(i);
  }
  return Method::kOther;
}

}  // namespace kvctl::etcd_grpc
