// The lifecycle fold of contract §5, as a checker: folds one peer's
// `connected` / `disconnected` events in offset order and says whether they
// keep the promise, for tests that watch a whole cluster.
//
// What a consumer needs is only the rule (apply an event only if its epoch
// is not older than the peer's open one; docs/cluster.md). The checker is
// stricter: per peer the topic must read connected(e1), disconnected(e1),
// connected(e2), disconnected(e2), ... with e1 < e2 < ..., except the
// duplicates §5 allows (a second disconnected of the same epoch where one of
// the two is `edge_lost`; after an `edge_lost` the claim's own, cut-off
// edge may end it late, even after the next connected), and a disconnected
// `edge_lost` whose connected died with its edge before the broker stored
// it.
//
//   std::vector<LifecycleEvent> events = ...;  // one peer, offset order
//   absl::StatusOr<LifecycleFold> fold = FoldLifecycle(events);
//   ASSERT_TRUE(fold.ok()) << fold.status();
//   EXPECT_TRUE(fold->open_epoch.has_value());  // connected at the end
#ifndef EDGE_TESTS_SUPPORT_LIFECYCLE_FOLD_H_
#define EDGE_TESTS_SUPPORT_LIFECYCLE_FOLD_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace edge::testing {

struct LifecycleEvent {
  std::string event_type;  // "connected" or "disconnected"
  std::optional<int64_t> epoch;
  std::string edge_id;
  std::string reason;  // disconnected only
};

struct LifecycleFold {
  // The claim open after the last event; nullopt when disconnected.
  std::optional<int64_t> open_epoch;
  std::string open_edge;
  int claims = 0;      // connected events
  int duplicates = 0;  // allowed second disconnected events
};

// OK with the fold, or FAILED_PRECONDITION naming the first event (by
// index) that breaks §5.
absl::StatusOr<LifecycleFold> FoldLifecycle(const std::vector<LifecycleEvent>& events);

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_LIFECYCLE_FOLD_H_
