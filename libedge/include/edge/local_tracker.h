// LocalTracker: the tracker of a single edge (TRACKER=local, edged's
// default). It knows only this edge's peers, so a claim always succeeds
// while it runs; duplicates on this edge are the core's business (§2 row 6).
//
// Claims are counted per peer_id: a peer stays held until it has been
// released as many times as it was claimed. So when the core replaces a
// stream (DUPLICATE_POLICY=replace) the old stream's release never drops the
// new stream's claim, whatever order the two calls come in. Claims carry no
// epoch; Lookup answers this edge's id for a held peer, NOT_FOUND otherwise.
//
// Callbacks run inline, in the calling thread, without a lock held.
// Thread-safe.
//
//   edge::LocalTracker tracker("edge-1");
//   tracker.Start();
//   tracker.Claim("peer-1", deadline, [](absl::StatusOr<edge::PeerClaim> c)
//   {});
#ifndef EDGE_LOCAL_TRACKER_H_
#define EDGE_LOCAL_TRACKER_H_

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "edge/tracker.h"

namespace edge {

class LocalTracker final : public Tracker {
 public:
  explicit LocalTracker(std::string edge_id);

  absl::Status Start() override;
  void Claim(const std::string& peer_id, absl::Time deadline, ClaimDone done) override;
  void Release(const std::string& peer_id, const PeerClaim& claim, ReleaseDone done) override;
  void Lookup(const std::string& peer_id, absl::Time deadline, LookupDone done) override;
  // Never called: a single edge cannot lose a claim to another.
  void SetLostListener(LostListener listener) override;
  void Shutdown(absl::Time deadline) override;

  // Peers held now.
  size_t held_count();

 private:
  enum class State { kNew, kRunning, kStopped };

  const std::string edge_id_;
  absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  // peer_id -> claims not yet released.
  absl::flat_hash_map<std::string, int> claims_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge

#endif  // EDGE_LOCAL_TRACKER_H_
