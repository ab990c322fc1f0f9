#include "peer_options.h"

#include <cstdint>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace edge {
namespace example {

const char kPeerUsage[] =
    "usage: edge_example_peer --peer-id=ID [--edge=HOST:PORT] "
    "[--catalog=ID,...]\n"
    "                         [--keepalive-sec=N] [--offer=PATH:SIZE,...]\n"
    "                         [--stream=CATALOG_ID]\n"
    "  --edge           edge address (EDGE_ADDRESS; default 127.0.0.1:50051)\n"
    "  --peer-id        this peer's id, 1-128 of [A-Za-z0-9._:@-] (PEER_ID)\n"
    "  --catalog        catalog ids this peer holds (PEER_CATALOG)\n"
    "  --keepalive-sec  seconds between keepalives (PEER_KEEPALIVE_SEC; "
    "default 30)\n"
    "  --offer          files offered once at start (PEER_OFFER)\n"
    "  --stream         negotiates a WebRTC session for this catalog id once\n"
    "                   connected (PEER_STREAM)\n";

namespace {

struct Flag {
  absl::string_view env;
  std::optional<std::string> value;
};

absl::Status Invalid(absl::string_view flag, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", problem));
}

bool IsValidPeerId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != ':' &&
        c != '@' && c != '-') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::vector<std::string>> ParseCatalog(absl::string_view text) {
  std::vector<std::string> ids;
  if (text.empty()) return ids;
  for (absl::string_view id : absl::StrSplit(text, ',')) {
    if (id.empty()) return Invalid("catalog", "has an empty catalog id");
    ids.emplace_back(id);
  }
  return ids;
}

absl::StatusOr<std::vector<giggityflix_grpc_peer::FileInfo>> ParseOffer(absl::string_view text) {
  std::vector<giggityflix_grpc_peer::FileInfo> files;
  if (text.empty()) return files;
  for (absl::string_view entry : absl::StrSplit(text, ',')) {
    // The size follows the last ':', so paths may contain ':'.
    size_t colon = entry.rfind(':');
    int64_t size = -1;
    if (colon == absl::string_view::npos || colon == 0 ||
        !absl::SimpleAtoi(entry.substr(colon + 1), &size) || size < 0) {
      return Invalid("offer", absl::StrCat("\"", entry,
                                           "\" is not PATH:SIZE with SIZE a "
                                           "byte count"));
    }
    giggityflix_grpc_peer::FileInfo& file = files.emplace_back();
    file.set_relative_path(std::string(entry.substr(0, colon)));
    file.set_size_bytes(size);
  }
  return files;
}

}  // namespace

absl::StatusOr<PeerOptions> ParsePeerOptions(
    const std::vector<std::string>& args,
    const std::function<std::optional<std::string>(absl::string_view)>& env) {
  std::map<std::string, Flag> flags = {
      {"edge", {"EDGE_ADDRESS", std::nullopt}},
      {"peer-id", {"PEER_ID", std::nullopt}},
      {"catalog", {"PEER_CATALOG", std::nullopt}},
      {"keepalive-sec", {"PEER_KEEPALIVE_SEC", std::nullopt}},
      {"offer", {"PEER_OFFER", std::nullopt}},
      {"stream", {"PEER_STREAM", std::nullopt}},
  };
  for (auto& [name, flag] : flags) flag.value = env(flag.env);
  for (const std::string& arg : args) {
    absl::string_view text = arg;
    size_t equals = text.find('=');
    if (!absl::ConsumePrefix(&text, "--") || equals == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("\"", arg, "\": expected --name=value"));
    }
    equals -= 2;  // now an index into `text`
    auto flag = flags.find(std::string(text.substr(0, equals)));
    if (flag == flags.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", text.substr(0, equals)));
    }
    flag->second.value = std::string(text.substr(equals + 1));
  }

  PeerOptions options;
  if (const auto& edge = flags["edge"].value) {
    if (edge->empty()) return Invalid("edge", "must not be empty");
    options.edge_address = *edge;
  }
  const auto& peer_id = flags["peer-id"].value;
  if (!peer_id) return Invalid("peer-id", "is required (or set PEER_ID)");
  if (!IsValidPeerId(*peer_id)) {
    return Invalid("peer-id", absl::StrCat("\"", *peer_id,
                                           "\" is not 1 to 128 characters of "
                                           "[A-Za-z0-9._:@-]"));
  }
  options.peer_id = *peer_id;
  if (const auto& catalog = flags["catalog"].value) {
    absl::StatusOr<std::vector<std::string>> ids = ParseCatalog(*catalog);
    if (!ids.ok()) return ids.status();
    options.catalog = *std::move(ids);
  }
  if (const auto& keepalive = flags["keepalive-sec"].value) {
    int seconds = 0;
    if (!absl::SimpleAtoi(*keepalive, &seconds) || seconds < 1 || seconds > 3600) {
      return Invalid("keepalive-sec",
                     absl::StrCat("\"", *keepalive, "\" is not an integer in [1, 3600]"));
    }
    options.keepalive = absl::Seconds(seconds);
  }
  if (const auto& offer = flags["offer"].value) {
    auto files = ParseOffer(*offer);
    if (!files.ok()) return files.status();
    options.offer = *std::move(files);
  }
  if (const auto& stream = flags["stream"].value) {
    if (stream->empty()) return Invalid("stream", "must not be empty");
    options.stream = *stream;
  }
  return options;
}

}  // namespace example
}  // namespace edge
