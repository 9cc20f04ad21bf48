// A real, throwaway PostgreSQL for the end-to-end tests, and kvctl servers
// that use it.
//
// PgCluster runs Debian's PostgreSQL 15 (/usr/lib/postgresql/15/bin) in a
// temp dir: the data dir is a copy of a cluster made once by initdb and kept
// in the build tree (KVCTL_TEST_CACHE_DIR), the server listens on a free
// port on 127.0.0.1 and on a unix socket in the temp dir. PostgreSQL refuses
// to run as root, so as root every PostgreSQL program runs through
// `runuser -u postgres --` and the temp dir belongs to postgres. The
// destructor stops the server (pg_ctl stop, then SIGKILL by PID if it is
// still there) and removes the dir.
//
// PgCluster::Shared() is one cluster per test binary run; each test case
// takes a fresh database in it (CreateDatabase), so cases never see each
// other's data. Tests that stop, restart or fail over PostgreSQL make their
// own cluster.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

namespace kvctl::e2e {

struct PgClusterOptions {
  // More `-c name=value` settings for the server.
  std::vector<std::string> settings;
};

class PgCluster {
 public:
  explicit PgCluster(PgClusterOptions options = {});
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  static PgCluster& Shared();

  // A streaming replica of `primary` (pg_basebackup -R over 127.0.0.1),
  // started on its own port.
  static std::unique_ptr<PgCluster> ReplicaOf(PgCluster& primary);

  int port() const { return port_; }
  // A new, empty database; returns its name.
  std::string CreateDatabase();
  // "host=127.0.0.1 port=P user=postgres dbname=DB"
  std::string Dsn(const std::string& db) const;
  // Runs `sql` with psql in `db`; returns its unaligned, tuples-only output
  // (no trailing newline). Fails the test if psql fails.
  std::string Psql(const std::string& db, const std::string& sql);

  // pg_ctl stop with the given mode (fast, immediate); Start() again.
  void Stop(const std::string& mode = "fast");
  void Start();
  // pg_ctl promote (a replica becomes a primary).
  void Promote();
  bool running() const { return running_; }

 private:
  struct ReplicaTag {};
  PgCluster(ReplicaTag, PgCluster& primary);
  void MakeTempDirOwned();
  pid_t ReadPid() const;

  PgClusterOptions options_;
  TempDir tmp_;
  std::string data_dir_;
  int port_ = 0;
  bool running_ = false;
  int databases_ = 0;
};

// Runs a PostgreSQL program (by name, from the PostgreSQL bin dir) as the
// postgres user when we are root; fails the test on a non-zero exit.
CliResult RunPgTool(const std::vector<std::string>& args);

// `kvctl migrate up` on `dsn`; fails the test if it fails.
void MigrateUp(const std::string& dsn);

// A new database on the shared cluster, migrated up.
struct MigratedDb {
  PgCluster& pg = PgCluster::Shared();
  std::string name = pg.CreateDatabase();
  std::string dsn = pg.Dsn(name);
  MigratedDb() { MigrateUp(dsn); }
  std::string Sql(const std::string& sql) { return pg.Psql(name, sql); }
};

// A kvctl server on the PostgreSQL backend: started on a fresh port and
// ready when the constructor returns.
class PgServer {
 public:
  explicit PgServer(std::string dsn, std::vector<std::string> extra_args = {});
  void Start();  // on a fresh port; waits until ready
  int port() const { return port_; }
  std::string addr() const { return Addr(port_); }
  ServerProcess& process() { return *process_; }

 private:
  TempDir tmp_;
  std::string dsn_;
  std::vector<std::string> extra_args_;
  int port_ = 0;
  std::unique_ptr<ServerProcess> process_;
};

// True when every server on `ports` lists the same keys, values and
// revisions.
bool SameState(const std::vector<int>& ports);

// The index in `servers` of the one whose /metrics says it is the
// database's writer (kvctl_pg_writer), once exactly one does; -1 if none
// or several within the limit.
int WriterOf(const std::vector<PgServer*>& servers, std::chrono::milliseconds limit = std::chrono::seconds(10));

}  // namespace kvctl::e2e
