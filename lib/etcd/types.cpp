#include "lib/etcd/types.h"

#include "lib/core/txn.h"

namespace kvctl::server::etcd {

Error FromStatus(const core::Status& status) {
  switch (status.code()) {
    case core::Code::kInvalidArgument: return {kInvalidArgument, status.message()};
    case core::Code::kNotFound: return {kNotFound, status.message()};
    case core::Code::kFailedPrecondition: return {kFailedPrecondition, status.message()};
    case core::Code::kUnavailable:
    case core::Code::kBusy: return {kUnavailable, status.message()};
    case core::Code::kCompacted: return CompactedRevision();
    default: return {kInternal, status.message()};
  }
}

std::string PrefixEnd(std::string_view prefix) { return core::PrefixEnd(prefix); }

std::optional<std::string> AsPrefix(std::string_view key, std::string_view range_end) {
  if (IsFromKeyOn(range_end) && IsFromKeyOn(key)) return std::string();  // every key
  if (range_end.empty() || IsFromKeyOn(range_end)) return std::nullopt;
  if (PrefixEnd(key) == range_end) return std::string(key);
  return std::nullopt;
}

}  // namespace kvctl::server::etcd
