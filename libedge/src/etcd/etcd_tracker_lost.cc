// EtcdTracker's lost claims: looking for them, sharing them among the live
// edges, taking and publishing each once (docs/cluster.md, "Failures").
#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "etcd_client.h"
#include "etcd_tracker_impl.h"
#include "etcd_txn.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace edge::etcd {

using internal::kMaxClaimAttempts;
using internal::ParseRecord;

namespace {

// Lost claims per take: each costs 3 compares and reads, within etcd's
// default --max-txn-ops of 128.
constexpr size_t kTakeBatch = 40;

// Records read per request when a lease's end names the lost claims.
constexpr size_t kRecordsPerRead = 100;

// The longest history read for a lease's end, in revisions since the last
// read of the registrations (normally a second's worth: tens to hundreds).
// Longer (the registrations could not be read for a while), etcd would
// replay more than a look at every claim reads.
constexpr int64_t kMaxHistoryRevisions = 10000;

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

LostClaim internal::ParseRecord(const std::string& peer_id, const mvccpb::KeyValue& kv) {
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

void EtcdTracker::Impl::TakeLostForClaim(ClaimOpPtr op, LostClaim lost,
                                         internal::txn::LostTake take) {
  if (!TryMark(lost.peer_id, take.record_mod)) {
    FinishClaim(std::move(op), absl::UnavailableError(absl::StrCat(
                                   "the previous claim of peer ", lost.peer_id,
                                   " is being closed (edge_lost) by this edge; try again")));
    return;
  }
  client_->Txn(
      internal::txn::TakeLost({take}, options_.edge_id, op->lease), op->deadline,
      [this, op, lost = std::move(lost),
       take](absl::StatusOr<etcdserverpb::TxnResponse> taken) mutable {
        if (!taken.ok() && internal::txn::IsLeaseNotFound(taken.status())) {
          // Not taken: etcd refused the lease. The claim is left to the
          // look after the new lease, or to the peer's next claim.
          Unmark(lost.peer_id, take.record_mod);
          FinishClaim(op, LeaseUnknown(op->lease));
          return;
        }
        if (!taken.ok()) {
          FinishClaim(op, taken.status());
          // etcd may have applied the take after the claim's deadline: it
          // goes again at once, still marked, and is published either way
          // (taken now, or found taken by this edge), not left to a look at
          // every claim or to the peer's next claim here.
          auto batch =
              std::make_shared<std::vector<std::pair<LostClaim, internal::txn::LostTake>>>();
          batch->emplace_back(std::move(lost), std::move(take));
          TakeLostAttempt(std::move(batch), op->lease, 1);
          return;
        }
        if (!taken->succeeded()) {  // someone else moved first: look again
          Unmark(lost.peer_id, lost.epoch);
          ClaimStep(op);
          return;
        }
        internal::txn::ClaimKeys keys = std::move(take.keys);
        const int64_t record_mod = lost.epoch;
        PublishLostForClaim(std::move(op), std::move(lost), std::move(keys), record_mod,
                            taken->header().revision());
      });
}

void EtcdTracker::Impl::PublishLostForClaim(ClaimOpPtr op, LostClaim lost,
                                            internal::txn::ClaimKeys keys, int64_t record_mod,
                                            int64_t lost_mod) {
  // The caller waits no longer than its deadline for the edge_lost (the
  // bus may be slow); the loss is finished all the same.
  std::weak_ptr<ClaimOp> weak = op;
  Clock::TimerId timer = clock_->RunAt(clock_->Now() + (op->deadline - absl::Now()), [this, weak] {
    if (ClaimOpPtr late = weak.lock()) {
      absl::Status error = absl::DeadlineExceededError(absl::StrCat(
          "claim of ", late->peer_id, ": the previous claim's edge_lost is not stored yet"));
      FinishClaim(std::move(late), std::move(error));
    }
  });
  PublishLost(std::move(lost), std::move(keys), record_mod, lost_mod,
              [this, op, timer](absl::Status status) {
                clock_->Cancel(timer);
                if (op->finished.load()) return;
                if (status.ok()) {
                  ClaimStep(op);
                } else {
                  FinishClaim(op, absl::UnavailableError(
                                      absl::StrCat("the previous claim of peer ", op->peer_id,
                                                   " could not be closed: ", status.message())));
                }
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
  int64_t known_revision = 0;                    // the revision `known` was read at
  absl::Time look_until = absl::Now() + window;  // from the start
  absl::Time last_look = absl::InfinitePast();
  bool look_now = false;  // a lease ended and its history did not name its claims
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
    int64_t revision = 0;
    if (std::optional<Registrations> read = ReadRegistrations(&revision); read.has_value()) {
      // A registration gone: its lease ended, and the lease's peer keys
      // with it. Bound to another lease: the replaced lease's keys go
      // within its TTL, so look until then.
      absl::flat_hash_set<std::string> ended;
      for (const auto& [key, lease_id] : known.value_or(Registrations())) {
        auto it = read->find(key);
        if (it == read->end()) ended.insert(key);
        if (it != read->end() && it->second != lease_id) look_until = now + window;
      }
      if (!ended.empty()) {
        std::optional<absl::Time> owed;
        if (revision - known_revision <= kMaxHistoryRevisions) {
          owed = LookAtEnded(lease, *read, ended, known_revision + 1);
        }
        if (owed.has_value()) {
          // It counts as the periodic look, which would read every claim
          // while survivors still take them.
          last_look = now;
          owed_at = *owed;
        } else {
          look_now = true;
        }
      }
      known = std::move(read);
      known_revision = revision;
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

std::optional<EtcdTracker::Impl::Registrations> EtcdTracker::Impl::ReadRegistrations(
    int64_t* revision) {
  absl::StatusOr<etcdserverpb::TxnResponse> read =
      client_->TxnSync(internal::txn::KeysUnder(absl::StrCat(options_.key_prefix, "edges/")),
                       absl::Now() + options_.request_timeout);
  if (!read.ok() || read->responses_size() != 1) return std::nullopt;
  *revision = read->header().revision();
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

bool EtcdTracker::Impl::MineToTake(const std::string& peer_id, const Registrations& live) const {
  const std::string own_key = absl::StrCat(options_.key_prefix, "edges/", options_.edge_id);
  const uint64_t own = StableHash(own_key, peer_id);
  for (const auto& [key, lease] : live) {
    if (key != own_key && StableHash(key, peer_id) > own) return false;
  }
  return true;
}

absl::Time EtcdTracker::Impl::ScanOnce(int64_t lease, const Registrations& live) {
  const absl::Time look_started = absl::Now();
  const absl::Time deadline = look_started + options_.request_timeout;
  // Cheap first: every peer key has its record, so records outnumber peer
  // keys exactly when some claim is lost.
  absl::StatusOr<etcdserverpb::TxnResponse> counts =
      client_->TxnSync(internal::txn::CountTwo(records_prefix_, peers_prefix_), deadline);
  if (!counts.ok() || counts->responses_size() != 2) return absl::InfinitePast();
  if (counts->responses(0).response_range().count() ==
      counts->responses(1).response_range().count()) {
    return absl::InfiniteFuture();
  }
  // A lease that ended since `live` was read: the next round reads its
  // claims from etcd's history (LookAtEnded), cheaper than every record.
  int64_t registrations_revision = 0;
  if (std::optional<Registrations> now_live = ReadRegistrations(&registrations_revision);
      now_live.has_value()) {
    for (const auto& [key, lease_id] : live) {
      if (!now_live->contains(key)) return absl::InfinitePast();
    }
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
  TakeFound(std::move(found), lease, "every claim read", look_started);
  return absl::InfinitePast();
}

std::optional<absl::Time> EtcdTracker::Impl::LookAtEnded(
    int64_t lease, const Registrations& live, const absl::flat_hash_set<std::string>& ended,
    int64_t from_revision) {
  const absl::Time look_started = absl::Now();
  // The revision each ended registration went at, and the peer keys
  // deleted at each revision (releases among them) until then.
  absl::flat_hash_map<std::string, int64_t> ended_at;
  absl::flat_hash_map<int64_t, absl::flat_hash_set<std::string>> peers_gone;
  absl::Status read = client_->WatchSync(
      internal::txn::DeletionsBetween(absl::StrCat(options_.key_prefix, "edges/"), peers_prefix_,
                                      from_revision),
      absl::Now() + options_.request_timeout, [&](const etcdserverpb::WatchResponse& batch) {
        for (const mvccpb::Event& event : batch.events()) {
          const std::string& key = event.kv().key();
          if (absl::StartsWith(key, peers_prefix_)) {
            peers_gone[event.kv().mod_revision()].insert(key.substr(peers_prefix_.size()));
          } else if (ended.contains(key)) {
            ended_at.try_emplace(key, event.kv().mod_revision());
          }
        }
        return ended_at.size() == ended.size();
      });
  if (!read.ok()) {
    log_->Info("the end of a lease is not in etcd's history; reading every claim",
               {{"error", read.ToString()}});
    return std::nullopt;
  }
  const absl::Time now = absl::Now();
  std::vector<std::string> mine;
  bool others = false;
  for (const auto& [key, revision] : ended_at) {
    auto gone = peers_gone.find(revision);
    if (gone == peers_gone.end()) continue;
    for (const std::string& peer_id : gone->second) {
      if (MineToTake(peer_id, live)) {
        mine.push_back(peer_id);
      } else {
        others_seen_.try_emplace(peer_id, now);
        others = true;
      }
    }
  }
  // Their records, read together: the claims' epochs and holders, for
  // the takes and the edge_lost events. A record gone was released
  // meanwhile.
  std::vector<etcdserverpb::TxnRequest> reads;
  for (size_t begin = 0; begin < mine.size(); begin += kRecordsPerRead) {
    std::vector<std::string> keys;
    for (size_t i = begin; i < std::min(mine.size(), begin + kRecordsPerRead); ++i) {
      keys.push_back(absl::StrCat(records_prefix_, mine[i]));
    }
    reads.push_back(internal::txn::GetEach(keys));
  }
  absl::StatusOr<std::vector<etcdserverpb::TxnResponse>> records =
      client_->TxnAllSync(std::move(reads), absl::Now() + options_.request_timeout);
  if (!records.ok()) {
    log_->Info("reading the records of an ended lease's claims failed; reading every claim",
               {{"error", records.status().ToString()}});
    return std::nullopt;
  }
  std::vector<std::pair<LostClaim, internal::txn::LostTake>> found;
  for (size_t i = 0; i < mine.size(); ++i) {
    const mvccpb::KeyValue* record = internal::txn::KeyAt((*records)[i / kRecordsPerRead],
                                                          static_cast<int>(i % kRecordsPerRead));
    if (record == nullptr) continue;
    found.emplace_back(ParseRecord(mine[i], *record),
                       internal::txn::LostTake{Keys(mine[i]), record->mod_revision(), 0});
  }
  if (found.empty() && !others) return absl::InfiniteFuture();
  if (!found.empty()) TakeFound(std::move(found), lease, "a lease's end", look_started);
  return now + options_.lease_ttl;
}

void EtcdTracker::Impl::TakeFound(std::vector<std::pair<LostClaim, internal::txn::LostTake>> found,
                                  int64_t lease, absl::string_view how, absl::Time look_started) {
  // Survivors may find the same claims: start at a different place each,
  // so that their takes rarely collide.
  const size_t shift = absl::Hash<std::string>()(options_.edge_id) % found.size();
  std::rotate(found.begin(), found.begin() + shift, found.end());
  log_->Info("taking lost claims",
             {{"count", absl::StrCat(found.size())},
              {"found_by", how},
              {"look_ms", absl::StrCat(absl::ToInt64Milliseconds(absl::Now() - look_started))}});
  for (size_t begin = 0; begin < found.size(); begin += kTakeBatch) {
    std::vector<std::pair<LostClaim, internal::txn::LostTake>> batch(
        std::make_move_iterator(found.begin() + begin),
        std::make_move_iterator(found.begin() + std::min(found.size(), begin + kTakeBatch)));
    TakeLostBatch(std::move(batch), lease);
  }
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
// and etcd commits them in few rounds. A take etcd refused (a compare
// failed) goes again at once with the claims still lost and free: the
// refusal read each claim at the revision it failed at, so every round
// drops at least one and the rounds end. A take etcd did not answer goes
// again after a pause, up to kMaxClaimAttempts times; if etcd applied it
// after all, the claims show this edge's lost key and are published.
void EtcdTracker::Impl::TakeLostAttempt(
    std::shared_ptr<std::vector<std::pair<LostClaim, internal::txn::LostTake>>> batch,
    int64_t lease, int attempt) {
  if (batch->empty()) return;
  std::vector<internal::txn::LostTake> takes;
  for (const auto& [lost, take] : *batch) takes.push_back(take);
  client_->Txn(
      internal::txn::TakeLost(takes, options_.edge_id, lease),
      absl::Now() + options_.request_timeout,
      [this, batch, lease, attempt](absl::StatusOr<etcdserverpb::TxnResponse> result) {
        if (!result.ok() && internal::txn::IsLeaseNotFound(result.status())) {
          // Not taken: etcd refused the lease, so no retry can succeed. The
          // look after the new lease takes them.
          LeaseUnknown(lease).IgnoreError();  // no caller to tell
          log_->Info("lost claims not taken: this edge's lease ended; the next look takes them",
                     {{"count", absl::StrCat(batch->size())}});
          for (const auto& [lost, take] : *batch) Unmark(lost.peer_id, take.record_mod);
          return;
        }
        if (!result.ok()) {
          if (attempt + 1 < kMaxClaimAttempts &&
              RunRetry(absl::Milliseconds(500), [this, batch, lease, attempt] {
                TakeLostAttempt(batch, lease, attempt + 1);
              })) {
            return;
          }
          // Not taken, or unknown: a later look takes it, or publishes
          // what this edge took after all.
          log_->Warn(
              "lost claims not taken: etcd did not answer; a later look takes them",
              {{"count", absl::StrCat(batch->size())}, {"error", result.status().ToString()}});
          for (const auto& [lost, take] : *batch) Unmark(lost.peer_id, take.record_mod);
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
          auto& [lost, take] = (*batch)[i];
          const int base = static_cast<int>(3 * i);
          const mvccpb::KeyValue* record = internal::txn::KeyAt(*result, base);
          const mvccpb::KeyValue* lost_key = internal::txn::KeyAt(*result, base + 2);
          const bool unchanged = record != nullptr && record->mod_revision() == take.record_mod &&
                                 internal::txn::KeyAt(*result, base + 1) == nullptr;
          if (unchanged && lost_key == nullptr) {
            still->push_back(std::move((*batch)[i]));
          } else if (unchanged && lost_key->value() == options_.edge_id &&
                     lost_key->lease() == lease) {
            // This edge's own take, applied after etcd did not answer it.
            PublishLost(std::move(lost), take.keys, take.record_mod, lost_key->mod_revision(),
                        [](absl::Status) {});
          } else {
            Unmark(lost.peer_id, take.record_mod);
          }
        }
        TakeLostAttempt(std::move(still), lease, attempt);
      });
}

}  // namespace edge::etcd
