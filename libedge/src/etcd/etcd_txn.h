// Builders for the etcd transactions of the cluster tracker (contract §9).
#ifndef EDGE_SRC_ETCD_ETCD_TXN_H_
#define EDGE_SRC_ETCD_ETCD_TXN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "etcdserverpb/rpc.pb.h"

namespace edge::etcd::internal::txn {

// Creates `key` = `value` bound to `lease` only if the key is absent;
// otherwise reads it. On success the response header's revision is the new
// key's create revision.
etcdserverpb::TxnRequest CreateOrGet(const std::string& key, const std::string& value,
                                     int64_t lease);

// Rebinds `key` to `lease`, keeping its create revision, only if it is
// unchanged since `mod_revision`.
etcdserverpb::TxnRequest Rebind(const std::string& key, const std::string& value, int64_t lease,
                                int64_t mod_revision);

// Deletes `key` only if it is unchanged since `mod_revision`.
etcdserverpb::TxnRequest DeleteIfUnchanged(const std::string& key, int64_t mod_revision);

// Deletes `key` only if it holds `value` and was created at
// `create_revision`: one claim, never a later one.
etcdserverpb::TxnRequest DeleteClaim(const std::string& key, const std::string& value,
                                     int64_t create_revision);

// Puts `key` = `value` bound to `lease`, unconditionally.
etcdserverpb::TxnRequest Put(const std::string& key, const std::string& value, int64_t lease);

// Reads `key`.
etcdserverpb::TxnRequest Get(const std::string& key);

// Reads `first` and `second` at one revision (responses 0 and 1).
etcdserverpb::TxnRequest GetTwo(const std::string& first, const std::string& second);

// Reads each of `keys` at one revision (response i for keys[i]). etcd
// refuses more than 128 operations in one request.
etcdserverpb::TxnRequest GetEach(const std::vector<std::string>& keys);

// A watch of the deletions of the keys from `first` up to the last key
// starting with `last_prefix`, from `start_revision` on; a batch too large
// for one message comes in fragments.
etcdserverpb::WatchCreateRequest DeletionsBetween(const std::string& first,
                                                  const std::string& last_prefix,
                                                  int64_t start_revision);

// The keys of one peer's claim (contract §9, docs/cluster.md): `peer` bound
// to the holder's lease, `record` without a lease (it outlives the holder),
// `lost` bound to the lease of the edge publishing a lost claim's edge_lost.
struct ClaimKeys {
  std::string peer;
  std::string record;
  std::string lost;
};

// A new claim: creates `peer` (lease) and `record` only if both are absent;
// otherwise reads `peer`, `record` and `lost`, in that order. The response
// header's revision is the claim's epoch.
etcdserverpb::TxnRequest NewClaim(const ClaimKeys& keys, const std::string& edge_id,
                                  const std::string& record_value, int64_t lease);

// A claim replacing this edge's own claim (same process): rewrites `peer`
// and `record` if both are unchanged and nobody is publishing a loss.
etcdserverpb::TxnRequest TakeOverClaim(const ClaimKeys& keys, const std::string& edge_id,
                                       const std::string& record_value, int64_t lease,
                                       int64_t peer_mod, int64_t record_mod);

// Takes lost claims for publishing: for each, if its record is unchanged
// since `record_mod`, its `peer` key unchanged since `peer_mod` (0: absent)
// and no `lost` key exists, deletes `peer` and creates `lost` = `edge_id`
// bound to `lease`. All or nothing; on failure reads record, peer and lost
// of each, in that order.
struct LostTake {
  ClaimKeys keys;
  int64_t record_mod = 0;
  int64_t peer_mod = 0;
};
etcdserverpb::TxnRequest TakeLost(const std::vector<LostTake>& takes, const std::string& edge_id,
                                  int64_t lease);

// A lost claim's edge_lost is out: deletes its record and `lost` key if
// neither changed.
etcdserverpb::TxnRequest FinishLost(const ClaimKeys& keys, int64_t record_mod, int64_t lost_mod);

// Succeeds only if a lost claim's record and lost key are unchanged since
// `record_mod` and `lost_mod` (it is still taken, and not yet finished).
etcdserverpb::TxnRequest StillTaken(const ClaimKeys& keys, int64_t record_mod, int64_t lost_mod);

// Deletes a claim whose transaction's outcome is unknown (it timed out):
// `record` and `peer`, only if the record still holds `record_value`, the
// exact value that transaction wrote.
etcdserverpb::TxnRequest DropUnknownClaim(const ClaimKeys& keys, const std::string& record_value);

// Releases one claim: deletes `record` and `peer` if the record is still
// the one written by the claim of `epoch`.
etcdserverpb::TxnRequest ReleaseClaim(const ClaimKeys& keys, int64_t epoch);

// Re-binds held claims to a new lease: for each, if its record is still
// the claim's (unchanged since `epoch`) and no loss is being published,
// puts `peer` = `edge_id` bound to `lease`. All or nothing; on failure
// reads record and lost of each, in that order.
struct HeldClaim {
  ClaimKeys keys;
  int64_t epoch = 0;
};
etcdserverpb::TxnRequest Reclaim(const std::vector<HeldClaim>& claims, const std::string& edge_id,
                                 int64_t lease);

// Several transactions as one (group commit): each of `txns` runs nested
// (etcd >= 3.3) with its own compares, so one's failure fails none of the
// others, and all of them at one revision. The outer transaction has no
// compares. The keys written by two of `txns` must differ (etcd refuses a
// key written twice in one request).
etcdserverpb::TxnRequest Nest(std::vector<etcdserverpb::TxnRequest> txns);

// The answer to `txns[index]` of a Nest, with the outer header (whose
// revision is that of the whole request); INTERNAL when etcd's answer has
// none.
absl::StatusOr<etcdserverpb::TxnResponse> TakeNested(etcdserverpb::TxnResponse& outer, int index);

// etcd (--max-txn-ops, default 128) refuses a request with more than 128
// operations in a branch, and a nested transaction with more than 128
// minus the outer branch's count. A NewClaim has 3, so at most 125 nest;
// a margin is kept.
inline constexpr int kMaxClaimsPerNest = 100;

// Group commit of new claims and releases (EtcdTracker): at most this many
// batches are in flight; claims and releases arriving meanwhile wait and
// go out together in the next (a release nests 3 operations, within the
// claims' cap). 2 and 4 measured no better than 1 (docs/performance.md).
inline constexpr int kClaimBatchesInFlight = 1;

// The keys under `prefix` without their values (each with its lease).
etcdserverpb::TxnRequest KeysUnder(const std::string& prefix);

// Counts the keys under `prefix_a` and under `prefix_b` at one revision.
etcdserverpb::TxnRequest CountTwo(const std::string& prefix_a, const std::string& prefix_b);

// One page of the keys under `prefix`, in key order from `from` on (""
// for the first), at most `limit` of them, read at `revision` (0: the
// current one); with `keys_only`, without their values.
etcdserverpb::TxnRequest PageUnder(const std::string& prefix, const std::string& from,
                                   int64_t limit, int64_t revision, bool keys_only);

// The key read by response `index` (a range); null when there was none.
const mvccpb::KeyValue* KeyAt(const etcdserverpb::TxnResponse& response, int index);

// The key read by the first response (a range); null when there was none.
const mvccpb::KeyValue* FirstKey(const etcdserverpb::TxnResponse& response);

// etcd's answer to a request naming a lease that does not exist.
bool IsLeaseNotFound(const absl::Status& status);

}  // namespace edge::etcd::internal::txn

#endif  // EDGE_SRC_ETCD_ETCD_TXN_H_
