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
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/tracker.h"
#include "gtest/gtest.h"
#include "support/tracker_sync.h"  // ClaimSync, ReleaseSync, LookupSync, LookupHolderSync

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
  // Makes the latest tracker of `edge_id` die without releasing anything
  // (SIGKILL): its claims become lost once its lease runs out. Cluster only.
  virtual void Kill(const std::string& edge_id) {}
  // Bound on how long after Kill the cluster publishes a lost claim
  // (TRACKER_LEASE_TTL_SEC + 5 s for etcd).
  virtual absl::Duration lost_within() const { return absl::Seconds(5); }
};

// A lost-claim listener for tests: records every lost claim it is handed
// and reports it published at once, or parks the report until Publish().
class LostClaimRecorder {
 public:
  explicit LostClaimRecorder(bool park = false) : park_(park) {}
  Tracker::LostClaimListener Listener();
  std::vector<LostClaim> claims();
  // Reports every parked claim published; returns how many.
  size_t PublishParked();

 private:
  const bool park_;
  absl::Mutex mu_;
  std::vector<LostClaim> claims_ ABSL_GUARDED_BY(mu_);
  std::vector<Tracker::LostClaimDone> parked_ ABSL_GUARDED_BY(mu_);
};

struct TrackerContractParam {
  std::string name;
  // Returns null when the implementation cannot run here (no etcd binary):
  // the test is skipped. A failure to set up must ADD_FAILURE() as well.
  std::function<std::unique_ptr<TrackerEnv>()> make_env;
};

inline void PrintTo(const TrackerContractParam& param, std::ostream* os) { *os << param.name; }

class TrackerContractTest : public ::testing::TestWithParam<TrackerContractParam> {
 protected:
  void SetUp() override;
  // Created and started; owned by the fixture, shut down in TearDown.
  Tracker* StartTracker(const std::string& edge_id, LostClaimRecorder* lost = nullptr);
  // The tracker to ask whether a peer is still held once `edge` is shut
  // down: another edge in a cluster, the same tracker for a single edge.
  Tracker* Observer(Tracker* edge);

  // A lost-claim recorder that outlives every tracker of the test.
  LostClaimRecorder& NewRecorder(bool park = false);

  std::unique_ptr<TrackerEnv> env_;
  std::vector<std::unique_ptr<LostClaimRecorder>> recorders_;
  std::vector<std::unique_ptr<Tracker>> trackers_;

 public:
  void TearDown() override;
};

std::string ParamName(const ::testing::TestParamInfo<TrackerContractParam>& info);

}  // namespace edge::testing

#endif  // EDGE_TESTS_CONTRACT_TRACKER_TRACKER_CONTRACT_H_
