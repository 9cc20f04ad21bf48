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

}  // namespace kvctl::etcd_grpc
