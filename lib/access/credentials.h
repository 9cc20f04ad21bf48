// What a caller presented to say who it is, whatever carried it: read
// from an HTTP request's headers (lib/server/auth.h, CredentialsOf) or a
// gRPC call's metadata and TLS session (lib/grpc), then judged by the one
// Authenticator (lib/server/auth.h).
//
// Views: valid as long as the request or call they were read from.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace kvctl::access {

struct Credentials {
  // How many credential fields came (HTTP: Authorization headers; gRPC:
  // "authorization" and "token" metadata). More than one authenticates
  // nobody: a proxy in front may have judged another one than this server
  // would. `fields_name` names them in that refusal.
  size_t fields = 0;
  std::string_view fields_name = "Authorization fields";
  // kvctl's form: the (first) Authorization value, "Bearer TOKEN".
  std::optional<std::string_view> authorization;
  // etcd's form, gRPC "token" metadata: the token alone, as etcd's
  // Auth.Authenticate answered it.
  std::optional<std::string_view> token;
  // The subject CN of a client certificate verified against
  // tls.client_ca; "" without one.
  std::string_view peer_common_name;
};

}  // namespace kvctl::access
