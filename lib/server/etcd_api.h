// etcd 3.4's grpc-gateway JSON API (SPEC §7) over a KvStore: a second face
// beside kvctl's own (api.h), served on server.etcd_listen. It only
// translates: etcd's requests into etcd's operations (lib/etcd/kv_ops.h, what
// every etcd face shares) and KvStore calls, their outcomes into
// etcd's answers (field names, base64, int64 as strings, errors as
// {"error","message","code"} with gRPC codes). docs/etcd.md says what is
// served, what is refused as unimplemented, and every known difference.
//
// Admission is the one pipeline of the server (admission.h): request id,
// identity (kvctl's bearer tokens and client certificates), the rate
// limit, metrics and the request log; refusals are rewritten into etcd's
// error shape. Grants apply per key: a range needs a grant covering all of
// it.
//
// A plain kv/put (no prev_kv, ignore_value or ignore_lease) and kv/txn,
// the common writes, are answered without holding a thread (HandleAsync):
// the store calls back once they are durable, as for kvctl's own writes.
// A kv/range of the current data is answered on the loop (it reads memory
// only, as a GET of kvctl's own API does). Every other handler, and a range
// or a txn that reads a past revision, answers synchronously (the
// transport runs POSTs on its worker pool, which may wait for a commit or
// read the log); GET /version answers on the loop.
// Handle() and HandleAsync() never throw.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "lib/core/kv_store.h"
#include "lib/server/admission.h"
#include "lib/etcd/types.h"
#include "lib/server/http_types.h"

namespace kvctl::server {

namespace etcd {
struct PutAsk;  // lib/etcd/kv_ops.h
struct PutReply;
struct TxnAsk;  // lib/etcd/txn_ops.h
}  // namespace etcd

class EtcdApi {
 public:
  // `admission` is the server's pipeline; it must outlive this.
  EtcdApi(core::KvStore& store, AdmissionPipeline& admission, EtcdOptions options);

  // The transport's admitter: identity and rate limit from the head.
  std::optional<HttpResponse> Admit(HttpRequest& request);
  HttpResponse Handle(const HttpRequest& request);
  // The transport's async handler: takes a plain kv/put, a kv/txn or a
  // kv/range of the current data of an admitted request and calls `reply`
  // exactly once, on this thread or on the store's committer thread; false,
  // with `reply` not called, for every other request (Handle() answers
  // those).
  using Reply = std::function<void(HttpResponse)>;
  bool HandleAsync(HttpRequest& request, Reply reply);
  // The transport's own refusals (400, 413, ...) in etcd's error shape.
  HttpResponse Refused(int status, std::string_view problem, std::string_view remote_addr);

  // The face's internals, shared by its files (etcd_internal.h).
  struct Call;

 private:
  // The request's JSON body into `call`: the answer when it is not a JSON object.
  static std::optional<HttpResponse> ParseBody(const HttpRequest& request, Call& call);
  HttpResponse Dispatch(Call& call);
  // kv/put's fields, read and checked: the answer when refused.
  std::optional<HttpResponse> ReadPut(Call& call, etcd::PutAsk* ask);
  // A put's ask checked (sizes, flags, the caller's grants): the answer
  // when refused.
  std::optional<HttpResponse> CheckPutAsk(const Call& call, const etcd::PutAsk& ask);
  // A put's outcome as its answer.
  HttpResponse PutAnswer(const std::optional<etcd::Error>& error, const etcd::PutReply& reply) const;
  HttpResponse Put(Call& call);
  HttpResponse Range(Call& call);
  HttpResponse DeleteRange(Call& call);
  // kv/txn's request, read and checked against the caller's grants: the
  // answer when refused.
  std::optional<HttpResponse> ReadTxnAsk(const Call& call, etcd::TxnAsk* ask);
  // kv/txn: `done` gets the answer exactly once, at once when refused,
  // else from the store's committer thread once the txn is durable.
  void StartTxn(std::shared_ptr<const etcd::TxnAsk> ask, std::function<void(HttpResponse)> done);
  HttpResponse Txn(Call& call);
  HttpResponse Compaction(Call& call);
  HttpResponse LeaseGrant(Call& call);
  HttpResponse LeaseRevoke(Call& call);
  HttpResponse LeaseKeepAlive(Call& call);
  HttpResponse LeaseTimeToLive(Call& call);
  HttpResponse Leases(Call& call);
  HttpResponse Status(Call& call);
  HttpResponse MemberList(Call& call);
  // A stream of watch responses (etcd_watch.cpp).
  HttpResponse Watch(Call& call);
  HttpResponse Version();

  core::KvStore& store_;
  AdmissionPipeline& admission_;
  EtcdOptions options_;
};

}  // namespace kvctl::server
