#include "support/reconnecting_peers.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"

namespace edge::testing {

using giggityflix_grpc_peer::EdgeMessage;
using giggityflix_grpc_peer::PeerEdgeService;
using giggityflix_grpc_peer::PeerMessage;

// One AsyncOperations stream. Owned by ReconnectingPeers (open_ while the
// call runs, then done_ until the end), so that the destructor can cancel
// it without racing its end.
class ReconnectingPeers::Stream final : public grpc::ClientBidiReactor<PeerMessage, EdgeMessage> {
 public:
  Stream(ReconnectingPeers* peers, int peer, int edge, PeerEdgeService::Stub* stub)
      : peers_(peers), peer_(peer), edge_(edge) {
    context_.AddMetadata("peer_id", peers->PeerId(peer));
    stub->async()->AsyncOperations(&context_, this);
  }
  void Begin() {
    StartRead(&in_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (!admitted_) {
      admitted_ = true;
      peers_->Admitted(peer_, edge_);
    }
    if (peers_->options_.on_message) peers_->options_.on_message(peer_, edge_, in_);
    StartRead(&in_);
  }
  void OnDone(const grpc::Status& status) override {
    peers_->Ended(peer_, admitted_, status);
    peers_->Finished(this);  // last: the stream may be released after it
  }

 private:
  ReconnectingPeers* const peers_;
  const int peer_;
  const int edge_;
  grpc::ClientContext context_;
  EdgeMessage in_;
  bool admitted_ = false;  // gRPC runs one reaction of a call at a time
};

ReconnectingPeers::ReconnectingPeers(Options options)
    : options_(std::move(options)),
      admitted_on_(options_.count, -1),
      backoff_(options_.count, options_.first_backoff) {
  for (size_t i = 0; i < options_.addresses.size(); ++i) {
    live_.push_back(static_cast<int>(i));
  }
  reconnector_ = std::thread([this] { RunReconnects(); });
}

ReconnectingPeers::~ReconnectingPeers() {
  std::vector<Stream*> open;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    for (const auto& [stream, owned] : open_) open.push_back(stream);
  }
  reconnector_.join();
  // Streams stay owned (open_ or done_) until every one has ended, so these
  // pointers are valid; TryCancel is called without the lock because it
  // may run reactions.
  for (Stream* stream : open) stream->Cancel();
  absl::MutexLock lock(&mu_);
  auto all_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_.empty(); };
  mu_.Await(absl::Condition(&all_done));
}

std::string ReconnectingPeers::PeerId(int peer) const {
  return absl::StrCat(options_.id_prefix, peer);
}

void ReconnectingPeers::Connect(int peer, int edge) {
  Stream* stream;
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    auto& slot = stubs_[{peer, edge}];
    if (slot == nullptr) {
      // A connection of its own per peer and edge, as real peers have.
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      slot = PeerEdgeService::NewStub(
          grpc::CreateCustomChannel(absl::StrCat("ipv4:", options_.addresses[edge]),
                                    grpc::InsecureChannelCredentials(), args));
    }
    auto owned = std::make_unique<Stream>(this, peer, edge, slot.get());
    stream = owned.get();
    open_.emplace(stream, std::move(owned));
  }
  stream->Begin();
}

void ReconnectingPeers::Admitted(int peer, int edge) {
  absl::MutexLock lock(&mu_);
  admitted_on_[peer] = edge;
  backoff_[peer] = options_.first_backoff;
}

void ReconnectingPeers::Ended(int peer, bool was_admitted, const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  last_status_[peer] = absl::StrCat(status.error_code(), " ", status.error_message());
  if (was_admitted) admitted_on_[peer] = -1;
  if (status.ok()) {
    ++ended_ok_;
    return;
  }
  if (stop_) return;
  absl::Duration& backoff = backoff_[peer];
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  due_.emplace(absl::Now() + backoff * jitter(random_), peer);
  backoff = std::min(backoff * 1.6, options_.max_backoff);
}

void ReconnectingPeers::Finished(Stream* stream) {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(stream);
  if (it == open_.end()) return;
  // Released with the object, after every stream ended: OnDone is still on
  // the stack here.
  done_.push_back(std::move(it->second));
  open_.erase(it);
}

void ReconnectingPeers::SetLiveEdges(std::vector<int> edges) {
  absl::MutexLock lock(&mu_);
  live_ = std::move(edges);
}

int ReconnectingPeers::AdmittedOn(const std::vector<int>& edges) {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (int edge : admitted_on_) {
    n += std::count(edges.begin(), edges.end(), edge) > 0;
  }
  return n;
}

int ReconnectingPeers::AdmittedEdge(int peer) {
  absl::MutexLock lock(&mu_);
  return admitted_on_[peer];
}

std::vector<std::string> ReconnectingPeers::NotAdmitted() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> out;
  for (size_t i = 0; i < admitted_on_.size(); ++i) {
    if (admitted_on_[i] < 0) {
      out.push_back(absl::StrCat(PeerId(static_cast<int>(i)), ": ", last_status_[i]));
    }
  }
  return out;
}

int ReconnectingPeers::EndedOk() {
  absl::MutexLock lock(&mu_);
  return ended_ok_;
}

void ReconnectingPeers::RunReconnects() {
  while (true) {
    std::vector<std::pair<int, int>> now;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(20));
      if (stop_) return;
      while (!due_.empty() && due_.begin()->first <= absl::Now() && !live_.empty()) {
        int peer = due_.begin()->second;
        due_.erase(due_.begin());
        // Each peer goes round the live edges in turn.
        now.emplace_back(peer, live_[(peer + attempts_[peer]++) % live_.size()]);
      }
    }
    for (auto [peer, edge] : now) Connect(peer, edge);
  }
}

}  // namespace edge::testing
