#include <atomic>

#include "absl/strings/str_cat.h"
#include "contract/tracker/tracker_contract.h"
#include "edge/etcd_tracker.h"
#include "support/etcd_process.h"

namespace edge::testing {
namespace {

// One etcd for the whole binary; each test gets its own key prefix.
EtcdProcess* SharedEtcd() {
  // Destroyed at exit, which stops etcd and removes its data.
  static std::unique_ptr<EtcdProcess> etcd = [] {
    absl::StatusOr<std::unique_ptr<EtcdProcess>> started = EtcdProcess::Start();
    if (!started.ok()) {
      ADD_FAILURE() << "cannot start etcd: " << started.status();
      return std::unique_ptr<EtcdProcess>();
    }
    return *std::move(started);
  }();
  return etcd.get();
}

class EtcdTrackerEnv : public TrackerEnv {
 public:
  explicit EtcdTrackerEnv(std::string endpoint)
      : endpoint_(std::move(endpoint)),
        prefix_(absl::StrCat("/contract-", ++counter_, "/")) {}

  std::unique_ptr<Tracker> NewTracker(const std::string& edge_id) override {
    EtcdTrackerOptions options;
    options.edge_id = edge_id;
    options.advertised_address = absl::StrCat(edge_id, ":50051");
    options.endpoints = {endpoint_};
    options.lease_ttl = absl::Seconds(5);
    options.key_prefix = prefix_;
    auto tracker = EtcdTracker::Create(std::move(options));
    EXPECT_TRUE(tracker.ok()) << tracker.status();
    return *std::move(tracker);
  }
  bool is_cluster() const override { return true; }

 private:
  static inline std::atomic<int> counter_{0};
  const std::string endpoint_;
  const std::string prefix_;
};

std::unique_ptr<TrackerEnv> MakeEtcdEnv() {
  if (!EtcdProcess::Available()) return nullptr;  // skipped
  EtcdProcess* etcd = SharedEtcd();
  if (etcd == nullptr) return nullptr;
  return std::make_unique<EtcdTrackerEnv>(etcd->endpoint());
}

INSTANTIATE_TEST_SUITE_P(Etcd, TrackerContractTest,
                         ::testing::Values(TrackerContractParam{"EtcdTracker",
                                                                MakeEtcdEnv}),
                         ParamName);

}  // namespace
}  // namespace edge::testing
