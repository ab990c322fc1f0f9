#include "peer_message_reader.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include <optional>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "edge/ids.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/unknown_field_set.h"

namespace edge::grpc_transport::internal {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::UnknownField;
using google::protobuf::UnknownFieldSet;

// Nesting deeper than any PeerMessage has: the walk below stops there.
constexpr int kMaxDepth = 16;

// The first string field of `type`, at any depth, whose bytes in `fields`
// are not UTF-8, as "Type.field"; nullopt when there is none.
std::optional<std::string> FindInvalidUtf8(const Descriptor* type, const UnknownFieldSet& fields,
                                           int depth) {
  if (depth > kMaxDepth) return std::nullopt;
  for (int i = 0; i < fields.field_count(); ++i) {
    const UnknownField& field = fields.field(i);
    if (field.type() != UnknownField::TYPE_LENGTH_DELIMITED) continue;
    const FieldDescriptor* descriptor = type->FindFieldByNumber(field.number());
    if (descriptor == nullptr) continue;
    const std::string& bytes = field.length_delimited();
    if (descriptor->type() == FieldDescriptor::TYPE_STRING) {
      if (!IsValidUtf8(bytes)) return descriptor->full_name();
    } else if (descriptor->type() == FieldDescriptor::TYPE_MESSAGE) {
      UnknownFieldSet nested;
      if (!nested.ParseFromString(bytes)) continue;
      auto found = FindInvalidUtf8(descriptor->message_type(), nested, depth + 1);
      if (found.has_value()) return found;
    }
  }
  return std::nullopt;
}

absl::Status Refuse(absl::string_view reason, std::string message) {
  absl::Status status = absl::InvalidArgumentError(std::move(message));
  status.SetPayload(kEndReasonPayload, absl::Cord(reason));
  return status;
}

}  // namespace

absl::Status ParsePeerMessage(grpc::ByteBuffer* buffer, PeerMessage* message) {
  {
    grpc::ProtoBufferReader reader(buffer);
    if (message->ParseFromZeroCopyStream(&reader)) return absl::OkStatus();
  }
  // Only for a message that failed: find out why, to say so.
  std::string bytes;
  {
    grpc::ProtoBufferReader reader(buffer);
    const void* data;
    int size;
    while (reader.Next(&data, &size)) bytes.append(static_cast<const char*>(data), size);
  }
  UnknownFieldSet fields;
  if (fields.ParseFromString(bytes)) {
    if (auto field = FindInvalidUtf8(PeerMessage::descriptor(), fields, 0)) {
      return Refuse("invalid_utf8", absl::StrCat("the peer message's string field ", *field,
                                                 " is not valid UTF-8 (proto3 strings must be)"));
    }
  }
  return Refuse("invalid_message", absl::StrCat("the peer sent ", bytes.size(),
                                                " bytes that are not a valid PeerMessage"));
}

}  // namespace edge::grpc_transport::internal
