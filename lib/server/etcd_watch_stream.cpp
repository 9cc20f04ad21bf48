#include "lib/server/etcd_watch_stream.h"

#include <algorithm>
#include <mutex>

#include "lib/server/etcd_internal.h"

namespace kvctl::server::etcd {

// The fields in etcd's order (the gateway writes them in the order of
// the protobuf message); watch_id is left out when 0, as etcd does.
std::string WatchMessage(const EtcdOptions& etcd, const WatchReply& reply) {
  Json result;
  result["header"] = Header(etcd, reply.revision);
  if (reply.watch_id != 0) result["watch_id"] = std::to_string(reply.watch_id);
  if (reply.created) result["created"] = true;
  if (reply.canceled) result["canceled"] = true;
  if (reply.compact_revision != 0) result["compact_revision"] = std::to_string(reply.compact_revision);
  if (!reply.cancel_reason.empty()) result["cancel_reason"] = reply.cancel_reason;
  if (!reply.events.empty()) {
    Json events = Json::array();
    for (const WatchEventReply& e : reply.events) {
      const core::WatchEvent& ev = *e.event;
      Json event;
      if (ev.type != core::RecordType::kPut) {
        event["type"] = "DELETE";
        event["kv"] = KeyValue(ev.key, "", ev.revision, core::KeyMeta{});
      } else {
        event["kv"] = KeyValue(ev.key, ev.value, ev.revision, ev.meta);
      }
      if (e.prev) event["prev_kv"] = KeyValue(e.prev->key, e.prev->value, e.prev->revision, e.prev->meta);
      events.push_back(std::move(event));
    }
    result["events"] = std::move(events);
  }
  std::string out = Json{{"result", std::move(result)}}.dump(-1, ' ', false, Json::error_handler_t::replace);
  out.push_back('\n');
  return out;
}

EtcdWatchStream::EtcdWatchStream(const EtcdOptions& etcd, std::shared_ptr<WakeSlot> slot,
                                 std::vector<std::string> answers, std::unique_ptr<WatchSet> watches)
    : etcd_(etcd), slot_(std::move(slot)), answers_(std::move(answers)), watches_(std::move(watches)) {}

EtcdWatchStream::~EtcdWatchStream() = default;  // the set cancels its watches

void EtcdWatchStream::Start(std::function<void()> wake) {
  std::lock_guard lock(slot_->mu);
  slot_->wake = std::move(wake);
}

bool EtcdWatchStream::Pull(size_t max_bytes, std::string* out) {
  if (next_answer_ < answers_.size()) {
    out->append(answers_[next_answer_++]);
    if (next_answer_ == answers_.size()) answers_ = {};
    return true;
  }
  // Half the chunk for keys and values: JSON's base64 and field names
  // take the rest.
  switch (watches_->Next(std::max<size_t>(max_bytes / 2, 1), &reply_)) {
    case WatchSet::Pulled::kNothing:
      return true;  // nothing now: a notify wakes us
    case WatchSet::Pulled::kMessage:
      out->append(WatchMessage(etcd_, reply_));
      reply_ = WatchReply{};
      return true;
    case WatchSet::Pulled::kStoreClosed:
      return false;
  }
  return false;
}

void EtcdWatchStream::Cancel() {
  {
    std::lock_guard lock(slot_->mu);
    slot_->wake = nullptr;
  }
  watches_->CancelAll();
}

}  // namespace kvctl::server::etcd
