// ListenerProbe: does the gRPC listener still accept connections?
//
// gRPC 1.51 stops accepting for good after one `accept4` fails with EMFILE
// (CVE-2023-4785): the port stays bound, the kernel completes handshakes
// into the backlog, and no peer is ever served again, while the process
// looks alive. The probe connects to the listener every `interval` from its
// own thread and waits up to `timeout` for the server to act on the
// connection: for plaintext, gRPC sends its HTTP/2 SETTINGS as soon as it
// accepted; for TLS the probe sends a ClientHello and waits for any answer.
// `failures_to_fail` timeouts in a row (or no descriptor left to probe
// with) make status() an error that names the cause, so /healthz can fail
// and a supervisor restart the edge.
#ifndef EDGE_SRC_GRPC_LISTENER_PROBE_H_
#define EDGE_SRC_GRPC_LISTENER_PROBE_H_

#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace edge::grpc_transport::internal {

struct ListenerProbeOptions {
  std::string host;  // an IP literal to connect to (the listener's, or loopback)
  int port = 0;
  bool tls = false;
  absl::Duration interval = absl::Seconds(5);
  absl::Duration timeout = absl::Seconds(5);
  int failures_to_fail = 2;
};

class ListenerProbe {
 public:
  explicit ListenerProbe(ListenerProbeOptions options);
  ListenerProbe(const ListenerProbe&) = delete;
  ListenerProbe& operator=(const ListenerProbe&) = delete;
  ~ListenerProbe();  // Stop()

  void Start();
  void Stop();  // Idempotent; joins the thread.

  // OK until `failures_to_fail` probes in a row failed; then UNAVAILABLE
  // with the last failure, until a probe succeeds again.
  absl::Status status() const;

  // One probe, synchronously: OK when the listener acted on a connection
  // within the timeout.
  static absl::Status ProbeOnce(const ListenerProbeOptions& options);

 private:
  void Loop();

  const ListenerProbeOptions options_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int failures_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status last_failure_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

// The address to probe for a listening address as gRPC spells it:
// 127.0.0.1 for a wildcard host ("0.0.0.0", "[::]", "") or a host name, the
// IP literal otherwise.
std::string ProbeHostFor(const std::string& listen_address);

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_LISTENER_PROBE_H_
