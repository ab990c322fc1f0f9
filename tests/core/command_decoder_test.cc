#include "core/command_decoder.h"

#include <string>

#include "gtest/gtest.h"

namespace edge {
namespace {

constexpr size_t kMax = 4 * 1024 * 1024;

DeadLetterReason ReasonOf(const std::string& value) {
  DecodeResult r = DecodeCommand(value, kMax);
  EXPECT_FALSE(r.ok()) << value;
  return r.ok() ? DeadLetterReason::kPeerSlow : r.error->reason;
}

TEST(CommandDecoderTest, DecodesEveryType) {
  struct Case {
    const char* json;
    CommandType type;
  } cases[] = {
      {R"({"type":"file_delete","peer_id":"p","catalog_ids":["a","b"]})", CommandType::kFileDelete},
      {R"({"type":"file_hash","peer_id":"p","catalog_id":"a","hash_types":["sha256"]})",
       CommandType::kFileHash},
      {R"({"type":"file_remap","peer_id":"p","old_catalog_id":"a","new_catalog_id":"b"})",
       CommandType::kFileRemap},
      {R"({"type":"screenshot","peer_id":"p","catalog_id":"a","upload_token":"t","upload_endpoint":"u"})",
       CommandType::kScreenshot},
      {R"({"type":"catalog_announcement","peer_id":"p"})", CommandType::kCatalogAnnouncement},
      {R"({"type":"batch_file_offer_response","peer_id":"p","files":[{"relative_path":"x","catalog_id":"c"}]})",
       CommandType::kBatchFileOfferResponse},
      {R"({"type":"webrtc","peer_id":"p","webrtc":{"ice_candidate":{"session_id":"s","candidate":"c"}}})",
       CommandType::kWebRtc},
      {R"({"type":"webrtc_reply","peer_id":"p","request_id":"r","webrtc":{"sdp_offer":{"session_id":"s","sdp":"v=0"}}})",
       CommandType::kWebRtcReply},
      {R"({"type":"disconnect","peer_id":"p","reason":"bye"})", CommandType::kDisconnect},
  };
  for (const Case& c : cases) {
    DecodeResult r = DecodeCommand(c.json, kMax);
    ASSERT_TRUE(r.ok()) << c.json << ": " << r.error->detail;
    EXPECT_EQ(r.command.type, c.type) << c.json;
    EXPECT_EQ(r.command.peer_id, "p");
  }
}

TEST(CommandDecoderTest, FillsPayloadsAndDefaults) {
  DecodeResult r = DecodeCommand(
      R"({"type":"screenshot","peer_id":"p","request_id":"r1","catalog_id":"a","extra":{"x":1}})",
      kMax);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.command.request_id, "r1");
  EXPECT_EQ(r.command.message.screenshot_capture_request().quantity(), 1);
  EXPECT_EQ(r.command.message.screenshot_capture_request().catalog_id(), "a");

  r = DecodeCommand(R"({"type":"file_delete","peer_id":"p","catalog_ids":["a","b"]})", kMax);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.command.message.file_delete_request().catalog_ids_size(), 2);
  EXPECT_EQ(r.command.message.file_delete_request().catalog_ids(1), "b");

  r = DecodeCommand(R"({"type":"webrtc_reply","peer_id":"p","request_id":"r9",)"
                    R"("webrtc":{"stream_session_response":{"session_id":"s","success":true}}})",
                    kMax);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.command.reply.request_id(), "r9");
  EXPECT_TRUE(r.command.reply.stream_session_response().success());
}

TEST(CommandDecoderTest, MalformedJsonIsInvalidJson) {
  EXPECT_EQ(ReasonOf("{not json"), DeadLetterReason::kInvalidJson);
  EXPECT_EQ(ReasonOf(""), DeadLetterReason::kInvalidJson);
  EXPECT_EQ(ReasonOf(R"({"type":"file_delete",)"), DeadLetterReason::kInvalidJson);
  EXPECT_EQ(ReasonOf(std::string("\xFF\xFE\x00\x01", 4)), DeadLetterReason::kInvalidJson);
  EXPECT_EQ(ReasonOf("{\"type\":\"file_delete\",\"peer_id\":\"p\xC3\"}"),
            DeadLetterReason::kInvalidJson);
}

TEST(CommandDecoderTest, WrongShapesAreInvalidCommands) {
  EXPECT_EQ(ReasonOf("[1,2]"), DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf("\"file_delete\""), DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_delete","peer_id":"p","catalog_ids":{"a":1}})"),
            DeadLetterReason::kInvalidCommand);
  // A lone string is not an array (protobuf's JSON mapping would take it as one).
  EXPECT_EQ(ReasonOf(R"({"type":"file_delete","peer_id":"p","catalog_ids":"a"})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_delete","peer_id":"p","catalog_ids":["a",1]})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_hash","peer_id":"p","catalog_id":["a"]})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"screenshot","peer_id":"p","catalog_id":"a","quantity":"3"})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"screenshot","peer_id":"p","catalog_id":"a","quantity":2.5})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"batch_file_offer_response","peer_id":"p","files":["x"]})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_hash","peer_id":"p","catalog_id":"a","request_id":7})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_delete","peer_id":7,"catalog_ids":["a"]})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"screenshot","peer_id":"p","catalog_id":"a","quantity":"many"})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"screenshot","peer_id":"p","catalog_id":"a","quantity":0})"),
            DeadLetterReason::kInvalidCommand);
}

TEST(CommandDecoderTest, MissingRequiredFieldsAreInvalidCommands) {
  EXPECT_EQ(ReasonOf(R"({"peer_id":"p"})"), DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_delete","catalog_ids":["a"]})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_delete","peer_id":"p"})"), DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_hash","peer_id":"p"})"), DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_remap","peer_id":"p","old_catalog_id":"a"})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(
      ReasonOf(
          R"({"type":"batch_file_offer_response","peer_id":"p","files":[{"relative_path":"x"}]})"),
      DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"webrtc","peer_id":"p"})"), DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"webrtc","peer_id":"p","webrtc":{}})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"webrtc","peer_id":"p","webrtc":{"sdp_answr":{}}})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(
      ReasonOf(
          R"({"type":"webrtc_reply","peer_id":"p","webrtc":{"sdp_offer":{"session_id":"s"}}})"),
      DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_delete","peer_id":"bad id","catalog_ids":["a"]})"),
            DeadLetterReason::kInvalidCommand);
}

TEST(CommandDecoderTest, NamesThePeerInTheErrorWhenItCanBeRead) {
  DecodeResult r = DecodeCommand(R"({"type":"file_delete","peer_id":"p-1","catalog_ids":7})", kMax);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->peer_id, "p-1");
  EXPECT_NE(r.error->detail.find("catalog_ids"), std::string::npos) << r.error->detail;
}

TEST(CommandDecoderTest, NullMembersReadAsAbsent) {
  DecodeResult r = DecodeCommand(
      R"({"type":"screenshot","peer_id":"p","catalog_id":"a","quantity":null,"request_id":null})",
      kMax);
  ASSERT_TRUE(r.ok()) << r.error->detail;
  EXPECT_EQ(r.command.message.screenshot_capture_request().quantity(), 1);
  EXPECT_TRUE(r.command.request_id.empty());
}

TEST(CommandDecoderTest, EscapedStringsAreDecoded) {
  DecodeResult r =
      DecodeCommand(R"({"type":"file_hash","peer_id":"p","catalog_id":"caf\u00e9 \"x\"\n"})", kMax);
  ASSERT_TRUE(r.ok()) << r.error->detail;
  EXPECT_EQ(r.command.message.file_hash_request().catalog_id(), "caf\xC3\xA9 \"x\"\n");
}

TEST(CommandDecoderTest, UnknownTypeIsUnknownType) {
  DecodeResult r = DecodeCommand(R"({"type":"format_disk","peer_id":"p"})", kMax);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->reason, DeadLetterReason::kUnknownType);
  EXPECT_EQ(r.error->peer_id, "p");
  EXPECT_NE(r.error->detail.find("format_disk"), std::string::npos);
}

TEST(CommandDecoderTest, HugeCommandsThatCannotReachThePeerAreRefused) {
  std::string ids;
  for (int i = 0; i < 100000; ++i) ids += (i ? ",\"" : "\"") + std::to_string(i) + "-catalog-id\"";
  std::string value = R"({"type":"file_delete","peer_id":"p","catalog_ids":[)" + ids + "]}";
  EXPECT_TRUE(DecodeCommand(value, kMax).ok());
  DecodeResult r = DecodeCommand(value, 64 * 1024);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->reason, DeadLetterReason::kInvalidCommand);
}

// Contract §4 / issue: a deeply nested value used to cost the parser time
// that grew faster than its size, on the one consumer thread. It is refused
// by the nesting check before any parser runs.
// `levels` arrays, or objects {"a":{"a":...:1}}, one inside the other.
std::string Nested(size_t levels, char open, char close) {
  std::string json;
  json.reserve(levels * 6);
  for (size_t i = 0; i < levels; ++i) {
    json += open;
    if (open == '{') json += "\"a\":";
  }
  if (open == '{') json += "1";
  json.append(levels, close);
  return json;
}

TEST(CommandDecoderTest, DeepNestingIsInvalidJsonNamingTheDepth) {
  for (size_t bytes : {80u * 1024, 1024u * 1024}) {
    for (char open : {'[', '{'}) {
      const char close = open == '[' ? ']' : '}';
      std::string value = Nested(bytes / (open == '[' ? 2 : 6), open, close);
      DecodeResult r = DecodeCommand(value, kMax);
      ASSERT_FALSE(r.ok()) << bytes << " bytes of " << open;
      EXPECT_EQ(r.error->reason, DeadLetterReason::kInvalidJson);
      EXPECT_NE(r.error->detail.find("nested deeper than 32 levels"), std::string::npos)
          << r.error->detail;
    }
  }
}

TEST(CommandDecoderTest, DeepNestingInAnIgnoredFieldIsInvalidJson) {
  std::string value = R"({"type":"catalog_announcement","peer_id":"p","extra":)" +
                      Nested(80 * 1024, '[', ']') + "}";
  DecodeResult r = DecodeCommand(value, kMax);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error->reason, DeadLetterReason::kInvalidJson);
  EXPECT_NE(r.error->detail.find("nested deeper than 32 levels (at byte 84)"), std::string::npos)
      << r.error->detail;
}

TEST(CommandDecoderTest, NestingUpToTheLimitAndBracketsInStringsAreAccepted) {
  // The command object is level 1: 31 more levels of objects fit.
  std::string value = R"({"type":"catalog_announcement","peer_id":"p","extra":)" +
                      Nested(kMaxJsonDepth - 1, '{', '}') + "}";
  DecodeResult r = DecodeCommand(value, kMax);
  ASSERT_TRUE(r.ok()) << r.error->detail;
  EXPECT_EQ(r.command.type, CommandType::kCatalogAnnouncement);

  value = R"({"type":"catalog_announcement","peer_id":"p","extra":)" +
          Nested(kMaxJsonDepth, '[', ']') + "}";
  EXPECT_EQ(ReasonOf(value), DeadLetterReason::kInvalidJson);

  // Brackets inside strings, escaped quotes included, are not nesting.
  std::string brackets(10000, '[');
  value = R"({"type":"disconnect","peer_id":"p","reason":"\"[)" + brackets + R"(\\"})";
  r = DecodeCommand(value, kMax);
  ASSERT_TRUE(r.ok()) << r.error->detail;
  EXPECT_EQ(r.command.reason, "\"[" + brackets + "\\");
}

TEST(CommandDecoderTest, CheckJsonDepthCountsOnlyStructure) {
  EXPECT_EQ(CheckJsonDepth(""), "");
  EXPECT_EQ(CheckJsonDepth("[[]]"), "");
  EXPECT_EQ(CheckJsonDepth(Nested(kMaxJsonDepth, '[', ']')), "");
  EXPECT_EQ(CheckJsonDepth(Nested(kMaxJsonDepth + 1, '[', ']')),
            "JSON nested deeper than 32 levels (at byte 32)");
  // Closing brackets beyond the opening ones do not lower the count below 0.
  EXPECT_EQ(CheckJsonDepth("]]]]" + Nested(kMaxJsonDepth, '[', ']')), "");
}

}  // namespace
}  // namespace edge
