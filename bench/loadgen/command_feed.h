// CommandFeed: the server side of FeedCommandSink (command_sink.h). Listens
// on 127.0.0.1, accepts feed connections, and hands each complete
// "<peer_id>\t<json>\n" line to a callback, on that connection's reader
// thread, in the order the lines arrived. The callback is the server's
// command path: edge_bench_edge produces into its in-memory command topic,
// edge_echo_server --push writes to the peer's stream.
//
//   CommandFeed feed([](absl::string_view peer_id, absl::string_view json) {...});
//   int port = feed.Start(0);  // -1 if it cannot listen
//
// Lines without the separator are counted (malformed()) and skipped.
#ifndef EDGE_BENCH_LOADGEN_COMMAND_FEED_H_
#define EDGE_BENCH_LOADGEN_COMMAND_FEED_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace edge::loadgen {

class CommandFeed {
 public:
  // Called on a reader thread; both views are valid during the call only.
  using OnCommand = std::function<void(absl::string_view peer_id, absl::string_view json)>;

  explicit CommandFeed(OnCommand on_command) : on_command_(std::move(on_command)) {}
  CommandFeed(const CommandFeed&) = delete;
  CommandFeed& operator=(const CommandFeed&) = delete;
  ~CommandFeed() { Stop(); }

  // Listens on 127.0.0.1:`port` (0: any free port); returns the bound port,
  // or -1.
  int Start(int port);
  // Stops accepting and reading, and joins every thread: no callback runs
  // after it returns. Idempotent.
  void Stop();

  // Lines received without a separator.
  int64_t malformed() const { return malformed_.load(std::memory_order_relaxed); }

 private:
  void Accept();
  void Read(int fd);

  const OnCommand on_command_;
  int listen_fd_ = -1;
  std::thread acceptor_;
  std::atomic<int64_t> malformed_{0};
  absl::Mutex mu_;
  std::vector<int> connections_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> readers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edge::loadgen

#endif  // EDGE_BENCH_LOADGEN_COMMAND_FEED_H_
