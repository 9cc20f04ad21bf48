// POST /v1/peer/writes: puts and deletes a peer server of the same
// PostgreSQL database forwards to this one while it is the writer
// (lib/pg/pg_store.h, "One writer"). The body and the answer are
// core/forwarded_writes.h's; each write goes to the store as the peer's
// client sent it, so it is batched with this server's own writes.
#include <atomic>
#include <memory>

#include <fmt/format.h>

#include "lib/core/forwarded_writes.h"
#include "lib/server/api.h"
#include "lib/server/api_internal.h"

namespace kvctl::server {

std::optional<HttpResponse> KvApi::AdmitPeer(const HttpRequest& req) {
  const std::optional<std::string_view> token = req.Header(core::kPeerTokenHeader);
  if (!token || !store_.AcceptsForwardedWrites(*token)) {
    admission_.CountForbidden();
    // The peer then commits its writes itself: nothing here was applied.
    return Error(403, "not_the_writer",
                 fmt::format("this server is not the writer of its database, or {} is not the writer's token; "
                             "the sending server reads the writer from kv_writer again",
                             core::kPeerTokenHeader));
  }
  return std::nullopt;
}

void KvApi::ServePeerWrites(const HttpRequest& req, Reply answer) {
  auto writes = core::DecodeForwardedWrites(req.body);
  if (!writes) {
    answer(Error(400, "bad_forwarded_writes", writes.error().message()));
    return;
  }
  if (core::Status s = store_.Writable(); !s.ok()) {
    // Refused whole, before any is queued: the peer commits them itself.
    answer(Error(503, "unavailable", s.message()));
    return;
  }
  if (writes->empty()) {
    HttpResponse res;
    res.content_type = "application/octet-stream";
    res.body = core::EncodeForwardedOutcomes({});
    answer(std::move(res));
    return;
  }
  // The outcomes fill in as the committer answers; the last one answers
  // the peer. Held by every callback, so it lives until then.
  struct Gathered {
    std::vector<core::ForwardedWrite> writes;
    std::vector<core::ForwardedOutcome> outcomes;
    std::atomic<size_t> left;
    Reply answer;
  };
  auto g = std::make_shared<Gathered>();
  g->writes = std::move(*writes);
  g->outcomes.resize(g->writes.size());
  g->left = g->writes.size();
  g->answer = std::move(answer);
  auto finish = [g] {
    if (--g->left != 0) return;
    HttpResponse res;
    res.status = 200;
    res.content_type = "application/octet-stream";
    res.body = core::EncodeForwardedOutcomes(g->outcomes);
    g->answer(std::move(res));
  };
  for (size_t i = 0; i < g->writes.size(); ++i) {
    const core::ForwardedWrite& w = g->writes[i];
    core::ForwardedOutcome* out = &g->outcomes[i];
    if (w.is_put) {
      store_.PutAsync(w.key, w.value, w.pre, w.lease, [out, finish](core::Result<core::PutOutcome> r) {
        if (r) {
          *out = {core::Status::Ok(), r->revision, !r->created, r->changed};
        } else {
          out->status = r.error();
        }
        finish();
      });
    } else {
      store_.DeleteAsync(w.key, w.pre, [out, finish](core::Result<core::DeleteOutcome> r) {
        if (r) {
          *out = {core::Status::Ok(), r->revision, r->existed, r->existed};
        } else {
          out->status = r.error();
        }
        finish();
      });
    }
  }
}

}  // namespace kvctl::server
