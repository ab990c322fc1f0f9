#include "examples/peer/example_peer.h"

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace edge {
namespace example {
namespace {

using giggityflix_grpc_peer::FILE_GONE;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

class ExamplePeerTest : public ::testing::Test {
 protected:
  ExamplePeerTest() : peer_({"a", "b", "c"}, [this] { return absl::StrCat("own-", ++ids_); }) {}

  static EdgeMessage Command(const std::string& request_id) {
    EdgeMessage message;
    message.set_request_id(request_id);
    message.set_edge_id("edge-1");
    return message;
  }

  int ids_ = 0;
  ExamplePeer peer_;
};

TEST_F(ExamplePeerTest, AnswersCatalogRequestWithSameRequestId) {
  EdgeMessage request = Command("r1");
  request.mutable_catalog_announcement_request();
  Outcome outcome = peer_.Handle(request, kStart);
  ASSERT_EQ(outcome.replies.size(), 1u);
  EXPECT_EQ(outcome.replies[0].request_id(), "r1");
  ASSERT_TRUE(outcome.replies[0].has_catalog_announcement());
  EXPECT_THAT(outcome.replies[0].catalog_announcement().catalog_ids(), ElementsAre("a", "b", "c"));
  // The answer now awaits the edge's acknowledgement.
  EXPECT_THAT(peer_.waiting(), ElementsAre("r1"));
  Outcome ack = peer_.Handle(Command("r1"), kStart);
  EXPECT_THAT(ack.replies, IsEmpty());
  EXPECT_THAT(ack.note, HasSubstr("acknowledged"));
  EXPECT_THAT(peer_.waiting(), IsEmpty());
}

TEST_F(ExamplePeerTest, KeepaliveIsAnEmptyAnnouncementWithFreshId) {
  PeerMessage first = peer_.Keepalive(kStart);
  PeerMessage second = peer_.Keepalive(kStart);
  EXPECT_TRUE(first.has_catalog_announcement());
  EXPECT_EQ(first.catalog_announcement().catalog_ids_size(), 0);
  EXPECT_EQ(first.request_id(), "own-1");
  EXPECT_EQ(second.request_id(), "own-2");
  EXPECT_THAT(peer_.waiting(), ElementsAre("own-1", "own-2"));
}

TEST_F(ExamplePeerTest, DeleteAnswersOncePerCatalogId) {
  EdgeMessage request = Command("d1");
  request.mutable_file_delete_request()->add_catalog_ids("b");
  request.mutable_file_delete_request()->add_catalog_ids("zz");
  Outcome outcome = peer_.Handle(request, kStart);
  ASSERT_EQ(outcome.replies.size(), 2u);
  const auto& deleted = outcome.replies[0];
  EXPECT_EQ(deleted.request_id(), "d1");
  EXPECT_EQ(deleted.file_delete_response().catalog_id(), "b");
  EXPECT_TRUE(deleted.file_delete_response().success());
  EXPECT_FALSE(deleted.file_delete_response().has_error());
  const auto& gone = outcome.replies[1];
  EXPECT_EQ(gone.request_id(), "d1");
  EXPECT_EQ(gone.file_delete_response().catalog_id(), "zz");
  EXPECT_FALSE(gone.file_delete_response().success());
  EXPECT_EQ(gone.file_delete_response().error(), FILE_GONE);
  EXPECT_THAT(peer_.catalog(), ElementsAre("a", "c"));

  // Two answers sent, so two acknowledgements are awaited.
  peer_.Handle(Command("d1"), kStart);
  EXPECT_THAT(peer_.waiting(), ElementsAre("d1"));
  peer_.Handle(Command("d1"), kStart);
  EXPECT_THAT(peer_.waiting(), IsEmpty());
}

TEST_F(ExamplePeerTest, HashesAreDeterministicPerType) {
  EdgeMessage request = Command("h1");
  request.mutable_file_hash_request()->set_catalog_id("a");
  request.mutable_file_hash_request()->add_hash_types("md5");
  request.mutable_file_hash_request()->add_hash_types("sha256");
  Outcome outcome = peer_.Handle(request, kStart);
  ASSERT_EQ(outcome.replies.size(), 1u);
  const auto& response = outcome.replies[0].file_hash_response();
  EXPECT_EQ(outcome.replies[0].request_id(), "h1");
  EXPECT_EQ(response.catalog_id(), "a");
  EXPECT_TRUE(response.success());
  EXPECT_THAT(response.hashes(), UnorderedElementsAre(Pair("md5", FakeHash("md5", "a")),
                                                      Pair("sha256", FakeHash("sha256", "a"))));
  EXPECT_EQ(FakeHash("md5", "a"), FakeHash("md5", "a"));
  EXPECT_NE(FakeHash("md5", "a"), FakeHash("md5", "b"));
  EXPECT_NE(FakeHash("md5", "a"), FakeHash("sha256", "a"));
  EXPECT_EQ(FakeHash("md5", "a").size(), 16u);
}

TEST_F(ExamplePeerTest, HashOfUnknownIdIsFileGone) {
  EdgeMessage request = Command("h2");
  request.mutable_file_hash_request()->set_catalog_id("nope");
  request.mutable_file_hash_request()->add_hash_types("md5");
  Outcome outcome = peer_.Handle(request, kStart);
  ASSERT_EQ(outcome.replies.size(), 1u);
  const auto& response = outcome.replies[0].file_hash_response();
  EXPECT_FALSE(response.success());
  EXPECT_EQ(response.error(), FILE_GONE);
  EXPECT_TRUE(response.hashes().empty());
}

TEST_F(ExamplePeerTest, RemapRenamesInCatalog) {
  EdgeMessage request = Command("m1");
  request.mutable_file_remap_request()->set_old_catalog_id("a");
  request.mutable_file_remap_request()->set_new_catalog_id("a2");
  EXPECT_THAT(peer_.Handle(request, kStart).replies, IsEmpty());
  EXPECT_THAT(peer_.catalog(), ElementsAre("a2", "b", "c"));

  request.set_request_id("m2");
  Outcome unknown = peer_.Handle(request, kStart);
  EXPECT_THAT(unknown.note, HasSubstr("not in catalog"));
  EXPECT_THAT(peer_.catalog(), ElementsAre("a2", "b", "c"));
}

TEST_F(ExamplePeerTest, ScreenshotRequestIsOnlyLogged) {
  EdgeMessage request = Command("s1");
  request.mutable_screenshot_capture_request()->set_catalog_id("a");
  request.mutable_screenshot_capture_request()->set_quantity(3);
  Outcome outcome = peer_.Handle(request, kStart);
  EXPECT_THAT(outcome.replies, IsEmpty());
  EXPECT_THAT(outcome.note, HasSubstr("3 of a"));
}

TEST_F(ExamplePeerTest, OfferResponseAddsCatalogIds) {
  giggityflix_grpc_peer::FileInfo file;
  file.set_relative_path("movies/x.mkv");
  file.set_size_bytes(42);
  PeerMessage offer = peer_.Offer({file}, kStart);
  EXPECT_EQ(offer.request_id(), "own-1");
  ASSERT_EQ(offer.batch_file_offer().files_size(), 1);
  EXPECT_EQ(offer.batch_file_offer().files(0).relative_path(), "movies/x.mkv");
  EXPECT_EQ(offer.batch_file_offer().files(0).size_bytes(), 42);

  // The answer carries the offer's id: taken as its reply, and cataloged.
  EdgeMessage answer = Command("own-1");
  auto* cataloged = answer.mutable_batch_file_offer_response()->add_files();
  cataloged->set_relative_path("movies/x.mkv");
  cataloged->set_catalog_id("x");
  Outcome outcome = peer_.Handle(answer, kStart);
  EXPECT_THAT(outcome.replies, IsEmpty());
  EXPECT_THAT(peer_.catalog(), ElementsAre("a", "b", "c", "x"));
  EXPECT_THAT(peer_.waiting(), IsEmpty());

  // An unsolicited one (its offer long expired) is cataloged too.
  answer.set_request_id("late");
  cataloged->set_catalog_id("y");
  peer_.Handle(answer, kStart);
  EXPECT_THAT(peer_.catalog(), ElementsAre("a", "b", "c", "x", "y"));
}

TEST_F(ExamplePeerTest, AwaitedIdIsAReplyNotACommand) {
  PeerMessage keepalive = peer_.Keepalive(kStart);
  EdgeMessage clash = Command(keepalive.request_id());
  clash.mutable_file_delete_request()->add_catalog_ids("a");
  Outcome outcome = peer_.Handle(clash, kStart);
  EXPECT_THAT(outcome.replies, IsEmpty());
  EXPECT_THAT(peer_.catalog(), ElementsAre("a", "b", "c"));
  EXPECT_THAT(outcome.note, HasSubstr("reply to"));
}

TEST_F(ExamplePeerTest, UnawaitedAcknowledgementIsLoggedOnly) {
  Outcome outcome = peer_.Handle(Command("stray"), kStart);
  EXPECT_THAT(outcome.replies, IsEmpty());
  EXPECT_THAT(outcome.note, HasSubstr("acknowledged: stray"));
}

TEST_F(ExamplePeerTest, WaitingExpiresAfterThirtySeconds) {
  peer_.Keepalive(kStart);
  peer_.Keepalive(kStart + absl::Seconds(10));
  EXPECT_THAT(peer_.ExpireWaiting(kStart + absl::Seconds(29)), IsEmpty());
  EXPECT_THAT(peer_.ExpireWaiting(kStart + absl::Seconds(30)), ElementsAre("own-1"));
  EXPECT_THAT(peer_.waiting(), ElementsAre("own-2"));
}

TEST(NewRequestIdTest, LooksLikeDistinctVersion4Uuids) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    std::string id = NewRequestId();
    ASSERT_EQ(id.size(), 36u) << id;
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 1000u);
}

}  // namespace
}  // namespace example
}  // namespace edge
