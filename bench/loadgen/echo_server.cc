// edge_echo_server: the raw limit beside the edge. A bare gRPC callback
// server of the same PeerEdgeService: it admits every AsyncOperations stream,
// acknowledges every PeerMessage that has a request_id with
// EdgeMessage{request_id}, and does nothing else (WebRTCOperations is
// UNIMPLEMENTED). Its connection, keepalive and message-size settings are
// GrpcPeerTransport's, so the edge's figures divided by its figures show what
// the edge itself costs.
//
//   edge_echo_server --port=0 --max_seconds=600
// prints "edge_echo_server listening port=<port> pid=<pid>", then serves
// until SIGTERM/SIGINT or --max_seconds.
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <deque>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "edge/descriptors.h"
#include "giggityflix_grpc_peer/peer_edge.grpc.pb.h"
#include "proc_stats.h"

ABSL_FLAG(std::string, address, "0.0.0.0", "address to listen on");
ABSL_FLAG(int, port, 0, "port to listen on (0: any free port)");
ABSL_FLAG(std::string, edge_id, "echo", "edge_id of the acknowledgements");
ABSL_FLAG(int, max_seconds, 600, "exit after this long at most");
ABSL_FLAG(int, tcp_read_chunk, 0, "GRPC_ARG_TCP_READ_CHUNK_SIZE (0: gRPC's default)");
ABSL_FLAG(int, tcp_min_read_chunk, 0, "GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE (0: gRPC's default)");
ABSL_FLAG(int, bdp_probe, -1, "GRPC_ARG_HTTP2_BDP_PROBE (-1: gRPC's default)");
ABSL_FLAG(int64_t, resource_quota_mib, 0, "a gRPC resource quota of this size (0: none)");

namespace {

using giggityflix_grpc_peer::EdgeMessage;
using giggityflix_grpc_peer::PeerMessage;

class EchoReactor final : public grpc::ServerBidiReactor<PeerMessage, EdgeMessage> {
 public:
  explicit EchoReactor(const std::string* edge_id) : edge_id_(edge_id) { StartRead(&in_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool finish;
      {
        absl::MutexLock lock(&mu_);
        reading_done_ = true;
        finish = !writing_;
        finished_ |= finish;
      }
      if (finish) Finish(grpc::Status::OK);
      return;
    }
    bool write = false;
    if (!in_.request_id().empty()) {
      EdgeMessage ack;
      ack.set_request_id(in_.request_id());
      ack.set_edge_id(*edge_id_);
      absl::MutexLock lock(&mu_);
      if (writing_) {
        queue_.push_back(std::move(ack));
      } else {
        writing_ = true;
        out_ = std::move(ack);
        write = true;
      }
    }
    if (write) StartWrite(&out_);
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    bool write = false, finish = false;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      if (ok && !queue_.empty()) {
        out_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = true;
        write = true;
      } else if (reading_done_ && !finished_) {
        finished_ = finish = true;
      }
    }
    if (write) StartWrite(&out_);
    if (finish) Finish(grpc::Status::OK);
  }

  void OnDone() override { delete this; }

 private:
  const std::string* const edge_id_;
  PeerMessage in_;
  EdgeMessage out_;
  absl::Mutex mu_;
  std::deque<EdgeMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reading_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

class EchoService final : public giggityflix_grpc_peer::PeerEdgeService::CallbackService {
 public:
  explicit EchoService(std::string edge_id) : edge_id_(std::move(edge_id)) {}
  grpc::ServerBidiReactor<PeerMessage, EdgeMessage>* AsyncOperations(
      grpc::CallbackServerContext* context) override {
    return new EchoReactor(&edge_id_);
  }

 private:
  const std::string edge_id_;
};

int Main(int argc, char** argv) {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  if (absl::StatusOr<int64_t> limit = edge::DescriptorBudget::RaiseLimit(); !limit.ok()) {
    std::fprintf(stderr, "edge_echo_server: %s\n", limit.status().ToString().c_str());
    return 1;
  }

  EchoService service(absl::GetFlag(FLAGS_edge_id));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(
      absl::StrCat(absl::GetFlag(FLAGS_address), ":", absl::GetFlag(FLAGS_port)),
      grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  // GrpcPeerTransport's settings (edged's defaults).
  builder.SetMaxReceiveMessageSize(4 * 1024 * 1024);
  builder.SetMaxSendMessageSize(4 * 1024 * 1024);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, 16 * 1024);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  // Experiments with gRPC's buffer settings (docs/performance.md).
  if (int v = absl::GetFlag(FLAGS_tcp_read_chunk); v > 0) {
    builder.AddChannelArgument(GRPC_ARG_TCP_READ_CHUNK_SIZE, v);
  }
  if (int v = absl::GetFlag(FLAGS_tcp_min_read_chunk); v > 0) {
    builder.AddChannelArgument(GRPC_ARG_TCP_MIN_READ_CHUNK_SIZE, v);
  }
  if (int v = absl::GetFlag(FLAGS_bdp_probe); v >= 0) {
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, v);
  }
  grpc::ResourceQuota quota("edge_echo_server");
  if (int64_t mib = absl::GetFlag(FLAGS_resource_quota_mib); mib > 0) {
    quota.Resize(static_cast<size_t>(mib) << 20);
    builder.SetResourceQuota(quota);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "edge_echo_server: cannot listen\n");
    return 1;
  }
  std::printf("edge_echo_server listening port=%d pid=%d\n", port, static_cast<int>(getpid()));
  std::fflush(stdout);
  struct timespec timeout = {absl::GetFlag(FLAGS_max_seconds), 0};
  sigtimedwait(&signals, nullptr, &timeout);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Main(argc, argv); }
