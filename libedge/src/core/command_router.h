// CommandRouter: backend commands → peers (contract §4). It decodes each
// command of the edge's command topic and routes it to exactly one outcome:
// the peer's session here (delivered once written), the command hold (the
// peer is between connections), one hop to the edge that holds the peer, or
// a dead letter. It borrows everything else from its host
// (CommandRouterHost), which EdgeImpl implements.
#ifndef EDGE_SRC_CORE_COMMAND_ROUTER_H_
#define EDGE_SRC_CORE_COMMAND_ROUTER_H_

#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "command_decoder.h"
#include "edge/clock.h"
#include "edge/edge.h"
#include "edge/logger.h"
#include "edge/message_bus.h"
#include "edge/metrics.h"
#include "edge/tracker.h"
#include "events.h"
#include "log_limiter.h"

namespace edge {

class PeerSession;
class WebRtcRelay;

// What the router needs from the edge. Called from any thread, never with a
// lock of the router's caller held; none of the methods blocks.
class CommandRouterHost {
 public:
  CommandRouterHost() = default;
  CommandRouterHost(const CommandRouterHost&) = delete;
  CommandRouterHost& operator=(const CommandRouterHost&) = delete;
  virtual ~CommandRouterHost() = default;

  virtual const EdgeOptions& options() const = 0;
  virtual Clock& clock() = 0;
  virtual Logger& log() = 0;
  virtual Metrics& metrics() = 0;
  // Where dead letters and forwarded commands are published.
  virtual MessageBus& bus() = 0;
  // Asked which edge holds a peer a disconnect is for.
  virtual Tracker& tracker() = 0;
  // The session of `peer_id` here, if any (admitted or not, ending or not).
  virtual std::shared_ptr<PeerSession> Find(const std::string& peer_id) = 0;
  // The command hold (CommandHold): whether commands wait for `peer_id`,
  // and holding one more.
  virtual bool HasHeld(const std::string& peer_id) = 0;
  virtual void Hold(Command command, IncomingRecord record, RecordDone done) = 0;
  virtual WebRtcRelay& webrtc() = 0;
  // Runs `publish` (which publishes a record on behalf of a command) at once
  // while the bus has room, else in turn once it drains (EdgeImpl's
  // PublishForCommand). Never blocks.
  virtual void PublishForCommand(absl::AnyInvocable<void()> publish) = 0;
  // Counting for Edge::stats() and the metrics.
  virtual void CountDelivered() = 0;
  virtual void CountDeadLettered() = 0;
  virtual void CountForwarded() = 0;
};

class CommandRouter {
 public:
  // `host` outlives the router.
  explicit CommandRouter(CommandRouterHost* host) : host_(host) {}
  CommandRouter(const CommandRouter&) = delete;
  CommandRouter& operator=(const CommandRouter&) = delete;

  // A record of the edge's command topic; `done` runs once the command has
  // its outcome (contract §4), never if the edge shuts down first.
  void OnCommand(IncomingRecord record, RecordDone done);
  // Pushes a decoded command to `session` (which holds its peer).
  void Deliver(const std::shared_ptr<PeerSession>& session, Command command, IncomingRecord record,
               RecordDone done);
  // Publishes `record` to `holder`'s command topic, one hop more.
  void ForwardTo(const std::string& holder, const std::string& peer_id, IncomingRecord record,
                 RecordDone done);
  // Dead-letters a command (§4); `done` runs once the letter is stored.
  // Pass the record by move where it is not needed after: it is held only
  // until the letter is built.
  void DeadLetter(DeadLetterReason reason, absl::string_view detail, absl::string_view peer_id,
                  IncomingRecord record, RecordDone done);

 private:
  void Forward(Command command, IncomingRecord record, RecordDone done);
  void PublishDeadLetter(OutgoingRecord letter, std::shared_ptr<OutgoingRecord> fallback,
                         RecordDone done);

  // Shorthands for the host's.
  const EdgeOptions& options() const { return host_->options(); }
  Metrics& metrics() { return host_->metrics(); }
  Logger& log() { return host_->log(); }

  CommandRouterHost* const host_;
  // Repeated warnings (a dead letter per command) are written once per
  // period per reason, with the number left out.
  LogLimiter log_limiter_{absl::Seconds(5)};
};

}  // namespace edge

#endif  // EDGE_SRC_CORE_COMMAND_ROUTER_H_
