// CommandSink: where the load generator's backend commands go.
//
// KafkaCommandSink produces them to the edge's command topic on a Kafka
// cluster (a real one, or edged's embedded broker, whose address edged
// logs). FeedCommandSink writes them to bench_edge's feed port, which
// produces them into its in-memory bus: the same command path in the edge
// (decode, route, write), without a broker.
#ifndef EDGE_BENCH_LOADGEN_COMMAND_SINK_H_
#define EDGE_BENCH_LOADGEN_COMMAND_SINK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace edge::loadgen {

class CommandSink {
 public:
  CommandSink() = default;
  CommandSink(const CommandSink&) = delete;
  CommandSink& operator=(const CommandSink&) = delete;
  virtual ~CommandSink() = default;

  // Queues one command keyed by `peer_id`. Called from one thread.
  virtual void Send(const std::string& peer_id, std::string json) = 0;
  // Pushes out what Send queued (called every pacer tick).
  virtual void Flush() = 0;
  // Commands the sink could not hand over.
  virtual int64_t failures() const = 0;
};

// `bootstrap_servers`: "host:port[,...]"; `topic`: the edge's command topic.
absl::StatusOr<std::unique_ptr<CommandSink>> NewKafkaCommandSink(
    const std::string& bootstrap_servers, const std::string& topic);

// `address`: "host:port" of bench_edge's --feed_port.
absl::StatusOr<std::unique_ptr<CommandSink>> NewFeedCommandSink(const std::string& address);

// Where bench_edge reads them: one command per line, "<peer_id>\t<json>\n".
inline constexpr char kFeedSeparator = '\t';

}  // namespace edge::loadgen

#endif  // EDGE_BENCH_LOADGEN_COMMAND_SINK_H_
