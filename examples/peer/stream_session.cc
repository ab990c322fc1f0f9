#include "stream_session.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace edge {
namespace example {
namespace {

// The media section of the first m= line of `sdp` ("a=mid:..."), or "0".
std::string FirstMid(const std::string& sdp) {
  for (absl::string_view line : absl::StrSplit(sdp, '\n')) {
    line = absl::StripTrailingAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "a=mid:") && !line.empty()) {
      return std::string(line);
    }
  }
  return "0";
}

// A made-up answer: this peer sends one H.264 video track in the offer's
// media section.
std::string AnswerSdp(const std::string& session_id, const std::string& mid) {
  return absl::StrCat(
      "v=0\r\n"
      "o=- ",
      session_id,
      " 2 IN IP4 127.0.0.1\r\n"
      "s=-\r\n"
      "t=0 0\r\n"
      "a=group:BUNDLE ",
      mid,
      "\r\n"
      "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
      "c=IN IP4 0.0.0.0\r\n"
      "a=mid:",
      mid,
      "\r\n"
      "a=sendonly\r\n"
      "a=rtpmap:96 H264/90000\r\n");
}

absl::Status Unfit(absl::string_view what) { return absl::InvalidArgumentError(what); }

}  // namespace

std::string SessionIdOf(const EdgeWebRTCMessage& message) {
  switch (message.payload_case()) {
    case EdgeWebRTCMessage::kStreamSessionRequest:
      return message.stream_session_request().session_id();
    case EdgeWebRTCMessage::kSdpAnswer:
      return message.sdp_answer().session_id();
    case EdgeWebRTCMessage::kIceCandidate:
      return message.ice_candidate().session_id();
    default:
      return "";
  }
}

StreamSession::StreamSession(std::string catalog_id, std::function<std::string()> new_id)
    : catalog_id_(std::move(catalog_id)), new_id_(std::move(new_id)), session_id_(new_id_()) {}

EdgeWebRTCMessage StreamSession::Request() {
  EdgeWebRTCMessage request;
  request.set_request_id(new_id_());
  auto* open = request.mutable_stream_session_request();
  open->set_catalog_id(catalog_id_);
  open->set_session_id(session_id_);
  absl::MutexLock lock(&mu_);
  request_id_ = request.request_id();
  state_ = State::kRequested;
  return request;
}

absl::StatusOr<EdgeWebRTCMessage> StreamSession::OnOffer(const PeerWebRTCMessage& reply) {
  absl::MutexLock lock(&mu_);
  if (state_ != State::kRequested) {
    return absl::FailedPreconditionError("no session request is waiting");
  }
  if (reply.request_id() != request_id_) {
    FailLocked(Unfit(absl::StrCat("the reply's request_id \"", reply.request_id(), "\" is not \"",
                                  request_id_, "\"")));
    return error_;
  }
  if (reply.has_stream_session_response()) {
    const auto& response = reply.stream_session_response();
    FailLocked(absl::FailedPreconditionError(absl::StrCat(
        "the backend refused the session",
        response.has_error()
            ? absl::StrCat(": ", giggityflix_grpc_peer::CatalogErrorReason_Name(response.error()))
            : "")));
    return error_;
  }
  if (!reply.has_sdp_offer()) {
    FailLocked(Unfit("the reply is neither an sdp_offer nor a refusal"));
    return error_;
  }
  if (reply.sdp_offer().session_id() != session_id_) {
    FailLocked(
        Unfit(absl::StrCat("the offer is for session \"", reply.sdp_offer().session_id(), "\"")));
    return error_;
  }
  offer_sdp_ = reply.sdp_offer().sdp();
  sdp_mid_ = FirstMid(offer_sdp_);
  EdgeWebRTCMessage answer;
  answer.set_request_id(new_id_());
  answer.mutable_sdp_answer()->set_session_id(session_id_);
  answer.mutable_sdp_answer()->set_sdp(AnswerSdp(session_id_, sdp_mid_));
  state_ = State::kAnswered;
  return answer;
}

absl::Status StreamSession::OnAcknowledged(const EdgeWebRTCMessage& sent,
                                           const PeerWebRTCMessage& reply) {
  absl::MutexLock lock(&mu_);
  const auto& response = reply.stream_session_response();
  if (reply.request_id() != sent.request_id() || !reply.has_stream_session_response() ||
      response.session_id() != session_id_ || !response.success()) {
    absl::Status unfit = Unfit(absl::StrCat(
        "expected stream_session_response{session_id: \"", session_id_,
        "\", success: true} for request ", sent.request_id(), ", got: ", reply.ShortDebugString()));
    FailLocked(unfit);
    return unfit;
  }
  if (sent.has_sdp_answer() && state_ == State::kAnswered) {
    state_ = State::kConnected;
  }
  return absl::OkStatus();
}

std::vector<EdgeWebRTCMessage> StreamSession::LocalCandidates() {
  std::string mid;
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kConnected) return {};
    mid = sdp_mid_;
  }
  std::vector<EdgeWebRTCMessage> candidates;
  for (int i = 0; i < kLocalCandidates; ++i) {
    EdgeWebRTCMessage& message = candidates.emplace_back();
    message.set_request_id(new_id_());
    ICECandidate* candidate = message.mutable_ice_candidate();
    candidate->set_session_id(session_id_);
    // Host candidates on documentation addresses (RFC 5737).
    candidate->set_candidate(absl::StrCat("candidate:", i + 1, " 1 udp 2122260223 192.0.2.", 10 + i,
                                          " ", 50000 + i, " typ host"));
    candidate->set_sdp_mid(mid);
    candidate->set_sdp_m_line_index(0);
  }
  return candidates;
}

std::string StreamSession::OnRemote(const EdgeWebRTCMessage& message) {
  absl::MutexLock lock(&mu_);
  if (!message.has_ice_candidate()) {
    return absl::StrCat("webrtc for session ", session_id_, " with an unexpected payload, ignored");
  }
  const ICECandidate& candidate = message.ice_candidate();
  remote_.push_back(candidate);
  if (candidate.candidate().empty()) {
    return absl::StrCat("session ", session_id_, ": the backend has no more candidates");
  }
  return absl::StrCat("session ", session_id_, ": backend candidate ", remote_.size(), " \"",
                      candidate.candidate(), "\" (mid ", candidate.sdp_mid(), ")");
}

void StreamSession::Fail(absl::Status error) {
  absl::MutexLock lock(&mu_);
  FailLocked(std::move(error));
}

void StreamSession::FailLocked(absl::Status error) {
  if (state_ == State::kFailed) return;
  state_ = State::kFailed;
  error_ = std::move(error);
}

StreamSession::State StreamSession::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

absl::Status StreamSession::error() const {
  absl::MutexLock lock(&mu_);
  return error_;
}

std::string StreamSession::offer_sdp() const {
  absl::MutexLock lock(&mu_);
  return offer_sdp_;
}

std::vector<ICECandidate> StreamSession::remote_candidates() const {
  absl::MutexLock lock(&mu_);
  return remote_;
}

}  // namespace example
}  // namespace edge
