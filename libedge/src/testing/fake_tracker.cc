#include "edge/testing/fake_tracker.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace edge::testing {

void FakeTrackerCluster::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&mu_);
  unavailable_ = unavailable;
}

bool FakeTrackerCluster::Evict(const std::string& peer_id) {
  std::string holder;
  {
    absl::MutexLock lock(&mu_);
    auto it = claims_.find(peer_id);
    if (it == claims_.end()) return false;
    holder = std::move(it->second.edge_id);
    claims_.erase(it);
  }
  NotifyLost(holder, peer_id);
  return true;
}

int64_t FakeTrackerCluster::Steal(const std::string& peer_id,
                                  const std::string& edge_id) {
  std::optional<std::string> former;
  int64_t epoch = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = claims_.find(peer_id);
    if (it != claims_.end() && it->second.edge_id != edge_id) {
      former = it->second.edge_id;
    }
    epoch = ++revision_;
    claims_[peer_id] = Claim{edge_id, epoch};
  }
  if (former.has_value()) NotifyLost(*former, peer_id);
  return epoch;
}

void FakeTrackerCluster::SetManualDelivery(bool manual) {
  absl::MutexLock lock(&mu_);
  manual_ = manual;
}

size_t FakeTrackerCluster::DeliverPending() {
  size_t ran = 0;
  while (true) {
    absl::AnyInvocable<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      if (pending_.empty()) return ran;
      fn = std::move(pending_.front());
      pending_.pop_front();
    }
    fn();
    ++ran;
  }
}

size_t FakeTrackerCluster::pending() {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

std::optional<std::string> FakeTrackerCluster::Holder(
    const std::string& peer_id) {
  absl::MutexLock lock(&mu_);
  auto it = claims_.find(peer_id);
  if (it == claims_.end()) return std::nullopt;
  return it->second.edge_id;
}

std::optional<int64_t> FakeTrackerCluster::Epoch(const std::string& peer_id) {
  absl::MutexLock lock(&mu_);
  auto it = claims_.find(peer_id);
  if (it == claims_.end()) return std::nullopt;
  return it->second.epoch;
}

size_t FakeTrackerCluster::claim_count() {
  absl::MutexLock lock(&mu_);
  return claims_.size();
}

void FakeTrackerCluster::Deliver(absl::AnyInvocable<void()> fn) {
  {
    absl::MutexLock lock(&mu_);
    if (manual_) {
      pending_.push_back(std::move(fn));
      return;
    }
  }
  fn();
}

void FakeTrackerCluster::NotifyLost(const std::string& edge_id,
                                    const std::string& peer_id) {
  // The tracker is looked up when the notification runs, so one destroyed
  // in the meantime is simply skipped.
  Deliver([this, edge_id, peer_id] {
    FakeTracker* tracker = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto it = trackers_.find(edge_id);
      if (it == trackers_.end() ||
          it->second->state_ != FakeTracker::State::kRunning) {
        return;
      }
      tracker = it->second;
    }
    if (tracker->lost_listener_) tracker->lost_listener_(peer_id);
  });
}

void FakeTrackerCluster::Register(FakeTracker* tracker) {
  absl::MutexLock lock(&mu_);
  trackers_[tracker->edge_id()] = tracker;
}

void FakeTrackerCluster::Unregister(FakeTracker* tracker) {
  absl::MutexLock lock(&mu_);
  auto it = trackers_.find(tracker->edge_id());
  if (it != trackers_.end() && it->second == tracker) trackers_.erase(it);
}

FakeTracker::FakeTracker(FakeTrackerCluster* cluster, std::string edge_id)
    : cluster_(cluster), edge_id_(std::move(edge_id)) {
  cluster_->Register(this);
}

FakeTracker::~FakeTracker() { cluster_->Unregister(this); }

absl::Status FakeTracker::Start() {
  absl::MutexLock lock(&cluster_->mu_);
  if (edge_id_.empty()) {
    return absl::InvalidArgumentError("fake tracker: edge_id is empty");
  }
  if (state_ != State::kNew) {
    return absl::FailedPreconditionError(
        "fake tracker: Start() called twice or after Shutdown()");
  }
  state_ = State::kRunning;
  return absl::OkStatus();
}

absl::Status FakeTracker::CheckAvailableLocked() {
  if (state_ == State::kNew) {
    return absl::UnavailableError("fake tracker is not started");
  }
  if (state_ == State::kStopped) {
    return absl::UnavailableError("fake tracker is shut down");
  }
  if (unavailable_ || cluster_->unavailable_) {
    return absl::UnavailableError("fake tracker cluster is unreachable");
  }
  return absl::OkStatus();
}

void FakeTracker::Claim(const std::string& peer_id, absl::Time deadline,
                        ClaimDone done) {
  absl::StatusOr<PeerClaim> result;
  {
    absl::MutexLock lock(&cluster_->mu_);
    absl::Status available = CheckAvailableLocked();
    auto it = cluster_->claims_.find(peer_id);
    if (peer_id.empty()) {
      result = absl::InvalidArgumentError("fake tracker: empty peer_id");
    } else if (!available.ok()) {
      result = available;
    } else if (it != cluster_->claims_.end() &&
               it->second.edge_id != edge_id_) {
      result = absl::AlreadyExistsError(absl::StrCat(
          "peer ", peer_id, " is held by edge ", it->second.edge_id));
    } else {
      int64_t epoch = ++cluster_->revision_;
      cluster_->claims_[peer_id] = FakeTrackerCluster::Claim{edge_id_, epoch};
      result = PeerClaim{epoch};
    }
  }
  cluster_->Deliver(
      [done = std::move(done), result = std::move(result)]() mutable {
        done(std::move(result));
      });
}

void FakeTracker::Release(const std::string& peer_id, const PeerClaim& claim,
                          ReleaseDone done) {
  absl::Status result;
  {
    absl::MutexLock lock(&cluster_->mu_);
    if (state_ == State::kStopped) {
      result = absl::OkStatus();  // Shutdown released everything
    } else if (!claim.epoch.has_value()) {
      result = absl::InvalidArgumentError(absl::StrCat(
          "fake tracker: release of ", peer_id, " names no epoch"));
    } else if (result = CheckAvailableLocked(); result.ok()) {
      auto it = cluster_->claims_.find(peer_id);
      if (it != cluster_->claims_.end() && it->second.edge_id == edge_id_ &&
          it->second.epoch == *claim.epoch) {
        cluster_->claims_.erase(it);
      }
    }
  }
  cluster_->Deliver(
      [done = std::move(done), result]() mutable { done(result); });
}

void FakeTracker::Lookup(const std::string& peer_id, absl::Time deadline,
                         LookupDone done) {
  absl::StatusOr<std::string> result;
  {
    absl::MutexLock lock(&cluster_->mu_);
    absl::Status available = CheckAvailableLocked();
    auto it = cluster_->claims_.find(peer_id);
    if (!available.ok()) {
      result = available;
    } else if (it == cluster_->claims_.end()) {
      result = absl::NotFoundError(
          absl::StrCat("peer ", peer_id, " is not held by any edge"));
    } else {
      result = it->second.edge_id;
    }
  }
  cluster_->Deliver(
      [done = std::move(done), result = std::move(result)]() mutable {
        done(std::move(result));
      });
}

void FakeTracker::SetLostListener(LostListener listener) {
  lost_listener_ = std::move(listener);
}

void FakeTracker::Shutdown(absl::Time deadline) {
  absl::MutexLock lock(&cluster_->mu_);
  if (state_ == State::kStopped) return;
  state_ = State::kStopped;
  for (auto it = cluster_->claims_.begin(); it != cluster_->claims_.end();) {
    auto current = it++;
    if (current->second.edge_id == edge_id_) cluster_->claims_.erase(current);
  }
}

void FakeTracker::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&cluster_->mu_);
  unavailable_ = unavailable;
}

}  // namespace edge::testing
