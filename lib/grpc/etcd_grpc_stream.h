// What etcd's two streams (Watch, LeaseKeepAlive) share on gRPC's callback
// API: their reads, writes and end may be asked for from several threads
// at once (gRPC's, the store's committer, the watch hub's, a shutdown), so
// each is claimed under the stream's lock and started outside it (gRPC may
// run a reaction inline), and Finish comes only once nothing is being
// started and no write is in flight. A stream is owned by a shared_ptr
// that it holds itself until gRPC is done with it (OnDone), so a late
// notify from another thread finds it alive, and ended.
//
// OpenStreams is the service's list of its open streams, for a shutdown:
// a stream never ends by itself, and gRPC's shutdown would wait out its
// grace for each before cancelling it. WakeQueue runs a stream's work for
// a notify from elsewhere (the watch hub's, which the store's committer
// calls for every watching stream at each commit and which must be quick)
// on a thread of its own, one for all streams.
#pragma once

#include <memory>
#include <mutex>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "lib/grpc/gated_call.h"

namespace kvctl::etcd_grpc {

class EndableStream {
 public:
  virtual ~EndableStream() = default;
  // Ends the stream with `status` as soon as no write is in flight. Any
  // thread; once is enough (later calls do nothing).
  virtual void End(grpc::Status status) = 0;
};

class OpenStreams {
 public:
  // False once EndAll has run: the caller ends the new stream at once.
  bool Add(std::shared_ptr<EndableStream> stream);
  void Remove(EndableStream* stream);
  // Ends every open stream with etcd's "server stopped" (UNAVAILABLE),
  // and every one added after.
  void EndAll();

 private:
  std::mutex mu_;
  bool closing_ = false;
  std::map<EndableStream*, std::weak_ptr<EndableStream>> open_;
};

grpc::Status ServerStopped();

class WakeQueue {
 public:
  class Wakeable {
   public:
    virtual ~Wakeable() = default;
    // On the queue's thread.
    virtual void Wake() = 0;

   private:
    friend class WakeQueue;
    std::atomic<bool> queued_{false};  // posted and not yet woken: a second post is the same wake
  };

  WakeQueue();
  ~WakeQueue();  // wakes what is queued no more; joins the thread
  WakeQueue(const WakeQueue&) = delete;
  WakeQueue& operator=(const WakeQueue&) = delete;

  // Any thread, quick: `target` is woken soon, if it is still alive.
  void Post(Wakeable& target, std::weak_ptr<Wakeable> weak);

 private:
  // What the thread uses, shared with it: it may outlive the queue when the
  // queue's last owner lets go of it on the thread itself.
  struct State {
    std::mutex mu;
    std::condition_variable ready;
    std::deque<std::weak_ptr<Wakeable>> queued;
    bool stopping = false;
  };
  static void Run(std::shared_ptr<State> state);

  std::shared_ptr<State> state_ = std::make_shared<State>();
  std::thread thread_;
};

// A stream passes the gate (gated_call.h) once, when it opens, and is
// reported to it when gRPC is done with it.
template <typename Request, typename Response>
class BidiStream : public grpc::ServerBidiReactor<Request, Response>,
                   public EndableStream,
                   public std::enable_shared_from_this<BidiStream<Request, Response>> {
 public:
  // Admits the call (see Open).
  BidiStream(const Admitter& admitter, Method method, grpc::CallbackServerContext* context)
      : call_(admitter, method, context) {}

  // Who called; null without auth. Valid from construction.
  const access::Principal* caller() const { return call_.caller(); }

  // Once, right after make_shared: the stream holds itself until gRPC is
  // done with it. Refused by the gate, or not `permitted` by the caller's
  // grants, it ends at once with etcd's refusal; else it joins `streams`
  // (or ends at once when they are closing) and reads.
  void Open(OpenStreams& streams, bool permitted = true) {
    self_ = this->shared_from_this();
    if (call_.refused() || !permitted) {
      End(call_.refused() ? call_.Refusal() : call_.Forbidden());
      return;
    }
    streams_ = &streams;
    const bool open = streams.Add(self_);
    bool read = false;
    {
      std::lock_guard lock(mu_);
      read = ClaimRead();
    }
    if (read) StartClaimedRead();
    if (!open) End(ServerStopped());
  }

  void End(grpc::Status status) override {
    {
      std::lock_guard lock(mu_);
      SetEnd(std::move(status));
    }
    MaybeFinish();
  }

  void OnCancel() override { End(grpc::Status::CANCELLED); }

  void OnDone() override {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    Closed();
    if (streams_ != nullptr) streams_->Remove(this);
    call_.Finished(end_status_, bytes_in_, bytes_out_);
    self_.reset();  // may delete this: nothing after it
  }

 protected:
  // After the stream is done (no reaction follows): let go of what it holds.
  virtual void Closed() {}

  // Under mu_: whether a read (a write) may start now; if so it is
  // claimed, to be started outside the lock.
  bool ClaimRead() {
    if (reading_ || ending_ || done_ || !WantsRead()) return false;
    reading_ = true;
    ++starting_;
    return true;
  }
  bool CanWrite() const { return !writing_ && !ending_ && !done_; }
  // After response_ is filled.
  bool ClaimWrite() {
    if (!CanWrite()) return false;
    writing_ = true;
    ++starting_;
    bytes_out_ += response_.ByteSizeLong();
    return true;
  }
  // Under mu_, for a stream that stops reading while it has answers to
  // write (a bounded queue): whether to read more now.
  virtual bool WantsRead() const { return true; }
  // Under mu_: the first end wins.
  void SetEnd(grpc::Status status) {
    if (ending_) return;
    ending_ = true;
    end_status_ = std::move(status);
  }
  // Under mu_, first thing in OnReadDone and OnWriteDone.
  void ReadFinished(bool ok) {
    reading_ = false;
    if (ok) bytes_in_ += request_.ByteSizeLong();
  }
  void WriteFinished(bool ok) {
    writing_ = false;
    if (!ok) SetEnd(grpc::Status(grpc::StatusCode::CANCELLED, "the stream ended"));
  }
  bool ending() const { return ending_; }
  // A request of the open stream outside the caller's grants, refused in
  // the stream: counted as a refusal for grants.
  void CountForbidden() const { (void)call_.Forbidden(); }

  // Outside mu_: start what was claimed.
  void StartClaimedRead() {
    this->StartRead(&request_);
    Started();
  }
  void StartClaimedWrite() {
    this->StartWrite(&response_);
    Started();
  }
  void MaybeFinish() {
    {
      std::lock_guard lock(mu_);
      if (!ending_ || finished_ || writing_ || starting_ > 0) return;
      finished_ = true;
    }
    this->Finish(end_status_);
  }

  std::mutex mu_;
  Request request_;    // the read in flight
  Response response_;  // the write in flight; filled under mu_ before it is claimed

 private:
  void Started() {
    {
      std::lock_guard lock(mu_);
      --starting_;
    }
    MaybeFinish();
  }

  const GatedCall call_;
  size_t bytes_in_ = 0, bytes_out_ = 0;  // under mu_, for the gate's report
  std::shared_ptr<BidiStream> self_;  // until OnDone
  OpenStreams* streams_ = nullptr;
  bool reading_ = false, writing_ = false;
  int starting_ = 0;  // claimed, not yet started
  bool ending_ = false, finished_ = false, done_ = false;
  grpc::Status end_status_;
};

}  // namespace kvctl::etcd_grpc
