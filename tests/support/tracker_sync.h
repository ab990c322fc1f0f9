// Blocking wrappers around the Tracker interface for tests: each waits for
// the callback (inline or on another thread), at most 15 s; a tracker that
// never calls back gets INTERNAL "... never called back".
#ifndef EDGE_TESTS_SUPPORT_TRACKER_SYNC_H_
#define EDGE_TESTS_SUPPORT_TRACKER_SYNC_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "edge/tracker.h"

namespace edge::testing {

absl::StatusOr<PeerClaim> ClaimSync(Tracker& tracker, const std::string& peer,
                                    absl::Duration timeout = absl::Seconds(5));
absl::Status ReleaseSync(Tracker& tracker, const std::string& peer, const PeerClaim& claim);
absl::StatusOr<std::string> LookupSync(Tracker& tracker, const std::string& peer,
                                       absl::Duration timeout = absl::Seconds(5));
absl::StatusOr<PeerHolder> LookupHolderSync(Tracker& tracker, const std::string& peer,
                                            absl::Duration timeout = absl::Seconds(5));

}  // namespace edge::testing

#endif  // EDGE_TESTS_SUPPORT_TRACKER_SYNC_H_
