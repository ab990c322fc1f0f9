// Parses a peer's raw AsyncOperations message, and says precisely why one
// cannot be parsed.
//
// gRPC's own deserialisation turns a message that does not parse (a proto3
// string that is not UTF-8, or malformed bytes) into a failed read, which
// looks exactly like the peer's clean half-close: the stream used to end
// with OK and `reason: stream_closed`. The transport reads raw bytes instead
// and parses them here, so such a message ends the stream with
// INVALID_ARGUMENT, a message naming the field, and the lifecycle reason
// (kEndReasonPayload) `invalid_utf8` or `invalid_message`.
#ifndef EDGE_SRC_GRPC_PEER_MESSAGE_READER_H_
#define EDGE_SRC_GRPC_PEER_MESSAGE_READER_H_

#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"
#include "edge/peer_transport.h"

namespace edge::grpc_transport::internal {

// Parses `buffer` into `message`. On failure: INVALID_ARGUMENT with the end
// reason attached as the kEndReasonPayload payload.
absl::Status ParsePeerMessage(grpc::ByteBuffer* buffer, PeerMessage* message);

}  // namespace edge::grpc_transport::internal

#endif  // EDGE_SRC_GRPC_PEER_MESSAGE_READER_H_
