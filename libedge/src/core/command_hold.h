// CommandHold: commands for a peer that no session here can take yet wait
// for it, in partition order, bounded, for at most COMMAND_HOLD_MS
// (contract §4). How each held command ends is described in
// command_hold.cc. The hold borrows what it needs from its host
// (CommandHoldHost), which EdgeImpl implements.
#ifndef EDGE_SRC_CORE_COMMAND_HOLD_H_
#define EDGE_SRC_CORE_COMMAND_HOLD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "command_decoder.h"
#include "edge/clock.h"
#include "edge/edge.h"
#include "edge/logger.h"
#include "edge/message_bus.h"
#include "edge/metrics.h"
#include "edge/tracker.h"
#include "events.h"

namespace edge {

class PeerSession;

// Header that marks a command forwarded from another edge; each hop adds one.
inline constexpr char kForwardedHeader[] = "edge-forwarded-from";

// What the hold needs from the edge. Called from any thread, never with the
// hold's lock held; none of the methods blocks.
class CommandHoldHost {
 public:
  CommandHoldHost() = default;
  CommandHoldHost(const CommandHoldHost&) = delete;
  CommandHoldHost& operator=(const CommandHoldHost&) = delete;
  virtual ~CommandHoldHost() = default;

  virtual const EdgeOptions& options() const = 0;
  virtual Clock& clock() = 0;
  virtual Logger& log() = 0;
  virtual Metrics& metrics() = 0;
  // Asked where a held peer is (Tracker::Lookup).
  virtual Tracker& tracker() = 0;
  // The session of `peer_id` here, if any (admitted or not, ending or not).
  virtual std::shared_ptr<PeerSession> Find(const std::string& peer_id) = 0;
  // Hands a held command to `session`, which holds its peer.
  virtual void Deliver(const std::shared_ptr<PeerSession>& session, Command command,
                       IncomingRecord record, RecordDone done) = 0;
  // Publishes `record` to `holder`'s command topic, one hop more; `done`
  // runs once it is stored there.
  virtual void ForwardTo(const std::string& holder, const std::string& peer_id,
                         IncomingRecord record, RecordDone done) = 0;
  // Dead-letters a command (§4); `done` runs once the letter is stored.
  virtual void DeadLetter(DeadLetterReason reason, absl::string_view detail,
                          absl::string_view peer_id, IncomingRecord record, RecordDone done) = 0;
};

class CommandHold {
 public:
  // `host` outlives the hold.
  explicit CommandHold(CommandHoldHost* host) : host_(host) {}
  CommandHold(const CommandHold&) = delete;
  CommandHold& operator=(const CommandHold&) = delete;

  // Routes a command whose peer has no usable session here: held, or
  // dead-lettered when the hold is full or there is nobody to wait for.
  void Hold(Command command, IncomingRecord record, RecordDone done);
  // True while commands wait for `peer_id` (later ones must queue behind).
  bool HasHeld(const std::string& peer_id);
  // The peer was admitted here; hands its session what waited.
  void ReleaseHeld(const std::string& peer_id);
  // Ends the hold at shutdown: what waits gets no outcome here and is read
  // again after a restart. Later commands are dropped the same way.
  void StopHolding();
  // Commands held now (the latest count reported; for Edge::stats()).
  int64_t held() const { return held_gauge_.load(std::memory_order_relaxed); }

 private:
  struct HeldCommand {
    Command command;
    IncomingRecord record;
    RecordDone done;
    absl::Time hold_until;
  };
  struct HeldPeer {
    std::list<HeldCommand> commands;  // in partition order
    // A tracker lookup, or the hand-over to an admitted session, is under
    // way: new commands queue behind it.
    bool busy = false;
    absl::Time next_lookup = absl::InfinitePast();
  };

  // Starts the due work of a held peer: hand-over or lookup.
  void StartHeldWork(const std::string& peer_id);
  void LookUpHeld(const std::string& peer_id);
  void OnHeldLookup(const std::string& peer_id, absl::StatusOr<std::string> holder);
  void HoldTick();
  void ScheduleHoldTickLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(hold_mu_);
  void ReportHeldLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(hold_mu_);
  void ReportHeld() ABSL_LOCKS_EXCLUDED(hold_mu_);

  // Shorthands for the host's.
  const EdgeOptions& options() const { return host_->options(); }
  Metrics& metrics() { return host_->metrics(); }
  Logger& log() { return host_->log(); }

  CommandHoldHost* const host_;
  absl::Mutex hold_mu_;
  absl::flat_hash_map<std::string, HeldPeer> held_ ABSL_GUARDED_BY(hold_mu_);
  size_t held_count_ ABSL_GUARDED_BY(hold_mu_) = 0;
  int lookups_in_flight_ ABSL_GUARDED_BY(hold_mu_) = 0;
  // Peers the tracker recently said nobody holds, until when to trust it.
  absl::flat_hash_map<std::string, absl::Time> absent_until_ ABSL_GUARDED_BY(hold_mu_);
  Clock::TimerId hold_timer_ ABSL_GUARDED_BY(hold_mu_) = 0;
  bool hold_stopped_ ABSL_GUARDED_BY(hold_mu_) = false;
  std::atomic<int64_t> held_gauge_{0};
};

}  // namespace edge

#endif  // EDGE_SRC_CORE_COMMAND_HOLD_H_
