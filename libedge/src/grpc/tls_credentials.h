// Server TLS whose certificate, key and client CAs can be replaced while the
// server runs: new handshakes use the newest files, established connections
// keep theirs.
//
// gRPC 1.51's TlsServerCredentials offers no way to push new certificates on
// demand (its static provider never changes, its file watcher polls), while
// the SSL credentials' certificate-config fetcher is asked at every
// handshake. This wraps that fetcher in a grpc::ServerCredentials.
#ifndef EDGE_SRC_GRPC_TLS_CREDENTIALS_H_
#define EDGE_SRC_GRPC_TLS_CREDENTIALS_H_

#include <grpc/grpc_security.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/server_credentials.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace edge::grpc_transport::internal {

struct TlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // "" when clients are not verified
};

// The PEM contents of TlsFiles, checked: the chain holds at least one
// certificate, the key matches its first one, the CA file holds at least one
// certificate.
struct TlsMaterial {
  std::string cert_chain;
  std::string private_key;
  std::string client_ca;
};

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFiles& files);

class ReloadableTlsServerCredentials final : public grpc::ServerCredentials {
 public:
  static absl::StatusOr<std::shared_ptr<ReloadableTlsServerCredentials>> Create(TlsFiles files);
  ~ReloadableTlsServerCredentials() override;

  // Re-reads the files; on success the next handshake uses them.
  absl::Status Reload();

  // The transport installs no auth metadata processor; peers are identified
  // by their certificate (see CertificateIdentity).
  void SetAuthMetadataProcessor(
      const std::shared_ptr<grpc::AuthMetadataProcessor>& processor) override {}

 private:
  ReloadableTlsServerCredentials(TlsFiles files, TlsMaterial material);

  int AddPortToServer(const std::string& addr, grpc_server* server) override;

  static grpc_ssl_certificate_config_reload_status FetchConfig(
      void* self, grpc_ssl_server_certificate_config** config);

  const TlsFiles files_;
  grpc_server_credentials* c_credentials_ = nullptr;

  absl::Mutex mu_;
  TlsMaterial material_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t fetched_generation_ ABSL_GUARDED_BY(mu_) = 0;
};

// The identity of the client certificate: the <id> of a URI SAN
// "giggityflix://peer/<id>"; without one, the subject Common Name only when
// `cn_fallback` (else ""); "" for a plaintext or certificate-less caller.
std::string CertificateIdentity(const grpc::AuthContext& auth, bool cn_fallback);

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_TLS_CREDENTIALS_H_
