#include "example_peer.h"

#include <cstdint>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace edge {
namespace example {

using giggityflix_grpc_peer::FILE_GONE;

std::string NewRequestId() {
  thread_local std::mt19937_64 generator(std::random_device{}());
  uint64_t high = generator();
  uint64_t low = generator();
  high = (high & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  low = (low & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;    // variant 1
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", high >> 32, (high >> 16) & 0xffff,
                         high & 0xffff, low >> 48, low & 0xffffffffffffULL);
}

std::string FakeHash(absl::string_view hash_type, absl::string_view catalog_id) {
  uint64_t hash = 14695981039346656037ULL;
  auto mix = [&hash](absl::string_view bytes) {
    for (unsigned char c : bytes) {
      hash ^= c;
      hash *= 1099511628211ULL;
    }
  };
  mix(hash_type);
  mix(absl::string_view("\0", 1));
  mix(catalog_id);
  return absl::StrFormat("%016x", hash);
}

ExamplePeer::ExamplePeer(const std::vector<std::string>& catalog,
                         std::function<std::string()> new_request_id)
    : new_request_id_(std::move(new_request_id)), catalog_(catalog.begin(), catalog.end()) {}

PeerMessage ExamplePeer::Keepalive(absl::Time now) {
  PeerMessage message;
  message.set_request_id(new_request_id_());
  message.mutable_catalog_announcement();  // present, with no ids
  absl::MutexLock lock(&mu_);
  AwaitLocked(message.request_id(), now);
  return message;
}

PeerMessage ExamplePeer::Offer(const std::vector<FileInfo>& files, absl::Time now) {
  PeerMessage message;
  message.set_request_id(new_request_id_());
  for (const FileInfo& file : files) {
    *message.mutable_batch_file_offer()->add_files() = file;
  }
  absl::MutexLock lock(&mu_);
  AwaitLocked(message.request_id(), now);
  return message;
}

Outcome ExamplePeer::Handle(const EdgeMessage& message, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto waiting = waiting_.find(message.request_id());
  if (!message.request_id().empty() && waiting != waiting_.end()) {
    if (--waiting->second.replies == 0) waiting_.erase(waiting);
    return HandleReplyLocked(message);
  }
  Outcome outcome = HandleCommandLocked(message);
  for (const PeerMessage& reply : outcome.replies) {
    AwaitLocked(reply.request_id(), now);
  }
  return outcome;
}

void ExamplePeer::AttachStream(std::shared_ptr<StreamSession> session) {
  absl::MutexLock lock(&mu_);
  streams_[session->session_id()] = std::move(session);
}

std::vector<std::string> ExamplePeer::ExpireWaiting(absl::Time now) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> expired;
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second.deadline <= now) {
      expired.push_back(it->first);
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  return expired;
}

std::vector<std::string> ExamplePeer::catalog() const {
  absl::MutexLock lock(&mu_);
  return std::vector<std::string>(catalog_.begin(), catalog_.end());
}

std::vector<std::string> ExamplePeer::waiting() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids;
  for (const auto& entry : waiting_) ids.push_back(entry.first);
  return ids;
}

void ExamplePeer::AwaitLocked(const std::string& request_id, absl::Time now) {
  if (request_id.empty()) return;  // nothing could be correlated with it
  Waiting& waiting = waiting_[request_id];
  ++waiting.replies;
  waiting.deadline = now + kReplyTimeout;
}

Outcome ExamplePeer::HandleReplyLocked(const EdgeMessage& message) {
  Outcome outcome;
  if (message.payload_case() == EdgeMessage::PAYLOAD_NOT_SET) {
    outcome.note = absl::StrCat("acknowledged: ", message.request_id());
  } else if (message.has_batch_file_offer_response()) {
    outcome.note =
        absl::StrCat("offer ", message.request_id(), " answered: ", AddOfferedLocked(message));
  } else {
    // The existing peers take any message with an awaited id as the reply.
    outcome.note =
        absl::StrCat("reply to ", message.request_id(), " (payload not handled as a command)");
  }
  return outcome;
}

Outcome ExamplePeer::HandleCommandLocked(const EdgeMessage& message) {
  Outcome outcome;
  const std::string& request_id = message.request_id();
  switch (message.payload_case()) {
    case EdgeMessage::kCatalogAnnouncementRequest: {
      PeerMessage& reply = outcome.replies.emplace_back();
      reply.set_request_id(request_id);
      auto* announcement = reply.mutable_catalog_announcement();
      for (const std::string& id : catalog_) announcement->add_catalog_ids(id);
      outcome.note = absl::StrCat("catalog requested: announcing ", catalog_.size(), " ids");
      break;
    }
    case EdgeMessage::kFileDeleteRequest: {
      std::vector<std::string> deleted, gone;
      for (const std::string& id : message.file_delete_request().catalog_ids()) {
        PeerMessage& reply = outcome.replies.emplace_back();
        reply.set_request_id(request_id);
        auto* response = reply.mutable_file_delete_response();
        response->set_catalog_id(id);
        if (catalog_.erase(id) > 0) {
          response->set_success(true);
          deleted.push_back(id);
        } else {
          response->set_success(false);
          response->set_error(FILE_GONE);
          gone.push_back(id);
        }
      }
      outcome.note = absl::StrCat("delete: deleted [", absl::StrJoin(deleted, ","),
                                  "], not found [", absl::StrJoin(gone, ","), "]");
      break;
    }
    case EdgeMessage::kFileHashRequest: {
      const auto& request = message.file_hash_request();
      PeerMessage& reply = outcome.replies.emplace_back();
      reply.set_request_id(request_id);
      auto* response = reply.mutable_file_hash_response();
      response->set_catalog_id(request.catalog_id());
      if (catalog_.count(request.catalog_id()) > 0) {
        response->set_success(true);
        for (const std::string& type : request.hash_types()) {
          (*response->mutable_hashes())[type] = FakeHash(type, request.catalog_id());
        }
        outcome.note = absl::StrCat("hash of ", request.catalog_id(), ": ",
                                    absl::StrJoin(request.hash_types(), ","));
      } else {
        response->set_success(false);
        response->set_error(FILE_GONE);
        outcome.note = absl::StrCat("hash of ", request.catalog_id(), ": not in catalog");
      }
      break;
    }
    case EdgeMessage::kFileRemapRequest: {
      // FileRemapResponse has no place in PeerMessage: nothing to answer.
      const auto& request = message.file_remap_request();
      if (catalog_.erase(request.old_catalog_id()) > 0) {
        catalog_.insert(request.new_catalog_id());
        outcome.note =
            absl::StrCat("remapped ", request.old_catalog_id(), " to ", request.new_catalog_id());
      } else {
        outcome.note = absl::StrCat("remap of ", request.old_catalog_id(), ": not in catalog");
      }
      break;
    }
    case EdgeMessage::kScreenshotCaptureRequest: {
      const auto& request = message.screenshot_capture_request();
      outcome.note =
          absl::StrCat("screenshots requested: ", request.quantity(), " of ", request.catalog_id(),
                       " to ", request.upload_endpoint(), " (this example peer captures nothing)");
      break;
    }
    case EdgeMessage::kBatchFileOfferResponse:
      outcome.note = absl::StrCat("offer answered: ", AddOfferedLocked(message));
      break;
    case EdgeMessage::kWebrtc: {
      // Signaling of a session this peer opened: the backend's ICE
      // candidates. The peer answers them with nothing.
      auto stream = streams_.find(SessionIdOf(message.webrtc()));
      if (stream == streams_.end()) {
        outcome.note = absl::StrCat("webrtc for unknown session \"", SessionIdOf(message.webrtc()),
                                    "\", ignored");
      } else {
        outcome.note = stream->second->OnRemote(message.webrtc());
      }
      break;
    }
    case EdgeMessage::PAYLOAD_NOT_SET:
      // An acknowledgement of something no longer awaited (late or repeated).
      outcome.note = absl::StrCat("acknowledged: ", request_id);
      break;
    default:
      outcome.note = "unknown payload, ignored";
      break;
  }
  return outcome;
}

std::string ExamplePeer::AddOfferedLocked(const EdgeMessage& message) {
  std::vector<std::string> added;
  for (const auto& file : message.batch_file_offer_response().files()) {
    if (file.catalog_id().empty()) continue;
    catalog_.insert(file.catalog_id());
    added.push_back(absl::StrCat(file.relative_path(), "=", file.catalog_id()));
  }
  return absl::StrCat("cataloged [", absl::StrJoin(added, ","), "]");
}

}  // namespace example
}  // namespace edge
