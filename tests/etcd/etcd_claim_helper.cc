// A stand-in edge process for crash tests: claims peers through an
// EtcdTracker, prints "claimed" and waits to be killed.
//
//   etcd_claim_helper ENDPOINT KEY_PREFIX EDGE_ID TTL_SECONDS PEER...
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "edge/etcd/etcd_tracker.h"

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s ENDPOINT KEY_PREFIX EDGE_ID TTL_SECONDS PEER...\n", argv[0]);
    return 2;
  }
  edge::etcd::EtcdTrackerOptions options;
  options.endpoints = {argv[1]};
  options.key_prefix = argv[2];
  options.edge_id = argv[3];
  options.advertised_address = "127.0.0.1:1";
  options.lease_ttl = absl::Seconds(std::atoi(argv[4]));
  auto tracker = edge::etcd::EtcdTracker::Create(options);
  if (!tracker.ok()) {
    std::fprintf(stderr, "%s\n", tracker.status().ToString().c_str());
    return 1;
  }
  (*tracker)->Start().IgnoreError();
  for (int i = 5; i < argc; ++i) {
    absl::Notification done;
    absl::Status status;
    (*tracker)->Claim(argv[i], absl::Now() + absl::Seconds(5),
                      [&](absl::StatusOr<edge::PeerClaim> claim) {
                        status = claim.status();
                        done.Notify();
                      });
    done.WaitForNotification();
    if (!status.ok()) {
      std::fprintf(stderr, "claim %s: %s\n", argv[i], status.ToString().c_str());
      return 1;
    }
  }
  std::printf("claimed\n");
  std::fflush(stdout);
  while (true) pause();
}
