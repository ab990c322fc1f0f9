// Backend commands → peers (contract §4): decode, route, and give every
// command exactly one outcome: delivered, forwarded, or dead-lettered.
#include "command_router.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "command_hold.h"
#include "edge/ids.h"
#include "edge/topic_pattern.h"
#include "events.h"
#include "peer_session.h"
#include "webrtc_relay.h"

namespace edge {
namespace {

bool WasForwarded(const IncomingRecord& record) {
  for (const RecordHeader& h : record.headers) {
    if (h.key == kForwardedHeader) return true;
  }
  return false;
}

}  // namespace

void CommandRouter::DeadLetter(DeadLetterReason reason, absl::string_view detail,
                               absl::string_view peer_id, IncomingRecord record, RecordDone done) {
  host_->CountDeadLettered();
  metrics().DeadLetter(DeadLetterReasonName(reason));
  metrics().CommandOutcome("deadlettered");
  // Each letter holds the whole story; the log says it once per period and
  // reason, so a flood of commands for an absent peer is not a flood of lines.
  if (std::optional<int64_t> left_out =
          log_limiter_.Admit(DeadLetterReasonName(reason), host_->clock().Now())) {
    log().Warn("command dead-lettered", {{"reason", DeadLetterReasonName(reason)},
                                         {"detail", detail},
                                         {"peer_id", peer_id},
                                         {"partition", absl::StrCat(record.partition)},
                                         {"offset", absl::StrCat(record.offset)},
                                         {"suppressed_before", absl::StrCat(*left_out)}});
  }
  host_->PublishForCommand([this, reason, detail = std::string(detail),
                            peer_id = std::string(peer_id), record = std::move(record),
                            done = std::move(done)]() mutable {
    absl::Time now = host_->clock().Now();
    OutgoingRecord letter = DeadLetterRecord(options().topics.deadletter, peer_id,
                                             options().edge_id, reason, detail, record, now);
    // Built now when it would differ, so that the original is not kept
    // while the letter is on its way.
    std::shared_ptr<OutgoingRecord> reduced;
    if (DeadLetterReduces(record)) {
      reduced = std::make_shared<OutgoingRecord>(
          DeadLetterRecord(options().topics.deadletter, peer_id, options().edge_id, reason, detail,
                           record, now, /*reduced=*/true));
    }
    record = IncomingRecord();
    PublishDeadLetter(std::move(letter), std::move(reduced), std::move(done));
  });
}

// Publishes a dead letter; the command's outcome is its storage. A letter
// the bus refuses for good (too large for the topic, say) is sent again
// reduced (original value, key and headers cut, each cut marked); one that
// is not stored because the bus shuts down gets no outcome, so the command
// is redelivered after a restart.
void CommandRouter::PublishDeadLetter(OutgoingRecord letter,
                                      std::shared_ptr<OutgoingRecord> fallback, RecordDone done) {
  host_->bus().Publish(std::move(letter), [this, fallback = std::move(fallback),
                                           done = std::move(done)](absl::Status status) mutable {
    if (status.ok()) {
      if (done) done();
      return;
    }
    if (fallback != nullptr && !absl::IsCancelled(status)) {
      log().Warn("dead letter refused; sending it reduced (original message, key and headers cut)",
                 {{"status", status.ToString()}});
      PublishDeadLetter(std::move(*fallback), nullptr, std::move(done));
      return;
    }
    metrics().Error("deadletter_unstored");
    log().Error("dead letter not stored; the command will be redelivered after a restart",
                {{"status", status.ToString()}});
  });
}

void CommandRouter::OnCommand(IncomingRecord record, RecordDone done) {
  DecodeResult decoded = DecodeCommand(record.value, options().max_message_bytes);
  if (!decoded.ok()) {
    const CommandError& error = *decoded.error;
    DeadLetter(error.reason, error.detail, error.peer_id, std::move(record), std::move(done));
    return;
  }
  Command& command = decoded.command;
  if (command.expires_at.has_value() && host_->clock().Now() >= *command.expires_at) {
    DeadLetter(
        DeadLetterReason::kExpired,
        absl::StrCat("expires_at ",
                     absl::FormatTime(absl::RFC3339_full, *command.expires_at, absl::UTCTimeZone()),
                     " passed before the command was read"),
        command.peer_id, record, std::move(done));
    return;
  }
  if (command.type == CommandType::kWebRtcReply) {
    if (host_->webrtc().OnReply(command.request_id, std::move(command.reply))) {
      host_->CountDelivered();
      done();
    } else {
      DeadLetter(DeadLetterReason::kInvalidCommand,
                 absl::StrCat("webrtc_reply: no pending WebRTCOperations call with request_id \"",
                              command.request_id, "\" (it timed out, or never existed)"),
                 command.peer_id, record, std::move(done));
    }
    return;
  }
  // Every WebRTC payload names its session; a message without one cannot be
  // placed by the peer (nor held for its answer).
  if (command.type == CommandType::kWebRtc && WebRtcSessionId(command.message.webrtc()).empty()) {
    DeadLetter(
        DeadLetterReason::kInvalidCommand,
        absl::StrCat("webrtc: the ", WebRtcKind(command.message.webrtc()), " has no session_id"),
        command.peer_id, record, std::move(done));
    return;
  }
  std::shared_ptr<PeerSession> session = host_->Find(command.peer_id);
  // Commands already waiting for this peer go first (per-peer order). A
  // stream that is ending leaves its peer between connections (held), unless
  // it was ended as slow: what comes for it then is dead-lettered peer_slow.
  // So does a stream whose claim the tracker has not granted yet: it may be
  // refused (another edge holds the peer), and a command queued on it would
  // then have no outcome; held, it reaches the stream when it is admitted
  // (ReleaseHeld) or follows the peer to the edge that holds it.
  if (session != nullptr && ((session->active() && !session->ending()) || session->ended_slow()) &&
      !host_->HasHeld(command.peer_id)) {
    Deliver(session, std::move(command), std::move(record), std::move(done));
    return;
  }
  if (command.type == CommandType::kDisconnect) {
    // Never held: it is meant for the stream there is now, not for the
    // peer's next one.
    if (session != nullptr && !session->ending()) {
      Deliver(session, std::move(command), std::move(record), std::move(done));
    } else {
      Forward(std::move(command), std::move(record), std::move(done));
    }
    return;
  }
  host_->Hold(std::move(command), std::move(record), std::move(done));
}

void CommandRouter::Deliver(const std::shared_ptr<PeerSession>& session, Command command,
                            IncomingRecord record, RecordDone done) {
  if (command.type == CommandType::kDisconnect) {
    std::string why = command.reason.empty()
                          ? "disconnected by the backend"
                          : absl::StrCat("disconnected by the backend: ", command.reason);
    session->End(absl::AbortedError(why), "kicked");
    host_->CountDelivered();
    done();
    return;
  }
  EdgeMessage& message = command.message;
  message.set_request_id(command.request_id.empty() ? NewRequestId() : command.request_id);
  message.set_edge_id(options().edge_id);
  if (command.type == CommandType::kCatalogAnnouncement)
    session->ExpectCatalog(message.request_id());
  if (command.type == CommandType::kWebRtc) {
    if (message.webrtc().request_id().empty()) {
      message.mutable_webrtc()->set_request_id(message.request_id());
    }
    if (host_->webrtc().HoldIfEarly(command.peer_id, message, record, done)) return;
    host_->webrtc().Touch(WebRtcSessionId(message.webrtc()));
  }
  session->SendCommand(std::move(message), std::move(record), std::move(done),
                       command.expires_at.value_or(absl::InfiniteFuture()));
}

// A disconnect for a peer that is not here: if another edge of the cluster
// holds it, the command makes one hop to that edge's command topic;
// otherwise, or after its hop, it is dead-lettered.
void CommandRouter::Forward(Command command, IncomingRecord record, RecordDone done) {
  if (WasForwarded(record)) {
    DeadLetter(
        DeadLetterReason::kPeerNotConnected,
        "the peer is connected neither to the edge that forwarded the command nor to this one",
        command.peer_id, record, std::move(done));
    return;
  }
  std::string peer_id = command.peer_id;
  host_->tracker().Lookup(
      peer_id, host_->clock().Now() + options().tracker_timeout,
      [this, peer_id, record = std::move(record),
       done = std::move(done)](absl::StatusOr<std::string> holder) mutable {
        if (!holder.ok() || *holder == options().edge_id) {
          std::string detail =
              holder.ok() || absl::IsNotFound(holder.status())
                  ? "the peer is not connected to any edge"
                  : absl::StrCat(
                        "the peer is not connected here and the tracker could not be asked: ",
                        holder.status().message());
          DeadLetter(DeadLetterReason::kPeerNotConnected, detail, peer_id, record, std::move(done));
          return;
        }
        ForwardTo(*holder, peer_id, std::move(record), std::move(done));
      });
}

void CommandRouter::ForwardTo(const std::string& holder, const std::string& peer_id,
                              IncomingRecord record, RecordDone done) {
  std::string topic = ResolveTopicPattern(options().commands_topic_pattern, holder);
  OutgoingRecord hop{topic, std::move(record.key), std::move(record.value),
                     std::move(record.headers)};
  hop.headers.push_back({kForwardedHeader, options().edge_id});
  log().Debug("forwarding command", {{"peer_id", peer_id}, {"to_edge", holder}});
  host_->PublishForCommand([this, hop = std::move(hop), done = std::move(done)]() mutable {
    host_->bus().Publish(std::move(hop),
                         [this, done = std::move(done)](absl::Status status) mutable {
                           // Not forwarded: no outcome, so it is read again after a restart.
                           if (!status.ok()) return;
                           host_->CountForwarded();
                           metrics().CommandOutcome("forwarded");
                           done();
                         });
  });
}

}  // namespace edge
