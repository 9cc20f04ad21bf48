// The routes about the server rather than a key: compaction, the probes
// and /metrics.
#include <fmt/format.h>

#include "lib/server/api.h"
#include "lib/server/api_internal.h"

namespace kvctl::server {
namespace {

using api::Dump;
using api::Json;
using api::json;

json CompactionObject(const core::CompactionStats& s) {
  return json{{"compacted", s.compacted},
              {"covered_revision", s.covered_revision},
              {"bytes_before", s.bytes_before},
              {"bytes_after", s.bytes_after},
              {"records_read", s.records_read},
              {"records_kept", s.records_written},
              {"records_dropped", s.records_read - s.records_written},
              {"files_removed", s.files_removed},
              {"seconds", s.seconds}};
}

}  // namespace

std::string KvApi::CompactionJson(const core::CompactionStats& stats) {
  return Dump(CompactionObject(stats));
}

HttpResponse KvApi::HandleCompact() {
  // Runs on this request's thread; the store keeps serving meanwhile, and a
  // second request waits for the running compaction (ChangeLog::Compact).
  auto stats = store_.Compact();
  if (!stats) {
    const core::Status& s = stats.error();
    if (s.IsUnavailable()) return Error(503, "unavailable", s.message());
    if (s.IsCorruption()) return Error(500, "corrupt_log", s.message());
    return Error(500, "compaction_failed", s.message());
  }
  return Json(200, CompactionObject(*stats));
}

HttpResponse KvApi::HandleHealthz() { return Json(200, json{{"status", "ok"}}); }

HttpResponse KvApi::HandleReadyz(const Principal* caller) {
  if (core::Status writable = store_.Writable(); !writable.ok()) {
    return Error(503, "not_ready", writable.message());
  }
  // Readiness is for anyone; how far the store has got is for those who
  // may see everything (with auth off, everyone may).
  if (admission_.auth().enabled() && (caller == nullptr || !caller->Permits(Op::kAdmin, ""))) {
    return Json(200, json{{"status", "ready"}});
  }
  return Json(200, json{{"status", "ready"}, {"revision", store_.revision()}});
}

HttpResponse KvApi::HandleMetrics() {
  const core::StoreStats s = store_.stats();
  const bool writable = store_.Writable().ok();
  std::string out;
  out.reserve(4096);
  admission_.metrics().Render(&out);
  if (options_.render_grpc_metrics) options_.render_grpc_metrics(&out);
  if (RateLimiter* limiter = admission_.rate_limiter()) {
    AppendSingle(&out, "kvctl_ratelimit_clients", "gauge",
                 "Clients with a rate-limit bucket (seen within one refill period).", limiter->clients());
  }
  auto gauge = [&](std::string_view name, std::string_view help, std::string_view type, auto v) {
    out.append(fmt::format("# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name, help, type, v));
  };
  gauge("kvctl_keys", "Live keys in memory.", "gauge", s.keys);
  gauge("kvctl_live_bytes",
        "Bytes of the live keys and values, counted as log records (with their headers): the data "
        "held in memory, and what a snapshot of it takes.",
        "gauge", s.live_bytes);
  gauge("kvctl_revision", "The last committed store-wide revision.", "gauge", s.revision);
  gauge("kvctl_writable", "1 while writes are accepted, 0 after the log failed or during shutdown.",
        "gauge", writable ? 1 : 0);
  gauge("kvctl_store_puts_total", "PUT changes committed (unchanged PUTs are not changes).", "counter",
        s.puts);
  gauge("kvctl_store_deletes_total", "DELETE changes committed.", "counter", s.deletes);
  gauge("kvctl_commit_batches_total", "Group commits: log appends, each covering one or more changes.",
        "counter", s.commit_batches);
  gauge("kvctl_committed_changes_total", "Changes made durable through group commits.", "counter",
        s.committed_changes);
  const core::WatchStats w = store_.watch_stats();
  gauge("kvctl_watches_open", "Watches open now (GET /v1/watch and long polls).", "gauge", w.watchers);
  gauge("kvctl_watch_events_sent_total", "Events handed to watchers.", "counter", w.events_sent);
  gauge("kvctl_watchers_cut_off_total",
        "Watchers ended for falling more than server.watch_max_lag revisions behind.", "counter", w.cut_off);
  gauge("kvctl_watchers_compacted_total",
        "Watchers ended because the history they needed next was compacted away.", "counter", w.compacted);
  gauge("kvctl_watch_memory_events", "Recent events the watch hub keeps in memory.", "gauge", w.memory_events);
  gauge("kvctl_watch_memory_bytes", "Bytes of keys and values the watch hub keeps in memory.", "gauge",
        w.memory_bytes);
  RenderLeaseMetrics(store_.lease_stats(), &out);
  for (const core::BackendMetric& m : store_.BackendMetrics()) gauge(m.name, m.help, m.type, m.value);
  if (options_.render_backend_metrics) options_.render_backend_metrics(&out);
  HttpResponse res;
  res.content_type = "text/plain; version=0.0.4";
  res.body = std::move(out);
  return res;
}

}  // namespace kvctl::server
