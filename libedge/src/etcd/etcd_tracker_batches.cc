// EtcdTracker's claims and releases, group-committed (docs/cluster.md).
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/json_writer.h"
#include "etcd_client.h"
#include "etcd_tracker_impl.h"
#include "etcd_txn.h"

namespace edge::etcd {

using internal::kMaxClaimAttempts;
using internal::ParseRecord;
using internal::RecordValue;

std::string internal::RecordValue(const std::string& edge_id, absl::Time claimed_at) {
  std::string json;
  JsonWriter(json)
      .Field("edge_id", edge_id)
      .Field("claimed_at_ms", absl::ToUnixMillis(claimed_at))
      .Close();
  return json;
}

void EtcdTracker::Impl::Claim(const std::string& peer_id, absl::Time deadline, ClaimDone done) {
  if (peer_id.empty()) {
    done(absl::InvalidArgumentError("etcd tracker: empty peer_id"));
    return;
  }
  int64_t lease = 0;
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kRunning) {
      done(absl::UnavailableError(state_ == State::kNew ? "etcd tracker is not started"
                                                        : "etcd tracker is shut down"));
      return;
    }
    lease = lease_id_;
  }
  if (lease == 0) {
    wakeup_->Wake();  // try for a lease now rather than at the next retry
    done(
        absl::UnavailableError("etcd tracker holds no lease: etcd is unreachable or the lease is "
                               "being renewed"));
    return;
  }
  if (deadline <= clock_->Now()) {
    done(absl::DeadlineExceededError(
        absl::StrCat("claim of ", peer_id, ": deadline already passed")));
    return;
  }
  auto op = std::make_shared<ClaimOp>();
  op->peer_id = peer_id;
  op->keys = Keys(peer_id);
  op->deadline = RealDeadline(deadline);
  op->done = std::move(done);
  op->lease = lease;
  op->claimed_at = clock_->Now();
  ClaimStep(std::move(op));
}

void EtcdTracker::Impl::ClaimStep(ClaimOpPtr op) {
  if (++op->attempts > kMaxClaimAttempts) {
    // The error is built before op is moved: argument order is unspecified.
    absl::Status error = absl::UnavailableError(
        absl::StrCat("claim of ", op->peer_id, " kept racing other writers of its key; try again"));
    FinishClaim(std::move(op), std::move(error));
    return;
  }
  if (absl::Now() >= op->deadline) {
    absl::Status error =
        absl::DeadlineExceededError(absl::StrCat("claim of ", op->peer_id, ": deadline passed"));
    FinishClaim(std::move(op), std::move(error));
    return;
  }
  Enqueue(std::move(op));
}

void EtcdTracker::Impl::Enqueue(BatchedOpPtr op) {
  std::vector<BatchedOpPtr> batch;
  std::vector<BatchedOpPtr> expired;
  std::vector<Clock::TimerId> timers;
  bool waits = false;
  {
    absl::MutexLock lock(&mu_);
    op->queued = true;
    batch_queue_.push_back(op);
    if (batches_in_flight_ < internal::txn::kClaimBatchesInFlight) {
      batch = TakeBatchLocked(expired, timers);
    }
    waits = op->queued;
  }
  AfterTake(std::move(batch), std::move(expired), timers);
  if (!waits || op->deadline == absl::InfiniteFuture()) return;
  // Its wait ends at its deadline even if the batches ahead of it hang.
  std::weak_ptr<BatchedOp> weak = op;
  Clock::TimerId timer = clock_->RunAt(clock_->Now() + (op->deadline - absl::Now()),
                                       [this, weak] { ExpireQueued(weak); });
  bool cancel = false;
  {
    absl::MutexLock lock(&mu_);
    if (op->queued) {
      op->queue_timer = timer;
    } else {
      cancel = true;  // already sent
    }
  }
  if (cancel) clock_->Cancel(timer);
}

std::vector<EtcdTracker::Impl::BatchedOpPtr> EtcdTracker::Impl::TakeBatchLocked(
    std::vector<BatchedOpPtr>& expired, std::vector<Clock::TimerId>& timers) {
  std::vector<BatchedOpPtr> batch;
  // One nested transaction per peer: etcd refuses a key written twice in
  // one request, and a peer's second op (a claim after a release, say)
  // must see the first's outcome. A peer's op that waits keeps its later
  // ops waiting too, so that each peer's ops go out in order.
  absl::flat_hash_set<std::string> peers;
  // Claims of one lease, or the others (deletions): a claim naming a lease
  // etcd no longer knows fails the whole request, and would take the
  // others with it. Claims go first: a peer's admission waits on each,
  // nobody waits on a deletion, and once many streams end together
  // thousands of deletions may be queued ahead of a claim. The first claim
  // that no earlier op of its own peer holds back sets the lease; without
  // one, the batch holds deletions.
  bool claims = false;
  int64_t lease = 0;
  const absl::Time now = absl::Now();
  if (std::any_of(batch_queue_.begin(), batch_queue_.end(),
                  [](const BatchedOpPtr& op) { return op->kind == OpKind::kClaim; })) {
    absl::flat_hash_set<absl::string_view> ahead;
    for (const BatchedOpPtr& op : batch_queue_) {
      if (now >= op->deadline) continue;  // leaves the queue expired, below
      if (op->kind == OpKind::kClaim && !ahead.contains(op->peer_id)) {
        claims = true;
        lease = op->lease;
        break;
      }
      ahead.insert(op->peer_id);
    }
  }
  for (auto it = batch_queue_.begin();
       it != batch_queue_.end() &&
       batch.size() < static_cast<size_t>(internal::txn::kMaxClaimsPerNest);) {
    BatchedOp& op = **it;
    const bool late = now >= op.deadline;
    if (!late) {
      const bool first_of_peer = peers.insert(op.peer_id).second;
      if (!first_of_peer || (op.kind == OpKind::kClaim) != claims || op.lease != lease) {
        ++it;  // the next batch
        continue;
      }
    }
    op.queued = false;
    if (op.queue_timer != 0) timers.push_back(op.queue_timer);
    op.queue_timer = 0;
    (late ? expired : batch).push_back(std::move(*it));
    it = batch_queue_.erase(it);
  }
  if (!batch.empty()) ++batches_in_flight_;
  return batch;
}

void EtcdTracker::Impl::AfterTake(std::vector<BatchedOpPtr> batch,
                                  std::vector<BatchedOpPtr> expired,
                                  const std::vector<Clock::TimerId>& timers) {
  for (Clock::TimerId timer : timers) clock_->Cancel(timer);
  for (BatchedOpPtr& op : expired) {
    absl::Status late = absl::DeadlineExceededError(
        absl::StrCat(OpName(*op), op->peer_id, ": deadline passed waiting for etcd"));
    FailBatched(std::move(op), std::move(late));
  }
  if (!batch.empty()) SendBatch(std::move(batch));
}

void EtcdTracker::Impl::ExpireQueued(const std::weak_ptr<BatchedOp>& weak) {
  BatchedOpPtr op = weak.lock();
  if (op == nullptr) return;
  {
    absl::MutexLock lock(&mu_);
    if (!op->queued) return;  // sent meanwhile: its batch has its deadline
    op->queued = false;
    op->queue_timer = 0;
    batch_queue_.erase(std::find(batch_queue_.begin(), batch_queue_.end(), op));
  }
  absl::Status late = absl::DeadlineExceededError(
      absl::StrCat(OpName(*op), op->peer_id, ": deadline passed waiting for etcd"));
  FailBatched(std::move(op), std::move(late));
}

void EtcdTracker::Impl::FailBatched(BatchedOpPtr op, absl::Status error) {
  switch (op->kind) {
    case OpKind::kClaim:
      FinishClaim(AsClaim(std::move(op)), std::move(error));
      return;
    case OpKind::kRelease:
      FinishRelease(AsRelease(std::move(op)), std::move(error));
      return;
    case OpKind::kFinishLost:
      OnFinishLost(AsFinishLost(std::move(op)), std::move(error));
      return;
  }
}

void EtcdTracker::Impl::SendBatch(std::vector<BatchedOpPtr> batch) {
  std::vector<etcdserverpb::TxnRequest> txns;
  txns.reserve(batch.size());
  // A batch of claims ends with its earliest deadline: no admission waits
  // past its own. A batch of deletions gets the whole request timeout from
  // now, however long its ops waited in the queue. etcd applies a request
  // to its end even once the client has given up on it, so a batch sent
  // with a sliver of its deadline left would fail here, free the slot in
  // flight and let the next batch pile onto etcd while it still works on
  // this one. After a mass disconnect that backlog kept every edge's
  // keepalives unanswered past the lease TTL (docs/performance.md).
  const bool deletions = batch.front()->kind != OpKind::kClaim;
  absl::Time deadline = deletions ? absl::Now() + options_.request_timeout : absl::InfiniteFuture();
  for (const BatchedOpPtr& op : batch) {
    switch (op->kind) {
      case OpKind::kClaim:
        txns.push_back(internal::txn::NewClaim(
            op->keys, options_.edge_id,
            RecordValue(options_.edge_id, static_cast<const ClaimOp&>(*op).claimed_at), op->lease));
        break;
      case OpKind::kRelease:
        txns.push_back(
            internal::txn::ReleaseClaim(op->keys, static_cast<const ReleaseOp&>(*op).epoch));
        break;
      case OpKind::kFinishLost: {
        const auto& finish = static_cast<const FinishLostOp&>(*op);
        txns.push_back(internal::txn::FinishLost(op->keys, finish.record_mod, finish.lost_mod));
        break;
      }
    }
    if (!deletions) deadline = std::min(deadline, op->deadline);
  }
  auto ops = std::make_shared<std::vector<BatchedOpPtr>>(std::move(batch));
  client_->Txn(internal::txn::Nest(std::move(txns)), deadline,
               [this, ops, sent = absl::Now()](absl::StatusOr<etcdserverpb::TxnResponse> result) {
                 OnBatch(std::move(*ops), std::move(result), sent);
               });
}

void EtcdTracker::Impl::OnBatch(std::vector<BatchedOpPtr> batch,
                                absl::StatusOr<etcdserverpb::TxnResponse> result, absl::Time sent) {
  // The next batch goes out first, so that etcd works on it while this
  // one's ops are answered.
  std::vector<BatchedOpPtr> next;
  std::vector<BatchedOpPtr> expired;
  std::vector<Clock::TimerId> timers;
  size_t still_queued = 0;
  {
    absl::MutexLock lock(&mu_);
    --batches_in_flight_;
    if (!batch_queue_.empty()) next = TakeBatchLocked(expired, timers);
    still_queued = batch_queue_.size();
  }
  if (log_->Enabled(LogLevel::kDebug)) {
    // The group commit's trace: how big batches are, how long etcd takes
    // with each, and how many ops wait meanwhile.
    std::string kind = batch.front()->kind == OpKind::kClaim ? "claims" : "deletions";
    std::string size = absl::StrCat(batch.size());
    std::string took = absl::StrCat(absl::ToDoubleMilliseconds(absl::Now() - sent));
    std::string next_size = absl::StrCat(next.size());
    std::string queued = absl::StrCat(still_queued);
    std::string status = result.ok() ? "OK" : result.status().ToString();
    log_->Debug("etcd batch answered", {{"kind", kind},
                                        {"size", size},
                                        {"ms", took},
                                        {"next", next_size},
                                        {"queued", queued},
                                        {"status", status}});
  }
  AfterTake(std::move(next), std::move(expired), timers);
  if (batch.front()->kind == OpKind::kClaim) {
    OnClaimBatch(std::move(batch), std::move(result));
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    absl::StatusOr<etcdserverpb::TxnResponse> own =
        result.ok() ? internal::txn::TakeNested(*result, static_cast<int>(i)) : result.status();
    if (batch[i]->kind == OpKind::kFinishLost) {
      OnFinishLost(AsFinishLost(std::move(batch[i])), std::move(own));
      continue;
    }
    // A release's outcome is etcd's answer to the request: OK also when its
    // record had changed (the claim was no longer this edge's to delete).
    FinishRelease(AsRelease(std::move(batch[i])), own.status());
  }
}

void EtcdTracker::Impl::OnClaimBatch(std::vector<BatchedOpPtr> batch,
                                     absl::StatusOr<etcdserverpb::TxnResponse> result) {
  if (!result.ok()) {
    if (internal::txn::IsLeaseNotFound(result.status())) {
      const absl::Status lost = LeaseUnknown(batch.front()->lease);
      for (BatchedOpPtr& op : batch) FinishClaim(AsClaim(std::move(op)), lost);
      return;
    }
    DropBatchIfApplied(batch);
    for (BatchedOpPtr& op : batch) FinishClaim(AsClaim(std::move(op)), result.status());
    return;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    OnNewClaim(AsClaim(std::move(batch[i])),
               internal::txn::TakeNested(*result, static_cast<int>(i)));
  }
}

void EtcdTracker::Impl::OnNewClaim(ClaimOpPtr op,
                                   absl::StatusOr<etcdserverpb::TxnResponse> result) {
  if (!result.ok()) {
    if (internal::txn::IsLeaseNotFound(result.status())) {
      const int64_t lease = op->lease;
      FinishClaim(std::move(op), LeaseUnknown(lease));
      return;
    }
    DropIfApplied(*op);
    FinishClaim(std::move(op), result.status());
    return;
  }
  if (result->succeeded()) {
    FinishClaim(std::move(op), result->header().revision());
    return;
  }
  const mvccpb::KeyValue* peer = internal::txn::KeyAt(*result, 0);
  const mvccpb::KeyValue* record = internal::txn::KeyAt(*result, 1);
  const mvccpb::KeyValue* lost = internal::txn::KeyAt(*result, 2);
  if (peer != nullptr && peer->value() != options_.edge_id) {
    absl::Status error = absl::AlreadyExistsError(
        absl::StrCat("peer ", op->peer_id, " is held by edge ", peer->value()));
    FinishClaim(std::move(op), std::move(error));
    return;
  }
  if (record == nullptr) {
    if (peer == nullptr) {  // released between compare and read
      ClaimStep(std::move(op));
      return;
    }
    // This edge's peer key without a record (written before records
    // existed): delete it and claim afresh.
    client_->Txn(internal::txn::DeleteIfUnchanged(op->keys.peer, peer->mod_revision()),
                 op->deadline, [this, op](absl::StatusOr<etcdserverpb::TxnResponse> deleted) {
                   if (!deleted.ok()) {
                     FinishClaim(op, deleted.status());
                   } else {
                     ClaimStep(op);
                   }
                 });
    return;
  }
  if (lost != nullptr && lost->value() == options_.edge_id &&
      TryMark(op->peer_id, record->mod_revision())) {
    // This edge took the lost claim and is not publishing it: the take's
    // answer was lost (etcd applied it after its deadline). Publish it
    // now, then claim; otherwise the peer would be refused until a look
    // at every claim found it.
    PublishLostForClaim(op, ParseRecord(op->peer_id, *record), op->keys, record->mod_revision(),
                        lost->mod_revision());
    return;
  }
  if (lost != nullptr) {
    absl::Status error = absl::UnavailableError(
        absl::StrCat("the previous claim of peer ", op->peer_id,
                     " is being closed (edge_lost) by edge ", lost->value(), "; try again"));
    FinishClaim(std::move(op), std::move(error));
    return;
  }
  bool ours = false;
  if (peer != nullptr) {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(op->peer_id);
    auto releasing = releasing_.find(op->peer_id);
    ours = (it != held_.end() && it->second == record->mod_revision()) ||
           (releasing != releasing_.end() && releasing->second == record->mod_revision());
  }
  if (ours) {
    // A stream of this edge replaces another of the same peer: a new claim
    // with its own epoch, in one transaction.
    client_->Txn(internal::txn::TakeOverClaim(
                     op->keys, options_.edge_id, RecordValue(options_.edge_id, op->claimed_at),
                     op->lease, peer->mod_revision(), record->mod_revision()),
                 op->deadline, [this, op](absl::StatusOr<etcdserverpb::TxnResponse> taken) {
                   if (!taken.ok()) {
                     DropIfApplied(*op);
                     FinishClaim(op, taken.status());
                   } else if (taken->succeeded()) {
                     FinishClaim(op, taken->header().revision());
                   } else {
                     ClaimStep(op);
                   }
                 });
    return;
  }
  // A lost claim: its edge died (no peer key), or it is this edge id's
  // from before a restart. Its edge_lost goes out before this claim.
  internal::txn::LostTake take{op->keys, record->mod_revision(),
                               peer != nullptr ? peer->mod_revision() : 0};
  LostClaim previous = ParseRecord(op->peer_id, *record);
  TakeLostForClaim(std::move(op), std::move(previous), std::move(take));
}

void EtcdTracker::Impl::DropIfApplied(const ClaimOp& op) {
  // A claim transaction that timed out may still be applied by etcd: the
  // peer would then stay held by this edge for a stream it never admitted,
  // refused everywhere else until it happens to come back here. Undo it
  // if it landed (best effort; same record value, so never another claim).
  client_->Txn(
      internal::txn::DropUnknownClaim(op.keys, RecordValue(options_.edge_id, op.claimed_at)),
      absl::Now() + options_.request_timeout, [](absl::StatusOr<etcdserverpb::TxnResponse>) {});
}

void EtcdTracker::Impl::DropBatchIfApplied(const std::vector<BatchedOpPtr>& batch) {
  // As DropIfApplied, for a whole batch of claims in one transaction.
  std::vector<etcdserverpb::TxnRequest> drops;
  drops.reserve(batch.size());
  for (const BatchedOpPtr& op : batch) {
    drops.push_back(internal::txn::DropUnknownClaim(
        op->keys, RecordValue(options_.edge_id, static_cast<const ClaimOp&>(*op).claimed_at)));
  }
  client_->Txn(internal::txn::Nest(std::move(drops)), absl::Now() + options_.request_timeout,
               [](absl::StatusOr<etcdserverpb::TxnResponse>) {});
}

void EtcdTracker::Impl::FinishClaim(ClaimOpPtr op, absl::StatusOr<int64_t> epoch) {
  if (op->finished.exchange(true)) return;
  ClaimDone done = std::move(op->done);
  if (!epoch.ok()) {
    done(epoch.status());
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (lease_id_ != op->lease) {
      // The lease was given up while the claim was in flight: the key is
      // bound to a lease this edge no longer keeps alive.
      epoch = absl::UnavailableError(
          absl::StrCat("claim of ", op->peer_id, " raced a lease renewal; try again"));
    } else {
      held_[op->peer_id] = *epoch;
    }
  }
  if (!epoch.ok()) {
    done(epoch.status());
    return;
  }
  done(PeerClaim{*epoch});
}

void EtcdTracker::Impl::Release(const std::string& peer_id, const PeerClaim& claim,
                                ReleaseDone done) {
  if (!claim.epoch.has_value()) {
    done(absl::InvalidArgumentError(
        absl::StrCat("etcd tracker: release of ", peer_id, " names no epoch")));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kStopped) {
      // The lease is revoked: an unreleased claim is a lost claim now.
      done(absl::OkStatus());
      return;
    }
    auto it = held_.find(peer_id);
    if (it != held_.end()) {
      if (it->second != *claim.epoch) {
        done(absl::OkStatus());  // stale: a newer claim replaced it
        return;
      }
      held_.erase(it);
    }
    releasing_[peer_id] = *claim.epoch;
    ++releases_in_flight_;
  }
  // Group-committed like new claims (docs/cluster.md).
  auto op = std::make_shared<ReleaseOp>();
  op->peer_id = peer_id;
  op->keys = Keys(peer_id);
  op->epoch = *claim.epoch;
  op->done = std::move(done);
  Enqueue(std::move(op));
}

void EtcdTracker::Impl::FinishRelease(ReleaseOpPtr op, absl::Status status) {
  // A release etcd did not answer leaves the claim in place, bound to this
  // edge's lease: every other edge refuses its peer meanwhile, and once the
  // lease ends it is a lost claim whose edge_lost would be the stream's
  // second `disconnected`. The caller hears the first outcome; the release
  // is sent again in the background until etcd answers.
  bool retry = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = releasing_.find(op->peer_id);
    const bool current = it != releasing_.end() && it->second == op->epoch;
    retry = !status.ok() && current && state_ == State::kRunning;
    if (current && !retry) releasing_.erase(it);
  }
  if (status.ok() && op->attempts > 0) {
    log_->Info("released a peer claim on a later attempt",
               {{"peer_id", op->peer_id}, {"attempts", absl::StrCat(op->attempts + 1)}});
  }
  if (op->done) {
    ReleaseDone done = std::move(op->done);
    done(status);
  }
  if (retry) RetryRelease(op);
  // Counted until its caller has heard: Shutdown waits for both.
  absl::MutexLock lock(&mu_);
  --releases_in_flight_;
}

void EtcdTracker::Impl::RetryRelease(ReleaseOpPtr op) {
  // 1 s, doubling to 16 s: a flood of releases that outran etcd does not
  // come back all at once.
  const absl::Duration backoff = absl::Seconds(1 << std::min(op->attempts, 4));
  RunRetry(backoff, [this, op] {
    {
      absl::MutexLock lock(&mu_);
      auto it = releasing_.find(op->peer_id);
      if (state_ != State::kRunning || it == releasing_.end() || it->second != op->epoch) return;
      ++releases_in_flight_;
    }
    auto again = std::make_shared<ReleaseOp>();
    again->peer_id = op->peer_id;
    again->keys = op->keys;
    again->epoch = op->epoch;
    again->attempts = op->attempts + 1;
    Enqueue(std::move(again));
  });
}

bool EtcdTracker::Impl::RunRetry(absl::Duration delay, absl::AnyInvocable<void()> fn) {
  // The timer's id, once known; the timer forgets itself when it runs, so
  // that retry_timers_ holds only those still due.
  struct Pending {
    Clock::TimerId id = 0;
    bool ran = false;
  };
  auto pending = std::make_shared<Pending>();  // guarded by mu_
  Clock::TimerId timer =
      clock_->RunAt(clock_->Now() + delay, [this, pending, fn = std::move(fn)]() mutable {
        {
          absl::MutexLock lock(&mu_);
          pending->ran = true;
          if (pending->id != 0) retry_timers_.erase(pending->id);
        }
        fn();
      });
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kRunning) {
      if (!pending->ran) {
        pending->id = timer;
        retry_timers_.insert(timer);
      }
      return true;
    }
  }
  clock_->Cancel(timer);  // shut down meanwhile
  return false;
}

}  // namespace edge::etcd
