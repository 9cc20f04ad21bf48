#include "cmd/kvctl/replay_output.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cmd/kvctl/output.h"
#include "cmd/kvctl/text.h"
#include "lib/core/base64.h"

namespace kvctl::cmd {
namespace {

using nlohmann::json;

}  // namespace

// A write of a transaction says so, with how many writes share its
// revision: `12 PUT "a" "1" txn=3`.
std::string EventText(const core::LogRecord& r) {
  const std::string txn = r.txn_writes > 0 ? fmt::format(" txn={}", r.txn_writes) : "";
  if (r.type == core::RecordType::kDelete) return fmt::format("{} DELETE {}{}\n", r.revision, QuoteBytes(r.key), txn);
  return fmt::format("{} PUT {} {}{}\n", r.revision, QuoteBytes(r.key), QuoteBytes(r.value), txn);
}

std::string EventJson(const core::LogRecord& r, bool from_snapshot) {
  json j{{"revision", r.revision}, {"op", r.type == core::RecordType::kPut ? "put" : "delete"}};
  SetJsonKey(j, r.key);
  if (r.type == core::RecordType::kPut) j["value"] = core::Base64Encode(r.value);
  if (r.txn_writes > 0) j["txn_writes"] = r.txn_writes;
  j["snapshot"] = from_snapshot;
  return JsonLine(j);
}

std::string StateText(std::string_view key, std::string_view value, uint64_t revision, const core::KeyMeta& meta) {
  return fmt::format("{} {} {} create_revision={} version={} lease={}\n", revision, QuoteBytes(key),
                     QuoteBytes(value), meta.create_revision, meta.version, meta.lease);
}

std::string StateJson(std::string_view key, std::string_view value, uint64_t revision, const core::KeyMeta& meta) {
  json j{{"revision", revision},
         {"create_revision", meta.create_revision},
         {"version", meta.version},
         {"lease", meta.lease}};
  SetJsonKey(j, key);
  j["value"] = core::Base64Encode(value);
  return JsonLine(j);
}

}  // namespace kvctl::cmd
