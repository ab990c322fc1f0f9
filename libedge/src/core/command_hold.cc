// Commands that wait for their peer (contract §4).
//
// A command for a peer with no usable session here joins that peer's hold
// queue. The queue keeps partition order: while it exists every later
// command of the peer joins it too, and one piece of work runs for it at a
// time (`busy`): a tracker lookup, or the hand-over to a session. Each
// queue ends one of three ways per command:
//   - the peer is admitted here: ReleaseHeld hands the queue to its session;
//   - another edge claims the peer: a periodic lookup finds it and the
//     commands make one hop each to that edge (at most kMaxHops in all);
//   - COMMAND_HOLD_MS passes (or `expires_at`): dead-lettered.
// A held command has no outcome yet, so the consumer does not commit past
// it: a crash redelivers it. Lookups are bounded (one per peer, at most
// kMaxLookupsInFlight in all) and a "nobody holds it" answer is trusted for
// kLookupPeriod, so a wedged tracker or a flood of commands for one absent
// peer costs a bounded number of requests.
#include "command_hold.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "peer_session.h"

namespace edge {
namespace {

constexpr absl::Duration kHoldTick = absl::Milliseconds(100);
// How often a held peer is looked up again, and how long a "nobody holds
// it" answer is trusted.
constexpr absl::Duration kLookupPeriod = absl::Milliseconds(500);
constexpr int kMaxLookupsInFlight = 64;
// Beyond this many remembered answers the oldest are dropped wholesale.
constexpr size_t kMaxAbsentRemembered = 100000;

// A command follows its peer at most this many hops (each adds a
// kForwardedHeader), so a peer that keeps moving cannot keep a command
// circling between edges.
constexpr int kMaxHops = 3;

int Hops(const IncomingRecord& record) {
  int hops = 0;
  for (const RecordHeader& h : record.headers) hops += h.key == kForwardedHeader;
  return hops;
}

}  // namespace

bool CommandHold::HasHeld(const std::string& peer_id) {
  absl::MutexLock lock(&hold_mu_);
  return held_.contains(peer_id);
}

void CommandHold::ReportHeldLocked() {
  held_gauge_.store(static_cast<int64_t>(held_count_), std::memory_order_relaxed);
}

void CommandHold::ReportHeld() {
  // Outside hold_mu_; the latest count, whoever stored it.
  metrics().CommandsHeld(held_gauge_.load(std::memory_order_relaxed));
}

void CommandHold::ScheduleHoldTickLocked() {
  if (hold_timer_ != 0 || hold_stopped_ || held_.empty()) return;
  hold_timer_ = host_->clock().RunAt(host_->clock().Now() + kHoldTick, [this] { HoldTick(); });
}

void CommandHold::Hold(Command command, IncomingRecord record, RecordDone done) {
  const std::string peer_id = command.peer_id;
  const absl::Time now = host_->clock().Now();
  const bool holding = options().command_hold > absl::ZeroDuration();
  std::string refusal;
  bool start_work = false;
  {
    absl::MutexLock lock(&hold_mu_);
    if (hold_stopped_) return;  // shutting down: no outcome, read again later
    auto it = held_.find(peer_id);
    auto absent = absent_until_.find(peer_id);
    const bool known_absent = absent != absent_until_.end() && absent->second > now;
    if (it == held_.end() && !holding &&
        (known_absent ||
         std::any_of(record.headers.begin(), record.headers.end(),
                     [](const RecordHeader& h) { return h.key == kForwardedHeader; }))) {
      // Holding is off and there is nobody to forward to: the tracker just
      // said so, or the command already made its hop.
      refusal = known_absent ? "the peer is not connected to any edge"
                             : "the peer is connected neither to the edge that forwarded the "
                               "command nor to this one";
    } else if (it != held_.end() && it->second.commands.size() >= options().peer_send_queue_max) {
      refusal = absl::StrCat("the hold is full: ", it->second.commands.size(),
                             " commands already wait for this peer (PEER_SEND_QUEUE_MAX)");
    } else if (held_count_ >= options().command_hold_max) {
      refusal = absl::StrCat("the hold is full: ", held_count_,
                             " commands already wait on this edge (COMMAND_HOLD_MAX)");
    } else {
      HeldPeer& peer = held_[peer_id];
      peer.commands.push_back(HeldCommand{std::move(command), std::move(record), std::move(done),
                                          now + options().command_hold});
      ++held_count_;
      if (!peer.busy) {
        // A fresh "nobody holds it" answer stands for the next lookup.
        if (known_absent) peer.next_lookup = std::max(peer.next_lookup, absent->second);
        start_work = now >= peer.next_lookup;
      }
      ReportHeldLocked();
      ScheduleHoldTickLocked();
    }
  }
  if (!refusal.empty()) {
    host_->DeadLetter(DeadLetterReason::kPeerNotConnected, refusal, peer_id, std::move(record),
                      std::move(done));
    return;
  }
  ReportHeld();
  metrics().CommandOutcome("held");
  if (start_work) StartHeldWork(peer_id);
}

void CommandHold::StartHeldWork(const std::string& peer_id) {
  std::shared_ptr<PeerSession> session = host_->Find(peer_id);
  if (session != nullptr && session->active()) {
    ReleaseHeld(peer_id);
    return;
  }
  {
    absl::MutexLock lock(&hold_mu_);
    auto it = held_.find(peer_id);
    if (it == held_.end() || it->second.busy || hold_stopped_) return;
    if (lookups_in_flight_ >= kMaxLookupsInFlight) return;  // the next tick tries again
    it->second.busy = true;
    ++lookups_in_flight_;
  }
  LookUpHeld(peer_id);
}

void CommandHold::LookUpHeld(const std::string& peer_id) {
  host_->tracker().Lookup(peer_id, host_->clock().Now() + options().tracker_timeout,
                          [this, peer_id](absl::StatusOr<std::string> holder) {
                            OnHeldLookup(peer_id, std::move(holder));
                          });
}

void CommandHold::OnHeldLookup(const std::string& peer_id, absl::StatusOr<std::string> holder) {
  std::shared_ptr<PeerSession> session = host_->Find(peer_id);
  const bool here = session != nullptr && session->active();
  const bool elsewhere = holder.ok() && *holder != options().edge_id;
  const bool holding = options().command_hold > absl::ZeroDuration();
  const absl::Time now = host_->clock().Now();
  std::vector<HeldCommand> forward;
  std::vector<HeldCommand> refuse;
  {
    absl::MutexLock lock(&hold_mu_);
    --lookups_in_flight_;
    auto it = held_.find(peer_id);
    if (it == held_.end()) return;  // stopped meanwhile
    HeldPeer& peer = it->second;
    peer.busy = false;
    peer.next_lookup = now + kLookupPeriod;
    if (!here && elsewhere) {
      absent_until_.erase(peer_id);
      // Forward in order, up to the first command that made its last hop
      // (it waits here for the peer or its hold's end).
      while (!peer.commands.empty() && Hops(peer.commands.front().record) < kMaxHops) {
        forward.push_back(std::move(peer.commands.front()));
        peer.commands.pop_front();
      }
    } else if (!here) {
      if (holder.ok() || absl::IsNotFound(holder.status())) {
        if (absent_until_.size() >= kMaxAbsentRemembered) absent_until_.clear();
        absent_until_[peer_id] = now + kLookupPeriod;
      }
      if (!holding) {
        for (HeldCommand& c : peer.commands) refuse.push_back(std::move(c));
        peer.commands.clear();
      }
    }
    held_count_ -= forward.size() + refuse.size();
    if (peer.commands.empty()) held_.erase(it);
    ReportHeldLocked();
  }
  ReportHeld();
  for (HeldCommand& c : forward) {
    host_->ForwardTo(*holder, peer_id, std::move(c.record), std::move(c.done));
  }
  if (!refuse.empty()) {
    std::string detail =
        holder.ok() || absl::IsNotFound(holder.status())
            ? "the peer is not connected to any edge"
            : absl::StrCat("the peer is not connected here and the tracker could not be asked: ",
                           holder.status().message());
    for (HeldCommand& c : refuse) {
      host_->DeadLetter(DeadLetterReason::kPeerNotConnected, detail, peer_id, std::move(c.record),
                        std::move(c.done));
    }
  }
  if (here) ReleaseHeld(peer_id);
}

void CommandHold::ReleaseHeld(const std::string& peer_id) {
  bool first = true;
  while (true) {
    std::shared_ptr<PeerSession> session = host_->Find(peer_id);
    std::list<HeldCommand> batch;
    {
      absl::MutexLock lock(&hold_mu_);
      auto it = held_.find(peer_id);
      if (it == held_.end()) return;
      HeldPeer& peer = it->second;
      // Someone else (a lookup, another hand-over) has the queue; it
      // checks for the session when done.
      if (first && peer.busy) return;
      first = false;
      if (session == nullptr || !session->active()) {
        // Gone again before its commands were handed over: keep holding.
        peer.busy = false;
        peer.next_lookup = host_->clock().Now();
        ScheduleHoldTickLocked();
        return;
      }
      if (peer.commands.empty()) {
        held_.erase(it);
        return;
      }
      peer.busy = true;
      batch.swap(peer.commands);
      held_count_ -= batch.size();
      ReportHeldLocked();
    }
    ReportHeld();
    const absl::Time now = host_->clock().Now();
    for (HeldCommand& c : batch) {
      if (c.command.expires_at.has_value() && now >= *c.command.expires_at) {
        host_->DeadLetter(DeadLetterReason::kExpired,
                          "expires_at passed while the command was held", peer_id,
                          std::move(c.record), std::move(c.done));
        continue;
      }
      host_->Deliver(session, std::move(c.command), std::move(c.record), std::move(c.done));
    }
  }
}

void CommandHold::HoldTick() {
  const absl::Time now = host_->clock().Now();
  const bool holding = options().command_hold > absl::ZeroDuration();
  std::vector<std::pair<HeldCommand, bool>> ended;  // true: expired
  std::vector<std::string> due;
  {
    absl::MutexLock lock(&hold_mu_);
    hold_timer_ = 0;
    if (hold_stopped_) return;
    for (auto it = held_.begin(); it != held_.end();) {
      HeldPeer& peer = it->second;
      for (auto c = peer.commands.begin(); c != peer.commands.end();) {
        const bool expired = c->command.expires_at.has_value() && now >= *c->command.expires_at;
        // With holding off only the lookup under way decides.
        if (expired || (holding && now >= c->hold_until)) {
          ended.emplace_back(std::move(*c), expired);
          c = peer.commands.erase(c);
        } else {
          ++c;
        }
      }
      if (peer.commands.empty() && !peer.busy) {
        held_.erase(it++);
        continue;
      }
      if (!peer.busy && now >= peer.next_lookup) due.push_back(it->first);
      ++it;
    }
    held_count_ -= ended.size();
    for (auto it = absent_until_.begin(); it != absent_until_.end();) {
      if (it->second <= now) {
        absent_until_.erase(it++);
      } else {
        ++it;
      }
    }
    ReportHeldLocked();
    ScheduleHoldTickLocked();
  }
  ReportHeld();
  for (auto& [c, expired] : ended) {
    if (expired) {
      host_->DeadLetter(DeadLetterReason::kExpired, "expires_at passed while the command was held",
                        c.command.peer_id, std::move(c.record), std::move(c.done));
    } else {
      host_->DeadLetter(DeadLetterReason::kPeerNotConnected,
                        absl::StrCat("no edge held the peer within COMMAND_HOLD_MS (",
                                     absl::FormatDuration(options().command_hold), ")"),
                        c.command.peer_id, std::move(c.record), std::move(c.done));
    }
  }
  for (const std::string& peer_id : due) StartHeldWork(peer_id);
}

void CommandHold::StopHolding() {
  absl::flat_hash_map<std::string, HeldPeer> dropped;
  {
    absl::MutexLock lock(&hold_mu_);
    hold_stopped_ = true;
    if (hold_timer_ != 0) host_->clock().Cancel(hold_timer_);
    hold_timer_ = 0;
    dropped.swap(held_);
    held_count_ = 0;
    ReportHeldLocked();
  }
  ReportHeld();
  size_t count = 0;
  for (const auto& [peer_id, peer] : dropped) count += peer.commands.size();
  if (count > 0) {
    log().Info(
        "shutting down with commands still waiting for their peers; they are read "
        "again after a restart",
        {{"count", absl::StrCat(count)}});
  }
  // Destroying their `done` unrun leaves them without an outcome.
}

}  // namespace edge
