// A user's session with Debian's etcdctl 3.4 (etcd-client), run against one
// etcd gRPC endpoint and checked, with doctest, on what etcdctl prints: the
// proof of an etcd gRPC API by a client nobody here wrote. It passes
// against Debian's etcd 3.4, and against kvctl's gRPC face (kKvctl:
// kvctl's compaction).
#pragma once

#include "tests/e2e/etcdctl.h"

namespace kvctl::e2e {

// Runs the script against 127.0.0.1:`port`, whose store must hold no keys
// under the script's prefixes (a fresh server). What each server has of its
// own (cluster and member ids, raft term, lease ids, absolute revisions) is
// read from the server and compared relatively, never written in. It ends
// with a compaction, so the server's history is cut afterwards. Every
// etcdctl run is bounded in time; every one left running is stopped by its
// PID before this returns.
enum class EtcdctlSteps {
  kAll,
  // Compaction as kvctl compacts: it runs, and future revisions are
  // refused, but the history floor rises as far as kvctl's retention
  // allows rather than to the revision asked for (docs/etcd.md), so reads
  // just below it are not checked as refused.
  kKvctl,
};
// `access`: how etcdctl reaches it (TLS, --user), given before every
// command; the user needs every grant, admin included (the compaction).
void CheckEtcdctlScript(int port, EtcdctlSteps steps = EtcdctlSteps::kAll, const EtcdctlAccess& access = {});

}  // namespace kvctl::e2e
