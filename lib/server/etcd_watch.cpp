// etcd's watch, the gateway's streaming JSON form: POST /v3/watch whose
// body is a stream of request messages ({"create_request": ...},
// {"cancel_request": ...}, {"progress_request": {}}), as grpc-gateway reads
// it. The body is complete when it is read, so its requests are taken in
// order before the answer starts; a request sent later on the connection
// is not read. The answer is a stream of {"result": ...} messages, one per
// chunk (clients such as etcd3gw parse each chunk as one message): each
// request's answer in order ("created", "canceled", a progress header),
// then the watches' events, progress marks when asked for, and "canceled"
// with compact_revision when the history a watch needs is gone. Every
// result carries its watch's `watch_id` (omitted when 0, as etcd does). It
// ends when the client closes the connection.
#include <memory>
#include <sstream>
#include <vector>

#include "lib/etcd/access.h"
#include "lib/server/auth.h"
#include "lib/server/etcd_internal.h"
#include "lib/server/etcd_watch_stream.h"
#include "lib/server/wake_slot.h"

namespace kvctl::server {

using etcd::Error;
using etcd::ErrorAnswer;
using etcd::Json;

namespace {

using etcd::EtcdWatchStream;

// Watches open at once on one stream, and messages read from one body:
// what one POST can make the server hold.
constexpr size_t kMaxWatchesPerStream = 100;
constexpr size_t kMaxRequestsPerBody = 1000;

// The request messages of a watch body, in order: every JSON object up to
// the first thing that is not one (etcd stops reading there), at most
// kMaxRequestsPerBody.
std::vector<nlohmann::json> RequestsOf(const std::string& body) {
  std::vector<nlohmann::json> requests;
  std::istringstream in(body);
  while (requests.size() < kMaxRequestsPerBody) {
    in >> std::ws;
    if (in.peek() == std::char_traits<char>::eof()) break;
    nlohmann::json message;
    try {
      in >> message;
    } catch (const nlohmann::json::exception&) {
      break;
    }
    if (!message.is_object()) break;
    requests.push_back(std::move(message));
  }
  return requests;
}

// The requests of one watch body, answered in order; what they make (the
// answers and the watches) becomes the stream.
class WatchRequests {
 public:
  WatchRequests(core::KvStore& store, const EtcdOptions& etcd, AdmissionPipeline& admission,
                const Principal* caller)
      : etcd_(etcd),
        admission_(admission),
        caller_(caller),
        watches_(std::make_unique<etcd::WatchSet>(store, kMaxWatchesPerStream, [slot = slot_] { slot->Notify(); })) {}

  // A create_request: answered "created" (and a watch opened) or refused
  // in the stream as etcd does. An error (a field etcd cannot decode, or
  // with `first`, a refusal before the stream begins) is the caller's.
  std::optional<Error> Create(const nlohmann::json& create, bool first);
  // A cancel_request: answered only when the watch is open, as etcd does.
  std::optional<Error> Cancel(const nlohmann::json& cancel);
  void Progress() { Answer(watches_->Progress()); }

  std::shared_ptr<StreamSource> Stream() {
    return std::make_shared<EtcdWatchStream>(etcd_, slot_, std::move(answers_), std::move(watches_));
  }

 private:
  void Answer(const etcd::WatchReply& reply) { answers_.push_back(etcd::WatchMessage(etcd_, reply)); }

  const EtcdOptions& etcd_;
  AdmissionPipeline& admission_;
  const Principal* caller_;
  std::shared_ptr<WakeSlot> slot_ = std::make_shared<WakeSlot>();
  std::vector<std::string> answers_;
  std::unique_ptr<etcd::WatchSet> watches_;
};

std::optional<Error> WatchRequests::Create(const nlohmann::json& create, bool first) {
  etcd::WatchAsk ask;
  bool fragment = false;
  for (auto e : {etcd::ReadBytes(create, "key", &ask.key), etcd::ReadBytes(create, "range_end", &ask.range_end),
                 etcd::ReadInt(create, "start_revision", &ask.start_revision),
                 etcd::ReadInt(create, "watch_id", &ask.watch_id), etcd::ReadBool(create, "prev_kv", &ask.prev_kv),
                 etcd::ReadBool(create, "progress_notify", &ask.progress_notify),
                 etcd::ReadBool(create, "fragment", &fragment)}) {
    if (e) return e;
  }
  // `fragment` is read (a wrong type is refused as etcd does) and needs
  // nothing more: kvctl's messages are bounded by the transport's chunk.
  (void)fragment;
  if (auto filters = create.find("filters"); filters != create.end() && filters->is_array()) {
    for (const auto& f : *filters) {
      if ((f.is_string() && f == "NOPUT") || (f.is_number_integer() && f == 0)) ask.no_put = true;
      if ((f.is_string() && f == "NODELETE") || (f.is_number_integer() && f == 1)) ask.no_delete = true;
    }
  }
  // Grants (lib/etcd/access.h): a refusal is the stream's only when it is
  // the first request, else it is answered in the stream, as etcd does.
  etcd::WatchAccess access = etcd::WatchPermitted(caller_, ask.key, ask.range_end);
  if (!access.permitted) {
    admission_.CountForbidden();
    if (first) return etcd::PermissionDenied();
    Answer(watches_->Refusal(ask.watch_id, etcd::PermissionDenied().message));
    return std::nullopt;
  }
  std::vector<etcd::WatchReply> answers;
  if (auto failed = watches_->Create(ask, std::move(access.readable), &answers)) {
    if (first) return failed;
    Answer(watches_->Refusal(ask.watch_id, failed->message));
    return std::nullopt;
  }
  for (const auto& a : answers) Answer(a);
  return std::nullopt;
}

std::optional<Error> WatchRequests::Cancel(const nlohmann::json& cancel) {
  int64_t id = 0;
  if (auto e = etcd::ReadInt(cancel, "watch_id", &id)) return e;
  std::vector<etcd::WatchReply> answers;
  watches_->Cancel(id, &answers);
  for (const auto& a : answers) Answer(a);
  return std::nullopt;
}

}  // namespace

HttpResponse EtcdApi::Watch(Call& call) {
  WatchRequests requests(store_, options_, admission_, call.caller);
  const std::vector<nlohmann::json> messages = RequestsOf(call.request.body);
  for (size_t i = 0; i < messages.size(); ++i) {
    const nlohmann::json& message = messages[i];
    std::optional<Error> error;
    if (auto create = message.find("create_request"); create != message.end() && create->is_object()) {
      error = requests.Create(*create, i == 0);
    } else if (auto cancel = message.find("cancel_request"); cancel != message.end() && cancel->is_object()) {
      error = requests.Cancel(*cancel);
    } else if (message.contains("progress_request")) {
      requests.Progress();
    }
    if (error) {
      if (i == 0) return ErrorAnswer(*error);  // the stream has not begun: refused as a whole
      break;                                   // etcd stops reading at a message it cannot take
    }
  }
  HttpResponse res;
  res.status = 200;
  res.content_type = "application/json";
  res.stream = requests.Stream();
  return res;
}

}  // namespace kvctl::server
