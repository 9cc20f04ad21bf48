#include "cmd/kvctl/lease_args.h"

#include <charconv>

#include <fmt/format.h>

#include "lib/config/parse.h"
#include "lib/core/lease.h"

namespace kvctl::cmd {

core::Result<int64_t> ParseLeaseTtl(std::string_view text, std::string_view what) {
  int64_t seconds = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    auto d = config::ParseDuration(text);
    if (!d) {
      return core::Status::InvalidArgument(
          fmt::format("{} {}: {} (give seconds, or a duration such as 30s or 5m)", what, text, d.error().message()));
    }
    if (d->count() % 1000 != 0) {
      return core::Status::InvalidArgument(
          fmt::format("{} {} is not a whole number of seconds (leases count whole seconds)", what, text));
    }
    seconds = d->count() / 1000;
  }
  if (seconds < core::kMinLeaseTtl || seconds > core::kMaxLeaseTtl) {
    return core::Status::InvalidArgument(
        fmt::format("{} {} is out of range (a lease lives 1s to 1 year: 1 to {} seconds)", what, text,
                    core::kMaxLeaseTtl));
  }
  return seconds;
}

core::Result<uint64_t> ParseLeaseId(std::string_view text) {
  uint64_t id = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return core::Status::InvalidArgument(
        fmt::format("the lease id {} is not a whole number (kvctl lease list shows the ids)", text));
  }
  return id;
}

}  // namespace kvctl::cmd
