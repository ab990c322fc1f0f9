// EtcdTracker::Impl, private to this target: the tracker's state, and its
// parts, one source file each:
//   etcd_tracker.cc          the lease and registration, lookups, shutdown;
//   etcd_tracker_batches.cc  claims and releases, group-committed;
//   etcd_tracker_lost.cc     finding, taking and publishing lost claims.
#ifndef EDGE_SRC_ETCD_ETCD_TRACKER_IMPL_H_
#define EDGE_SRC_ETCD_ETCD_TRACKER_IMPL_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/etcd/etcd_tracker.h"
#include "etcd_client.h"
#include "etcd_txn.h"

namespace edge::etcd {
namespace internal {

// Transactions one claim may spend racing other writers of its key (the key
// vanished or changed between two transactions) before giving up.
inline constexpr int kMaxClaimAttempts = 5;

// A claim record's value: the holder and when it claimed.
std::string RecordValue(const std::string& edge_id, absl::Time claimed_at);

// The lost claim a record describes (its holder "unknown" if unreadable).
LostClaim ParseRecord(const std::string& peer_id, const mvccpb::KeyValue& kv);

// What the lease and scan threads wait on. Shared with clock timers, so a
// timer that fires late never touches a destroyed tracker.
struct Wakeup {
  absl::Mutex mu;
  bool woken ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;

  void Wake() {
    absl::MutexLock lock(&mu);
    woken = true;
  }
};

}  // namespace internal

class EtcdTracker::Impl {
 public:
  Impl(EtcdTrackerOptions options, std::unique_ptr<Clock> owned_clock,
       std::unique_ptr<internal::EtcdClient> client);
  ~Impl();

  absl::Status Start();
  void Claim(const std::string& peer_id, absl::Time deadline, ClaimDone done);
  void Release(const std::string& peer_id, const PeerClaim& claim, ReleaseDone done);
  void LookupHolder(const std::string& peer_id, absl::Time deadline, HolderDone done);
  void EdgeAddress(const std::string& edge_id, absl::Time deadline, AddressDone done);
  void SetLostListener(LostListener listener);
  void SetLostClaimListener(LostClaimListener listener);
  void Shutdown(absl::Time deadline);
  bool HasLease() const;

 private:
  // What to do once a lost claim's edge_lost is out and its keys are gone
  // (OK), or could not be published (an error).
  using AfterLost = absl::AnyInvocable<void(absl::Status)>;
  // A member of a group commit (docs/cluster.md): a new claim, a release,
  // or the end of a published lost claim, each its own transaction nested
  // in one etcd request.
  enum class OpKind { kClaim, kRelease, kFinishLost };
  struct BatchedOp {
    explicit BatchedOp(OpKind op_kind) : kind(op_kind) {}
    virtual ~BatchedOp() = default;
    const OpKind kind;
    std::string peer_id;
    internal::txn::ClaimKeys keys;
    // Real time. A claim's is its caller's: it leaves the queue failed when
    // that passes. Deletions (releases, ends of lost claims) have none
    // (InfiniteFuture): no admission waits on them, so they wait their turn
    // however long the queue is, and each send has the request timeout.
    // (Failing them for waiting only sent them again, later: after 100,000
    // peers left at once, ~90 % of releases churned so.)
    absl::Time deadline = absl::InfiniteFuture();
    // A claim's lease (its peer key is bound to it); 0 for the others.
    int64_t lease = 0;
    // Guarded by Impl::mu_: waiting in batch_queue_, and the timer that
    // ends the wait at the deadline (0: none).
    bool queued = false;
    Clock::TimerId queue_timer = 0;
  };
  using BatchedOpPtr = std::shared_ptr<BatchedOp>;
  struct ClaimOp : BatchedOp {
    ClaimOp() : BatchedOp(OpKind::kClaim) {}
    ClaimDone done;
    absl::Time claimed_at;
    int attempts = 0;
    // Set by the first FinishClaim: a claim waiting for a lost claim's
    // edge_lost may be finished by its deadline timer first.
    std::atomic<bool> finished{false};
  };
  using ClaimOpPtr = std::shared_ptr<ClaimOp>;
  struct ReleaseOp : BatchedOp {
    ReleaseOp() : BatchedOp(OpKind::kRelease) {}
    int64_t epoch = 0;
    ReleaseDone done;  // empty for a retry: the caller heard the first outcome
    int attempts = 0;  // earlier sends of this release
  };
  using ReleaseOpPtr = std::shared_ptr<ReleaseOp>;
  // Deletes a published lost claim's record and lost key: after a dead
  // edge, its survivors finish thousands at once, and one transaction each
  // would outrun etcd's apply (docs/cluster.md).
  struct FinishLostOp : BatchedOp {
    FinishLostOp() : BatchedOp(OpKind::kFinishLost) {}
    int64_t record_mod = 0;
    int64_t lost_mod = 0;
    AfterLost after;
  };
  using FinishLostOpPtr = std::shared_ptr<FinishLostOp>;
  static ClaimOpPtr AsClaim(BatchedOpPtr op) { return std::static_pointer_cast<ClaimOp>(op); }
  static ReleaseOpPtr AsRelease(BatchedOpPtr op) { return std::static_pointer_cast<ReleaseOp>(op); }
  static FinishLostOpPtr AsFinishLost(BatchedOpPtr op) {
    return std::static_pointer_cast<FinishLostOp>(op);
  }
  static const char* OpName(const BatchedOp& op) {
    switch (op.kind) {
      case OpKind::kClaim:
        return "claim of ";
      case OpKind::kRelease:
        return "release of ";
      case OpKind::kFinishLost:
        return "end of the lost claim of ";
    }
    return "";
  }

  internal::txn::ClaimKeys Keys(const std::string& peer_id) const {
    return {absl::StrCat(peers_prefix_, peer_id), absl::StrCat(records_prefix_, peer_id),
            absl::StrCat(lost_prefix_, peer_id)};
  }
  // gRPC deadlines are real time; callers' deadlines are on clock_.
  absl::Time RealDeadline(absl::Time deadline) { return absl::Now() + (deadline - clock_->Now()); }

  void ClaimStep(ClaimOpPtr op);
  // Group commit: queues an op; sends a batch when a slot is free.
  void Enqueue(BatchedOpPtr op);
  // Takes the next batch off batch_queue_ (claims of one lease, ahead of
  // the others, each peer once, at most kMaxClaimsPerNest) and counts it in
  // flight; moves ops past their deadline to `expired` and the timers to
  // cancel to `timers`.
  std::vector<BatchedOpPtr> TakeBatchLocked(std::vector<BatchedOpPtr>& expired,
                                            std::vector<Clock::TimerId>& timers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Cancels `timers`, fails `expired` and sends `batch` (if not empty).
  void AfterTake(std::vector<BatchedOpPtr> batch, std::vector<BatchedOpPtr> expired,
                 const std::vector<Clock::TimerId>& timers);
  void SendBatch(std::vector<BatchedOpPtr> batch);
  void OnBatch(std::vector<BatchedOpPtr> batch, absl::StatusOr<etcdserverpb::TxnResponse> result,
               absl::Time sent);
  void OnClaimBatch(std::vector<BatchedOpPtr> batch,
                    absl::StatusOr<etcdserverpb::TxnResponse> result);
  // Ends an op that was never answered by etcd with `error`.
  void FailBatched(BatchedOpPtr op, absl::Status error);
  void FinishRelease(ReleaseOpPtr op, absl::Status status);
  // Sends a release etcd did not answer again after a backoff, while this
  // edge runs and the claim is still the one being released.
  void RetryRelease(ReleaseOpPtr op);
  // Runs `fn` on the clock after `delay` unless Shutdown comes first (it
  // cancels the timers in retry_timers_); false when already shut down.
  bool RunRetry(absl::Duration delay, absl::AnyInvocable<void()> fn);
  void ExpireQueued(const std::weak_ptr<BatchedOp>& weak);
  void OnNewClaim(ClaimOpPtr op, absl::StatusOr<etcdserverpb::TxnResponse> result);
  void TakeLostForClaim(ClaimOpPtr op, LostClaim lost, internal::txn::LostTake take);
  // The claim `op` found its peer's lost claim taken by this edge (marked
  // by the caller): publishes its edge_lost, then claims again.
  void PublishLostForClaim(ClaimOpPtr op, LostClaim lost, internal::txn::ClaimKeys keys,
                           int64_t record_mod, int64_t lost_mod);
  void FinishClaim(ClaimOpPtr op, absl::StatusOr<int64_t> epoch);
  void DropIfApplied(const ClaimOp& op);
  void DropBatchIfApplied(const std::vector<BatchedOpPtr>& batch);

  // Hands a taken lost claim to the listener; deletes its record and lost
  // key once it is published, then runs `after`.
  void PublishLost(LostClaim lost, internal::txn::ClaimKeys keys, int64_t record_mod,
                   int64_t lost_mod, AfterLost after);
  // Deletes a published lost claim's record and lost key (group-committed),
  // retrying while etcd does not answer.
  void FinishLostKeys(internal::txn::ClaimKeys keys, int64_t record_mod, int64_t lost_mod,
                      AfterLost after);
  void OnFinishLost(FinishLostOpPtr op, absl::StatusOr<etcdserverpb::TxnResponse> result);

  void RunLeaseThread();
  void RunScanThread();
  bool Sleep(const std::shared_ptr<internal::Wakeup>& wakeup, absl::Duration duration);
  absl::Status EstablishLease();
  // Re-binds `held` to `lease`, in batches; fills `lost` with the peers
  // whose claim is no longer this edge's. Keeps the lease alive meanwhile;
  // `renewed` (in: when the grant was sent) is when the last answered
  // keepalive was sent.
  absl::Status ReclaimAll(const std::vector<std::pair<std::string, int64_t>>& held, int64_t lease,
                          std::vector<std::string>& lost, absl::Time& renewed);
  // One keepalive; true when etcd answered that the lease lives.
  bool KeepAlive(int64_t lease);
  void LeaseLost(int64_t lease, absl::string_view why);
  // A request made under `lease` failed because etcd no longer knows it:
  // the lease is lost (a new one is granted at once); the error for the
  // request's caller.
  absl::Status LeaseUnknown(int64_t lease);
  void RevokeQuietly(int64_t lease);
  // The edges' registrations as read by the scan thread: key -> lease.
  using Registrations = absl::flat_hash_map<std::string, int64_t>;
  // Reads them and the revision they were read at; nullopt when etcd did
  // not answer.
  std::optional<Registrations> ReadRegistrations(int64_t* revision);
  // The registrations `ended` went (read at `from_revision` - 1, gone
  // now): each lease's end deleted its registration and its peer keys at
  // one revision, so etcd's history from `from_revision` names the claims
  // those edges left, without reading every record. Takes this edge's
  // share of them. Returns when to look at every claim (to catch takes
  // that failed, and other edges' share they did not take), or nullopt
  // when the history cannot tell (compacted, etcd did not answer): look now.
  std::optional<absl::Time> LookAtEnded(int64_t lease, const Registrations& live,
                                        const absl::flat_hash_set<std::string>& ended,
                                        int64_t from_revision);
  // One look for lost claims, and the takes it leads to. Returns when to
  // look again: at once when it took some (a take may fail) or etcd did not
  // answer; when another edge's share left untaken is due to this edge;
  // else never (InfiniteFuture).
  absl::Time ScanOnce(int64_t lease, const Registrations& live);
  // Whether this edge takes the lost claim of `peer_id` at once: the live
  // edges (`live`, registration keys) share the lost claims by rendezvous
  // hash, so that survivors do not all try every claim.
  bool MineToTake(const std::string& peer_id, const Registrations& live) const;
  // Whether this edge is publishing lost claims it took.
  bool Publishing();
  // Every key under `prefix` at `*revision` (0: the current one; then set
  // to it), read in pages of `lost_claim_scan_page` keys.
  absl::StatusOr<std::vector<mvccpb::KeyValue>> ReadUnder(const std::string& prefix, bool keys_only,
                                                          int64_t* revision);
  // Takes the lost claims `found` (by `how` in a look begun at
  // `look_started`, for the log), in batches in flight together.
  void TakeFound(std::vector<std::pair<LostClaim, internal::txn::LostTake>> found, int64_t lease,
                 absl::string_view how, absl::Time look_started);
  void TakeLostBatch(std::vector<std::pair<LostClaim, internal::txn::LostTake>> batch,
                     int64_t lease);
  // A lost claim is this edge's to take and publish from TryMark (false:
  // another path of this edge has it) until Unmark: one take per claim and
  // edge, and a scan does not take its lost key for an orphan meanwhile.
  bool TryMark(const std::string& peer_id, int64_t record_mod);
  void Unmark(const std::string& peer_id, int64_t record_mod);
  void TakeLostAttempt(
      std::shared_ptr<std::vector<std::pair<LostClaim, internal::txn::LostTake>>> batch,
      int64_t lease, int attempt);

  const EtcdTrackerOptions options_;
  Logger* const log_;
  const std::unique_ptr<Clock> owned_clock_;
  Clock* const clock_;
  const std::unique_ptr<internal::EtcdClient> client_;
  const std::string registration_;
  const std::string peers_prefix_;
  const std::string records_prefix_;
  const std::string lost_prefix_;
  const std::shared_ptr<internal::Wakeup> wakeup_ = std::make_shared<internal::Wakeup>();
  const std::shared_ptr<internal::Wakeup> scan_wakeup_ = std::make_shared<internal::Wakeup>();
  // Set before Start(); afterwards only read.
  LostListener lost_listener_;
  LostClaimListener lost_claim_listener_;
  std::thread lease_thread_;
  std::thread scan_thread_;

  enum class State { kNew, kRunning, kStopped };
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  bool first_attempt_done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t lease_id_ ABSL_GUARDED_BY(mu_) = 0;  // 0: none held
  // A lease given up locally that etcd may still keep (e.g. after an etcd
  // restart); revoked once a new lease holds the claims.
  int64_t abandoned_lease_ ABSL_GUARDED_BY(mu_) = 0;
  // When the last keepalive (or the grant) etcd answered was sent: etcd
  // renewed the lease at or after that, so it lives at least until
  // last_renewed_ + lease_ttl.
  absl::Time last_renewed_ ABSL_GUARDED_BY(mu_);
  // peer_id -> epoch of the claim this edge holds.
  absl::flat_hash_map<std::string, int64_t> held_ ABSL_GUARDED_BY(mu_);
  // peer_id -> epoch of this edge's claim being released: still this
  // edge's own for a new claim of the peer (a takeover, not a lost claim).
  absl::flat_hash_map<std::string, int64_t> releasing_ ABSL_GUARDED_BY(mu_);
  int releases_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  // Scan thread only: when each lost claim of another edge's share was
  // first seen untaken (MineToTake).
  absl::flat_hash_map<std::string, absl::Time> others_seen_;
  // peer_id -> record revision of each lost claim this edge is publishing.
  absl::flat_hash_map<std::string, int64_t> publishing_ ABSL_GUARDED_BY(mu_);
  // Timers of OnFinishLost and RetryRelease retries, cancelled at shutdown.
  absl::flat_hash_set<Clock::TimerId> retry_timers_ ABSL_GUARDED_BY(mu_);
  // Group commit (docs/cluster.md): ops waiting for a batch, and the batches in flight (at most
  // internal::txn::kClaimBatchesInFlight).
  std::deque<BatchedOpPtr> batch_queue_ ABSL_GUARDED_BY(mu_);
  int batches_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace edge::etcd

#endif  // EDGE_SRC_ETCD_ETCD_TRACKER_IMPL_H_
