#include "edge/local_tracker.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace edge {

LocalTracker::LocalTracker(std::string edge_id) : edge_id_(std::move(edge_id)) {}

absl::Status LocalTracker::Start() {
  absl::MutexLock lock(&mu_);
  if (edge_id_.empty()) {
    return absl::InvalidArgumentError("local tracker: edge_id is empty");
  }
  if (state_ != State::kNew) {
    return absl::FailedPreconditionError("local tracker: Start() called twice or after Shutdown()");
  }
  state_ = State::kRunning;
  return absl::OkStatus();
}

void LocalTracker::Claim(const std::string& peer_id, absl::Time deadline, ClaimDone done) {
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (peer_id.empty()) {
      status = absl::InvalidArgumentError("local tracker: empty peer_id");
    } else if (state_ != State::kRunning) {
      status = absl::UnavailableError(state_ == State::kNew ? "local tracker is not started"
                                                            : "local tracker is shut down");
    } else {
      ++claims_[peer_id];
    }
  }
  if (!status.ok()) {
    done(status);
    return;
  }
  done(PeerClaim{});
}

void LocalTracker::Release(const std::string& peer_id, const PeerClaim& claim, ReleaseDone done) {
  {
    absl::MutexLock lock(&mu_);
    auto it = claims_.find(peer_id);
    // Unknown peers (released already, or dropped by Shutdown) are fine:
    // releasing is idempotent from the caller's point of view.
    if (it != claims_.end() && --it->second == 0) claims_.erase(it);
  }
  done(absl::OkStatus());
}

void LocalTracker::Lookup(const std::string& peer_id, absl::Time deadline, LookupDone done) {
  bool held = false;
  {
    absl::MutexLock lock(&mu_);
    held = claims_.contains(peer_id);
  }
  if (!held) {
    done(absl::NotFoundError(absl::StrCat("peer ", peer_id, " is not held by this edge")));
    return;
  }
  done(edge_id_);
}

void LocalTracker::SetLostListener(LostListener listener) {}

void LocalTracker::Shutdown(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  state_ = State::kStopped;
  claims_.clear();
}

size_t LocalTracker::held_count() {
  absl::MutexLock lock(&mu_);
  return claims_.size();
}

}  // namespace edge
