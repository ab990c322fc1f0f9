#include "load_peer.h"

#include <time.h>

#include <algorithm>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace edge::loadgen {
namespace {

constexpr char kHash[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

}  // namespace

int64_t UnixNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string MakeRequestId(char kind, uint64_t sequence) {
  return absl::StrCat(std::string(1, kind), UnixNanos(), ".", sequence);
}

int64_t RequestIdNanos(const std::string& request_id) {
  if (request_id.size() < 2) return -1;
  const size_t dot = request_id.find('.');
  if (dot == std::string::npos) return -1;
  int64_t nanos;
  if (!absl::SimpleAtoi(absl::string_view(request_id).substr(1, dot - 1), &nanos)) return -1;
  return nanos;
}

int64_t RequestIdSequence(const std::string& request_id) {
  const size_t dot = request_id.find('.');
  int64_t sequence;
  if (dot == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(request_id).substr(dot + 1), &sequence)) {
    return -1;
  }
  return sequence;
}

LoadPeer::LoadPeer(std::string peer_id, std::shared_ptr<grpc::Channel> channel, LoadStats* stats,
                   const LoadPeerOptions* options)
    : peer_id_(std::move(peer_id)),
      stats_(stats),
      options_(options),
      stub_(giggityflix_grpc_peer::PeerEdgeService::NewStub(std::move(channel))) {}

void LoadPeer::Start(std::function<void(bool)> on_settled) {
  on_settled_ = std::move(on_settled);
  context_.AddMetadata("peer_id", peer_id_);
  started_at_ = absl::Now();
  stats_->started.fetch_add(1, std::memory_order_relaxed);
  stub_->async()->AsyncOperations(&context_, this);
  AddHold();
  StartRead(&read_buffer_);
  SendKeepalive();
  StartCall();
}

namespace {

// A load message: a file_hash_response, as a peer answers most commands.
PeerMessage LoadMessage(char kind, uint64_t sequence) {
  PeerMessage message;
  message.set_request_id(MakeRequestId(kind, sequence));
  auto* response = message.mutable_file_hash_response();
  response->set_catalog_id("catalog-1");
  (*response->mutable_hashes())["sha256"] = kHash;
  response->set_success(true);
  return message;
}

}  // namespace

bool LoadPeer::SendMessage() {
  const uint64_t sequence = sequence_.fetch_add(1, std::memory_order_relaxed);
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  if (!Enqueue(LoadMessage('m', sequence), sequence)) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  stats_->messages_sent.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool LoadPeer::SendWarmUpMessage() {
  return Enqueue(LoadMessage('w', sequence_.fetch_add(1, std::memory_order_relaxed)));
}

bool LoadPeer::SendKeepalive() {
  PeerMessage message;
  const uint64_t sequence = sequence_.fetch_add(1, std::memory_order_relaxed);
  message.set_request_id(MakeRequestId('k', sequence));
  message.mutable_catalog_announcement();  // Empty: a keepalive (contract §1).
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  if (!Enqueue(std::move(message), sequence)) {
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  stats_->keepalives_sent.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool LoadPeer::Enqueue(PeerMessage message, uint64_t awaited) {
  {
    absl::MutexLock lock(&mu_);
    if (read_failed_ || closing_) return false;
    if (awaited != kNotAwaited) awaited_.insert(awaited);
    queue_.push_back(std::move(message));
  }
  Pump();
  return true;
}

void LoadPeer::Pump() {
  enum { kNothing, kWrite, kWritesDone, kReleaseHold } action = kNothing;
  {
    absl::MutexLock lock(&mu_);
    if (writing_) return;
    if (read_failed_) {
      if (!hold_released_) {
        hold_released_ = true;
        action = kReleaseHold;
      }
    } else if (!queue_.empty()) {
      write_buffer_ = std::move(queue_.front());
      queue_.pop_front();
      writing_ = true;
      action = kWrite;
    } else if (closing_ && !writes_done_sent_) {
      writes_done_sent_ = true;
      action = kWritesDone;
    }
  }
  switch (action) {
    case kWrite:
      StartWrite(&write_buffer_);
      break;
    case kWritesDone:
      StartWritesDone();
      break;
    case kReleaseHold:
      RemoveHold();
      break;
    case kNothing:
      break;
  }
}

void LoadPeer::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    // A failed write means the call is over: write nothing more.
    if (!ok) read_failed_ = true;
  }
  Pump();
}

void LoadPeer::Close() {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;
  }
  Pump();
}

bool LoadPeer::TakeAwaited(const std::string& request_id) {
  const size_t dot = request_id.find('.');
  uint64_t sequence;
  if (dot == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(request_id).substr(dot + 1), &sequence)) {
    return false;
  }
  absl::MutexLock lock(&mu_);
  return awaited_.erase(sequence) > 0;
}

void LoadPeer::Settle(bool admitted) {
  if (settled_.exchange(true)) return;
  if (admitted) {
    admitted_.store(true, std::memory_order_release);
    stats_->admitted.fetch_add(1, std::memory_order_relaxed);
    stats_->admission.Record(absl::Now() - started_at_);
  }
  if (on_settled_) on_settled_(admitted);
}

void LoadPeer::OnReadDone(bool ok) {
  if (!ok) {
    {
      absl::MutexLock lock(&mu_);
      read_failed_ = true;
      queue_.clear();
    }
    Pump();
    return;
  }
  Settle(true);
  const EdgeMessage& m = read_buffer_;
  const std::string& id = m.request_id();
  const char kind = id.empty() ? '\0' : id[0];
  if (m.payload_case() == EdgeMessage::PAYLOAD_NOT_SET) {
    // An acknowledgement.
    const int64_t sent = RequestIdNanos(id);
    if ((kind == 'm' || kind == 'k') && !TakeAwaited(id)) {
      stats_->unexpected_acks.fetch_add(1, std::memory_order_relaxed);
    } else if (kind == 'm' && sent >= 0) {
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
      stats_->messages_acked.fetch_add(1, std::memory_order_relaxed);
      stats_->ack.RecordNanos(UnixNanos() - sent);
      if (options_->sending != nullptr && options_->sending->load(std::memory_order_relaxed)) {
        SendMessage();
      }
    } else if (kind == 'k' && sent >= 0) {
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
      stats_->keepalives_acked.fetch_add(1, std::memory_order_relaxed);
    } else if (kind == 'c' && sent >= 0) {
      stats_->answers_acked.fetch_add(1, std::memory_order_relaxed);
    } else if (kind == 'w') {
      stats_->warmups_acked.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats_->other_received.fetch_add(1, std::memory_order_relaxed);
    }
  } else {
    if (m.has_catalog_announcement_request()) {
      stats_->catalog_pulls.fetch_add(1, std::memory_order_relaxed);
    } else if (kind == 'w') {
      stats_->warmups_received.fetch_add(1, std::memory_order_relaxed);
    } else if (kind == 'c') {
      stats_->commands_received.fetch_add(1, std::memory_order_relaxed);
      const int64_t sequence = RequestIdSequence(id);
      if (sequence >= 0 && sequence <= last_command_sequence_) {
        stats_->commands_repeated.fetch_add(1, std::memory_order_relaxed);
      }
      last_command_sequence_ = std::max(last_command_sequence_, sequence);
      const int64_t sent = RequestIdNanos(id);
      if (sent >= 0) stats_->command.RecordNanos(UnixNanos() - sent);
      if (options_->on_command) options_->on_command(id);
    } else {
      stats_->other_received.fetch_add(1, std::memory_order_relaxed);
    }
    if (options_->answer_commands) Answer(m);
  }
  StartRead(&read_buffer_);
}

void LoadPeer::Answer(const EdgeMessage& command) {
  PeerMessage answer;
  answer.set_request_id(command.request_id());
  switch (command.payload_case()) {
    case EdgeMessage::kCatalogAnnouncementRequest: {
      auto* catalog = answer.mutable_catalog_announcement();
      for (int i = 0; i < options_->catalog_size; ++i) {
        catalog->add_catalog_ids(absl::StrCat(peer_id_, "-movie-", i));
      }
      Enqueue(std::move(answer));
      return;
    }
    case EdgeMessage::kFileHashRequest: {
      auto* response = answer.mutable_file_hash_response();
      response->set_catalog_id(command.file_hash_request().catalog_id());
      for (const std::string& type : command.file_hash_request().hash_types()) {
        (*response->mutable_hashes())[type] = kHash;
      }
      response->set_success(true);
      break;
    }
    case EdgeMessage::kFileDeleteRequest: {
      if (command.file_delete_request().catalog_ids().empty()) return;
      auto* response = answer.mutable_file_delete_response();
      response->set_catalog_id(command.file_delete_request().catalog_ids(0));
      response->set_success(true);
      break;
    }
    default:
      return;  // Nothing to answer (remap, screenshot, offers, WebRTC).
  }
  // A warm-up command's answer is acknowledged as a warm-up, not counted.
  const bool warm_up = !command.request_id().empty() && command.request_id()[0] == 'w';
  if (Enqueue(std::move(answer)) && !warm_up) {
    stats_->answers_sent.fetch_add(1, std::memory_order_relaxed);
  }
}

void LoadPeer::OnDone(const grpc::Status& status) {
  if (!settled_.load()) {
    stats_->refused.fetch_add(1, std::memory_order_relaxed);
    const int code = static_cast<int>(status.error_code());
    if (code >= 0 && code < 17)
      stats_->refused_by_code[code].fetch_add(1, std::memory_order_relaxed);
    Settle(false);
  } else if (!status.ok()) {
    stats_->ended_not_ok.fetch_add(1, std::memory_order_relaxed);
  }
  stats_->ended.fetch_add(1, std::memory_order_relaxed);
  done_.store(true, std::memory_order_release);
}

}  // namespace edge::loadgen
