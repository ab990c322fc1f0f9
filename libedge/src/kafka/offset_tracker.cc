#include "offset_tracker.h"

#include <tuple>

namespace edge::kafka::internal {

void OffsetTracker::UncountLocked(const State& s) {
  for (const auto& [offset, pending] : s.outstanding) {
    if (pending.abandoned) continue;
    --outstanding_;
    outstanding_bytes_ -= pending.bytes;
  }
}

void OffsetTracker::Assign(const TopicPartition& tp) {
  absl::MutexLock lock(&mu_);
  State& s = parts_[tp];
  UncountLocked(s);
  s = State();
  s.generation = ++last_generation_;
}

void OffsetTracker::Revoke(const TopicPartition& tp) {
  absl::MutexLock lock(&mu_);
  auto it = parts_.find(tp);
  if (it == parts_.end()) return;
  UncountLocked(it->second);
  parts_.erase(it);
}

uint64_t OffsetTracker::Handed(const TopicPartition& tp, int64_t offset, size_t bytes) {
  absl::MutexLock lock(&mu_);
  auto it = parts_.find(tp);
  if (it == parts_.end() || closed_) return 0;
  State& s = it->second;
  if (s.outstanding.emplace(offset, Pending{bytes, false}).second) {
    ++outstanding_;
    outstanding_bytes_ += bytes;
  }
  if (offset + 1 > s.high) s.high = offset + 1;
  return s.generation;
}

void OffsetTracker::Done(const TopicPartition& tp, uint64_t generation, int64_t offset) {
  absl::MutexLock lock(&mu_);
  if (closed_ || generation == 0) return;
  auto it = parts_.find(tp);
  if (it == parts_.end() || it->second.generation != generation) return;
  auto pending = it->second.outstanding.find(offset);
  if (pending == it->second.outstanding.end()) return;
  if (!pending->second.abandoned) {
    --outstanding_;
    outstanding_bytes_ -= pending->second.bytes;
  }
  it->second.outstanding.erase(pending);
}

void OffsetTracker::Abandon(const TopicPartition& tp, uint64_t generation, int64_t offset) {
  absl::MutexLock lock(&mu_);
  if (generation == 0) return;
  auto it = parts_.find(tp);
  if (it == parts_.end() || it->second.generation != generation) return;
  auto pending = it->second.outstanding.find(offset);
  if (pending == it->second.outstanding.end() || pending->second.abandoned) return;
  pending->second.abandoned = true;
  --outstanding_;
  outstanding_bytes_ -= pending->second.bytes;
}

std::vector<PartitionPosition> OffsetTracker::TakeCommittable(
    const std::vector<TopicPartition>* only) {
  absl::MutexLock lock(&mu_);
  std::vector<PartitionPosition> out;
  auto consider = [&out](const TopicPartition& tp, State& s) {
    if (s.high < 0) return;
    int64_t pos = s.outstanding.empty() ? s.high : s.outstanding.begin()->first;
    if (pos > s.committed) {
      s.committed = pos;
      out.push_back({tp, pos});
    }
  };
  if (only != nullptr) {
    for (const TopicPartition& tp : *only) {
      auto it = parts_.find(tp);
      if (it != parts_.end()) consider(it->first, it->second);
    }
  } else {
    for (auto& [tp, s] : parts_) consider(tp, s);
  }
  return out;
}

void OffsetTracker::CommitFailed(const TopicPartition& tp, int64_t offset) {
  absl::MutexLock lock(&mu_);
  auto it = parts_.find(tp);
  if (it != parts_.end() && it->second.committed == offset) it->second.committed = -1;
}

size_t OffsetTracker::Outstanding() const {
  absl::MutexLock lock(&mu_);
  return outstanding_;
}

size_t OffsetTracker::OutstandingBytes() const {
  absl::MutexLock lock(&mu_);
  return outstanding_bytes_;
}

bool OffsetTracker::WaitAllDone(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return outstanding_ == 0; };
  return mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
}

void OffsetTracker::Close() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

}  // namespace edge::kafka::internal
