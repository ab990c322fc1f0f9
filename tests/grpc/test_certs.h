// TestCerts: throw-away certificates made with the openssl command line in a
// temporary directory, for TLS tests.
//
//   ca        the CA servers and clients trust
//   server    CN=edge-one, SAN DNS:localhost IP:127.0.0.1, signed by ca
//   server2   CN=edge-two, same SANs, signed by ca (for reloads)
//   client_cn       CN=peer-cn, signed by ca
//   client_uri      CN=ignored-cn, SAN URI:giggityflix://peer/peer-uri, by ca
//   client_rogue    CN=peer-cn, signed by another CA
#ifndef EDGE_TESTS_GRPC_TEST_CERTS_H_
#define EDGE_TESTS_GRPC_TEST_CERTS_H_

#include <string>

#include "absl/status/statusor.h"

namespace edge::testing {

class TestCerts {
 public:
  static absl::StatusOr<TestCerts> Generate();

  const std::string& dir() const { return dir_; }
  // "<dir>/<name>.pem" (certificate) and "<dir>/<name>.key".
  std::string cert(const std::string& name) const { return dir_ + "/" + name + ".pem"; }
  std::string key(const std::string& name) const { return dir_ + "/" + name + ".key"; }

  // Removes the directory.
  void Remove() const;

 private:
  explicit TestCerts(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

absl::StatusOr<std::string> ReadTextFile(const std::string& path);
absl::Status CopyFile(const std::string& from, const std::string& to);

}  // namespace edge::testing

#endif  // EDGE_TESTS_GRPC_TEST_CERTS_H_
