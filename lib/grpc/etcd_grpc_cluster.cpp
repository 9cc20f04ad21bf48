// Maintenance's Status and Cluster's MemberList: a single-member cluster
// that never elects (raft term 1), whose index is the store revision, as
// the JSON face answers (lib/server/etcd_maintenance.cpp). Any admitted
// caller may ask, as on the JSON face: they tell nothing of any key.
#include <fmt/format.h>

#include "lib/grpc/etcd_grpc_services.h"

namespace kvctl::etcd_grpc {

namespace {
// The etcd API version kvctl answers as: 3.4's.
constexpr const char* kEtcdServerVersion = "3.4.0";
}  // namespace

grpc::ServerUnaryReactor* MaintenanceService::Status(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::StatusRequest* request,
                                                     etcdserverpb::StatusResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kStatus, context, *request, *response);
  if (call->refused()) return call;
  const core::StoreStats stats = store_.stats();
  FillHeader(options_, stats.revision, response->mutable_header());
  response->set_version(kEtcdServerVersion);
  response->set_dbsize(static_cast<int64_t>(stats.live_bytes));
  response->set_leader(options_.member_id);
  response->set_raftindex(stats.revision);
  response->set_raftterm(1);
  response->set_raftappliedindex(stats.revision);
  response->set_dbsizeinuse(static_cast<int64_t>(stats.live_bytes));
  return call->Reply(grpc::Status::OK);
}

grpc::ServerUnaryReactor* ClusterService::MemberList(grpc::CallbackServerContext* context,
                                                     const etcdserverpb::MemberListRequest* request,
                                                     etcdserverpb::MemberListResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kMemberList, context, *request, *response);
  if (call->refused()) return call;
  FillHeader(options_, 0, response->mutable_header());
  etcdserverpb::Member* member = response->add_members();
  member->set_id(options_.member_id);
  member->set_name(options_.name);
  // kvctl has no peers; its client URL stands in, as clients expect the field.
  const std::string url = fmt::format("{}://{}:{}", scheme_, host_, port_.load());
  member->add_peerurls(url);
  member->add_clienturls(url);
  return call->Reply(grpc::Status::OK);
}

}  // namespace kvctl::etcd_grpc
