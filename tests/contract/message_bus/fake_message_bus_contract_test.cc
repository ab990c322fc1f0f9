// The MessageBus contract against FakeMessageBus (automatic delivery mode).
#include <memory>

#include "absl/time/clock.h"
#include "contract/message_bus/message_bus_contract.h"
#include "edge/testing/fake_message_bus.h"
#include "support/wait.h"

namespace edge::testing {
namespace {

class FakeHarness : public MessageBusHarness {
 public:
  absl::StatusOr<std::unique_ptr<MessageBus>> NewBus(const std::string& group,
                                                     size_t capacity) override {
    FakeMessageBusOptions options;
    options.group_id = group;
    options.capacity = capacity;
    options.log = log_;
    return std::unique_ptr<MessageBus>(std::make_unique<FakeMessageBus>(std::move(options)));
  }
  absl::Status CreateTopic(const std::string& topic, int partitions) override {
    return log_->CreateTopic(topic, partitions);
  }
  absl::Status Produce(const std::string& topic, int32_t partition, const std::string& key,
                       const std::string& value,
                       const std::vector<RecordHeader>& headers) override {
    return log_->Append(topic, partition, key, value, headers, /*from_publish=*/false).status();
  }
  absl::StatusOr<std::vector<IncomingRecord>> ReadAll(const std::string& topic, size_t n,
                                                      absl::Duration timeout) override {
    if (!WaitFor([&] { return log_->Records(topic).size() >= n; }, timeout)) {
      return absl::DeadlineExceededError("not enough records");
    }
    return log_->Records(topic);
  }
  absl::StatusOr<int64_t> Committed(const std::string& group, const std::string& topic,
                                    int32_t partition) override {
    return log_->Committed(group, topic, partition);
  }
  void SetReachable(MessageBus* bus, bool reachable) override {
    static_cast<FakeMessageBus*>(bus)->SetUnavailable(!reachable);
  }

 private:
  std::shared_ptr<FakeMessageLog> log_ = std::make_shared<FakeMessageLog>();
};

INSTANTIATE_TEST_SUITE_P(Fake, MessageBusContractTest,
                         ::testing::Values(HarnessFactory{
                             "Fake", [] { return std::make_unique<FakeHarness>(); }}),
                         HarnessName);

}  // namespace
}  // namespace edge::testing
