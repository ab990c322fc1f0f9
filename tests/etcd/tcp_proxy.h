// TcpProxy: a loopback TCP forwarder that a test can cut, to partition one
// client from a server while others still reach it.
#ifndef EDGE_TESTS_ETCD_TCP_PROXY_H_
#define EDGE_TESTS_ETCD_TCP_PROXY_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace edge::testing {

class TcpProxy {
 public:
  // Listens on a free loopback port and forwards to 127.0.0.1:target_port.
  static absl::StatusOr<std::unique_ptr<TcpProxy>> Start(int target_port);
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;
  ~TcpProxy();

  // false: closes every forwarded connection and closes new ones at once
  // (the client sees the server as unreachable). true: forwards again.
  void SetConnected(bool connected);
  // Holds back what the server sends by `delay` before the client gets it
  // (zero: forwards at once); the client's bytes still go through at once.
  // A connection either side closes is closed at once, held bytes dropped.
  void SetReplyDelay(absl::Duration delay);
  std::string endpoint() const;

 private:
  TcpProxy(int listen_fd, int port, int target_port, int wake_fd);
  void Run();
  void Wake();

  const int listen_fd_;
  const int port_;
  const int target_port_;
  const int wake_fd_;  // eventfd
  std::thread thread_;
  absl::Mutex mu_;
  bool connected_ ABSL_GUARDED_BY(mu_) = true;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by each cut
  absl::Duration reply_delay_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_ETCD_TCP_PROXY_H_
