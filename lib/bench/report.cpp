#include "lib/bench/report.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace kvctl::bench {
namespace {

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

struct Percentiles {
  double p50, p90, p99, p999, max, mean, min;
};

Percentiles Of(const Histogram& h) {
  return {Ms(h.ValueAtPercentile(50)), Ms(h.ValueAtPercentile(90)), Ms(h.ValueAtPercentile(99)),
          Ms(h.ValueAtPercentile(99.9)), Ms(h.max()), h.mean() / 1e6, Ms(h.min())};
}

std::string LatencyLine(const Histogram& h) {
  const Percentiles p = Of(h);
  return fmt::format("p50 {:.3f}  p90 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  max {:.3f}  (mean {:.3f}) ms", p.p50,
                     p.p90, p.p99, p.p999, p.max, p.mean);
}

nlohmann::json LatencyJson(const Histogram& h) {
  const Percentiles p = Of(h);
  return {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"p99_9", p.p999},
          {"max", p.max}, {"mean", p.mean}, {"min", p.min}};
}

std::string Shape(const LoadOptions& o) {
  std::string loop = o.rate > 0 ? fmt::format("open loop at {:.0f} req/s", o.rate) : "closed loop";
  std::string length = o.requests > 0 ? fmt::format("{} requests", o.requests)
                                      : fmt::format("{:.1f} s", std::chrono::duration<double>(o.duration).count());
  std::string dist = o.zipf_s > 0 ? fmt::format("zipf {:g}", o.zipf_s) : "uniform";
  std::string txns =
      o.txn_ratio > 0 ? fmt::format(" ({:g}% of writes as {}-key txns)", o.txn_ratio * 100, kTxnKeys) : "";
  return fmt::format("{} clients, {}, {:g}% reads{}, {} keys ({}), {} B keys, {} B values, {}", o.clients, length,
                     o.read_ratio * 100, txns, o.keys, dist, o.key_size, o.value_size, loop);
}

// The load's run as one JSON object (JsonReport's document).
nlohmann::json LoadJson(const LoadOptions& o, const LoadResult& r, const std::string& target) {
  nlohmann::json j;
  j["target"] = target;
  j["clients"] = o.clients;
  j["duration_s"] = r.seconds;
  j["warmup_s"] = std::chrono::duration<double>(o.warmup).count();
  j["read_ratio"] = o.read_ratio;
  j["txn_ratio"] = o.txn_ratio;
  j["keys"] = o.keys;
  j["zipf"] = o.zipf_s;
  j["key_size"] = o.key_size;
  j["value_size"] = o.value_size;
  j["rate"] = o.rate;
  j["requests"] = r.ok + r.error_count();
  j["ok"] = r.ok;
  j["throughput_rps"] = r.throughput();
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [kind, count] : r.errors) errors[kind] = count;
  j["errors"] = {{"total", r.error_count()}, {"by_kind", errors}};
  j["latency_ms"] = LatencyJson(r.latency);
  j["reads"] = {{"count", r.reads}, {"latency_ms", LatencyJson(r.read_latency)}};
  j["writes"] = {{"count", r.writes}, {"latency_ms", LatencyJson(r.write_latency)}};
  // POST /v1/txn, each of kTxnKeys PUTs; not counted in "writes".
  j["txns"] = {{"count", r.txns}, {"keys_each", kTxnKeys}, {"latency_ms", LatencyJson(r.txn_latency)}};
  nlohmann::json bars = nlohmann::json::array();
  for (const auto& b : r.latency.Bars(10)) bars.push_back({{"le_ms", Ms(b.upper)}, {"count", b.count}});
  j["histogram"] = bars;
  return j;
}

}  // namespace

std::string TextReport(const LoadOptions& o, const LoadResult& r, const std::string& target) {
  std::string out = fmt::format("kvctl bench against {}\n  {}\n", target, Shape(o));
  if (o.warmup.count() > 0) {
    out += fmt::format("  after {:.1f} s of warmup\n", std::chrono::duration<double>(o.warmup).count());
  }
  const std::string txns = o.txn_ratio > 0 ? fmt::format(", {} txn", r.txns) : "";
  out += fmt::format("\nrequests     {} ok ({} GET, {} PUT{}), {} errors in {:.2f} s\n", r.ok, r.reads, r.writes,
                     txns, r.error_count(), r.seconds);
  out += fmt::format("throughput   {:.1f} req/s\n", r.throughput());
  if (r.latency.count() > 0) {
    out += "latency      " + LatencyLine(r.latency) + "\n";
    // Per kind when there is more than one.
    const int kinds = (r.reads > 0 ? 1 : 0) + (r.writes > 0 ? 1 : 0) + (r.txns > 0 ? 1 : 0);
    if (kinds > 1) {
      if (r.reads > 0) out += "  GET        " + LatencyLine(r.read_latency) + "\n";
      if (r.writes > 0) out += "  PUT        " + LatencyLine(r.write_latency) + "\n";
      if (r.txns > 0) out += "  txn        " + LatencyLine(r.txn_latency) + "\n";
    }
  }
  if (!r.errors.empty()) {
    out += "errors\n";
    for (const auto& [kind, count] : r.errors) out += fmt::format("  {:<20} {}\n", kind, count);
  }
  const std::vector<Histogram::Bar> bars = r.latency.Bars(10);
  if (!bars.empty()) {
    out += "\nlatency histogram (ms, count):\n";
    uint64_t most = 1;
    for (const auto& b : bars) most = std::max(most, b.count);
    for (const auto& b : bars) {
      const size_t width = static_cast<size_t>(40.0 * static_cast<double>(b.count) / static_cast<double>(most));
      std::string bar;
      for (size_t i = 0; i < width; ++i) bar += "\u220e";
      out += fmt::format("  {:>10.3f} [{:>9}] |{}\n", Ms(b.upper), b.count, bar);
    }
  }
  return out;
}

std::string JsonReport(const LoadOptions& o, const LoadResult& r, const std::string& target) {
  return LoadJson(o, r, target).dump(2) + "\n";
}

std::string ProgressLine(double elapsed_s, double rate, uint64_t errors, bool warming_up) {
  return fmt::format("{:6.1f} s  {:>10.0f} req/s  {} errors{}", elapsed_s, rate, errors,
                     warming_up ? "  (warming up)" : "");
}

std::string WatchTextReport(const WatchLoadOptions& o, const WatchLoadResult& r, const std::string& target) {
  std::string out = fmt::format(
      "kvctl bench --watchers against {}\n  {} watchers on prefix \"{}\", {:g} probe PUTs/s of {}probe, {:.1f} s",
      target, o.watchers, o.prefix, o.probe_rate, o.prefix, r.seconds);
  if (o.warmup.count() > 0) {
    out += fmt::format(" after {:.1f} s of warmup", std::chrono::duration<double>(o.warmup).count());
  }
  out += "\n\n";
  out += fmt::format("watchers     {} of {} streaming at the end, {} streams cut off and resumed\n", r.streaming,
                     r.watchers, r.cut_off);
  out += fmt::format("events       {} received ({:.1f}/s), {} progress lines\n", r.events,
                     r.seconds > 0 ? static_cast<double>(r.events) / r.seconds : 0.0, r.progress);
  out += fmt::format("probes       {} acknowledged, {} of their events received, {} missing\n", r.probes,
                     r.probe_events, r.probe_missing);
  if (r.delay.count() > 0) {
    out += "delay        " + LatencyLine(r.delay) + "  (ack -> event, every watcher)\n";
    out += "  first      " + LatencyLine(r.delay_first) + "  (per write, its first watcher)\n";
    out += "  last       " + LatencyLine(r.delay_last) + "  (per write, its last watcher)\n";
  }
  if (!r.errors.empty()) {
    out += "errors      ";
    for (const auto& [kind, count] : r.errors) out += fmt::format(" {} {};", kind, count);
    out.back() = '\n';
  }
  return out;
}

std::string WatchJsonReport(const WatchLoadOptions& o, const WatchLoadResult& r, const std::string& target) {
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [kind, count] : r.errors) errors[kind] = count;
  const nlohmann::json doc = {
      {"target", target},
      {"watchers", o.watchers},
      {"prefix", o.prefix},
      {"probe_rate", o.probe_rate},
      {"seconds", r.seconds},
      {"streaming", r.streaming},
      {"cut_off", r.cut_off},
      {"events", r.events},
      {"events_per_s", r.seconds > 0 ? static_cast<double>(r.events) / r.seconds : 0.0},
      {"progress", r.progress},
      {"probes", r.probes},
      {"probe_events", r.probe_events},
      {"probe_missing", r.probe_missing},
      {"errors", errors},
      {"delay_ms", LatencyJson(r.delay)},
      {"delay_first_ms", LatencyJson(r.delay_first)},
      {"delay_last_ms", LatencyJson(r.delay_last)},
  };
  return doc.dump(2) + "\n";
}

std::string LeaseTextReport(const LeaseExpiryOptions& o, const LoadOptions& load, const LeaseExpiryRun& run,
                            const std::string& target) {
  const LeaseExpiryResult& r = run.leases;
  std::string out = fmt::format(
      "kvctl bench --lease-expiry against {}\n  {} leases of TTL {} s, one key each ({}NNNNNN), granted over "
      "{:.1f} s after {:.1f} s of load; the load: {}\n\n",
      target, o.leases, o.ttl.count(), o.prefix, std::chrono::duration<double>(o.spread).count(),
      std::chrono::duration<double>(load.warmup).count(), Shape(load));
  out += fmt::format("leases       {} of {} granted and attached, deadlines over {:.2f} s\n", r.attached, r.leases,
                     r.deadline_spread_s);
  out += fmt::format("expiries     {} seen on the watch ({} while the load ran), {} missing", r.seen,
                     r.seen_under_load, r.missing);
  if (r.before_deadline > 0) out += fmt::format(", {} before the deadline (delay 0)", r.before_deadline);
  out += "\n";
  if (r.delay.count() > 0) {
    out += "delay        " + LatencyLine(r.delay) + "  (grant acknowledged + TTL -> delete event)\n";
    out += "  from sent  " + LatencyLine(r.delay_from_sent) + "  (grant sent + TTL -> delete event)\n";
  }
  const LoadResult& l = run.load;
  out += fmt::format("load         {} ok, {} errors in {:.2f} s: {:.1f} req/s", l.ok, l.error_count(), l.seconds,
                     l.throughput());
  if (l.latency.count() > 0) out += fmt::format(", p99 {:.3f} ms", Ms(l.latency.ValueAtPercentile(99)));
  out += "\n";
  if (r.watch_resumed > 0) out += fmt::format("watch        resumed {} times\n", r.watch_resumed);
  std::map<std::string, uint64_t> errors = r.errors;
  for (const auto& [kind, count] : l.errors) errors["load " + kind] += count;
  if (!errors.empty()) {
    out += "errors      ";
    for (const auto& [kind, count] : errors) out += fmt::format(" {} {};", kind, count);
    out.back() = '\n';
  }
  return out;
}

std::string LeaseJsonReport(const LeaseExpiryOptions& o, const LoadOptions& load, const LeaseExpiryRun& run,
                            const std::string& target) {
  const LeaseExpiryResult& r = run.leases;
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [kind, count] : r.errors) errors[kind] = count;
  const nlohmann::json doc = {
      {"target", target},
      {"leases", r.leases},
      {"ttl_s", o.ttl.count()},
      {"spread_s", std::chrono::duration<double>(o.spread).count()},
      {"prefix", o.prefix},
      {"attached", r.attached},
      {"seen", r.seen},
      {"seen_under_load", r.seen_under_load},
      {"missing", r.missing},
      {"before_deadline", r.before_deadline},
      {"deadline_spread_s", r.deadline_spread_s},
      {"watch_resumed", r.watch_resumed},
      {"errors", errors},
      {"delay_ms", LatencyJson(r.delay)},
      {"delay_from_sent_ms", LatencyJson(r.delay_from_sent)},
      {"load", LoadJson(load, run.load, target)},
  };
  return doc.dump(2) + "\n";
}

}  // namespace kvctl::bench
