// The MessageBus contract, run against every implementation.
//
// An implementation joins by instantiating MessageBusContractTest with a
// factory for its MessageBusHarness: a fresh broker-like environment per
// test, buses on it, and a backend's view of it (produce, read back,
// committed positions).
#ifndef EDGE_TESTS_CONTRACT_MESSAGE_BUS_MESSAGE_BUS_CONTRACT_H_
#define EDGE_TESTS_CONTRACT_MESSAGE_BUS_MESSAGE_BUS_CONTRACT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/message_bus.h"
#include "gtest/gtest.h"

namespace edge::testing {

class MessageBusHarness {
 public:
  virtual ~MessageBusHarness() = default;

  // A new bus in consumer group `group`; `capacity` for Saturated().
  virtual absl::StatusOr<std::unique_ptr<MessageBus>> NewBus(const std::string& group,
                                                             size_t capacity = 1000) = 0;
  virtual absl::Status CreateTopic(const std::string& topic, int partitions) = 0;
  // As a backend would: one record into topic/partition.
  virtual absl::Status Produce(const std::string& topic, int32_t partition, const std::string& key,
                               const std::string& value,
                               const std::vector<RecordHeader>& headers) = 0;
  // Every record stored in `topic` once at least `n` are there.
  virtual absl::StatusOr<std::vector<IncomingRecord>> ReadAll(const std::string& topic, size_t n,
                                                              absl::Duration timeout) = 0;
  // Next offset `group` reads in topic/partition; <= 0 when nothing committed.
  virtual absl::StatusOr<int64_t> Committed(const std::string& group, const std::string& topic,
                                            int32_t partition) = 0;
  // The broker behind `bus` stops / starts answering.
  virtual void SetReachable(MessageBus* bus, bool reachable) = 0;
};

struct HarnessFactory {
  std::string name;
  std::function<std::unique_ptr<MessageBusHarness>()> make;
};

inline void PrintTo(const HarnessFactory& factory, std::ostream* os) { *os << factory.name; }

inline std::string HarnessName(const ::testing::TestParamInfo<HarnessFactory>& info) {
  return info.param.name;
}

class MessageBusContractTest : public ::testing::TestWithParam<HarnessFactory> {
 protected:
  void SetUp() override {
    harness_ = GetParam().make();
    ASSERT_NE(harness_, nullptr);
  }
  std::unique_ptr<MessageBusHarness> harness_;
};

}  // namespace edge::testing

#endif  // EDGE_TESTS_CONTRACT_MESSAGE_BUS_MESSAGE_BUS_CONTRACT_H_
