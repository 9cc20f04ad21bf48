#include "lib/pg/write_forwarder.h"

#include <fmt/format.h>

namespace kvctl::pg {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kPartOverhead = 16;  // the version byte, the count and slack

}  // namespace

WriteForwarder::WriteForwarder(Options options) : options_(std::move(options)) {
  if (options_.logger == nullptr) options_.logger = &core::NullLogger();
  for (size_t i = 0; i < options_.in_flight; ++i) threads_.emplace_back([this] { Loop(); });
}

WriteForwarder::~WriteForwarder() { Stop(); }

void WriteForwarder::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

bool WriteForwarder::Forwarding() const {
  const WriterElection::Writer writer = options_.election->Current();
  if (writer.url.empty() || writer.self) return false;
  std::lock_guard lock(mu_);
  return !stop_ && !(writer.url == suspect_url_ && Clock::now() < suspect_until_);
}

bool WriteForwarder::Fits(const core::ForwardedWrite& w) const {
  return core::ForwardedWriteSize(w) + kPartOverhead <= options_.max_part_bytes;
}

bool WriteForwarder::Room(size_t bytes, const core::ForwardedWrite& w) const {
  return kPartOverhead + bytes + core::ForwardedWriteSize(w) <= options_.max_part_bytes;
}

void WriteForwarder::Send(std::vector<core::ForwardedWrite> writes, PartDone done) {
  Part part{options_.election->Current(), std::move(writes), std::move(done)};
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return stop_ || queue_.size() + busy_ < options_.in_flight; });
  if (stop_ || part.writer.url.empty() || part.writer.self) {
    lock.unlock();
    return part.done(Reply{});
  }
  queue_.push_back(std::move(part));
  lock.unlock();
  cv_.notify_all();
}

void WriteForwarder::Loop() {
  for (;;) {
    Part part;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      part = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    Reply reply = Deliver(part);
    {
      std::lock_guard lock(mu_);
      --busy_;
    }
    cv_.notify_all();
    part.done(std::move(reply));
  }
}

WriteForwarder::Reply WriteForwarder::Deliver(const Part& part) {
  core::ForwardReply sent =
      options_.transport(part.writer.url, part.writer.token, core::EncodeForwardedWrites(part.writes));
  Reply reply;
  if (sent.kind == core::ForwardReply::Kind::kAnswered) {
    auto outcomes = core::DecodeForwardedOutcomes(sent.body);
    if (outcomes && outcomes->size() == part.writes.size()) {
      reply.fate = Reply::Fate::kAnswered;
      reply.outcomes = std::move(*outcomes);
      return reply;
    }
    // It did answer, so the writes went through its committer: their
    // outcome is unknown here.
    sent.kind = core::ForwardReply::Kind::kUnknown;
    sent.why = outcomes ? fmt::format("it answered {} outcomes for {} writes", outcomes->size(), part.writes.size())
                        : outcomes.error().message();
  }
  Suspect(part.writer.url, sent.why);
  if (sent.kind == core::ForwardReply::Kind::kNotSent) return reply;  // kCommitHere
  reply.fate = Reply::Fate::kLost;
  reply.lost = core::Status::Unavailable(fmt::format(
      "this write was forwarded to the writer server {} and its answer was lost ({}); it may have been "
      "applied: read the key to know",
      part.writer.url, sent.why));
  return reply;
}

void WriteForwarder::Suspect(const std::string& url, const std::string& why) {
  bool first = false;
  {
    std::lock_guard lock(mu_);
    first = url != suspect_url_ || Clock::now() >= suspect_until_;
    suspect_url_ = url;
    suspect_until_ = Clock::now() + kSuspectFor;
  }
  if (first) {
    options_.logger->Warn("cannot forward writes to the writer; committing them here for a while",
                          {{"writer", url}, {"cause", why}});
  }
  options_.election->Recheck();
}

}  // namespace kvctl::pg
