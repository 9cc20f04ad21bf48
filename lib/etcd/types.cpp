#include "lib/etcd/types.h"

#include "lib/core/txn.h"

namespace kvctl::server::etcd {

int HttpStatusOf(int code) {
  switch (code) {
    case 0: return 200;
    case 1: return 408;   // Canceled
    case 3: return 400;   // InvalidArgument
    case 4: return 504;   // DeadlineExceeded
    case 5: return 404;   // NotFound
    case 6: return 409;   // AlreadyExists
    case 7: return 403;   // PermissionDenied
    case 8: return 429;   // ResourceExhausted
    case 9: return 412;   // FailedPrecondition
    case 10: return 409;  // Aborted
    case 11: return 400;  // OutOfRange
    case 12: return 501;  // Unimplemented
    case 14: return 503;  // Unavailable
    case 16: return 401;  // Unauthenticated
    default: return 500;
  }
}

const char* GrpcCodeName(int code) {
  static constexpr const char* kNames[kGrpcCodes] = {
      "OK",           "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",  "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
      "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"};
  return code >= 0 && code < kGrpcCodes ? kNames[code] : "UNKNOWN";
}

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
