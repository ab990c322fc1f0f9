// NullMetrics and the forwarding wrappers that report bus and tracker
// figures to a Metrics.
#include <atomic>
#include <utility>

#include "absl/strings/ascii.h"
#include "edge/clock.h"
#include "edge/metrics.h"

namespace edge {
namespace {

class NoMetrics final : public Metrics {
 public:
  void PeerConnected() override {}
  void PeerDisconnected(absl::Duration) override {}
  void Admission(absl::StatusCode) override {}
  void PeerMessage(Direction, absl::string_view, size_t) override {}
  void CommandDelivered(absl::Duration) override {}
  void DeadLetter(absl::string_view) override {}
  void Error(absl::string_view) override {}
  void KafkaMessage(Direction, absl::string_view) override {}
  void KafkaPublishLatency(absl::Duration) override {}
  void KafkaProducerQueueDepth(int64_t) override {}
  void TrackerRequest(absl::string_view, absl::StatusCode, absl::Duration) override {}
};

class InstrumentedBus final : public MessageBus {
 public:
  InstrumentedBus(MessageBus* bus, Metrics* metrics, Clock* clock)
      : bus_(bus), metrics_(metrics), clock_(clock) {}

  void Publish(OutgoingRecord record, PublishDone done) override {
    metrics_->KafkaMessage(Direction::kOut, record.topic);
    metrics_->KafkaProducerQueueDepth(waiting_.fetch_add(1, std::memory_order_relaxed) + 1);
    absl::Time start = clock_->Now();
    bus_->Publish(std::move(record), [this, start, done = std::move(done)](absl::Status s) mutable {
      metrics_->KafkaProducerQueueDepth(waiting_.fetch_sub(1, std::memory_order_relaxed) - 1);
      if (s.ok()) {
        metrics_->KafkaPublishLatency(clock_->Now() - start);
      } else {
        metrics_->Error("publish_failed");
      }
      if (done) done(std::move(s));
    });
  }
  bool Saturated() const override { return bus_->Saturated(); }
  void SetDrainListener(absl::AnyInvocable<void()> listener) override {
    bus_->SetDrainListener(std::move(listener));
  }
  absl::Status Subscribe(const std::string& topic, RecordHandler handler) override {
    return bus_->Subscribe(
        topic, [this, handler = std::move(handler)](IncomingRecord r, RecordDone done) mutable {
          metrics_->KafkaMessage(Direction::kIn, r.topic);
          handler(std::move(r), std::move(done));
        });
  }
  absl::Status Start() override { return bus_->Start(); }
  bool Reading() const override { return bus_->Reading(); }
  void StopConsuming() override { bus_->StopConsuming(); }
  void Shutdown(absl::Time deadline) override { bus_->Shutdown(deadline); }

 private:
  MessageBus* const bus_;
  Metrics* const metrics_;
  Clock* const clock_;
  std::atomic<int64_t> waiting_{0};
};

class InstrumentedTracker final : public Tracker {
 public:
  InstrumentedTracker(Tracker* tracker, Metrics* metrics, Clock* clock)
      : tracker_(tracker), metrics_(metrics), clock_(clock) {}

  absl::Status Start() override { return tracker_->Start(); }
  void Claim(const std::string& peer_id, absl::Time deadline, ClaimDone done) override {
    tracker_->Claim(peer_id, deadline, Timed<absl::StatusOr<PeerClaim>>("claim", std::move(done)));
  }
  void Release(const std::string& peer_id, const PeerClaim& claim, ReleaseDone done) override {
    tracker_->Release(peer_id, claim, Timed<absl::Status>("release", std::move(done)));
  }
  void Lookup(const std::string& peer_id, absl::Time deadline, LookupDone done) override {
    tracker_->Lookup(peer_id, deadline,
                     Timed<absl::StatusOr<std::string>>("lookup", std::move(done)));
  }
  void SetLostListener(LostListener listener) override {
    tracker_->SetLostListener(std::move(listener));
  }
  void SetLostClaimListener(LostClaimListener listener) override {
    tracker_->SetLostClaimListener(std::move(listener));
  }
  void Shutdown(absl::Time deadline) override { tracker_->Shutdown(deadline); }

 private:
  static absl::StatusCode CodeOf(const absl::Status& s) { return s.code(); }
  template <typename T>
  static absl::StatusCode CodeOf(const absl::StatusOr<T>& s) {
    return s.status().code();
  }

  template <typename Result>
  absl::AnyInvocable<void(Result)> Timed(const char* op, absl::AnyInvocable<void(Result)> done) {
    absl::Time start = clock_->Now();
    return [this, op, start, done = std::move(done)](Result result) mutable {
      metrics_->TrackerRequest(op, CodeOf(result), clock_->Now() - start);
      done(std::move(result));
    };
  }

  Tracker* const tracker_;
  Metrics* const metrics_;
  Clock* const clock_;
};

}  // namespace

Metrics& NullMetrics() {
  static NoMetrics* none = new NoMetrics();
  return *none;
}

absl::string_view StatusCodeLabel(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "ok";
    case absl::StatusCode::kCancelled:
      return "cancelled";
    case absl::StatusCode::kUnknown:
      return "unknown";
    case absl::StatusCode::kInvalidArgument:
      return "invalid_argument";
    case absl::StatusCode::kDeadlineExceeded:
      return "deadline_exceeded";
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kAlreadyExists:
      return "already_exists";
    case absl::StatusCode::kPermissionDenied:
      return "permission_denied";
    case absl::StatusCode::kResourceExhausted:
      return "resource_exhausted";
    case absl::StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case absl::StatusCode::kAborted:
      return "aborted";
    case absl::StatusCode::kOutOfRange:
      return "out_of_range";
    case absl::StatusCode::kUnimplemented:
      return "unimplemented";
    case absl::StatusCode::kInternal:
      return "internal";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    case absl::StatusCode::kDataLoss:
      return "data_loss";
    case absl::StatusCode::kUnauthenticated:
      return "unauthenticated";
    default:
      return "unknown";
  }
}

std::unique_ptr<MessageBus> InstrumentBus(MessageBus* bus, Metrics* metrics, Clock* clock) {
  return std::make_unique<InstrumentedBus>(bus, metrics, clock);
}

std::unique_ptr<Tracker> InstrumentTracker(Tracker* tracker, Metrics* metrics, Clock* clock) {
  return std::make_unique<InstrumentedTracker>(tracker, metrics, clock);
}

}  // namespace edge
