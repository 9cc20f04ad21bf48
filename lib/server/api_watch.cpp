// GET /v1/watch (SPEC §6): every change of a key or prefix from a revision
// on, as JSON lines over a stream the transport pulls from (StreamSource),
// so a client that reads nothing makes the server hold nothing more.
#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "lib/core/base64.h"
#include "lib/core/json_string.h"
#include "lib/core/utf8.h"
#include "lib/server/api.h"
#include "lib/server/api_internal.h"
#include "lib/server/wake_slot.h"

namespace kvctl::server {

namespace api {

void AppendWatchEvent(const core::WatchEvent& e, std::string* out) {
  const bool put = e.type == core::RecordType::kPut;
  out->append("{\"revision\":").append(std::to_string(e.revision));
  out->append(put ? ",\"op\":\"put\",\"key\":" : ",\"op\":\"delete\",\"key\":");
  if (core::IsValidUtf8(e.key)) {
    core::AppendJsonString(e.key, out);
  } else {
    out->append(Dump(json(e.key)));
    out->append(",\"key_base64\":\"").append(core::Base64Encode(e.key)).append("\"");
  }
  out->append(",\"value\":\"");
  if (put) out->append(core::Base64Encode(e.value));
  const core::KeyMeta meta = put ? e.meta : core::KeyMeta{};
  out->append("\",\"create_revision\":").append(std::to_string(meta.create_revision));
  out->append(",\"version\":").append(std::to_string(meta.version));
  out->append(",\"lease\":").append(std::to_string(meta.lease)).append("}\n");
}

}  // namespace api

namespace {

using api::Json;
using api::json;

class WatchStream : public StreamSource {
 public:
  // `readable`: null, or the caller whose grants filter the keys.
  WatchStream(std::shared_ptr<core::Watcher> watcher, std::shared_ptr<WakeSlot> slot,
              const Principal* readable)
      : watcher_(std::move(watcher)), slot_(std::move(slot)), readable_(readable) {}
  ~WatchStream() override { watcher_->Cancel(); }

  void Start(std::function<void()> wake) override {
    std::lock_guard lock(slot_->mu);
    slot_->wake = std::move(wake);
  }

  bool Pull(size_t max_bytes, std::string* out) override {
    // The events of one revision go out together: Poll hands out whole
    // revisions, and one Pull is one chunk.
    const size_t start = out->size();
    for (;;) {
      watcher_->Poll(std::max<size_t>(max_bytes / 2, 1), &batch_);
      for (const auto& e : batch_.events) {
        if (readable_ != nullptr && !readable_->Permits(Op::kRead, e->key)) continue;
        api::AppendWatchEvent(*e, out);
      }
      if (!batch_.events.empty()) {
        batch_.events.clear();
        if (out->size() == start) continue;  // none of them were the caller's: look on
        return true;
      }
      if (batch_.progress != 0) {
        out->append("{\"progress\":").append(std::to_string(batch_.progress)).append("}\n");
        return true;
      }
      if (batch_.end == core::Watcher::End::kNone) return true;  // nothing now: the notify wakes us
      AppendEnd(out);
      return false;
    }
  }

  void Cancel() override {
    {
      std::lock_guard lock(slot_->mu);
      slot_->wake = nullptr;
    }
    watcher_->Cancel();
  }

 private:
  void AppendEnd(std::string* out) const {
    json line;
    switch (batch_.end) {
      case core::Watcher::End::kLagging:
        line = {{"error", batch_.why.empty() ? "the watcher fell too far behind (server.watch_max_lag)"
                                             : batch_.why},
                {"code", "lagging"}};
        break;
      case core::Watcher::End::kCompacted:
        line = {{"error", "the history this watch needs next was compacted away"},
                {"code", "compacted"},
                {"compact_revision", batch_.compact_revision}};
        break;
      case core::Watcher::End::kFailed:
        line = {{"error", batch_.why.empty() ? "reading the history failed" : batch_.why},
                {"code", "internal"}};
        break;
      default:  // kClosed: the server stops; the stream just ends
        return;
    }
    out->append(api::Dump(line)).push_back('\n');
  }

  std::shared_ptr<core::Watcher> watcher_;
  std::shared_ptr<WakeSlot> slot_;
  const Principal* readable_;
  core::Watcher::Batch batch_;
};

}  // namespace

HttpResponse KvApi::HandleWatch(const HttpRequest& req, const Principal* caller) {
  auto params = api::ParseQuery(req.query);
  if (!params) return Error(400, "bad_parameter", params.error().message());
  std::optional<std::string> key;
  std::optional<std::string> prefix;
  uint64_t from = 0;
  for (const auto& [name, value] : *params) {
    if (name == "key") {
      key = value;
    } else if (name == "prefix") {
      prefix = value;
    } else if (name == "from") {
      if (!api::ParseUint(value, &from)) {
        return Error(400, "bad_parameter", fmt::format("from must be a revision (a whole number), got \"{}\"", value));
      }
    } else {
      return Error(400, "bad_parameter",
                   fmt::format("unknown query parameter \"{}\" (known: key, prefix, from)", name));
    }
  }
  if (key.has_value() == prefix.has_value()) {
    return Error(400, "bad_parameter",
                 "give exactly one of key= (one key) or prefix= (every key under it; prefix= alone: all keys)");
  }
  core::WatchFilter filter;
  if (key) {
    if (key->empty()) return Error(400, "empty_key", "key= is empty (for every key, give prefix= instead)");
    if (key->size() > options_.max_key_bytes) {
      return Error(414, "key_too_long",
                   fmt::format("the key is {} bytes, over limits.max_key_bytes = {}", key->size(),
                               options_.max_key_bytes));
    }
    if (auto refusal = Authorize(caller, Op::kRead, *key)) return std::move(*refusal);
    filter.key = std::move(*key);
  } else {
    filter.key = std::move(*prefix);
    filter.prefix = true;
  }
  // A prefix watch shows what the caller may read of it, as a listing does.
  const Principal* readable = nullptr;
  if (caller != nullptr && filter.prefix) {
    const std::vector<std::string> ranges = caller->ReadableWithin(filter.key);
    if (ranges.empty()) {
      admission_.CountForbidden();
      return Error(403, "forbidden", fmt::format("{} may not read any key under this prefix", caller->name));
    }
    if (ranges.size() != 1 || ranges.front() != filter.key) readable = caller;
  }
  // Without `from`, resolved here so that the answer can say where the
  // stream starts: its X-Kvctl-Revision is then the revision the stream
  // begins after, which a client resumes from (the store's revision when
  // the answer is finished may be later, and resuming there would skip the
  // changes in between). With `from`, it is the store's revision.
  const bool from_now = from == 0;
  if (from_now) from = store_.revision() + 1;
  auto slot = std::make_shared<WakeSlot>();
  auto watcher = store_.Watch(filter, from, [slot] { slot->Notify(); });
  if (!watcher) {
    if (watcher.error().IsCompacted()) {
      const uint64_t floor = store_.HistoryFloor();
      HttpResponse res = Json(410, json{{"error", fmt::format("revision {} was compacted away; the oldest a watch "
                                                              "can start from is {} (storage.history_retention)",
                                                              from, floor)},
                                        {"code", "compacted"},
                                        {"compact_revision", floor > 0 ? floor - 1 : 0}});
      res.error_code = "compacted";
      return res;
    }
    if (watcher.error().IsUnavailable()) return Error(503, "unavailable", watcher.error().message());
    return Error(500, "internal", watcher.error().message());
  }
  HttpResponse res;
  res.status = 200;
  if (from_now) res.revision = from - 1;
  res.content_type = "application/x-ndjson";
  res.SetHeader("Cache-Control", "no-store");
  res.stream = std::make_shared<WatchStream>(std::move(*watcher), std::move(slot), readable);
  return res;
}

}  // namespace kvctl::server
