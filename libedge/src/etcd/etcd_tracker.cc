#include "edge/etcd_tracker.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "core/json_writer.h"
#include "etcd/etcd_client.h"
#include "etcd/etcd_holder.h"
#include "etcd/etcd_txn.h"

namespace edge {
namespace {

// Transactions one claim may spend racing other writers of its key (the key
// vanished or changed between two transactions) before giving up.
constexpr int kMaxClaimAttempts = 5;

absl::Status ValidateOptions(const EtcdTrackerOptions& options) {
  if (options.edge_id.empty()) {
    return absl::InvalidArgumentError("etcd tracker: edge_id is empty");
  }
  if (options.advertised_address.empty()) {
    return absl::InvalidArgumentError(
        "etcd tracker: advertised_address is empty");
  }
  if (options.endpoints.empty()) {
    return absl::InvalidArgumentError("etcd tracker: no etcd endpoints");
  }
  if (options.lease_ttl < absl::Seconds(1) ||
      options.lease_ttl !=
          absl::Seconds(absl::ToInt64Seconds(options.lease_ttl))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd tracker: lease_ttl must be whole seconds, at least 1; got ",
        absl::FormatDuration(options.lease_ttl)));
  }
  if (options.key_prefix.empty() || options.key_prefix.front() != '/' ||
      options.key_prefix.back() != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "etcd tracker: key_prefix must start and end with '/'; got \"",
        options.key_prefix, "\""));
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "etcd tracker: request_timeout must be positive");
  }
  return absl::OkStatus();
}

EtcdClientSecurity ClientSecurity(const EtcdTrackerOptions& options) {
  return EtcdClientSecurity{options.tls,           options.tls_ca_file,
                            options.tls_cert_file, options.tls_key_file,
                            options.username,      options.password};
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
  void Release(const std::string& peer_id, const PeerClaim& claim,
               ReleaseDone done);
  void Lookup(const std::string& peer_id, absl::Time deadline, LookupDone done);
  void EdgeAddress(const std::string& edge_id, absl::Time deadline,
                   AddressDone done);
  void SetLostListener(LostListener listener);
  void Shutdown(absl::Time deadline);
  bool HasLease() const;

 private:
  // A claim this edge holds: the epoch its caller was given, and the key's
  // create revision now (they differ after a lease loss made the tracker
  // create the key again).
  struct Held {
    int64_t issued_epoch;
    int64_t create_revision;
  };
  struct ClaimOp {
    std::string peer_id;
    std::string key;
    absl::Time deadline;  // real time
    ClaimDone done;
    int64_t lease;
    int attempts = 0;
  };
  using ClaimOpPtr = std::shared_ptr<ClaimOp>;

  std::string PeerKey(const std::string& peer_id) const {
    return absl::StrCat(options_.key_prefix, "peers/", peer_id);
  }
  // gRPC deadlines are real time; callers' deadlines are on clock_.
  absl::Time RealDeadline(absl::Time deadline) {
    return absl::Now() + (deadline - clock_->Now());
  }

  void ClaimStep(ClaimOpPtr op);
  void OnCreateOrGet(ClaimOpPtr op,
                     absl::StatusOr<etcdserverpb::TxnResponse> result);
  void FinishClaim(ClaimOpPtr op, absl::StatusOr<int64_t> epoch);

  void RunLeaseThread();
  bool Sleep(absl::Duration duration);
  absl::Status EstablishLease();
  // The key's create revision after re-claiming it with `lease`; nullopt
  // when another edge holds it.
  absl::StatusOr<std::optional<int64_t>> Reclaim(const std::string& peer_id,
                                                 int64_t lease);
  bool KeepAlive(int64_t lease);
  void LeaseLost(int64_t lease, absl::string_view why);
  void RevokeQuietly(int64_t lease);

  const EtcdTrackerOptions options_;
  Logger* const log_;
  const std::unique_ptr<Clock> owned_clock_;
  Clock* const clock_;
  const std::unique_ptr<EtcdClient> client_;
  const std::string registration_;
  const std::shared_ptr<Wakeup> wakeup_ = std::make_shared<Wakeup>();
  // Set before Start(); afterwards only the lease thread reads it.
  LostListener lost_listener_;
  std::thread lease_thread_;

  enum class State { kNew, kRunning, kStopped };
  mutable absl::Mutex mu_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kNew;
  bool first_attempt_done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t lease_id_ ABSL_GUARDED_BY(mu_) = 0;  // 0: none held
  // A lease given up locally that etcd may still keep (e.g. after an etcd
  // restart); revoked once a new lease holds the claims.
  int64_t abandoned_lease_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_renewed_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Held> held_ ABSL_GUARDED_BY(mu_);
};

EtcdTracker::Impl::Impl(EtcdTrackerOptions options,
                        std::unique_ptr<Clock> owned_clock,
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
      }()) {}

EtcdTracker::Impl::~Impl() {
  Shutdown(clock_->Now() + options_.request_timeout);
}

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

bool EtcdTracker::Impl::HasLease() const {
  absl::MutexLock lock(&mu_);
  return lease_id_ != 0;
}

void EtcdTracker::Impl::Claim(const std::string& peer_id, absl::Time deadline,
                              ClaimDone done) {
  if (peer_id.empty()) {
    done(absl::InvalidArgumentError("etcd tracker: empty peer_id"));
    return;
  }
  int64_t lease = 0;
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kRunning) {
      done(absl::UnavailableError(state_ == State::kNew
                                      ? "etcd tracker is not started"
                                      : "etcd tracker is shut down"));
      return;
    }
    lease = lease_id_;
  }
  if (lease == 0) {
    wakeup_->Wake();  // try for a lease now rather than at the next retry
    done(absl::UnavailableError(
        "etcd tracker holds no lease: etcd is unreachable or the lease is "
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
  op->key = PeerKey(peer_id);
  op->deadline = RealDeadline(deadline);
  op->done = std::move(done);
  op->lease = lease;
  ClaimStep(std::move(op));
}

void EtcdTracker::Impl::ClaimStep(ClaimOpPtr op) {
  if (++op->attempts > kMaxClaimAttempts) {
    FinishClaim(std::move(op),
                absl::UnavailableError(absl::StrCat(
                    "claim of ", op->peer_id,
                    " kept racing other writers of its key; try again")));
    return;
  }
  client_->Txn(etcd_txn::CreateOrGet(op->key, options_.edge_id, op->lease),
               op->deadline,
               [this, op](absl::StatusOr<etcdserverpb::TxnResponse> result) {
                 OnCreateOrGet(op, std::move(result));
               });
}

void EtcdTracker::Impl::OnCreateOrGet(
    ClaimOpPtr op, absl::StatusOr<etcdserverpb::TxnResponse> result) {
  if (!result.ok()) {
    if (etcd_txn::IsLeaseNotFound(result.status())) {
      LeaseLost(op->lease, "etcd no longer knows the lease");
      FinishClaim(std::move(op),
                  absl::UnavailableError(
                      "etcd tracker lost its lease; it is being renewed"));
      return;
    }
    FinishClaim(std::move(op), result.status());
    return;
  }
  if (result->succeeded()) {
    FinishClaim(std::move(op), result->header().revision());
    return;
  }
  const mvccpb::KeyValue* kv = etcd_txn::FirstKey(*result);
  if (kv == nullptr) {  // released between compare and read: try again
    ClaimStep(std::move(op));
    return;
  }
  if (kv->value() != options_.edge_id) {
    FinishClaim(std::move(op),
                absl::AlreadyExistsError(absl::StrCat(
                    "peer ", op->peer_id, " is held by edge ", kv->value())));
    return;
  }
  // A claim of this edge's own (from before a restart, or one the caller is
  // replacing): delete it and create a fresh one, so that every claim has
  // its own epoch and a late release of the old one cannot remove the new.
  client_->Txn(etcd_txn::DeleteIfUnchanged(op->key, kv->mod_revision()),
               op->deadline,
               [this, op](absl::StatusOr<etcdserverpb::TxnResponse> deleted) {
                 if (!deleted.ok()) {
                   FinishClaim(op, deleted.status());
                 } else {
                   ClaimStep(op);
                 }
               });
}

void EtcdTracker::Impl::FinishClaim(ClaimOpPtr op,
                                    absl::StatusOr<int64_t> epoch) {
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
      epoch = absl::UnavailableError(absl::StrCat(
          "claim of ", op->peer_id, " raced a lease renewal; try again"));
    } else {
      held_[op->peer_id] = Held{*epoch, *epoch};
    }
  }
  if (!epoch.ok()) {
    done(epoch.status());
    return;
  }
  done(PeerClaim{*epoch});
}

void EtcdTracker::Impl::Release(const std::string& peer_id,
                                const PeerClaim& claim, ReleaseDone done) {
  if (!claim.epoch.has_value()) {
    done(absl::InvalidArgumentError(
        absl::StrCat("etcd tracker: release of ", peer_id, " names no epoch")));
    return;
  }
  int64_t create_revision = *claim.epoch;
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kStopped) {  // Shutdown released every claim
      done(absl::OkStatus());
      return;
    }
    auto it = held_.find(peer_id);
    if (it != held_.end()) {
      if (it->second.issued_epoch != *claim.epoch) {
        done(absl::OkStatus());  // stale: a newer claim replaced it
        return;
      }
      create_revision = it->second.create_revision;
      held_.erase(it);
    }
  }
  client_->Txn(etcd_txn::DeleteClaim(PeerKey(peer_id), options_.edge_id,
                                     create_revision),
               absl::Now() + options_.request_timeout,
               [done = std::move(done)](
                   absl::StatusOr<etcdserverpb::TxnResponse> result) mutable {
                 done(result.status());
               });
}

void EtcdTracker::Impl::Lookup(const std::string& peer_id, absl::Time deadline,
                               LookupDone done) {
  if (peer_id.empty()) {
    done(absl::InvalidArgumentError("etcd tracker: empty peer_id"));
    return;
  }
  client_->Txn(etcd_txn::Get(PeerKey(peer_id)), RealDeadline(deadline),
               [peer_id, log = log_, done = std::move(done)](
                   absl::StatusOr<etcdserverpb::TxnResponse> result) mutable {
                 if (!result.ok()) {
                   done(result.status());
                   return;
                 }
                 const mvccpb::KeyValue* kv = etcd_txn::FirstKey(*result);
                 if (kv == nullptr) {
                   done(absl::NotFoundError(absl::StrCat(
                       "peer ", peer_id, " is not held by any edge")));
                   return;
                 }
                 // The holder's id goes into a topic name (forwarding):
                 // whatever etcd holds must first pass the EDGE_ID rules.
                 if (absl::Status valid = etcd_holder::CheckEdgeId(kv->value());
                     !valid.ok()) {
                   log->Error(
                       "etcd holds an invalid edge id for a peer; not used",
                       {{"peer_id", peer_id}, {"error", valid.message()}});
                   done(valid);
                   return;
                 }
                 done(kv->value());
               });
}

void EtcdTracker::Impl::EdgeAddress(const std::string& edge_id,
                                    absl::Time deadline, AddressDone done) {
  if (absl::Status valid = etcd_holder::CheckEdgeId(edge_id); !valid.ok()) {
    done(valid);
    return;
  }
  client_->Txn(
      etcd_txn::Get(absl::StrCat(options_.key_prefix, "edges/", edge_id)),
      RealDeadline(deadline),
      [edge_id, done = std::move(done)](
          absl::StatusOr<etcdserverpb::TxnResponse> result) mutable {
        if (!result.ok()) {
          done(result.status());
          return;
        }
        const mvccpb::KeyValue* kv = etcd_txn::FirstKey(*result);
        if (kv == nullptr) {
          done(absl::NotFoundError(
              absl::StrCat("edge ", edge_id, " is not registered")));
          return;
        }
        done(etcd_holder::RegisteredAddress(kv->value()));
      });
}

void EtcdTracker::Impl::RunLeaseThread() {
  const absl::Duration keepalive_every = options_.lease_ttl / 3;
  const absl::Duration retry_every =
      std::min(keepalive_every, absl::Milliseconds(500));
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
        log_->Warn("etcd lease not granted; retrying",
                   {{"error", status.ToString()}});
        if (!Sleep(retry_every)) return;
      }
      renewed = true;
      continue;
    }
    if (!Sleep(renewed ? keepalive_every : retry_every)) return;
    renewed = KeepAlive(lease);
  }
}

bool EtcdTracker::Impl::Sleep(absl::Duration duration) {
  std::shared_ptr<Wakeup> wakeup = wakeup_;
  Clock::TimerId timer =
      clock_->RunAt(clock_->Now() + duration, [wakeup] { wakeup->Wake(); });
  bool stop = false;
  {
    absl::MutexLock lock(&wakeup->mu);
    wakeup->mu.Await(absl::Condition(
        +[](Wakeup* w)
             ABSL_NO_THREAD_SAFETY_ANALYSIS { return w->woken || w->stop; },
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
      client_->LeaseGrantSync(absl::ToInt64Seconds(options_.lease_ttl),
                              deadline);
  if (!grant.ok()) return grant.status();
  const int64_t lease = grant->id();
  const std::string edge_key =
      absl::StrCat(options_.key_prefix, "edges/", options_.edge_id);
  absl::StatusOr<etcdserverpb::TxnResponse> registered =
      client_->TxnSync(etcd_txn::Put(edge_key, registration_, lease), deadline);
  if (!registered.ok()) {
    RevokeQuietly(lease);
    return registered.status();
  }

  std::vector<std::pair<std::string, Held>> snapshot;
  {
    absl::MutexLock lock(&mu_);
    snapshot.assign(held_.begin(), held_.end());
  }
  std::vector<std::pair<std::string, int64_t>> kept;
  std::vector<std::string> lost;
  for (const auto& [peer_id, held] : snapshot) {
    absl::StatusOr<std::optional<int64_t>> reclaimed = Reclaim(peer_id, lease);
    if (!reclaimed.ok()) {
      RevokeQuietly(lease);
      return reclaimed.status();
    }
    if (reclaimed->has_value()) {
      kept.emplace_back(peer_id, **reclaimed);
    } else {
      lost.push_back(peer_id);
    }
  }

  const absl::Time now = clock_->Now();
  std::vector<std::pair<std::string, int64_t>> orphans;
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
      size_t i = 0;
      for (const auto& [peer_id, held] : snapshot) {
        auto it = held_.find(peer_id);
        bool same =
            it != held_.end() && it->second.issued_epoch == held.issued_epoch;
        bool was_kept = i < kept.size() && kept[i].first == peer_id;
        if (was_kept) {
          if (same) {
            it->second.create_revision = kept[i].second;
          } else {  // released while being re-claimed
            orphans.push_back(kept[i]);
          }
          ++i;
        } else if (same) {
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
  for (const auto& [peer_id, revision] : orphans) {
    absl::Status status =
        client_
            ->TxnSync(etcd_txn::DeleteClaim(PeerKey(peer_id), options_.edge_id,
                                            revision),
                      absl::Now() + options_.request_timeout)
            .status();
    if (!status.ok()) {
      log_->Warn("released peer's claim left until lease expiry",
                 {{"peer_id", peer_id}, {"error", status.ToString()}});
    }
  }
  if (abandoned != 0 && abandoned != lease) RevokeQuietly(abandoned);

  std::string lease_hex = absl::StrCat(absl::Hex(lease));
  std::string kept_count = absl::StrCat(kept.size());
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

absl::StatusOr<std::optional<int64_t>> EtcdTracker::Impl::Reclaim(
    const std::string& peer_id, int64_t lease) {
  const std::string key = PeerKey(peer_id);
  const absl::Time deadline = absl::Now() + options_.request_timeout;
  for (int attempt = 0; attempt < kMaxClaimAttempts; ++attempt) {
    absl::StatusOr<etcdserverpb::TxnResponse> created = client_->TxnSync(
        etcd_txn::CreateOrGet(key, options_.edge_id, lease), deadline);
    if (!created.ok()) return created.status();
    if (created->succeeded()) return created->header().revision();
    const mvccpb::KeyValue* kv = etcd_txn::FirstKey(*created);
    if (kv == nullptr) continue;
    if (kv->value() != options_.edge_id) return std::nullopt;
    // Still ours (etcd kept it, e.g. it restarted within the TTL): bind it
    // to the new lease, keeping its create revision, hence its epoch.
    absl::StatusOr<etcdserverpb::TxnResponse> rebound = client_->TxnSync(
        etcd_txn::Rebind(key, options_.edge_id, lease, kv->mod_revision()),
        deadline);
    if (!rebound.ok()) return rebound.status();
    if (rebound->succeeded()) return kv->create_revision();
  }
  return absl::UnavailableError(
      absl::StrCat("re-claim of ", peer_id, " kept racing other writers"));
}

bool EtcdTracker::Impl::KeepAlive(int64_t lease) {
  absl::StatusOr<int64_t> ttl = client_->LeaseKeepAliveSync(
      lease,
      absl::Now() + std::min(options_.request_timeout, options_.lease_ttl / 3));
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
    LeaseLost(lease, absl::StrCat("no keepalive answered within the TTL: ",
                                  ttl.status().ToString()));
  } else {
    log_->Warn("etcd keepalive failed; retrying",
               {{"error", ttl.status().ToString()}});
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
      lease,
      absl::Now() + std::min(options_.request_timeout, absl::Seconds(1)));
  if (!status.ok() && !etcd_txn::IsLeaseNotFound(status)) {
    std::string lease_hex = absl::StrCat(absl::Hex(lease));
    log_->Debug("etcd lease not revoked; it will expire",
                {{"lease", lease_hex}, {"error", status.ToString()}});
  }
}

void EtcdTracker::Impl::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kStopped) return;
    state_ = State::kStopped;
  }
  {
    absl::MutexLock lock(&wakeup_->mu);
    wakeup_->stop = true;
  }
  if (lease_thread_.joinable()) lease_thread_.join();
  int64_t lease = 0;
  int64_t abandoned = 0;
  {
    absl::MutexLock lock(&mu_);
    lease = lease_id_;
    abandoned = abandoned_lease_;
    lease_id_ = 0;
    abandoned_lease_ = 0;
    held_.clear();
  }
  if (lease != 0) {
    // Revoking deletes every key bound to the lease: the claims and the
    // registration, in one step.
    absl::Status status =
        client_->LeaseRevokeSync(lease, RealDeadline(deadline));
    std::string lease_hex = absl::StrCat(absl::Hex(lease));
    if (status.ok()) {
      log_->Info("etcd lease revoked; claims released", {{"lease", lease_hex}});
    } else {
      log_->Warn("etcd lease not revoked; claims vanish at its expiry",
                 {{"lease", lease_hex}, {"error", status.ToString()}});
    }
  }
  if (abandoned != 0) RevokeQuietly(abandoned);
  client_->Shutdown();
}

// EtcdTracker forwards to Impl, which keeps gRPC out of the public header.

absl::StatusOr<std::unique_ptr<EtcdTracker>> EtcdTracker::Create(
    EtcdTrackerOptions options) {
  absl::Status valid = ValidateOptions(options);
  if (!valid.ok()) return valid;
  Logger* log = options.logger != nullptr ? options.logger : &Logger::Null();
  absl::StatusOr<std::unique_ptr<EtcdClient>> client =
      EtcdClient::Create(options.endpoints, ClientSecurity(options), log);
  if (!client.ok()) return client.status();
  std::unique_ptr<Clock> owned_clock;
  if (options.clock == nullptr) owned_clock = NewRealClock();
  return std::unique_ptr<EtcdTracker>(new EtcdTracker(std::make_unique<Impl>(
      std::move(options), std::move(owned_clock), *std::move(client))));
}

EtcdTracker::EtcdTracker(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EtcdTracker::~EtcdTracker() = default;

absl::Status EtcdTracker::Start() { return impl_->Start(); }
void EtcdTracker::Claim(const std::string& peer_id, absl::Time deadline,
                        ClaimDone done) {
  impl_->Claim(peer_id, deadline, std::move(done));
}
void EtcdTracker::Release(const std::string& peer_id, const PeerClaim& claim,
                          ReleaseDone done) {
  impl_->Release(peer_id, claim, std::move(done));
}
void EtcdTracker::Lookup(const std::string& peer_id, absl::Time deadline,
                         LookupDone done) {
  impl_->Lookup(peer_id, deadline, std::move(done));
}
void EtcdTracker::EdgeAddress(const std::string& edge_id, absl::Time deadline,
                              AddressDone done) {
  impl_->EdgeAddress(edge_id, deadline, std::move(done));
}
void EtcdTracker::SetLostListener(LostListener listener) {
  impl_->SetLostListener(std::move(listener));
}
void EtcdTracker::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }
bool EtcdTracker::HasLease() const { return impl_->HasLease(); }

}  // namespace edge
