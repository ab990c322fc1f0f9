#include "edge/etcd/etcd_tracker.h"

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "edge/json_writer.h"
#include "etcd_client.h"
#include "etcd_holder.h"
#include "etcd_tracker_impl.h"
#include "etcd_txn.h"

namespace edge::etcd {

using internal::EtcdClient;
using internal::EtcdClientSecurity;
using internal::kMaxClaimAttempts;
using internal::Wakeup;

namespace {

// Claims per re-claim transaction: each peer costs 2 compares and reads,
// within etcd's default --max-txn-ops of 128.
constexpr size_t kReclaimBatch = 60;

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

}  // namespace

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
  // Keepalives go out keepalive_every after the last answered one was sent,
  // however long its answer took (a slow answer must not push the next one
  // back), and retry_every after a failed one.
  absl::Time next_keepalive;
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
        next_keepalive = last_renewed_ + keepalive_every;
      }
      if (!status.ok()) {
        log_->Warn("etcd lease not granted; retrying", {{"error", status.ToString()}});
        if (!Sleep(wakeup_, retry_every)) return;
      }
      continue;
    }
    if (const absl::Duration wait = next_keepalive - clock_->Now(); wait > absl::ZeroDuration()) {
      if (!Sleep(wakeup_, wait)) return;
      continue;  // woken early when the lease was lost: no keepalive for it
    }
    if (KeepAlive(lease)) {
      absl::MutexLock lock(&mu_);
      next_keepalive = last_renewed_ + keepalive_every;
    } else {
      next_keepalive = clock_->Now() + retry_every;
    }
  }
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
  absl::Time renewed = clock_->Now();
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
  if (absl::Status reclaimed = ReclaimAll(snapshot, lease, lost, renewed); !reclaimed.ok()) {
    RevokeQuietly(lease);
    return reclaimed;
  }
  absl::flat_hash_set<std::string> lost_set(lost.begin(), lost.end());

  std::vector<std::string> to_report;
  int64_t abandoned = 0;
  bool stopped = false;
  {
    absl::MutexLock lock(&mu_);
    stopped = state_ != State::kRunning;
    if (!stopped) {
      lease_id_ = lease;
      last_renewed_ = renewed;
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
                                           int64_t lease, std::vector<std::string>& lost,
                                           absl::Time& renewed) {
  // The new lease is kept alive between batches: with many peers the
  // re-claim can take longer than the TTL.
  const absl::Duration keepalive_every = options_.lease_ttl / 3;
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
    if (const absl::Time sent = clock_->Now(); sent - renewed >= keepalive_every) {
      absl::StatusOr<int64_t> ttl =
          client_->LeaseKeepAliveSync(lease, absl::Now() + options_.request_timeout);
      if (!ttl.ok()) return ttl.status();
      if (*ttl <= 0) {
        return absl::UnavailableError("the new lease expired while re-claiming");
      }
      renewed = sent;
    }
  }
  return absl::OkStatus();
}

bool EtcdTracker::Impl::KeepAlive(int64_t lease) {
  const absl::Time sent = clock_->Now();
  absl::Time expires;
  {
    absl::MutexLock lock(&mu_);
    expires = last_renewed_ + options_.lease_ttl;
  }
  // A late answer still renews the lease, so wait for it as long as the
  // lease lives; but no longer than a request, so that a hung endpoint is
  // left for another while there is time.
  const absl::Duration wait =
      std::max(std::min(options_.request_timeout, expires - sent), absl::Milliseconds(100));
  absl::StatusOr<int64_t> ttl = client_->LeaseKeepAliveSync(lease, absl::Now() + wait);
  const absl::Time now = clock_->Now();
  if (log_->Enabled(LogLevel::kDebug)) {
    log_->Debug("etcd keepalive", {{"ms", absl::StrCat(absl::ToDoubleMilliseconds(now - sent))},
                                   {"status", ttl.ok() ? "OK" : ttl.status().ToString()}});
  }
  if (ttl.ok() && *ttl > 0) {
    absl::MutexLock lock(&mu_);
    if (lease_id_ == lease) last_renewed_ = std::max(last_renewed_, sent);
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

absl::Status EtcdTracker::Impl::LeaseUnknown(int64_t lease) {
  LeaseLost(lease, "etcd no longer knows the lease");
  return absl::UnavailableError("etcd tracker lost its lease; it is being renewed");
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
