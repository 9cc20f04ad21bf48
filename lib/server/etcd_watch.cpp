// etcd's watch, the gateway's streaming JSON form: POST /v3/watch whose
// body is a stream of request messages ({"create_request": ...},
// {"cancel_request": ...}, {"progress_request": {}}), as grpc-gateway reads
// it. The body is complete when it is read, so its requests are taken in
// order before the answer starts; a request sent later on the connection
// is not read. The answer is a stream of {"result": ...} messages, one per
// chunk (clients such as etcd3gw parse each chunk as one message): each
// request's answer in order ("created", "canceled", a progress header),
// then the watches' events, progress marks when asked for, and "canceled"
// with compact_revision when the history a watch needs is gone. Every
// result carries its watch's `watch_id` (omitted when 0, as etcd does). It
// ends when the client closes the connection.
#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <vector>

#include <fmt/format.h>

#include "lib/core/key_range.h"
#include "lib/core/range_history.h"
#include "lib/server/auth.h"
#include "lib/server/etcd_internal.h"
#include "lib/server/etcd_watch_stream.h"
#include "lib/server/wake_slot.h"

namespace kvctl::server {

using etcd::Error;
using etcd::ErrorAnswer;
using etcd::Json;

namespace {

using etcd::EtcdWatchStream;
using etcd::OneWatch;

// Watches open at once on one stream, and messages read from one body:
// what one POST can make the server hold.
constexpr size_t kMaxWatchesPerStream = 100;
constexpr size_t kMaxRequestsPerBody = 1000;

// etcd's watch id of a create that made no watch (a refused one), and of a
// progress request's answer.
constexpr int64_t kNoWatchId = -1;

// The request messages of a watch body, in order: every JSON object up to
// the first thing that is not one (etcd stops reading there), at most
// kMaxRequestsPerBody.
std::vector<nlohmann::json> RequestsOf(const std::string& body) {
  std::vector<nlohmann::json> requests;
  std::istringstream in(body);
  while (requests.size() < kMaxRequestsPerBody) {
    in >> std::ws;
    if (in.peek() == std::char_traits<char>::eof()) break;
    nlohmann::json message;
    try {
      in >> message;
    } catch (const nlohmann::json::exception&) {
      break;
    }
    if (!message.is_object()) break;
    requests.push_back(std::move(message));
  }
  return requests;
}

// The requests of one watch body, answered in order; what they make (the
// answers and the watches) becomes the stream.
class WatchRequests {
 public:
  WatchRequests(core::KvStore& store, const EtcdOptions& etcd, AdmissionPipeline& admission,
                const Principal* caller)
      : store_(store), etcd_(etcd), admission_(admission), caller_(caller) {}

  // A create_request: answered "created" (and a watch opened) or refused
  // in the stream as etcd does. An error (a field etcd cannot decode, or
  // with `first`, a refusal before the stream begins) is the caller's.
  std::optional<Error> Create(const nlohmann::json& create, bool first);
  // A cancel_request: answered only when the watch is open, as etcd does.
  std::optional<Error> Cancel(const nlohmann::json& cancel);
  void Progress() { answers_.push_back(etcd::WatchMessage(etcd::WatchResult(etcd_, store_.revision(), kNoWatchId))); }

  std::shared_ptr<StreamSource> Stream() {
    return std::make_shared<EtcdWatchStream>(etcd_, slot_, std::move(answers_), std::move(watches_));
  }

 private:
  OneWatch* Find(int64_t id) {
    for (auto& w : watches_) {
      if (w->id == id) return w.get();
    }
    return nullptr;
  }
  // etcd's answer to a create that made no watch.
  void Refuse(uint64_t head, int64_t id, std::string reason) {
    Json result = etcd::WatchResult(etcd_, head, id);
    result["created"] = true;
    result["canceled"] = true;
    result["cancel_reason"] = std::move(reason);
    answers_.push_back(etcd::WatchMessage(result));
  }

  core::KvStore& store_;
  const EtcdOptions& etcd_;
  AdmissionPipeline& admission_;
  const Principal* caller_;
  std::shared_ptr<WakeSlot> slot_ = std::make_shared<WakeSlot>();
  std::vector<std::string> answers_;
  std::vector<std::unique_ptr<OneWatch>> watches_;
  int64_t next_id_ = 0;  // etcd's next automatic watch id
};

std::optional<Error> WatchRequests::Create(const nlohmann::json& create, bool first) {
  std::string key, range_end;
  int64_t start_revision = 0, watch_id = 0;
  bool prev_kv = false, progress_notify = false, fragment = false;
  for (auto e :
       {etcd::ReadBytes(create, "key", &key), etcd::ReadBytes(create, "range_end", &range_end),
        etcd::ReadInt(create, "start_revision", &start_revision), etcd::ReadInt(create, "watch_id", &watch_id),
        etcd::ReadBool(create, "prev_kv", &prev_kv), etcd::ReadBool(create, "progress_notify", &progress_notify),
        etcd::ReadBool(create, "fragment", &fragment)}) {
    if (e) return e;
  }
  // `fragment` is read (a wrong type is refused as etcd does) and needs
  // nothing more: kvctl's messages are bounded by the transport's chunk.
  (void)fragment;
  // etcd: no key is the smallest key, "\0"; a range end of "\0" is every
  // key from `key` on.
  if (key.empty()) key.assign(1, '\0');
  auto w = std::make_unique<OneWatch>();
  w->range = core::KeyRange{key, range_end};
  w->progress_notify = progress_notify;
  w->with_prev = prev_kv;
  if (auto filters = create.find("filters"); filters != create.end() && filters->is_array()) {
    for (const auto& f : *filters) {
      if ((f.is_string() && f == "NOPUT") || (f.is_number_integer() && f == 0)) w->no_put = true;
      if ((f.is_string() && f == "NODELETE") || (f.is_number_integer() && f == 1)) w->no_delete = true;
    }
  }
  const uint64_t head = store_.revision();
  // Grants: a prefix watch with grants on part of it sees the events it
  // may read; any other range needs a grant covering all of it.
  if (caller_ != nullptr) {
    bool permitted = true;
    if (auto prefix = etcd::AsPrefix(key, range_end)) {
      const std::vector<std::string> ranges = caller_->ReadableWithin(*prefix);
      permitted = !ranges.empty();
      if (ranges.size() != 1 || ranges.front() != *prefix) w->readable = caller_;
    } else {
      permitted = etcd::RangePermitted(caller_, Op::kRead, key, range_end);
    }
    if (!permitted) {
      admission_.CountForbidden();
      if (first) return etcd::PermissionDenied();
      Refuse(head, watch_id, etcd::PermissionDenied().message);
      return std::nullopt;
    }
  }
  if (w->range.IsEmpty()) {
    Refuse(head, kNoWatchId, "mvcc: watcher range is empty");
    return std::nullopt;
  }
  if (watch_id != 0 && Find(watch_id) != nullptr) {
    Refuse(head, kNoWatchId, "mvcc: duplicate watch ID provided on the WatchStream");
    return std::nullopt;
  }
  if (watches_.size() >= kMaxWatchesPerStream) {
    Refuse(head, kNoWatchId,
           fmt::format("kvctl: at most {} watches on one stream; open another stream", kMaxWatchesPerStream));
    return std::nullopt;
  }
  if (watch_id == 0) {
    while (Find(next_id_) != nullptr) ++next_id_;
    watch_id = next_id_++;
  }
  w->id = watch_id;
  Json created = etcd::WatchResult(etcd_, head, watch_id);
  created["created"] = true;

  const uint64_t start = start_revision > 0 ? static_cast<uint64_t>(start_revision) : head + 1;
  w->send_from = start;
  uint64_t from = start;
  core::Status failed;
  if (prev_kv) {
    // The range just before the start (or now, for a start still to come),
    // then kept up to date from the events the watcher takes.
    auto past = core::RangeAt(store_, w->range, std::min(start - 1, head), false);
    if (past) {
      from = std::min(start - 1, head) + 1;
      for (core::ListItem& item : past->items) {
        std::string k = item.key;
        w->prev.emplace(std::move(k), std::move(item));
      }
    } else {
      failed = past.error();
    }
  }
  if (failed.ok()) {
    auto watcher = store_.Watch(w->range.Covering(), from, [slot = slot_] { slot->Notify(); });
    if (watcher) {
      w->watcher = std::move(*watcher);
    } else {
      failed = watcher.error();
    }
  }
  if (failed.IsCompacted()) {
    // etcd: created, then canceled with the last revision compacted away.
    answers_.push_back(etcd::WatchMessage(created));
    Json canceled = etcd::WatchResult(etcd_, 0, watch_id);
    canceled["canceled"] = true;
    const uint64_t floor = store_.HistoryFloor();
    canceled["compact_revision"] = std::to_string(floor > 0 ? floor - 1 : 0);
    answers_.push_back(etcd::WatchMessage(canceled));
    return std::nullopt;
  }
  if (!failed.ok()) {
    if (first) return etcd::FromStatus(failed);
    Refuse(head, watch_id, etcd::FromStatus(failed).message);
    return std::nullopt;
  }
  answers_.push_back(etcd::WatchMessage(created));
  watches_.push_back(std::move(w));
  return std::nullopt;
}

std::optional<Error> WatchRequests::Cancel(const nlohmann::json& cancel) {
  int64_t id = 0;
  if (auto e = etcd::ReadInt(cancel, "watch_id", &id)) return e;
  auto it = std::find_if(watches_.begin(), watches_.end(), [&](const auto& w) { return w->id == id; });
  if (it == watches_.end()) return std::nullopt;
  (*it)->watcher->Cancel();
  watches_.erase(it);
  Json result = etcd::WatchResult(etcd_, store_.revision(), id);
  result["canceled"] = true;
  answers_.push_back(etcd::WatchMessage(result));
  return std::nullopt;
}

}  // namespace

HttpResponse EtcdApi::Watch(Call& call) {
  WatchRequests requests(store_, options_, admission_, call.caller);
  const std::vector<nlohmann::json> messages = RequestsOf(call.request.body);
  for (size_t i = 0; i < messages.size(); ++i) {
    const nlohmann::json& message = messages[i];
    std::optional<Error> error;
    if (auto create = message.find("create_request"); create != message.end() && create->is_object()) {
      error = requests.Create(*create, i == 0);
    } else if (auto cancel = message.find("cancel_request"); cancel != message.end() && cancel->is_object()) {
      error = requests.Cancel(*cancel);
    } else if (message.contains("progress_request")) {
      requests.Progress();
    }
    if (error) {
      if (i == 0) return ErrorAnswer(*error);  // the stream has not begun: refused as a whole
      break;                                   // etcd stops reading at a message it cannot take
    }
  }
  HttpResponse res;
  res.status = 200;
  res.content_type = "application/json";
  res.stream = requests.Stream();
  return res;
}

}  // namespace kvctl::server
