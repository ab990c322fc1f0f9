#include "edge_impl.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "edge/ids.h"

namespace edge {

absl::StatusOr<std::unique_ptr<Edge>> Edge::Create(EdgeOptions options, EdgeParts parts) {
  if (parts.transport == nullptr || parts.bus == nullptr || parts.tracker == nullptr ||
      parts.clock == nullptr) {
    return absl::InvalidArgumentError("Edge needs a transport, a bus, a tracker and a clock");
  }
  if (auto valid = ValidatePeerId(options.edge_id, "edge_id"); !valid.ok()) return valid;
  if (options.topics.commands.empty() || options.topics.deadletter.empty()) {
    return absl::InvalidArgumentError("Edge needs its command and dead-letter topics");
  }
  if (options.max_peers < 1) return absl::InvalidArgumentError("max_peers must be at least 1");
  if (options.peer_send_queue_max < 1) {
    return absl::InvalidArgumentError("peer_send_queue_max must be at least 1");
  }
  if (options.peer_send_queue_max_bytes < 1) {
    return absl::InvalidArgumentError("peer_send_queue_max_bytes must be at least 1");
  }
  if (options.peer_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("peer_timeout must be positive");
  }
  if (options.drain_rate_per_sec < 1) {
    return absl::InvalidArgumentError("drain_rate_per_sec must be at least 1");
  }
  if (parts.logger == nullptr) parts.logger = &Logger::Null();
  if (parts.metrics == nullptr) parts.metrics = &NullMetrics();
  return std::unique_ptr<Edge>(new EdgeImpl(std::move(options), parts));
}

EdgeImpl::EdgeImpl(EdgeOptions options, EdgeParts parts)
    : options_(std::move(options)),
      parts_(parts),
      webrtc_(this),
      stream_tokens_(options_.max_new_streams_per_sec),
      stream_tokens_at_(parts_.clock->Now()) {}

EdgeImpl::~EdgeImpl() { Shutdown(parts_.clock->Now() + absl::Seconds(5)); }

absl::Status EdgeImpl::Start() {
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("edge already started");
    started_ = true;
  }
  parts_.bus->SetDrainListener([this] {
    // Commands' records first: each holds a command's outcome, so its commit.
    RunWaitingPublishes(/*force=*/false);
    ResumePaused();
  });
  parts_.tracker->SetLostListener([this](const std::string& peer_id) { OnClaimLost(peer_id); });
  parts_.tracker->SetLostClaimListener(
      [this](const LostClaim& lost, Tracker::LostClaimDone published) {
        PublishEdgeLost(lost, std::move(published));
      });
  absl::Status status = parts_.bus->Subscribe(
      options_.topics.commands, [this](IncomingRecord record, RecordDone done) {
        router_.OnCommand(std::move(record), std::move(done));
      });
  if (status.ok()) status = parts_.bus->Start();
  if (status.ok()) status = parts_.tracker->Start();
  if (status.ok()) status = parts_.transport->Start(this);
  if (!status.ok()) return status;
  ScheduleSweep();
  log().Info("edge started",
             {{"edge_id", options_.edge_id}, {"commands_topic", options_.topics.commands}});
  return absl::OkStatus();
}

// --- admission (contract §2) ---

absl::Status EdgeImpl::CheckAdmission(const PeerCallInfo& info) {
  if (!info.has_peer_id || info.peer_id.empty()) {
    return absl::UnauthenticatedError("peer_id metadata is missing or empty");
  }
  if (auto valid = ValidatePeerId(info.peer_id); !valid.ok()) return valid;
  if (options_.peer_id_from_cert && info.cert_identity != info.peer_id) {
    return absl::PermissionDeniedError(absl::StrCat(
        "peer_id \"", info.peer_id, "\" does not match the client certificate identity \"",
        info.cert_identity, "\""));
  }
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("edge is shutting down");
    if (draining_) return absl::UnavailableError("edge is draining");
    if (!TakeStreamTokenLocked()) {
      return absl::UnavailableError(
          absl::StrCat("edge admits at most ", options_.max_new_streams_per_sec,
                       " new streams per second (MAX_NEW_STREAMS_PER_SEC); retry shortly"));
    }
  }
  if (parts_.bus->Saturated()) return absl::UnavailableError("edge event buffer is full");
  return absl::OkStatus();
}

bool EdgeImpl::TakeStreamTokenLocked() {
  const double rate = options_.max_new_streams_per_sec;
  if (rate <= 0) return true;
  absl::Time now = parts_.clock->Now();
  stream_tokens_ =
      std::min(rate, stream_tokens_ + rate * absl::ToDoubleSeconds(now - stream_tokens_at_));
  stream_tokens_at_ = now;
  if (stream_tokens_ < 1) return false;
  stream_tokens_ -= 1;
  return true;
}

void EdgeImpl::Reject(AdmissionDecision& decide, absl::Status status) {
  counters_.rejected.fetch_add(1, std::memory_order_relaxed);
  metrics().Admission(status.code());
  decide(std::move(status));
}

void EdgeImpl::OnStreamStart(std::shared_ptr<PeerStream> stream, AdmissionDecision decide) {
  const PeerCallInfo& info = stream->info();
  if (absl::Status status = CheckAdmission(info); !status.ok()) {
    log().Debug("peer refused", {{"peer_id", info.peer_id}, {"status", status.ToString()}});
    Reject(decide, std::move(status));
    return;
  }
  auto session = std::make_shared<PeerSession>(this, stream, info.peer_id, parts_.clock->Now());
  std::shared_ptr<PeerSession> replaced;
  absl::Status refused;
  // Counting descriptors may take milliseconds near the limit: never under
  // the registry lock.
  const bool fd_headroom = !options_.has_descriptor_headroom || options_.has_descriptor_headroom();
  {
    absl::MutexLock lock(&mu_);
    auto it = peers_.find(info.peer_id);
    bool duplicate = it != peers_.end();
    // Capacity comes before the duplicate check (contract §2), for both
    // duplicate policies: a full edge refuses even a stream that would
    // replace one it holds.
    if (peers_.size() >= static_cast<size_t>(options_.max_peers)) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("edge holds its maximum of ", options_.max_peers, " peers"));
    } else if (!fd_headroom) {
      refused = absl::ResourceExhaustedError("edge has too few file descriptors left");
    } else if (duplicate && it->second->ending()) {
      // The old stream has ended and published its `disconnected`; only its
      // release waits for the bus to store it. The new stream makes its own
      // claim (a newer epoch), published after that `disconnected` on this
      // edge's producer; the old release then leaves the new claim alone.
      it->second = session;
    } else if (duplicate &&
               (options_.duplicate_policy == DuplicatePolicy::kReject || !it->second->active())) {
      refused = absl::AlreadyExistsError(
          absl::StrCat("peer_id \"", info.peer_id, "\" is already connected to this edge"));
    } else if (duplicate) {
      replaced = std::move(it->second);
      it->second = session;
    } else {
      peers_.emplace(info.peer_id, session);
    }
  }
  if (!refused.ok()) {
    Reject(decide, std::move(refused));
    return;
  }
  if (replaced != nullptr) {
    // The old stream's `disconnected` is published now, before the new
    // stream claims: the new claim gets its own, greater epoch (§5), and the
    // old claim's late release cannot remove it (the tracker releases only
    // the claim named).
    replaced->End(absl::AbortedError("replaced by a newer stream of the same peer_id"), "replaced");
  }
  parts_.tracker->Claim(
      info.peer_id, parts_.clock->Now() + options_.tracker_timeout,
      [this, session, decide = std::move(decide)](absl::StatusOr<PeerClaim> claim) mutable {
        FinishAdmission(std::move(session), std::move(decide), std::move(claim));
      });
}

void EdgeImpl::FinishAdmission(std::shared_ptr<PeerSession> session, AdmissionDecision decide,
                               absl::StatusOr<PeerClaim> claim) {
  if (!claim.ok()) {
    bool unreachable =
        absl::IsUnavailable(claim.status()) || absl::IsDeadlineExceeded(claim.status());
    if (unreachable && options_.tracker_fail_open) {
      log().Warn("tracker unreachable; admitting (TRACKER_FAIL_OPEN)",
                 {{"peer_id", session->peer_id()}, {"status", claim.status().ToString()}});
      session->DisownClaim();
      claim = PeerClaim{};
    } else {
      Forget(session);
      absl::Status status = absl::IsAlreadyExists(claim.status())
                                ? claim.status()
                                : absl::UnavailableError(absl::StrCat("peer tracker unreachable: ",
                                                                      claim.status().message()));
      Reject(decide, std::move(status));
      return;
    }
  }
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    stopping = shutting_down_;
  }
  if (stopping) {
    Forget(session);
    if (session->owns_claim())
      parts_.tracker->Release(session->peer_id(), *claim, [](absl::Status) {});
    Reject(decide, absl::UnavailableError("edge is shutting down"));
    return;
  }
  // The peer reset or left while the tracker answered: it never became a
  // peer here, so it publishes nothing (no connected/disconnected pair for
  // each stream of an HTTP/2 rapid reset) and holds no claim.
  if (session->stream_ended()) {
    Forget(session);
    if (session->owns_claim())
      parts_.tracker->Release(session->peer_id(), *claim, [](absl::Status) {});
    counters_.rejected.fetch_add(1, std::memory_order_relaxed);
    decide(absl::CancelledError("the peer left before admission completed"));
    log().Debug("peer left before admission", {{"peer_id", session->peer_id()}});
    return;
  }
  counters_.admitted.fetch_add(1, std::memory_order_relaxed);
  metrics().Admission(absl::StatusCode::kOk);
  session->Activate(*claim);
  decide(std::shared_ptr<PeerStreamObserver>(session));
  if (options_.catalog_pull_on_connect) session->RequestCatalog();
  hold_.ReleaseHeld(session->peer_id());  // commands that waited for it (§4)
  log().Debug("peer admitted", {{"peer_id", session->peer_id()}});
}

std::shared_ptr<PeerSession> EdgeImpl::Find(const std::string& peer_id) {
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(peer_id);
  return it == peers_.end() ? nullptr : it->second;
}

void EdgeImpl::Forget(const std::shared_ptr<PeerSession>& session) {
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(session->peer_id());
  if (it != peers_.end() && it->second == session) peers_.erase(it);
}

std::vector<std::shared_ptr<PeerSession>> EdgeImpl::Sessions() {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<PeerSession>> all;
  all.reserve(peers_.size());
  for (const auto& [id, session] : peers_) all.push_back(session);
  return all;
}

void EdgeImpl::OnSessionEnded(const std::shared_ptr<PeerSession>& session) {
  // Called once the stream has ended and its `disconnected` is stored: only
  // now may the claim go (§5). Forget the session only once its claim is
  // released, so that a new stream of the same peer cannot claim before the
  // old claim is gone. At shutdown too: a claim left to the tracker's
  // shutdown would be a lost claim and get a second `disconnected`.
  if (!session->owns_claim()) {
    Forget(session);
    return;
  }
  parts_.tracker->Release(
      session->peer_id(), session->claim(), [this, session](absl::Status status) {
        if (!status.ok()) {
          metrics().Error("tracker_release");
          log().Warn("releasing a peer claim failed",
                     {{"peer_id", session->peer_id()}, {"status", status.ToString()}});
        }
        Forget(session);
      });
}

void EdgeImpl::OnClaimLost(const std::string& peer_id) {
  if (auto session = Find(peer_id)) {
    session->DisownClaim();
    session->End(absl::UnavailableError("this edge lost its claim on the peer"), "error");
  }
}

void EdgeImpl::PublishEdgeLost(const LostClaim& lost, Tracker::LostClaimDone published) {
  // Every event names its peer and edge: here the edge that held the claim.
  EventHeader header{lost.peer_id, lost.edge_id, parts_.clock->Now()};
  log().Warn(
      "publishing edge_lost for a claim its edge left behind",
      {{"peer_id", lost.peer_id}, {"edge_id", lost.edge_id}, {"epoch", absl::StrCat(lost.epoch)}});
  Publish(options_.topics.lifecycle, lost.peer_id,
          DisconnectedEvent(header, "edge_lost", lost.claimed_at, lost.epoch),
          [published = std::move(published)](absl::Status status) mutable {
            published(std::move(status));
          });
}

// --- events and backpressure (contract §3, §5) ---

void EdgeImpl::Publish(const std::string& topic, const std::string& key, std::string value,
                       PublishDone done) {
  OutgoingRecord record{topic, key, std::move(value), {}};
  parts_.bus->Publish(std::move(record),
                      [this, done = std::move(done)](absl::Status status) mutable {
                        if (status.ok())
                          counters_.events_published.fetch_add(1, std::memory_order_relaxed);
                        if (done) done(std::move(status));
                      });
}

void EdgeImpl::PublishForCommand(absl::AnyInvocable<void()> publish) {
  const bool saturated = parts_.bus->Saturated();
  {
    absl::MutexLock lock(&mu_);
    if (!shutting_down_ && (saturated || !waiting_publishes_.empty())) {
      waiting_publishes_.push_back(std::move(publish));
      publish = nullptr;
    }
  }
  if (publish) {
    publish();
    return;
  }
  // The bus may have drained between the check and the queueing.
  if (!parts_.bus->Saturated()) RunWaitingPublishes(/*force=*/false);
}

void EdgeImpl::RunWaitingPublishes(bool force) {
  while (force || !parts_.bus->Saturated()) {
    absl::AnyInvocable<void()> next;
    {
      absl::MutexLock lock(&mu_);
      if (waiting_publishes_.empty()) return;
      next = std::move(waiting_publishes_.front());
      waiting_publishes_.pop_front();
    }
    next();
  }
}

void EdgeImpl::SendToPeer(const std::string& peer_id, EdgeMessage message, IncomingRecord record,
                          RecordDone done) {
  std::shared_ptr<PeerSession> session = Find(peer_id);
  if (session == nullptr) {
    DeadLetter(DeadLetterReason::kPeerNotConnected, "the peer disconnected", peer_id,
               std::move(record), std::move(done));
    return;
  }
  session->SendCommand(std::move(message), std::move(record), std::move(done));
}

void EdgeImpl::CountDelivered() {
  counters_.commands_delivered.fetch_add(1, std::memory_order_relaxed);
  metrics().CommandOutcome("delivered");
}

void EdgeImpl::CountDeadLettered() {
  counters_.commands_deadlettered.fetch_add(1, std::memory_order_relaxed);
}

void EdgeImpl::CountForwarded() {
  counters_.commands_forwarded.fetch_add(1, std::memory_order_relaxed);
}

void EdgeImpl::CountPeerMessage(PeerMessageKind kind) {
  switch (kind) {
    case PeerMessageKind::kRead:
      counters_.messages_in.fetch_add(1, std::memory_order_relaxed);
      break;
    case PeerMessageKind::kKeepalive:
      counters_.keepalives.fetch_add(1, std::memory_order_relaxed);
      break;
    case PeerMessageKind::kUnknown:
      counters_.messages_unknown.fetch_add(1, std::memory_order_relaxed);
      break;
  }
}

bool EdgeImpl::KeepReading(const std::shared_ptr<PeerStream>& stream) {
  if (!parts_.bus->Saturated()) return true;
  {
    absl::MutexLock lock(&mu_);
    paused_.push_back(stream);
  }
  // The bus may have drained between the check and the registration.
  if (!parts_.bus->Saturated()) ResumePaused();
  return false;
}

void EdgeImpl::ResumePaused() {
  std::vector<std::shared_ptr<PeerStream>> paused;
  {
    absl::MutexLock lock(&mu_);
    paused.swap(paused_);
  }
  for (const auto& stream : paused) stream->ResumeReading();
}

// --- liveness, drain, shutdown (contract §7) ---

void EdgeImpl::ScheduleSweep() {
  absl::Duration period = std::min(absl::Seconds(1), options_.peer_timeout);
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return;
  sweep_timer_ = parts_.clock->RunAt(parts_.clock->Now() + period, [this] { Sweep(); });
}

void EdgeImpl::Sweep() {
  absl::Time now = parts_.clock->Now();
  for (const auto& session : Sessions()) {
    if (session->active() && now - session->last_activity() >= options_.peer_timeout) {
      session->End(
          absl::UnavailableError(absl::StrCat("no message from the peer for ",
                                              absl::FormatDuration(options_.peer_timeout))),
          "timeout");
    }
  }
  webrtc_.ExpireIdle(now);
  ScheduleSweep();
}

void EdgeImpl::Drain() {
  {
    absl::MutexLock lock(&mu_);
    if (draining_ || shutting_down_) return;
    draining_ = true;
  }
  log().Info("draining: refusing new peers and ending streams",
             {{"rate_per_sec", absl::StrCat(options_.drain_rate_per_sec)}});
  DrainStep();
}

bool EdgeImpl::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

void EdgeImpl::ScheduleDrainStep() {
  absl::MutexLock lock(&mu_);
  if (shutting_down_) return;
  drain_timer_ =
      parts_.clock->RunAt(parts_.clock->Now() + absl::Milliseconds(100), [this] { DrainStep(); });
}

// Ends a tenth of a second's worth of streams, then comes back.
void EdgeImpl::DrainStep() {
  int batch = std::max(1, options_.drain_rate_per_sec / 10);
  int ended = 0;
  for (const auto& session : Sessions()) {
    if (ended == batch) break;
    if (!session->active()) continue;
    session->End(absl::UnavailableError("edge is draining; reconnect to another edge"), "shutdown");
    ++ended;
  }
  if (ended > 0) ScheduleDrainStep();
}

void EdgeImpl::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_ || !started_) {
      shutting_down_ = true;
      return;
    }
    shutting_down_ = true;
    parts_.clock->Cancel(sweep_timer_);
    parts_.clock->Cancel(drain_timer_);
  }
  log().Info("shutting down", {{"peers", absl::StrCat(stats().peers)}});
  parts_.bus->StopConsuming();
  // What waits for room goes to the bus now, full or not, so that its
  // commands can still get their outcomes before the deadline; from here on
  // PublishForCommand publishes at once. Not after the streams' wait below:
  // a stream's end waits for its `disconnected` to be stored, which a full
  // buffer may hold back.
  RunWaitingPublishes(/*force=*/true);
  for (const auto& session : Sessions()) {
    session->End(absl::UnavailableError("edge is shutting down; reconnect to another edge"),
                 "shutdown");
  }
  // Give the streams half the time to end on their own with UNAVAILABLE,
  // then cancel what is left.
  absl::Duration left = deadline - parts_.clock->Now();
  {
    absl::MutexLock lock(&mu_);
    auto ended = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return peers_.empty(); };
    mu_.AwaitWithTimeout(absl::Condition(&ended), std::max(absl::ZeroDuration(), left / 2));
  }
  parts_.transport->Shutdown();
  webrtc_.Shutdown();
  hold_.StopHolding();
  parts_.bus->Shutdown(deadline);
  parts_.tracker->Shutdown(deadline);
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
  }
  log().Info("shut down");
}

bool EdgeImpl::Ready() const {
  {
    absl::MutexLock lock(&mu_);
    if (draining_ || shutting_down_ || !started_) return false;
  }
  return !parts_.bus->Saturated() && parts_.bus->Reading();
}

EdgeStats EdgeImpl::stats() const {
  EdgeStats s;
  {
    absl::MutexLock lock(&mu_);
    s.peers = static_cast<int64_t>(peers_.size());
  }
  const auto load = [](const std::atomic<int64_t>& v) { return v.load(std::memory_order_relaxed); };
  s.admitted = load(counters_.admitted);
  s.rejected = load(counters_.rejected);
  s.messages_in = load(counters_.messages_in);
  s.messages_unknown = load(counters_.messages_unknown);
  s.events_published = load(counters_.events_published);
  s.commands_delivered = load(counters_.commands_delivered);
  s.commands_deadlettered = load(counters_.commands_deadlettered);
  s.commands_forwarded = load(counters_.commands_forwarded);
  s.commands_held = hold_.held();
  s.keepalives = load(counters_.keepalives);
  return s;
}

// --- The operator's view (contract §10) ---

namespace {

PeerInfo InfoOf(PeerSession& session) {
  return PeerInfo{session.peer_id(), session.connected_at(), session.last_activity(),
                  session.claim().epoch};
}

}  // namespace

absl::StatusOr<PeerInfo> EdgeImpl::FindPeer(const std::string& peer_id) {
  std::shared_ptr<PeerSession> session = Find(peer_id);
  if (session == nullptr || !session->active()) {
    return absl::NotFoundError(absl::StrCat("peer ", peer_id, " is not connected to this edge"));
  }
  return InfoOf(*session);
}

std::vector<PeerInfo> EdgeImpl::ListPeers(const std::string& after, size_t limit) {
  std::vector<std::shared_ptr<PeerSession>> candidates;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, session] : peers_) {
      if (id > after) candidates.push_back(session);
    }
  }
  const auto by_id = [](const std::shared_ptr<PeerSession>& a,
                        const std::shared_ptr<PeerSession>& b) {
    return a->peer_id() < b->peer_id();
  };
  std::sort(candidates.begin(), candidates.end(), by_id);
  // Session locks are taken only after mu_ is released.
  std::vector<PeerInfo> page;
  for (const auto& session : candidates) {
    if (page.size() >= limit) break;
    if (session->active()) page.push_back(InfoOf(*session));
  }
  return page;
}

absl::Status EdgeImpl::Kick(const std::string& peer_id, const std::string& why) {
  std::shared_ptr<PeerSession> session = Find(peer_id);
  if (session == nullptr || !session->active()) {
    return absl::NotFoundError(absl::StrCat("peer ", peer_id, " is not connected to this edge"));
  }
  log().Info("peer kicked", {{"peer_id", peer_id}, {"why", why}});
  session->End(absl::AbortedError(why), "kicked");
  return absl::OkStatus();
}

// --- WebRTCOperations (contract §6) ---

void EdgeImpl::OnWebRtcCall(const PeerCallInfo& caller, EdgeWebRTCMessage request,
                            WebRtcReply reply) {
  if (!caller.has_peer_id || caller.peer_id.empty()) {
    reply(absl::UnauthenticatedError("peer_id metadata is missing or empty"));
    return;
  }
  if (auto valid = ValidatePeerId(caller.peer_id); !valid.ok()) {
    reply(valid);
    return;
  }
  if (options_.peer_id_from_cert && caller.cert_identity != caller.peer_id) {
    reply(absl::PermissionDeniedError("peer_id does not match the client certificate identity"));
    return;
  }
  auto session = Find(caller.peer_id);
  if (session == nullptr || !session->active()) {
    reply(absl::FailedPreconditionError(absl::StrCat(
        "peer \"", caller.peer_id, "\" is not connected to this edge through AsyncOperations")));
    return;
  }
  // Calls share the peer's message budget with its stream (contract §8,
  // PEER_MAX_MESSAGES_PER_SEC): excess is refused and the peer disconnected.
  if (!session->TakeCallToken()) {
    metrics().Error("rate_limited");
    absl::Status over = absl::ResourceExhaustedError(absl::StrCat(
        "more than ", options_.peer_max_messages_per_sec,
        " messages per second, WebRTCOperations calls included (PEER_MAX_MESSAGES_PER_SEC)"));
    session->End(over, "error");
    reply(std::move(over));
    return;
  }
  // Every call publishes (§6); a full event buffer refuses it like a new
  // peer (§2 row 4) rather than growing past its bound.
  if (parts_.bus->Saturated()) {
    reply(absl::UnavailableError("edge event buffer is full; retry shortly"));
    return;
  }
  webrtc_.OnCall(caller.peer_id, std::move(request), std::move(reply));
}

}  // namespace edge
