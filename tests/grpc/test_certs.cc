#include "grpc/test_certs.h"

#include <stdlib.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace edge::testing {
namespace {

absl::Status Run(const std::string& command) {
  const std::string quiet = absl::StrCat(command, " >/dev/null 2>&1");
  const int rc = std::system(quiet.c_str());
  if (rc != 0) return absl::InternalError(absl::StrCat("failed (", rc, "): ", command));
  return absl::OkStatus();
}

absl::Status WriteTextFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

constexpr char kKeyOptions[] = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

}  // namespace

absl::StatusOr<TestCerts> TestCerts::Generate() {
  char pattern[] = "/tmp/edge-certs-XXXXXX";
  if (mkdtemp(pattern) == nullptr) return absl::InternalError("mkdtemp failed");
  TestCerts certs(pattern);
  const std::string& d = certs.dir_;

  auto make_ca = [&](const std::string& name) {
    return Run(absl::StrCat("openssl req -x509 ", kKeyOptions, " -keyout ", d, "/", name,
                            ".key -out ", d, "/", name, ".pem -days 2 -subj /CN=", name));
  };
  auto make_leaf = [&](const std::string& name, const std::string& cn, const std::string& ca,
                       const std::string& extensions) -> absl::Status {
    const std::string ext_file = absl::StrCat(d, "/", name, ".ext");
    if (auto s = WriteTextFile(ext_file, extensions); !s.ok()) return s;
    if (auto s = Run(absl::StrCat("openssl req ", kKeyOptions, " -keyout ", d, "/", name,
                                  ".key -out ", d, "/", name, ".csr -subj /CN=", cn));
        !s.ok()) {
      return s;
    }
    return Run(absl::StrCat("openssl x509 -req -in ", d, "/", name, ".csr -CA ", d, "/", ca,
                            ".pem -CAkey ", d, "/", ca, ".key -CAcreateserial -out ", d, "/", name,
                            ".pem -days 2 -extfile ", ext_file));
  };

  const std::string server_ext =
      "basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
      "extendedKeyUsage=serverAuth\n";
  const std::string client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
  const std::string uri_ext =
      "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
      "subjectAltName=URI:giggityflix://peer/peer-uri\n";
  for (absl::Status s :
       {make_ca("ca"), make_ca("rogue_ca"), make_leaf("server", "edge-one", "ca", server_ext),
        make_leaf("server2", "edge-two", "ca", server_ext),
        make_leaf("client_cn", "peer-cn", "ca", client_ext),
        make_leaf("client_uri", "ignored-cn", "ca", uri_ext),
        make_leaf("client_rogue", "peer-cn", "rogue_ca", client_ext)}) {
    if (!s.ok()) {
      certs.Remove();
      return s;
    }
  }
  return certs;
}

void TestCerts::Remove() const {
  if (!dir_.empty()) Run(absl::StrCat("rm -rf ", dir_)).IgnoreError();
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

absl::Status CopyFile(const std::string& from, const std::string& to) {
  auto contents = ReadTextFile(from);
  if (!contents.ok()) return contents.status();
  // Write to a temporary name, then rename: readers never see half a file.
  const std::string tmp = to + ".tmp";
  if (auto s = WriteTextFile(tmp, *contents); !s.ok()) return s;
  if (std::rename(tmp.c_str(), to.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", tmp, " to ", to));
  }
  return absl::OkStatus();
}

}  // namespace edge::testing
