#include "support/lifecycle_fold.h"

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace edge::testing {
namespace {

absl::Status Broken(size_t index, const LifecycleEvent& event, absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat(
      "event ", index, " (", event.event_type, " epoch ",
      event.epoch.has_value() ? absl::StrCat(*event.epoch) : "none", " from ", event.edge_id,
      event.reason.empty() ? "" : ", reason ", event.reason, "): ", why));
}

}  // namespace

absl::StatusOr<LifecycleFold> FoldLifecycle(const std::vector<LifecycleEvent>& events) {
  LifecycleFold fold;
  // The last claim seen (open or closed), and how it was closed.
  std::optional<int64_t> last_epoch;
  std::string closed_reason;
  // Claims closed by edge_lost: their own edge may still end them later
  // (it was cut off, not dead), even after the peer's next connected.
  absl::flat_hash_set<int64_t> lost_epochs;
  for (size_t i = 0; i < events.size(); ++i) {
    const LifecycleEvent& event = events[i];
    if (!event.epoch.has_value()) return Broken(i, event, "no epoch");
    const int64_t epoch = *event.epoch;
    if (event.event_type == "connected") {
      if (fold.open_epoch.has_value()) {
        return Broken(i, event,
                      absl::StrCat("epoch ", *fold.open_epoch, " is still open (no disconnected)"));
      }
      if (last_epoch.has_value() && epoch <= *last_epoch) {
        return Broken(i, event,
                      absl::StrCat("not newer than the previous claim's epoch ", *last_epoch));
      }
      fold.open_epoch = epoch;
      fold.open_edge = event.edge_id;
      last_epoch = epoch;
      closed_reason.clear();
      ++fold.claims;
    } else if (event.event_type == "disconnected") {
      if (fold.open_epoch == epoch) {
        fold.open_epoch.reset();
        fold.open_edge.clear();
        closed_reason = event.reason;
        if (event.reason == "edge_lost") lost_epochs.insert(epoch);
      } else if (lost_epochs.contains(epoch)) {
        ++fold.duplicates;
      } else if (!fold.open_epoch.has_value() && last_epoch == epoch) {
        if (closed_reason != "edge_lost" && event.reason != "edge_lost") {
          return Broken(i, event, "second disconnected of a claim, neither edge_lost");
        }
        ++fold.duplicates;
      } else if (!fold.open_epoch.has_value() && event.reason == "edge_lost" &&
                 (!last_epoch.has_value() || epoch > *last_epoch)) {
        // The claim's connected died with its edge, unstored.
        last_epoch = epoch;
        closed_reason = event.reason;
        lost_epochs.insert(epoch);
      } else {
        return Broken(i, event,
                      fold.open_epoch.has_value()
                          ? absl::StrCat("epoch ", *fold.open_epoch, " is open")
                          : "closes no claim");
      }
    } else {
      return Broken(i, event, "unknown event_type");
    }
  }
  return fold;
}

}  // namespace edge::testing
