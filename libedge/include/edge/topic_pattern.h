// ResolveTopicPattern: an edge's topic from a pattern such as
// EDGE_COMMANDS_TOPIC_PATTERN (contract §8): every `{edge_id}` and `{}` is
// replaced by the edge id. The one rule for it: edged resolves its own topics
// with it and the core the command topic of the edge it forwards to.
//
//   edge::ResolveTopicPattern("edge-commands-{edge_id}", "edge-7")
//       == "edge-commands-edge-7"
#ifndef EDGE_TOPIC_PATTERN_H_
#define EDGE_TOPIC_PATTERN_H_

#include <string>

#include "absl/strings/string_view.h"

namespace edge {

std::string ResolveTopicPattern(absl::string_view pattern, absl::string_view edge_id);

}  // namespace edge

#endif  // EDGE_TOPIC_PATTERN_H_
