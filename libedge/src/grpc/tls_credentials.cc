#include "tls_credentials.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace edge::grpc_transport::internal {
namespace {

constexpr absl::string_view kPeerUriPrefix = "giggityflix://peer/";

absl::StatusOr<std::string> ReadFile(const std::string& path, absl::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": cannot be read"));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": read error"));
  return contents.str();
}

std::string OpenSslError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "no PEM data";
  char buffer[256];
  ERR_error_string_n(code, buffer, sizeof(buffer));
  return buffer;
}

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Parses every certificate of `pem`; returns the first one.
absl::StatusOr<X509Ptr> ParseCertificates(const std::string& pem, absl::string_view what,
                                          const std::string& path) {
  ERR_clear_error();
  BioPtr bio = MemoryBio(pem);
  X509Ptr first(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (first == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " ", path, ": no PEM certificate (", OpenSslError(), ")"));
  }
  while (X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) != nullptr) {
  }
  ERR_clear_error();  // The end of the data reads as an error.
  return first;
}

}  // namespace

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFiles& files) {
  TlsMaterial material;
  auto chain = ReadFile(files.cert_file, "TLS certificate file");
  if (!chain.ok()) return chain.status();
  auto key_pem = ReadFile(files.key_file, "TLS key file");
  if (!key_pem.ok()) return key_pem.status();
  auto leaf = ParseCertificates(*chain, "TLS certificate file", files.cert_file);
  if (!leaf.ok()) return leaf.status();

  ERR_clear_error();
  BioPtr key_bio = MemoryBio(*key_pem);
  KeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("TLS key file ", files.key_file,
                                                   ": no PEM private key (", OpenSslError(), ")"));
  }
  if (X509_check_private_key(leaf->get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        "TLS key file ", files.key_file, " does not match the certificate in ", files.cert_file));
  }
  material.cert_chain = *std::move(chain);
  material.private_key = *std::move(key_pem);

  if (!files.client_ca_file.empty()) {
    auto ca = ReadFile(files.client_ca_file, "TLS client CA file");
    if (!ca.ok()) return ca.status();
    auto first_ca = ParseCertificates(*ca, "TLS client CA file", files.client_ca_file);
    if (!first_ca.ok()) return first_ca.status();
    material.client_ca = *std::move(ca);
  }
  return material;
}

absl::StatusOr<std::shared_ptr<ReloadableTlsServerCredentials>>
ReloadableTlsServerCredentials::Create(TlsFiles files) {
  auto material = LoadTlsMaterial(files);
  if (!material.ok()) return material.status();
  std::shared_ptr<ReloadableTlsServerCredentials> credentials(
      new ReloadableTlsServerCredentials(std::move(files), *std::move(material)));
  if (credentials->c_credentials_ == nullptr) {
    return absl::InternalError("gRPC refused to create SSL server credentials");
  }
  return credentials;
}

ReloadableTlsServerCredentials::ReloadableTlsServerCredentials(TlsFiles files, TlsMaterial material)
    : files_(std::move(files)), material_(std::move(material)) {
  const grpc_ssl_client_certificate_request_type request =
      files_.client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                    : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  grpc_ssl_server_credentials_options* options =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(request, &FetchConfig, this);
  c_credentials_ = grpc_ssl_server_credentials_create_with_options(options);
}

ReloadableTlsServerCredentials::~ReloadableTlsServerCredentials() {
  // The server that used these credentials is gone (it is destroyed before
  // them), so the fetcher is no longer called.
  if (c_credentials_ != nullptr) grpc_server_credentials_release(c_credentials_);
}

absl::Status ReloadableTlsServerCredentials::Reload() {
  auto material = LoadTlsMaterial(files_);
  if (!material.ok()) return material.status();
  absl::MutexLock lock(&mu_);
  material_ = *std::move(material);
  ++generation_;
  return absl::OkStatus();
}

int ReloadableTlsServerCredentials::AddPortToServer(const std::string& addr, grpc_server* server) {
  return grpc_server_add_http2_port(server, addr.c_str(), c_credentials_);
}

// Called by gRPC at server start and before every handshake; hands out a new
// configuration only when Reload() installed one since the last call.
grpc_ssl_certificate_config_reload_status ReloadableTlsServerCredentials::FetchConfig(
    void* self_ptr, grpc_ssl_server_certificate_config** config) {
  auto* self = static_cast<ReloadableTlsServerCredentials*>(self_ptr);
  absl::MutexLock lock(&self->mu_);
  if (self->fetched_generation_ == self->generation_) {
    return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  }
  // self->material_ spelled out rather than through a local reference: the
  // thread-safety analysis cannot tie a reference to self->mu_.
  grpc_ssl_pem_key_cert_pair pair = {self->material_.private_key.c_str(),
                                     self->material_.cert_chain.c_str()};
  // gRPC 1.51 asserts that a fetched config carries root certificates even
  // when client certificates are not requested. Without a client CA the
  // server's own chain fills that slot; it is never used, since the
  // handshake then neither requests nor verifies a client certificate.
  const std::string& roots =
      self->material_.client_ca.empty() ? self->material_.cert_chain : self->material_.client_ca;
  *config = grpc_ssl_server_certificate_config_create(roots.c_str(), &pair, 1);
  if (*config == nullptr) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
  self->fetched_generation_ = self->generation_;
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

std::string CertificateIdentity(const grpc::AuthContext& auth, bool cn_fallback) {
  if (!auth.IsPeerAuthenticated()) return "";
  for (const char* property : {GRPC_PEER_URI_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
    for (const grpc::string_ref& value : auth.FindPropertyValues(property)) {
      absl::string_view san(value.data(), value.size());
      if (absl::StartsWith(san, kPeerUriPrefix) && san.size() > kPeerUriPrefix.size()) {
        return std::string(san.substr(kPeerUriPrefix.size()));
      }
    }
  }
  if (!cn_fallback) return "";
  for (const grpc::string_ref& value : auth.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
    return std::string(value.data(), value.size());
  }
  return "";
}

}  // namespace edge::grpc_transport::internal
