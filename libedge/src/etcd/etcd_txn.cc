#include "etcd/etcd_txn.h"

#include "absl/strings/match.h"

namespace edge::etcd_txn {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::TxnRequest;
using Ops = google::protobuf::RepeatedPtrField<etcdserverpb::RequestOp>;

Compare* AddCompare(TxnRequest& txn, const std::string& key,
                    Compare::CompareTarget target) {
  Compare* compare = txn.add_compare();
  compare->set_result(Compare::EQUAL);
  compare->set_target(target);
  compare->set_key(key);
  return compare;
}

void AddPut(Ops* ops, const std::string& key, const std::string& value,
            int64_t lease) {
  auto* put = ops->Add()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(lease);
}

}  // namespace

TxnRequest CreateOrGet(const std::string& key, const std::string& value,
                       int64_t lease) {
  TxnRequest txn;
  AddCompare(txn, key, Compare::CREATE)->set_create_revision(0);
  AddPut(txn.mutable_success(), key, value, lease);
  txn.add_failure()->mutable_request_range()->set_key(key);
  return txn;
}

TxnRequest Rebind(const std::string& key, const std::string& value,
                  int64_t lease, int64_t mod_revision) {
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

TxnRequest DeleteClaim(const std::string& key, const std::string& value,
                       int64_t create_revision) {
  TxnRequest txn;
  AddCompare(txn, key, Compare::VALUE)->set_value(value);
  AddCompare(txn, key, Compare::CREATE)->set_create_revision(create_revision);
  txn.add_success()->mutable_request_delete_range()->set_key(key);
  return txn;
}

TxnRequest Put(const std::string& key, const std::string& value,
               int64_t lease) {
  TxnRequest txn;
  AddPut(txn.mutable_success(), key, value, lease);
  return txn;
}

TxnRequest Get(const std::string& key) {
  TxnRequest txn;
  txn.add_success()->mutable_request_range()->set_key(key);
  return txn;
}

const mvccpb::KeyValue* FirstKey(const etcdserverpb::TxnResponse& response) {
  if (response.responses_size() < 1 ||
      !response.responses(0).has_response_range() ||
      response.responses(0).response_range().kvs_size() < 1) {
    return nullptr;
  }
  return &response.responses(0).response_range().kvs(0);
}

bool IsLeaseNotFound(const absl::Status& status) {
  return status.code() == absl::StatusCode::kNotFound &&
         absl::StrContains(status.message(), "lease not found");
}

}  // namespace edge::etcd_txn
