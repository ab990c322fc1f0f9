#include "etcd_holder.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "edge/ids.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace edge::etcd::internal {

absl::Status CheckEdgeId(absl::string_view edge_id) {
  // Edge ids follow the peer_id rules (contract §8, EDGE_ID).
  if (absl::Status valid = ValidatePeerId(edge_id, "edge id"); !valid.ok()) {
    return absl::DataLossError(absl::StrCat("etcd holds the edge id \"",
                                            absl::CHexEscape(edge_id.substr(0, 200)),
                                            "\", which is invalid: ", valid.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RegisteredAddress(absl::string_view registration) {
  google::protobuf::Struct value;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  auto parsed =
      google::protobuf::util::JsonStringToMessage(std::string(registration), &value, options);
  auto field = value.fields().find("address");
  if (!parsed.ok() || field == value.fields().end() ||
      field->second.kind_case() != google::protobuf::Value::kStringValue) {
    return absl::DataLossError(
        absl::StrCat("etcd holds an edge registration without an address: \"",
                     absl::CHexEscape(registration.substr(0, 200)), "\""));
  }
  return field->second.string_value();
}

}  // namespace edge::etcd::internal
