// TLS for `kvctl bench`: the client's OpenSSL context (the server verified
// against --cacert, else the system's CAs; --cert/--key for mutual TLS)
// and a first handshake that turns a refused one into a clear error. The
// load's connections then run their sessions through lib/tls/tls_stream.h
// on the bench's own event loops.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "lib/core/status.h"
#include "lib/tls/tls_stream.h"

namespace kvctl::bench {

struct TlsClientOptions {
  bool enabled = false;  // https://
  std::string cacert;    // PEM; empty: the system's CAs
  std::string cert;      // PEM client certificate, with key; empty: none
  std::string key;
};

// InvalidArgument naming the flag and file when one cannot be used.
core::Result<std::shared_ptr<tls::Context>> MakeClientTlsContext(const TlsClientOptions& options);

// Completes a handshake with `host` on connected socket `fd` (non-blocking)
// and one GET /healthz over it, waiting at most `timeout`: Unavailable with
// OpenSSL's reason when the session fails (an untrusted server, a refused
// client certificate).
core::Status ProbeHandshake(const std::shared_ptr<tls::Context>& context, int fd, const std::string& host,
                            std::chrono::milliseconds timeout);

}  // namespace kvctl::bench
