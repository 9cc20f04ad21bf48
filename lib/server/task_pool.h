// A fixed set of threads running queued tasks in arrival order. The HTTP
// transport runs the requests that may wait on the disk here (writes under
// fsync = "always"), so its event loops never block: each waiting writer
// holds a pool thread, and the writers waiting at once share one group
// commit.
//
// Thread safety: Submit() from any thread. Shutdown() (also run by the
// destructor) runs every task already queued, then joins the threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace kvctl::server {

class TaskPool {
 public:
  explicit TaskPool(int threads);
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  void Submit(std::function<void()> task);
  void Shutdown();

 private:
  void Work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace kvctl::server
