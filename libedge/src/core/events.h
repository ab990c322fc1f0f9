// The JSON values of the events of contract §5 and of dead letters (§4).
//
// Field names are the contract's, exactly. Every event holds peer_id,
// edge_id and timestamp (RFC 3339, UTC, milliseconds).
#ifndef EDGE_SRC_CORE_EVENTS_H_
#define EDGE_SRC_CORE_EVENTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "edge/dead_letter_reason.h"
#include "edge/message_bus.h"
#include "giggityflix_grpc_peer/peer_edge.pb.h"

namespace edge {

// "2026-11-24T05:00:00.123Z"
std::string FormatTimestamp(absl::Time t);

struct EventHeader {
  absl::string_view peer_id;
  absl::string_view edge_id;
  absl::Time now;
};

std::string ConnectedEvent(const EventHeader& h, absl::Time connected_at,
                           std::optional<int64_t> epoch);
std::string DisconnectedEvent(const EventHeader& h, absl::string_view reason,
                              absl::Time connected_at, std::optional<int64_t> epoch);
std::string CatalogUpdateEvent(const EventHeader& h, absl::string_view request_id,
                               const giggityflix_grpc_peer::CatalogAnnouncementResponse& m);

// The catalog update as records of at most `max_bytes` each (0: no limit):
// one record, exactly CatalogUpdateEvent's, when it fits; otherwise the ids,
// in order, split across records that add `part` (1-based) and `parts`
// (docs/protocol.md says how a consumer joins them). RESOURCE_EXHAUSTED
// when a single id does not fit a record even alone.
absl::StatusOr<std::vector<std::string>> CatalogUpdateEvents(
    const EventHeader& h, absl::string_view request_id,
    const giggityflix_grpc_peer::CatalogAnnouncementResponse& m, size_t max_bytes);
std::string FileDeleteEvent(const EventHeader& h, absl::string_view request_id,
                            const giggityflix_grpc_peer::FileDeleteResponse& m);
std::string FileHashEvent(const EventHeader& h, absl::string_view request_id,
                          const giggityflix_grpc_peer::FileHashResponse& m);
std::string FileOfferEvent(const EventHeader& h, absl::string_view request_id,
                           const giggityflix_grpc_peer::FileOfferRequest& m);

// `message` is a PeerWebRTCMessage (origin "stream" or "call" from a peer)
// or an EdgeWebRTCMessage (origin "call"); kind is its payload case name.
enum class WebRtcOrigin { kCall, kStream };
std::string WebRtcEvent(const EventHeader& h, const google::protobuf::Message& message,
                        WebRtcOrigin origin);
// The session_id of a WebRTC message's payload ("" if it has none).
std::string WebRtcSessionId(const google::protobuf::Message& message);
// The payload case name ("sdp_offer", ...), "" if none.
std::string WebRtcKind(const google::protobuf::Message& message);

// The dead-letter record for `original`: same key and headers, the §4
// value. A value that is not UTF-8 is kept whole in
// `original_message_base64` as well. With `reduced`, for when the full
// letter cannot be stored (larger than the topic accepts), only the first
// kReducedOriginalBytes of the original are kept, marked by
// `original_message_truncated: true` and `original_size`; the original
// itself stays at original_topic / original_partition / original_offset.
// The reduced letter also keeps the original's headers only up to
// kReducedHeaderBytes (names and values, in order; the rest dropped, marked
// by `original_headers_dropped` (how many) and `original_headers_size` (all
// headers' bytes)) and a key only up to kReducedOriginalBytes (marked by
// `original_key_truncated: true` and `original_key_size`), so that it fits
// any topic that takes 200 KB records, however large the original was.
inline constexpr size_t kReducedOriginalBytes = 64 * 1024;
inline constexpr size_t kReducedHeaderBytes = 16 * 1024;
// Whether the reduced dead letter of `original` differs from the full one:
// its value, key or headers are larger than a reduced letter keeps.
bool DeadLetterReduces(const IncomingRecord& original);
OutgoingRecord DeadLetterRecord(const std::string& topic, absl::string_view peer_id,
                                absl::string_view edge_id, DeadLetterReason reason,
                                absl::string_view detail, const IncomingRecord& original,
                                absl::Time now, bool reduced = false);

}  // namespace edge

#endif  // EDGE_SRC_CORE_EVENTS_H_
