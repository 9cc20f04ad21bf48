// What a live key carries beside its value and revision (SPEC §6, "Key
// metadata"), as etcd's mvccpb.KeyValue does: the change that created it,
// how many changes it has had since, and the lease it is attached to.
#pragma once

#include <cstdint>

namespace kvctl::core {

struct KeyMeta {
  // The revision of the change that created the key since it last did not
  // exist.
  uint64_t create_revision = 0;
  // Changes since creation: 1 after creating, +1 per change.
  uint64_t version = 0;
  // The lease the key is attached to; 0 for none.
  uint64_t lease = 0;

  bool operator==(const KeyMeta&) const = default;

  // The metadata of a key after a PUT at `revision`, given what it was
  // before (`before` null: the key did not exist).
  static KeyMeta AfterPut(const KeyMeta* before, uint64_t revision, uint64_t lease) {
    if (before == nullptr) return {revision, 1, lease};
    return {before->create_revision, before->version + 1, lease};
  }
};

}  // namespace kvctl::core
