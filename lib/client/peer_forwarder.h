// The HTTP side of forwarding writes to the PostgreSQL backend's writer
// (lib/pg/pg_store.h, "One writer"): POST /v1/peer/writes to the writer's
// URL with its token, and what became of the request. The PostgreSQL store
// calls it from its committer thread; it knows nothing of SQL.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lib/core/forwarded_writes.h"

namespace kvctl::client {

class PeerForwarder {
 public:
  struct Options {
    std::chrono::milliseconds connect_timeout{1000};
    // How long the writer may take to commit and answer before the
    // outcome counts as unknown.
    std::chrono::milliseconds answer_timeout{5000};
  };
  explicit PeerForwarder(Options options);
  ~PeerForwarder();

  // Thread-safe: each call takes a kept-alive connection of its own.
  core::ForwardReply Send(const std::string& url, const std::string& token, const std::string& body);

 private:
  struct Connection;
  Options options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;  // guarded by mu_
};

}  // namespace kvctl::client
