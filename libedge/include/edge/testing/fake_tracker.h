// FakeTracker: an in-memory cluster tracker, so tests can run several edges
// in one process.
//
// Every FakeTracker is created against a FakeTrackerCluster, the shared
// "etcd": a claim is exclusive across the cluster, a claim of a peer the
// same edge id already holds takes it over, and each claim's epoch is a new
// value of a cluster-wide revision counter (so epochs grow, like etcd's
// create revisions). A release removes a claim only if it is still the one
// released (same edge, same epoch).
//
// Lost claims (contract §5): ExpireEdge models an edge that dies without
// releasing (SIGKILL): its claims become lost claims, each handed to exactly
// one running tracker that has a lost-claim listener (the first by edge id;
// if none runs, the first to start), and removed once it reports the
// `edge_lost` stored. A claim of a peer whose claim is lost and not yet
// taken takes it itself (its own listener first); while another tracker
// publishes it, the claim fails UNAVAILABLE. Shutdown leaves unreleased
// claims lost.
//
// Fault injection: SetUnavailable (all calls fail UNAVAILABLE, cluster-wide
// or for one tracker), Evict / Steal (the holder's lost listener fires), and
// manual delivery: callbacks and lost notifications queue until
// DeliverPending() instead of running inline. The effect of a call on the
// cluster is immediate either way; only its callback waits.
//
// Callbacks run inline in the calling thread (or in DeliverPending's), with
// no lock held. Thread-safe. The cluster must outlive its trackers.
//
//   edge::testing::FakeTrackerCluster cluster;
//   edge::testing::FakeTracker a(&cluster, "edge-a"), b(&cluster, "edge-b");
//   a.Start(); b.Start();
//   a.Claim("p1", deadline, ...);  // OK, epoch 1
//   b.Claim("p1", deadline, ...);  // ALREADY_EXISTS: "peer p1 is held by edge
//   edge-a"
#ifndef EDGE_TESTING_FAKE_TRACKER_H_
#define EDGE_TESTING_FAKE_TRACKER_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"
#include "edge/tracker.h"

namespace edge::testing {

class FakeTracker;

class FakeTrackerCluster {
 public:
  FakeTrackerCluster() = default;
  FakeTrackerCluster(const FakeTrackerCluster&) = delete;
  FakeTrackerCluster& operator=(const FakeTrackerCluster&) = delete;

  // While true, every call of every tracker fails with UNAVAILABLE.
  void SetUnavailable(bool unavailable);

  // Removes the peer's claim, as if its holder's lease had expired; the
  // holder's lost listener is called. Returns false if nobody held it.
  bool Evict(const std::string& peer_id);
  // Gives the peer to `edge_id` with a new epoch, as if that edge claimed it
  // while the holder's lease was gone; the former holder's lost listener is
  // called. Returns the new epoch.
  int64_t Steal(const std::string& peer_id, const std::string& edge_id);

  // The edge's lease expires: its claims become lost claims and its tracker
  // stops answering (as if killed).
  void ExpireEdge(const std::string& edge_id);
  // Lost claims whose edge_lost is not stored yet.
  size_t lost_count();

  // Manual delivery: callbacks queue until DeliverPending().
  void SetManualDelivery(bool manual);
  // Runs queued callbacks (including those they queue) in order; returns
  // how many ran.
  size_t DeliverPending();
  size_t pending();

  // The edge holding `peer_id` now, if any, and the claim's epoch.
  std::optional<std::string> Holder(const std::string& peer_id);
  std::optional<int64_t> Epoch(const std::string& peer_id);
  size_t claim_count();

 private:
  friend class FakeTracker;
  struct Claim {
    std::string edge_id;
    int64_t epoch;
    bool lost = false;
    std::string taker;  // the edge publishing a lost claim's edge_lost
  };

  // Runs `fn` now, or queues it in manual mode.
  void Deliver(absl::AnyInvocable<void()> fn);
  // Queues or runs the lost listener of `edge_id`'s tracker.
  void NotifyLost(const std::string& edge_id, const std::string& peer_id);
  void Register(FakeTracker* tracker);
  // Hands every untaken lost claim to a tracker with a listener.
  void DispatchLost();
  // Runs `tracker`'s lost-claim listener on `peer_id`'s lost claim (taken
  // by it); `then` runs after the claim is published and removed.
  void PublishLost(FakeTracker* tracker, const std::string& peer_id, const Claim& claim,
                   absl::AnyInvocable<void()> then);
  void Unregister(FakeTracker* tracker);

  absl::Mutex mu_;
  bool unavailable_ ABSL_GUARDED_BY(mu_) = false;
  bool manual_ ABSL_GUARDED_BY(mu_) = false;
  int64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, Claim> claims_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, FakeTracker*> trackers_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::AnyInvocable<void()>> pending_ ABSL_GUARDED_BY(mu_);
};

class FakeTracker final : public Tracker {
 public:
  FakeTracker(FakeTrackerCluster* cluster, std::string edge_id);
  ~FakeTracker() override;

  absl::Status Start() override;
  void Claim(const std::string& peer_id, absl::Time deadline, ClaimDone done) override;
  void Release(const std::string& peer_id, const PeerClaim& claim, ReleaseDone done) override;
  void Lookup(const std::string& peer_id, absl::Time deadline, LookupDone done) override;
  void SetLostListener(LostListener listener) override;
  void SetLostClaimListener(LostClaimListener listener) override;
  void Shutdown(absl::Time deadline) override;

  // While true, this tracker's calls fail with UNAVAILABLE (this edge cut
  // off from the cluster).
  void SetUnavailable(bool unavailable);
  const std::string& edge_id() const { return edge_id_; }

 private:
  friend class FakeTrackerCluster;
  enum class State { kNew, kRunning, kStopped };

  absl::Status StartState();
  // The reason calls fail now, or OK.
  absl::Status CheckAvailableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cluster_->mu_);

  FakeTrackerCluster* const cluster_;
  const std::string edge_id_;
  // One lock, the cluster's, for the whole fake.
  State state_ ABSL_GUARDED_BY(cluster_->mu_) = State::kNew;
  bool unavailable_ ABSL_GUARDED_BY(cluster_->mu_) = false;
  LostListener lost_listener_;             // set before Start()
  LostClaimListener lost_claim_listener_;  // set before Start()
};

}  // namespace edge::testing

#endif  // EDGE_TESTING_FAKE_TRACKER_H_
