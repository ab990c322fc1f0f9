// The example peer's command line. Each flag falls back to an environment
// variable, and then to a default:
//
//   --edge=HOST:PORT           EDGE_ADDRESS        127.0.0.1:50051
//   --peer-id=ID               PEER_ID             (required)
//   --catalog=ID,ID,...        PEER_CATALOG        empty
//   --keepalive-sec=N          PEER_KEEPALIVE_SEC  30
//   --offer=PATH:SIZE,...      PEER_OFFER          none
//   --stream=CATALOG_ID        PEER_STREAM         none
#ifndef EDGE_EXAMPLES_PEER_PEER_OPTIONS_H_
#define EDGE_EXAMPLES_PEER_PEER_OPTIONS_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "giggityflix_grpc_peer/peer_edge.pb.h"

namespace edge {
namespace example {

struct PeerOptions {
  std::string edge_address = "127.0.0.1:50051";
  std::string peer_id;
  std::vector<std::string> catalog;
  absl::Duration keepalive = absl::Seconds(30);
  // Files offered once, at start, in one batch_file_offer.
  std::vector<giggityflix_grpc_peer::FileInfo> offer;
  // Once connected, negotiates one WebRTC streaming session of this catalog
  // id through the edge (StreamSession); empty: none.
  std::string stream;
};

// The usage text printed for --help and after a bad flag.
extern const char kPeerUsage[];

// Parses `args` (without the program name); `env` returns an environment
// variable or nullopt. Errors are INVALID_ARGUMENT naming the flag.
absl::StatusOr<PeerOptions> ParsePeerOptions(
    const std::vector<std::string>& args,
    const std::function<std::optional<std::string>(absl::string_view)>& env);

}  // namespace example
}  // namespace edge

#endif  // EDGE_EXAMPLES_PEER_PEER_OPTIONS_H_
