// etcd's range, put, delete-range and compaction over a KvStore, with no
// wire format: what each does, reads and refuses, in etcd's words. A face
// reads a request into an ask, checks the caller's grants, runs it, and
// writes the reply its own way (the JSON gateway: etcd_kv.cpp).
//
// Thread safety: as the store's; every function may be called from any
// thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lib/core/key_range.h"
#include "lib/core/kv_store.h"
#include "lib/etcd/types.h"

namespace kvctl::server::etcd {

struct RangeAsk {
  std::string key, range_end;  // range_end "": the key alone; "\0": from key on
  int64_t revision = 0;        // 0 or negative: now
  RangeShape shape;
};
struct RangeReply {
  uint64_t revision = 0;  // the header's
  std::vector<core::ListItem> kvs;
  bool more = false;
  uint64_t count = 0;
};
std::optional<Error> Range(core::KvStore& store, const RangeAsk& ask, RangeReply* reply);

// A consistent read of every key in [key, range_end), in key order, at one
// store revision (core::ReadRange).
using RangeRead = core::RangeRead;
RangeRead ReadRange(const core::KvStore& store, const std::string& key, const std::string& range_end,
                    bool keys_only);
// `items` (a range, in key order) shaped as etcd answers: `count` is how
// many keys it holds; then the revision filters, the sort and the limit
// apply; `kvs` is left empty with count_only. `more`: the range had more
// keys than `items`. The header's revision is left to the caller.
void ShapeRange(const RangeShape& shape, std::vector<core::ListItem> items, bool more, RangeReply* reply);

struct PutAsk {
  std::string key, value;
  int64_t lease = 0;
  bool prev_kv = false, ignore_value = false, ignore_lease = false;
  // Reads the key before writing it (PutAsync cannot answer it).
  bool NeedsRead() const { return prev_kv || ignore_value || ignore_lease; }
};
struct PutReply {
  uint64_t revision = 0;
  std::optional<core::ListItem> prev_kv;
};
// What etcd refuses of a put before it runs (an empty or too large key or
// value, a value or lease given with ignore_value or ignore_lease). The
// caller's grants are the face's to check, after this.
std::optional<Error> CheckPut(const EtcdOptions& options, const PutAsk& ask);
// Runs a checked put: a plain one at once, one that reads first as a
// compare-and-set on what it read, tried again while others change the key.
std::optional<Error> Put(core::KvStore& store, const PutAsk& ask, PutReply* reply);
// Runs a checked put that reads nothing first (!NeedsRead()) without
// holding the thread: `done` gets the error or the reply exactly once, at
// once when refused, else on the store's committer thread once durable.
void PlainPutAsync(core::KvStore& store, const PutAsk& ask, Done<PutReply> done);

struct DeleteAsk {
  std::string key, range_end;
  bool prev_kv = false;
};
struct DeleteReply {
  uint64_t revision = 0;
  uint64_t deleted = 0;
  std::vector<core::ListItem> prev_kvs;  // with prev_kv only
};
std::optional<Error> DeleteRange(core::KvStore& store, const DeleteAsk& ask, DeleteReply* reply);

// etcd's compaction at `revision`, as kvctl can (kv_ops.cpp); on
// success `*header_revision` is the store's revision after it.
std::optional<Error> Compaction(core::KvStore& store, int64_t revision, uint64_t* header_revision);

}  // namespace kvctl::server::etcd
