#include "lib/server/etcd_api.h"

#include <algorithm>
#include <array>
#include <sstream>

#include <fmt/format.h>

#include "lib/core/base64.h"
#include "lib/server/auth.h"
#include "lib/server/etcd_internal.h"
#include "lib/server/etcd_put_body.h"

namespace kvctl::server {
namespace etcd {

HttpResponse ErrorAnswer(const Error& error) {
  HttpResponse res;
  res.status = HttpStatusOf(error.code);
  res.content_type = "application/json";
  res.body = Json{{"error", error.message}, {"message", error.message}, {"code", error.code}}.dump(
      -1, ' ', false, Json::error_handler_t::replace);
  res.error_code = fmt::format("grpc_{}", error.code);
  if (res.status >= 500) res.error_cause = error.message;
  return res;
}

namespace {

// What Go's encoding/json says of a value of the wrong type.
Error WrongType(const char* field, const nlohmann::json& value, std::string_view want) {
  return {kInvalidArgument, fmt::format("json: cannot unmarshal {} into Go value of type {} (field \"{}\")",
                                        value.type_name(), want, field)};
}

}  // namespace

std::optional<Error> ReadBytes(const nlohmann::json& object, const char* field, std::string* out) {
  out->clear();
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) return WrongType(field, *it, "[]byte");
  auto decoded = core::Base64Decode(it->get_ref<const std::string&>());
  if (!decoded) return Error{kInvalidArgument, fmt::format("illegal base64 data in \"{}\"", field)};
  *out = std::move(*decoded);
  return std::nullopt;
}

std::optional<Error> ReadInt(const nlohmann::json& object, const char* field, int64_t* out) {
  *out = 0;
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer()) {
    *out = it->get<int64_t>();
    return std::nullopt;
  }
  if (it->is_number_float()) {
    const double d = it->get<double>();
    // In range before the cast (a cast of an out-of-range double is undefined).
    if (d >= -9.2e18 && d <= 9.2e18 && d == static_cast<double>(static_cast<int64_t>(d))) {
      *out = static_cast<int64_t>(d);
      return std::nullopt;
    }
  }
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    try {
      size_t used = 0;
      const long long v = std::stoll(s, &used, 10);
      if (used == s.size()) {
        *out = v;
        return std::nullopt;
      }
    } catch (const std::exception&) {
    }
  }
  return WrongType(field, *it, "int64");
}

std::optional<Error> ReadBool(const nlohmann::json& object, const char* field, bool* out) {
  *out = false;
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return WrongType(field, *it, "bool");
  *out = it->get<bool>();
  return std::nullopt;
}

std::optional<Error> ReadEnum(const nlohmann::json& object, const char* field, const char* enum_name,
                              const std::vector<std::string_view>& names, int* out) {
  *out = 0;
  auto it = object.find(field);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (it->is_number_integer()) {
    // grpc-gateway takes any number; one etcd does not know acts as 0 or
    // is refused where it is used.
    *out = static_cast<int>(it->get<int64_t>());
    return std::nullopt;
  }
  if (it->is_string()) {
    const std::string& s = it->get_ref<const std::string&>();
    for (size_t i = 0; i < names.size(); ++i) {
      if (s == names[i]) {
        *out = static_cast<int>(i);
        return std::nullopt;
      }
    }
    return Error{kInvalidArgument, fmt::format("unknown value \"{}\" for enum {}", s, enum_name)};
  }
  return WrongType(field, *it, enum_name);
}

Json Header(const EtcdOptions& options, uint64_t revision) {
  Json h;
  h["cluster_id"] = std::to_string(options.cluster_id);
  h["member_id"] = std::to_string(options.member_id);
  if (revision != 0) h["revision"] = std::to_string(revision);
  // One member, never an election: the term is always 1.
  h["raft_term"] = "1";
  return h;
}

std::string HeaderOnlyBody(const EtcdOptions& options, uint64_t revision) {
  // What Answer(Json{{"header", Header(options, revision)}}) writes, byte for
  // byte, without building the JSON tree: a plain put's whole answer, where
  // the tree and its dump were a few percent of a put's CPU.
  std::string body;
  body.reserve(160);  // the longest answer (three 20-digit numbers): one allocation
  fmt::format_to(std::back_inserter(body), R"({{"header":{{"cluster_id":"{}","member_id":"{}")",
                 options.cluster_id, options.member_id);
  if (revision != 0) fmt::format_to(std::back_inserter(body), R"(,"revision":"{}")", revision);
  body += R"(,"raft_term":"1"}})";
  return body;
}

Json KeyValue(std::string_view key, std::string_view value, uint64_t mod_revision, const core::KeyMeta& meta,
              bool keys_only) {
  Json kv;
  kv["key"] = core::Base64Encode(key);
  if (meta.create_revision != 0) kv["create_revision"] = std::to_string(meta.create_revision);
  if (mod_revision != 0) kv["mod_revision"] = std::to_string(mod_revision);
  if (meta.version != 0) kv["version"] = std::to_string(meta.version);
  if (!keys_only && !value.empty()) kv["value"] = core::Base64Encode(value);
  if (meta.lease != 0) kv["lease"] = std::to_string(meta.lease);
  return kv;
}

HttpResponse Answer(const Json& body) {
  HttpResponse res;
  res.status = 200;
  res.content_type = "application/json";
  res.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return res;
}

namespace {
const std::vector<std::string_view> kSortOrders = {"NONE", "ASCEND", "DESCEND"};
const std::vector<std::string_view> kSortTargets = {"KEY", "VERSION", "CREATE", "MOD", "VALUE"};
}  // namespace

std::optional<Error> ReadRangeShape(const nlohmann::json& body, RangeShape* out) {
  for (auto e : {ReadInt(body, "limit", &out->limit),
                 ReadEnum(body, "sort_order", "etcdserverpb.RangeRequest_SortOrder", kSortOrders, &out->sort_order),
                 ReadEnum(body, "sort_target", "etcdserverpb.RangeRequest_SortTarget", kSortTargets,
                          &out->sort_target),
                 ReadBool(body, "keys_only", &out->keys_only), ReadBool(body, "count_only", &out->count_only),
                 ReadInt(body, "min_mod_revision", &out->min_mod), ReadInt(body, "max_mod_revision", &out->max_mod),
                 ReadInt(body, "min_create_revision", &out->min_create),
                 ReadInt(body, "max_create_revision", &out->max_create)}) {
    if (e) return e;
  }
  return std::nullopt;
}

void AddRangeReply(const RangeReply& reply, bool keys_only, Json* body) {
  if (!reply.kvs.empty()) {
    Json kvs = Json::array();
    for (const core::ListItem& it : reply.kvs) {
      kvs.push_back(KeyValue(it.key, it.value, it.revision, it.meta, keys_only));
    }
    (*body)["kvs"] = std::move(kvs);
  }
  if (reply.more) (*body)["more"] = true;
  if (reply.count != 0) (*body)["count"] = std::to_string(reply.count);
}

}  // namespace etcd

using etcd::Error;
using etcd::ErrorAnswer;

namespace {

// The face's answer to a refusal of the admission pipeline (kvctl's JSON:
// {"error": message, "code": word}), in etcd's error shape.
HttpResponse AsEtcdRefusal(HttpResponse refusal) {
  std::string message = "refused";
  try {
    auto body = nlohmann::json::parse(refusal.body);
    if (body.contains("error") && body["error"].is_string()) message = body["error"].get<std::string>();
  } catch (const std::exception&) {
  }
  int code = etcd::kInternal;
  switch (refusal.status) {
    case 401: code = etcd::kUnauthenticated; break;
    case 403: code = etcd::kPermissionDenied; break;
    case 429: code = etcd::kResourceExhausted; break;
    case 400:
    case 411:
    case 413:
    case 414:
    case 431: code = etcd::kInvalidArgument; break;
    case 404: code = etcd::kNotFound; break;
    case 408: code = 4; break;  // DeadlineExceeded
    case 503: code = etcd::kUnavailable; break;
    default: break;
  }
  HttpResponse res = ErrorAnswer({code, message});
  // The HTTP status stays the pipeline's (a 429 keeps its Retry-After, a
  // 401 its WWW-Authenticate).
  res.status = refusal.status;
  res.headers = std::move(refusal.headers);
  res.error_code = refusal.error_code;
  return res;
}

constexpr std::array<std::string_view, 3> kVersionPrefixes = {"/v3/", "/v3beta/", "/v3alpha/"};

Route RouteOf(std::string_view path, std::string* resource) {
  if (path == "/version") return Route::kEtcdVersion;
  for (std::string_view prefix : kVersionPrefixes) {
    if (!path.starts_with(prefix)) continue;
    std::string_view rest = path.substr(prefix.size());
    // etcd also serves the lease calls under kv/lease/ (etcd3gw uses both).
    if (rest.starts_with("kv/lease/")) rest.remove_prefix(3);
    *resource = std::string(rest);
    if (rest.starts_with("kv/")) return Route::kEtcdKv;
    if (rest.starts_with("lease/")) return Route::kEtcdLease;
    if (rest == "watch") return Route::kEtcdWatch;
    if (rest.starts_with("maintenance/") || rest.starts_with("cluster/")) return Route::kEtcdCluster;
    return Route::kUnknown;
  }
  return Route::kUnknown;
}

HttpResponse PlainAnswer(int status, std::string_view text) {
  HttpResponse res;
  res.status = status;
  res.content_type = "text/plain; charset=utf-8";
  res.body = std::string(text);
  res.error_code = status == 404 ? "not_found" : "method_not_allowed";
  return res;
}

}  // namespace

EtcdApi::EtcdApi(core::KvStore& store, AdmissionPipeline& admission, EtcdOptions options)
    : store_(store), admission_(admission), options_(std::move(options)) {}

std::optional<HttpResponse> EtcdApi::Admit(HttpRequest& req) {
  std::string resource;
  const Route route = RouteOf(req.path, &resource);
  std::optional<HttpResponse> refusal = admission_.AdmitRequest(req, &req.admission);
  if (!refusal) return std::nullopt;
  HttpResponse res = AsEtcdRefusal(std::move(*refusal));
  admission_.Finish(route, req.method, req.admission, req.remote_addr, 0, &res);
  return res;
}

HttpResponse EtcdApi::Refused(int status, std::string_view problem, std::string_view remote_addr) {
  HttpResponse kvctl = admission_.Refused(status, problem, remote_addr);  // counted and logged there
  return AsEtcdRefusal(std::move(kvctl));
}

HttpResponse EtcdApi::Handle(const HttpRequest& req) {
  std::string resource;
  const Route route = RouteOf(req.path, &resource);
  Admission here;
  const Admission* admission = &req.admission;
  HttpResponse res;
  if (!admission->done) {
    admission = &here;
    if (auto refusal = admission_.AdmitRequest(req, &here)) {
      res = AsEtcdRefusal(std::move(*refusal));
      admission_.Finish(route, req.method, here, req.remote_addr, req.body.size(), &res);
      return res;
    }
  }
  if (route == Route::kUnknown) {
    // etcd: the gateway's mux says "Not Found" under a version prefix, Go's
    // own mux "404 page not found" elsewhere.
    res = resource.empty() ? PlainAnswer(404, "404 page not found\n") : PlainAnswer(404, "Not Found\n");
  } else if (route == Route::kEtcdVersion) {
    res = req.method == "GET" || req.method == "HEAD" ? Version() : PlainAnswer(405, "Method Not Allowed\n");
  } else if (req.method != "POST") {
    res = PlainAnswer(405, "Method Not Allowed\n");
  } else {
    Call call{req, resource, nlohmann::json::object(), admission->caller};
    std::optional<HttpResponse> unparsed = ParseBody(req, call);
    if (unparsed) {
      res = std::move(*unparsed);
    } else {
      try {
        res = Dispatch(call);
      } catch (const std::exception& e) {
        res = ErrorAnswer({etcd::kInternal, fmt::format("internal error: {}", e.what())});
      }
    }
  }
  admission_.Finish(route, req.method, *admission, req.remote_addr, req.body.size(), &res);
  return res;
}

std::optional<HttpResponse> EtcdApi::ParseBody(const HttpRequest& req, Call& call) {
  if (!req.body.empty()) {
    // One value is read and what follows it ignored, as Go's decoder does:
    // a stream reads just one, but costs a third of a put's time, so the
    // usual body (one object, nothing after it) is parsed whole first.
    call.body = nlohmann::json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (call.body.is_discarded()) {
      try {
        std::istringstream in(req.body);
        in >> call.body;
      } catch (const nlohmann::json::exception& e) {
        return ErrorAnswer({etcd::kInvalidArgument, fmt::format("invalid JSON: {}", e.what())});
      }
    }
  }
  if (!call.body.is_object()) {
    return ErrorAnswer({etcd::kInvalidArgument,
                        fmt::format("json: cannot unmarshal {} into Go value of type map[string]json.RawMessage",
                                    call.body.type_name())});
  }
  return std::nullopt;
}

bool EtcdApi::HandleAsync(HttpRequest& req, Reply reply) {
  if (!req.admission.done || req.method != "POST") return false;
  std::string resource;
  const Route route = RouteOf(req.path, &resource);
  const bool put = resource == "kv/put";
  const bool range = resource == "kv/range";
  if (!put && !range && resource != "kv/txn") return false;
  Call call{req, resource, nlohmann::json::object(), req.admission.caller};
  etcd::PutAsk ask;
  std::shared_ptr<etcd::TxnAsk> txn;
  std::optional<HttpResponse> answer;
  try {
    // The usual put body is read without a JSON tree (etcd_put_body.h);
    // any other goes the full way.
    std::optional<etcd::PutAsk> plain = put ? etcd::ReadPlainPutBody(req.body) : std::nullopt;
    if (plain) {
      ask = std::move(*plain);
      answer = CheckPutAsk(call, ask);
    } else {
      answer = ParseBody(req, call);
      if (!answer && put) answer = ReadPut(call, &ask);
    }
    if (!answer && !put && !range) {
      txn = std::make_shared<etcd::TxnAsk>();
      answer = ReadTxnAsk(call, txn.get());
      // One that reads a past revision reads the log (or the database)
      // before it is queued: it waits on the pool.
      if (!answer && etcd::ReadsPast(*txn)) return false;
    }
    if (!answer && range) {
      // A range of the current data reads memory only, as a GET of kvctl's
      // own API does, so it is answered here on the loop: a hop to the
      // worker pool and back cost half the face's range rate. One at a past
      // revision may read the log (or the database): it waits on the pool.
      int64_t revision = 0;
      if (!etcd::ReadInt(call.body, "revision", &revision) && revision > 0) return false;
      answer = Range(call);
    }
  } catch (const std::exception& e) {
    answer = ErrorAnswer({etcd::kInternal, fmt::format("internal error: {}", e.what())});
  }
  // A put that reads the key first (prev_kv, ignore_*) waits on the pool.
  if (!answer && ask.NeedsRead()) return false;
  // The answer outlives the request: what finishing it needs is moved out.
  auto finish = [this, route, method = req.method, admission = std::move(req.admission),
                 remote = req.remote_addr, bytes_in = req.body.size(),
                 reply = std::move(reply)](HttpResponse res) mutable {
    admission_.Finish(route, method, admission, remote, bytes_in, &res);
    reply(std::move(res));
  };
  if (answer) {
    finish(std::move(*answer));
    return true;
  }
  if (txn) {
    try {
      StartTxn(std::move(txn), finish);
    } catch (const std::exception& e) {
      // Planning it may throw (out of memory), before it is queued and
      // before `finish` (a copy went in) was called.
      finish(ErrorAnswer({etcd::kInternal, fmt::format("internal error: {}", e.what())}));
    }
    return true;
  }
  etcd::PlainPutAsync(store_, ask,
                      [this, finish = std::move(finish)](std::optional<Error> error, etcd::PutReply done) mutable {
                        finish(PutAnswer(error, done));
                      });
  return true;
}

HttpResponse EtcdApi::Dispatch(Call& call) {
  const std::string& r = call.resource;
  if (r == "kv/put") return Put(call);
  if (r == "kv/range") return Range(call);
  if (r == "kv/deleterange") return DeleteRange(call);
  if (r == "kv/txn") return Txn(call);
  if (r == "kv/compaction") return Compaction(call);
  if (r == "lease/grant") return LeaseGrant(call);
  if (r == "lease/revoke") return LeaseRevoke(call);
  if (r == "lease/keepalive") return LeaseKeepAlive(call);
  if (r == "lease/timetolive") return LeaseTimeToLive(call);
  if (r == "lease/leases") return Leases(call);
  if (r == "maintenance/status") return Status(call);
  if (r == "cluster/member/list") return MemberList(call);
  if (r == "watch") return Watch(call);
  return PlainAnswer(404, "Not Found\n");
}

}  // namespace kvctl::server
