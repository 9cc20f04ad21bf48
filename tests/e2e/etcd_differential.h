// The differential tests of the etcd face (SPEC §7): the same requests sent
// to Debian's etcd 3.4, started here on loopback, and to kvctl, the answers
// compared field by field, with what is each server's own set aside
// (cluster and member ids, raft term, lease ids, TTLs left, status figures)
// and revisions counted from each server's start (docs/etcd.md).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {

// Debian's etcd 3.4 on loopback, in a temp dir; killed by PID and reaped
// on scope exit.
class EtcdProcess {
 public:
  EtcdProcess();
  ~EtcdProcess();
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;
  int port() const { return client_port_; }

 private:
  TempDir dir_;
  int client_port_, peer_port_;
  pid_t pid_ = -1;
};

// One request over its own connection, read to the close. etcd answers
// errors chunked with HTTP trailers (grpc-gateway's), which the harness's
// client does not read; this reads both servers the same way.
struct RawAnswer {
  int status = 0;
  std::string body;
};
RawAnswer RawRequest(int port, const std::string& method, const std::string& path, const std::string& body);

std::string B64(std::string_view bytes);

// POST `body` to `path`: the status and the body as JSON (a test failure
// when it is not JSON).
std::pair<int, nlohmann::json> PostJson(int port, const std::string& path, const std::string& body);

// One server's side of the comparison: its revisions are counted from its
// own start (etcd's empty store is at revision 1, kvctl's at 0), and its
// lease ids are named L1, L2, ... in the order they were granted.
struct Side {
  int port = 0;
  int64_t revision_offset = 0;
  // Revisions this side took where the other did not (kvctl's lease grants
  // and key-less revokes): left out of the count.
  std::vector<int64_t> own_revisions;
  std::vector<std::string> lease_ids;

  int64_t Normalized(int64_t raw) const;
  int64_t Raw(int64_t normalized) const;
};

// Sets aside, in an answer, what is each server's own (above).
void Normalize(nlohmann::json& j, Side& side, bool in_status);
// What is compared of an error: its status, its gRPC code, and its message
// when etcd's is one of etcd's own ("etcdserver: ...": kvctl says the same);
// Go's JSON and base64 messages are not matched (docs/etcd.md).
void NormalizeError(nlohmann::json& j);

struct Step {
  std::string path;
  // "$L1" is replaced by the side's first lease id, and so on; "@N" by
  // revision N as counted from the side's start.
  std::string body;
  int64_t kvctl_extra_revisions = 0;  // 1: kvctl takes a revision here and etcd does not (docs/etcd.md)
  bool status = false;                 // a status answer: values are the server's own
  std::string method = "POST";
};

// Sends `step` to one side: its answer, normalized, and its HTTP status.
nlohmann::json Send(Side& side, const Step& step, int* http_status);

// Sends every step to etcd (reference) and then kvctl, checking that each
// answer's status and normalized body are the same.
void CheckSameAnswers(Side& reference, Side& kvctl, const std::vector<Step>& steps);

// The first `count` messages of a watch stream (one JSON object per
// chunk) opened with `body`; `after_created` runs once the first `ready`
// have come (a body of several requests answers each first).
std::vector<nlohmann::json> WatchMessages(int port, const std::string& body, size_t count,
                                          const std::function<void()>& after_created, size_t ready = 1);
// The messages of a watch stream opened with `body` until `done` holds of
// them (or 10 s pass); `after_ready` runs once, when `ready` first holds.
using WatchMessagesCheck = std::function<bool(const std::vector<nlohmann::json>&)>;
std::vector<nlohmann::json> WatchMessagesUntil(int port, const std::string& body, const WatchMessagesCheck& ready,
                                               const std::function<void()>& after_ready,
                                               const WatchMessagesCheck& done);

}  // namespace kvctl::e2e
