#include "lib/config/settings.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "lib/config/identities.h"
#include "lib/config/parse.h"
#include "lib/config/redact.h"

namespace kvctl::config {
namespace {

using core::FsyncPolicy;
using core::Result;
using core::Status;
using std::chrono::milliseconds;

// Names one Config field as (section, member), readable and writable, so a
// table row can say where its value goes without a hand-written lambda.
template <typename S, typename T>
struct FieldRef {
  using Type = T;
  S Config::*section;
  T S::*member;
  T& operator()(Config& c) const { return (c.*section).*member; }
  const T& operator()(const Config& c) const { return (c.*section).*member; }
};

template <typename S, typename T>
FieldRef<S, T> Field(S Config::*section, T S::*member) {
  return {section, member};
}

// "from A to B", "of at least A", "up to B": `max` absent means unbounded.
std::string RangePhrase(const std::string& min, const std::optional<std::string>& max,
                        bool min_is_zero) {
  if (!max) return "of at least " + min;
  if (min_is_zero) return "up to " + *max;
  return "from " + min + " to " + *max;
}

template <typename S, typename T>
ValueCodec IntValue(FieldRef<S, T> field, int64_t min,
                    int64_t max = static_cast<int64_t>(std::numeric_limits<T>::max())) {
  bool unbounded = max == static_cast<int64_t>(std::numeric_limits<T>::max());
  std::string accepted =
      "an integer " + RangePhrase(std::to_string(min),
                                  unbounded ? std::nullopt : std::optional(std::to_string(max)),
                                  false);
  ValueCodec codec;
  codec.kind = Kind::kInt;
  codec.accepted = accepted;
  codec.parse = [=](std::string_view text, Config& config) -> Status {
    Result<int64_t> v = ParseInteger(text);
    if (!v) return v.error();
    if (*v < min || *v > max) return Status::InvalidArgument("must be " + accepted);
    field(config) = static_cast<T>(*v);
    return Status::Ok();
  };
  codec.text = [=](const Config& config) { return std::to_string(field(config)); };
  return codec;
}

template <typename S>
ValueCodec DurationValue(FieldRef<S, milliseconds> field, milliseconds min,
                         std::optional<milliseconds> max = std::nullopt) {
  std::string accepted =
      "a duration " + RangePhrase(FormatDuration(min),
                                  max ? std::optional(FormatDuration(*max)) : std::nullopt,
                                  min.count() == 0);
  ValueCodec codec;
  codec.kind = Kind::kDuration;
  codec.accepted = accepted;
  codec.parse = [=](std::string_view text, Config& config) -> Status {
    Result<milliseconds> v = ParseDuration(text);
    if (!v) return v.error();
    if (*v < min || (max && *v > *max)) return Status::InvalidArgument("must be " + accepted);
    field(config) = *v;
    return Status::Ok();
  };
  codec.text = [=](const Config& config) { return FormatDuration(field(config)); };
  return codec;
}

template <typename S, typename T>
ValueCodec BytesValue(FieldRef<S, T> field, uint64_t min, uint64_t max) {
  static_assert(std::is_unsigned_v<T>);
  std::string accepted =
      "a size " + RangePhrase(FormatByteSize(min), FormatByteSize(max), min == 0);
  ValueCodec codec;
  codec.kind = Kind::kBytes;
  codec.accepted = accepted;
  codec.parse = [=](std::string_view text, Config& config) -> Status {
    Result<uint64_t> v = ParseByteSize(text);
    if (!v) return v.error();
    if (*v < min || *v > max || *v > std::numeric_limits<T>::max()) {
      return Status::InvalidArgument("must be " + accepted);
    }
    field(config) = static_cast<T>(*v);
    return Status::Ok();
  };
  codec.text = [=](const Config& config) { return FormatByteSize(field(config)); };
  return codec;
}

// `unavailable` are values kvctl knows of but this build does not offer,
// so the user hears "not available in this version" instead of "unknown".
template <typename S, typename T>
ValueCodec EnumValue(FieldRef<S, T> field, std::vector<std::pair<std::string, T>> choices,
                     std::vector<std::string> unavailable = {}) {
  ValueCodec codec;
  codec.kind = Kind::kEnum;
  for (const auto& choice : choices) codec.allowed.push_back(choice.first);
  std::string list = fmt::format("{}", fmt::join(codec.allowed, ", "));
  codec.accepted = "one of: " + list;
  codec.parse = [=](std::string_view text, Config& config) -> Status {
    for (const auto& [name, value] : choices) {
      if (text == name) {
        field(config) = value;
        return Status::Ok();
      }
    }
    if (std::find(unavailable.begin(), unavailable.end(), text) != unavailable.end()) {
      return Status::InvalidArgument(
          "is not available in this version of kvctl (available: " + list + ")");
    }
    return Status::InvalidArgument("is not one of: " + list);
  };
  codec.text = [=](const Config& config) {
    for (const auto& [name, value] : choices) {
      if (field(config) == value) return name;
    }
    return std::string("?");  // unreachable: only parse() stores values
  };
  return codec;
}

// An enum stored as its own name.
template <typename S>
ValueCodec StringEnum(FieldRef<S, std::string> field, const std::vector<std::string>& names,
                      std::vector<std::string> unavailable = {}) {
  std::vector<std::pair<std::string, std::string>> choices;
  for (const auto& n : names) choices.emplace_back(n, n);
  return EnumValue(field, std::move(choices), std::move(unavailable));
}

// A string checked (and possibly normalized) by `check`.
template <typename S>
ValueCodec StringValue(FieldRef<S, std::string> field, std::string accepted,
                       std::function<Result<std::string>(std::string_view)> check) {
  ValueCodec codec;
  codec.kind = Kind::kString;
  codec.accepted = std::move(accepted);
  codec.parse = [=](std::string_view text, Config& config) -> Status {
    Result<std::string> v = check(text);
    if (!v) return v.error();
    field(config) = std::move(*v);
    return Status::Ok();
  };
  codec.text = [=](const Config& config) { return field(config); };
  return codec;
}

template <typename S>
ValueCodec BoolValue(FieldRef<S, bool> field) {
  ValueCodec codec;
  codec.kind = Kind::kBool;
  codec.accepted = "true or false";
  codec.allowed = {"true", "false"};
  codec.parse = [=](std::string_view text, Config& config) -> Status {
    if (text == "true" || text == "1") {
      field(config) = true;
    } else if (text == "false" || text == "0") {
      field(config) = false;
    } else {
      return Status::InvalidArgument("is not a boolean (write true or false)");
    }
    return Status::Ok();
  };
  codec.text = [=](const Config& config) { return std::string(field(config) ? "true" : "false"); };
  return codec;
}

// `codec` (an enum stored as its name) that also takes the booleans of
// the setting's past: true and 1 store `if_true`, false and 0 `if_false`,
// from the config file (TOML true/false), the environment and flags.
template <typename S>
ValueCodec WithBooleans(ValueCodec codec, FieldRef<S, std::string> field, std::string if_true,
                        std::string if_false) {
  codec.takes_boolean = true;
  codec.parse = [field, if_true, if_false, parse = std::move(codec.parse)](std::string_view text,
                                                                          Config& config) -> Status {
    if (text == "true" || text == "1") {
      field(config) = if_true;
      return Status::Ok();
    }
    if (text == "false" || text == "0") {
      field(config) = if_false;
      return Status::Ok();
    }
    Status st = parse(text, config);
    if (st.ok()) return st;
    return Status::InvalidArgument(st.message() + " (or true = " + if_true + ", false = " + if_false + ")");
  };
  return codec;
}

// Tables of identities ([[auth.tokens]], [[auth.certs]]): read from the
// config file by config.cpp (identities.h); from anywhere else only the
// empty default is accepted.
template <typename S>
ValueCodec IdentitiesValue(FieldRef<S, std::vector<AuthIdentity>> field, bool certs) {
  ValueCodec codec;
  codec.kind = Kind::kIdentities;
  codec.accepted = "an array of tables in the config file";
  codec.certs = certs;
  codec.identities = [=](Config& config) -> std::vector<AuthIdentity>& { return field(config); };
  codec.parse = [=](std::string_view text, Config& config) -> Status {
    if (!text.empty()) {
      return Status::InvalidArgument(
          "cannot be given this way: it is an array of tables, written in the config file "
          "or in the file auth.file names (KVCTL_AUTH_FILE, --auth-file)");
    }
    field(config).clear();
    return Status::Ok();
  };
  // Shown (config show) as the inline TOML array it is.
  codec.text = [=](const Config& config) { return IdentitiesToml(field(config), certs); };
  return codec;
}

// Any text, "" included (for a path or a DSN, "" means "not set").
Result<std::string> AnyText(std::string_view text) { return std::string(text); }

Result<std::string> NonEmpty(std::string_view text) {
  if (text.empty()) return Status::InvalidArgument("must not be empty");
  return std::string(text);
}

Result<std::string> ListenAddressOrOff(std::string_view text) {
  if (text.empty()) return std::string();
  return ParseListenAddress(text);
}

// "" or http://host:port, host:port as a listen address is written.
Result<std::string> PeerUrl(std::string_view text) {
  if (text.empty()) return std::string();
  constexpr std::string_view kScheme = "http://";
  if (!text.starts_with(kScheme)) {
    return Status::InvalidArgument(
        "must be http://host:port (peers forward writes over plain HTTP; with TLS on, leave it empty: the server "
        "then never becomes the writer)");
  }
  Result<std::string> address = ParseListenAddress(text.substr(kScheme.size()));
  if (!address) return address.error();
  return std::string(kScheme) + *address;
}

constexpr uint64_t KiB = uint64_t{1} << 10;
constexpr uint64_t MiB = uint64_t{1} << 20;
constexpr uint64_t GiB = uint64_t{1} << 30;

std::vector<Setting> BuildSettings() {
  using C = Config;
  const std::vector<Scope> kServe = {Scope::kServe};
  const std::vector<Scope> kClient = {Scope::kClient};
  const std::vector<Scope> kEveryCommand = {Scope::kServe, Scope::kClient, Scope::kCompact,
                                            Scope::kReplay, Scope::kBench, Scope::kMigrate};
  const std::vector<Scope> kDataDirReaders = {Scope::kServe, Scope::kCompact, Scope::kReplay};
  const std::vector<Scope> kServerClients = {Scope::kClient, Scope::kCompact, Scope::kBench};
  const std::vector<Scope> kServeBench = {Scope::kServe, Scope::kBench};
  const std::vector<Scope> kDatabaseUsers = {Scope::kServe, Scope::kMigrate, Scope::kReplay,
                                             Scope::kBench};
  return {
      // [server]
      {.key = "server.listen",
       .value = StringValue(Field(&C::server, &C::Server::listen),
                            "host:port with port 0..65535 (0 = any free port)", ParseListenAddress),
       .default_value = "127.0.0.1:7070",
       .alias = "listen",
       .scopes = kServe,
       .help = "address the HTTP server listens on"},
      {.key = "server.etcd_listen",
       .value = StringValue(Field(&C::server, &C::Server::etcd_listen),
                            "host:port with port 0..65535 (0 = any free port), or empty: not served",
                            ListenAddressOrOff),
       .default_value = "",
       .alias = "etcd-listen",
       .scopes = kServe,
       .help = "address etcd's JSON API (v3 grpc-gateway) listens on, over the same store"},
      {.key = "server.etcd_grpc_listen",
       .value = StringValue(Field(&C::server, &C::Server::etcd_grpc_listen),
                            "host:port with port 0..65535 (0 = any free port), or empty: not served",
                            ListenAddressOrOff),
       .default_value = "",
       .alias = "etcd-grpc-listen",
       .scopes = kServe,
       .help = "address etcd's gRPC API (v3, for etcdctl and etcd's clients) listens on, over the same "
               "store, with the same TLS, auth and rate limit"},
      {.key = "server.io_threads",
       .value = IntValue(Field(&C::server, &C::Server::io_threads), 0, 256),
       .default_value = "0",
       .alias = "",
       .scopes = kServe,
       .help = "event-loop threads that read requests and answer reads; 0: one per CPU core"},
      {.key = "server.threads",
       .value = IntValue(Field(&C::server, &C::Server::threads), 1, 16384),
       .default_value = "16",
       .alias = "threads",
       .scopes = kServe,
       .help = "worker threads for requests that may block, such as a compaction; key writes "
               "wait for their group commit without holding one"},
      {.key = "server.max_connections",
       .value = IntValue(Field(&C::server, &C::Server::max_connections), 1, 1000000),
       .default_value = "10000",
       .alias = "",
       .scopes = kServe,
       .help = "open client connections at most; more are answered 503 and closed"},
      {.key = "server.keepalive_timeout",
       .value = DurationValue(Field(&C::server, &C::Server::keepalive_timeout), milliseconds(1000)),
       .default_value = "5s",
       .alias = "",
       .scopes = kServe,
       .help = "an idle keep-alive connection is closed after this"},
      {.key = "server.keepalive_max_requests",
       .value = IntValue(Field(&C::server, &C::Server::keepalive_max_requests), 1),
       .default_value = "100000",
       .alias = "",
       .scopes = kServe,
       .help = "requests served on one keep-alive connection before it is closed"},
      {.key = "server.read_timeout",
       .value = DurationValue(Field(&C::server, &C::Server::read_timeout), milliseconds(1000)),
       .default_value = "10s",
       .alias = "",
       .scopes = kServe,
       .help = "time allowed to receive a request"},
      {.key = "server.write_timeout",
       .value = DurationValue(Field(&C::server, &C::Server::write_timeout), milliseconds(1000)),
       .default_value = "10s",
       .alias = "",
       .scopes = kServe,
       .help = "how long a client may take no byte of its answers before its connection is "
               "closed"},
      {.key = "server.max_header_bytes",
       // At least 8 KiB: the request line alone may take that much (its own
       // limit, 414), and the longest key travels in it percent-encoded.
       .value = BytesValue(Field(&C::server, &C::Server::max_header_bytes), 8 * KiB, 1 * MiB),
       .default_value = "16KiB",
       .alias = "",
       .scopes = kServe,
       .help = "largest request line plus header fields; more is refused with 431"},
      {.key = "server.shutdown_timeout",
       .value = DurationValue(Field(&C::server, &C::Server::shutdown_timeout), milliseconds(0)),
       .default_value = "10s",
       .alias = "",
       .scopes = kServe,
       .help = "on SIGTERM/SIGINT, how long in-flight requests may take to finish"},
      {.key = "server.watch_progress_interval",
       // The watch hub looks for idle watchers once a second: less would not hold.
       .value = DurationValue(Field(&C::server, &C::Server::watch_progress_interval), milliseconds(1000),
                              milliseconds(3600 * 1000)),
       .default_value = "10s",
       .alias = "",
       .scopes = kServe,
       .help = "an idle watch gets a progress line ({\"progress\": REV}) at least this often"},
      {.key = "server.watch_max_lag",
       .value = IntValue(Field(&C::server, &C::Server::watch_max_lag), 1, 1000000000),
       .default_value = "10000",
       .alias = "",
       .scopes = kServe,
       .help = "a watcher that falls more than this many revisions behind is cut off with a "
               "\"lagging\" line (it resumes with from=)"},

      // [storage]
      {.key = "storage.backend",
       .value = StringEnum(Field(&C::storage, &C::Storage::backend), {"file", "postgres"}),
       .default_value = "file",
       .alias = "backend",
       .scopes = {Scope::kServe, Scope::kReplay, Scope::kBench},
       .help = "where the transaction log is kept: file (storage.data_dir) or postgres "
               "(postgres.dsn, shared by several servers)"},
      {.key = "storage.data_dir",
       .value =
           StringValue(Field(&C::storage, &C::Storage::data_dir), "a non-empty path", NonEmpty),
       .default_value = "kvctl-data",
       .alias = "data-dir",
       .scopes = kDataDirReaders,
       .help = "directory holding the file backend's log segments",
       .hint = ValueHint::kDir},
      {.key = "storage.fsync",
       .value = EnumValue(
           Field(&C::storage, &C::Storage::fsync),
           std::vector<std::pair<std::string, FsyncPolicy>>{{"always", FsyncPolicy::kAlways},
                                                            {"interval", FsyncPolicy::kInterval},
                                                            {"never", FsyncPolicy::kNever}}),
       .default_value = "always",
       .alias = "fsync",
       .scopes = kServeBench,
       .help = "when log writes reach stable storage: always (before acknowledging), "
               "interval (every fsync_interval), never (left to the OS)"},
      {.key = "storage.fsync_interval",
       .value = DurationValue(Field(&C::storage, &C::Storage::fsync_interval), milliseconds(1),
                              milliseconds(60 * 60 * 1000)),
       .default_value = "100ms",
       .alias = "",
       .scopes = kServeBench,
       .help = "with fsync = interval, how often the log is synced"},
      {.key = "storage.segment_bytes",
       .value = BytesValue(Field(&C::storage, &C::Storage::segment_bytes), 4 * KiB, 4 * GiB),
       .default_value = "64MiB",
       .alias = "",
       .scopes = kServe,
       .help = "size at which a log segment is closed and a new one started"},
      {.key = "storage.compact_dead_percent",
       .value = IntValue(Field(&C::storage, &C::Storage::compact_dead_percent), 0, 100),
       .default_value = "50",
       .alias = "",
       .scopes = kServe,
       .help = "compact automatically once this share of the log (in percent) is history the "
               "live keys no longer need; 0 turns automatic compaction off"},
      {.key = "storage.compact_min_bytes",
       .value = BytesValue(Field(&C::storage, &C::Storage::compact_min_bytes), 0, 1024 * GiB),
       .default_value = "64MiB",
       .alias = "",
       .scopes = kServe,
       .help = "no automatic compaction while the log is smaller than this"},
      {.key = "storage.history_retention",
       .value = IntValue(Field(&C::storage, &C::Storage::history_retention), 0, 1000000000),
       .default_value = "10000",
       .alias = "",
       .scopes = kServe,
       .help = "compaction keeps at least this many of the newest revisions as history for "
               "watches (GET /v1/watch?from=); 0 keeps none beyond what compaction must"},

      // [postgres]
      {.key = "postgres.dsn",
       .value = StringValue(Field(&C::postgres, &C::Postgres::dsn),
                            "a libpq connection string or postgres:// URI", AnyText),
       .default_value = "",
       .alias = "dsn",
       .scopes = kDatabaseUsers,
       .help = "the PostgreSQL database (libpq syntax; several hosts with "
               "target_session_attrs=read-write survive a failover)",
       .secret = Secret::kPassword},
      {.key = "postgres.pool_min",
       .value = IntValue(Field(&C::postgres, &C::Postgres::pool_min), 0, 64),
       .default_value = "1",
       .alias = "",
       .scopes = kServeBench,
       .help = "connections opened at start and kept open"},
      {.key = "postgres.pool_max",
       .value = IntValue(Field(&C::postgres, &C::Postgres::pool_max), 1, 64),
       .default_value = "4",
       .alias = "",
       .scopes = kServeBench,
       .help = "most connections a server opens (writes, compaction, reloads; LISTEN takes one "
               "more)"},
      {.key = "postgres.pool_timeout",
       .value = DurationValue(Field(&C::postgres, &C::Postgres::pool_timeout), milliseconds(1)),
       .default_value = "5s",
       .alias = "",
       .scopes = kServeBench,
       .help = "how long a write waits for a free connection before it gets 503"},
      {.key = "postgres.connect_timeout",
       .value = DurationValue(Field(&C::postgres, &C::Postgres::connect_timeout), milliseconds(1000),
                              milliseconds(3600 * 1000)),
       .default_value = "5s",
       .alias = "",
       .scopes = kDatabaseUsers,
       .help = "give up on connecting to one host after this (whole seconds)"},
      {.key = "postgres.reconnect_max_backoff",
       .value = DurationValue(Field(&C::postgres, &C::Postgres::reconnect_max_backoff),
                              milliseconds(100), milliseconds(3600 * 1000)),
       .default_value = "5s",
       .alias = "",
       .scopes = kServeBench,
       .help = "while the database is away, retries start at 100ms and double up to this"},
      {.key = "postgres.peer_url",
       .value = StringValue(Field(&C::postgres, &C::Postgres::peer_url), "\"\" or http://host:port", PeerUrl),
       .default_value = "",
       .alias = "",
       .scopes = kServe,
       .help = "where the other servers of the database reach this one's HTTP listener to forward their "
               "writes while it is the writer; \"\" = http://<server.listen> unless its host is a "
               "wildcard, its port 0 or TLS is on (then this server never becomes the writer)"},
      {.key = "postgres.migrate_lock_timeout",
       .value = DurationValue(Field(&C::postgres, &C::Postgres::migrate_lock_timeout),
                              milliseconds(0)),
       .default_value = "15s",
       .alias = "",
       .scopes = {Scope::kMigrate},
       .help = "how long kvctl migrate waits for another migrate run to finish"},

      // [limits]
      {.key = "limits.max_key_bytes",
       // 2048: a key travels percent-encoded (up to 3 bytes per byte) in a
       // request line the HTTP transport caps at 8 KiB, so longer keys could
       // never arrive.
       .value = IntValue(Field(&C::limits, &C::Limits::max_key_bytes), 1, 2048),
       .default_value = "1024",
       .alias = "",
       .scopes = kServe,
       .help = "longest accepted key, in bytes"},
      {.key = "limits.max_value_bytes",
       .value = BytesValue(Field(&C::limits, &C::Limits::max_value_bytes), 0, 512 * MiB),
       .default_value = "1MiB",
       .alias = "",
       .scopes = kServe,
       .help = "largest value: the server refuses a larger request body, and kvctl put a "
               "larger input before sending it"},
      {.key = "limits.max_txn_ops",
       .value = IntValue(Field(&C::limits, &C::Limits::max_txn_ops), 1, 10000),
       .default_value = "128",
       .alias = "",
       .scopes = kServe,
       .help = "most compares plus ops in one transaction (POST /v1/txn)"},

      // [tls]
      {.key = "tls.cert",
       .value = StringValue(Field(&C::tls, &C::Tls::cert), "a path, or empty", AnyText),
       .default_value = "",
       .alias = "",
       .scopes = kServe,
       .help = "PEM certificate (chain) of the server; set: serve HTTPS only",
       .hint = ValueHint::kFile},
      {.key = "tls.key",
       .value = StringValue(Field(&C::tls, &C::Tls::key), "a path, or empty", AnyText),
       .default_value = "",
       .alias = "",
       .scopes = kServe,
       .help = "PEM private key of tls.cert (unencrypted; keep it readable by kvctl only)",
       .hint = ValueHint::kFile},
      {.key = "tls.client_ca",
       .value = StringValue(Field(&C::tls, &C::Tls::client_ca), "a path, or empty", AnyText),
       .default_value = "",
       .alias = "",
       .scopes = kServe,
       .help = "PEM CA certificate(s); set: every client must present a certificate signed by it",
       .hint = ValueHint::kFile},
      {.key = "tls.client_crl",
       .value = StringValue(Field(&C::tls, &C::Tls::client_crl), "a path, or empty", AnyText),
       .default_value = "",
       .alias = "",
       .scopes = kServe,
       .help = "PEM certificate revocation list(s) of tls.client_ca; set: a revoked client certificate "
               "is refused. Reread on SIGHUP and when the file changes",
       .hint = ValueHint::kFile},
      {.key = "tls.min_version",
       .value = StringEnum(Field(&C::tls, &C::Tls::min_version), {"1.2", "1.3"}),
       .default_value = "1.2",
       .alias = "",
       .scopes = kServe,
       .help = "oldest TLS version accepted"},
      {.key = "tls.ciphers",
       // The same text as lib/server/tls.h's kDefaultTls12Ciphers (a unit
       // test checks): Mozilla's "intermediate" TLS 1.2 ciphers without DHE,
       // so every one has forward secrecy and an AEAD cipher.
       .value = StringValue(Field(&C::tls, &C::Tls::ciphers), "an OpenSSL cipher list", NonEmpty),
       .default_value = "ECDHE+AESGCM:ECDHE+CHACHA20",
       .alias = "",
       .scopes = kServe,
       .help = "TLS 1.2 ciphers, in OpenSSL's syntax; the default allows only ECDHE key exchange with "
               "AES-GCM or ChaCha20-Poly1305 (forward secrecy, no CBC, no static RSA)"},
      {.key = "tls.ciphersuites",
       .value = StringValue(Field(&C::tls, &C::Tls::ciphersuites), "OpenSSL TLS 1.3 cipher suites, or empty",
                            AnyText),
       .default_value = "",
       .alias = "",
       .scopes = kServe,
       .help = "TLS 1.3 cipher suites, in OpenSSL's syntax; empty: OpenSSL's (all of them AEAD with "
               "forward secrecy)"},

      // [auth]
      {.key = "auth.tokens",
       .value = IdentitiesValue(Field(&C::auth, &C::Auth::tokens), false),
       .default_value = "",
       .alias = "",
       .scopes = kServe,
       .help = "bearer tokens: [[auth.tokens]] name, sha256 (of the token) and grants = "
               "[{prefix, ops = [read, write, admin]}]; any token or cert turns auth on"},
      {.key = "auth.certs",
       .value = IdentitiesValue(Field(&C::auth, &C::Auth::certs), true),
       .default_value = "",
       .alias = "",
       .scopes = kServe,
       .help = "client certificates as identities: [[auth.certs]] cn (the subject Common Name) "
               "and grants; needs tls.client_ca"},
      {.key = "auth.file",
       .value = StringValue(Field(&C::auth, &C::Auth::file), "a path, or empty", AnyText),
       .default_value = "",
       .alias = "",
       .scopes = kServe,
       .help = "a TOML file of more [[tokens]] and [[certs]], in the same shape",
       .hint = ValueHint::kFile},
      {.key = "auth.metrics",
       .value = StringEnum(Field(&C::auth, &C::Auth::metrics), {"open", "admin"}),
       .default_value = "open",
       .alias = "",
       .scopes = kServe,
       .help = "with auth on, whether /metrics is open or needs the admin grant"},

      // [ratelimit]
      {.key = "ratelimit.rate",
       .value = IntValue(Field(&C::ratelimit, &C::RateLimit::rate), 0, 1000000),
       .default_value = "0",
       .alias = "",
       .scopes = kServe,
       .help = "requests per second each client may make (its identity, else its IP); 0 = no limit"},
      {.key = "ratelimit.burst",
       .value = IntValue(Field(&C::ratelimit, &C::RateLimit::burst), 0, 1000000),
       .default_value = "0",
       .alias = "",
       .scopes = kServe,
       .help = "requests a client may make at once before the rate applies; 0 = the same as rate"},

      // [log]
      {.key = "log.level",
       .value = StringEnum(Field(&C::log, &C::Log::level), {"debug", "info", "warn", "error"}),
       .default_value = "info",
       .alias = "log-level",
       .scopes = kEveryCommand,
       .help = "least severe log message written"},
      {.key = "log.format",
       .value = StringEnum(Field(&C::log, &C::Log::format), {"text", "json"}),
       .default_value = "text",
       .alias = "log-format",
       .scopes = {Scope::kServe, Scope::kCompact},
       .help = "log line format"},
      {.key = "log.requests",
       // It was a boolean (every request or none): true and false still
       // mean that, so old config files keep their behaviour.
       .value = WithBooleans(StringEnum(Field(&C::log, &C::Log::requests), {"errors", "all", "off"}),
                             Field(&C::log, &C::Log::requests), "all", "off"),
       .default_value = "errors",
       .alias = "",
       .scopes = kServe,
       .help = "which requests get a log line (method, route, status, sizes, duration, request id): "
               "errors (5xx answers and slow requests), all, or off; true = all, false = off"},
      {.key = "log.slow_request",
       .value = DurationValue(Field(&C::log, &C::Log::slow_request), milliseconds(0),
                              milliseconds(3600 * 1000)),
       .default_value = "100ms",
       .alias = "",
       .scopes = kServe,
       .help = "a request that takes this long or longer is logged (at warn level) unless "
               "log.requests = off; 0 logs none for being slow"},

      // [client]
      {.key = "client.addr",
       .value =
           StringValue(Field(&C::client, &C::Client::addr),
                       "host:port, http://host:port or https://host:port", NormalizeClientAddress),
       .default_value = "http://127.0.0.1:7070",
       .alias = "addr",
       .scopes = kServerClients,
       .help = "server to talk to"},
      {.key = "client.timeout",
       .value = DurationValue(Field(&C::client, &C::Client::timeout), milliseconds(1)),
       .default_value = "10s",
       .alias = "timeout",
       .scopes = kServerClients,
       .help = "deadline of a whole request (connect, send, the whole answer); kvctl compact "
               "waits up to an hour"},
      {.key = "client.token",
       .value = StringValue(Field(&C::client, &C::Client::token), "a token, or empty", AnyText),
       .default_value = "",
       .alias = "token",
       .scopes = kServerClients,
       .help = "bearer token sent to the server (prefer KVCTL_CLIENT_TOKEN or the config file: "
               "a flag shows in ps)",
       .secret = Secret::kValue},
      {.key = "client.cacert",
       .value = StringValue(Field(&C::client, &C::Client::cacert), "a path, or empty", AnyText),
       .default_value = "",
       .alias = "cacert",
       .scopes = kServerClients,
       .help = "PEM CA certificate to verify an https:// server by (default: the system's CAs)",
       .hint = ValueHint::kFile},
      {.key = "client.cert",
       .value = StringValue(Field(&C::client, &C::Client::cert), "a path, or empty", AnyText),
       .default_value = "",
       .alias = "cert",
       .scopes = kServerClients,
       .help = "PEM client certificate, for a server that requires one (mutual TLS)",
       .hint = ValueHint::kFile},
      {.key = "client.key",
       .value = StringValue(Field(&C::client, &C::Client::key), "a path, or empty", AnyText),
       .default_value = "",
       .alias = "key",
       .scopes = kServerClients,
       .help = "PEM private key of client.cert",
       .hint = ValueHint::kFile},
  };
}

}  // namespace

std::string_view KindName(Kind kind) {
  switch (kind) {
    case Kind::kString: return "string";
    case Kind::kInt: return "integer";
    case Kind::kDuration: return "duration";
    case Kind::kBytes: return "size";
    case Kind::kEnum: return "enum";
    case Kind::kBool: return "boolean";
    case Kind::kIdentities: return "tables";
  }
  return "?";
}

bool Setting::UsedBy(Scope scope) const {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

std::string_view Setting::Section() const {
  std::string_view k = key;
  return k.substr(0, k.find('.'));
}

std::string_view Setting::Name() const {
  std::string_view k = key;
  return k.substr(k.find('.') + 1);
}

std::string Displayable(const Setting& setting, std::string_view text, const ConnectionMasker& mask_connection) {
  switch (setting.secret) {
    case Secret::kNone: return std::string(text);
    case Secret::kValue: return MaskWhole(text);
    case Secret::kPassword: return mask_connection ? mask_connection(text) : MaskWhole(text);
  }
  return std::string(kMasked);
}

std::string TomlLiteral(const Setting& setting, std::string_view text) {
  const bool digits = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '-';
  });
  // Counts are TOML integers, and so are sizes written as plain bytes.
  if (digits && (setting.value.kind == Kind::kInt || setting.value.kind == Kind::kBytes)) {
    return std::string(text);
  }
  // Booleans and tables are already TOML as their text gives them.
  if (setting.value.kind == Kind::kBool || setting.value.kind == Kind::kIdentities) return std::string(text);
  return TomlQuote(text);
}

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> kSettings = BuildSettings();
  return kSettings;
}

const Setting* FindSetting(std::string_view key) {
  for (const Setting& s : Settings()) {
    if (s.key == key) return &s;
  }
  return nullptr;
}

std::vector<std::string> Sections() {
  std::vector<std::string> out;
  for (const Setting& s : Settings()) {
    std::string section(s.Section());
    if (std::find(out.begin(), out.end(), section) == out.end()) out.push_back(section);
  }
  return out;
}

std::string EnvName(std::string_view key) {
  std::string out = "KVCTL_";
  for (char c : key) {
    out += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string FlagName(std::string_view key) {
  std::string out = "--";
  for (char c : key) out += (c == '.' || c == '_') ? '-' : c;
  return out;
}

std::string PreferredFlag(const Setting& setting) {
  return setting.alias.empty() ? FlagName(setting.key) : "--" + setting.alias;
}

}  // namespace kvctl::config
