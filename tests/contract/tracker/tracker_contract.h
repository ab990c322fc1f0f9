// The Tracker contract (edge/tracker.h, contract §2 rows 7-8 and §9), run
// against every implementation: each test binary instantiates
// TrackerContractTest with a TrackerEnv factory for its implementation.
#ifndef EDGE_TESTS_CONTRACT_TRACKER_TRACKER_CONTRACT_H_
#define EDGE_TESTS_CONTRACT_TRACKER_TRACKER_CONTRACT_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/tracker.h"
#include "gtest/gtest.h"

namespace edge::testing {

// One implementation's world: trackers for several edges sharing it.
class TrackerEnv {
 public:
  virtual ~TrackerEnv() = default;
  // A new, not yet started tracker for `edge_id`. Two trackers with the
  // same edge id model one edge before and after a restart.
  virtual std::unique_ptr<Tracker> NewTracker(const std::string& edge_id) = 0;
  // True when claims are exclusive across edges (FakeTracker, EtcdTracker).
  virtual bool is_cluster() const = 0;
};

struct TrackerContractParam {
  std::string name;
  // Returns null when the implementation cannot run here (no etcd binary):
  // the test is skipped. A failure to set up must ADD_FAILURE() as well.
  std::function<std::unique_ptr<TrackerEnv>()> make_env;
};

inline void PrintTo(const TrackerContractParam& param, std::ostream* os) {
  *os << param.name;
}

class TrackerContractTest
    : public ::testing::TestWithParam<TrackerContractParam> {
 protected:
  void SetUp() override;
  // Created and started; owned by the fixture, shut down in TearDown.
  Tracker* StartTracker(const std::string& edge_id);
  // The tracker to ask whether a peer is still held once `edge` is shut
  // down: another edge in a cluster, the same tracker for a single edge.
  Tracker* Observer(Tracker* edge);

  std::unique_ptr<TrackerEnv> env_;
  std::vector<std::unique_ptr<Tracker>> trackers_;

 public:
  void TearDown() override;
};

// Blocking wrappers: wait for the callback (inline or on another thread).
absl::StatusOr<PeerClaim> ClaimSync(Tracker& tracker, const std::string& peer,
                                    absl::Duration timeout = absl::Seconds(5));
absl::Status ReleaseSync(Tracker& tracker, const std::string& peer,
                         const PeerClaim& claim);
absl::StatusOr<std::string> LookupSync(
    Tracker& tracker, const std::string& peer,
    absl::Duration timeout = absl::Seconds(5));

std::string ParamName(
    const ::testing::TestParamInfo<TrackerContractParam>& info);

}  // namespace edge::testing

#endif  // EDGE_TESTS_CONTRACT_TRACKER_TRACKER_CONTRACT_H_
