// MessageBus: the durable log between the edge and the backend services.
//
// Publish: records go out keyed (by peer_id), and a record's callback says OK
// only once it is durably stored (for Kafka: its delivery report). The bus
// never drops a record it accepted: while it cannot keep up it holds records
// beyond its capacity and reports Saturated(), and the edge stops reading
// peers and admitting new ones until the drain listener fires.
//
// Consume: Subscribe hands over each record of a topic with a `done` to call
// once the record has an outcome (delivered or dead-lettered). Committed
// positions never pass a record whose `done` has not run, so a crash
// redelivers rather than loses (at-least-once). A `done` destroyed without
// being run gives its record no outcome: it is never committed past (so it
// is read again after a restart) and Shutdown does not wait for it.
//
// Threads: callbacks run on bus threads and must not block. Methods may be
// called from any thread, including from inside callbacks.
//
//   bus->Subscribe("edge-commands-e1", [&](edge::IncomingRecord r,
//                                         edge::RecordDone done) {
//     Route(std::move(r), std::move(done));
//   });
//   bus->Start();
//   bus->Publish({"peer-lifecycle-events", "peer-1", json}, [](absl::Status s) {});
#ifndef EDGE_MESSAGE_BUS_H_
#define EDGE_MESSAGE_BUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace edge {

struct RecordHeader {
  std::string key;
  std::string value;
};

struct OutgoingRecord {
  std::string topic;
  std::string key;
  std::string value;
  std::vector<RecordHeader> headers;
};

struct IncomingRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::vector<RecordHeader> headers;
};

using PublishDone = absl::AnyInvocable<void(absl::Status)>;
using RecordDone = absl::AnyInvocable<void()>;
using RecordHandler = absl::AnyInvocable<void(IncomingRecord, RecordDone)>;

class MessageBus {
 public:
  MessageBus() = default;
  MessageBus(const MessageBus&) = delete;
  MessageBus& operator=(const MessageBus&) = delete;
  virtual ~MessageBus() = default;

  // Queues `record`; `done` runs exactly once: OK when stored, an error
  // (UNAVAILABLE, CANCELLED at shutdown) when it never will be.
  virtual void Publish(OutgoingRecord record, PublishDone done) = 0;

  // True while more records wait than the bus's capacity.
  virtual bool Saturated() const = 0;

  // Runs `listener` each time Saturated() turns false. Set before Start().
  virtual void SetDrainListener(absl::AnyInvocable<void()> listener) = 0;

  // Consumes `topic`; records of one partition are handed over in order.
  // Call before Start().
  virtual absl::Status Subscribe(const std::string& topic, RecordHandler handler) = 0;

  virtual absl::Status Start() = 0;

  // True once the consumer has read its subscribed topics (each partition
  // answered at least once since Start), so that a command produced now is
  // handed out without a start-up pause. A bus without that notion is always
  // reading; implementations that have one override this.
  virtual bool Reading() const { return true; }

  // Stops handing out records; those already handed out keep their `done`.
  virtual void StopConsuming() = 0;

  // Waits until every handed-out record has an outcome and every publish
  // completed, or `deadline`; commits; then fails what is left (CANCELLED)
  // and stops. Idempotent.
  virtual void Shutdown(absl::Time deadline) = 0;
};

}  // namespace edge

#endif  // EDGE_MESSAGE_BUS_H_
