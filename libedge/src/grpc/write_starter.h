// WriteStarter: starts streams' writes on gRPC's own threads, many per
// wake-up.
//
// A write started (StartWrite) from a thread that is not gRPC's, such as the
// message bus's delivery thread, does the sendmsg on that thread, contends
// there for gRPC's completion locks, and wakes a gRPC thread to run its
// OnWriteDone: one wake-up per write. Handed to a WriteStarter instead, the
// writes queue, and one grpc::Alarm (due at once) runs them all on a gRPC
// executor thread, whose completions then run there too, without a wake-up
// each. A run takes the writes queued when it begins; writes queued
// meanwhile wait for the next run, queued behind those completions.
//
// A write started on a gRPC thread already (inside a reaction, or a write
// started by the starter's own run) gains nothing from the hop: callers ask
// OnGrpcThread() and start those at once.
#ifndef EDGE_SRC_GRPC_WRITE_STARTER_H_
#define EDGE_SRC_GRPC_WRITE_STARTER_H_

#include <grpcpp/alarm.h>

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace edge::grpc_transport::internal {

class GrpcPeerStream;

class WriteStarter final : public std::enable_shared_from_this<WriteStarter> {
 public:
  WriteStarter() = default;
  WriteStarter(const WriteStarter&) = delete;
  WriteStarter& operator=(const WriteStarter&) = delete;

  // Runs stream->StartQueuedWrite() soon on a gRPC thread, after the streams
  // added before it. The stream keeps its write pinned until then (see
  // grpc_peer_stream.h), so its call stays alive; an alarm always fires,
  // also while the server shuts down, so every added write is started.
  void Add(std::shared_ptr<GrpcPeerStream> stream);

  // True on a thread running a gRPC reaction of a peer stream or this
  // starter's run (marked by GrpcThreadScope).
  static bool OnGrpcThread();

  // Marks the current thread as a gRPC thread for its lifetime.
  class GrpcThreadScope {
   public:
    GrpcThreadScope();
    ~GrpcThreadScope();
    GrpcThreadScope(const GrpcThreadScope&) = delete;
    GrpcThreadScope& operator=(const GrpcThreadScope&) = delete;

   private:
    const bool was_;
  };

 private:
  // Sets an alarm due at once whose callback runs Run().
  void Arm();
  void Run();

  absl::Mutex mu_;
  std::vector<std::shared_ptr<GrpcPeerStream>> pending_ ABSL_GUARDED_BY(mu_);
  // An alarm is set, or its run is draining pending_.
  bool armed_ ABSL_GUARDED_BY(mu_) = false;
  // The latest alarm; an earlier one is dropped once its run has begun.
  std::unique_ptr<grpc::Alarm> alarm_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_WRITE_STARTER_H_
