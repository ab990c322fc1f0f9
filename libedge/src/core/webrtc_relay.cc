#include "webrtc_relay.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "edge/ids.h"
#include "events.h"
#include "session_host.h"

namespace edge {

void WebRtcRelay::OnCall(const std::string& peer_id, EdgeWebRTCMessage request, WebRtcReply reply) {
  if (WebRtcSessionId(request).empty()) {
    reply(
        absl::InvalidArgumentError("the WebRTC message needs a payload with a session_id "
                                   "(stream_session_request, sdp_answer or ice_candidate)"));
    return;
  }
  if (request.request_id().empty()) request.set_request_id(NewRequestId());
  if (request.has_stream_session_request()) {
    OpenSession(peer_id, std::move(request), std::move(reply));
  } else {
    ContinueSession(peer_id, std::move(request), std::move(reply));
  }
}

void WebRtcRelay::OpenSession(const std::string& peer_id, EdgeWebRTCMessage request,
                              WebRtcReply reply) {
  const std::string request_id = request.request_id();
  const std::string session_id = request.stream_session_request().session_id();
  absl::Time now = edge_->clock().Now();
  absl::Status refused;
  {
    // One section: two calls racing with the same request_id (or two peers
    // with the same session_id) cannot both register.
    absl::MutexLock lock(&mu_);
    auto existing = sessions_.find(session_id);
    if (pending_.contains(request_id)) {
      refused = absl::AlreadyExistsError(
          absl::StrCat("a WebRTC call with request_id \"", request_id, "\" is already pending"));
    } else if (existing != sessions_.end() && existing->second.peer_id != peer_id) {
      refused = absl::AlreadyExistsError(
          absl::StrCat("session \"", session_id, "\" belongs to another peer"));
    } else if (auto mine = sessions_by_peer_.find(peer_id);
               existing == sessions_.end() && mine != sessions_by_peer_.end() &&
               mine->second.size() >=
                   static_cast<size_t>(edge_->options().webrtc_max_sessions_per_peer)) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("this peer already has ", mine->second.size(),
                       " open WebRTC sessions, the most it may (WEBRTC_MAX_SESSIONS_PER_PEER)"));
    } else if (existing != sessions_.end() &&
               existing->second.pending.size() >= kMaxPendingPerSession) {
      refused = absl::ResourceExhaustedError(
          absl::StrCat("session \"", session_id, "\" already has ", kMaxPendingPerSession,
                       " stream_session_request calls waiting for their reply"));
    } else {
      Session& session = sessions_[session_id];
      session.peer_id = peer_id;
      session.last_activity = now;
      session.pending.insert(request_id);
      sessions_by_peer_[peer_id].insert(session_id);
      // Registered before the publish: a fast backend may answer at once.
      Pending& pending = pending_[request_id];
      pending.peer_id = peer_id;
      pending.session_id = session_id;
      pending.reply = std::move(reply);
    }
  }
  if (!refused.ok()) {
    reply(std::move(refused));
    return;
  }
  Clock::TimerId timer = edge_->clock().RunAt(now + edge_->options().webrtc_reply_timeout,
                                              [this, request_id] { TimeOut(request_id); });
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(request_id);
    if (it != pending_.end()) it->second.timer = timer;  // Else answered already.
  }
  // The peer may have gone between the caller's check and the registration:
  // then OnPeerGone already ran and would not fail this call; do it now.
  if (!edge_->PeerActive(peer_id)) {
    OnPeerGone(peer_id);
    return;
  }
  std::string event = WebRtcEvent(HostEventHeader(*edge_, peer_id), request, WebRtcOrigin::kCall);
  edge_->Publish(edge_->options().topics.webrtc_signaling, peer_id, std::move(event),
                 [this, request_id](absl::Status status) {
                   if (status.ok()) return;
                   WebRtcReply reply;
                   {
                     absl::MutexLock lock(&mu_);
                     auto it = pending_.find(request_id);
                     if (it == pending_.end()) return;
                     edge_->clock().Cancel(it->second.timer);
                     reply = std::move(it->second.reply);
                     ErasePendingLocked(it);
                   }
                   reply(absl::UnavailableError(absl::StrCat(
                       "the session request could not be published: ", status.message())));
                 });
}

void WebRtcRelay::ContinueSession(const std::string& peer_id, EdgeWebRTCMessage request,
                                  WebRtcReply reply) {
  const std::string session_id = WebRtcSessionId(request);
  bool open;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(session_id);
    open = it != sessions_.end() && it->second.peer_id == peer_id;
    if (open) it->second.last_activity = edge_->clock().Now();
  }
  if (!open) {
    reply(absl::NotFoundError(absl::StrCat("no open WebRTC session \"", session_id,
                                           "\" for this peer (unknown or expired)")));
    return;
  }
  const bool is_answer = request.has_sdp_answer();
  PeerWebRTCMessage ok;
  ok.set_request_id(request.request_id());
  ok.mutable_stream_session_response()->set_session_id(session_id);
  ok.mutable_stream_session_response()->set_success(true);
  std::string event = WebRtcEvent(HostEventHeader(*edge_, peer_id), request, WebRtcOrigin::kCall);
  edge_->Publish(edge_->options().topics.webrtc_signaling, peer_id, std::move(event),
                 [this, is_answer, session_id, peer_id, ok = std::move(ok),
                  reply = std::move(reply)](absl::Status status) mutable {
                   if (!status.ok()) {
                     reply(absl::UnavailableError(absl::StrCat(
                         "the WebRTC message could not be published: ", status.message())));
                     return;
                   }
                   reply(std::move(ok));
                   if (is_answer) ReleaseHeld(peer_id, session_id);
                 });
}

// The answer is out: candidates held for the session go to the peer, in
// order. The session counts as answered only once none are left, so that a
// candidate the consumer thread routes meanwhile is held behind them rather
// than sent ahead of them; one release runs at a time per session.
void WebRtcRelay::ReleaseHeld(const std::string& peer_id, const std::string& session_id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end() || it->second.answered || it->second.releasing) return;
    it->second.releasing = true;
  }
  while (true) {
    std::deque<Held> held;
    {
      absl::MutexLock lock(&mu_);
      auto it = sessions_.find(session_id);
      if (it == sessions_.end()) return;
      if (it->second.held.empty()) {
        it->second.answered = true;
        it->second.releasing = false;
        return;
      }
      held.swap(it->second.held);
    }
    for (Held& h : held) {
      edge_->SendToPeer(peer_id, std::move(h.message), std::move(h.record), std::move(h.done));
    }
  }
}

bool WebRtcRelay::OnReply(const std::string& request_id, PeerWebRTCMessage reply) {
  WebRtcReply call;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end()) return false;
    edge_->clock().Cancel(it->second.timer);
    call = std::move(it->second.reply);
    auto session = sessions_.find(it->second.session_id);
    if (session != sessions_.end()) session->second.last_activity = edge_->clock().Now();
    ErasePendingLocked(it);
  }
  call(std::move(reply));
  return true;
}

void WebRtcRelay::TimeOut(const std::string& request_id) {
  WebRtcReply call;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(request_id);
    if (it == pending_.end()) return;
    call = std::move(it->second.reply);
    ErasePendingLocked(it);
  }
  call(absl::DeadlineExceededError(
      absl::StrCat("no webrtc_reply from the backend within ",
                   absl::FormatDuration(edge_->options().webrtc_reply_timeout))));
}

bool WebRtcRelay::HoldIfEarly(const std::string& peer_id, EdgeMessage& message,
                              IncomingRecord& record, RecordDone& done) {
  if (!message.webrtc().has_ice_candidate()) return false;
  const std::string& session_id = message.webrtc().ice_candidate().session_id();
  bool overflow = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = sessions_.find(session_id);
    if (it == sessions_.end() || it->second.answered || it->second.peer_id != peer_id) return false;
    if (it->second.held.size() >= kMaxHeldCandidates) {
      overflow = true;
    } else {
      it->second.last_activity = edge_->clock().Now();
      it->second.held.push_back(Held{std::move(message), std::move(record), std::move(done)});
    }
  }
  if (overflow) {
    edge_->DeadLetter(
        DeadLetterReason::kInvalidCommand,
        absl::StrCat("more than ", kMaxHeldCandidates, " ICE candidates for session \"", session_id,
                     "\" before the peer's answer"),
        peer_id, record, std::move(done));
  }
  return true;
}

void WebRtcRelay::Touch(const std::string& session_id) {
  if (session_id.empty()) return;
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(session_id);
  if (it != sessions_.end()) it->second.last_activity = edge_->clock().Now();
}

void WebRtcRelay::ErasePendingLocked(absl::flat_hash_map<std::string, Pending>::iterator it) {
  auto session = sessions_.find(it->second.session_id);
  if (session != sessions_.end()) session->second.pending.erase(it->first);
  pending_.erase(it);
}

void WebRtcRelay::EndSessions(const std::vector<std::string>& session_ids, const char* why) {
  std::vector<WebRtcReply> calls;
  std::vector<std::pair<std::string, Held>> held;  // (peer_id, candidate)
  {
    absl::MutexLock lock(&mu_);
    for (const std::string& id : session_ids) {
      auto it = sessions_.find(id);
      if (it == sessions_.end()) continue;
      Session& session = it->second;
      for (Held& h : session.held) held.emplace_back(session.peer_id, std::move(h));
      for (const std::string& request_id : session.pending) {
        auto pending = pending_.find(request_id);
        if (pending == pending_.end()) continue;
        edge_->clock().Cancel(pending->second.timer);
        calls.push_back(std::move(pending->second.reply));
        pending_.erase(pending);
      }
      auto mine = sessions_by_peer_.find(session.peer_id);
      if (mine != sessions_by_peer_.end()) {
        mine->second.erase(id);
        if (mine->second.empty()) sessions_by_peer_.erase(mine);
      }
      sessions_.erase(it);
    }
  }
  for (WebRtcReply& call : calls) call(absl::UnavailableError(why));
  for (auto& [peer_id, h] : held) {
    edge_->DeadLetter(DeadLetterReason::kPeerNotConnected, why, peer_id, h.record,
                      std::move(h.done));
  }
}

void WebRtcRelay::OnPeerGone(const std::string& peer_id) {
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    auto mine = sessions_by_peer_.find(peer_id);
    if (mine == sessions_by_peer_.end()) return;
    ids.assign(mine->second.begin(), mine->second.end());
  }
  EndSessions(ids, "the peer disconnected; its WebRTC sessions ended");
}

void WebRtcRelay::ExpireIdle(absl::Time now) {
  const absl::Duration ttl = edge_->options().webrtc_session_ttl;
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, session] : sessions_) {
      if (now - session.last_activity >= ttl) ids.push_back(id);
    }
  }
  EndSessions(ids, "the WebRTC session expired (WEBRTC_SESSION_TTL_SEC)");
}

void WebRtcRelay::Shutdown() {
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, session] : sessions_) ids.push_back(id);
  }
  EndSessions(ids, "the edge is shutting down");
}

size_t WebRtcRelay::sessions() {
  absl::MutexLock lock(&mu_);
  return sessions_.size();
}

size_t WebRtcRelay::pending_calls() {
  absl::MutexLock lock(&mu_);
  return pending_.size();
}

}  // namespace edge
