// Builders for the etcd transactions of the cluster tracker (contract §9).
#ifndef EDGE_ETCD_ETCD_TXN_H_
#define EDGE_ETCD_ETCD_TXN_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "etcdserverpb/rpc.pb.h"

namespace edge::etcd_txn {

// Creates `key` = `value` bound to `lease` only if the key is absent;
// otherwise reads it. On success the response header's revision is the new
// key's create revision.
etcdserverpb::TxnRequest CreateOrGet(const std::string& key,
                                     const std::string& value, int64_t lease);

// Rebinds `key` to `lease`, keeping its create revision, only if it is
// unchanged since `mod_revision`.
etcdserverpb::TxnRequest Rebind(const std::string& key,
                                const std::string& value, int64_t lease,
                                int64_t mod_revision);

// Deletes `key` only if it is unchanged since `mod_revision`.
etcdserverpb::TxnRequest DeleteIfUnchanged(const std::string& key,
                                           int64_t mod_revision);

// Deletes `key` only if it holds `value` and was created at
// `create_revision`: one claim, never a later one.
etcdserverpb::TxnRequest DeleteClaim(const std::string& key,
                                     const std::string& value,
                                     int64_t create_revision);

// Puts `key` = `value` bound to `lease`, unconditionally.
etcdserverpb::TxnRequest Put(const std::string& key, const std::string& value,
                             int64_t lease);

// Reads `key`.
etcdserverpb::TxnRequest Get(const std::string& key);

// The key read by the first response (a range); null when there was none.
const mvccpb::KeyValue* FirstKey(const etcdserverpb::TxnResponse& response);

// etcd's answer to a request naming a lease that does not exist.
bool IsLeaseNotFound(const absl::Status& status);

}  // namespace edge::etcd_txn

#endif  // EDGE_ETCD_ETCD_TXN_H_
