// etcd's watch, the gateway's streaming JSON form: POST /v3/watch with one
// {"create_request": ...}; the answer is a stream of {"result": ...}
// messages, one per chunk (clients such as etcd3gw parse each chunk as one
// message): "created", then the events of each revision, progress marks
// when asked for, and "canceled" with compact_revision when the history
// it needs is gone. It ends when the client closes the connection.
#include <algorithm>
#include <mutex>

#include <fmt/format.h>

#include "lib/core/base64.h"
#include "lib/server/auth.h"
#include "lib/server/etcd_internal.h"
#include "lib/server/wake_slot.h"

namespace kvctl::server {

using etcd::ErrorAnswer;
using etcd::Json;

namespace {

class EtcdWatchStream : public StreamSource {
 public:
  struct Options {
    bool no_put = false;
    bool no_delete = false;
    bool progress_notify = false;
    const Principal* readable = nullptr;  // filters events by its grants; null: all
  };

  EtcdWatchStream(std::shared_ptr<core::Watcher> watcher, std::shared_ptr<WakeSlot> slot,
                  const EtcdOptions& etcd, uint64_t created_revision, Options options)
      : watcher_(std::move(watcher)),
        slot_(std::move(slot)),
        etcd_(etcd),
        created_revision_(created_revision),
        options_(options) {}
  ~EtcdWatchStream() override { watcher_->Cancel(); }

  void Start(std::function<void()> wake) override {
    std::lock_guard lock(slot_->mu);
    slot_->wake = std::move(wake);
  }

  // One message per Pull: the transport sends each Pull as one chunk.
  bool Pull(size_t max_bytes, std::string* out) override {
    if (!created_sent_) {
      created_sent_ = true;
      Json result;
      result["header"] = etcd::Header(etcd_, created_revision_);
      result["created"] = true;
      Append(result, out);
      return true;
    }
    if (ended_) return false;
    for (;;) {
      watcher_->Poll(std::max<size_t>(max_bytes / 2, 1), &batch_);
      if (!batch_.events.empty()) {
        Json events = Json::array();
        uint64_t revision = 0;
        for (const auto& e : batch_.events) {
          revision = e->revision;
          const bool put = e->type == core::RecordType::kPut;
          if ((put && options_.no_put) || (!put && options_.no_delete)) continue;
          if (options_.readable != nullptr && !options_.readable->Permits(Op::kRead, e->key)) continue;
          Json event;
          if (!put) event["type"] = "DELETE";
          event["kv"] = put ? etcd::KeyValue(e->key, e->value, e->revision, e->meta)
                            : etcd::KeyValue(e->key, "", e->revision, core::KeyMeta{});
          events.push_back(std::move(event));
        }
        batch_.events.clear();
        if (events.empty()) continue;  // none for this client: look on
        Json result;
        result["header"] = etcd::Header(etcd_, revision);
        result["events"] = std::move(events);
        Append(result, out);
        return true;
      }
      if (batch_.progress != 0) {
        if (!options_.progress_notify) continue;
        Json result;
        result["header"] = etcd::Header(etcd_, batch_.progress);
        Append(result, out);
        return true;
      }
      if (batch_.end == core::Watcher::End::kNone) return true;  // nothing now: the notify wakes us
      ended_ = true;
      if (batch_.end == core::Watcher::End::kClosed) return false;
      Json result;
      result["header"] = etcd::Header(etcd_, 0);
      result["canceled"] = true;
      if (batch_.end == core::Watcher::End::kCompacted) {
        result["compact_revision"] = std::to_string(batch_.compact_revision);
      } else {
        result["cancel_reason"] = batch_.why.empty() ? std::string("kvctl: the watch ended") : batch_.why;
      }
      Append(result, out);
      return true;
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
  static void Append(const Json& result, std::string* out) {
    out->append(Json{{"result", result}}.dump(-1, ' ', false, Json::error_handler_t::replace));
    out->push_back('\n');
  }

  std::shared_ptr<core::Watcher> watcher_;
  std::shared_ptr<WakeSlot> slot_;
  const EtcdOptions& etcd_;
  const uint64_t created_revision_;
  const Options options_;
  bool created_sent_ = false;
  bool ended_ = false;
  core::Watcher::Batch batch_;
};

// A stream that says only that its watch was canceled, compacted away.
class CompactedStream : public StreamSource {
 public:
  CompactedStream(const EtcdOptions& etcd, uint64_t head, uint64_t compact_revision)
      : etcd_(etcd), head_(head), compact_revision_(compact_revision) {}
  void Start(std::function<void()>) override {}
  bool Pull(size_t, std::string* out) override {
    Json result;
    if (step_ == 0) {
      result["header"] = etcd::Header(etcd_, head_);
      result["created"] = true;
    } else {
      result["header"] = etcd::Header(etcd_, 0);
      result["canceled"] = true;
      result["compact_revision"] = std::to_string(compact_revision_);
    }
    out->append(Json{{"result", result}}.dump()).push_back('\n');
    return ++step_ < 2;
  }
  void Cancel() override {}

 private:
  const EtcdOptions& etcd_;
  uint64_t head_, compact_revision_;
  int step_ = 0;
};

}  // namespace

HttpResponse EtcdApi::Watch(Call& call) {
  auto create = call.body.find("create_request");
  if (create == call.body.end() || !create->is_object()) {
    return ErrorAnswer(etcd::Unimplemented("a watch request other than one create_request per POST"));
  }
  std::string key, range_end;
  int64_t start_revision = 0;
  bool prev_kv = false, progress_notify = false, fragment = false;
  for (auto e : {etcd::ReadBytes(*create, "key", &key), etcd::ReadBytes(*create, "range_end", &range_end),
                 etcd::ReadInt(*create, "start_revision", &start_revision),
                 etcd::ReadBool(*create, "prev_kv", &prev_kv),
                 etcd::ReadBool(*create, "progress_notify", &progress_notify),
                 etcd::ReadBool(*create, "fragment", &fragment)}) {
    if (e) return ErrorAnswer(*e);
  }
  if (prev_kv) return ErrorAnswer(etcd::Unimplemented("prev_kv in watch events"));
  EtcdWatchStream::Options options;
  options.progress_notify = progress_notify;
  if (auto filters = create->find("filters"); filters != create->end() && filters->is_array()) {
    for (const auto& f : *filters) {
      if ((f.is_string() && f == "NOPUT") || (f.is_number_integer() && f == 0)) options.no_put = true;
      if ((f.is_string() && f == "NODELETE") || (f.is_number_integer() && f == 1)) options.no_delete = true;
    }
  }
  core::WatchFilter filter;
  if (range_end.empty()) {
    if (key.empty()) return ErrorAnswer(etcd::KeyNotProvided());
    filter.key = key;
  } else if (auto prefix = etcd::AsPrefix(key, range_end)) {
    filter.key = *prefix;
    filter.prefix = true;
  } else {
    return ErrorAnswer(etcd::Unimplemented("a watch over a range that is not one key or one prefix"));
  }
  if (call.caller != nullptr) {
    if (!filter.prefix && !call.caller->Permits(Op::kRead, filter.key)) {
      admission_.CountForbidden();
      return ErrorAnswer(etcd::PermissionDenied());
    }
    if (filter.prefix) {
      const std::vector<std::string> ranges = call.caller->ReadableWithin(filter.key);
      if (ranges.empty()) {
        admission_.CountForbidden();
        return ErrorAnswer(etcd::PermissionDenied());
      }
      if (ranges.size() != 1 || ranges.front() != filter.key) options.readable = call.caller;
    }
  }
  const uint64_t head = store_.revision();
  const uint64_t from = start_revision > 0 ? static_cast<uint64_t>(start_revision) : head + 1;
  auto slot = std::make_shared<WakeSlot>();
  auto watcher = store_.Watch(filter, from, [slot] { slot->Notify(); });
  HttpResponse res;
  res.status = 200;
  res.content_type = "application/json";
  if (!watcher) {
    if (!watcher.error().IsCompacted()) return ErrorAnswer(etcd::FromStatus(watcher.error()));
    const uint64_t floor = store_.HistoryFloor();
    res.stream = std::make_shared<CompactedStream>(options_, head, floor > 0 ? floor - 1 : 0);
    return res;
  }
  res.stream = std::make_shared<EtcdWatchStream>(std::move(*watcher), std::move(slot), options_, head, options);
  return res;
}

}  // namespace kvctl::server
