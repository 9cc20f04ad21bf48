#include "lib/etcd/access.h"

#include <string>
#include <vector>

namespace kvctl::server::etcd {

bool RangePermitted(const access::Principal* caller, access::Op op, std::string_view key,
                    std::string_view range_end) {
  if (caller == nullptr) return true;
  if (range_end.empty()) return caller->Permits(op, key);
  for (const access::Grant& grant : caller->grants) {
    if (!grant.Allows(op) || !key.starts_with(grant.prefix)) continue;
    const std::string grant_end = PrefixEnd(grant.prefix);
    if (grant_end.empty()) return true;  // the grant reaches the last key
    if (!IsFromKeyOn(range_end) && range_end <= grant_end) return true;
  }
  return false;
}

bool TxnPermitted(const access::Principal* caller, const TxnAsk& ask) {
  if (caller == nullptr) return true;
  for (const KeyAccess& a : TxnAccess(ask)) {
    if (!RangePermitted(caller, a.write ? access::Op::kWrite : access::Op::kRead, a.key, a.range_end)) return false;
  }
  return true;
}

bool LeasesPermitted(const access::Principal* caller) { return caller == nullptr || caller->WritesAnything(); }

void KeepReadable(const access::Principal* caller, std::vector<std::string>* keys) {
  if (caller == nullptr) return;
  std::erase_if(*keys, [caller](const std::string& key) { return !caller->Permits(access::Op::kRead, key); });
}

bool CompactionPermitted(const access::Principal* caller) {
  return caller == nullptr || caller->Permits(access::Op::kAdmin, "");
}

WatchAccess WatchPermitted(const access::Principal* caller, std::string_view key, std::string_view range_end) {
  if (caller == nullptr) return {};
  const std::string start = key.empty() ? std::string(1, '\0') : std::string(key);
  if (auto prefix = AsPrefix(start, range_end)) {
    const std::vector<std::string> ranges = caller->ReadableWithin(*prefix);
    if (ranges.empty()) return {false, nullptr};
    if (ranges.size() == 1 && ranges.front() == *prefix) return {};
    return {true, [caller](std::string_view k) { return caller->Permits(access::Op::kRead, k); }};
  }
  return {RangePermitted(caller, access::Op::kRead, start, range_end), nullptr};
}

}  // namespace kvctl::server::etcd
