#include "peer_session.h"

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "edge/ids.h"
#include "events.h"
#include "session_host.h"
#include "webrtc_relay.h"

namespace edge {
namespace {

// Catalog pulls remembered per peer; older ones are forgotten first.
constexpr size_t kMaxPendingPulls = 16;

// The payload's field name, for metrics: "file_hash_response", "ack", ...
absl::string_view PayloadName(const google::protobuf::Message& m) {
  const auto* oneof = m.GetDescriptor()->FindOneofByName("payload");
  const auto* field = m.GetReflection()->GetOneofFieldDescriptor(m, oneof);
  if (field != nullptr) return field->name();
  return m.GetDescriptor() == EdgeMessage::descriptor() ? "ack" : "none";
}

}  // namespace

PeerSession::PeerSession(SessionHost* edge, std::shared_ptr<PeerStream> stream, std::string peer_id,
                         absl::Time now)
    : edge_(edge),
      peer_id_(std::move(peer_id)),
      connected_at_(now),
      last_activity_ns_(absl::ToUnixNanos(now)),
      stream_(std::move(stream)),
      tokens_(edge->options().peer_max_messages_per_sec),
      tokens_at_(now) {}

void PeerSession::Activate(PeerClaim claim) {
  {
    absl::MutexLock lock(&mu_);
    claim_ = claim;
    state_ = State::kActive;
    activated_ = true;
  }
  edge_->metrics().PeerConnected();
  edge_->Publish(edge_->options().topics.lifecycle, peer_id_,
                 ConnectedEvent(HostEventHeader(*edge_, peer_id_), connected_at_, claim.epoch),
                 nullptr);
  Pump();  // Commands may have been queued during admission.
}

bool PeerSession::active() {
  absl::MutexLock lock(&mu_);
  return state_ == State::kActive;
}

bool PeerSession::ending() {
  absl::MutexLock lock(&mu_);
  return state_ == State::kEnding || state_ == State::kEnded;
}

bool PeerSession::ended_slow() {
  absl::MutexLock lock(&mu_);
  return slow_;
}

PeerClaim PeerSession::claim() {
  absl::MutexLock lock(&mu_);
  return claim_;
}

bool PeerSession::owns_claim() {
  absl::MutexLock lock(&mu_);
  return owns_claim_;
}

void PeerSession::DisownClaim() {
  absl::MutexLock lock(&mu_);
  owns_claim_ = false;
}

void PeerSession::ExpectCatalog(const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  if (!pending_pulls_.insert(request_id).second) return;
  pending_pull_order_.push_back(request_id);
  if (pending_pull_order_.size() > kMaxPendingPulls) {
    pending_pulls_.erase(pending_pull_order_.front());
    pending_pull_order_.pop_front();
  }
}

void PeerSession::RequestCatalog() {
  EdgeMessage message;
  message.set_request_id(NewRequestId());
  message.set_edge_id(edge_->options().edge_id);
  message.mutable_catalog_announcement_request();
  ExpectCatalog(message.request_id());
  Enqueue(Outgoing{std::move(message), std::nullopt, nullptr, absl::InfinitePast()});
}

void PeerSession::SendCommand(EdgeMessage message, IncomingRecord record, RecordDone done,
                              absl::Time expires_at) {
  size_t bytes =
      message.ByteSizeLong() + record.topic.size() + record.key.size() + record.value.size();
  for (const RecordHeader& h : record.headers) bytes += h.key.size() + h.value.size();
  Enqueue(Outgoing{std::move(message), std::move(record), std::move(done), edge_->clock().Now(),
                   false, bytes, expires_at});
}

void PeerSession::SendAck(const std::string& request_id) {
  EdgeMessage ack;
  ack.set_request_id(request_id);
  ack.set_edge_id(edge_->options().edge_id);
  Enqueue(Outgoing{std::move(ack), std::nullopt, nullptr, absl::InfinitePast(), true});
}

void PeerSession::Count() {
  absl::MutexLock lock(&mu_);
  ++unanswered_;
}

void PeerSession::Answered() {
  std::shared_ptr<PeerStream> resume;
  {
    absl::MutexLock lock(&mu_);
    --unanswered_;
    if (paused_for_answers_ && unanswered_ <= edge_->options().peer_send_queue_max / 2) {
      paused_for_answers_ = false;
      resume = stream_;
    }
  }
  if (resume != nullptr) resume->ResumeReading();
}

void PeerSession::Enqueue(Outgoing item) {
  std::list<Outgoing> undeliverable;
  DeadLetterReason reason = DeadLetterReason::kPeerWriteFailed;
  const char* detail = "the peer's stream ended before the command was written";
  bool now_slow = false;
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kEnding || state_ == State::kEnded) {
      if (slow_) {
        reason = DeadLetterReason::kPeerSlow;
        detail = "the peer was disconnected for reading too slowly";
      }
      undeliverable.push_back(std::move(item));
    } else if (item.record.has_value() &&
               (commands_pending_ >= edge_->options().peer_send_queue_max ||
                (commands_pending_ > 0 && command_bytes_pending_ + item.bytes >
                                              edge_->options().peer_send_queue_max_bytes))) {
      // Slow peer (§4): disconnect it and dead-letter what it did not take.
      // A command alone is always taken, whatever its size (the decoder
      // bounds it by GRPC_MAX_MESSAGE_BYTES).
      slow_ = true;
      now_slow = true;
      reason = DeadLetterReason::kPeerSlow;
      detail = commands_pending_ >= edge_->options().peer_send_queue_max
                   ? "the peer's send queue was full (PEER_SEND_QUEUE_MAX)"
                   : "the peer's send queue was full (PEER_SEND_QUEUE_MAX_BYTES)";
      undeliverable.swap(queue_);
      undeliverable.push_back(std::move(item));
      const bool command_in_flight = in_flight_.has_value() && in_flight_->record.has_value();
      commands_pending_ = command_in_flight ? 1 : 0;
      command_bytes_pending_ = command_in_flight ? in_flight_->bytes : 0;
    } else {
      if (item.record.has_value()) {
        ++commands_pending_;
        command_bytes_pending_ += item.bytes;
      }
      queue_.push_back(std::move(item));
    }
  }
  if (now_slow) {
    End(absl::ResourceExhaustedError("the peer reads too slowly: its send queue is full"), "slow");
  }
  // Each item is freed as soon as its letter is on its way, so a slow peer's
  // queue is given back while it is dead-lettered, not after.
  while (!undeliverable.empty()) {
    Outgoing& lost = undeliverable.front();
    if (lost.record.has_value()) {
      edge_->DeadLetter(reason, detail, peer_id_, std::move(*lost.record), std::move(lost.done));
    }
    undeliverable.pop_front();
  }
  Pump();
}

void PeerSession::Pump() {
  std::shared_ptr<PeerStream> stream;
  EdgeMessage message;
  std::list<Outgoing> expired;
  const absl::Time now = edge_->clock().Now();
  const bool metrics = HostMetricsEnabled(*edge_);
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kActive && state_ != State::kEnding) return;
    if (in_flight_.has_value() || stream_ == nullptr) return;
    // A command whose expires_at passed while it queued is not written.
    while (!queue_.empty() && queue_.front().record.has_value() &&
           queue_.front().expires_at <= now) {
      if (commands_pending_ > 0) --commands_pending_;
      command_bytes_pending_ -= std::min(command_bytes_pending_, queue_.front().bytes);
      expired.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    if (!queue_.empty()) {
      in_flight_ = std::move(queue_.front());
      queue_.pop_front();
      stream = stream_;
      in_flight_payload_ = metrics ? PayloadName(in_flight_->message) : absl::string_view();
      in_flight_bytes_ = metrics ? in_flight_->message.ByteSizeLong() : 0;
      // Moved, not copied: only the stream needs it from here on.
      message = std::move(in_flight_->message);
    }
  }
  // Each item is freed as soon as its letter is on its way.
  while (!expired.empty()) {
    Outgoing& item = expired.front();
    edge_->DeadLetter(DeadLetterReason::kExpired,
                      "expires_at passed while the command waited in the peer's send queue",
                      peer_id_, std::move(*item.record), std::move(item.done));
    expired.pop_front();
  }
  if (stream == nullptr) return;
  stream->Write(std::move(message),
                [self = shared_from_this()](bool ok) { self->OnWriteDone(ok); });
}

void PeerSession::OnWriteDone(bool ok) {
  Outgoing done;
  bool slow;
  absl::string_view payload;
  size_t message_bytes;
  {
    absl::MutexLock lock(&mu_);
    done = std::move(*in_flight_);
    in_flight_.reset();
    payload = in_flight_payload_;
    message_bytes = in_flight_bytes_;
    if (done.record.has_value() && commands_pending_ > 0) {
      --commands_pending_;
      command_bytes_pending_ -= std::min(command_bytes_pending_, done.bytes);
    }
    slow = slow_;
  }
  if (done.answers) Answered();
  if (ok && !payload.empty()) edge_->metrics().PeerMessage(Direction::kOut, payload, message_bytes);
  if (done.record.has_value()) {
    if (ok) {
      edge_->CountDelivered();
      edge_->metrics().CommandDelivered(edge_->clock().Now() - done.queued_at);
      if (done.done) done.done();
    } else {
      edge_->DeadLetter(slow ? DeadLetterReason::kPeerSlow : DeadLetterReason::kPeerWriteFailed,
                        slow ? "the peer was disconnected for reading too slowly"
                             : "writing to the peer's stream failed",
                        peer_id_, std::move(*done.record), std::move(done.done));
    }
  }
  if (ok) Pump();
}

void PeerSession::End(absl::Status status, const char* reason) {
  std::shared_ptr<PeerStream> stream;
  bool publish = false;
  PeerClaim claim;
  {
    absl::MutexLock lock(&mu_);
    if (state_ == State::kEnding || state_ == State::kEnded || end_reason_ != nullptr) return;
    end_reason_ = reason;
    if (state_ == State::kActive && !disconnected_published_) {
      disconnected_published_ = true;
      disconnected_pending_ = true;
      publish = true;
      claim = claim_;
    }
    state_ = State::kEnding;
    stream = stream_;
  }
  edge_->log().Info("ending peer stream",
                    {{"peer_id", peer_id_}, {"reason", reason}, {"status", status.ToString()}});
  if (publish) PublishDisconnected(reason, claim);
  if (stream != nullptr) stream->Finish(std::move(status));
}

namespace {

// The lifecycle reason of a stream the transport ended because of what the
// peer sent (kEndReasonPayload); `stream_closed` for any other end the
// session did not ask for.
const char* TransportEndReason(const absl::Status& status) {
  auto reason = status.GetPayload(kEndReasonPayload);
  if (!reason.has_value()) return "stream_closed";
  for (const char* known : {"invalid_utf8", "invalid_message"}) {
    if (*reason == known) return known;
  }
  return "stream_closed";
}

}  // namespace

void PeerSession::OnEnd(absl::Status status) {
  std::list<Outgoing> undelivered;
  bool publish = false;
  bool slow;
  bool was_connected;
  const char* reason;
  PeerClaim claim;
  {
    absl::MutexLock lock(&mu_);
    was_connected = activated_;
    reason = end_reason_ != nullptr ? end_reason_ : TransportEndReason(status);
    publish = !disconnected_published_;
    disconnected_published_ = true;
    if (publish) disconnected_pending_ = true;
    state_ = State::kEnded;
    undelivered.swap(queue_);
    slow = slow_;
    claim = claim_;
    stream_ = nullptr;  // Breaks the stream <-> observer cycle.
  }
  if (publish) PublishDisconnected(reason, claim);
  if (was_connected) edge_->metrics().PeerDisconnected(edge_->clock().Now() - connected_at_);
  while (!undelivered.empty()) {
    Outgoing& lost = undelivered.front();
    if (lost.record.has_value()) {
      edge_->DeadLetter(slow ? DeadLetterReason::kPeerSlow : DeadLetterReason::kPeerWriteFailed,
                        slow ? "the peer was disconnected for reading too slowly"
                             : "the peer's stream ended before the command was written",
                        peer_id_, std::move(*lost.record), std::move(lost.done));
    }
    undelivered.pop_front();
  }
  edge_->log().Debug("peer stream ended",
                     {{"peer_id", peer_id_}, {"reason", reason}, {"status", status.ToString()}});
  edge_->webrtc().OnPeerGone(peer_id_);
  bool finish;
  {
    absl::MutexLock lock(&mu_);
    finish = !disconnected_pending_ && !finished_;
    if (finish) finished_ = true;
  }
  if (finish) edge_->OnSessionEnded(shared_from_this());
}

void PeerSession::PublishDisconnected(const char* reason, PeerClaim claim) {
  edge_->Publish(
      edge_->options().topics.lifecycle, peer_id_,
      DisconnectedEvent(HostEventHeader(*edge_, peer_id_), reason, connected_at_, claim.epoch),
      [self = shared_from_this()](absl::Status status) {
        self->OnDisconnectedStored(std::move(status));
      });
}

void PeerSession::OnDisconnectedStored(absl::Status status) {
  if (!status.ok()) {
    // The claim is released all the same: keeping it would lock the peer
    // out of the cluster while this edge lives.
    edge_->log().Error("disconnected event not stored",
                       {{"peer_id", peer_id_}, {"status", status.ToString()}});
  }
  bool finish;
  {
    absl::MutexLock lock(&mu_);
    disconnected_pending_ = false;
    finish = state_ == State::kEnded && !finished_;
    if (finish) finished_ = true;
  }
  if (finish) edge_->OnSessionEnded(shared_from_this());
}

bool PeerSession::stream_ended() {
  std::shared_ptr<PeerStream> stream;
  {
    absl::MutexLock lock(&mu_);
    stream = stream_;
  }
  return stream == nullptr || stream->ended();
}

bool PeerSession::TakeCallToken() {
  const absl::Time now = edge_->clock().Now();
  absl::MutexLock lock(&mu_);
  return TakeToken(now);
}

bool PeerSession::TakeToken(absl::Time now) {
  double rate = edge_->options().peer_max_messages_per_sec;
  if (rate <= 0) return true;
  tokens_ = std::min(rate, tokens_ + rate * absl::ToDoubleSeconds(now - tokens_at_));
  tokens_at_ = now;
  if (tokens_ < 1) return false;
  tokens_ -= 1;
  return true;
}

bool PeerSession::OnMessage(PeerMessage message) {
  absl::Time now = edge_->clock().Now();
  last_activity_ns_.store(absl::ToUnixNanos(now), std::memory_order_relaxed);
  edge_->CountPeerMessage(SessionHost::PeerMessageKind::kRead);
  if (HostMetricsEnabled(*edge_)) {
    edge_->metrics().PeerMessage(Direction::kIn, PayloadName(message), message.ByteSizeLong());
  }
  bool solicited = false;
  bool over_limit;
  std::shared_ptr<PeerStream> stream;
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kActive) return true;  // Ending: nothing more to do.
    over_limit = !TakeToken(now);
    if (message.has_catalog_announcement() && !message.request_id().empty()) {
      solicited = pending_pulls_.erase(message.request_id()) > 0;
    }
    stream = stream_;
  }
  if (over_limit) {
    edge_->metrics().Error("rate_limited");
    End(absl::ResourceExhaustedError(
            absl::StrCat("more than ", edge_->options().peer_max_messages_per_sec,
                         " messages per second (PEER_MAX_MESSAGES_PER_SEC)")),
        "error");
    return true;
  }
  Publish(message, solicited);
  bool window_open;
  {
    absl::MutexLock lock(&mu_);
    window_open = unanswered_ < edge_->options().peer_send_queue_max;
    if (!window_open) paused_for_answers_ = true;
  }
  bool bus_open = stream == nullptr || edge_->KeepReading(stream);
  return window_open && bus_open;
}

void PeerSession::Publish(const PeerMessage& message, bool solicited_catalog) {
  const Topics& topics = edge_->options().topics;
  const std::string& request_id = message.request_id();
  EventHeader header = HostEventHeader(*edge_, peer_id_);
  const std::string* topic;
  std::string value;
  std::vector<std::string> parts;  // A catalog update split to fit the bus.
  const size_t max_bytes = edge_->options().max_event_bytes;
  bool ack = !request_id.empty();
  switch (message.payload_case()) {
    case PeerMessage::kFileDeleteResponse:
      topic = &topics.file_delete_responses;
      value = FileDeleteEvent(header, request_id, message.file_delete_response());
      break;
    case PeerMessage::kFileHashResponse:
      topic = &topics.file_hash_responses;
      value = FileHashEvent(header, request_id, message.file_hash_response());
      break;
    case PeerMessage::kCatalogAnnouncement:
      if (message.catalog_announcement().catalog_ids().empty() && !solicited_catalog) {
        // Keepalive (§1): acknowledged at once, published nowhere.
        edge_->CountPeerMessage(SessionHost::PeerMessageKind::kKeepalive);
        if (ack) {
          Count();
          SendAck(request_id);
        }
        return;
      }
      topic = &topics.catalog_updates;
      {
        auto events =
            CatalogUpdateEvents(header, request_id, message.catalog_announcement(), max_bytes);
        if (!events.ok()) {
          RefuseUnpublishable(events.status());
          return;
        }
        parts = *std::move(events);
      }
      break;
    case PeerMessage::kBatchFileOffer:
      topic = &topics.file_offers;
      value = FileOfferEvent(header, request_id, message.batch_file_offer());
      ack = false;  // Answered by a later batch_file_offer_response command.
      break;
    case PeerMessage::kWebrtc:
      topic = &topics.webrtc_signaling;
      value = WebRtcEvent(header, message.webrtc(), WebRtcOrigin::kStream);
      edge_->webrtc().Touch(WebRtcSessionId(message.webrtc()));
      break;
    default:
      edge_->CountPeerMessage(SessionHost::PeerMessageKind::kUnknown);
      edge_->log().Debug("peer message without a known payload", {{"peer_id", peer_id_}});
      return;
  }
  if (parts.empty() && max_bytes > 0 && value.size() > max_bytes) {
    RefuseUnpublishable(absl::ResourceExhaustedError(absl::StrCat(
        "the event for this ", PayloadName(message), " message would take ", value.size(),
        " bytes, over the event bus's limit of ", max_bytes, " bytes; it was not published")));
    return;
  }
  Count();
  std::weak_ptr<PeerSession> weak = weak_from_this();
  if (parts.empty()) {  // One event, the common case: no shared progress.
    edge_->Publish(*topic, peer_id_, std::move(value),
                   [weak, ack, request_id](absl::Status status) {
                     if (auto self = weak.lock()) self->OnPublished(ack && status.ok(), request_id);
                   });
    return;
  }
  // Acknowledged once every part is stored.
  struct Progress {
    std::atomic<size_t> left;
    std::atomic<bool> failed{false};
  };
  auto progress = std::make_shared<Progress>();
  progress->left = parts.size();
  for (std::string& part : parts) {
    edge_->Publish(*topic, peer_id_, std::move(part),
                   [weak, ack, request_id, progress](absl::Status status) {
                     if (!status.ok()) progress->failed = true;
                     if (progress->left.fetch_sub(1) != 1) return;
                     if (auto self = weak.lock()) {
                       self->OnPublished(ack && !progress->failed, request_id);
                     }
                   });
  }
}

void PeerSession::OnPublished(bool ack, const std::string& request_id) {
  if (ack) {
    SendAck(request_id);
  } else {
    Answered();  // Nothing to acknowledge (unstored: the peer retries).
  }
}

void PeerSession::RefuseUnpublishable(absl::Status status) {
  edge_->log().Warn("ending a peer whose message cannot be published",
                    {{"peer_id", peer_id_}, {"status", status.ToString()}});
  End(std::move(status), "error");
}

}  // namespace edge
