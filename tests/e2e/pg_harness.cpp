#include "tests/e2e/pg_harness.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <doctest/doctest.h>

#ifndef KVCTL_TEST_CACHE_DIR
#error "KVCTL_TEST_CACHE_DIR must be defined (CMake sets it to a dir in the build tree)"
#endif

namespace kvctl::e2e {
namespace {

namespace fs = std::filesystem;

const char* kPgBin = "/usr/lib/postgresql/15/bin";

bool IsRoot() { return ::geteuid() == 0; }

// Gives `path` (recursively) to the postgres user when we are root.
void GiveToPostgres(const fs::path& path) {
  if (!IsRoot()) return;
  const passwd* pw = ::getpwnam("postgres");
  REQUIRE_MESSAGE(pw != nullptr, "there is no postgres user: install postgresql-15 (scripts/deps.sh test)");
  REQUIRE(::chown(path.c_str(), pw->pw_uid, pw->pw_gid) == 0);
  if (!fs::is_directory(path)) return;
  for (const auto& entry : fs::recursive_directory_iterator(path)) {
    REQUIRE(::lchown(entry.path().c_str(), pw->pw_uid, pw->pw_gid) == 0);
  }
}

// The initdb'd cluster every PgCluster starts as a copy of: made once per
// build tree, under a file lock so parallel test processes make it once.
fs::path TemplateDataDir() {
  const fs::path cache = KVCTL_TEST_CACHE_DIR;
  const fs::path done = cache / "pg15-template";
  if (fs::exists(done / "PG_VERSION")) return done;
  fs::create_directories(cache);
  const std::string lock_path = (cache / "pg15-template.lock").string();
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  REQUIRE(lock_fd >= 0);
  REQUIRE(::flock(lock_fd, LOCK_EX) == 0);
  if (!fs::exists(done / "PG_VERSION")) {
    TempDir scratch;
    GiveToPostgres(scratch.path());
    const fs::path data = scratch.path() / "data";
    RunPgTool({"initdb", "-D", data.string(), "--auth=trust", "-U", "postgres", "-N",
               "--encoding=UTF8", "--locale=C"});
    fs::remove_all(done);
    std::error_code ec;
    fs::rename(data, done, ec);
    if (ec) {
      CliResult cp = RunProgram({"/bin/cp", "-a", data.string(), done.string()});
      REQUIRE_MESSAGE(cp.exit_code == 0, "copying the template cluster failed: " << cp.err);
    }
  }
  ::close(lock_fd);
  return done;
}

}  // namespace

CliResult RunPgTool(const std::vector<std::string>& args) {
  std::vector<std::string> argv;
  if (IsRoot()) argv = {"/usr/sbin/runuser", "-u", "postgres", "--"};
  argv.push_back(std::string(kPgBin) + "/" + args.at(0));
  argv.insert(argv.end(), args.begin() + 1, args.end());
  CliOptions options;
  options.limit = std::chrono::seconds(60);
  CliResult r = RunProgram(argv, options);
  REQUIRE_MESSAGE(r.exit_code == 0, args[0] << " exited " << r.exit_code << ":\n" << r.err << r.out);
  return r;
}

void MigrateUp(const std::string& dsn) {
  CliResult r = RunCli({"migrate", "up", "--dsn", dsn});
  REQUIRE_MESSAGE(r.exit_code == 0, "kvctl migrate up exited " << r.exit_code << ": " << r.err);
}

PgCluster::PgCluster(PgClusterOptions options) : options_(std::move(options)) {
  MakeTempDirOwned();
  data_dir_ = (tmp_.path() / "data").string();
  CliResult cp = RunProgram({"/bin/cp", "-a", TemplateDataDir().string(), data_dir_});
  REQUIRE_MESSAGE(cp.exit_code == 0, "copying the template cluster failed: " << cp.err);
  Start();
}

PgCluster::PgCluster(ReplicaTag, PgCluster& primary) {
  MakeTempDirOwned();
  data_dir_ = (tmp_.path() / "data").string();
  RunPgTool({"pg_basebackup", "-h", "127.0.0.1", "-p", std::to_string(primary.port()), "-U",
             "postgres", "-D", data_dir_, "-R", "-X", "stream", "-c", "fast"});
  Start();
}

std::unique_ptr<PgCluster> PgCluster::ReplicaOf(PgCluster& primary) {
  return std::unique_ptr<PgCluster>(new PgCluster(ReplicaTag{}, primary));
}

void PgCluster::MakeTempDirOwned() { GiveToPostgres(tmp_.path()); }

PgCluster::~PgCluster() {
  // No doctest here: Shared()'s cluster is destroyed after main() returns.
  // SIGQUIT is PostgreSQL's immediate shutdown (the data is thrown away);
  // SIGKILL if it is still there after 10 s.
  if (!running_) return;
  const pid_t pid = ReadPid();
  if (pid <= 0) return;
  ::kill(pid, SIGQUIT);
  for (int i = 0; i < 1000 && ::kill(pid, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (::kill(pid, 0) == 0) ::kill(pid, SIGKILL);
}

PgCluster& PgCluster::Shared() {
  static PgCluster cluster;
  return cluster;
}

pid_t PgCluster::ReadPid() const {
  std::ifstream in(fs::path(data_dir_) / "postmaster.pid");
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

void PgCluster::Start() {
  if (port_ == 0) port_ = FreePort();  // a restart keeps its port, as a real server does
  std::string settings = "-p " + std::to_string(port_) + " -k " + tmp_.str() +
                         " -c listen_addresses=127.0.0.1"
                         // Tests crash kvctl and restart PostgreSQL, never the
                         // machine: the OS keeps what PostgreSQL wrote, so
                         // skipping fsync loses nothing here and saves time.
                         " -c fsync=off -c full_page_writes=off -c max_connections=200";
  for (const auto& s : options_.settings) settings += " -c " + s;
  RunPgTool({"pg_ctl", "-D", data_dir_, "-l", tmp_.str() + "/postgres.log", "-w", "-t", "30",
             "-o", settings, "start"});
  running_ = true;
}

void PgCluster::Stop(const std::string& mode) {
  RunPgTool({"pg_ctl", "-D", data_dir_, "-m", mode, "-w", "-t", "30", "stop"});
  running_ = false;
}

void PgCluster::Promote() { RunPgTool({"pg_ctl", "-D", data_dir_, "-w", "-t", "30", "promote"}); }

std::string PgCluster::CreateDatabase() {
  const std::string name = "t" + std::to_string(++databases_);
  Psql("postgres", "CREATE DATABASE " + name);
  return name;
}

std::string PgCluster::Dsn(const std::string& db) const {
  return "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=" + db;
}

std::string PgCluster::Psql(const std::string& db, const std::string& sql) {
  CliResult r = RunPgTool({"psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h",
                           "127.0.0.1", "-p", std::to_string(port_), "-U", "postgres", "-d", db,
                           "-c", sql});
  std::string out = r.out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

PgServer::PgServer(std::string dsn, std::vector<std::string> extra_args)
    : dsn_(std::move(dsn)), extra_args_(std::move(extra_args)) {
  Start();
}

void PgServer::Start() {
  process_.reset();
  port_ = FreePort();
  std::vector<std::string> args{"--backend", "postgres", "--dsn", dsn_};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  process_ = std::make_unique<ServerProcess>(tmp_.path(), ServerOptions{"", port_, args, {}});
  process_->WaitReady();
}

bool SameState(const std::vector<int>& ports) {
  HttpClient first(ports.at(0));
  const auto want = Snapshot(first);
  for (size_t i = 1; i < ports.size(); ++i) {
    HttpClient http(ports[i]);
    if (Snapshot(http) != want) return false;
  }
  return true;
}

int WriterOf(const std::vector<PgServer*>& servers, std::chrono::milliseconds limit) {
  int writer = -1;
  Eventually(
      [&] {
        int found = -1, count = 0;
        for (size_t i = 0; i < servers.size(); ++i) {
          HttpClient http(servers[i]->port());
          if (Metric(http, "kvctl_pg_writer") == 1) {
            found = static_cast<int>(i);
            ++count;
          }
        }
        writer = count == 1 ? found : -1;
        return writer >= 0;
      },
      limit);
  return writer;
}

}  // namespace kvctl::e2e
