// A watch that outlives its connections: `kvctl watch`'s loop over
// KvClient::Stream (GET /v1/watch, SPEC §6). When the connection drops, the
// server restarts or cuts this reader off for lagging, it connects again and
// resumes from the first revision it has not handed on whole, so that across
// any number of reconnects every event is handed on once, in revision order.
//
// What it tracks to resume exactly: `done`, the revision through which every
// event has been handed on (moved by a later revision's event or a progress
// line), and how many events of the revision after it were handed on before
// the connection dropped (a transaction's events share one revision); those
// are skipped when the server sends that revision again.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "lib/client/kv_client.h"
#include "lib/core/key_meta.h"
#include "lib/core/status.h"

namespace kvctl::client {

// How long a watch may go without a byte before its connection is taken as
// lost: the server sends a progress line at least every
// server.watch_progress_interval (10 s by default).
inline constexpr std::chrono::seconds kWatchIdle{45};

struct WatchEvent {
  uint64_t revision = 0;
  bool deleted = false;
  std::string key;
  std::string value;  // "" for a delete
  core::KeyMeta meta;
  std::string json;  // the line as the server sent it, without its newline
};

struct WatchSpec {
  std::string key;  // the key, or the prefix ("" with prefix: every key)
  bool prefix = false;
  std::optional<uint64_t> from;  // none: from the next revision
};

class WatchSession {
 public:
  WatchSession(KvClient& client, WatchSpec spec) : client_(client), spec_(std::move(spec)) {}

  // Hands each event to `on_event` until the client is cancelled (Ok),
  // `on_event` returns an error (that error), or the watch cannot go on:
  // the first connection fails (its error: nothing was ever watched), the
  // history it needs was compacted (Compacted), or the server refuses the
  // request (InvalidArgument, e.g. 403). Other failures are outages: it says
  // so once through `notice` (a line for stderr), retries with a growing
  // pause (at most 2 s), and says so again when it is back.
  core::Status Run(const std::function<core::Status(const WatchEvent&)>& on_event,
                   const std::function<void(std::string_view)>& notice);

  // The revision through which every event has been handed on.
  uint64_t done() const { return done_; }

 private:
  std::string Path() const;
  // One line of the stream; false ends this connection (end_ says why).
  bool TakeLine(std::string_view line, const std::function<core::Status(const WatchEvent&)>& on_event);

  KvClient& client_;
  WatchSpec spec_;
  bool started_ = false;        // done_ is known (a --from, or a first head)
  uint64_t done_ = 0;
  uint64_t current_ = 0;        // the revision whose events are being handed on
  uint64_t current_count_ = 0;  // how many of them have been
  uint64_t skip_ = 0;           // events of current_ to skip on this connection
  core::Status end_;            // why the stream ended, when it said so
  bool lagging_ = false;        // the server cut this reader off for lagging
};

}  // namespace kvctl::client
