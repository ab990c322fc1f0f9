// Tracker: which edge holds which peer.
//
// An edge claims a peer_id before admitting it and releases it once the
// stream has ended and its `disconnected` is stored by the bus (contract §5). LocalTracker knows
// only this edge; EtcdTracker makes a claim cluster-wide, so a peer is held by at most one edge at
// any moment.
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
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace edge {

struct PeerClaim {
  // Orders successive claims of one peer across the cluster: every claim,
  // a claim that replaces this edge's own included, gets a new epoch greater
  // than any before it (etcd: the revision of the claim's transaction).
  // Absent for trackers that only know this edge.
  std::optional<int64_t> epoch;
};

// Who holds a peer, and by which claim.
struct PeerHolder {
  std::string edge_id;
  // The holder's claim (PeerClaim::epoch); absent when the tracker does not
  // know it. A peer that moves to another edge, or comes back, has a new one.
  std::optional<int64_t> epoch;
};

// A claim whose edge went away without releasing it (SIGKILL, host loss, a
// lease that expired, a shutdown that could not confirm the stream's
// `disconnected`). Its `disconnected` (reason `edge_lost`) is still owed.
struct LostClaim {
  std::string peer_id;
  std::string edge_id;  // the edge that held the claim
  int64_t epoch = 0;
  absl::Time claimed_at;  // when the claim was made (the stream's connected_at)
};

class Tracker {
 public:
  using ClaimDone = absl::AnyInvocable<void(absl::StatusOr<PeerClaim>)>;
  using LookupDone = absl::AnyInvocable<void(absl::StatusOr<std::string>)>;
  using HolderDone = absl::AnyInvocable<void(absl::StatusOr<PeerHolder>)>;
  using ReleaseDone = absl::AnyInvocable<void(absl::Status)>;
  using LostListener = absl::AnyInvocable<void(const std::string& peer_id)>;
  // `published` is called once the lost claim's `disconnected` is stored
  // (OK) or could not be (an error: the claim stays owed).
  using LostClaimDone = absl::AnyInvocable<void(absl::Status published)>;
  using LostClaimListener =
      absl::AnyInvocable<void(const LostClaim& claim, LostClaimDone published)>;

  Tracker() = default;
  Tracker(const Tracker&) = delete;
  Tracker& operator=(const Tracker&) = delete;
  virtual ~Tracker() = default;

  virtual absl::Status Start() = 0;

  // Claims `peer_id` for this edge. A claim this edge already holds (from
  // before a restart with the same edge id) is taken over.
  virtual void Claim(const std::string& peer_id, absl::Time deadline, ClaimDone done) = 0;

  // Releases this edge's claim; never another edge's, even if late. The edge
  // calls it only after the stream's `disconnected` is stored, so a claim
  // never released is one whose `disconnected` may be missing.
  virtual void Release(const std::string& peer_id, const PeerClaim& claim, ReleaseDone done) = 0;

  // The edge id holding `peer_id`; NOT_FOUND when nobody does.
  virtual void Lookup(const std::string& peer_id, absl::Time deadline, LookupDone done) = 0;

  // Lookup, with the epoch of the holder's claim where the tracker knows it
  // (a command following its peer is forwarded once per claim). Default:
  // Lookup, without the epoch; a tracker that wraps another must forward
  // it.
  virtual void LookupHolder(const std::string& peer_id, absl::Time deadline, HolderDone done) {
    Lookup(peer_id, deadline, [done = std::move(done)](absl::StatusOr<std::string> holder) mutable {
      if (!holder.ok()) {
        done(holder.status());
        return;
      }
      done(PeerHolder{*std::move(holder), std::nullopt});
    });
  }

  // Called when a claim this edge held is gone and could not be re-taken
  // (for etcd: the lease was lost and another edge now holds the peer).
  // The edge must end that peer's stream. Set before Start().
  virtual void SetLostListener(LostListener listener) = 0;

  // Called with each lost claim this tracker took on, exactly one tracker
  // of the cluster per lost claim: the edge publishes its `disconnected`
  // (`edge_lost`, the lost claim's edge id and epoch) and then calls
  // `published`. Until then no new claim of that peer succeeds anywhere, so
  // the `edge_lost` comes before the peer's next `connected`. A claim that
  // meets a lost claim of its peer hands it to this listener first and
  // completes after `published`. Without a listener a tracker looks for no
  // lost claims, and one met by a claim is dropped with a log line. Set
  // before Start(); runs on a tracker thread, must not block.
  // Default: single-edge trackers, which never meet a lost claim.
  virtual void SetLostClaimListener(LostClaimListener listener) {}

  // Stops, by `deadline`, after the releases in flight. Claims not released
  // by then become lost claims: another edge (or the next to start)
  // publishes their `edge_lost`. Idempotent.
  virtual void Shutdown(absl::Time deadline) = 0;

 protected:
  // For a tracker whose LookupHolder does the work: the `done` of a
  // LookupHolder that answers a Lookup's `done` with the holder's edge id.
  //   void Lookup(...) override { LookupHolder(peer_id, deadline, EdgeIdOnly(std::move(done))); }
  static HolderDone EdgeIdOnly(LookupDone done) {
    return [done = std::move(done)](absl::StatusOr<PeerHolder> holder) mutable {
      if (!holder.ok()) {
        done(holder.status());
        return;
      }
      done(std::move(holder->edge_id));
    };
  }
};

}  // namespace edge

#endif  // EDGE_TRACKER_H_
