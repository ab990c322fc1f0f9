#include "edge/topic_pattern.h"

#include "absl/strings/str_replace.h"

namespace edge {

std::string ResolveTopicPattern(absl::string_view pattern, absl::string_view edge_id) {
  return absl::StrReplaceAll(pattern, {{"{edge_id}", edge_id}, {"{}", edge_id}});
}

}  // namespace edge
