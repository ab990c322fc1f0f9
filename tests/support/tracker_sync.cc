#include "support/tracker_sync.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace edge::testing {
namespace {

// Bound on waiting for a callback; a tracker that never calls back fails.
constexpr absl::Duration kCallbackTimeout = absl::Seconds(15);

// Shared with the callback, which may run after a timed-out wait.
template <typename T>
struct Result {
  absl::Notification done;
  T value;
};

// Starts `call` with a callback that stores its answer, and waits for it.
template <typename T, typename Call>
T Await(Call call, const char* what) {
  auto result = std::make_shared<Result<T>>();
  call([result](T value) {
    result->value = std::move(value);
    result->done.Notify();
  });
  if (!result->done.WaitForNotificationWithTimeout(kCallbackTimeout)) {
    return absl::InternalError(absl::StrCat(what, " never called back"));
  }
  return result->value;
}

}  // namespace

absl::StatusOr<PeerClaim> ClaimSync(Tracker& tracker, const std::string& peer,
                                    absl::Duration timeout) {
  return Await<absl::StatusOr<PeerClaim>>(
      [&](auto done) { tracker.Claim(peer, absl::Now() + timeout, std::move(done)); }, "Claim");
}

absl::Status ReleaseSync(Tracker& tracker, const std::string& peer, const PeerClaim& claim) {
  return Await<absl::Status>([&](auto done) { tracker.Release(peer, claim, std::move(done)); },
                             "Release");
}

absl::StatusOr<std::string> LookupSync(Tracker& tracker, const std::string& peer,
                                       absl::Duration timeout) {
  return Await<absl::StatusOr<std::string>>(
      [&](auto done) { tracker.Lookup(peer, absl::Now() + timeout, std::move(done)); }, "Lookup");
}

absl::StatusOr<PeerHolder> LookupHolderSync(Tracker& tracker, const std::string& peer,
                                            absl::Duration timeout) {
  return Await<absl::StatusOr<PeerHolder>>(
      [&](auto done) { tracker.LookupHolder(peer, absl::Now() + timeout, std::move(done)); },
      "LookupHolder");
}

}  // namespace edge::testing
