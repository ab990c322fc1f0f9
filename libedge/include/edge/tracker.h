// Tracker: which edge holds which peer.
//
// An edge claims a peer_id before admitting it and releases it when the
// stream ends. LocalTracker knows only this edge; EtcdTracker makes a claim
// cluster-wide, so a peer is held by at most one edge at any moment.
//
// Claim results: OK with the claim; ALREADY_EXISTS when another edge holds
// the peer (the message names that edge); UNAVAILABLE (or DEADLINE_EXCEEDED)
// when the tracker cannot be reached in time.
//
// Threads: callbacks run on tracker threads, or inline in the call that
// started them (LocalTracker); they must not block. Callers never hold a
// lock of their own while calling a Tracker.
//
//   tracker->Claim("peer-1", deadline, [](absl::StatusOr<edge::PeerClaim> c) {
//     if (c.ok()) Admit(c->epoch);
//   });
#ifndef EDGE_TRACKER_H_
#define EDGE_TRACKER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace edge {

struct PeerClaim {
  // Orders successive claims of one peer across the cluster (etcd's create
  // revision). Absent for trackers that only know this edge.
  std::optional<int64_t> epoch;
};

class Tracker {
 public:
  using ClaimDone = absl::AnyInvocable<void(absl::StatusOr<PeerClaim>)>;
  using LookupDone = absl::AnyInvocable<void(absl::StatusOr<std::string>)>;
  using ReleaseDone = absl::AnyInvocable<void(absl::Status)>;
  using LostListener = absl::AnyInvocable<void(const std::string& peer_id)>;

  Tracker() = default;
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;
  virtual ~Tracker() = default;

  virtual absl::Status Start() = 0;

  // Claims `peer_id` for this edge. A claim this edge already holds (from
  // before a restart with the same edge id) is taken over.
  virtual void Claim(const std::string& peer_id, absl::Time deadline,
                     ClaimDone done) = 0;

  // Releases this edge's claim; never another edge's, even if late.
  virtual void Release(const std::string& peer_id, const PeerClaim& claim,
                       ReleaseDone done) = 0;

  // The edge id holding `peer_id`; NOT_FOUND when nobody does.
  virtual void Lookup(const std::string& peer_id, absl::Time deadline,
                      LookupDone done) = 0;

  // Called when a claim this edge held is gone and could not be re-taken
  // (for etcd: the lease was lost and another edge now holds the peer).
  // The edge must end that peer's stream. Set before Start().
  virtual void SetLostListener(LostListener listener) = 0;

  // Releases every claim of this edge and stops, by `deadline`. Idempotent.
  virtual void Shutdown(absl::Time deadline) = 0;
};

}  // namespace edge

#endif  // EDGE_TRACKER_H_
