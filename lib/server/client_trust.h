// What the server verifies client certificates against (mutual TLS): the CA
// certificates of tls.client_ca and, with tls.client_crl, the certificate
// revocation lists that CA published, so one lost laptop's certificate can
// be refused without a new CA.
//
// The CRL file is reread on Reload() (SIGHUP) and, at handshake time, when
// the file has changed (its mtime, size or inode; looked at no more than
// once a second). A reread builds a new store; the old one stays in use
// until the new one has loaded and checked out, so a bad file never leaves
// the server without its CRL: it logs why and keeps the old one.
//
// Every CRL in the file must be signed by a CA of tls.client_ca and be
// current (this update in the past, next update in the future). With CRLs
// checked, a client certificate whose issuer has no CRL in the file is
// refused (fail closed), as is every certificate once the CRL has expired.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "lib/core/logger.h"
#include "lib/core/status.h"

struct x509_store_st;

namespace kvctl::server {

class ClientTrust {
 public:
  // Loads both files. InvalidArgument naming the setting and the file (exit
  // 2 at start). `logger` may be null; it gets a line per (re)load.
  static core::Result<std::shared_ptr<ClientTrust>> Load(std::string ca_file, std::string crl_file,
                                                         core::Logger* logger);
  ~ClientTrust();
  ClientTrust(const ClientTrust&) = delete;
  ClientTrust& operator=(const ClientTrust&) = delete;

  // The store to verify a client certificate with now, with a reference
  // the caller owns (give it to SSL_set0_verify_cert_store, or free it).
  x509_store_st* Acquire();

  // Rereads the CRL file now. On failure keeps the current store, logs why
  // and returns the reason.
  core::Status Reload();

  // Rereads the CRL file if it has changed since it was last read; looks at
  // the file at most once a second, whoever calls. For handshakes.
  void ReloadIfChanged();

  // Verifies a client certificate (PEM) with the chain it came with (PEM,
  // any number of certificates; the leaf may be among them) against the
  // store as it is now (the CRL reread first if its file changed): for a
  // TLS stack that verifies with no store of ours (gRPC's, which checks no
  // CRL of its own). InvalidArgument saying why it is refused.
  core::Status Verify(std::string_view cert_pem, std::string_view chain_pem);

  const std::string& crl_file() const { return crl_file_; }

 private:
  // What identifies one version of the CRL file.
  struct FileVersion {
    bool readable = false;
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileVersion&) const = default;
  };
  ClientTrust(std::string ca_file, std::string crl_file, core::Logger* logger)
      : ca_file_(std::move(ca_file)), crl_file_(std::move(crl_file)), logger_(logger) {}
  FileVersion VersionNow() const;
  // Builds a store from the files; on success installs it (under mu_).
  core::Status LoadLocked(const FileVersion& version);

  const std::string ca_file_;
  const std::string crl_file_;
  core::Logger* const logger_;
  std::mutex mu_;
  x509_store_st* store_ = nullptr;  // guarded by mu_
  FileVersion tried_;               // guarded by mu_: the version last read, good or bad
  std::atomic<int64_t> next_look_ns_{0};  // steady clock: when the file may be looked at again
};

}  // namespace kvctl::server
