#include "contract/tracker/tracker_contract.h"
#include "edge/local_tracker.h"

namespace edge::testing {
namespace {

class LocalTrackerEnv : public TrackerEnv {
 public:
  std::unique_ptr<Tracker> NewTracker(const std::string& edge_id) override {
    return std::make_unique<LocalTracker>(edge_id);
  }
  bool is_cluster() const override { return false; }
};

INSTANTIATE_TEST_SUITE_P(Local, TrackerContractTest,
                         ::testing::Values(TrackerContractParam{
                             "LocalTracker", [] { return std::make_unique<LocalTrackerEnv>(); }}),
                         ParamName);

}  // namespace
}  // namespace edge::testing
