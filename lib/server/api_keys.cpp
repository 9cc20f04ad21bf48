// The key routes: PUT, GET, HEAD and DELETE of one key, and listing.
#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "lib/core/base64.h"
#include "lib/core/json_string.h"
#include "lib/core/percent_encoding.h"
#include "lib/core/utf8.h"
#include "lib/server/api.h"
#include "lib/server/api_internal.h"
#include "lib/server/http_wire.h"

namespace kvctl::server {
namespace {

using api::Json;
using api::json;
using api::ParseQuery;
using api::ParseUint;

// Puts `bytes` into obj[name], plus obj[name + "_base64"] when it is not
// valid UTF-8 (see api.h).
void SetKeyField(json& obj, const std::string& name, const std::string& bytes) {
  obj[name] = bytes;
  if (!core::IsValidUtf8(bytes)) obj[name + "_base64"] = core::Base64Encode(bytes);
}

std::string ETag(uint64_t revision) { return '"' + std::to_string(revision) + '"'; }

HttpResponse FromStoreError(const core::Status& s) {
  if (s.IsFailedPrecondition()) return KvApi::Error(412, "precondition_failed", s.message());
  if (s.IsUnavailable()) return KvApi::Error(503, "unavailable", s.message());
  if (s.IsNotFound()) return KvApi::Error(404, "no_such_key", s.message());
  return KvApi::Error(500, "internal", s.message());
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// All the values of a field, as one comma-separated list: a field sent
// on several lines means the same as its values joined by commas (RFC 9110
// §5.3), so both forms are judged alike. nullopt when absent.
std::optional<std::string> CombinedField(const HttpRequest& req, std::string_view name) {
  std::optional<std::string> out;
  for (const auto& [field, value] : req.headers) {
    if (!EqualsIgnoreCase(field, name)) continue;
    if (out) {
      out->append(", ").append(value);
    } else {
      out = value;
    }
  }
  return out;
}

// An If-Match value: "*", or entity-tags (RFC 9110 §8.8.3) W/"..." or
// "...", where the opaque part may hold commas. False when malformed.
struct EntityTag {
  bool weak = false;
  std::string_view opaque;
};
bool ParseIfMatch(std::string_view value, bool* star, std::vector<EntityTag>* tags) {
  *star = false;
  size_t members = 0;
  for (size_t i = 0;;) {
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t' || value[i] == ',')) ++i;
    if (i == value.size()) break;
    ++members;
    if (value[i] == '*') {
      *star = true;
      ++i;
    } else {
      EntityTag tag;
      if (value.substr(i, 2) == "W/") {
        tag.weak = true;
        i += 2;
      }
      if (i == value.size() || value[i] != '"') return false;
      const size_t close = value.find('"', i + 1);
      if (close == std::string_view::npos) return false;
      tag.opaque = value.substr(i + 1, close - i - 1);
      tags->push_back(tag);
      i = close + 1;
    }
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    if (i < value.size() && value[i] != ',') return false;  // something after a member
  }
  return members > 0;
}

// Reads If-Match / If-None-Match into `pre`; the answer when they are
// malformed (400) or cannot hold (412).
std::optional<HttpResponse> ReadPreconditions(const HttpRequest& req, bool is_put,
                                              core::Precondition* pre) {
  if (std::optional<std::string> v = CombinedField(req, "If-Match")) {
    bool star = false;
    std::vector<EntityTag> tags;
    if (!ParseIfMatch(*v, &star, &tags) || (star && !tags.empty()) || tags.size() > 1) {
      return KvApi::Error(400, "bad_precondition",
                          fmt::format("If-Match must be one ETag as the server sends it, in quotes "
                                      "(e.g. \"7\"), or *; got {}",
                                      *v));
    }
    if (star) {
      pre->must_exist = true;
    } else {
      // The strong comparison of RFC 9110 §13.1.1, against ETags that are
      // a revision in decimal without leading zeros: a weak tag, or one
      // such as "052" or "x", matches no key's ETag, so the write cannot
      // apply (412), whatever the key holds.
      const EntityTag& tag = tags.front();
      uint64_t rev = 0;
      const bool ours = !tag.weak && ParseUint(tag.opaque, &rev) && std::to_string(rev) == tag.opaque;
      if (!ours) {
        return KvApi::Error(412, "precondition_failed",
                            fmt::format("If-Match {} matches no revision: an ETag is a revision in quotes, "
                                        "compared exactly (e.g. \"7\")",
                                        *v));
      }
      pre->if_revision = rev;
    }
  }
  if (std::optional<std::string> v = CombinedField(req, "If-None-Match")) {
    if (!is_put || Trim(*v) != "*") {
      return KvApi::Error(400, "bad_precondition",
                          "If-None-Match is only understood as * on PUT (create only)");
    }
    pre->create_only = true;
  }
  return std::nullopt;
}

// One page of a listing over prefixes that do not overlap, given in key
// order (what a caller may read of list.prefix, or all of it). The page
// ends at list.limit items or once its keys and values reach `max_bytes`,
// whichever comes first; `next` is set when more keys may follow (a later
// range is not looked at to find out). The store is asked in chunks no
// larger than the bytes the page still has room for (counting every item
// at its largest), so no chunk can hold a page's worth of 1 MiB values
// that the page will not take.
core::ListPage ListBounded(const core::KvStore& store, const core::ListOptions& list,
                           const std::vector<std::string>& ranges, size_t max_bytes, size_t max_item_bytes) {
  core::ListPage out;
  out.store_revision = UINT64_MAX;
  size_t bytes = 0;
  for (size_t i = 0; i < ranges.size(); ++i) {
    core::ListOptions part = list;
    part.prefix = ranges[i];
    for (;;) {
      const size_t room = max_bytes - bytes;
      part.limit = std::clamp<size_t>(room / max_item_bytes, 1, list.limit - out.items.size());
      core::ListPage chunk = store.List(part);
      // A page read in chunks reflects the oldest of their revisions: a
      // watch from after it may repeat a change, but misses none.
      out.store_revision = std::min(out.store_revision, chunk.store_revision);
      for (core::ListItem& item : chunk.items) {
        bytes += item.key.size() + item.value.size();
        out.items.push_back(std::move(item));
      }
      if (out.items.size() == list.limit || bytes >= max_bytes) {
        if (chunk.next || i + 1 < ranges.size()) out.next = out.items.back().key;
        return out;
      }
      if (!chunk.next) break;  // this range is done
      part.after = std::move(chunk.next);
    }
  }
  if (out.store_revision == UINT64_MAX) out.store_revision = store.revision();  // nothing was read
  return out;
}

// `bytes` as a JSON string: by hand when valid UTF-8 (the bytes nlohmann
// writes), else through nlohmann with U+FFFD for the bad bytes.
void AppendKeyString(const std::string& bytes, std::string* out) {
  if (core::IsValidUtf8(bytes)) {
    core::AppendJsonString(bytes, out);
  } else {
    out->append(api::Dump(json(bytes)));
  }
}

// `"name":"<bytes>"`, plus `,"name_base64":"..."` when not valid UTF-8 (as
// SetKeyField does).
void AppendKeyField(std::string_view name, const std::string& bytes, std::string* out) {
  out->append("\"").append(name).append("\":");
  AppendKeyString(bytes, out);
  if (!core::IsValidUtf8(bytes)) {
    out->append(",\"").append(name).append("_base64\":\"").append(core::Base64Encode(bytes)).append("\"");
  }
}

}  // namespace

namespace api {

void AppendListItem(const std::string& key, const std::string* value, uint64_t revision, const core::KeyMeta& meta,
                    std::string* out) {
  // Fields in nlohmann's (sorted) order.
  out->append("{\"create_revision\":").append(std::to_string(meta.create_revision)).push_back(',');
  AppendKeyField("key", key, out);
  out->append(",\"lease\":").append(std::to_string(meta.lease));
  out->append(",\"revision\":").append(std::to_string(revision));
  if (value != nullptr) out->append(",\"value\":\"").append(core::Base64Encode(*value)).append("\"");
  out->append(",\"version\":").append(std::to_string(meta.version)).push_back('}');
}

}  // namespace api

std::optional<HttpResponse> KvApi::DecodeKey(std::string_view raw_key, std::string* key) const {
  auto decoded = core::PercentDecode(raw_key);
  if (!decoded) return Error(400, "bad_encoding", "key: " + decoded.error().message());
  if (decoded->empty()) return Error(400, "empty_key", "the key is empty: put it after /v1/kv/");
  if (decoded->size() > options_.max_key_bytes) {
    return Error(414, "key_too_long",
                 fmt::format("the key is {} bytes, over limits.max_key_bytes = {}", decoded->size(),
                             options_.max_key_bytes));
  }
  *key = std::move(*decoded);
  return std::nullopt;
}

std::optional<HttpResponse> KvApi::CheckWrite(const HttpRequest& req, core::Precondition* pre) const {
  if (auto bad = ReadPreconditions(req, req.method == "PUT", pre)) return bad;
  if (req.method == "PUT" && req.body.size() > options_.max_value_bytes) {
    return Error(413, "value_too_large",
                 fmt::format("the value is {} bytes, over limits.max_value_bytes = {}", req.body.size(),
                             options_.max_value_bytes));
  }
  return std::nullopt;
}

HttpResponse KvApi::PutAnswer(const std::string& key, const core::Result<core::PutOutcome>& put) {
  // A PUT finds nothing missing but the lease it names (?lease=).
  if (!put && put.error().IsNotFound()) return Error(404, "no_such_lease", put.error().message());
  if (!put) return FromStoreError(put.error());
  const int status = put->created ? 201 : 200;
  HttpResponse res;
  res.headers.reserve(3);  // ETag here, X-Request-Id and X-Kvctl-Revision in Finish
  if (core::IsValidUtf8(key)) {
    // Every write's answer: written by hand (the same bytes nlohmann writes,
    // keys in its order) since a nlohmann object per PUT was a third of
    // kvctl's own instructions per PUT (callgrind).
    res.status = status;
    res.content_type = "application/json";
    res.body.reserve(key.size() + 64);
    res.body.append(put->created ? "{\"created\":true,\"key\":" : "{\"created\":false,\"key\":");
    core::AppendJsonString(key, &res.body);
    res.body.append(",\"revision\":").append(std::to_string(put->revision)).append("}\n");
  } else {
    json body{{"revision", put->revision}, {"created", put->created}};
    SetKeyField(body, "key", key);
    res = Json(status, body);
  }
  res.SetHeader("ETag", ETag(put->revision));
  return res;
}

HttpResponse KvApi::DeleteAnswer(const core::Result<core::DeleteOutcome>& del) {
  if (!del) return FromStoreError(del.error());
  HttpResponse res;
  res.status = 204;
  return res;
}

HttpResponse KvApi::GetAnswer(const std::string& key) const {
  // X-Kvctl-Revision is the revision this read reflects, not a later one:
  // a watch from the one after it neither misses nor repeats a change.
  uint64_t at = 0;
  auto entry = store_.Get(key, &at);
  HttpResponse res = entry ? HttpResponse{} : Error(404, "no_such_key", "no such key");
  res.revision = at;
  if (!entry) return res;
  res.content_type = "application/octet-stream";
  res.body = std::move(entry->value);
  res.headers.reserve(6);  // these four, X-Request-Id and X-Kvctl-Revision in Finish
  res.SetHeader("ETag", ETag(entry->revision));
  res.SetHeader("X-Kvctl-Create-Revision", std::to_string(entry->meta.create_revision));
  res.SetHeader("X-Kvctl-Version", std::to_string(entry->meta.version));
  res.SetHeader("X-Kvctl-Lease", std::to_string(entry->meta.lease));
  return res;
}

HttpResponse KvApi::HandleKey(const HttpRequest& req, const std::string& key) {
  if (req.method == "GET" || req.method == "HEAD") return GetAnswer(key);
  core::Precondition pre;
  if (auto bad = CheckWrite(req, &pre)) return std::move(*bad);
  uint64_t lease = 0;
  if (auto bad = ReadLeaseParameter(req, &lease)) return std::move(*bad);
  if (req.method == "PUT") return PutAnswer(key, store_.Put(key, req.body, pre, lease));
  return DeleteAnswer(store_.Delete(key, pre));
}

HttpResponse KvApi::HandleList(const HttpRequest& req, const Principal* caller) {
  auto params = ParseQuery(req.query);
  if (!params) return Error(400, "bad_parameter", params.error().message());
  core::ListOptions list;
  list.limit = options_.default_list_limit;
  for (const auto& [name, value] : *params) {
    if (name == "prefix") {
      list.prefix = value;
    } else if (name == "after") {
      list.after = value;
    } else if (name == "limit") {
      uint64_t n = 0;
      if (!ParseUint(value, &n) || n < 1 || n > options_.max_list_limit) {
        return Error(400, "bad_parameter",
                     fmt::format("limit must be a whole number from 1 to {}, got \"{}\"",
                                 options_.max_list_limit, value));
      }
      list.limit = n;
    } else if (name == "keys_only") {
      if (value == "1" || value == "true") {
        list.keys_only = true;
      } else if (value == "0" || value == "false") {
        list.keys_only = false;
      } else {
        return Error(400, "bad_parameter",
                     fmt::format("keys_only must be 1, true, 0 or false, got \"{}\"", value));
      }
    } else {
      return Error(400, "bad_parameter",
                   fmt::format("unknown query parameter \"{}\" (known: prefix, after, limit, keys_only)",
                               name));
    }
  }

  // Admission has made sure a caller reads something; it sees what it may.
  std::vector<std::string> ranges;
  if (caller == nullptr) {
    ranges.push_back(list.prefix);
  } else {
    ranges = caller->ReadableWithin(list.prefix);
  }
  const size_t max_item_bytes = options_.max_key_bytes + (list.keys_only ? 0 : options_.max_value_bytes);
  core::ListPage page =
      ListBounded(store_, list, ranges, options_.max_list_bytes, std::max<size_t>(1, max_item_bytes));
  // Written by hand, the same bytes nlohmann writes (its keys in order),
  // and each value let go once written: a page of 1 MiB values is held
  // once as values and once as base64, not as a JSON tree besides.
  size_t bytes = 0;
  for (const core::ListItem& item : page.items) bytes += item.key.size() + item.value.size();
  HttpResponse res;
  res.status = 200;
  res.revision = page.store_revision;
  res.content_type = "application/json";
  res.body.reserve(bytes / 3 * 4 + page.items.size() * 128 + 64);
  res.body.append("{\"items\":[");
  for (size_t i = 0; i < page.items.size(); ++i) {
    core::ListItem& item = page.items[i];
    if (i > 0) res.body.push_back(',');
    api::AppendListItem(item.key, list.keys_only ? nullptr : &item.value, item.revision, item.meta, &res.body);
    std::string().swap(item.value);
  }
  res.body.append("],\"next\":");
  if (page.next) {
    AppendKeyString(*page.next, &res.body);
    if (!core::IsValidUtf8(*page.next)) {
      res.body.append(",\"next_base64\":\"").append(core::Base64Encode(*page.next)).append("\"");
    }
  } else {
    res.body.append("null");
  }
  res.body.append("}\n");
  return res;
}

}  // namespace kvctl::server
