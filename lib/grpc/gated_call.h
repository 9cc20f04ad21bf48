// A call of the gRPC face on its way through the gate (call_gate.h): its
// credentials read from its metadata ("token", etcd's; "authorization:
// Bearer TOKEN", kvctl's) and its TLS session (the client certificate's
// CN, under mutual TLS), its admission, and its report when it ends.
//
// - GatedCall is that passage for any reactor (the keepalive stream holds
//   one, admitted when the stream opens).
// - UnaryCall is the reactor of every unary method: the handler makes it
//   first, returns it at once when it is refused, and otherwise finishes
//   it with Reply() (or an operation's FinishWith()) once it has judged the
//   caller's grants and run the operation; it reports itself when gRPC is
//   done with it.
// - ServedOnly hands every method of a generated service that the face
//   does not serve over to UnservedCalls, which admits, counts and logs it
//   as any call and answers UNIMPLEMENTED (a method gRPC answered on its
//   own would pass by the pipeline).
//
// Reactors delete themselves when gRPC is done with them (OnDone), as
// gRPC's callback API has it: the pointers handlers return are not owned.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message_lite.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include "lib/etcd/types.h"
#include "lib/grpc/call_gate.h"

namespace kvctl::etcd_grpc {

// etcd's error as gRPC's status: its code and message, as etcd's server
// sends them (etcdctl prints the message).
grpc::Status StatusOf(const server::etcd::Error& error);

// How the face's calls reach the gate.
struct Admitter {
  CallGate& gate;
  // Mutual TLS (tls.client_ca): a call's client certificate CN is read.
  bool client_certificates = false;
};

class GatedCall {
 public:
  // Reads the call's credentials and admits it now; `name` is the method
  // as called (for kOther). The request id goes back to the client as
  // x-request-id metadata.
  GatedCall(const Admitter& admitter, Method method, grpc::ServerContextBase* context, std::string_view name = {});

  bool refused() const { return admitted_.refusal.has_value(); }
  // When refused(): the answer, and nothing else runs.
  grpc::Status Refusal() const { return StatusOf(*admitted_.refusal); }
  const access::Principal* caller() const { return admitted_.caller; }
  // The refusal of a call outside the caller's grants (counted): etcd's
  // permission denied.
  grpc::Status Forbidden() const;
  // Reports the ended call to the gate.
  void Finished(const grpc::Status& status, size_t bytes_in, size_t bytes_out) const;

 private:
  CallGate& gate_;
  const Method method_;
  const std::string name_;
  const std::chrono::steady_clock::time_point started_;
  std::string remote_;
  Admitted admitted_;
};

class UnaryCall final : public grpc::ServerUnaryReactor {
 public:
  // Admits the call; when it is refused, it is already finished with the
  // refusal. `request` and `response` are the call's own (for the sizes
  // reported).
  static UnaryCall* Start(const Admitter& admitter, Method method, grpc::CallbackServerContext* context,
                          const google::protobuf::MessageLite& request,
                          const google::protobuf::MessageLite& response);

  bool refused() const { return call_.refused(); }
  const access::Principal* caller() const { return call_.caller(); }

  // Finishes the call; returns it, for the handler to return.
  grpc::ServerUnaryReactor* Reply(const grpc::Status& status);
  grpc::ServerUnaryReactor* Reply(const server::etcd::Error& error) { return Reply(StatusOf(error)); }
  // Outside the caller's grants: counted, and etcd's permission denied.
  grpc::ServerUnaryReactor* Forbidden() { return Reply(call_.Forbidden()); }
  // The answer of an operation that may wait (lib/etcd's Done): the call
  // finished with the error, or with OK once `fill` wrote the reply into
  // the call's response.
  template <typename Reply, typename Fill>
  server::etcd::Done<Reply> FinishWith(Fill fill) {
    return [this, fill = std::move(fill)](std::optional<server::etcd::Error> error, Reply reply) {
      if (error) {
        this->Reply(*error);
        return;
      }
      fill(reply);
      this->Reply(grpc::Status::OK);
    };
  }

  void OnDone() override;

 private:
  UnaryCall(const Admitter& admitter, Method method, grpc::CallbackServerContext* context,
            const google::protobuf::MessageLite& request, const google::protobuf::MessageLite& response)
      : call_(admitter, method, context), request_(request), response_(response) {}

  GatedCall call_;
  const google::protobuf::MessageLite& request_;
  const google::protobuf::MessageLite& response_;
  grpc::Status status_;
};

// Every call of a method no service serves (kOther): admitted, counted and
// logged, then answered UNIMPLEMENTED (or its refusal).
class UnservedCalls final : public grpc::CallbackGenericService {
 public:
  explicit UnservedCalls(const Admitter& admitter) : admitter_(admitter) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* context) override;

 private:
  const Admitter& admitter_;
};

// The generated CallbackService of `Service` (etcdserverpb::KV, ...) with
// the methods the face does not serve (MethodNamed() is kOther) marked
// generic, so that gRPC hands their calls to UnservedCalls. The generated
// service numbers its methods in the order of its descriptor's, which
// names them.
template <typename Service>
class ServedOnly : public Service::CallbackService {
 protected:
  ServedOnly() {
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(Service::service_full_name());
    for (int i = 0; service != nullptr && i < service->method_count(); ++i) {
      const std::string name = "/" + service->full_name() + "/" + service->method(i)->name();
      if (MethodNamed(name) == Method::kOther) this->MarkMethodGeneric(i);
    }
  }
};

}  // namespace kvctl::etcd_grpc
