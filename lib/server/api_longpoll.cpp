// Long poll (SPEC §6): GET /v1/kv/{key}?wait=DURATION&after=REV answers as
// a GET once the key's revision is past REV, or 304 when the wait ends
// first. The request waits as a deferred answer (no thread of its own) on a
// watcher of the key from REV + 1; one thread of the API's (LongPolls)
// serves every waiting poll: it polls their watchers when notified (never
// on the store's committer, which notifies) and ends those whose wait is
// over.
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "lib/server/api.h"
#include "lib/server/api_internal.h"

namespace kvctl::server {

using Clock = std::chrono::steady_clock;

class LongPoll;

// The thread every waiting long poll is served from.
class LongPolls {
 public:
  LongPolls() : thread_([this] { Run(); }) {}
  ~LongPolls() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // `poll` is due to be looked at (its watcher notified).
  void Ready(std::weak_ptr<LongPoll> poll) {
    {
      std::lock_guard lock(mu_);
      ready_.push_back(std::move(poll));
    }
    cv_.notify_one();
  }
  // `poll` ends at `deadline` unless it answered before.
  void Expire(Clock::time_point deadline, std::weak_ptr<LongPoll> poll) {
    {
      std::lock_guard lock(mu_);
      deadlines_.emplace(deadline, std::move(poll));
    }
    cv_.notify_one();
  }

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::vector<std::weak_ptr<LongPoll>> ready_;
  std::multimap<Clock::time_point, std::weak_ptr<LongPoll>> deadlines_;
  std::thread thread_;  // last: starts once the rest is made
};

// One waiting GET: answered once, by whichever comes first of a change of
// the key, the end of the wait, or Hurry (the server stops, the client
// went away).
class LongPoll : public DeferredAnswer, public std::enable_shared_from_this<LongPoll> {
 public:
  using AnswerFn = std::function<HttpResponse(bool changed)>;  // false: 304

  explicit LongPoll(AnswerFn answer) : answer_(std::move(answer)) {}
  ~LongPoll() override {
    if (watcher_) watcher_->Cancel();
  }
  LongPoll(const LongPoll&) = delete;
  LongPoll& operator=(const LongPoll&) = delete;

  // Before Start; a notify may already come meanwhile (Check waits for Start).
  void set_watcher(std::shared_ptr<core::Watcher> w) {
    std::lock_guard lock(mu_);
    watcher_ = std::move(w);
  }

  void Start(std::function<void(HttpResponse)> reply) override {
    {
      std::lock_guard lock(mu_);
      reply_ = std::move(reply);
    }
    Check();  // a change between the handler's look and now
  }

  void Hurry() override { Answer(false); }

  // Looks at the watcher: a change of the key (or its end) answers.
  void Check() {
    std::shared_ptr<core::Watcher> w;
    {
      std::lock_guard lock(mu_);
      if (answered_ || !reply_ || !watcher_) return;
      w = watcher_;
    }
    core::Watcher::Batch batch;
    w->Poll(1, &batch);
    if (!batch.events.empty() || batch.end != core::Watcher::End::kNone) Answer(true);
  }

  void Answer(bool changed) {
    std::function<void(HttpResponse)> reply;
    std::shared_ptr<core::Watcher> w;
    {
      std::lock_guard lock(mu_);
      if (answered_ || !reply_) return;
      answered_ = true;
      reply = std::move(reply_);
      w = watcher_;
    }
    if (w) w->Cancel();
    reply(answer_(changed));
  }

 private:
  const AnswerFn answer_;
  std::shared_ptr<core::Watcher> watcher_;
  std::mutex mu_;
  std::function<void(HttpResponse)> reply_;
  bool answered_ = false;
};

void LongPolls::Run() {
  std::unique_lock lock(mu_);
  while (!stopped_) {
    const bool due = !deadlines_.empty() && deadlines_.begin()->first <= Clock::now();
    if (ready_.empty() && !due) {
      if (deadlines_.empty()) {
        cv_.wait(lock);
      } else {
        cv_.wait_until(lock, deadlines_.begin()->first);
      }
      continue;  // look again at what woke it
    }
    std::vector<std::weak_ptr<LongPoll>> ready;
    ready.swap(ready_);
    std::vector<std::weak_ptr<LongPoll>> expired;
    const auto now = Clock::now();
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
      expired.push_back(std::move(deadlines_.begin()->second));
      deadlines_.erase(deadlines_.begin());
    }
    lock.unlock();
    for (auto& weak : ready) {
      if (auto poll = weak.lock()) poll->Check();
    }
    for (auto& weak : expired) {
      if (auto poll = weak.lock()) poll->Answer(false);
    }
    lock.lock();
  }
}

namespace {

// "30s", "500ms", "5m": a whole number and a unit.
std::optional<std::chrono::milliseconds> ParseWait(std::string_view text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  uint64_t n = 0;
  if (digits == 0 || digits > 9 || !api::ParseUint(text.substr(0, digits), &n)) return std::nullopt;
  const std::string_view unit = text.substr(digits);
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "s") return std::chrono::seconds(n);
  if (unit == "m") return std::chrono::minutes(n);
  return std::nullopt;
}

}  // namespace

KvApi::~KvApi() = default;

std::optional<HttpResponse> KvApi::ReadLongPoll(std::string_view query, LongPollAsk* ask) {
  auto params = api::ParseQuery(query);
  if (!params) return Error(400, "bad_parameter", params.error().message());
  std::optional<std::string> wait, after;
  for (auto& [name, value] : *params) {
    if (name == "wait") {
      wait = std::move(value);
    } else if (name == "after") {
      after = std::move(value);
    } else {
      return Error(400, "bad_parameter",
                   fmt::format("unknown query parameter \"{}\" (a GET of a key takes wait= and after= together, "
                               "for a long poll)",
                               name));
    }
  }
  if (!wait || !after) {
    return Error(400, "bad_parameter",
                 "wait= and after= go together: wait=30s&after=REV waits until the key changes after REV");
  }
  const auto d = ParseWait(*wait);
  if (!d || *d > kMaxLongPollWait) {
    return Error(400, "bad_parameter",
                 fmt::format("wait must be a whole number of ms, s or m, at most 5m (e.g. 30s), got \"{}\"", *wait));
  }
  if (!api::ParseUint(*after, &ask->after)) {
    return Error(400, "bad_parameter", fmt::format("after must be a revision (a whole number), got \"{}\"", *after));
  }
  ask->wait = *d;
  return std::nullopt;
}

HttpResponse KvApi::LongPollAnswer(const HttpRequest& req, const Admission& admission, const LongPollAsk& ask) {
  const std::string& key = admission.key;
  // Past REV already: a plain GET.
  uint64_t at = 0;
  if (auto entry = store_.Get(key, &at); entry && entry->revision > ask.after) return GetAnswer(key);
  // What the request log and metrics need, owned: the answer outlives the request.
  auto owned = std::make_shared<AsyncWrite>(AsyncWrite{.started = admission.started,
                                                       .method = req.method,
                                                       .request_id = admission.request_id,
                                                       .remote = req.remote_addr,
                                                       .bytes_in = 0,
                                                       .caller = admission.caller,
                                                       .key = key});
  auto poll = std::make_shared<LongPoll>([this, owned](bool changed) {
    HttpResponse res;
    if (changed) {
      res = GetAnswer(owned->key);
    } else {
      res.status = 304;
    }
    admission_.Finish(owned->View(), &res);
    return res;
  });
  {
    std::lock_guard lock(long_polls_mu_);
    if (!long_polls_) long_polls_ = std::make_shared<LongPolls>();
  }
  LongPolls* polls = long_polls_.get();
  std::weak_ptr<LongPoll> weak = poll;
  auto watcher = store_.Watch(core::WatchFilter{.key = key, .prefix = false}, ask.after + 1,
                              [polls, weak] { polls->Ready(weak); });
  // Below the retained history, it cannot be told what changed since REV:
  // the answer is now.
  if (!watcher) return GetAnswer(key);
  core::Watcher::Batch batch;
  (*watcher)->Poll(1, &batch);
  if (!batch.events.empty() || batch.end != core::Watcher::End::kNone) {
    (*watcher)->Cancel();
    return GetAnswer(key);
  }
  poll->set_watcher(std::move(*watcher));
  polls->Expire(Clock::now() + ask.wait, weak);
  HttpResponse res;
  res.deferred = std::move(poll);
  return res;
}

}  // namespace kvctl::server
