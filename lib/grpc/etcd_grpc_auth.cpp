// Auth's Authenticate: etcd's clients log in with a name and a password
// (etcdctl --user NAME:PASSWORD, python3-etcd3's user= and password=) and
// then send the token it answers as "token" metadata on every call. Here
// the name is that of an [[auth.tokens]] entry and the password its token;
// the gate (the server's Authenticator) judges them, with the rate limit
// in front as for every call.
#include "lib/grpc/etcd_grpc_services.h"

namespace kvctl::etcd_grpc {

grpc::ServerUnaryReactor* AuthService::Authenticate(grpc::CallbackServerContext* context,
                                                    const etcdserverpb::AuthenticateRequest* request,
                                                    etcdserverpb::AuthenticateResponse* response) {
  UnaryCall* call = UnaryCall::Start(admitter_, Method::kAuthenticate, context, *request, *response);
  if (call->refused()) return call;
  std::string token;
  if (auto e = admitter_.gate.Authenticate(request->name(), request->password(), &token)) return call->Reply(*e);
  FillHeader(options_, store_.revision(), response->mutable_header());
  response->set_token(std::move(token));
  return call->Reply(grpc::Status::OK);
}

}  // namespace kvctl::etcd_grpc
