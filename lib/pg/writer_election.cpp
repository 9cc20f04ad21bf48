#include "lib/pg/writer_election.h"

#include <random>

#include <fmt/format.h>

#include "lib/pg/connection.h"

namespace kvctl::pg {
namespace {

// The advisory lock key of the writer role (per database): "kvctlwrt".
constexpr int64_t kWriterLockKey = 0x6b7663746c777274;

std::string FreshToken() {
  std::random_device random;
  std::string token;
  for (int i = 0; i < 4; ++i) token += fmt::format("{:08x}", random());
  return token;
}

// Compares without stopping at the first difference, so the time taken
// tells nothing of where a guess went wrong.
bool SameSecret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

WriterElection::WriterElection(Options options) : options_(std::move(options)) {
  if (options_.logger == nullptr) options_.logger = &core::NullLogger();
  thread_ = std::thread([this] { Loop(); });
}

WriterElection::~WriterElection() { Stop(); }

void WriterElection::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

WriterElection::Writer WriterElection::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

bool WriterElection::IsOwnToken(std::string_view token) const {
  std::lock_guard lock(mu_);
  return current_.self && SameSecret(token, current_.token);
}

void WriterElection::Recheck() {
  {
    std::lock_guard lock(mu_);
    recheck_ = true;
  }
  cv_.notify_all();
}

bool WriterElection::SleepUnlessStopped(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_ || recheck_; });
  recheck_ = false;
  return !stop_;
}

void WriterElection::Loop() {
  core::Logger& logger = *options_.logger;
  std::unique_ptr<pqxx::connection> conn;
  bool holding = false;
  auto set = [&](Writer w) {
    std::lock_guard lock(mu_);
    current_ = std::move(w);
  };
  while (SleepUnlessStopped(std::chrono::milliseconds(0))) {
    if (!conn) {
      auto opened = Connect(options_.conninfo);
      if (!opened) {
        set({});
        SleepUnlessStopped(options_.retry);
        continue;
      }
      conn = std::move(*opened);
    }
    try {
      pqxx::nontransaction tx(*conn);
      if (!holding && !options_.url.empty() &&
          tx.exec_params1("SELECT pg_try_advisory_lock($1)", kWriterLockKey)[0].as<bool>()) {
        const std::string token = FreshToken();
        tx.exec_params(
            "INSERT INTO kv_writer (id, url, token, since) VALUES (1, $1, $2, now()) "
            "ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, token = EXCLUDED.token, since = now()",
            options_.url, token);
        holding = true;
        set({options_.url, token, true});
        logger.Info("this server is now the writer: the other servers of the database forward their puts and "
                    "deletes to it",
                    {{"url", options_.url}});
      } else if (holding) {
        tx.exec("SELECT 1");  // the session, and the lock with it, is still there
      } else {
        const pqxx::result row = tx.exec("SELECT url, token FROM kv_writer WHERE id = 1");
        Writer seen;
        if (!row.empty()) seen = {row[0][0].as<std::string>(), row[0][1].as<std::string>(), false};
        const Writer before = Current();
        if (seen.url != before.url && !seen.url.empty()) {
          logger.Info("forwarding puts and deletes to the writer", {{"url", seen.url}});
        }
        set(std::move(seen));
      }
    } catch (...) {
      const PgError e = ClassifyCurrentException("electing the writer");
      if (holding) {
        logger.Error("lost the writer role (another server takes it over)", {{"cause", e.status.message()}});
      }
      holding = false;
      set({});
      conn.reset();  // the session, and the lock with it, ends
    }
    SleepUnlessStopped(options_.retry);
  }
  set({});
}

}  // namespace kvctl::pg
