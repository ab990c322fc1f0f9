// KafkaBrokerProcess: the edge_kafka_broker program (a Kafka-protocol broker,
// tests/support/kafka_broker_main.cc) run as a child process, so that a test's
// broker is as separate from its edges and backend as a real one. It dies
// with the test (see ChildProcess).
//
//   auto broker = edge::testing::KafkaBrokerProcess::Start({{"events", 4}});
//   ASSERT_TRUE(broker.ok()) << broker.status();
//   env["KAFKA_BOOTSTRAP_SERVERS"] = (*broker)->bootstrap_servers();
#ifndef EDGE_TESTS_SUPPORT_KAFKA_BROKER_PROCESS_H_
#define EDGE_TESTS_SUPPORT_KAFKA_BROKER_PROCESS_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "support/child_process.h"

namespace edge::testing {

class KafkaBrokerProcess {
 public:
  // The program: EDGE_KAFKA_BROKER_BINARY from the environment if set, else
  // the one this build produced.
  static std::string BinaryPath();

  // Starts the broker with these topics (name, partitions) and waits until it
  // printed its bootstrap address.
  static absl::StatusOr<std::unique_ptr<KafkaBrokerProcess>> Start(
      const std::vector<std::pair<std::string, int>>& topics,
      absl::Duration timeout = absl::Seconds(20));

  KafkaBrokerProcess(const KafkaBrokerProcess&) = delete;
  KafkaBrokerProcess& operator=(const KafkaBrokerProcess&) = delete;
  // SIGTERM, then SIGKILL if it does not exit; removes its directory.
  ~KafkaBrokerProcess();

  const std::string& bootstrap_servers() const { return bootstrap_servers_; }
  std::string ReadLog() const { return child_->Output(); }

 private:
  KafkaBrokerProcess(std::string dir, std::unique_ptr<ChildProcess> child,
                     std::string bootstrap_servers)
      : dir_(std::move(dir)),
        child_(std::move(child)),
        bootstrap_servers_(std::move(bootstrap_servers)) {}

  const std::string dir_;
  const std::unique_ptr<ChildProcess> child_;
  const std::string bootstrap_servers_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_KAFKA_BROKER_PROCESS_H_
