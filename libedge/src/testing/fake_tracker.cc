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
    if (it == claims_.end() || it->second.lost) return false;
    holder = std::move(it->second.edge_id);
    claims_.erase(it);
  }
  NotifyLost(holder, peer_id);
  return true;
}

int64_t FakeTrackerCluster::Steal(const std::string& peer_id, const std::string& edge_id) {
  std::optional<std::string> former;
  int64_t epoch = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = claims_.find(peer_id);
    if (it != claims_.end() && it->second.edge_id != edge_id && !it->second.lost) {
      former = it->second.edge_id;
    }
    epoch = ++revision_;
    claims_[peer_id] = Claim{edge_id, epoch, /*lost=*/false, /*taker=*/{}};
  }
  if (former.has_value()) NotifyLost(*former, peer_id);
  return epoch;
}

void FakeTrackerCluster::ExpireEdge(const std::string& edge_id) {
  {
    absl::MutexLock lock(&mu_);
    for (auto& [peer_id, claim] : claims_) {
      if (claim.edge_id == edge_id) claim.lost = true;
      if (claim.taker == edge_id) claim.taker.clear();  // died publishing
    }
    auto it = trackers_.find(edge_id);
    if (it != trackers_.end()) {
      // Registered trackers share this cluster's mu_ (checked here, and told
      // to the thread-safety analysis, which cannot follow cluster_).
      it->second->cluster_->mu_.AssertHeld();
      it->second->state_ = FakeTracker::State::kStopped;
    }
  }
  DispatchLost();
}

size_t FakeTrackerCluster::lost_count() {
  absl::MutexLock lock(&mu_);
  size_t count = 0;
  for (const auto& [peer_id, claim] : claims_) count += claim.lost ? 1 : 0;
  return count;
}

void FakeTrackerCluster::DispatchLost() {
  std::vector<std::pair<std::string, Claim>> taken;
  FakeTracker* publisher = nullptr;
  {
    absl::MutexLock lock(&mu_);
    std::string first;
    for (const auto& [edge_id, tracker] : trackers_) {
      tracker->cluster_->mu_.AssertHeld();  // the same mu_ (see ExpireEdge)
      if (tracker->state_ == FakeTracker::State::kRunning && tracker->lost_claim_listener_ &&
          (publisher == nullptr || edge_id < first)) {
        publisher = tracker;
        first = edge_id;
      }
    }
    if (publisher == nullptr) return;
    for (auto& [peer_id, claim] : claims_) {
      if (!claim.lost || !claim.taker.empty()) continue;
      claim.taker = publisher->edge_id();
      taken.emplace_back(peer_id, claim);
    }
  }
  for (const auto& [peer_id, claim] : taken) {
    PublishLost(publisher, peer_id, claim, [] {});
  }
}

void FakeTrackerCluster::PublishLost(FakeTracker* tracker, const std::string& peer_id,
                                     const Claim& claim, absl::AnyInvocable<void()> then) {
  LostClaim lost{peer_id, claim.edge_id, claim.epoch, absl::UnixEpoch()};
  auto published = [this, peer_id, epoch = claim.epoch,
                    then = std::move(then)](absl::Status status) mutable {
    {
      absl::MutexLock lock(&mu_);
      auto it = claims_.find(peer_id);
      if (it != claims_.end() && it->second.lost && it->second.epoch == epoch) {
        if (status.ok()) {
          claims_.erase(it);
        } else {
          it->second.taker.clear();  // owed still: taken again later
        }
      }
    }
    then();
  };
  Deliver([tracker, lost = std::move(lost), published = std::move(published)]() mutable {
    if (tracker->lost_claim_listener_) {
      tracker->lost_claim_listener_(lost, std::move(published));
    } else {
      published(absl::OkStatus());
    }
  });
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

std::optional<std::string> FakeTrackerCluster::Holder(const std::string& peer_id) {
  absl::MutexLock lock(&mu_);
  auto it = claims_.find(peer_id);
  if (it == claims_.end() || it->second.lost) return std::nullopt;
  return it->second.edge_id;
}

std::optional<int64_t> FakeTrackerCluster::Epoch(const std::string& peer_id) {
  absl::MutexLock lock(&mu_);
  auto it = claims_.find(peer_id);
  if (it == claims_.end() || it->second.lost) return std::nullopt;
  return it->second.epoch;
}

size_t FakeTrackerCluster::claim_count() {
  absl::MutexLock lock(&mu_);
  size_t count = 0;
  for (const auto& [peer_id, claim] : claims_) count += claim.lost ? 0 : 1;
  return count;
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

void FakeTrackerCluster::NotifyLost(const std::string& edge_id, const std::string& peer_id) {
  // The tracker is looked up when the notification runs, so one destroyed
  // in the meantime is simply skipped.
  Deliver([this, edge_id, peer_id] {
    FakeTracker* tracker = nullptr;
    {
      absl::MutexLock lock(&mu_);
      auto it = trackers_.find(edge_id);
      if (it == trackers_.end()) return;
      it->second->cluster_->mu_.AssertHeld();  // the same mu_ (see ExpireEdge)
      if (it->second->state_ != FakeTracker::State::kRunning) return;
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
  absl::Status started = StartState();
  // The first edge to start publishes what dead edges left behind.
  if (started.ok()) cluster_->DispatchLost();
  return started;
}

absl::Status FakeTracker::StartState() {
  absl::MutexLock lock(&cluster_->mu_);
  if (edge_id_.empty()) {
    return absl::InvalidArgumentError("fake tracker: edge_id is empty");
  }
  if (state_ != State::kNew) {
    return absl::FailedPreconditionError("fake tracker: Start() called twice or after Shutdown()");
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

void FakeTracker::Claim(const std::string& peer_id, absl::Time deadline, ClaimDone done) {
  absl::StatusOr<PeerClaim> result;
  std::optional<FakeTrackerCluster::Claim> lost;
  {
    absl::MutexLock lock(&cluster_->mu_);
    absl::Status available = CheckAvailableLocked();
    auto it = cluster_->claims_.find(peer_id);
    if (peer_id.empty()) {
      result = absl::InvalidArgumentError("fake tracker: empty peer_id");
    } else if (!available.ok()) {
      result = available;
    } else if (it != cluster_->claims_.end() && it->second.lost && !it->second.taker.empty()) {
      result = absl::UnavailableError(absl::StrCat("the previous claim of peer ", peer_id,
                                                   " is being closed (edge_lost) by edge ",
                                                   it->second.taker));
    } else if (it != cluster_->claims_.end() && it->second.lost) {
      it->second.taker = edge_id_;
      lost = it->second;
    } else if (it != cluster_->claims_.end() && it->second.edge_id != edge_id_) {
      result = absl::AlreadyExistsError(
          absl::StrCat("peer ", peer_id, " is held by edge ", it->second.edge_id));
    } else {
      int64_t epoch = ++cluster_->revision_;
      cluster_->claims_[peer_id] =
          FakeTrackerCluster::Claim{edge_id_, epoch, /*lost=*/false, /*taker=*/{}};
      result = PeerClaim{epoch};
    }
  }
  if (lost.has_value()) {
    // Its edge_lost first, then this claim.
    cluster_->PublishLost(this, peer_id, *lost,
                          [this, peer_id, deadline, done = std::move(done)]() mutable {
                            Claim(peer_id, deadline, std::move(done));
                          });
    return;
  }
  cluster_->Deliver(
      [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
}

void FakeTracker::Release(const std::string& peer_id, const PeerClaim& claim, ReleaseDone done) {
  absl::Status result;
  {
    absl::MutexLock lock(&cluster_->mu_);
    if (state_ == State::kStopped) {
      result = absl::OkStatus();  // Shutdown released everything
    } else if (!claim.epoch.has_value()) {
      result = absl::InvalidArgumentError(
          absl::StrCat("fake tracker: release of ", peer_id, " names no epoch"));
    } else if (result = CheckAvailableLocked(); result.ok()) {
      auto it = cluster_->claims_.find(peer_id);
      if (it != cluster_->claims_.end() && it->second.edge_id == edge_id_ &&
          it->second.epoch == *claim.epoch && !it->second.lost) {
        cluster_->claims_.erase(it);
      }
    }
  }
  cluster_->Deliver([done = std::move(done), result]() mutable { done(result); });
}

void FakeTracker::Lookup(const std::string& peer_id, absl::Time deadline, LookupDone done) {
  LookupHolder(peer_id, deadline, EdgeIdOnly(std::move(done)));
}

void FakeTracker::LookupHolder(const std::string& peer_id, absl::Time deadline, HolderDone done) {
  absl::StatusOr<PeerHolder> result;
  {
    absl::MutexLock lock(&cluster_->mu_);
    absl::Status available = CheckAvailableLocked();
    auto it = cluster_->claims_.find(peer_id);
    if (!available.ok()) {
      result = available;
    } else if (it == cluster_->claims_.end() || it->second.lost) {
      result = absl::NotFoundError(absl::StrCat("peer ", peer_id, " is not held by any edge"));
    } else {
      result = PeerHolder{it->second.edge_id, it->second.epoch};
    }
  }
  cluster_->Deliver(
      [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
}

void FakeTracker::SetLostListener(LostListener listener) { lost_listener_ = std::move(listener); }

void FakeTracker::SetLostClaimListener(LostClaimListener listener) {
  lost_claim_listener_ = std::move(listener);
}

void FakeTracker::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&cluster_->mu_);
    if (state_ == State::kStopped) return;
    state_ = State::kStopped;
    // Unreleased claims: their `disconnected` was never confirmed.
    for (auto& [peer_id, claim] : cluster_->claims_) {
      if (claim.edge_id == edge_id_) claim.lost = true;
    }
  }
  cluster_->DispatchLost();
}

void FakeTracker::SetUnavailable(bool unavailable) {
  absl::MutexLock lock(&cluster_->mu_);
  unavailable_ = unavailable;
}

}  // namespace edge::testing
