// Sends this server's puts and deletes to its database's writer (pg_store.h,
// "One writer") and says what became of them. Internal to lib/pg.
//
// Parts go out on a few threads of their own, so the committer does not
// wait for one answer before it forwards the next part: a server's clients
// then reach the writer's next commit, not the one after it. A part the
// writer refused or never received is committed by this server instead,
// and so is every write for kSuspectFor after a forward failed (the writer
// may be gone; the election reads kv_writer again at once).
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "lib/core/forwarded_writes.h"
#include "lib/core/logger.h"
#include "lib/pg/writer_election.h"

namespace kvctl::pg {

class WriteForwarder {
 public:
  struct Options {
    WriterElection* election = nullptr;
    core::ForwardTransport transport;
    core::Logger* logger = nullptr;
    size_t max_part_bytes = 1 << 20;  // a bigger part is split; a bigger write is not forwarded
    size_t in_flight = 3;             // parts sent at once (one thread each)
  };
  // What became of a part.
  struct Reply {
    enum class Fate {
      kAnswered,    // `outcomes`, one per write
      kCommitHere,  // the writer refused it or never got it: nothing was applied
      kLost,        // sent, no answer: `lost` says so, it may have been applied
    };
    Fate fate = Fate::kCommitHere;
    std::vector<core::ForwardedOutcome> outcomes;
    core::Status lost;
  };
  using PartDone = std::function<void(Reply)>;

  explicit WriteForwarder(Options options);
  ~WriteForwarder();
  void Stop();  // waits for the parts in flight; later Sends are answered kCommitHere

  // Whether writes are to be forwarded now: a writer is known, it is not
  // this server, and no forward to it failed in the last kSuspectFor.
  bool Forwarding() const;
  // Whether a write fits in a part.
  bool Fits(const core::ForwardedWrite& w) const;
  // Whether a part of `bytes` may take one more write of `w`'s size.
  bool Room(size_t bytes, const core::ForwardedWrite& w) const;
  // Queues a part; waits while `in_flight` parts are out. `done` runs once,
  // on a forwarding thread (or here when stopping).
  void Send(std::vector<core::ForwardedWrite> writes, PartDone done);

  static constexpr std::chrono::milliseconds kSuspectFor{2000};

 private:
  struct Part {
    WriterElection::Writer writer;
    std::vector<core::ForwardedWrite> writes;
    PartDone done;
  };
  void Loop();
  Reply Deliver(const Part& part);
  void Suspect(const std::string& url, const std::string& why);

  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Part> queue_;   // guarded by mu_
  size_t busy_ = 0;          // parts being sent; guarded by mu_
  bool stop_ = false;        // guarded by mu_
  std::string suspect_url_;  // guarded by mu_
  std::chrono::steady_clock::time_point suspect_until_{};
  std::vector<std::thread> threads_;
};

}  // namespace kvctl::pg
