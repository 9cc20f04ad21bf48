// Watch: etcd's bidirectional watch stream over the watch operations of
// lib/etcd/watch_ops.h. The client's create, cancel and progress requests
// are answered in order; between them the stream carries its watches'
// events, progress marks and ends, one message at a time.
//
// A stream holds no thread and no queue of events: one read and one
// write are outstanding at most; a write is made when the last one is
// done, from whatever is ready (answers first, then the watches, which
// pull from the store's watch hub). A client that does not read holds
// back only its own watches, which the hub cuts off once they fall
// server.watch_max_lag behind. Answers to requests wait in a short queue;
// while it is full the stream reads no more requests (gRPC's flow control
// holds the client back). How reads, writes and the end are started from
// several threads: etcd_grpc_stream.h.
#include <deque>
#include <memory>
#include <mutex>
#include <optional>

#include "lib/etcd/access.h"
#include "lib/etcd/watch_ops.h"
#include "lib/grpc/etcd_grpc_services.h"
#include "lib/grpc/etcd_grpc_stream.h"

namespace kvctl::etcd_grpc {

namespace etcd = server::etcd;

namespace {

// Keys and values in one message, about (at least one event): below the
// 4 MiB a gRPC client takes by default, with room for a prev_kv each.
constexpr size_t kMessageBytes = 1 << 20;
// Answers to requests waiting to be written, before reading stops.
constexpr size_t kMaxQueuedAnswers = 16;

void FillEvent(const etcd::WatchEventReply& e, mvccpb::Event* event) {
  const core::WatchEvent& ev = *e.event;
  mvccpb::KeyValue* kv = event->mutable_kv();
  if (ev.type == core::RecordType::kPut) {
    event->set_type(mvccpb::Event::PUT);
    FillKeyValue(core::ListItem{ev.key, ev.value, ev.revision, ev.meta}, false, kv);
  } else {
    // etcd's delete event: the key and the revision of the delete.
    event->set_type(mvccpb::Event::DELETE);
    kv->set_key(ev.key);
    kv->set_mod_revision(static_cast<int64_t>(ev.revision));
  }
  if (e.prev) FillKeyValue(*e.prev, false, event->mutable_prev_kv());
}

void FillResponse(const EtcdOptions& options, const etcd::WatchReply& reply, etcdserverpb::WatchResponse* out) {
  out->Clear();
  FillHeader(options, reply.revision, out->mutable_header());
  out->set_watch_id(reply.watch_id);
  out->set_created(reply.created);
  out->set_canceled(reply.canceled);
  out->set_compact_revision(static_cast<int64_t>(reply.compact_revision));
  out->set_cancel_reason(reply.cancel_reason);
  for (const etcd::WatchEventReply& e : reply.events) FillEvent(e, out->add_events());
}

void AskOf(const etcdserverpb::WatchCreateRequest& create, etcd::WatchAsk* ask) {
  ask->key = create.key();
  ask->range_end = create.range_end();
  ask->start_revision = create.start_revision();
  ask->watch_id = create.watch_id();
  ask->prev_kv = create.prev_kv();
  ask->progress_notify = create.progress_notify();
  for (int f : create.filters()) {
    if (f == etcdserverpb::WatchCreateRequest::NOPUT) ask->no_put = true;
    if (f == etcdserverpb::WatchCreateRequest::NODELETE) ask->no_delete = true;
  }
  // `fragment` needs nothing: no message is over kMessageBytes by much.
}

}  // namespace

class WatchService::Stream final : public BidiStream<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>,
                                    public WakeQueue::Wakeable {
 public:
  Stream(const EtcdOptions& options, core::KvStore& store, const Admitter& admitter,
         grpc::CallbackServerContext* context)
      : BidiStream(admitter, Method::kWatch, context), options_(options), store_(store) {}

  // Before Open: the watch set, whose notify (on the hub's or the
  // committer's thread, which must not wait) queues a Pump on `wakes`,
  // if the stream is still there.
  void Prepare(std::shared_ptr<WakeQueue> wakes) {
    std::weak_ptr<Wakeable> weak = std::static_pointer_cast<Stream>(shared_from_this());
    watches_ = std::make_unique<etcd::WatchSet>(store_, WatchService::kMaxWatchesPerStream,
                                                [wakes = std::move(wakes), weak] {
                                                  if (auto s = weak.lock()) wakes->Post(*s, weak);
                                                });
  }

  void Wake() override { Pump(); }

  void OnReadDone(bool ok) override {
    bool read = false;
    {
      std::lock_guard lock(mu_);
      ReadFinished(ok);
      // !ok: the client closed its side (its watches go on until it
      // cancels the call, as etcd's do), or the call ended.
      if (ok && !ending()) {
        Take(request_);
        read = ClaimRead();
      }
    }
    if (read) StartClaimedRead();
    Pump();
  }

  void OnWriteDone(bool ok) override {
    bool read = false;
    {
      std::lock_guard lock(mu_);
      WriteFinished(ok);
      read = ClaimRead();  // the answer queue may have room again
    }
    if (read) StartClaimedRead();
    Pump();
    MaybeFinish();
  }

  // Writes the next message when none is in flight: an answer, else what
  // the watches have.
  void Pump() {
    bool write = false;
    {
      std::lock_guard lock(mu_);
      if (!CanWrite()) return;
      etcd::WatchReply reply;
      if (!answers_.empty()) {
        reply = std::move(answers_.front());
        answers_.pop_front();
        write = true;
      } else {
        const etcd::WatchSet::Pulled pulled = watches_->Next(kMessageBytes, &reply);
        if (pulled == etcd::WatchSet::Pulled::kMessage) write = true;
        if (pulled == etcd::WatchSet::Pulled::kStoreClosed) SetEnd(ServerStopped());
      }
      if (write) {
        FillResponse(options_, reply, &response_);
        ClaimWrite();
      }
    }
    if (write) {
      StartClaimedWrite();
    } else {
      MaybeFinish();
    }
  }

 private:
  bool WantsRead() const override { return answers_.size() < kMaxQueuedAnswers; }

  void Closed() override {
    std::lock_guard lock(mu_);
    watches_->CancelAll();
  }

  // Under mu_: one request, answered into the queue.
  void Take(const etcdserverpb::WatchRequest& request) {
    std::vector<etcd::WatchReply> answers;
    if (request.has_create_request()) {
      etcd::WatchAsk ask;
      AskOf(request.create_request(), &ask);
      // Judged at each create (lib/etcd/access.h); refused in the stream,
      // as etcd does.
      etcd::WatchAccess access = etcd::WatchPermitted(caller(), ask.key, ask.range_end);
      if (!access.permitted) {
        CountForbidden();
        answers.push_back(watches_->Refusal(ask.watch_id, etcd::PermissionDenied().message));
      } else if (auto failed = watches_->Create(ask, std::move(access.readable), &answers)) {
        answers.push_back(watches_->Refusal(ask.watch_id, failed->message));
      }
    } else if (request.has_cancel_request()) {
      watches_->Cancel(request.cancel_request().watch_id(), &answers);
    } else if (request.has_progress_request()) {
      answers.push_back(watches_->Progress());
    }
    // Any other message is skipped, as etcd does.
    for (auto& a : answers) answers_.push_back(std::move(a));
  }

  const EtcdOptions& options_;
  core::KvStore& store_;
  std::unique_ptr<etcd::WatchSet> watches_;
  std::deque<etcd::WatchReply> answers_;  // under mu_
};

WatchReactor* WatchService::Watch(grpc::CallbackServerContext* context) {
  auto stream = std::make_shared<Stream>(options_, store_, admitter_, context);
  stream->Prepare(wakes_);
  stream->Open(streams_);
  return stream.get();
}

}  // namespace kvctl::etcd_grpc
