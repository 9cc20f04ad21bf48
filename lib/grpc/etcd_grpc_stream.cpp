#include "lib/grpc/etcd_grpc_stream.h"

namespace kvctl::etcd_grpc {

grpc::Status ServerStopped() { return grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped"); }

bool OpenStreams::Add(std::shared_ptr<EndableStream> stream) {
  std::lock_guard lock(mu_);
  if (closing_) return false;
  EndableStream* raw = stream.get();
  open_.emplace(raw, std::move(stream));
  return true;
}

void OpenStreams::Remove(EndableStream* stream) {
  std::lock_guard lock(mu_);
  open_.erase(stream);
}

void OpenStreams::EndAll() {
  std::vector<std::shared_ptr<EndableStream>> open;
  {
    std::lock_guard lock(mu_);
    closing_ = true;
    for (const auto& [raw, weak] : open_) {
      if (auto s = weak.lock()) open.push_back(std::move(s));
    }
  }
  for (const auto& s : open) s->End(ServerStopped());
}

WakeQueue::WakeQueue() : thread_(Run, state_) {}

WakeQueue::~WakeQueue() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
  }
  state_->ready.notify_one();
  // The last owner may be a stream let go of on the queue's own thread.
  if (thread_.get_id() == std::this_thread::get_id()) {
    thread_.detach();
  } else {
    thread_.join();
  }
}

void WakeQueue::Post(Wakeable& target, std::weak_ptr<Wakeable> weak) {
  if (target.queued_.exchange(true)) return;
  {
    std::lock_guard lock(state_->mu);
    if (state_->stopping) return;
    state_->queued.push_back(std::move(weak));
  }
  state_->ready.notify_one();
}

void WakeQueue::Run(std::shared_ptr<State> state) {
  std::unique_lock lock(state->mu);
  for (;;) {
    state->ready.wait(lock, [&] { return state->stopping || !state->queued.empty(); });
    if (state->stopping) return;
    std::weak_ptr<Wakeable> next = std::move(state->queued.front());
    state->queued.pop_front();
    lock.unlock();
    if (auto target = next.lock()) {
      target->queued_.store(false);  // a notify from now on is a new wake
      target->Wake();
    }
    lock.lock();
  }
}

}  // namespace kvctl::etcd_grpc
