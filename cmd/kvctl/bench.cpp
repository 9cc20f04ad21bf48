// kvctl bench: load against a server (client.addr) or a throw-away one
// in this process (--embedded), then a summary or JSON on stdout. The load
// generator is lib/bench; this file turns flags into its options.
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/command.h"
#include "cmd/kvctl/output.h"
#include "cmd/kvctl/serve_options.h"
#include "cmd/kvctl/text.h"
#include "lib/bench/lease_expiry.h"
#include "lib/bench/load.h"
#include "lib/bench/report.h"
#include "lib/bench/watch_load.h"
#include "lib/client/kv_client.h"
#include "lib/config/file_modes.h"
#include "lib/config/parse.h"
#include "lib/pg/pg_history.h"
#include "lib/server/kv_server.h"

namespace kvctl::cmd {
namespace {

struct BenchArgs {
  int clients = 64;
  std::string duration = "10s";
  uint64_t requests = 0;
  double read_ratio = 0.9;
  double txn_ratio = 0;
  uint64_t keys = 10000;
  double zipf = 0;
  size_t key_size = 16;
  size_t value_size = 100;
  double rate = 0;
  std::string warmup = "0s";
  int threads = 0;
  bool embedded = false;
  bool no_fill = false;
  int watchers = 0;
  std::string watch_prefix = "w/";
  double probe_rate = 20;
  int lease_expiry = 0;
  std::string lease_ttl = "2s";
  std::string lease_prefix = "lease/";
  bool read_ratio_given = false;  // --lease-expiry's load is PUTs only unless --read-ratio says
  OutputFormat output = OutputFormat::kText;
};

core::Result<std::chrono::milliseconds> DurationFlag(const std::string& flag, const std::string& text) {
  auto d = config::ParseDuration(text);
  if (d) return *d;
  // A bare number is the usual slip: say what it probably meant.
  const bool bare_number =
      !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
  if (bare_number) {
    return core::Status::InvalidArgument(
        fmt::format("{} {} has no unit (did you mean {}s? the units are ms, s, m and h)", flag, text, text));
  }
  return core::Status::InvalidArgument(fmt::format("{} {} {}", flag, QuoteBytes(text), d.error().message()));
}

// client.addr ("http://host:port" or "https://host:port", normalized by
// the config layer), the token and the TLS files, checked as the client
// commands check them -> the load's target.
core::Status TargetFrom(const config::Config::Client& c, bench::LoadOptions* o) {
  if (core::Status s = client::CheckClientOptions({c.addr, c.timeout, c.token, c.cacert, c.cert, c.key});
      !s.ok()) {
    return s;
  }
  if (core::Status s = config::CheckPrivateKeyMode("client.key", c.key); !s.ok()) return s;
  const bool https = c.addr.starts_with("https://");
  const std::string hostport = c.addr.substr(c.addr.find("://") + 3);
  const size_t colon = hostport.rfind(':');
  o->host = hostport.substr(0, colon);
  o->port = std::stoi(hostport.substr(colon + 1));
  o->tls = {https, c.cacert, c.cert, c.key};
  o->token = c.token;
  return core::Status::Ok();
}

// A live line on stderr while the load runs, only when stderr is a terminal.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bench::LoadProgress& progress) : progress_(progress) {
    if (!::isatty(STDERR_FILENO)) return;
    thread_ = std::thread([this] { Loop(); });
  }
  ~ProgressPrinter() { Finish(); }
  void Finish() {
    if (!thread_.joinable()) return;
    done_ = true;
    thread_.join();
    std::fputs("\r\033[K", stderr);
  }

 private:
  void Loop() {
    const auto start = std::chrono::steady_clock::now();
    auto last = start;
    uint64_t last_done = 0;
    while (!done_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      const auto now = std::chrono::steady_clock::now();
      if (now - last < std::chrono::milliseconds(500)) continue;
      const uint64_t done = progress_.done.load();
      const double rate = static_cast<double>(done - last_done) / std::chrono::duration<double>(now - last).count();
      const std::string line = bench::ProgressLine(std::chrono::duration<double>(now - start).count(), rate,
                                                   progress_.errors.load(), !progress_.measuring.load());
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      std::fflush(stderr);
      last = now;
      last_done = done;
    }
  }

  bench::LoadProgress& progress_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// A server serving on a free loopback port in a thread of this process,
// stopped when this goes out of scope. The file backend gets a fresh temp
// dir, removed again; the PostgreSQL backend uses the database given
// (postgres.dsn), which must be migrated, and the keys stay there.
class EmbeddedServer {
 public:
  static core::Result<std::unique_ptr<EmbeddedServer>> Start(const config::Config& cfg) {
    std::unique_ptr<EmbeddedServer> e(new EmbeddedServer());
    server::ServeOptions o = ServeOptionsFrom(cfg);
    const bool on_postgres = cfg.storage.backend == "postgres";
    if (on_postgres) {
      e->where_ = fmt::format("on PostgreSQL ({})", pg::DescribeDatabase(cfg.postgres.dsn));
    } else {
      char dir[] = "/tmp/kvctl-bench-XXXXXX";
      if (::mkdtemp(dir) == nullptr) {
        return core::Status::IOError(
            fmt::format("cannot make a temp dir for --embedded: {} (check that /tmp is writable)", std::strerror(errno)));
      }
      e->dir_ = dir;
      o.log.dir = e->dir_;
      e->where_ = fmt::format("(fsync {}) on {}", core::FsyncPolicyName(cfg.storage.fsync), e->dir_);
    }
    o.http.host = "127.0.0.1";
    o.http.port = 0;
    // Plain and open, whatever the config file says of the real server:
    // only this process can reach it, and it measures the store.
    o.http.tls = {};
    o.admission.auth = {};
    o.admission.rate_limit = 0;
    auto s = OpenServer(cfg, std::move(o), e->logger_);
    if (!s && on_postgres) {
      return core::Status(s.error().code(),
                          fmt::format("kvctl bench --embedded --backend postgres: {}", s.error().message()));
    }
    if (!s) return s.error();
    e->server_ = std::move(*s);
    e->thread_ = std::thread([raw = e.get()] { raw->served_ = raw->server_->Run(); });
    return e;
  }
  ~EmbeddedServer() {
    (void)Stop();
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  int port() const { return server_->port(); }
  std::string description() const { return "an embedded server " + where_; }
  core::Status Stop() {
    if (!thread_.joinable()) return served_;
    server_->Shutdown();
    thread_.join();
    return served_;
  }

 private:
  EmbeddedServer() : logger_(core::LogLevel::kWarn, core::LogFormat::kText) {}

  core::Logger logger_;
  std::string where_;  // the backend, for the report
  std::string dir_;    // the file backend's temp dir
  std::unique_ptr<server::KvServer> server_;
  std::thread thread_;
  core::Status served_;
};

core::Result<bench::LoadOptions> LoadOptionsFrom(const BenchArgs& a, const config::Config& cfg) {
  bench::LoadOptions o;
  o.clients = a.clients;
  o.threads = a.threads;
  o.requests = a.requests;
  o.read_ratio = a.read_ratio;
  o.txn_ratio = a.txn_ratio;
  o.keys = a.keys;
  o.zipf_s = a.zipf;
  o.key_size = a.key_size;
  o.value_size = a.value_size;
  o.rate = a.rate;
  o.timeout = cfg.client.timeout;
  auto duration = DurationFlag("--duration", a.duration);
  if (!duration) return duration.error();
  o.duration = *duration;
  auto warmup = DurationFlag("--warmup", a.warmup);
  if (!warmup) return warmup.error();
  o.warmup = *warmup;
  if (core::Status s = bench::Validate(o); !s.ok()) return s;
  return o;
}

// --watchers N: hold N watch streams and probe the event delay, beside
// whatever PUT load runs elsewhere (bench/run.sh --only watch).
core::Status RunWatchBench(const BenchArgs& args, const bench::LoadOptions& load, const std::string& target) {
  bench::WatchLoadOptions o;
  o.host = load.host;
  o.port = load.port;
  o.token = load.token;
  o.watchers = args.watchers;
  o.threads = args.threads;
  o.prefix = args.watch_prefix;
  o.probe_rate = args.probe_rate;
  o.duration = load.duration;
  o.warmup = load.warmup;
  o.timeout = load.timeout;
  if (core::Status s = bench::ValidateWatchLoad(o); !s.ok()) return s;
  auto result = bench::RunWatchLoad(o);
  if (!result) return result.error();
  const std::string report = args.output == OutputFormat::kJson ? bench::WatchJsonReport(o, *result, target)
                                                                 : bench::WatchTextReport(o, *result, target);
  if (core::Status s = WriteStdout(report); !s.ok()) return s;
  if (result->probes == 0 || result->probe_events == 0) {
    return core::Status::Unavailable(
        "no probe write's event reached a watcher (the report above counts the errors by kind)");
  }
  return core::Status::Ok();
}

// Every key gets a value first, so GETs measure reads, not 404s (unless
// the load has no GETs, or --no-fill).
core::Status FillKeys(const bench::LoadOptions& options, bool no_fill) {
  if (options.read_ratio <= 0 || no_fill) return core::Status::Ok();
  bench::LoadOptions fill = options;
  fill.fill = true;
  fill.rate = 0;
  // Random streams of their own: with the run's seed, the fill's value
  // stamps would come again in the run, and a PUT of the value a key
  // already holds changes nothing, so it would count a write that is none.
  fill.seed = options.seed + 1;
  auto filled = bench::RunLoad(fill);
  if (!filled) return filled.error();
  if (filled->error_count() > 0) {
    return core::Status::Unavailable(fmt::format(
        "filling the {} keys failed: {} of the PUTs got errors, the first: {} (is the server writable? its "
        "/readyz says; --no-fill skips the fill)",
        fill.keys, filled->error_count(), filled->errors.begin()->first));
  }
  return core::Status::Ok();
}

// --lease-expiry N: the load, and meanwhile N leases granted to end within
// a second, timed from each deadline to its key's delete event.
core::Status RunLeaseExpiryBench(const BenchArgs& args, const bench::LoadOptions& load, const std::string& target) {
  bench::LeaseExpiryOptions o;
  o.leases = args.lease_expiry;
  o.prefix = args.lease_prefix;
  auto ttl = DurationFlag("--lease-ttl", args.lease_ttl);
  if (!ttl) return ttl.error();
  if (ttl->count() % 1000 != 0) {
    return core::Status::InvalidArgument(
        fmt::format("--lease-ttl {} is not whole seconds (a lease's TTL is in seconds)", args.lease_ttl));
  }
  o.ttl = std::chrono::duration_cast<std::chrono::seconds>(*ttl);
  if (core::Status s = bench::ValidateLeaseExpiry(o, load); !s.ok()) return s;
  auto run = bench::RunLeaseExpiry(o, load);
  if (!run) return run.error();
  const std::string report = args.output == OutputFormat::kJson ? bench::LeaseJsonReport(o, load, *run, target)
                                                                 : bench::LeaseTextReport(o, load, *run, target);
  if (core::Status s = WriteStdout(report); !s.ok()) return s;
  const bench::LeaseExpiryResult& r = run->leases;
  if (r.attached < static_cast<uint64_t>(r.leases) || r.missing > 0) {
    return core::Status::Unavailable(fmt::format(
        "{} of the {} leases were not seen to expire ({} not granted and attached, {} ends missing from the "
        "watch; the report above counts the errors by kind)",
        static_cast<uint64_t>(r.leases) - r.seen, r.leases, static_cast<uint64_t>(r.leases) - r.attached,
        r.missing));
  }
  return core::Status::Ok();
}

core::Status RunBench(const CommandContext& ctx, const BenchArgs& args) {
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  if (args.watchers > 0) {
    if (args.embedded) {
      return core::Status::InvalidArgument(
          "--watchers runs against a server of its own (--addr), not --embedded (start one with kvctl serve)");
    }
    if (args.requests > 0) return core::Status::InvalidArgument("--watchers runs by --duration, not --requests");
    if (args.lease_expiry != 0) return core::Status::InvalidArgument("give --watchers or --lease-expiry, not both");
  }
  BenchArgs shaped = args;
  if (args.lease_expiry != 0) {
    if (args.requests > 0) return core::Status::InvalidArgument("--lease-expiry runs by --duration, not --requests");
    if (!args.read_ratio_given) shaped.read_ratio = 0;
  }
  auto options = LoadOptionsFrom(shaped, *cfg);
  if (!options) return options.error();

  std::unique_ptr<EmbeddedServer> embedded;
  std::string target;
  if (args.embedded) {
    auto e = EmbeddedServer::Start(*cfg);
    if (!e) return e.error();
    embedded = std::move(*e);
    options->host = "127.0.0.1";
    options->port = embedded->port();
    target = embedded->description();
  } else {
    if (core::Status s = TargetFrom(cfg->client, &*options); !s.ok()) return s;
    target = cfg->client.addr;
  }
  if (args.watchers > 0) {
    if (options->tls.enabled) {
      return core::Status::InvalidArgument("--watchers speaks plain HTTP only (give an http:// --addr)");
    }
    return RunWatchBench(args, *options, target);
  }
  if (args.lease_expiry != 0) {
    if (options->tls.enabled) {
      return core::Status::InvalidArgument("--lease-expiry speaks plain HTTP only (give an http:// --addr)");
    }
    if (core::Status s = FillKeys(*options, args.no_fill); !s.ok()) return s;
    return RunLeaseExpiryBench(args, *options, target);
  }

  if (core::Status s = FillKeys(*options, args.no_fill); !s.ok()) return s;

  bench::LoadProgress progress;
  ProgressPrinter printer(progress);
  auto result = bench::RunLoad(*options, &progress);
  printer.Finish();
  if (!result) return result.error();
  if (embedded) {
    if (core::Status s = embedded->Stop(); !s.ok()) return s;
  }
  const std::string report = args.output == OutputFormat::kJson ? bench::JsonReport(*options, *result, target)
                                                                 : bench::TextReport(*options, *result, target);
  if (core::Status s = WriteStdout(report); !s.ok()) return s;
  if (result->ok == 0 && result->error_count() > 0) {
    return core::Status::Unavailable("every request failed (the report above counts the errors by kind)");
  }
  return core::Status::Ok();
}

}  // namespace

void AddBenchCommand(CLI::App& app, CommandContext& ctx) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* sub = app.add_subcommand(
      "bench", "Load a server with GETs and PUTs and report throughput and latency percentiles");
  sub->group(kGroupTools);
  sub->add_option("-c,--clients", a->clients, "Keep-alive connections, each with one request in flight")
      ->capture_default_str();
  sub->add_option("-d,--duration", a->duration, "How long to measure (e.g. 10s, 1m)")->capture_default_str();
  sub->add_option("-n,--requests", a->requests, "Stop after this many requests instead of after --duration");
  sub->add_option("--read-ratio", a->read_ratio, "Share of GETs, 0 to 1; the rest are PUTs")->capture_default_str();
  sub->add_option("--txn-ratio", a->txn_ratio,
                  "Share of the PUTs sent instead as transactions (POST /v1/txn) of 3 PUTs, of keys k, k+1, "
                  "k+2; 0 to 1")
      ->capture_default_str();
  sub->add_option("--keys", a->keys, "Distinct keys, chosen uniformly unless --zipf")->capture_default_str();
  sub->add_option("--zipf", a->zipf, "Skew the key choice: Zipf exponent S (0: uniform; 0.99 is YCSB's)");
  sub->add_option("--key-size", a->key_size, "Bytes per key (\"k\" and zero-padded digits)")->capture_default_str();
  sub->add_option("--value-size", a->value_size, "Bytes per PUT value")->capture_default_str();
  sub->add_option("--rate", a->rate,
                  "Open loop: send this many requests a second in all and measure latency from when "
                  "each was due (0: closed loop, as fast as answers come)");
  sub->add_option("--warmup", a->warmup, "Run the load this long before measuring")->capture_default_str();
  sub->add_option("--threads", a->threads, "Load generator threads (0: one per core)");
  sub->add_flag("--embedded", a->embedded,
                "Start a throw-away server in this process and load it: on a temp dir, or with --backend "
                "postgres on the migrated database --dsn names (storage and postgres flags apply)");
  sub->add_flag("--no-fill", a->no_fill, "Do not PUT every key once before measuring (GETs may then 404)");
  sub->add_option("--watchers", a->watchers,
                  "Instead of a GET/PUT load: hold N watch streams on --watch-prefix for --duration and report "
                  "the delay from a probe PUT's acknowledgement to its event on each watcher");
  sub->add_option("--watch-prefix", a->watch_prefix, "With --watchers: the prefix watched; probes write PREFIXprobe")
      ->capture_default_str();
  sub->add_option("--probe-rate", a->probe_rate, "With --watchers: probe PUTs a second")->capture_default_str();
  sub->add_option("--lease-expiry", a->lease_expiry,
                  "Beside the load (PUTs only unless --read-ratio): grant N leases over one second after --warmup, "
                  "attach a key to each, and report the delay from each deadline to its key's delete event on a watch");
  sub->add_option("--lease-ttl", a->lease_ttl, "With --lease-expiry: the leases' TTL, whole seconds")
      ->capture_default_str();
  sub->add_option("--lease-prefix", a->lease_prefix,
                  "With --lease-expiry: the attached keys are PREFIX000000, PREFIX000001, ...; the watch is on PREFIX")
      ->capture_default_str();
  AddOutputOption(*sub, a->output);
  config::AddSettingFlags(*sub, config::Scope::kBench, ctx.flags);
  CLI::Option* read_ratio = sub->get_option("--read-ratio");
  sub->callback([&ctx, a, read_ratio] {
    a->read_ratio_given = read_ratio->count() > 0;
    ctx.run = [&ctx, a] { return RunBench(ctx, *a); };
  });
}

}  // namespace kvctl::cmd
