#!/usr/bin/env bash
# The direction of dependencies (shared/STYLE.md), checked on the includes:
# the link line alone would miss a header-only use. lib/core knows no HTTP,
# SQL, TOML, CLI or JSON library; httplib.h is included by exactly one client
# file, and the peer forwarder (the server has its own transport,
# lib/server/http_server.cpp); pqxx
# (and libpq) only by lib/pg; etcd's operations (lib/etcd) know no wire
# format, and gRPC is only lib/grpc's; grants (lib/access) know nothing but
# the standard library, so every face may judge by them.
set -u
cd "$(dirname "$0")/.."
status=0

forbid() {  # folder, pattern of header names, why
  local hits
  if hits=$(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]($2)" "$1"); then
    printf '%s must not include these (%s):\n%s\n' "$1" "$3" "$hits"
    status=1
  fi
}
forbid lib/core 'httplib|pqxx|toml|CLI/|nlohmann' 'the core knows no HTTP, SQL, TOML, CLI or JSON library'
forbid lib/config 'httplib|pqxx|CLI/' 'config is TOML and environment only; flags are wired in cmd/'
forbid lib/server 'pqxx|toml|CLI/' 'the server gets its options as values'
forbid lib/client 'pqxx|toml|CLI/' 'the client gets its options as values'
forbid lib/completion 'httplib|pqxx|toml|CLI/' 'completion renders a command tree that cmd/ builds from CLI11'
forbid lib/bench 'httplib|pqxx|toml|CLI/|lib/server|lib/client' 'the load generator speaks HTTP itself and gets its options as values'
forbid lib/access 'httplib|pqxx|toml|CLI/|nlohmann|grpc|openssl|etcd/etcdserver|lib/(core|server|grpc|etcd|client|config|tls)' 'grants are plain values every face judges by: the standard library only'
forbid lib/etcd 'httplib|pqxx|toml|CLI/|nlohmann|grpc|etcd/etcdserver|lib/(server|grpc|client|config)' 'etcd operations have no wire format: the faces translate'
forbid lib/grpc 'httplib|pqxx|toml|CLI/|nlohmann|lib/(server|client|config)' 'the gRPC face translates over lib/etcd; neither etcd face calls the other'
forbid lib/server 'grpcpp|etcd/etcdserver' 'gRPC is the gRPC face'\''s own (lib/grpc); the server only starts it'
forbid lib/tls 'httplib|pqxx|toml|CLI/|nlohmann|lib/(core|config|server|client|bench|completion)' 'TLS sessions know nothing of HTTP or of who uses them'

users=$(grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]httplib' lib cmd | sort | tr '\n' ' ')
if [ "$users" != "lib/client/kv_client.cpp lib/client/peer_forwarder.cpp " ]; then
  echo "httplib.h must be included only by lib/client/kv_client.cpp and lib/client/peer_forwarder.cpp; it is by: $users"
  status=1
fi
pqxx_users=$(grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](pqxx|libpq-fe)' lib cmd tests | grep -v '^lib/pg/' | sort | tr '\n' ' ')
if [ -n "$pqxx_users" ]; then
  echo "pqxx and libpq are included only under lib/pg/; they are also by: $pqxx_users"
  status=1
fi
# OpenSSL's TLS API: the shared non-blocking session, the server's and the
# bench's contexts, and the CLI client (through httplib).
users=$(grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]openssl/ssl\.h' lib cmd | sort | tr '\n' ' ')
if [ "$users" != "lib/bench/bench_tls.cpp lib/server/tls.cpp lib/tls/tls_stream.cpp " ]; then
  echo "openssl/ssl.h must be included only by lib/tls/tls_stream.cpp, lib/server/tls.cpp and lib/bench/bench_tls.cpp; it is by: $users"
  status=1
fi
[ $status -eq 0 ] && echo "layering ok"
exit $status
