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

// A member name given twice leaves the command without a meaning; protobuf's
// parser, which read commands before, refused it too.
TEST(CommandDecoderTest, RepeatedMemberNamesAreInvalidJson) {
  for (const char* json : {
           R"({"type":"file_hash","peer_id":"p","catalog_id":"a","catalog_id":"b"})",
           R"({"type":"file_hash","peer_id":"p","catalog_id":"a","catalog_id":null})",
           R"({"type":"catalog_announcement","peer_id":"p","extra":[{"x":1,"x":1}]})",
           R"({"type":"batch_file_offer_response","peer_id":"p",)"
           R"("files":[{"relative_path":"x","catalog_id":"c","catalog_id":"d"}]})",
           R"({"type":"webrtc","peer_id":"p","webrtc":{"iceCandidate":{"sessionId":"s"},)"
           R"("iceCandidate":{"sessionId":"t"}}})",
       }) {
    DecodeResult r = DecodeCommand(json, kMax);
    ASSERT_FALSE(r.ok()) << json;
    EXPECT_EQ(r.error->reason, DeadLetterReason::kInvalidJson) << json;
    EXPECT_NE(r.error->detail.find("appears twice"), std::string::npos) << r.error->detail;
  }
  // Many members: the same answer.
  std::string value = R"({"type":"catalog_announcement","peer_id":"p")";
  for (int i = 0; i < 100; ++i) value += ",\"m" + std::to_string(i) + "\":1";
  EXPECT_TRUE(DecodeCommand(value + "}", kMax).ok());
  EXPECT_EQ(ReasonOf(value + R"(,"m50":2})"), DeadLetterReason::kInvalidJson);
}

TEST(CommandDecoderTest, NumbersAreJsonNumbersWhateverTheirSpelling) {
  const std::string screenshot =
      R"({"type":"screenshot","peer_id":"p","catalog_id":"a","quantity":)";
  for (auto [spelling, quantity] : {std::pair<const char*, int>{"2", 2},
                                    {"2.0", 2},
                                    {"1e2", 100},
                                    {"20E-1", 2},
                                    {"0.03e2", 3}}) {
    DecodeResult r = DecodeCommand(screenshot + spelling + "}", kMax);
    ASSERT_TRUE(r.ok()) << spelling << ": " << r.error->detail;
    EXPECT_EQ(r.command.message.screenshot_capture_request().quantity(), quantity) << spelling;
  }
  EXPECT_EQ(ReasonOf(screenshot + "1e16}"), DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(screenshot + "123456789012345678901234567890}"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(screenshot + "-9223372036854775809}"), DeadLetterReason::kInvalidCommand);
  // Beyond a double's range: not a number JSON can carry here.
  EXPECT_EQ(ReasonOf(screenshot + "1e400}"), DeadLetterReason::kInvalidJson);
  // Integers of any length are JSON, in ignored members too.
  const std::string extra = R"({"type":"catalog_announcement","peer_id":"p","extra":)";
  for (const char* number : {"18446744073709551616", "-123456789012345678901234567890",
                             "[1,123456789012345678901234567890,\"12345678901234567890123\"]"}) {
    DecodeResult r = DecodeCommand(extra + number + "}", kMax);
    EXPECT_TRUE(r.ok()) << number << ": " << r.error->detail;
  }
}

// Not JSON, although protobuf's parser (which read commands before) took it.
TEST(CommandDecoderTest, NonJsonSyntaxIsInvalidJson) {
  const std::string start = R"({"type":"file_hash","peer_id":"p","catalog_id":)";
  for (const std::string& value : {
           start + R"('a'})",
           std::string(R"({type:"file_hash",peer_id:"p",catalog_id:"a"})"),
           start + R"("a",})",
           start + R"("a","x":[1,]})",
           start + R"("a","x":1.})",
           start + R"("a","x":01})",
           start + "\"a\tb\"}",
           start + R"("\x41"})",
           start + R"("\ud800"})",
           start + R"("a","x":NaN})",
           "\xEF\xBB\xBF" + start + R"("a"})",
           "\f" + start + R"("a"})",
           start + R"("a"} x)",
           start + R"("a"}{})",
           std::string(" "),
       }) {
    EXPECT_EQ(ReasonOf(value), DeadLetterReason::kInvalidJson) << value;
  }
  DecodeResult r = DecodeCommand(" \r\n\t" + start + R"("\ud83d\ude00\/"} )", kMax);
  ASSERT_TRUE(r.ok()) << r.error->detail;
  EXPECT_EQ(r.command.message.file_hash_request().catalog_id(), "\xF0\x9F\x98\x80/");
}

TEST(CommandDecoderTest, NullsInsideArraysAreInvalidCommands) {
  EXPECT_EQ(ReasonOf(R"({"type":"file_delete","peer_id":"p","catalog_ids":["a",null]})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"file_hash","peer_id":"p","catalog_id":"a","hash_types":[null]})"),
            DeadLetterReason::kInvalidCommand);
  EXPECT_EQ(ReasonOf(R"({"type":"batch_file_offer_response","peer_id":"p","files":[null]})"),
            DeadLetterReason::kInvalidCommand);
  DecodeResult r = DecodeCommand(
      R"({"type":"file_hash","peer_id":"p","catalog_id":"a","hash_types":null})", kMax);
  ASSERT_TRUE(r.ok()) << r.error->detail;
  EXPECT_EQ(r.command.message.file_hash_request().hash_types_size(), 0);
}

// The webrtc member keeps protobuf's JSON mapping: either field name
// spelling, numbers as strings, any spelling of an integer.
TEST(CommandDecoderTest, WebRtcMemberFollowsProtobufJsonMapping) {
  const std::string start = R"({"type":"webrtc","peer_id":"p","webrtc":{"iceCandidate":)";
  for (auto [candidate, index] :
       {std::pair<const char*, int>{R"({"sessionId":"s","sdpMLineIndex":1e0})", 1},
        {R"({"session_id":"s","sdp_m_line_index":"3"})", 3},
        {R"({"sessionId":"s","candidate":"c\"\u0001","sdpMLineIndex":-0})", 0}}) {
    DecodeResult r = DecodeCommand(start + candidate + "}}", kMax);
    ASSERT_TRUE(r.ok()) << candidate << ": " << r.error->detail;
    EXPECT_EQ(r.command.message.webrtc().ice_candidate().session_id(), "s");
    EXPECT_EQ(r.command.message.webrtc().ice_candidate().sdp_m_line_index(), index) << candidate;
  }
  DecodeResult r = DecodeCommand(start + R"({"sessionId":"s","candidate":"c\"\u0001"}}})", kMax);
  ASSERT_TRUE(r.ok()) << r.error->detail;
  EXPECT_EQ(r.command.message.webrtc().ice_candidate().candidate(), std::string("c\"\x01"));
  for (const char* candidate : {R"({"sessionId":"s","sdpMLineIndex":1.5})",
                                R"({"sessionId":"s","sdpMLineIndex":2147483648})",
                                R"({"sessionId":"s","bogus":1})", R"([])"}) {
    EXPECT_EQ(ReasonOf(start + candidate + "}}"), DeadLetterReason::kInvalidCommand) << candidate;
  }
}

// Small values reuse one parser per thread; large ones get their own. Either
// way each value is decoded on its own.
TEST(CommandDecoderTest, LargeAndSmallValuesAlternate) {
  std::string ids;
  for (int i = 0; i < 5000; ++i) ids += (i ? ",\"" : "\"") + std::to_string(i) + "-catalog-id\"";
  const std::string large = R"({"type":"file_delete","peer_id":"p","catalog_ids":[)" + ids + "]}";
  ASSERT_GT(large.size(), 64u * 1024);
  for (int round = 0; round < 3; ++round) {
    DecodeResult r = DecodeCommand(large, kMax);
    ASSERT_TRUE(r.ok()) << r.error->detail;
    EXPECT_EQ(r.command.message.file_delete_request().catalog_ids_size(), 5000);
    r = DecodeCommand(R"({"type":"file_delete","peer_id":"q","catalog_ids":["x"]})", kMax);
    ASSERT_TRUE(r.ok()) << r.error->detail;
    EXPECT_EQ(r.command.peer_id, "q");
    ASSERT_EQ(r.command.message.file_delete_request().catalog_ids_size(), 1);
    EXPECT_EQ(ReasonOf(large.substr(0, large.size() - 1)), DeadLetterReason::kInvalidJson);
  }
}

}  // namespace
}  // namespace edge
