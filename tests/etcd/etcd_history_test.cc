// A dead edge's lost claims found from etcd's history of its lease's end
// (docs/cluster.md, "Failures"), not by reading every claim; and, where
// that history is compacted away, by reading every claim after all. The
// client's history read (EtcdClient::WatchSync) against a real etcd too.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "etcd/etcd_tracker_fixture.h"
#include "gmock/gmock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "support/wait.h"

namespace edge::testing {
namespace {

const absl::Duration kStartWindow = kTtl + absl::Seconds(2);

// Compacts etcd's history before its current revision.
absl::Status Compact(const std::string& endpoint, int64_t revision) {
  auto kv =
      etcdserverpb::KV::NewStub(grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  etcdserverpb::CompactionRequest request;
  request.set_revision(revision);
  request.set_physical(true);
  etcdserverpb::CompactionResponse response;
  grpc::Status status = kv->Compact(&context, request, &response);
  if (!status.ok()) return absl::UnknownError(status.error_message());
  return absl::OkStatus();
}

// The `taking lost claims` lines of a JSON log: how each look found its
// claims, and how many.
std::vector<std::pair<std::string, int>> Takes(FILE* log) {
  std::string all(1 << 20, '\0');
  const ssize_t n = pread(fileno(log), all.data(), all.size(), 0);
  all.resize(n > 0 ? n : 0);
  std::vector<std::pair<std::string, int>> takes;
  for (absl::string_view line : absl::StrSplit(all, '\n')) {
    if (!absl::StrContains(line, "\"msg\":\"taking lost claims\"")) continue;
    auto field = [&](absl::string_view name) {
      const std::string marker = absl::StrCat("\"", name, "\":\"");
      size_t at = line.find(marker);
      if (at == absl::string_view::npos) return std::string();
      at += marker.size();
      return std::string(line.substr(at, line.find('"', at) - at));
    };
    int count = 0;
    EXPECT_TRUE(absl::SimpleAtoi(field("count"), &count)) << line;
    takes.emplace_back(field("found_by"), count);
  }
  return takes;
}

// The keys a lease's end deletes arrive in one batch, whole even when etcd
// sends it in fragments; history etcd compacted is OUT_OF_RANGE.
TEST_F(EtcdTrackerTest, WatchHandsALeasesEndWholeAndReportsCompaction) {
  // etcd fragments a watch answer above its request limit plus 512 KiB:
  // with a 64 KiB limit, the ~900 KB of deletions below come in pieces.
  EtcdProcess::Options small_requests;
  small_requests.extra_args = {"--max-request-bytes=65536"};
  absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start(small_requests);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  etcd_ = *std::move(etcd);
  auto client = etcd::internal::EtcdClient::Create({etcd_->endpoint()}, &Logger::Null());
  ASSERT_TRUE(client.ok()) << client.status();
  auto lease = (*client)->LeaseGrantSync(60, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(lease.ok()) << lease.status();
  // 3,000 keys of ~300 bytes, deleted at one revision.
  const int keys = 3000;
  const std::string pad(280, 'x');
  for (int first = 0; first < keys; first += 100) {
    etcdserverpb::TxnRequest puts;
    for (int i = first; i < first + 100; ++i) {
      auto* put = puts.add_success()->mutable_request_put();
      put->set_key(absl::StrCat("/w/peers/", pad, i));
      put->set_lease(lease->id());
    }
    ASSERT_TRUE((*client)->TxnSync(puts, absl::Now() + absl::Seconds(5)).ok());
  }
  ASSERT_TRUE((*client)
                  ->TxnSync(etcd::internal::txn::Put("/w/edges/e", "{}", lease->id()),
                            absl::Now() + absl::Seconds(5))
                  .ok());
  absl::StatusOr<int64_t> before = Revision();
  ASSERT_TRUE(before.ok());
  ASSERT_TRUE((*client)->LeaseRevokeSync(lease->id(), absl::Now() + absl::Seconds(5)).ok());
  // A later deletion, after the one looked for.
  ASSERT_TRUE((*client)
                  ->TxnSync(etcd::internal::txn::Put("/w/peers/later", "", 0),
                            absl::Now() + absl::Seconds(5))
                  .ok());
  absl::StatusOr<int64_t> later = Revision();
  ASSERT_TRUE(later.ok());
  ASSERT_TRUE((*client)
                  ->TxnSync(etcd::internal::txn::DeleteIfUnchanged("/w/peers/later", *later),
                            absl::Now() + absl::Seconds(5))
                  .ok());

  std::vector<etcdserverpb::WatchResponse> batches;
  absl::Status read = (*client)->WatchSync(
      etcd::internal::txn::DeletionsBetween("/w/edges/", "/w/peers/", *before + 1),
      absl::Now() + absl::Seconds(10), [&](const etcdserverpb::WatchResponse& batch) {
        batches.push_back(batch);
        for (const mvccpb::Event& event : batch.events()) {
          if (event.kv().key() == "/w/edges/e") return true;
        }
        return false;
      });
  ASSERT_TRUE(read.ok()) << read;
  // One batch, whole: every key the lease's end deleted, at its revision
  // (the batch may hold later revisions too).
  ASSERT_EQ(batches.size(), 1u);
  std::set<std::string> deleted;
  for (const mvccpb::Event& event : batches[0].events()) {
    EXPECT_EQ(event.type(), mvccpb::Event::DELETE);
    if (event.kv().mod_revision() == *before + 1) deleted.insert(event.kv().key());
  }
  EXPECT_EQ(deleted.size(), static_cast<size_t>(keys + 1));

  absl::StatusOr<int64_t> now = Revision();
  ASSERT_TRUE(now.ok());
  ASSERT_TRUE(Compact(etcd_->endpoint(), *now).ok());
  read = (*client)->WatchSync(
      etcd::internal::txn::DeletionsBetween("/w/edges/", "/w/peers/", *before + 1),
      absl::Now() + absl::Seconds(10), [](const etcdserverpb::WatchResponse&) { return true; });
  EXPECT_EQ(read.code(), absl::StatusCode::kOutOfRange) << read;
}

// A survivor takes a dead edge's claims from the history of its lease's
// end: no look at every claim (the periodic check is an hour away, the
// survivor's start window is over) takes any.
TEST_F(EtcdTrackerTest, ADeadEdgesClaimsAreFoundFromTheEndOfItsLease) {
  lost_claim_check_interval_ = absl::Hours(1);
  request_timeout_ = absl::Seconds(5);  // the history is read once
  DyingEdge dying;
  ASSERT_NO_FATAL_FAILURE(StartDyingEdge(50, dying));
  FILE* log_file = tmpfile();
  ASSERT_NE(log_file, nullptr);
  Logger log(LogLevel::kInfo, LogFormat::kJson, fileno(log_file));
  logger_ = &log;
  LostClaims lost;
  auto survivor = NewTracker("edge-survivor");
  survivor->SetLostClaimListener(lost.Listener());
  ASSERT_TRUE(survivor->Start().ok());
  // Not synchronisation: the survivor's start window must be over, so
  // that only the ended registration leads it to the lost claims.
  absl::SleepFor(kStartWindow + absl::Seconds(1));
  ASSERT_TRUE(lost.peers().empty());

  dying.proxy->SetConnected(false);
  ASSERT_TRUE(WaitFor([&] { return lost.peers() == dying.claimed; }, kTtl + absl::Seconds(8)))
      << lost.peers().size() << " of " << dying.claimed.size() << " found";
  int taken = 0;
  for (const auto& [how, count] : Takes(log_file)) {
    EXPECT_EQ(how, "a lease's end");
    taken += count;
  }
  EXPECT_EQ(taken, 50);
  survivor.reset();
  fclose(log_file);
}

// etcd compacted its history right after the lease's end: the survivor
// cannot read the end from it, reads every claim instead, and finds them
// all. (A survivor that reads the history in the few milliseconds between
// the end and the compaction takes them from the history; the claims are
// found either way.)
TEST_F(EtcdTrackerTest, ClaimsAreFoundWhenTheEndOfTheLeaseIsCompactedAway) {
  lost_claim_check_interval_ = absl::Hours(1);
  DyingEdge dying;
  ASSERT_NO_FATAL_FAILURE(StartDyingEdge(30, dying));
  LostClaims lost;
  auto survivor = NewTracker("edge-survivor");
  survivor->SetLostClaimListener(lost.Listener());
  ASSERT_TRUE(survivor->Start().ok());
  absl::SleepFor(kStartWindow + absl::Seconds(1));  // as above

  absl::StatusOr<mvccpb::KeyValue> registration = ReadKey("/test/edges/edge-dying");
  ASSERT_TRUE(registration.ok()) << registration.status();
  dying.proxy->SetConnected(false);  // it can neither renew nor reclaim
  ASSERT_TRUE(RevokeLease(registration->lease()).ok());
  // One more revision, so that the compaction takes the end itself.
  ASSERT_TRUE(PutKey("/other", "").ok());
  absl::StatusOr<int64_t> now = Revision();
  ASSERT_TRUE(now.ok());
  ASSERT_TRUE(Compact(etcd_->endpoint(), *now).ok());

  EXPECT_TRUE(WaitFor([&] { return lost.peers() == dying.claimed; }, absl::Seconds(10)))
      << lost.peers().size() << " of " << dying.claimed.size() << " found";
}

}  // namespace
}  // namespace edge::testing
