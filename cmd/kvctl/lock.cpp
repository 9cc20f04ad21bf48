// kvctl lock NAME [--ttl 10s] [--timeout D] -- CMD ARGS...: runs CMD while
// holding a lock that every other `kvctl lock NAME` waits for in turn
// (SPEC §6 "Command line"). etcd's lock recipe over kvctl's HTTP API:
//
//  1. grant a lease of --ttl and keep it alive from a thread of its own
//     (every TTL/3): if kvctl dies, the lease expires and its key goes;
//  2. create __lock/NAME/<lease id in hex> with that lease (create only);
//  3. list __lock/NAME/: the key with the smallest create_revision holds
//     the lock. If it is ours, run CMD; else watch the key just before ours
//     (in create_revision order) from the listing's revision on, until it
//     is deleted, and list again. Each waiter watches only its predecessor,
//     so a release wakes one waiter, not all of them;
//  4. run CMD (stdio inherited), wait for it, revoke the lease (deleting our
//     key, which wakes the next waiter) and exit with CMD's status.
//
// Signals: SIGINT and SIGTERM are blocked in every thread and taken by a
// control thread, which also keeps the --timeout. While waiting, either one
// revokes the lease and exits 130 or 143; while CMD runs, it is passed on
// to CMD (whose exit status kvctl then takes).
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cmd/kvctl/client_setup.h"
#include "cmd/kvctl/lease_args.h"
#include "cmd/kvctl/text.h"
#include "lib/client/watch_session.h"
#include "lib/config/parse.h"

namespace kvctl::cmd {
namespace {

using Clock = std::chrono::steady_clock;

struct LockArgs {
  std::string name;
  std::string ttl = "10s";
  std::optional<std::string> timeout;
  std::vector<std::string> command;  // after --
};

// The control thread: takes SIGINT and SIGTERM (blocked everywhere else),
// passes them on to CMD once it runs, and otherwise, like the --timeout
// passing, stops the wait by cancelling the watch in flight.
class LockControl {
 public:
  explicit LockControl(std::optional<Clock::time_point> deadline) : deadline_(deadline) {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGINT);
    sigaddset(&signals_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals_, &before_);
  }
  ~LockControl() {
    done_ = true;
    if (thread_.joinable()) thread_.join();
    pthread_sigmask(SIG_SETMASK, &before_, nullptr);
  }
  void Start() { thread_ = std::thread([this] { Loop(); }); }

  // The signal mask kvctl had before, for CMD.
  const sigset_t& mask_before() const { return before_; }

  // The watch to cancel, while one runs (null: none).
  void SetWatch(client::KvClient* watch) {
    std::lock_guard lock(mu_);
    watch_ = watch;
    if (watch_ != nullptr && stopped()) watch_->Cancel();
  }
  void SetChild(pid_t child) { child_ = child; }

  // Why the wait must end, if it must: the signal, or the timeout.
  int signal() const { return signal_; }
  bool timed_out() const { return timed_out_; }
  bool stopped() const { return signal_ != 0 || timed_out_; }

 private:
  void Loop() {
    while (!done_) {
      const timespec tick{0, 100 * 1000 * 1000};
      const int sig = sigtimedwait(&signals_, nullptr, &tick);
      if (sig > 0 && child_ > 0) {
        ::kill(child_, sig);
        continue;
      }
      if (sig > 0) {
        signal_ = sig;
      } else if (child_ == 0 && deadline_ && Clock::now() >= *deadline_) {
        timed_out_ = true;
      } else {
        continue;
      }
      std::lock_guard lock(mu_);
      if (watch_ != nullptr) watch_->Cancel();
    }
  }

  std::optional<Clock::time_point> deadline_;
  sigset_t signals_;
  sigset_t before_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<pid_t> child_{0};
  std::atomic<int> signal_{0};
  std::atomic<bool> timed_out_{false};
  std::mutex mu_;
  client::KvClient* watch_ = nullptr;
};

// Renews the lease every TTL/3 with a client of its own until stopped. A
// lease found gone is said once on stderr: the lock is no longer held.
class KeepAlive {
 public:
  KeepAlive(std::unique_ptr<client::KvClient> client, uint64_t id, int64_t ttl, std::string name)
      : client_(std::move(client)), id_(id), name_(std::move(name)) {
    period_ = std::max<std::chrono::milliseconds>(std::chrono::seconds(ttl) / 3, std::chrono::milliseconds(200));
    thread_ = std::thread([this] { Loop(); });
  }
  ~KeepAlive() { Stop(); }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (!wake_.wait_for(lock, period_, [this] { return stop_; })) {
      lock.unlock();
      auto renewed = client_->LeaseKeepAlive(id_);
      if (!renewed && renewed.error().IsNotFound()) {
        std::fprintf(stderr,
                     "kvctl: lock %s: its lease %llu is gone (expired: kvctl could not renew it in time); another "
                     "kvctl lock may hold the lock now\n",
                     name_.c_str(), static_cast<unsigned long long>(id_));
        return;
      }
      lock.lock();
    }
  }

  std::unique_ptr<client::KvClient> client_;
  uint64_t id_;
  std::string name_;
  std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// Every key under `prefix` (keys only), with its create_revision, and the
// revision the first page reflects.
core::Result<client::Page> ListAll(client::KvClient& client, const std::string& prefix) {
  client::Page all;
  std::optional<std::string> after;
  for (bool first = true;; first = false) {
    auto page = client.List(prefix, after, 1000, /*keys_only=*/true);
    if (!page) return page.error();
    if (first) all.revision = page->revision;
    for (client::Item& item : page->items) all.items.push_back(std::move(item));
    if (!page->next) return all;
    after = page->next;
  }
}

std::string Holder(const client::Item& item) {
  return fmt::format("{} (lease {})", QuoteBytes(item.key), item.meta.lease);
}

// Runs `command` with kvctl's stdio and the signal mask it had; its exit
// status, or 128 + the signal that ended it.
core::Result<int> RunCommand(const std::vector<std::string>& command, LockControl& control) {
  std::vector<char*> argv;
  for (const std::string& word : command) argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t child = ::fork();
  if (child < 0) {
    return core::Status::IOError(fmt::format("cannot start {}: fork: {} (too many processes?)", command[0],
                                             std::strerror(errno)));
  }
  if (child == 0) {
    pthread_sigmask(SIG_SETMASK, &control.mask_before(), nullptr);
    ::execvp(argv[0], argv.data());
    const int err = errno;
    const std::string line = fmt::format("kvctl: cannot run {}: {} (check the command and PATH)\n", command[0],
                                         std::strerror(err));
    (void)!::write(STDERR_FILENO, line.data(), line.size());
    ::_exit(err == ENOENT ? 127 : 126);
  }
  control.SetChild(child);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  control.SetChild(0);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

// What waiting for the lock ended with.
enum class Waited { kAcquired, kStopped };

// Steps 2 and 3: our key, then the wait for every key before it to go.
core::Result<Waited> Acquire(const config::Config& cfg, client::KvClient& client, const std::string& prefix,
                             const std::string& key, uint64_t lease, LockControl& control) {
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  auto put = client.Put(key, fmt::format("{} pid {}", host, ::getpid()), {std::nullopt, true}, lease);
  if (!put) return put.error();
  const uint64_t ours = put->revision;
  std::string last_holder;
  while (!control.stopped()) {
    auto listing = ListAll(client, prefix);
    if (!listing) return listing.error();
    const client::Item* first = nullptr;
    const client::Item* before = nullptr;  // the last one created before ours
    bool found = false;
    for (const client::Item& item : listing->items) {
      if (item.key == key) found = true;
      if (first == nullptr || item.meta.create_revision < first->meta.create_revision) first = &item;
      if (item.meta.create_revision < ours &&
          (before == nullptr || item.meta.create_revision > before->meta.create_revision)) {
        before = &item;
      }
    }
    if (!found) {
      return core::Status::Unavailable(fmt::format(
          "lock: our key {} is gone while waiting: the lease expired (was the server or kvctl stalled longer than "
          "--ttl?)", QuoteBytes(key)));
    }
    if (before == nullptr) return Waited::kAcquired;
    if (Holder(*first) != last_holder) {
      last_holder = Holder(*first);
      std::fprintf(stderr, "kvctl: lock %s: waiting for %s\n", QuoteBytes(prefix).c_str(), last_holder.c_str());
    }
    // Until the key before ours is deleted (released, revoked or expired).
    auto watch_client = MakeClient(cfg);
    if (!watch_client) return watch_client.error();
    control.SetWatch(watch_client->get());
    client::WatchSession session(**watch_client, {before->key, false, listing->revision + 1});
    bool released = false;
    const core::Status watched = session.Run(
        [&](const client::WatchEvent& e) {
          if (!e.deleted) return core::Status::Ok();
          released = true;
          // Any error but Unavailable ends the session (that one it retries).
          return core::Status::FailedPrecondition("released");
        },
        [](std::string_view line) { std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data()); });
    control.SetWatch(nullptr);
    if (!released && !watched.ok() && !control.stopped()) {
      // A history compacted away or a refused watch: the listing tells again.
      std::fprintf(stderr, "kvctl: lock: watch ended (%s); listing again\n", watched.message().c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
  }
  return Waited::kStopped;
}

core::Status RunLock(CommandContext& ctx, const LockArgs& args) {
  if (args.name.empty() || args.name.find('/') != std::string::npos) {
    return core::Status::InvalidArgument(
        fmt::format("lock name {} must be non-empty and without '/' (it names the prefix __lock/NAME/)",
                    QuoteBytes(args.name)));
  }
  if (args.command.empty()) {
    return core::Status::InvalidArgument("no command to run: give it after --: kvctl lock NAME -- CMD ARGS...");
  }
  auto ttl = ParseLeaseTtl(args.ttl, "--ttl");
  if (!ttl) return ttl.error();
  std::optional<Clock::time_point> deadline;
  if (args.timeout) {
    auto d = config::ParseDuration(*args.timeout);
    if (!d) {
      return core::Status::InvalidArgument(fmt::format("--timeout {}: {}", *args.timeout, d.error().message()));
    }
    deadline = Clock::now() + *d;
  }
  auto cfg = ctx.LoadConfig();
  if (!cfg) return cfg.error();
  // Before any thread starts, so that every thread inherits the mask.
  LockControl control(deadline);
  auto client = MakeClient(*cfg);
  if (!client) return client.error();
  auto keepalive_client = MakeClient(*cfg);
  if (!keepalive_client) return keepalive_client.error();
  auto lease = (*client)->LeaseGrant(*ttl);
  if (!lease) return lease.error();
  KeepAlive keepalive(std::move(*keepalive_client), lease->id, *ttl, args.name);
  control.Start();

  const std::string prefix = "__lock/" + args.name + "/";
  const std::string key = prefix + fmt::format("{:x}", lease->id);
  auto waited = Acquire(*cfg, **client, prefix, key, lease->id, control);
  // Acquired, the lock is used even if --timeout passed meanwhile; a signal still ends it.
  if (!waited || *waited != Waited::kAcquired || control.signal() != 0) {
    keepalive.Stop();
    // Our key goes with the lease: the next waiter is not kept waiting.
    (void)(*client)->LeaseRevoke(lease->id);
    if (!waited) return waited.error();
    if (control.signal() != 0) {
      ctx.exit_status = 128 + control.signal();
      return core::Status::Ok();
    }
    std::string holder = "another kvctl lock";
    if (auto listing = ListAll(**client, prefix); listing && !listing->items.empty()) {
      const client::Item* first = &listing->items.front();
      for (const client::Item& item : listing->items) {
        if (item.meta.create_revision < first->meta.create_revision) first = &item;
      }
      holder = Holder(*first);
    }
    return core::Status::NotFound(fmt::format(
        "lock {}: not acquired within --timeout {}: held by {} (raise --timeout, or see who holds it with kvctl get "
        "KEY)", args.name, *args.timeout, holder));
  }
  auto status = RunCommand(args.command, control);
  keepalive.Stop();
  auto revoked = (*client)->LeaseRevoke(lease->id);
  if (!status) return status.error();
  if (!revoked && !revoked.error().IsNotFound()) {
    std::fprintf(stderr, "kvctl: lock %s: could not release it (%s); it is released when lease %llu expires\n",
                 args.name.c_str(), revoked.error().message().c_str(), static_cast<unsigned long long>(lease->id));
  }
  ctx.exit_status = *status;
  return core::Status::Ok();
}

}  // namespace

void AddLockCommand(CLI::App& app, CommandContext& ctx) {
  auto args = std::make_shared<LockArgs>();
  CLI::App* sub = app.add_subcommand("lock", "Run a command while holding lock NAME: other kvctl lock NAME wait in turn");
  sub->group(kGroupClient);
  sub->add_option("name", args->name, "The lock's name (no '/'): its keys are __lock/NAME/...")->required();
  sub->add_option("--ttl", args->ttl,
                  "The lease TTL (30s, 5m, or seconds): how long the lock outlives a kvctl that dies")
      ->type_name("TTL")
      ->capture_default_str();
  sub->add_option("--timeout", args->timeout,
                  "Give up waiting after this long (e.g. 30s, 5m): exit 1 naming the holder")
      ->type_name("DURATION");
  sub->add_option("command", args->command, "The command to run holding the lock, after --: -- CMD ARGS...");
  // --timeout is the wait's here; a request's deadline is --client-timeout.
  config::AddSettingFlags(*sub, config::Scope::kClient, ctx.flags, "timeout");
  sub->footer(
      "Exit status: CMD's (128+N when a signal N ended it); 130 or 143 when Ctrl-C or SIGTERM came while waiting;\n"
      "1 when --timeout passed. SIGINT and SIGTERM while CMD runs are passed on to it. If kvctl dies, the lock is\n"
      "released when its lease expires, --ttl later. The token needs read and write on __lock/NAME/.");
  sub->callback([&ctx, args] { ctx.run = [&ctx, args] { return RunLock(ctx, *args); }; });
}

}  // namespace kvctl::cmd
