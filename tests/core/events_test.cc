#include "core/events.h"

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace edge {
namespace {

namespace gp = giggityflix_grpc_peer;

google::protobuf::Struct Parse(const std::string& json) {
  google::protobuf::Struct s;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &s).ok()) << json;
  return s;
}

const absl::Time kNow = absl::FromUnixMillis(1795500000123);  // 2026-11-25T...
const EventHeader kHeader{"peer-1", "edge-1", kNow};

TEST(EventsTest, TimestampIsRfc3339UtcWithMilliseconds) {
  EXPECT_EQ(FormatTimestamp(absl::FromUnixMillis(1767225600007)), "2026-01-01T00:00:00.007Z");
}

TEST(EventsTest, ConnectedHasTheContractFields) {
  std::string json = ConnectedEvent(kHeader, kNow - absl::Seconds(1), 42);
  EXPECT_EQ(json, "{\"peer_id\":\"peer-1\",\"edge_id\":\"edge-1\",\"timestamp\":\"" +
                      FormatTimestamp(kNow) +
                      "\",\"event_type\":\"connected\",\"catalog_ids\":[],\"connected_at\":\"" +
                      FormatTimestamp(kNow - absl::Seconds(1)) + "\",\"epoch\":42}");
  EXPECT_EQ(Parse(ConnectedEvent(kHeader, kNow, std::nullopt)).fields().count("epoch"), 0u);
}

TEST(EventsTest, DisconnectedCarriesReasonAndDuration) {
  auto s = Parse(DisconnectedEvent(kHeader, "timeout", kNow - absl::Milliseconds(1500), 7));
  EXPECT_EQ(s.fields().at("event_type").string_value(), "disconnected");
  EXPECT_EQ(s.fields().at("reason").string_value(), "timeout");
  EXPECT_EQ(s.fields().at("duration_ms").number_value(), 1500);
  EXPECT_EQ(s.fields().at("epoch").number_value(), 7);
  EXPECT_TRUE(s.fields().contains("connected_at"));
}

TEST(EventsTest, FileResponsesPrintFalseAndErrorOnlyWhenSet) {
  gp::FileDeleteResponse del;
  del.set_catalog_id("c1");
  auto s = Parse(FileDeleteEvent(kHeader, "r1", del));
  EXPECT_FALSE(s.fields().at("success").bool_value());
  EXPECT_TRUE(s.fields().contains("success"));
  EXPECT_FALSE(s.fields().contains("error"));
  del.set_error(gp::FILE_GONE);
  EXPECT_EQ(Parse(FileDeleteEvent(kHeader, "r1", del)).fields().at("error").string_value(),
            "FILE_GONE");

  gp::FileHashResponse hash;
  hash.set_catalog_id("c2");
  hash.set_success(true);
  (*hash.mutable_hashes())["sha256"] = "abc";
  s = Parse(FileHashEvent(kHeader, "r2", hash));
  EXPECT_EQ(s.fields().at("hashes").struct_value().fields().at("sha256").string_value(), "abc");
  EXPECT_EQ(s.fields().at("request_id").string_value(), "r2");
}

TEST(EventsTest, UnknownErrorValueIsPublishedAsItsNumber) {
  gp::FileDeleteResponse del;
  del.set_catalog_id("c1");
  del.set_error(static_cast<gp::CatalogErrorReason>(42));  // A newer peer's value.
  std::string json = FileDeleteEvent(kHeader, "r1", del);
  EXPECT_NE(json.find("\"error\":42"), std::string::npos) << json;

  gp::FileHashResponse hash;
  hash.set_catalog_id("c2");
  hash.set_error(static_cast<gp::CatalogErrorReason>(-3));
  json = FileHashEvent(kHeader, "r2", hash);
  EXPECT_NE(json.find("\"error\":-3"), std::string::npos) << json;
  EXPECT_EQ(json.find("\"error\":\"\""), std::string::npos) << json;
}

TEST(EventsTest, CatalogThatFitsIsOneRecordWithoutParts) {
  gp::CatalogAnnouncementResponse catalog;
  catalog.add_catalog_ids("a");
  auto parts = CatalogUpdateEvents(kHeader, "r1", catalog, 1000);
  ASSERT_TRUE(parts.ok()) << parts.status();
  ASSERT_EQ(parts->size(), 1u);
  EXPECT_EQ((*parts)[0], CatalogUpdateEvent(kHeader, "r1", catalog));
  EXPECT_FALSE(Parse((*parts)[0]).fields().contains("part"));
}

TEST(EventsTest, CatalogSplitKeepsEveryIdInOrderWithinTheLimit) {
  gp::CatalogAnnouncementResponse catalog;
  for (int i = 0; i < 1000; ++i) catalog.add_catalog_ids("id-" + std::to_string(i) + "\x1f");
  auto parts = CatalogUpdateEvents(kHeader, "r1", catalog, 1500);
  ASSERT_TRUE(parts.ok()) << parts.status();
  ASSERT_GT(parts->size(), 1u);
  int next = 0;
  for (size_t k = 0; k < parts->size(); ++k) {
    EXPECT_LE((*parts)[k].size(), 1500u);
    auto s = Parse((*parts)[k]);
    EXPECT_EQ(s.fields().at("part").number_value(), k + 1);
    EXPECT_EQ(s.fields().at("parts").number_value(), parts->size());
    EXPECT_TRUE(s.fields().at("is_full_update").bool_value());
    for (const auto& id : s.fields().at("catalog_ids").list_value().values()) {
      EXPECT_EQ(id.string_value(), "id-" + std::to_string(next++) + "\x1f");
    }
  }
  EXPECT_EQ(next, 1000);
}

TEST(EventsTest, CatalogIdTooLargeForAnyRecordIsRefused) {
  gp::CatalogAnnouncementResponse catalog;
  catalog.add_catalog_ids("small");
  catalog.add_catalog_ids(std::string(400, '\x01'));  // 2400 bytes of JSON.
  auto parts = CatalogUpdateEvents(kHeader, "r1", catalog, 2000);
  EXPECT_EQ(parts.status().code(), absl::StatusCode::kResourceExhausted) << parts.status();
}

TEST(EventsTest, OffersKeepSizesAsNumbers) {
  gp::FileOfferRequest offer;
  auto* f = offer.add_files();
  f->set_relative_path("movies/a.mkv");
  f->set_size_bytes(5000000000);
  std::string json = FileOfferEvent(kHeader, "r3", offer);
  EXPECT_NE(json.find("\"size_bytes\":5000000000"), std::string::npos) << json;
}

TEST(EventsTest, CatalogUpdateIsAFullUpdate) {
  gp::CatalogAnnouncementResponse catalog;
  catalog.add_catalog_ids("a");
  auto s = Parse(CatalogUpdateEvent(kHeader, "r4", catalog));
  EXPECT_TRUE(s.fields().at("is_full_update").bool_value());
  EXPECT_EQ(s.fields().at("catalog_ids").list_value().values(0).string_value(), "a");
}

TEST(EventsTest, WebRtcNamesKindSessionAndOrigin) {
  gp::PeerWebRTCMessage m;
  m.set_request_id("r5");
  m.mutable_sdp_offer()->set_session_id("s1");
  m.mutable_sdp_offer()->set_sdp("v=0");
  auto s = Parse(WebRtcEvent(kHeader, m, WebRtcOrigin::kStream));
  EXPECT_EQ(s.fields().at("kind").string_value(), "sdp_offer");
  EXPECT_EQ(s.fields().at("session_id").string_value(), "s1");
  EXPECT_EQ(s.fields().at("origin").string_value(), "stream");
  EXPECT_EQ(s.fields()
                .at("message")
                .struct_value()
                .fields()
                .at("sdp_offer")
                .struct_value()
                .fields()
                .at("sdp")
                .string_value(),
            "v=0");
}

TEST(EventsTest, DeadLetterKeepsTheOriginalEvenWhenBinary) {
  IncomingRecord original;
  original.topic = "edge-commands-edge-1";
  original.partition = 2;
  original.offset = 17;
  original.key = "peer-1";
  original.value = std::string("\xFF\x00\x01garbage", 10);
  OutgoingRecord r = DeadLetterRecord("dlq", "", "edge-1", DeadLetterReason::kInvalidJson,
                                      "not JSON", original, kNow);
  EXPECT_EQ(r.topic, "dlq");
  EXPECT_EQ(r.key, "peer-1");
  auto s = Parse(r.value);
  for (const char* field :
       {"peer_id", "edge_id", "reason", "detail", "original_topic", "original_partition",
        "original_offset", "original_message", "timestamp"}) {
    EXPECT_TRUE(s.fields().contains(field)) << field;
  }
  EXPECT_EQ(s.fields().at("reason").string_value(), "invalid_json");
  EXPECT_EQ(s.fields().at("original_offset").number_value(), 17);
  EXPECT_EQ(s.fields().at("original_message_base64").string_value(), "/wABZ2FyYmFnZQ==");
}

// A record whose headers alone exceed what a topic takes (> 1 MB) is
// dead-lettered reduced: headers cut, key cut, each marked.
TEST(EventsTest, ReducedDeadLetterCutsHeadersAndKeyWithMarkers) {
  IncomingRecord original;
  original.topic = "edge-commands-edge-1";
  original.key = std::string(100 * 1024, 'k');
  original.value = R"({"type":"catalog_announcement","peer_id":"peer-1"})";
  original.headers.push_back({"trace", "t-1"});
  for (int i = 0; i < 3; ++i) original.headers.push_back({"big", std::string(400 * 1024, 'h')});
  original.headers.push_back({"late", "small, but after the cut"});
  size_t header_bytes = 0;
  for (const RecordHeader& h : original.headers) header_bytes += h.key.size() + h.value.size();

  OutgoingRecord full = DeadLetterRecord("dlq", "peer-1", "edge-1", DeadLetterReason::kPeerSlow,
                                         "slow", original, kNow);
  EXPECT_EQ(full.headers.size(), original.headers.size());
  EXPECT_EQ(full.key, original.key);
  EXPECT_FALSE(Parse(full.value).fields().contains("original_headers_dropped"));

  OutgoingRecord reduced = DeadLetterRecord("dlq", "peer-1", "edge-1", DeadLetterReason::kPeerSlow,
                                            "slow", original, kNow, /*reduced=*/true);
  ASSERT_EQ(reduced.headers.size(), 1u);
  EXPECT_EQ(reduced.headers[0].key, "trace");
  EXPECT_EQ(reduced.key, original.key.substr(0, kReducedOriginalBytes));
  auto s = Parse(reduced.value);
  EXPECT_EQ(s.fields().at("original_headers_dropped").number_value(), 4);
  EXPECT_EQ(s.fields().at("original_headers_size").number_value(),
            static_cast<double>(header_bytes));
  EXPECT_TRUE(s.fields().at("original_key_truncated").bool_value());
  EXPECT_EQ(s.fields().at("original_key_size").number_value(), 100 * 1024);
  EXPECT_EQ(s.fields().at("original_message").string_value(), original.value);
  size_t size = reduced.key.size() + reduced.value.size();
  for (const RecordHeader& h : reduced.headers) size += h.key.size() + h.value.size();
  EXPECT_LT(size, 200u * 1024);
}

}  // namespace
}  // namespace edge
