// The effective configuration of one kvctl invocation, and how it is loaded.
//
// Layers, each overriding the one before (SPEC §4):
//   built-in defaults < TOML file < KVCTL_* environment < command-line flags.
// Every setting is declared once, in lib/config/settings.cpp; this header does
// not list them. The TOML key `section.name` is the environment variable
// KVCTL_SECTION_NAME and the flag --section-name.
//
// Library code never reads the process environment or arguments: the caller
// (cmd/kvctl) passes them in through LoadInputs. Nothing here throws; every
// failure is a Status value.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/core/fsync_policy.h"
#include "lib/core/status.h"

namespace kvctl::config {

// Which layer a setting's effective value came from.
enum class Source { kDefault, kFile, kEnv, kFlag };

// "default", "file", "env", "flag".
std::string_view SourceName(Source source);

// One grant of an auth identity: operations on the keys under a prefix.
struct AuthGrant {
  std::string prefix;  // "" covers every key
  bool read = false;
  bool write = false;
  bool admin = false;  // store-wide, so only with prefix ""

  bool operator==(const AuthGrant&) const = default;
};

// An entry of [[auth.tokens]] (a bearer token, known by its SHA-256) or of
// [[auth.certs]] (a client certificate, known by its subject CN).
struct AuthIdentity {
  std::string name;    // tokens: the name shown in logs; certs: the CN
  std::string sha256;  // tokens only: 64 lowercase hex digits
  std::vector<AuthGrant> grants;
  std::string origin;  // "/etc/kvctl/config.toml, line 12", for messages

  bool operator==(const AuthIdentity& o) const {
    return name == o.name && sha256 == o.sha256 && grants == o.grants;
  }
};

struct Config {
  struct Server {
    std::string listen;  // host:port, validated; port 0 = any free port
    std::string etcd_listen;  // etcd's JSON API: host:port as `listen`; "" = off
    std::string etcd_grpc_listen;  // etcd's gRPC API: host:port as `listen`; "" = off
    int io_threads = 0;  // 0: one per CPU core
    int threads = 0;
    int max_connections = 0;
    std::chrono::milliseconds keepalive_timeout{0};
    std::chrono::milliseconds read_timeout{0};
    std::chrono::milliseconds write_timeout{0};
    std::chrono::milliseconds shutdown_timeout{0};
    int keepalive_max_requests = 0;
    size_t max_header_bytes = 0;
    std::chrono::milliseconds watch_progress_interval{0};
    uint64_t watch_max_lag = 0;  // revisions a watcher may fall behind before it is cut off
  } server;

  struct Tls {
    std::string cert;          // PEM path; "" = plain HTTP
    std::string key;           // PEM path
    std::string client_ca;     // PEM path; set = mutual TLS
    std::string client_crl;    // PEM path of client_ca's CRLs; "" = none checked
    std::string min_version;   // "1.2" or "1.3"
    std::string ciphers;       // TLS 1.2 cipher list, OpenSSL syntax
    std::string ciphersuites;  // TLS 1.3 cipher suites, OpenSSL syntax
  } tls;

  struct Auth {
    std::vector<AuthIdentity> tokens;  // [[auth.tokens]] in the config file
    std::vector<AuthIdentity> certs;   // [[auth.certs]] in the config file
    std::string file;                  // a TOML file of more [[tokens]] and [[certs]]
    std::string metrics;               // "open" or "admin"
    // Read from `file` by LoadAuthFile, kept apart so `config show` does
    // not present them as set in the config file.
    std::vector<AuthIdentity> file_tokens;
    std::vector<AuthIdentity> file_certs;

    bool enabled() const {
      return !tokens.empty() || !certs.empty() || !file_tokens.empty() || !file_certs.empty();
    }
  } auth;

  struct RateLimit {
    int rate = 0;   // requests per second per client; 0 = off
    int burst = 0;  // 0 = the same as rate
  } ratelimit;

  struct Storage {
    std::string backend;  // "file" or "postgres"
    std::string data_dir;
    core::FsyncPolicy fsync = core::FsyncPolicy::kAlways;
    std::chrono::milliseconds fsync_interval{0};
    uint64_t segment_bytes = 0;
    int compact_dead_percent = 0;  // 0: no automatic compaction
    uint64_t compact_min_bytes = 0;
    uint64_t history_retention = 0;  // newest revisions compaction keeps as history for watchers
  } storage;

  struct Postgres {
    std::string dsn;  // libpq connection string or URI; "" = unset
    int pool_min = 0;
    int pool_max = 0;
    std::chrono::milliseconds pool_timeout{0};
    std::chrono::milliseconds connect_timeout{0};
    std::chrono::milliseconds reconnect_max_backoff{0};
    std::chrono::milliseconds migrate_lock_timeout{0};
    std::string peer_url;  // "http://host:port" peers forward writes to; "" = from server.listen
  } postgres;

  struct Limits {
    size_t max_key_bytes = 0;
    size_t max_value_bytes = 0;
    size_t max_txn_ops = 0;
  } limits;

  struct Log {
    std::string level;   // debug, info, warn, error
    std::string format;  // text, json
    std::string requests;  // which requests get a line: "errors" (5xx and slow), "all", "off"
    std::chrono::milliseconds slow_request{0};  // "slow" from this long; 0: none is
  } log;

  struct Client {
    std::string addr;  // always normalized to "http(s)://host:port"
    std::chrono::milliseconds timeout{0};
    std::string token;   // bearer token; a secret, never shown
    std::string cacert;  // PEM path: CA to verify the server by
    std::string cert;    // PEM path: client certificate (mutual TLS)
    std::string key;     // PEM path: its private key
  } client;

  std::string config_file;                // the TOML file that was loaded, "" if none
  std::map<std::string, Source> sources;  // every setting key -> the layer that set it
};

// Every setting at its built-in default; sources all kDefault, no file.
Config Defaults();

struct LoadInputs {
  // --config PATH, if given.
  std::optional<std::string> config_path_flag;
  // The whole process environment. Every KVCTL_* name must be a known setting
  // (or KVCTL_CONFIG); other variables are ignored apart from XDG_CONFIG_HOME
  // and HOME, used to find the config file.
  std::map<std::string, std::string> environment;
  // Setting key ("storage.fsync") -> text, for flags the user actually gave.
  std::map<std::string, std::string> flags;
};

// Builds the effective Config from defaults, the config file, the environment
// and the flags.
//
// The file is --config, else $KVCTL_CONFIG (empty counts as unset), else the
// first existing one of ConfigFileCandidates(). A file named explicitly that
// does not exist is an error; discovered candidates that do not exist are
// skipped. Relative paths are resolved against the current directory.
//
// Every layer is validated even when a later layer overrides the same key, so
// a typo in the file is reported rather than hidden by a flag.
//
// After the layers, the TLS files are checked to go together and the
// identities of the config file to be unique ([[auth.certs]] needs
// tls.client_ca). auth.file is not read here (see LoadAuthFile).
//
// Errors: Status::InvalidArgument (exit 2) for any bad input, with a message
// naming the key, the value and where it came from, and what is accepted:
//   log.level = "loud" (from environment KVCTL_LOG_LEVEL) is not one of: debug, ...
//   unknown key "storage.fsyncc" in ./kvctl.toml (line 3); did you mean ...
// Only the first problem found is reported; file problems are reported in line
// order.
core::Result<Config> Load(const LoadInputs& inputs);

// For `kvctl serve`: reads auth.file (when set) into auth.file_tokens and
// auth.file_certs, and checks every identity together (unique names and
// hashes). Client commands never read it: it may be readable only by the
// server's user. InvalidArgument naming the file and line.
core::Status LoadAuthFile(Config& config);

// The discovered config file locations, in the order they are tried:
// ./kvctl.toml, $XDG_CONFIG_HOME/kvctl/config.toml (XDG_CONFIG_HOME unset,
// empty or relative -> $HOME/.config; both unset -> skipped),
// /etc/kvctl/config.toml. Does not touch the file system.
std::vector<std::string> ConfigFileCandidates(const std::map<std::string, std::string>& env);

// The file Load would read: "" when there is none. Errors as in Load for an
// explicitly named file that does not exist or is not a regular file.
core::Result<std::string> FindConfigFile(const LoadInputs& inputs);

}  // namespace kvctl::config
