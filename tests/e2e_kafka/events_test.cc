// Contract §3 and §5 end to end: what peers send over gRPC becomes exactly
// the documented event on the documented Kafka topic; acknowledgements
// follow storage; lifecycle events come once each, in order.
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "e2e_kafka/edged_kafka_fixture.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace edge::testing {
namespace {

namespace gp = giggityflix_grpc_peer;
using google::protobuf::Struct;
using google::protobuf::Value;
using ::testing::UnorderedElementsAreArray;

constexpr absl::Duration kEventTimeout = absl::Seconds(20);

std::vector<std::string> Keys(const Struct& object) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : object.fields()) keys.push_back(key);
  return keys;
}

std::vector<std::string> WithHeader(std::vector<std::string> fields) {
  fields.insert(fields.end(), {"peer_id", "edge_id", "timestamp"});
  return fields;
}

// `value` as compact JSON, for messages.
std::string Json(const Value& value) {
  std::string out;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(value, &out).ok());
  return out;
}

// Whether `value` equals the JSON `expected`; object members in any order.
::testing::AssertionResult JsonEq(const Value& value, const std::string& expected) {
  Value want;
  if (!google::protobuf::util::JsonStringToMessage(expected, &want).ok()) {
    return ::testing::AssertionFailure() << "bad expected JSON " << expected;
  }
  if (google::protobuf::util::MessageDifferencer::Equals(value, want)) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "got " << Json(value) << ", want " << expected;
}

bool IsTimestamp(const std::string& text) {
  static const std::regex kRfc3339Millis(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  return std::regex_match(text, kRfc3339Millis);
}

// The single record of `reader` whose value has this request_id.
Struct EventFor(TopicReader& reader, const std::string& request_id) {
  std::vector<Struct> matching;
  for (const Struct& value : ParseAll(reader.records())) {
    if (JsonString(value, "request_id") == request_id) matching.push_back(value);
  }
  EXPECT_EQ(matching.size(), 1u) << "events with request_id " << request_id << " on "
                                 << reader.topic();
  return matching.empty() ? Struct() : matching[0];
}

gp::PeerMessage DeleteResponse(const std::string& request_id, const std::string& catalog_id,
                               bool success, std::optional<gp::CatalogErrorReason> error) {
  gp::PeerMessage m;
  m.set_request_id(request_id);
  m.mutable_file_delete_response()->set_catalog_id(catalog_id);
  m.mutable_file_delete_response()->set_success(success);
  if (error.has_value()) m.mutable_file_delete_response()->set_error(*error);
  return m;
}

TEST_F(EdgedKafkaTest, EveryPeerMessageBecomesItsEventOnItsTopic) {
  StartEdged({{"CATALOG_PULL_ON_CONNECT", "false"}});
  auto peer = ConnectPeer("peer-ev");
  ASSERT_NE(peer, nullptr);

  std::vector<gp::PeerMessage> sent;
  sent.push_back(DeleteResponse("d-ok", "c1", true, std::nullopt));
  sent.push_back(DeleteResponse("d-denied", "c2", false, gp::PERMISSION_DENIED));
  sent.push_back(DeleteResponse("d-bad", "c3", false, gp::BAD_CATALOG_ID));
  {
    gp::PeerMessage m;
    m.set_request_id("h-ok");
    auto* r = m.mutable_file_hash_response();
    r->set_catalog_id("c1");
    (*r->mutable_hashes())["sha256"] = "9f86d081";
    (*r->mutable_hashes())["md5"] = "098f6bcd";
    r->set_success(true);
    sent.push_back(m);
  }
  {
    gp::PeerMessage m;
    m.set_request_id("h-gone");
    m.mutable_file_hash_response()->set_catalog_id("c2");
    m.mutable_file_hash_response()->set_success(false);
    m.mutable_file_hash_response()->set_error(gp::FILE_GONE);
    sent.push_back(m);
  }
  {
    gp::PeerMessage m;
    m.set_request_id("cat-1");
    m.mutable_catalog_announcement()->add_catalog_ids("c1");
    m.mutable_catalog_announcement()->add_catalog_ids("c2");
    sent.push_back(m);
  }
  {
    gp::PeerMessage m;
    m.set_request_id("offer-1");
    auto* a = m.mutable_batch_file_offer()->add_files();
    a->set_relative_path("films/a.mkv");
    a->set_size_bytes(1234);
    auto* b = m.mutable_batch_file_offer()->add_files();
    b->set_relative_path("films/b.mkv");
    b->set_size_bytes(5000000000);
    sent.push_back(m);
  }
  {
    gp::PeerMessage m;
    m.set_request_id("rtc-offer");
    m.mutable_webrtc()->set_request_id("rtc-offer");
    m.mutable_webrtc()->mutable_sdp_offer()->set_session_id("s-1");
    m.mutable_webrtc()->mutable_sdp_offer()->set_sdp("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n");
    sent.push_back(m);
  }
  {
    gp::PeerMessage m;
    m.set_request_id("rtc-ice");
    m.mutable_webrtc()->set_request_id("rtc-ice");
    auto* ice = m.mutable_webrtc()->mutable_ice_candidate();
    ice->set_session_id("s-1");
    ice->set_candidate("candidate:1 1 UDP 2122 10.0.0.2 5000 typ host");
    ice->set_sdp_mid("0");
    ice->set_sdp_m_line_index(1);
    sent.push_back(m);
  }
  for (const gp::PeerMessage& m : sent) ASSERT_TRUE(peer->Send(m));

  // Acknowledged once stored: everything but the file offer.
  for (const gp::PeerMessage& m : sent) {
    if (m.has_batch_file_offer()) continue;
    EXPECT_TRUE(peer->WaitForAck(m.request_id(), kEventTimeout)) << m.request_id();
  }

  auto deletes = Reader(kFileDeleteTopic);
  auto hashes = Reader(kFileHashTopic);
  auto catalog = Reader(kCatalogTopic);
  auto offers = Reader(kFileOffersTopic);
  auto webrtc = Reader(kWebRtcTopic);
  ASSERT_TRUE(deletes && hashes && catalog && offers && webrtc);
  ASSERT_TRUE(deletes->WaitForCount(3, kEventTimeout));
  ASSERT_TRUE(hashes->WaitForCount(2, kEventTimeout));
  ASSERT_TRUE(catalog->WaitForCount(1, kEventTimeout));
  ASSERT_TRUE(offers->WaitForCount(1, kEventTimeout));
  ASSERT_TRUE(webrtc->WaitForCount(2, kEventTimeout));
  for (TopicReader* reader :
       {deletes.get(), hashes.get(), catalog.get(), offers.get(), webrtc.get()}) {
    ASSERT_TRUE(reader->CatchUp().ok());
    for (const IncomingRecord& record : reader->records()) {
      EXPECT_EQ(record.key, "peer-ev") << reader->topic();
      auto value = ParseJsonObject(record.value);
      ASSERT_TRUE(value.ok()) << value.status();
      EXPECT_EQ(JsonString(*value, "peer_id"), "peer-ev");
      EXPECT_EQ(JsonString(*value, "edge_id"), edge_id());
      EXPECT_TRUE(IsTimestamp(JsonString(*value, "timestamp"))) << record.value;
    }
  }
  EXPECT_EQ(deletes->records().size(), 3u);
  EXPECT_EQ(hashes->records().size(), 2u);
  EXPECT_EQ(catalog->records().size(), 1u);
  EXPECT_EQ(offers->records().size(), 1u);
  EXPECT_EQ(webrtc->records().size(), 2u);

  Struct d_ok = EventFor(*deletes, "d-ok");
  EXPECT_THAT(Keys(d_ok),
              UnorderedElementsAreArray(WithHeader({"request_id", "catalog_id", "success"})));
  EXPECT_EQ(JsonString(d_ok, "catalog_id"), "c1");
  EXPECT_TRUE(d_ok.fields().at("success").bool_value());
  Struct d_denied = EventFor(*deletes, "d-denied");
  EXPECT_THAT(Keys(d_denied), UnorderedElementsAreArray(
                                  WithHeader({"request_id", "catalog_id", "success", "error"})));
  EXPECT_FALSE(d_denied.fields().at("success").bool_value());
  EXPECT_EQ(JsonString(d_denied, "error"), "PERMISSION_DENIED");
  // BAD_CATALOG_ID is the enum's zero: set, so named.
  EXPECT_EQ(JsonString(EventFor(*deletes, "d-bad"), "error"), "BAD_CATALOG_ID");

  Struct h_ok = EventFor(*hashes, "h-ok");
  EXPECT_THAT(Keys(h_ok), UnorderedElementsAreArray(
                              WithHeader({"request_id", "catalog_id", "hashes", "success"})));
  EXPECT_TRUE(JsonEq(h_ok.fields().at("hashes"), R"({"md5":"098f6bcd","sha256":"9f86d081"})"));
  EXPECT_TRUE(h_ok.fields().at("success").bool_value());
  Struct h_gone = EventFor(*hashes, "h-gone");
  EXPECT_EQ(JsonString(h_gone, "error"), "FILE_GONE");
  EXPECT_TRUE(JsonEq(h_gone.fields().at("hashes"), "{}"));
  EXPECT_FALSE(h_gone.fields().at("success").bool_value());

  Struct cat = EventFor(*catalog, "cat-1");
  EXPECT_THAT(Keys(cat), UnorderedElementsAreArray(
                             WithHeader({"request_id", "catalog_ids", "is_full_update"})));
  EXPECT_TRUE(JsonEq(cat.fields().at("catalog_ids"), R"(["c1","c2"])"));
  EXPECT_TRUE(cat.fields().at("is_full_update").bool_value());

  Struct offer = EventFor(*offers, "offer-1");
  EXPECT_THAT(Keys(offer), UnorderedElementsAreArray(WithHeader({"request_id", "files"})));
  EXPECT_TRUE(JsonEq(offer.fields().at("files"),
                     R"([{"relative_path":"films/a.mkv","size_bytes":1234},)"
                     R"({"relative_path":"films/b.mkv","size_bytes":5000000000}])"));
  // A file offer is answered by a later command, never acknowledged.
  EXPECT_FALSE(peer->HasAck("offer-1"));

  Struct sdp = EventFor(*webrtc, "rtc-offer");
  EXPECT_THAT(Keys(sdp), UnorderedElementsAreArray(WithHeader(
                             {"request_id", "session_id", "kind", "message", "origin"})));
  EXPECT_EQ(JsonString(sdp, "session_id"), "s-1");
  EXPECT_EQ(JsonString(sdp, "kind"), "sdp_offer");
  EXPECT_EQ(JsonString(sdp, "origin"), "stream");
  gp::PeerWebRTCMessage relayed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(Json(sdp.fields().at("message")), &relayed).ok());
  EXPECT_EQ(relayed.SerializeAsString(), sent[7].webrtc().SerializeAsString());
  Struct ice = EventFor(*webrtc, "rtc-ice");
  EXPECT_EQ(JsonString(ice, "kind"), "ice_candidate");
  EXPECT_EQ(JsonString(ice, "origin"), "stream");
  EXPECT_EQ(JsonString(ice.fields().at("message").struct_value(), "request_id"), "rtc-ice");
}

TEST_F(EdgedKafkaTest, TheAnswerToTheEdgesCatalogPullIsAFullUpdateEvenWhenEmpty) {
  StartEdged();
  // A peer with nothing: its empty answer to the pull is not a keepalive.
  TestPeer::Options empty;
  auto bare = ConnectPeer("peer-empty", empty);
  ASSERT_NE(bare, nullptr);
  std::optional<gp::EdgeMessage> pull = bare->WaitForMessage(
      [](const gp::EdgeMessage& m) { return m.has_catalog_announcement_request(); }, kEventTimeout);
  ASSERT_TRUE(pull.has_value());
  EXPECT_FALSE(pull->request_id().empty());
  EXPECT_EQ(pull->edge_id(), edge_id());
  gp::PeerMessage answer;
  answer.set_request_id(pull->request_id());
  answer.mutable_catalog_announcement();
  ASSERT_TRUE(bare->Send(answer));
  EXPECT_TRUE(bare->WaitForAck(pull->request_id(), kEventTimeout));

  // A peer that answers as the real ones do.
  TestPeer::Options full;
  full.auto_answer = true;
  full.catalog = {"movie-1", "movie-2"};
  auto stocked = ConnectPeer("peer-full", full);
  ASSERT_NE(stocked, nullptr);
  std::optional<gp::EdgeMessage> second_pull = stocked->WaitForMessage(
      [](const gp::EdgeMessage& m) { return m.has_catalog_announcement_request(); }, kEventTimeout);
  ASSERT_TRUE(second_pull.has_value());
  EXPECT_NE(second_pull->request_id(), pull->request_id());

  auto catalog = Reader(kCatalogTopic);
  ASSERT_NE(catalog, nullptr);
  ASSERT_TRUE(catalog->WaitForCount(2, kEventTimeout));
  ASSERT_TRUE(catalog->CatchUp().ok());
  ASSERT_EQ(catalog->records().size(), 2u);
  Struct empty_update = EventFor(*catalog, pull->request_id());
  EXPECT_EQ(JsonString(empty_update, "peer_id"), "peer-empty");
  EXPECT_TRUE(JsonEq(empty_update.fields().at("catalog_ids"), "[]"));
  EXPECT_TRUE(empty_update.fields().at("is_full_update").bool_value());
  Struct full_update = EventFor(*catalog, second_pull->request_id());
  EXPECT_EQ(JsonString(full_update, "peer_id"), "peer-full");
  EXPECT_TRUE(JsonEq(full_update.fields().at("catalog_ids"), R"(["movie-1","movie-2"])"));
}

TEST_F(EdgedKafkaTest, KeepalivesAreAcknowledgedAndNotPublished) {
  StartEdged({{"CATALOG_PULL_ON_CONNECT", "false"}});
  auto peer = ConnectPeer("peer-ka");
  ASSERT_NE(peer, nullptr);
  for (int i = 0; i < 5; ++i) {
    std::string id = absl::StrCat("keepalive-", i);
    ASSERT_TRUE(peer->SendKeepalive(id));
    EXPECT_TRUE(peer->WaitForAck(id, kEventTimeout)) << id;
  }
  // A real announcement afterwards, published behind the keepalives.
  gp::PeerMessage marker;
  marker.set_request_id("marker");
  marker.mutable_catalog_announcement()->add_catalog_ids("c1");
  ASSERT_TRUE(peer->Send(marker));
  ASSERT_TRUE(peer->WaitForAck("marker", kEventTimeout));
  std::optional<gp::EdgeMessage> ack =
      peer->WaitForMessage([](const gp::EdgeMessage& m) { return m.request_id() == "marker"; });
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->edge_id(), edge_id());
  EXPECT_EQ(ack->payload_case(), gp::EdgeMessage::PAYLOAD_NOT_SET);

  auto catalog = Reader(kCatalogTopic);
  ASSERT_NE(catalog, nullptr);
  ASSERT_TRUE(catalog->WaitForCount(1, kEventTimeout));
  ASSERT_TRUE(catalog->CatchUp().ok());
  ASSERT_EQ(catalog->records().size(), 1u) << catalog->records()[0].value;
  EXPECT_EQ(JsonString(*ParseJsonObject(catalog->records()[0].value), "request_id"), "marker");
}

TEST_F(EdgedKafkaTest, LifecycleEventsComeOncePerPeerConnectedThenDisconnected) {
  constexpr int kPeers = 6;
  StartEdged();
  std::vector<std::unique_ptr<TestPeer>> peers;
  for (int i = 0; i < kPeers; ++i) {
    peers.push_back(ConnectPeer(absl::StrCat("life-", i)));
    ASSERT_NE(peers.back(), nullptr);
  }
  // Half of them leave politely, half just go away.
  for (int i = 0; i < kPeers; ++i) {
    if (i % 2 == 0) {
      peers[i]->HalfClose();
    } else {
      peers[i]->Cancel();
    }
  }
  for (auto& peer : peers) ASSERT_TRUE(peer->WaitForEnd(kEventTimeout).has_value());

  auto lifecycle = Reader(kLifecycleTopic);
  ASSERT_NE(lifecycle, nullptr);
  ASSERT_TRUE(lifecycle->WaitForCount(2 * kPeers, kEventTimeout))
      << lifecycle->records().size() << " lifecycle events";
  ASSERT_TRUE(lifecycle->CatchUp().ok());
  EXPECT_EQ(lifecycle->records().size(), 2u * kPeers);
  for (int i = 0; i < kPeers; ++i) {
    std::string peer_id = absl::StrCat("life-", i);
    std::vector<Struct> events = ParseAll(lifecycle->RecordsWithKey(peer_id));
    ASSERT_EQ(events.size(), 2u) << peer_id;
    const Struct& connected = events[0];
    const Struct& disconnected = events[1];
    EXPECT_THAT(Keys(connected), UnorderedElementsAreArray(
                                     WithHeader({"event_type", "catalog_ids", "connected_at"})));
    EXPECT_EQ(JsonString(connected, "event_type"), "connected");
    EXPECT_EQ(JsonString(connected, "peer_id"), peer_id);
    EXPECT_TRUE(JsonEq(connected.fields().at("catalog_ids"), "[]"));
    EXPECT_TRUE(IsTimestamp(JsonString(connected, "connected_at")));
    EXPECT_THAT(Keys(disconnected), UnorderedElementsAreArray(WithHeader(
                                        {"event_type", "reason", "connected_at", "duration_ms"})));
    EXPECT_EQ(JsonString(disconnected, "event_type"), "disconnected");
    EXPECT_EQ(JsonString(disconnected, "reason"), "stream_closed") << peer_id;
    EXPECT_EQ(JsonString(disconnected, "connected_at"), JsonString(connected, "connected_at"));
    EXPECT_GE(disconnected.fields().at("duration_ms").number_value(), 0);
  }
}

}  // namespace
}  // namespace edge::testing
