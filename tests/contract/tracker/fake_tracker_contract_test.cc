#include "contract/tracker/tracker_contract.h"
#include "edge/testing/fake_tracker.h"

namespace edge::testing {
namespace {

class FakeTrackerEnv : public TrackerEnv {
 public:
  std::unique_ptr<Tracker> NewTracker(const std::string& edge_id) override {
    return std::make_unique<testing::FakeTracker>(&cluster_, edge_id);
  }
  bool is_cluster() const override { return true; }
  void Kill(const std::string& edge_id) override { cluster_.ExpireEdge(edge_id); }

 private:
  testing::FakeTrackerCluster cluster_;
};

INSTANTIATE_TEST_SUITE_P(Fake, TrackerContractTest,
                         ::testing::Values(TrackerContractParam{
                             "FakeTracker", [] { return std::make_unique<FakeTrackerEnv>(); }}),
                         ParamName);

}  // namespace
}  // namespace edge::testing
