#include "write_starter.h"

#include <grpc/support/time.h>

#include <utility>

#include "grpc_peer_stream.h"

namespace edge::grpc_transport::internal {
namespace {

thread_local bool on_grpc_thread = false;

}  // namespace

WriteStarter::GrpcThreadScope::GrpcThreadScope() : was_(on_grpc_thread) { on_grpc_thread = true; }

WriteStarter::GrpcThreadScope::~GrpcThreadScope() { on_grpc_thread = was_; }

bool WriteStarter::OnGrpcThread() { return on_grpc_thread; }

void WriteStarter::Add(std::shared_ptr<GrpcPeerStream> stream) {
  {
    absl::MutexLock lock(&mu_);
    pending_.push_back(std::move(stream));
    // The run due takes it, or the run under way leaves it to the next.
    if (armed_) return;
    armed_ = true;
  }
  Arm();
}

void WriteStarter::Arm() {
  // Due in the past: gRPC hands the callback to one of its executor threads
  // at once. (A deadline of "now" is rounded up to the next millisecond and
  // waits for gRPC's timer thread: measured, that delayed commands by
  // seconds at moderate rates.) A weak reference: the alarm is kept by this
  // starter, and a strong one in its callback would keep both forever.
  auto alarm = std::make_unique<grpc::Alarm>();
  alarm->Set(gpr_inf_past(GPR_CLOCK_MONOTONIC), [weak = weak_from_this()](bool /*fired*/) {
    // Fired or cancelled (a later Arm replaced this alarm), the run starts
    // what is pending either way.
    if (auto self = weak.lock()) self->Run();
  });
  std::unique_ptr<grpc::Alarm> previous;
  {
    absl::MutexLock lock(&mu_);
    previous = std::exchange(alarm_, std::move(alarm));
  }
  // Its callback has run or is running (armed_ went false before this Add
  // armed again, or the run re-armed), or it is cancelled and still runs;
  // either way dropping it loses nothing.
}

void WriteStarter::Run() {
  std::vector<std::shared_ptr<GrpcPeerStream>> batch;
  {
    absl::MutexLock lock(&mu_);
    batch.swap(pending_);
  }
  {
    GrpcThreadScope scope;
    for (std::shared_ptr<GrpcPeerStream>& stream : batch) stream->StartQueuedWrite();
  }
  // One batch per run. The completions of the writes just started (their
  // OnWriteDone, which starts each stream's next write) are queued on this
  // thread and run only once this callback returns; a run that kept taking
  // the writes arriving meanwhile held them back for as long as writes kept
  // coming (measured: 0.4-0.8 s at ~95 % of a core), and with them every
  // stream's next command. What arrived meanwhile goes to a new alarm,
  // behind those completions.
  {
    absl::MutexLock lock(&mu_);
    if (pending_.empty()) {
      armed_ = false;
      return;
    }
  }
  Arm();
}

}  // namespace edge::grpc_transport::internal
