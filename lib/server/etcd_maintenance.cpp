// etcd's maintenance/status, cluster/member/list and GET /version: a
// single-member cluster that never elects (raft term 1), whose index is
// the store revision.
#include "lib/server/etcd_internal.h"

namespace kvctl::server {

using etcd::Json;

namespace {

// The etcd API version kvctl answers as: 3.4's (what /version and status
// say, and what clients pick their API paths by).
constexpr const char* kEtcdServerVersion = "3.4.0";
constexpr const char* kEtcdClusterVersion = "3.4.0";

}  // namespace

HttpResponse EtcdApi::Status(Call&) {
  const core::StoreStats stats = store_.stats();
  Json body;
  body["header"] = etcd::Header(options_, stats.revision);
  body["version"] = kEtcdServerVersion;
  body["dbSize"] = std::to_string(stats.live_bytes);
  body["leader"] = std::to_string(options_.member_id);
  body["raftIndex"] = std::to_string(stats.revision);
  body["raftTerm"] = "1";
  body["raftAppliedIndex"] = std::to_string(stats.revision);
  body["dbSizeInUse"] = std::to_string(stats.live_bytes);
  return etcd::Answer(body);
}

HttpResponse EtcdApi::MemberList(Call&) {
  Json header = etcd::Header(options_, 0);
  Json member;
  member["ID"] = std::to_string(options_.member_id);
  member["name"] = options_.name;
  // kvctl has no peers; its client URL stands in, as clients expect the field.
  member["peerURLs"] = Json::array({options_.client_url});
  member["clientURLs"] = Json::array({options_.client_url});
  Json body;
  body["header"] = std::move(header);
  body["members"] = Json::array({std::move(member)});
  return etcd::Answer(body);
}

HttpResponse EtcdApi::Version() {
  return etcd::Answer(Json{{"etcdserver", kEtcdServerVersion}, {"etcdcluster", kEtcdClusterVersion}});
}

}  // namespace kvctl::server
