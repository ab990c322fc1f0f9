// The load generator runs against each server it is meant for and completes
// with the expected counts. Speed is never asserted here (bench/run.sh
// measures it).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

extern char** environ;

namespace {

// A child process whose stdout and stderr we read. `env` entries
// "NAME=value" override the inherited environment; a bare "NAME" unsets it.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> environment;
    for (const std::string& e : env) {
      if (e.find('=') != std::string::npos) environment.push_back(e);
    }
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string name(*e, strcspn(*e, "="));
      const bool overridden = std::any_of(env.begin(), env.end(), [&](const std::string& o) {
        return o.substr(0, o.find('=')) == name;
      });
      if (!overridden) environment.push_back(*e);
    }
    std::vector<char*> envp;
    for (auto& e : environment) envp.push_back(e.data());
    envp.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), envp.data()) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    fd_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& output() const { return output_; }

  // Reads output until a line containing `needle`; returns that line, or ""
  // after `timeout` or at the end of the output.
  std::string WaitForLine(const std::string& needle, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      size_t at = output_.find(needle);
      if (at != std::string::npos) {
        size_t begin = output_.rfind('\n', at);
        begin = begin == std::string::npos ? 0 : begin + 1;
        size_t end = output_.find('\n', at);
        if (end != std::string::npos) return output_.substr(begin, end - begin);
      }
      if (!ReadSome(deadline)) return "";
    }
  }

  // Reads everything until the child closes its output, then its exit code;
  // -1 after `timeout`.
  int Wait(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (ReadSome(deadline)) {
    }
    while (absl::Now() < deadline) {
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    return -1;
  }

  int Terminate(absl::Duration timeout) {
    kill(pid_, SIGTERM);
    return Wait(timeout);
  }

 private:
  bool ReadSome(absl::Time deadline) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    struct pollfd p = {fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1) <= 0) return false;
    char buffer[4096];
    ssize_t n = read(fd_, buffer, sizeof(buffer));
    if (n <= 0) return false;
    output_.append(buffer, static_cast<size_t>(n));
    return true;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  bool exited_ = false;
  std::string output_;
};

// The "key=value" words of a line.
std::map<std::string, std::string> Fields(const std::string& line) {
  std::map<std::string, std::string> fields;
  for (absl::string_view word : absl::StrSplit(line, ' ', absl::SkipEmpty())) {
    std::vector<std::string> kv = absl::StrSplit(word, absl::MaxSplits('=', 1));
    if (kv.size() == 2) fields[kv[0]] = kv[1];
  }
  return fields;
}

int64_t Int(const std::map<std::string, std::string>& fields, const std::string& key) {
  auto it = fields.find(key);
  int64_t v = -1;
  if (it == fields.end() || !absl::SimpleAtoi(it->second, &v)) return -1;
  return v;
}

// Runs the load generator to its end; returns its RESULT fields.
std::map<std::string, std::string> RunLoadgen(const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {EDGE_LOADGEN_PATH, "--hosts=127.0.0.1,127.0.0.2",
                                   "--settle=200ms", "--drain_timeout=10s"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  Child loadgen(argv);
  EXPECT_TRUE(loadgen.started());
  EXPECT_EQ(loadgen.Wait(absl::Seconds(90)), 0) << loadgen.output();
  auto fields = Fields(loadgen.WaitForLine("RESULT ", absl::Seconds(1)));
  EXPECT_FALSE(fields.empty()) << loadgen.output();
  // Not a RESULT word: what an assertion on the fields prints.
  fields["output"] = loadgen.output();
  return fields;
}

// Every command produced arrived, once: a command comes again only after
// an edge's crash (contract: at-least-once), and none crashes here. A
// repeat and a loss are counted apart, so a failure says which it was.
void ExpectEveryCommandArrivedOnce(std::map<std::string, std::string>& r,
                                   const std::string& server_output) {
  const std::string context = absl::StrCat(r["output"], "\n--- server ---\n", server_output);
  EXPECT_GT(Int(r, "commands_produced"), 0) << context;
  EXPECT_EQ(Int(r, "command_sink_failures"), 0) << context;
  EXPECT_EQ(Int(r, "commands_received") - Int(r, "commands_repeated"), Int(r, "commands_produced"))
      << context;
  EXPECT_EQ(Int(r, "commands_repeated"), 0) << context;
  EXPECT_EQ(r["drained"], "yes") << context;
}

TEST(LoadgenSmokeTest, MixAgainstTheEdgeOnAnInMemoryBusCompletes) {
  Child edge({EDGE_BENCH_EDGE_PATH, "--port=0", "--feed_port=0", "--max_seconds=120"});
  auto listening = Fields(edge.WaitForLine("listening", absl::Seconds(20)));
  ASSERT_GT(Int(listening, "port"), 0) << edge.output();
  auto r =
      RunLoadgen({absl::StrCat("--port=", listening["port"]),
                  absl::StrCat("--feed=127.0.0.1:", listening["feed"]),
                  absl::StrCat("--server_pid=", listening["pid"]), "--peers=20", "--workload=mix",
                  "--message_rate=200", "--command_rate=100", "--duration=1s"});
  EXPECT_EQ(Int(r, "admitted"), 20);
  EXPECT_EQ(Int(r, "refused"), 0);
  EXPECT_EQ(Int(r, "catalog_pulls"), 20);
  EXPECT_GT(Int(r, "messages_sent"), 0);
  EXPECT_EQ(Int(r, "messages_acked"), Int(r, "messages_sent"));
  EXPECT_EQ(Int(r, "keepalives_acked"), Int(r, "keepalives_sent"));
  ExpectEveryCommandArrivedOnce(r, edge.output());
  EXPECT_EQ(Int(r, "answers_acked"), Int(r, "answers_sent"));
  EXPECT_EQ(r["closed_cleanly"], "yes");
  EXPECT_EQ(Int(r, "ended_not_ok"), 0);
  EXPECT_EQ(Int(r, "unexpected_acks"), 0);
  EXPECT_GT(Int(r, "rss_after_kib"), 0);
  EXPECT_EQ(edge.Terminate(absl::Seconds(30)), 0) << edge.output();
}

TEST(LoadgenSmokeTest, RefusedPeersAreCountedByStatus) {
  Child edge({EDGE_BENCH_EDGE_PATH, "--port=0", "--max_peers=5", "--max_seconds=120"});
  auto listening = Fields(edge.WaitForLine("listening", absl::Seconds(20)));
  ASSERT_GT(Int(listening, "port"), 0) << edge.output();
  auto r = RunLoadgen({absl::StrCat("--port=", listening["port"]), "--peers=8",
                       "--ramp_concurrency=1", "--workload=ramp"});
  EXPECT_EQ(Int(r, "admitted"), 5);
  EXPECT_EQ(Int(r, "refused"), 3);
  EXPECT_EQ(r["refused_codes"], "RESOURCE_EXHAUSTED:3");
  EXPECT_EQ(edge.Terminate(absl::Seconds(30)), 0) << edge.output();
}

// A closed-loop messages run against the echo server (acking from its own
// thread with `ack_from_thread`): every message acknowledged, the run
// drained and closed.
void ExpectClosedLoopAgainstTheEchoServerCompletes(bool ack_from_thread) {
  std::vector<std::string> command = {EDGE_ECHO_SERVER_PATH, "--port=0", "--max_seconds=120"};
  if (ack_from_thread) command.push_back("--ack_from_thread");
  Child echo(command);
  auto listening = Fields(echo.WaitForLine("listening", absl::Seconds(20)));
  ASSERT_GT(Int(listening, "port"), 0) << echo.output();
  auto r = RunLoadgen({absl::StrCat("--port=", listening["port"]),
                       absl::StrCat("--server_pid=", listening["pid"]), "--peers=10",
                       "--workload=messages", "--window=2", "--duration=1s"});
  EXPECT_EQ(Int(r, "admitted"), 10);
  EXPECT_GT(Int(r, "messages_sent"), 0);
  EXPECT_EQ(Int(r, "messages_acked"), Int(r, "messages_sent"));
  EXPECT_EQ(Int(r, "unexpected_acks"), 0);
  EXPECT_EQ(r["drained"], "yes");
  EXPECT_EQ(r["closed_cleanly"], "yes");
  EXPECT_EQ(echo.Terminate(absl::Seconds(30)), 0) << echo.output();
  if (ack_from_thread) {
    auto stats = Fields(echo.WaitForLine("edge_echo_server ack_thread", absl::Seconds(1)));
    // Every ack the peers got (messages, keepalives, the warm-up message's)
    // was started by the ack thread.
    EXPECT_EQ(Int(stats, "started"), Int(r, "messages_acked") + Int(r, "keepalives_acked") + 1)
        << echo.output();
    EXPECT_EQ(Int(stats, "ended"), 0);
  }
}

TEST(LoadgenSmokeTest, ClosedLoopAgainstTheEchoServerCompletes) {
  ExpectClosedLoopAgainstTheEchoServerCompletes(/*ack_from_thread=*/false);
}

TEST(LoadgenSmokeTest, ClosedLoopAgainstTheEchoServerAckingFromItsOwnThreadCompletes) {
  ExpectClosedLoopAgainstTheEchoServerCompletes(/*ack_from_thread=*/true);
}

TEST(LoadgenSmokeTest, CommandsPushedByTheBareServerArrive) {
  Child echo({EDGE_ECHO_SERVER_PATH, "--port=0", "--push", "--feed_port=0", "--max_seconds=120"});
  auto listening = Fields(echo.WaitForLine("listening", absl::Seconds(20)));
  ASSERT_GT(Int(listening, "port"), 0) << echo.output();
  ASSERT_GT(Int(listening, "feed"), 0) << echo.output();
  auto r = RunLoadgen({absl::StrCat("--port=", listening["port"]),
                       absl::StrCat("--feed=127.0.0.1:", listening["feed"]),
                       absl::StrCat("--server_pid=", listening["pid"]), "--peers=10",
                       "--workload=commands", "--command_rate=100", "--duration=1s"});
  EXPECT_EQ(Int(r, "admitted"), 10);
  ExpectEveryCommandArrivedOnce(r, echo.output());
  EXPECT_GT(Int(r, "answers_sent"), 0);
  EXPECT_EQ(Int(r, "answers_acked"), Int(r, "answers_sent"));
  EXPECT_EQ(r["closed_cleanly"], "yes");
  EXPECT_EQ(Int(r, "unexpected_acks"), 0);
  EXPECT_EQ(echo.Terminate(absl::Seconds(30)), 0) << echo.output();
  auto stats = Fields(echo.WaitForLine("edge_echo_server stats", absl::Seconds(1)));
  // Every command of the window and the warm-up's.
  EXPECT_EQ(Int(stats, "pushed"), Int(r, "commands_produced") + 1) << echo.output();
  EXPECT_EQ(Int(stats, "unknown_peer"), 0);
  EXPECT_EQ(Int(stats, "queue_full"), 0);
  EXPECT_EQ(Int(stats, "unsupported"), 0);
  EXPECT_EQ(Int(stats, "malformed"), 0);
}

TEST(LoadgenSmokeTest, TheBareServerCountsTheCommandsItCannotPush) {
  Child echo({EDGE_ECHO_SERVER_PATH, "--port=0", "--push", "--feed_port=0", "--max_seconds=120"});
  auto listening = Fields(echo.WaitForLine("listening", absl::Seconds(20)));
  ASSERT_GT(Int(listening, "feed"), 0) << echo.output();
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(Int(listening, "feed")));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0) << strerror(errno);
  // A line without a separator, a command it does not push, and a command
  // for a peer without a stream, in this order on one connection.
  const std::string lines =
      "no separator\n"
      "p1\t{\"type\":\"file_delete\",\"request_id\":\"r1\",\"catalog_ids\":[\"a\"]}\n"
      "nobody\t{\"type\":\"file_hash\",\"request_id\":\"r2\",\"catalog_id\":\"c\","
      "\"hash_types\":[\"sha256\"]}\n";
  ASSERT_EQ(write(fd, lines.data(), lines.size()), static_cast<ssize_t>(lines.size()));
  EXPECT_FALSE(echo.WaitForLine("no stream for peer \"nobody\"", absl::Seconds(20)).empty())
      << echo.output();
  EXPECT_NE(echo.output().find("not a file_hash with a request_id"), std::string::npos)
      << echo.output();
  close(fd);
  EXPECT_EQ(echo.Terminate(absl::Seconds(30)), 0) << echo.output();
  auto stats = Fields(echo.WaitForLine("edge_echo_server stats", absl::Seconds(1)));
  EXPECT_EQ(Int(stats, "pushed"), 0) << echo.output();
  EXPECT_EQ(Int(stats, "malformed"), 1);
  EXPECT_EQ(Int(stats, "unsupported"), 1);
  EXPECT_EQ(Int(stats, "unknown_peer"), 1);
}

TEST(LoadgenSmokeTest, CommandsThroughABrokerInItsOwnProcessArrive) {
  // Every topic edged uses, as bench/run.sh --broker creates them.
  Child broker({EDGE_KAFKA_BROKER_PATH, "edge-commands-smoke:4", "edge-commands-smoke.deadletter:1",
                "peer-lifecycle-events:1", "peer-catalog-updates:1", "file-delete-responses:1",
                "file-hash-responses:1", "peer-file-offers:1", "webrtc-signaling:1"});
  auto address = Fields(broker.WaitForLine("bootstrap=", absl::Seconds(20)));
  ASSERT_FALSE(address["bootstrap"].empty()) << broker.output();
  Child edged(
      {EDGED_PATH},
      {"EDGE_ID=smoke", "GRPC_SERVER_ADDRESS=0.0.0.0:0", "METRICS_ADDRESS=", "LOG_LEVEL=info",
       absl::StrCat("KAFKA_BOOTSTRAP_SERVERS=", address["bootstrap"]), "TRACKER=local"});
  const std::string line = edged.WaitForLine("edged listening", absl::Seconds(30));
  ASSERT_FALSE(line.empty()) << edged.output();
  const std::string grpc = Fields(line)["grpc"];
  ASSERT_FALSE(edged.WaitForLine("Kafka partitions assigned", absl::Seconds(30)).empty())
      << edged.output();
  auto r =
      RunLoadgen({absl::StrCat("--port=", grpc.substr(grpc.rfind(':') + 1)),
                  absl::StrCat("--kafka=", address["bootstrap"]),
                  "--command_topic=edge-commands-smoke", absl::StrCat("--server_pid=", edged.pid()),
                  "--peers=10", "--workload=commands", "--command_rate=100", "--duration=1s"});
  EXPECT_EQ(Int(r, "admitted"), 10) << r["output"];
  ExpectEveryCommandArrivedOnce(r, edged.output());
  EXPECT_EQ(Int(r, "answers_acked"), Int(r, "answers_sent")) << r["output"];
  EXPECT_EQ(edged.Terminate(absl::Seconds(30)), 0) << edged.output();
  EXPECT_EQ(broker.Terminate(absl::Seconds(30)), 0) << broker.output();
}

TEST(LoadgenSmokeTest, CommandsThroughEdgedsEmbeddedKafkaArrive) {
  Child edged({EDGED_PATH}, {"EDGE_ID=smoke", "GRPC_SERVER_ADDRESS=0.0.0.0:0", "METRICS_ADDRESS=",
                             "LOG_LEVEL=info", "KAFKA_BOOTSTRAP_SERVERS", "TRACKER=local"});
  const std::string line = edged.WaitForLine("edged listening", absl::Seconds(30));
  ASSERT_FALSE(line.empty()) << edged.output();
  auto fields = Fields(line);
  const std::string grpc = fields["grpc"];
  const std::string port = grpc.substr(grpc.rfind(':') + 1);
  // Commands are consumed once the consumer has its partition.
  ASSERT_FALSE(edged.WaitForLine("Kafka partitions assigned", absl::Seconds(30)).empty())
      << edged.output();
  auto r =
      RunLoadgen({absl::StrCat("--port=", port), absl::StrCat("--kafka=", fields["kafka"]),
                  "--command_topic=edge-commands-smoke", absl::StrCat("--server_pid=", edged.pid()),
                  "--peers=10", "--workload=commands", "--command_rate=100", "--duration=1s"});
  EXPECT_EQ(Int(r, "admitted"), 10) << r["output"];
  ExpectEveryCommandArrivedOnce(r, edged.output());
  EXPECT_EQ(Int(r, "answers_acked"), Int(r, "answers_sent")) << r["output"];
  EXPECT_EQ(edged.Terminate(absl::Seconds(30)), 0) << edged.output();
}

// Held peers keep sending keepalives while they are held: against an edge
// that ends a stream after two silent seconds, none ends in six.
TEST(LoadgenSmokeTest, HeldPeersStayConnectedPastThePeerTimeout) {
  Child edged({EDGED_PATH}, {"EDGE_ID=smoke", "GRPC_SERVER_ADDRESS=127.0.0.1:0",
                             "METRICS_ADDRESS=", "LOG_LEVEL=info", "KAFKA_BOOTSTRAP_SERVERS",
                             "TRACKER=local", "PEER_TIMEOUT_SEC=2"});
  const std::string line = edged.WaitForLine("edged listening", absl::Seconds(30));
  ASSERT_FALSE(line.empty()) << edged.output();
  Child hold({EDGE_LOADGEN_PATH, "--workload=hold",
              absl::StrCat("--targets=", Fields(line)["grpc"]), "--peers=10",
              "--keepalive_interval=100ms", "--duration=6s"});
  ASSERT_TRUE(hold.started());
  ASSERT_EQ(hold.Wait(absl::Seconds(60)), 0) << hold.output();
  // The last status line, printed as the hold ends.
  const std::string& out = hold.output();
  const size_t last = out.rfind("hold: status");
  ASSERT_NE(last, std::string::npos) << out;
  auto status = Fields(out.substr(last, out.find('\n', last) - last));
  EXPECT_EQ(Int(status, "connected"), 10) << out;
  EXPECT_EQ(Int(status, "admitted_total"), 10) << out;
  EXPECT_EQ(Int(status, "ended_not_ok"), 0) << out;
  EXPECT_EQ(Int(status, "reconnects"), 0) << out;
  EXPECT_EQ(edged.Terminate(absl::Seconds(30)), 0) << edged.output();
  EXPECT_EQ(edged.output().find("reason=timeout"), std::string::npos) << edged.output();
}

}  // namespace
