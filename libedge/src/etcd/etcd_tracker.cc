#include "edge/etcd/etcd_tracker.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/json_writer.h"
#include "etcd_client.h"
#include "etcd_holder.h"
#include "etcd_txn.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace edge::etcd {

using internal::EtcdClient;
using internal::EtcdClientSecurity;

namespace {

// Transactions one claim may spend racing other writers of its key (the key
// vanished or changed between two transactions) before giving up.
constexpr int kMaxClaimAttempts = 5;

// Claims per re-claim transaction and lost claims per take: each peer costs
// 2 (re-claim) or 3 (take) compares and reads, within etcd's default
// --max-txn-ops of 128.
constexpr size_t kReclaimBatch = 60;
constexpr size_t kTakeBatch = 40;

// A claim record's value: the holder and when it claimed.
std::string RecordValue(const std::string& edge_id, absl::Time claimed_at) {
  std::string json;
  JsonWriter(json)
      .Field("edge_id", edge_id)
      .Field("claimed_at_ms", absl::ToUnixMillis(claimed_at))
      .Close();
  return json;
}

LostClaim ParseRecord(const std::string& peer_id, const mvccpb::KeyValue& kv) {
  LostClaim lost;
  lost.peer_id = peer_id;
  lost.epoch = kv.mod_revision();
  lost.edge_id = "unknown";
  lost.claimed_at = absl::FromUnixMillis(0);
  google::protobuf::Struct record;
  if (google::protobuf::util::JsonStringToMessage(kv.value(), &record).ok()) {
    const auto& fields = record.fields();
    if (auto it = fields.find("edge_id"); it != fields.end() && it->second.has_string_value()) {
      lost.edge_id = it->second.string_value();
    }
    if (auto it = fields.find("claimed_at_ms");
        it != fields.end() && it->second.has_number_value()) {
      lost.claimed_at = absl::FromUnixMillis(static_cast<int64_t>(it->second.number_value()));
    }
  }
  return lost;
}

absl::Status ValidateOptions(const EtcdTrackerOptions& options) {
  if (options.edge_id.empty()) {
    return absl::InvalidArgumentError("etcd tracker: edge_id is empty");
  }
  if (options.advertised_address.empty()) {
    return absl::InvalidArgumentError("etcd tracker: advertised_address is empty");
  }
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("etcd tracker: no etcd endpoints");
  }
  if (options.lease_ttl < absl::Seconds(1) ||
      options.lease_ttl != absl::Seconds(absl::ToInt64Seconds(options.lease_ttl))) {
    return absl::InvalidArgumentError(
        absl::StrCat("etcd tracker: lease_ttl must be whole seconds, at least 1; got ",
                     absl::FormatDuration(options.lease_ttl)));
  }
  if (options.key_prefix.empty() || options.key_prefix.front() != '/' ||
      options.key_prefix.back() != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd tracker: key_prefix must start and end with '/'; got \"", options.key_prefix, "\""));
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("etcd tracker: request_timeout must be positive");
  }
  if (options.lost_claim_scan_page < 1) {
    return absl::InvalidArgumentError("etcd tracker: lost_claim_scan_page must be at least 1");
  }
  return absl::OkStatus();
}

EtcdClientSecurity ClientSecurity(const EtcdTrackerOptions& options) {
  return EtcdClientSecurity{options.tls,          options.tls_ca_file, options.tls_cert_file,
                            options.tls_key_file, options.username,    options.password};
}

// What the lease thread waits on. Shared with clock timers, so a timer that
// fires late never touches a destroyed tracker.
struct Wakeup {
  absl::Mutex mu;
  bool woken ABSL_GUARDED_BY(mu) = false;
  bool stop ABSL_GUARDED_BY(mu) = false;

  void Wake() {
    absl::MutexLock lock(&mu);
    woken = true;
  }
};

}  // namespace

class EtcdTracker::Impl {
 public:
  Impl(EtcdTrackerOptions options, std::unique_ptr<Clock> owned_clock,
       std::unique_ptr<EtcdClient> client);
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
  bool Sleep(const std::shared_ptr<Wakeup>& wakeup, absl::Duration duration);
  absl::Status EstablishLease();
  // Re-binds `held` to `lease`, in batches; fills `lost` with the peers
  // whose claim is no longer this edge's.
  absl::Status ReclaimAll(const std::vector<std::pair<std::string, int64_t>>& held, int64_t lease,
                          std::vector<std::string>& lost);
  bool KeepAlive(int64_t lease);
  void LeaseLost(int64_t lease, absl::string_view why);
  void RevokeQuietly(int64_t lease);
  // The edges' registrations as read by the scan thread: key -> lease.
  using Registrations = absl::flat_hash_map<std::string, int64_t>;
  // Reads them; nullopt when etcd did not answer.
  std::optional<Registrations> ReadRegistrations();
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
  const std::unique_ptr<EtcdClient> client_;
  const std::string registration_;
  const std::string peers_prefix_;
  const std::string records_prefix_;
  const std::string lost_prefix_;
  const std::shared_ptr<Wakeup> wakeup_ = std::make_shared<Wakeup>();
  const std::shared_ptr<Wakeup> scan_wakeup_ = std::make_shared<Wakeup>();
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

EtcdTracker::Impl::Impl(EtcdTrackerOptions options, std::unique_ptr<Clock> owned_clock,
                        std::unique_ptr<EtcdClient> client)
    : options_(std::move(options)),
      log_(options_.logger != nullptr ? options_.logger : &Logger::Null()),
      owned_clock_(std::move(owned_clock)),
      clock_(options_.clock != nullptr ? options_.clock : owned_clock_.get()),
      client_(std::move(client)),
      registration_([this] {
        std::string json;
        JsonWriter(json)
            .Field("edge_id", options_.edge_id)
            .Field("address", options_.advertised_address)
            .Close();
        return json;
      }()),
      peers_prefix_(absl::StrCat(options_.key_prefix, "peers/")),
      records_prefix_(absl::StrCat(options_.key_prefix, "claims/")),
      lost_prefix_(absl::StrCat(options_.key_prefix, "lost/")) {}

EtcdTracker::Impl::~Impl() { Shutdown(clock_->Now() + options_.request_timeout); }

absl::Status EtcdTracker::Impl::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kNew) {
      return absl::FailedPreconditionError(
          "etcd tracker: Start() called twice or after Shutdown()");
    }
    state_ = State::kRunning;
  }
  lease_thread_ = std::thread([this] { RunLeaseThread(); });
  if (lost_claim_listener_) {
    scan_thread_ = std::thread([this] { RunScanThread(); });
  }
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&first_attempt_done_),
                       options_.request_timeout + absl::Seconds(1));
  if (lease_id_ == 0) {
    log_->Warn("etcd not reachable yet; claims fail until it is",
               {{"endpoint", client_->current_endpoint()}});
  }
  return absl::OkStatus();
}

void EtcdTracker::Impl::SetLostListener(LostListener listener) {
  lost_listener_ = std::move(listener);
}

void EtcdTracker::Impl::SetLostClaimListener(LostClaimListener listener) {
  lost_claim_listener_ = std::move(listener);
}

bool EtcdTracker::Impl::HasLease() const {
  absl::MutexLock lock(&mu_);
  return lease_id_ != 0;
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
      LeaseLost(batch.front()->lease, "etcd no longer knows the lease");
      for (BatchedOpPtr& op : batch) {
        FinishClaim(AsClaim(std::move(op)),
                    absl::UnavailableError("etcd tracker lost its lease; it is being renewed"));
      }
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
      LeaseLost(op->lease, "etcd no longer knows the lease");
      FinishClaim(std::move(op),
                  absl::UnavailableError("etcd tracker lost its lease; it is being renewed"));
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

void EtcdTracker::Impl::TakeLostForClaim(ClaimOpPtr op, LostClaim lost,
                                         internal::txn::LostTake take) {
  if (!TryMark(lost.peer_id, take.record_mod)) {
    FinishClaim(std::move(op), absl::UnavailableError(absl::StrCat(
                                   "the previous claim of peer ", lost.peer_id,
                                   " is being closed (edge_lost) by this edge; try again")));
    return;
  }
  client_->Txn(internal::txn::TakeLost({take}, options_.edge_id, op->lease), op->deadline,
               [this, op, lost = std::move(lost),
                keys = take.keys](absl::StatusOr<etcdserverpb::TxnResponse> taken) mutable {
                 if (!taken.ok() || !taken->succeeded()) Unmark(lost.peer_id, lost.epoch);
                 if (!taken.ok()) {
                   FinishClaim(op, taken.status());
                   return;
                 }
                 if (!taken->succeeded()) {  // someone else moved first: look again
                   ClaimStep(op);
                   return;
                 }
                 const int64_t record_mod = lost.epoch;
                 // The caller waits no longer than its deadline for the edge_lost
                 // (the bus may be slow); the loss is finished all the same.
                 std::weak_ptr<ClaimOp> weak = op;
                 Clock::TimerId timer =
                     clock_->RunAt(clock_->Now() + (op->deadline - absl::Now()), [this, weak] {
                       if (ClaimOpPtr late = weak.lock()) {
                         absl::Status error = absl::DeadlineExceededError(
                             absl::StrCat("claim of ", late->peer_id,
                                          ": the previous claim's edge_lost is not stored yet"));
                         FinishClaim(std::move(late), std::move(error));
                       }
                     });
                 PublishLost(std::move(lost), std::move(keys), record_mod,
                             taken->header().revision(), [this, op, timer](absl::Status status) {
                               clock_->Cancel(timer);
                               if (op->finished.load()) return;
                               if (status.ok()) {
                                 ClaimStep(op);
                               } else {
                                 FinishClaim(op, absl::UnavailableError(absl::StrCat(
                                                     "the previous claim of peer ", op->peer_id,
                                                     " could not be closed: ", status.message())));
                               }
                             });
               });
}

void EtcdTracker::Impl::PublishLost(LostClaim lost, internal::txn::ClaimKeys keys,
                                    int64_t record_mod, int64_t lost_mod, AfterLost after) {
  // Marked by the caller (TryMark); unmarked once finished.
  auto done_publishing = [this, peer_id = lost.peer_id, record_mod] {
    Unmark(peer_id, record_mod);
  };
  after = [done_publishing, after = std::move(after)](absl::Status status) mutable {
    done_publishing();
    after(std::move(status));
  };
  auto finish = [this, keys, record_mod, lost_mod, after = std::move(after),
                 peer_id = lost.peer_id](absl::Status published) mutable {
    if (!published.ok()) {
      log_->Warn("edge_lost not published; the lost claim stays for a retry",
                 {{"peer_id", peer_id}, {"error", published.ToString()}});
      // Give the loss back, so that this edge or another takes it again.
      client_->Txn(internal::txn::DeleteIfUnchanged(keys.lost, lost_mod),
                   absl::Now() + options_.request_timeout,
                   [](absl::StatusOr<etcdserverpb::TxnResponse>) {});
      after(std::move(published));
      return;
    }
    FinishLostKeys(std::move(keys), record_mod, lost_mod, std::move(after));
  };
  if (!lost_claim_listener_) {
    log_->Warn("lost claim dropped: no lost-claim listener to publish it",
               {{"peer_id", lost.peer_id}, {"edge_id", lost.edge_id}});
    finish(absl::OkStatus());
    return;
  }
  log_->Debug(
      "handing over a lost claim",
      {{"peer_id", lost.peer_id}, {"edge_id", lost.edge_id}, {"epoch", absl::StrCat(lost.epoch)}});
  lost_claim_listener_(lost, std::move(finish));
}

void EtcdTracker::Impl::FinishLostKeys(internal::txn::ClaimKeys keys, int64_t record_mod,
                                       int64_t lost_mod, AfterLost after) {
  auto op = std::make_shared<FinishLostOp>();
  op->peer_id = keys.record.substr(records_prefix_.size());
  op->keys = std::move(keys);
  op->record_mod = record_mod;
  op->lost_mod = lost_mod;
  op->after = std::move(after);
  Enqueue(std::move(op));
}

void EtcdTracker::Impl::OnFinishLost(FinishLostOpPtr op,
                                     absl::StatusOr<etcdserverpb::TxnResponse> result) {
  if (!result.ok()) {
    // The edge_lost is out: the record must go, or the peer stays blocked
    // behind this edge's lost key. Try again shortly (not once shut down).
    if (RunRetry(absl::Milliseconds(500), [this, op] {
          FinishLostKeys(std::move(op->keys), op->record_mod, op->lost_mod, std::move(op->after));
        })) {
      return;
    }
  } else if (!result->succeeded()) {
    // The record went meanwhile (its own edge released it): drop the lost
    // key all the same.
    client_->Txn(internal::txn::DeleteIfUnchanged(op->keys.lost, op->lost_mod),
                 absl::Now() + options_.request_timeout,
                 [](absl::StatusOr<etcdserverpb::TxnResponse>) {});
  }
  AfterLost after = std::move(op->after);
  after(result.status());
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

void EtcdTracker::Impl::LookupHolder(const std::string& peer_id, absl::Time deadline,
                                     HolderDone done) {
  if (peer_id.empty()) {
    done(absl::InvalidArgumentError("etcd tracker: empty peer_id"));
    return;
  }
  const internal::txn::ClaimKeys keys = Keys(peer_id);
  client_->Txn(
      internal::txn::GetTwo(keys.peer, keys.record), RealDeadline(deadline),
      [peer_id, log = log_,
       done = std::move(done)](absl::StatusOr<etcdserverpb::TxnResponse> result) mutable {
        if (!result.ok()) {
          done(result.status());
          return;
        }
        const mvccpb::KeyValue* kv = internal::txn::KeyAt(*result, 0);
        if (kv == nullptr) {
          done(absl::NotFoundError(absl::StrCat("peer ", peer_id, " is not held by any edge")));
          return;
        }
        // The holder's id goes into a topic name (forwarding):
        // whatever etcd holds must first pass the EDGE_ID rules.
        if (absl::Status valid = internal::CheckEdgeId(kv->value()); !valid.ok()) {
          log->Error("etcd holds an invalid edge id for a peer; not used",
                     {{"peer_id", peer_id}, {"error", valid.message()}});
          done(valid);
          return;
        }
        // The record is written and deleted together with the
        // peer key: read at the same revision, it is the holder's
        // claim, and its mod revision the claim's epoch.
        PeerHolder holder{kv->value(), std::nullopt};
        if (const mvccpb::KeyValue* record = internal::txn::KeyAt(*result, 1); record != nullptr) {
          holder.epoch = record->mod_revision();
        }
        done(std::move(holder));
      });
}

void EtcdTracker::Impl::EdgeAddress(const std::string& edge_id, absl::Time deadline,
                                    AddressDone done) {
  if (absl::Status valid = internal::CheckEdgeId(edge_id); !valid.ok()) {
    done(valid);
    return;
  }
  client_->Txn(
      internal::txn::Get(absl::StrCat(options_.key_prefix, "edges/", edge_id)),
      RealDeadline(deadline),
      [edge_id, done = std::move(done)](absl::StatusOr<etcdserverpb::TxnResponse> result) mutable {
        if (!result.ok()) {
          done(result.status());
          return;
        }
        const mvccpb::KeyValue* kv = internal::txn::FirstKey(*result);
        if (kv == nullptr) {
          done(absl::NotFoundError(absl::StrCat("edge ", edge_id, " is not registered")));
          return;
        }
        done(internal::RegisteredAddress(kv->value()));
      });
}

void EtcdTracker::Impl::RunLeaseThread() {
  const absl::Duration keepalive_every = options_.lease_ttl / 3;
  const absl::Duration retry_every = std::min(keepalive_every, absl::Milliseconds(500));
  bool renewed = true;
  while (true) {
    int64_t lease = 0;
    {
      absl::MutexLock lock(&mu_);
      if (state_ != State::kRunning) return;
      lease = lease_id_;
    }
    if (lease == 0) {
      absl::Status status = EstablishLease();
      {
        absl::MutexLock lock(&mu_);
        first_attempt_done_ = true;
      }
      if (!status.ok()) {
        log_->Warn("etcd lease not granted; retrying", {{"error", status.ToString()}});
        if (!Sleep(wakeup_, retry_every)) return;
      }
      renewed = true;
      continue;
    }
    if (!Sleep(wakeup_, renewed ? keepalive_every : retry_every)) return;
    renewed = KeepAlive(lease);
  }
}

void EtcdTracker::Impl::RunScanThread() {
  // Looks for lost claims only while some may exist (etcd_tracker.h): a
  // look counts every record, and etcd walks its whole index for that.
  std::optional<Registrations> known;  // as last read; none yet
  const absl::Duration window = options_.lease_ttl + 2 * options_.lost_claim_scan_interval;
  // 75 to 125 % of the check interval, differing per edge: edges started
  // together would otherwise count together, and each count holds etcd's
  // key index for a while (~0.5 s at 100,000 claims on loaded cores).
  const absl::Duration check_every =
      options_.lost_claim_check_interval *
      (0.75 + 0.5 * static_cast<double>(absl::Hash<std::string>()(options_.edge_id) % 1000) / 1000);
  absl::Time look_until = absl::Now() + window;  // from the start
  absl::Time last_look = absl::InfinitePast();
  bool look_now = false;  // a registration vanished: its lease's keys are gone
  absl::Time owed_at = absl::InfiniteFuture();  // when the last look wants another
  // A look walks every claim in etcd: the next waits twice as long as the
  // last took, so that an etcd slowed by a dead edge's aftermath is not
  // kept busy by survivors looking again and again (at 100,000 claims a
  // look took seconds, and back-to-back looks of six edges starved the
  // takes they were for).
  absl::Time quiet_until = absl::InfinitePast();
  while (Sleep(scan_wakeup_, options_.lost_claim_scan_interval)) {
    int64_t lease = 0;
    {
      absl::MutexLock lock(&mu_);
      if (state_ != State::kRunning) return;
      lease = lease_id_;
    }
    if (lease == 0) continue;
    const absl::Time now = absl::Now();
    if (std::optional<Registrations> read = ReadRegistrations(); read.has_value()) {
      // A registration gone: its lease ended, and the lease's peer keys
      // with it. Bound to another lease: the replaced lease's keys go
      // within its TTL, so look until then.
      for (const auto& [key, lease_id] : known.value_or(Registrations())) {
        auto it = read->find(key);
        if (it == read->end()) look_now = true;
        if (it != read->end() && it->second != lease_id) look_until = now + window;
      }
      known = std::move(read);
    }
    if (now < quiet_until) continue;
    const bool due = now - last_look >= check_every;
    if (!due && !look_now && now < owed_at && now >= look_until) continue;
    // This edge's takes of the last look are still being published: another
    // look now would read every record again to find the same claims.
    if (!due && Publishing()) continue;
    last_look = now;
    look_now = false;
    owed_at = ScanOnce(lease, known.value_or(Registrations()));
    const absl::Time looked = absl::Now();
    quiet_until = looked + 2 * (looked - now);
  }
}

std::optional<EtcdTracker::Impl::Registrations> EtcdTracker::Impl::ReadRegistrations() {
  absl::StatusOr<etcdserverpb::TxnResponse> read =
      client_->TxnSync(internal::txn::KeysUnder(absl::StrCat(options_.key_prefix, "edges/")),
                       absl::Now() + options_.request_timeout);
  if (!read.ok() || read->responses_size() != 1) return std::nullopt;
  Registrations registrations;
  for (const mvccpb::KeyValue& kv : read->responses(0).response_range().kvs()) {
    registrations[kv.key()] = kv.lease();
  }
  return registrations;
}

bool EtcdTracker::Impl::Publishing() {
  absl::MutexLock lock(&mu_);
  return !publishing_.empty();
}

bool EtcdTracker::Impl::Sleep(const std::shared_ptr<Wakeup>& wakeup, absl::Duration duration) {
  std::shared_ptr<Wakeup> shared = wakeup;
  Clock::TimerId timer = clock_->RunAt(clock_->Now() + duration, [shared] { shared->Wake(); });
  bool stop = false;
  {
    absl::MutexLock lock(&wakeup->mu);
    wakeup->mu.Await(absl::Condition(
        +[](Wakeup* w) ABSL_NO_THREAD_SAFETY_ANALYSIS { return w->woken || w->stop; },
        wakeup.get()));
    wakeup->woken = false;
    stop = wakeup->stop;
  }
  clock_->Cancel(timer);
  return !stop;
}

absl::Status EtcdTracker::Impl::EstablishLease() {
  const absl::Time deadline = absl::Now() + options_.request_timeout;
  absl::StatusOr<etcdserverpb::LeaseGrantResponse> grant =
      client_->LeaseGrantSync(absl::ToInt64Seconds(options_.lease_ttl), deadline);
  if (!grant.ok()) return grant.status();
  const int64_t lease = grant->id();
  const std::string edge_key = absl::StrCat(options_.key_prefix, "edges/", options_.edge_id);
  absl::StatusOr<etcdserverpb::TxnResponse> registered =
      client_->TxnSync(internal::txn::Put(edge_key, registration_, lease), deadline);
  if (!registered.ok()) {
    RevokeQuietly(lease);
    return registered.status();
  }

  std::vector<std::pair<std::string, int64_t>> snapshot;
  {
    absl::MutexLock lock(&mu_);
    snapshot.assign(held_.begin(), held_.end());
  }
  std::vector<std::string> lost;
  if (absl::Status reclaimed = ReclaimAll(snapshot, lease, lost); !reclaimed.ok()) {
    RevokeQuietly(lease);
    return reclaimed;
  }
  absl::flat_hash_set<std::string> lost_set(lost.begin(), lost.end());

  const absl::Time now = clock_->Now();
  std::vector<std::string> to_report;
  int64_t abandoned = 0;
  bool stopped = false;
  {
    absl::MutexLock lock(&mu_);
    stopped = state_ != State::kRunning;
    if (!stopped) {
      lease_id_ = lease;
      last_renewed_ = now;
      abandoned = abandoned_lease_;
      abandoned_lease_ = 0;
      for (const auto& [peer_id, epoch] : snapshot) {
        if (!lost_set.contains(peer_id)) continue;
        auto it = held_.find(peer_id);
        if (it != held_.end() && it->second == epoch) {  // not released since
          held_.erase(it);
          to_report.push_back(peer_id);
        }
      }
    }
  }
  if (stopped) {
    RevokeQuietly(lease);
    return absl::CancelledError("etcd tracker shut down");
  }
  if (abandoned != 0 && abandoned != lease) RevokeQuietly(abandoned);

  std::string lease_hex = absl::StrCat(absl::Hex(lease));
  std::string kept_count = absl::StrCat(snapshot.size() - lost.size());
  std::string lost_count = absl::StrCat(to_report.size());
  log_->Info("etcd lease granted", {{"lease", lease_hex},
                                    {"endpoint", client_->current_endpoint()},
                                    {"reclaimed", kept_count},
                                    {"lost", lost_count}});
  for (const std::string& peer_id : to_report) {
    log_->Warn("peer claim lost to another edge", {{"peer_id", peer_id}});
    if (lost_listener_) lost_listener_(peer_id);
  }
  return absl::OkStatus();
}

absl::Status EtcdTracker::Impl::ReclaimAll(const std::vector<std::pair<std::string, int64_t>>& held,
                                           int64_t lease, std::vector<std::string>& lost) {
  // The new lease is kept alive between batches: with many peers the
  // re-claim can take longer than the TTL.
  const absl::Duration keepalive_every = options_.lease_ttl / 3;
  absl::Time kept_alive = absl::Now();
  for (size_t begin = 0; begin < held.size(); begin += kReclaimBatch) {
    std::vector<std::pair<std::string, internal::txn::HeldClaim>> pending;
    for (size_t i = begin; i < std::min(held.size(), begin + kReclaimBatch); ++i) {
      pending.emplace_back(held[i].first,
                           internal::txn::HeldClaim{Keys(held[i].first), held[i].second});
    }
    for (int attempt = 0; !pending.empty(); ++attempt) {
      if (attempt == kMaxClaimAttempts) {
        return absl::UnavailableError("re-claiming held peers kept racing other writers");
      }
      std::vector<internal::txn::HeldClaim> claims;
      for (const auto& [peer_id, claim] : pending) claims.push_back(claim);
      absl::StatusOr<etcdserverpb::TxnResponse> result =
          client_->TxnSync(internal::txn::Reclaim(claims, options_.edge_id, lease),
                           absl::Now() + options_.request_timeout);
      if (!result.ok()) return result.status();
      if (result->succeeded()) break;
      // Which claims are no longer this edge's: record changed or gone, or
      // another edge is publishing their loss. Retry the rest.
      std::vector<std::pair<std::string, internal::txn::HeldClaim>> still;
      for (size_t i = 0; i < pending.size(); ++i) {
        const mvccpb::KeyValue* record = internal::txn::KeyAt(*result, static_cast<int>(2 * i));
        const mvccpb::KeyValue* taken = internal::txn::KeyAt(*result, static_cast<int>(2 * i + 1));
        if (record != nullptr && record->mod_revision() == pending[i].second.epoch &&
            taken == nullptr) {
          still.push_back(std::move(pending[i]));
        } else {
          lost.push_back(pending[i].first);
        }
      }
      pending = std::move(still);
    }
    if (absl::Now() - kept_alive >= keepalive_every) {
      absl::StatusOr<int64_t> ttl =
          client_->LeaseKeepAliveSync(lease, absl::Now() + options_.request_timeout);
      if (!ttl.ok()) return ttl.status();
      if (*ttl <= 0) {
        return absl::UnavailableError("the new lease expired while re-claiming");
      }
      kept_alive = absl::Now();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<mvccpb::KeyValue>> EtcdTracker::Impl::ReadUnder(
    const std::string& prefix, bool keys_only, int64_t* revision) {
  std::vector<mvccpb::KeyValue> keys;
  std::string from;
  while (true) {
    absl::StatusOr<etcdserverpb::TxnResponse> page = client_->TxnSync(
        internal::txn::PageUnder(prefix, from, options_.lost_claim_scan_page, *revision, keys_only),
        absl::Now() + options_.request_timeout);
    if (!page.ok()) return page.status();
    if (page->responses_size() != 1 || !page->responses(0).has_response_range()) {
      return absl::InternalError("etcd answered a range without its result");
    }
    if (*revision == 0) *revision = page->header().revision();
    etcdserverpb::RangeResponse* range = page->mutable_responses(0)->mutable_response_range();
    for (mvccpb::KeyValue& kv : *range->mutable_kvs()) keys.push_back(std::move(kv));
    if (!range->more() || range->kvs_size() == 0) return keys;
    from = keys.back().key();
    from.push_back('\0');  // the next key after it
  }
}

namespace {

// FNV-1a of `a`, a NUL and `b`: the same in every edge's process (absl::Hash
// is seeded per process).
uint64_t StableHash(absl::string_view a, absl::string_view b) {
  uint64_t hash = 14695981039346656037ull;
  auto mix = [&hash](unsigned char c) { hash = (hash ^ c) * 1099511628211ull; };
  for (char c : a) mix(static_cast<unsigned char>(c));
  mix(0);
  for (char c : b) mix(static_cast<unsigned char>(c));
  return hash;
}

}  // namespace

bool EtcdTracker::Impl::MineToTake(const std::string& peer_id, const Registrations& live) const {
  const std::string own_key = absl::StrCat(options_.key_prefix, "edges/", options_.edge_id);
  const uint64_t own = StableHash(own_key, peer_id);
  for (const auto& [key, lease] : live) {
    if (key != own_key && StableHash(key, peer_id) > own) return false;
  }
  return true;
}

absl::Time EtcdTracker::Impl::ScanOnce(int64_t lease, const Registrations& live) {
  const absl::Time deadline = absl::Now() + options_.request_timeout;
  // Cheap first: every peer key has its record, so records outnumber peer
  // keys exactly when some claim is lost.
  absl::StatusOr<etcdserverpb::TxnResponse> counts =
      client_->TxnSync(internal::txn::CountTwo(records_prefix_, peers_prefix_), deadline);
  if (!counts.ok() || counts->responses_size() != 2) return absl::InfinitePast();
  if (counts->responses(0).response_range().count() ==
      counts->responses(1).response_range().count()) {
    return absl::InfiniteFuture();
  }
  // Records, peer keys and lost keys, all at the revision of the first
  // page read.
  int64_t revision = 0;
  absl::StatusOr<std::vector<mvccpb::KeyValue>> records =
      ReadUnder(records_prefix_, /*keys_only=*/false, &revision);
  if (!records.ok()) return absl::InfinitePast();
  absl::StatusOr<std::vector<mvccpb::KeyValue>> peers =
      ReadUnder(peers_prefix_, /*keys_only=*/true, &revision);
  if (!peers.ok()) return absl::InfinitePast();
  absl::StatusOr<std::vector<mvccpb::KeyValue>> losts =
      ReadUnder(lost_prefix_, /*keys_only=*/false, &revision);
  if (!losts.ok()) return absl::InfinitePast();
  absl::flat_hash_set<std::string> held;  // a peer key exists
  for (const mvccpb::KeyValue& kv : *peers) {
    held.insert(std::string(absl::StripPrefix(kv.key(), peers_prefix_)));
  }
  absl::flat_hash_map<std::string, const mvccpb::KeyValue*> taken;  // lost keys
  for (const mvccpb::KeyValue& kv : *losts) {
    taken[std::string(absl::StripPrefix(kv.key(), lost_prefix_))] = &kv;
  }
  std::vector<std::pair<LostClaim, internal::txn::LostTake>> found;
  std::vector<std::pair<LostClaim, int64_t>> orphans;  // and their lost key's revision
  const absl::Time now = absl::Now();
  absl::flat_hash_set<std::string> still_others;   // other edges' share, still lost
  absl::Time others_due = absl::InfiniteFuture();  // the first of them due to this edge
  for (const mvccpb::KeyValue& kv : *records) {
    std::string peer_id(absl::StripPrefix(kv.key(), records_prefix_));
    if (held.contains(peer_id)) continue;
    if (auto it = taken.find(peer_id); it != taken.end()) {
      // Taken by this edge but not being published: a take whose answer
      // was lost (etcd timed out after applying it). Only this edge can
      // publish it: its lost key keeps the others off.
      if (it->second->value() == options_.edge_id && TryMark(peer_id, kv.mod_revision())) {
        orphans.emplace_back(ParseRecord(peer_id, kv), it->second->mod_revision());
      }
      continue;
    }
    // Another edge's share waits a lease TTL: long enough for that edge to
    // take it, or, were it dead too, for its registration to go, after
    // which the share is computed without it.
    if (!MineToTake(peer_id, live)) {
      auto [first, inserted] = others_seen_.try_emplace(peer_id, now);
      still_others.insert(peer_id);
      if (now - first->second < options_.lease_ttl) {
        others_due = std::min(others_due, first->second + options_.lease_ttl);
        continue;
      }
    }
    internal::txn::LostTake take{Keys(peer_id), kv.mod_revision(), 0};
    found.emplace_back(ParseRecord(peer_id, kv), std::move(take));
  }
  // Forget claims no longer lost (taken, or claimed again).
  absl::erase_if(others_seen_,
                 [&](const auto& entry) { return !still_others.contains(entry.first); });
  for (auto& [lost, lost_mod] : orphans) {
    // The scan may predate this edge finishing that very claim: publish
    // only if etcd still shows it taken and unfinished.
    internal::txn::ClaimKeys keys = Keys(lost.peer_id);
    const int64_t record_mod = lost.epoch;
    absl::StatusOr<etcdserverpb::TxnResponse> still =
        client_->TxnSync(internal::txn::StillTaken(keys, record_mod, lost_mod),
                         absl::Now() + options_.request_timeout);
    if (!still.ok() || !still->succeeded()) {
      Unmark(lost.peer_id, record_mod);
      continue;
    }
    PublishLost(std::move(lost), std::move(keys), record_mod, lost_mod, [](absl::Status) {});
  }
  // Nothing to take now: the lost claims left are being published by other
  // edges (their lost keys exist; should one of those die, its registration
  // goes too, and that starts the next look), or are other edges' share,
  // looked at again until they are taken.
  if (found.empty()) return others_due;
  // Survivors scan the same records: start at a different place each, so
  // that their takes rarely collide.
  const size_t shift = absl::Hash<std::string>()(options_.edge_id) % found.size();
  std::rotate(found.begin(), found.begin() + shift, found.end());
  log_->Info("taking lost claims", {{"count", absl::StrCat(found.size())}});
  for (size_t begin = 0; begin < found.size(); begin += kTakeBatch) {
    std::vector<std::pair<LostClaim, internal::txn::LostTake>> batch(
        std::make_move_iterator(found.begin() + begin),
        std::make_move_iterator(found.begin() + std::min(found.size(), begin + kTakeBatch)));
    TakeLostBatch(std::move(batch), lease);
  }
  return absl::InfinitePast();
}

bool EtcdTracker::Impl::TryMark(const std::string& peer_id, int64_t record_mod) {
  absl::MutexLock lock(&mu_);
  return publishing_.emplace(peer_id, record_mod).second;
}

void EtcdTracker::Impl::Unmark(const std::string& peer_id, int64_t record_mod) {
  absl::MutexLock lock(&mu_);
  auto it = publishing_.find(peer_id);
  if (it != publishing_.end() && it->second == record_mod) publishing_.erase(it);
}

void EtcdTracker::Impl::TakeLostBatch(
    std::vector<std::pair<LostClaim, internal::txn::LostTake>> batch, int64_t lease) {
  auto mine = std::make_shared<std::vector<std::pair<LostClaim, internal::txn::LostTake>>>();
  for (auto& item : batch) {
    if (TryMark(item.first.peer_id, item.second.record_mod)) {
      mine->push_back(std::move(item));
    }
  }
  TakeLostAttempt(std::move(mine), lease, 0);
}

// Asynchronous, so that the batches of one scan are in flight together
// and etcd commits them in few rounds.
void EtcdTracker::Impl::TakeLostAttempt(
    std::shared_ptr<std::vector<std::pair<LostClaim, internal::txn::LostTake>>> batch,
    int64_t lease, int attempt) {
  if (attempt == kMaxClaimAttempts) {
    for (const auto& [lost, take] : *batch) Unmark(lost.peer_id, take.record_mod);
    return;
  }
  if (batch->empty()) return;
  std::vector<internal::txn::LostTake> takes;
  for (const auto& [lost, take] : *batch) takes.push_back(take);
  client_->Txn(
      internal::txn::TakeLost(takes, options_.edge_id, lease),
      absl::Now() + options_.request_timeout,
      [this, batch, lease, attempt](absl::StatusOr<etcdserverpb::TxnResponse> result) {
        if (!result.ok()) {
          // Not taken, or unknown: a later scan takes it, or publishes what
          // this edge took after all.
          for (const auto& [lost, take] : *batch) {
            Unmark(lost.peer_id, take.record_mod);
          }
          return;
        }
        if (result->succeeded()) {
          const int64_t lost_mod = result->header().revision();
          for (auto& [lost, take] : *batch) {
            const int64_t record_mod = take.record_mod;
            PublishLost(std::move(lost), take.keys, record_mod, lost_mod, [](absl::Status) {});
          }
          return;
        }
        // Keep those still lost and free; another edge took or claimed the
        // rest.
        auto still = std::make_shared<std::vector<std::pair<LostClaim, internal::txn::LostTake>>>();
        for (size_t i = 0; i < batch->size(); ++i) {
          const int base = static_cast<int>(3 * i);
          const mvccpb::KeyValue* record = internal::txn::KeyAt(*result, base);
          if (record != nullptr && record->mod_revision() == (*batch)[i].second.record_mod &&
              internal::txn::KeyAt(*result, base + 1) == nullptr &&
              internal::txn::KeyAt(*result, base + 2) == nullptr) {
            still->push_back(std::move((*batch)[i]));
          } else {
            Unmark((*batch)[i].first.peer_id, (*batch)[i].second.record_mod);
          }
        }
        TakeLostAttempt(std::move(still), lease, attempt + 1);
      });
}

bool EtcdTracker::Impl::KeepAlive(int64_t lease) {
  absl::StatusOr<int64_t> ttl = client_->LeaseKeepAliveSync(
      lease, absl::Now() + std::min(options_.request_timeout, options_.lease_ttl / 3));
  const absl::Time now = clock_->Now();
  if (ttl.ok() && *ttl > 0) {
    absl::MutexLock lock(&mu_);
    if (lease_id_ == lease) last_renewed_ = now;
    return true;
  }
  if (ttl.ok()) {
    LeaseLost(lease, "etcd reports the lease expired");
    return false;
  }
  bool expired = false;
  {
    absl::MutexLock lock(&mu_);
    expired = now - last_renewed_ >= options_.lease_ttl;
  }
  if (expired) {
    LeaseLost(lease,
              absl::StrCat("no keepalive answered within the TTL: ", ttl.status().ToString()));
  } else {
    log_->Warn("etcd keepalive failed; retrying", {{"error", ttl.status().ToString()}});
  }
  return false;
}

void EtcdTracker::Impl::LeaseLost(int64_t lease, absl::string_view why) {
  {
    absl::MutexLock lock(&mu_);
    if (lease_id_ != lease || lease == 0) return;
    lease_id_ = 0;
    abandoned_lease_ = lease;
  }
  std::string lease_hex = absl::StrCat(absl::Hex(lease));
  log_->Warn("etcd lease lost; this edge's claims are not guaranteed",
             {{"lease", lease_hex}, {"reason", why}});
  wakeup_->Wake();
}

void EtcdTracker::Impl::RevokeQuietly(int64_t lease) {
  absl::Status status = client_->LeaseRevokeSync(
      lease, absl::Now() + std::min(options_.request_timeout, absl::Seconds(1)));
  if (!status.ok() && !internal::txn::IsLeaseNotFound(status)) {
    std::string lease_hex = absl::StrCat(absl::Hex(lease));
    log_->Debug("etcd lease not revoked; it will expire",
                {{"lease", lease_hex}, {"error", status.ToString()}});
  }
}

void EtcdTracker::Impl::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kStopped) return;
    // Releases in flight finish first: a record left behind would be taken
    // for a lost claim and get a second `disconnected`.
    auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return releases_in_flight_ == 0; };
    mu_.AwaitWithTimeout(absl::Condition(&settled),
                         std::max(absl::ZeroDuration(), deadline - clock_->Now()));
    state_ = State::kStopped;
  }
  absl::flat_hash_set<Clock::TimerId> retry_timers;
  {
    absl::MutexLock lock(&mu_);
    retry_timers.swap(retry_timers_);
  }
  for (Clock::TimerId timer : retry_timers) clock_->Cancel(timer);
  for (const auto& wakeup : {wakeup_, scan_wakeup_}) {
    absl::MutexLock lock(&wakeup->mu);
    wakeup->stop = true;
  }
  if (lease_thread_.joinable()) lease_thread_.join();
  if (scan_thread_.joinable()) scan_thread_.join();
  int64_t lease = 0;
  int64_t abandoned = 0;
  size_t unreleased = 0;
  {
    absl::MutexLock lock(&mu_);
    lease = lease_id_;
    abandoned = abandoned_lease_;
    lease_id_ = 0;
    abandoned_lease_ = 0;
    unreleased = held_.size();
    held_.clear();
  }
  if (lease != 0) {
    // Revoking deletes every key bound to the lease: the peer keys and the
    // registration, in one step. Records of unreleased claims stay: they
    // are lost claims now.
    absl::Status status = client_->LeaseRevokeSync(lease, RealDeadline(deadline));
    std::string lease_hex = absl::StrCat(absl::Hex(lease));
    if (status.ok()) {
      log_->Info("etcd lease revoked",
                 {{"lease", lease_hex}, {"unreleased", absl::StrCat(unreleased)}});
    } else {
      log_->Warn("etcd lease not revoked; claims vanish at its expiry",
                 {{"lease", lease_hex}, {"error", status.ToString()}});
    }
  }
  if (abandoned != 0) RevokeQuietly(abandoned);
  client_->Shutdown();
  // The client failed every batch in flight, and with them those queued
  // behind; whatever is left waited for a batch that can no longer start.
  std::deque<BatchedOpPtr> queued;
  std::vector<Clock::TimerId> queue_timers;
  {
    absl::MutexLock lock(&mu_);
    queued.swap(batch_queue_);
    for (BatchedOpPtr& op : queued) {
      op->queued = false;
      if (op->queue_timer != 0) queue_timers.push_back(op->queue_timer);
      op->queue_timer = 0;
    }
  }
  for (Clock::TimerId timer : queue_timers) clock_->Cancel(timer);
  for (BatchedOpPtr& op : queued) {
    FailBatched(std::move(op), absl::UnavailableError("etcd tracker is shut down"));
  }
}

// EtcdTracker forwards to Impl, which keeps gRPC out of the public header.

absl::StatusOr<std::unique_ptr<EtcdTracker>> EtcdTracker::Create(EtcdTrackerOptions options) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  Logger* log = options.logger != nullptr ? options.logger : &Logger::Null();
  absl::StatusOr<std::unique_ptr<EtcdClient>> client =
      EtcdClient::Create(options.endpoints, ClientSecurity(options), log);
  if (!client.ok()) return client.status();
  std::unique_ptr<Clock> owned_clock;
  if (options.clock == nullptr) owned_clock = NewRealClock();
  return std::unique_ptr<EtcdTracker>(new EtcdTracker(
      std::make_unique<Impl>(std::move(options), std::move(owned_clock), *std::move(client))));
}

EtcdTracker::EtcdTracker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdTracker::~EtcdTracker() = default;

absl::Status EtcdTracker::Start() { return impl_->Start(); }
void EtcdTracker::Claim(const std::string& peer_id, absl::Time deadline, ClaimDone done) {
  impl_->Claim(peer_id, deadline, std::move(done));
}
void EtcdTracker::Release(const std::string& peer_id, const PeerClaim& claim, ReleaseDone done) {
  impl_->Release(peer_id, claim, std::move(done));
}
void EtcdTracker::Lookup(const std::string& peer_id, absl::Time deadline, LookupDone done) {
  impl_->LookupHolder(peer_id, deadline, EdgeIdOnly(std::move(done)));
}
void EtcdTracker::LookupHolder(const std::string& peer_id, absl::Time deadline, HolderDone done) {
  impl_->LookupHolder(peer_id, deadline, std::move(done));
}
void EtcdTracker::EdgeAddress(const std::string& edge_id, absl::Time deadline, AddressDone done) {
  impl_->EdgeAddress(edge_id, deadline, std::move(done));
}
void EtcdTracker::SetLostListener(LostListener listener) {
  impl_->SetLostListener(std::move(listener));
}
void EtcdTracker::SetLostClaimListener(LostClaimListener listener) {
  impl_->SetLostClaimListener(std::move(listener));
}
void EtcdTracker::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }
bool EtcdTracker::HasLease() const { return impl_->HasLease(); }

}  // namespace edge::etcd
