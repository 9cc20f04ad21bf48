#include "lib/server/client_trust.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "lib/tls/tls_stream.h"

namespace kvctl::server {
namespace {

using core::Status;

// Frees OpenSSL objects at scope exit.
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct CrlFree {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using CrlPtr = std::unique_ptr<X509_CRL, CrlFree>;

std::string NameOf(const X509_NAME* name) {
  char buf[256];
  X509_NAME_oneline(name, buf, sizeof buf);
  return buf;
}

// Every PEM object `read` finds in `path`, in order. An error when the file
// cannot be opened or holds something that is not one (the end of the
// objects is not an error).
template <typename T, typename Read>
core::Result<std::vector<std::unique_ptr<T, void (*)(T*)>>> ReadPems(const std::string& path, Read read,
                                                                       void (*free)(T*)) {
  ERR_clear_error();
  std::unique_ptr<BIO, BioFree> bio(BIO_new_file(path.c_str(), "r"));
  if (bio == nullptr) {
    ERR_clear_error();
    return Status::InvalidArgument(fmt::format("cannot read it: {}", std::strerror(errno)));
  }
  std::vector<std::unique_ptr<T, void (*)(T*)>> out;
  while (T* item = read(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(item, free);
  const unsigned long last = ERR_peek_last_error();
  if (ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE) {
    ERR_clear_error();  // the end of the file
  } else if (last != 0) {
    return Status::InvalidArgument(tls::OpenSslReasons());
  }
  return out;
}

std::string When(const ASN1_TIME* t) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || t == nullptr) return "?";
  ASN1_TIME_print(bio.get(), t);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

core::Result<std::shared_ptr<ClientTrust>> ClientTrust::Load(std::string ca_file, std::string crl_file,
                                                             core::Logger* logger) {
  std::shared_ptr<ClientTrust> trust(new ClientTrust(std::move(ca_file), std::move(crl_file), logger));
  std::lock_guard lock(trust->mu_);
  if (Status s = trust->LoadLocked(trust->VersionNow()); !s.ok()) return s;
  return trust;
}

ClientTrust::~ClientTrust() { X509_STORE_free(store_); }

X509_STORE* ClientTrust::Acquire() {
  std::lock_guard lock(mu_);
  X509_STORE_up_ref(store_);
  return store_;
}

core::Status ClientTrust::Verify(std::string_view cert_pem, std::string_view chain_pem) {
  ReloadIfChanged();
  std::unique_ptr<X509_STORE, StoreFree> store(Acquire());
  std::unique_ptr<BIO, BioFree> cert_bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  X509Ptr cert(cert_bio == nullptr ? nullptr : PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (cert == nullptr) return Status::InvalidArgument("the client sent no readable certificate");
  std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)> chain(
      sk_X509_new_null(), [](STACK_OF(X509)* s) { sk_X509_pop_free(s, X509_free); });
  if (chain == nullptr) return Status::InvalidArgument("out of memory");
  std::unique_ptr<BIO, BioFree> chain_bio(BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())));
  while (chain_bio != nullptr) {
    X509* next = PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr);
    if (next == nullptr) break;
    sk_X509_push(chain.get(), next);
  }
  ERR_clear_error();  // the end of the chain
  std::unique_ptr<X509_STORE_CTX, void (*)(X509_STORE_CTX*)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
  if (ctx == nullptr || X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), chain.get()) != 1) {
    ERR_clear_error();
    return Status::InvalidArgument("out of memory");
  }
  // As OpenSSL judges a client's certificate in a handshake.
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  if (X509_verify_cert(ctx.get()) == 1) return Status::Ok();
  const int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  return Status::InvalidArgument(fmt::format("the client certificate of {} is refused: {}",
                                             NameOf(X509_get_subject_name(cert.get())),
                                             X509_verify_cert_error_string(error)));
}

ClientTrust::FileVersion ClientTrust::VersionNow() const {
  struct stat st {};
  if (::stat(crl_file_.c_str(), &st) != 0) return {};
  return {true, st.st_dev, st.st_ino, st.st_size,
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

Status ClientTrust::Reload() {
  std::lock_guard lock(mu_);
  return LoadLocked(VersionNow());
}

void ClientTrust::ReloadIfChanged() {
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t next = next_look_ns_.load(std::memory_order_relaxed);
  // One caller a second looks; the others go on with the current store.
  if (now < next || !next_look_ns_.compare_exchange_strong(next, now + 1'000'000'000)) return;
  const FileVersion version = VersionNow();
  std::lock_guard lock(mu_);
  if (version == tried_) return;
  (void)LoadLocked(version);  // logs its outcome
}

Status ClientTrust::LoadLocked(const FileVersion& version) {
  tried_ = version;
  auto failed = [&](std::string why, std::string_view setting = "tls.client_crl") {
    const std::string& file = setting == "tls.client_crl" ? crl_file_ : ca_file_;
    Status s = Status::InvalidArgument(fmt::format("{} = {}: {}", setting, file, why));
    if (store_ != nullptr && logger_ != nullptr) {
      logger_->Error("kept the client certificate revocation list loaded before; the new one is unusable",
                     {{"file", crl_file_}, {"cause", s.message()}});
    }
    return s;
  };
  auto cas = ReadPems<X509>(ca_file_, PEM_read_bio_X509, X509_free);
  if (!cas) return failed(cas.error().message(), "tls.client_ca");
  auto crls = ReadPems<X509_CRL>(crl_file_, PEM_read_bio_X509_CRL, X509_CRL_free);
  if (!crls) return failed(crls.error().message());
  if (crls->empty()) {
    return failed("holds no PEM certificate revocation list (make one with openssl ca -gencrl)");
  }
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  if (store == nullptr) return failed("out of memory");
  for (const auto& ca : *cas) X509_STORE_add_cert(store.get(), ca.get());
  size_t revoked = 0;
  for (const auto& crl : *crls) {
    const X509_NAME* issuer = X509_CRL_get_issuer(crl.get());
    bool signed_by_ca = false;
    for (const auto& ca : *cas) {
      if (X509_NAME_cmp(issuer, X509_get_subject_name(ca.get())) != 0) continue;
      EVP_PKEY* key = X509_get0_pubkey(ca.get());
      if (key != nullptr && X509_CRL_verify(crl.get(), key) == 1) signed_by_ca = true;
    }
    ERR_clear_error();
    if (!signed_by_ca) {
      return failed(fmt::format("the revocation list of {} is not signed by a CA of tls.client_ca = {} (use the "
                                "CRL of the CA that issues the client certificates)",
                                NameOf(issuer), ca_file_));
    }
    const ASN1_TIME* next_update = X509_CRL_get0_nextUpdate(crl.get());
    if (next_update != nullptr && X509_cmp_current_time(next_update) < 0) {
      return failed(fmt::format("the revocation list of {} expired at {}, and with it every client "
                                "certificate would be refused (publish a new one: openssl ca -gencrl)",
                                NameOf(issuer), When(next_update)));
    }
    if (X509_cmp_current_time(X509_CRL_get0_lastUpdate(crl.get())) > 0) {
      return failed(fmt::format("the revocation list of {} is not valid before {} (check the clocks)",
                                NameOf(issuer), When(X509_CRL_get0_lastUpdate(crl.get()))));
    }
    const STACK_OF(X509_REVOKED)* entries = X509_CRL_get_REVOKED(crl.get());
    revoked += entries == nullptr ? 0 : static_cast<size_t>(sk_X509_REVOKED_num(entries));
    X509_STORE_add_crl(store.get(), crl.get());
  }
  // The leaf's issuer must have a CRL (X509_V_FLAG_CRL_CHECK); the CAs
  // above it are trusted as configured.
  X509_STORE_set_flags(store.get(), X509_V_FLAG_CRL_CHECK);
  const bool first = store_ == nullptr;
  X509_STORE_free(store_);
  store_ = store.release();
  if (logger_ != nullptr) {
    logger_->Info(first ? "loaded the client certificate revocation list"
                        : "reloaded the client certificate revocation list",
                  {{"file", crl_file_}, {"crls", std::to_string(crls->size())}, {"revoked", std::to_string(revoked)}});
  }
  return Status::Ok();
}

}  // namespace kvctl::server
