#include "etcd_txn.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace edge::etcd::internal::txn {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::TxnRequest;
using Ops = google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>;

Compare* AddCompare(TxnRequest& txn, const std::string& key, Compare::CompareTarget target) {
  Compare* compare = txn.add_compare();
  compare->set_result(Compare::EQUAL);
  compare->set_target(target);
  compare->set_key(key);
  return compare;
}

void AddPut(Ops* ops, const std::string& key, const std::string& value, int64_t lease) {
  auto* put = ops->Add()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(lease);
}

void AddRange(Ops* ops, const std::string& key) {
  ops->Add()->mutable_request_range()->set_key(key);
}

void AddDelete(Ops* ops, const std::string& key) {
  ops->Add()->mutable_request_delete_range()->set_key(key);
}

// The end of the range of keys starting with `prefix` (prefix + 1).
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) < 0xff) {
      prefix.back() = static_cast<char>(prefix.back() + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');
}

etcdserverpb::RangeRequest* AddPrefixRange(Ops* ops, const std::string& prefix) {
  auto* range = ops->Add()->mutable_request_range();
  range->set_key(prefix);
  range->set_range_end(PrefixEnd(prefix));
  return range;
}

}  // namespace

TxnRequest NewClaim(const ClaimKeys& keys, const std::string& edge_id,
                    const std::string& record_value, int64_t lease) {
  TxnRequest txn;
  AddCompare(txn, keys.peer, Compare::CREATE)->set_create_revision(0);
  AddCompare(txn, keys.record, Compare::CREATE)->set_create_revision(0);
  AddPut(txn.mutable_success(), keys.peer, edge_id, lease);
  AddPut(txn.mutable_success(), keys.record, record_value, 0);
  AddRange(txn.mutable_failure(), keys.peer);
  AddRange(txn.mutable_failure(), keys.record);
  AddRange(txn.mutable_failure(), keys.lost);
  return txn;
}

TxnRequest TakeOverClaim(const ClaimKeys& keys, const std::string& edge_id,
                         const std::string& record_value, int64_t lease, int64_t peer_mod,
                         int64_t record_mod) {
  TxnRequest txn;
  AddCompare(txn, keys.peer, Compare::MOD)->set_mod_revision(peer_mod);
  AddCompare(txn, keys.record, Compare::MOD)->set_mod_revision(record_mod);
  AddCompare(txn, keys.lost, Compare::CREATE)->set_create_revision(0);
  AddPut(txn.mutable_success(), keys.peer, edge_id, lease);
  AddPut(txn.mutable_success(), keys.record, record_value, 0);
  return txn;
}

TxnRequest TakeLost(const std::vector<LostTake>& takes, const std::string& edge_id, int64_t lease) {
  TxnRequest txn;
  for (const LostTake& take : takes) {
    AddCompare(txn, take.keys.record, Compare::MOD)->set_mod_revision(take.record_mod);
    AddCompare(txn, take.keys.peer, Compare::MOD)->set_mod_revision(take.peer_mod);
    AddCompare(txn, take.keys.lost, Compare::CREATE)->set_create_revision(0);
    AddDelete(txn.mutable_success(), take.keys.peer);
    AddPut(txn.mutable_success(), take.keys.lost, edge_id, lease);
    AddRange(txn.mutable_failure(), take.keys.record);
    AddRange(txn.mutable_failure(), take.keys.peer);
    AddRange(txn.mutable_failure(), take.keys.lost);
  }
  return txn;
}

TxnRequest FinishLost(const ClaimKeys& keys, int64_t record_mod, int64_t lost_mod) {
  TxnRequest txn;
  AddCompare(txn, keys.record, Compare::MOD)->set_mod_revision(record_mod);
  AddCompare(txn, keys.lost, Compare::MOD)->set_mod_revision(lost_mod);
  AddDelete(txn.mutable_success(), keys.record);
  AddDelete(txn.mutable_success(), keys.lost);
  return txn;
}

TxnRequest StillTaken(const ClaimKeys& keys, int64_t record_mod, int64_t lost_mod) {
  TxnRequest txn;
  AddCompare(txn, keys.record, Compare::MOD)->set_mod_revision(record_mod);
  AddCompare(txn, keys.lost, Compare::MOD)->set_mod_revision(lost_mod);
  return txn;
}

TxnRequest DropUnknownClaim(const ClaimKeys& keys, const std::string& record_value) {
  TxnRequest txn;
  AddCompare(txn, keys.record, Compare::VALUE)->set_value(record_value);
  AddDelete(txn.mutable_success(), keys.record);
  AddDelete(txn.mutable_success(), keys.peer);
  return txn;
}

TxnRequest ReleaseClaim(const ClaimKeys& keys, int64_t epoch) {
  TxnRequest txn;
  AddCompare(txn, keys.record, Compare::MOD)->set_mod_revision(epoch);
  AddDelete(txn.mutable_success(), keys.record);
  AddDelete(txn.mutable_success(), keys.peer);
  return txn;
}

TxnRequest Reclaim(const std::vector<HeldClaim>& claims, const std::string& edge_id,
                   int64_t lease) {
  TxnRequest txn;
  for (const HeldClaim& claim : claims) {
    AddCompare(txn, claim.keys.record, Compare::MOD)->set_mod_revision(claim.epoch);
    AddCompare(txn, claim.keys.lost, Compare::CREATE)->set_create_revision(0);
    AddPut(txn.mutable_success(), claim.keys.peer, edge_id, lease);
    AddRange(txn.mutable_failure(), claim.keys.record);
    AddRange(txn.mutable_failure(), claim.keys.lost);
  }
  return txn;
}

TxnRequest Nest(std::vector<TxnRequest> txns) {
  TxnRequest txn;
  for (TxnRequest& nested : txns) {
    *txn.add_success()->mutable_request_txn() = std::move(nested);
  }
  return txn;
}

absl::StatusOr<etcdserverpb::TxnResponse> TakeNested(etcdserverpb::TxnResponse& outer, int index) {
  if (index < 0 || outer.responses_size() <= index || !outer.responses(index).has_response_txn()) {
    return absl::InternalError(absl::StrCat("etcd answered a batch of transactions without answer ",
                                            index, " (", outer.responses_size(), " answers)"));
  }
  etcdserverpb::TxnResponse nested =
      std::move(*outer.mutable_responses(index)->mutable_response_txn());
  *nested.mutable_header() = outer.header();
  return nested;
}

TxnRequest KeysUnder(const std::string& prefix) {
  TxnRequest txn;
  AddPrefixRange(txn.mutable_success(), prefix)->set_keys_only(true);
  return txn;
}

TxnRequest CountTwo(const std::string& prefix_a, const std::string& prefix_b) {
  TxnRequest txn;
  AddPrefixRange(txn.mutable_success(), prefix_a)->set_count_only(true);
  AddPrefixRange(txn.mutable_success(), prefix_b)->set_count_only(true);
  return txn;
}

TxnRequest PageUnder(const std::string& prefix, const std::string& from, int64_t limit,
                     int64_t revision, bool keys_only) {
  TxnRequest txn;
  etcdserverpb::RangeRequest* range = AddPrefixRange(txn.mutable_success(), prefix);
  if (!from.empty()) range->set_key(from);
  range->set_limit(limit);
  range->set_revision(revision);
  range->set_keys_only(keys_only);
  return txn;
}

const mvccpb::KeyValue* KeyAt(const etcdserverpb::TxnResponse& response, int index) {
  if (response.responses_size() <= index || !response.responses(index).has_response_range() ||
      response.responses(index).response_range().kvs_size() < 1) {
    return nullptr;
  }
  return &response.responses(index).response_range().kvs(0);
}

TxnRequest CreateOrGet(const std::string& key, const std::string& value, int64_t lease) {
  TxnRequest txn;
  AddCompare(txn, key, Compare::CREATE)->set_create_revision(0);
  AddPut(txn.mutable_success(), key, value, lease);
  txn.add_failure()->mutable_request_range()->set_key(key);
  return txn;
}

TxnRequest Rebind(const std::string& key, const std::string& value, int64_t lease,
                  int64_t mod_revision) {
  TxnRequest txn;
  AddCompare(txn, key, Compare::MOD)->set_mod_revision(mod_revision);
  AddPut(txn.mutable_success(), key, value, lease);
  return txn;
}

TxnRequest DeleteIfUnchanged(const std::string& key, int64_t mod_revision) {
  TxnRequest txn;
  AddCompare(txn, key, Compare::MOD)->set_mod_revision(mod_revision);
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  return txn;
}

TxnRequest DeleteClaim(const std::string& key, const std::string& value, int64_t create_revision) {
  TxnRequest txn;
  AddCompare(txn, key, Compare::VALUE)->set_value(value);
  AddCompare(txn, key, Compare::CREATE)->set_create_revision(create_revision);
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  return txn;
}

TxnRequest Put(const std::string& key, const std::string& value, int64_t lease) {
  TxnRequest txn;
  AddPut(txn.mutable_success(), key, value, lease);
  return txn;
}

TxnRequest Get(const std::string& key) {
  TxnRequest txn;
  txn.add_success()->mutable_request_range()->set_key(key);
  return txn;
}

TxnRequest GetTwo(const std::string& first, const std::string& second) {
  TxnRequest txn;
  txn.add_success()->mutable_request_range()->set_key(first);
  txn.add_success()->mutable_request_range()->set_key(second);
  return txn;
}

TxnRequest GetEach(const std::vector<std::string>& keys) {
  TxnRequest txn;
  for (const std::string& key : keys) AddRange(txn.mutable_success(), key);
  return txn;
}

etcdserverpb::WatchCreateRequest DeletionsBetween(const std::string& first,
                                                  const std::string& last_prefix,
                                                  int64_t start_revision) {
  etcdserverpb::WatchCreateRequest watch;
  watch.set_key(first);
  watch.set_range_end(PrefixEnd(last_prefix));
  watch.set_start_revision(start_revision);
  watch.add_filters(etcdserverpb::WatchCreateRequest::NOPUT);
  watch.set_fragment(true);
  return watch;
}

const mvccpb::KeyValue* FirstKey(const etcdserverpb::TxnResponse& response) {
  if (response.responses_size() < 1 || !response.responses(0).has_response_range() ||
      response.responses(0).response_range().kvs_size() < 1) {
    return nullptr;
  }
  return &response.responses(0).response_range().kvs(0);
}

bool IsLeaseNotFound(const absl::Status& status) {
  return status.code() == absl::StatusCode::kNotFound &&
         absl::StrContains(status.message(), "lease not found");
}

}  // namespace edge::etcd::internal::txn
