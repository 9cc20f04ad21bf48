#include "lib/client/watch_session.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lib/core/base64.h"
#include "lib/core/percent_encoding.h"

namespace kvctl::client {
namespace {

using nlohmann::json;
using core::Status;

constexpr std::chrono::milliseconds kFirstPause{100};
constexpr std::chrono::milliseconds kMaxPause{2000};

Status NotAWatch(std::string_view why) {
  return Status::Unavailable(fmt::format(
      "the server's watch stream is not what kvctl expects: {} (is it another version of kvctl? compare kvctl "
      "version on both sides)",
      why));
}

uint64_t Number(const json& j, const char* name) {
  auto it = j.find(name);
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
}

// Sleeps `pause`, waking early when the client is cancelled.
void PauseUnlessCancelled(const KvClient& client, std::chrono::milliseconds pause) {
  const auto until = std::chrono::steady_clock::now() + pause;
  while (!client.cancelled() && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

std::string WatchSession::Path() const {
  std::string path = fmt::format("/v1/watch?{}={}", spec_.prefix ? "prefix" : "key", core::PercentEncode(spec_.key));
  if (started_) path += fmt::format("&from={}", done_ + 1);
  return path;
}

bool WatchSession::TakeLine(std::string_view line, const std::function<Status(const WatchEvent&)>& on_event) {
  if (client_.cancelled()) return false;  // Ctrl-C: not one more event
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    end_ = NotAWatch("a line is not a JSON object");
    return false;
  }
  if (auto it = j.find("progress"); it != j.end()) {
    const uint64_t through = Number(j, "progress");
    if (through > done_) done_ = through;
    return true;
  }
  if (auto it = j.find("error"); it != j.end()) {
    const std::string code = j.value("code", std::string());
    const std::string message = it->is_string() ? it->get<std::string>() : std::string("(no message)");
    if (code == "compacted") {
      end_ = Status::Compacted(fmt::format(
          "the server no longer has the history this watch needs: {} (watch again from a newer revision: --from "
          "{} or later)",
          message, Number(j, "compact_revision") + 1));
    } else if (code == "lagging") {
      lagging_ = true;
    } else {
      end_ = Status::Unavailable(fmt::format("the server ended the watch: {} ({})", message, code));
    }
    return false;
  }
  WatchEvent event;
  event.revision = Number(j, "revision");
  const std::string op = j.value("op", std::string());
  if (event.revision == 0 || (op != "put" && op != "delete")) {
    end_ = NotAWatch("an event without a revision or an op");
    return false;
  }
  event.deleted = op == "delete";
  if (auto k = j.find("key_base64"); k != j.end() && k->is_string()) {
    auto bytes = core::Base64Decode(k->get<std::string>());
    if (!bytes) {
      end_ = NotAWatch("an event's key_base64 is not base64");
      return false;
    }
    event.key = std::move(*bytes);
  } else {
    event.key = j.value("key", std::string());
  }
  auto value = core::Base64Decode(j.value("value", std::string()));
  if (!value) {
    end_ = NotAWatch("an event's value is not base64");
    return false;
  }
  event.value = std::move(*value);
  event.meta = {Number(j, "create_revision"), Number(j, "version"), Number(j, "lease")};
  event.json.assign(line);

  // Events come in revision order; one already handed on (a server that
  // resent it) is not handed on again.
  if (event.revision <= done_ || event.revision < current_) return true;
  if (event.revision > current_) {
    done_ = event.revision - 1;  // every revision before this one is whole
    current_ = event.revision;
    current_count_ = 0;
    skip_ = 0;
  }
  if (skip_ > 0) {
    --skip_;
    return true;
  }
  if (Status s = on_event(event); !s.ok()) {
    end_ = std::move(s);
    return false;
  }
  ++current_count_;
  return true;
}

Status WatchSession::Run(const std::function<Status(const WatchEvent&)>& on_event,
                         const std::function<void(std::string_view)>& notice) {
  if (spec_.from) {
    started_ = true;
    done_ = *spec_.from - 1;
  }
  bool connected_once = false;
  bool outage = false;
  std::chrono::milliseconds pause = kFirstPause;
  while (!client_.cancelled()) {
    // The events of current_ handed on before the last connection dropped
    // come again first: skip as many.
    skip_ = current_ == done_ + 1 ? current_count_ : 0;
    end_ = Status::Ok();
    lagging_ = false;
    auto on_head = [&](uint64_t revision) {
      if (!started_) {  // from the next revision: the one after the head's
        started_ = true;
        done_ = revision;
      }
      connected_once = true;
      pause = kFirstPause;
      if (outage) {
        notice(fmt::format("kvctl: reconnected; the watch resumes from revision {}", done_ + 1));
        outage = false;
      }
    };
    Status s = client_.Stream(Path(), kWatchIdle, on_head,
                              [&](std::string_view line) { return TakeLine(line, on_event); });
    if (client_.cancelled()) return Status::Ok();
    if (!end_.ok()) {
      if (!end_.IsUnavailable() || !connected_once) return end_;
      s = end_;
    }
    if (s.IsCompacted() || s.IsInvalidArgument() || s.IsNotFound()) return s;
    if (!connected_once) return s;  // never watched: nothing to resume
    if (lagging_) {
      notice(fmt::format("kvctl: the server cut this watch off for falling behind; resuming from revision {}",
                         done_ + 1));
      continue;
    }
    if (!outage) {
      notice(fmt::format("kvctl: lost the watch: {}; reconnecting, to resume from revision {}",
                         s.ok() ? std::string("the server ended the stream") : s.message(), done_ + 1));
      outage = true;
    }
    PauseUnlessCancelled(client_, pause);
    pause = std::min(pause * 2, kMaxPause);
  }
  return Status::Ok();
}

}  // namespace kvctl::client
