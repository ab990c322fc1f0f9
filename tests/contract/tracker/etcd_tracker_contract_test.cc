#include <atomic>
#include <map>

#include "absl/strings/str_cat.h"
#include "contract/tracker/tracker_contract.h"
#include "edge/etcd/etcd_tracker.h"
#include "etcd/tcp_proxy.h"
#include "support/etcd_process.h"

namespace edge::testing {
namespace {

// One etcd for the whole binary; each test gets its own key prefix.
EtcdProcess* SharedEtcd() {
  // Destroyed at exit, which stops etcd and removes its data.
  static std::unique_ptr<EtcdProcess> etcd = [] {
    absl::StatusOr<std::unique_ptr<EtcdProcess>> started = EtcdProcess::Start();
    if (!started.ok()) {
      ADD_FAILURE() << "cannot start etcd: " << started.status();
      return std::unique_ptr<EtcdProcess>();
    }
    return *std::move(started);
  }();
  return etcd.get();
}

constexpr absl::Duration kTtl = absl::Seconds(2);

class EtcdTrackerEnv : public TrackerEnv {
 public:
  explicit EtcdTrackerEnv(int port)
      : port_(port), prefix_(absl::StrCat("/contract-", ++counter_, "/")) {}

  // Each tracker reaches etcd through its own proxy, so that Kill can cut
  // it off: its lease then expires as a killed edge's would.
  std::unique_ptr<Tracker> NewTracker(const std::string& edge_id) override {
    absl::StatusOr<std::unique_ptr<TcpProxy>> proxy = TcpProxy::Start(port_);
    EXPECT_TRUE(proxy.ok()) << proxy.status();
    if (!proxy.ok()) return nullptr;
    etcd::EtcdTrackerOptions options;
    options.edge_id = edge_id;
    options.advertised_address = absl::StrCat(edge_id, ":50051");
    options.endpoints = {(*proxy)->endpoint()};
    options.lease_ttl = kTtl;
    options.request_timeout = absl::Seconds(1);
    options.key_prefix = prefix_;
    proxies_[edge_id] = *std::move(proxy);
    auto tracker = etcd::EtcdTracker::Create(std::move(options));
    EXPECT_TRUE(tracker.ok()) << tracker.status();
    return *std::move(tracker);
  }
  bool is_cluster() const override { return true; }
  void Kill(const std::string& edge_id) override { proxies_.at(edge_id)->SetConnected(false); }
  absl::Duration lost_within() const override { return kTtl + absl::Seconds(5); }

 private:
  static inline std::atomic<int> counter_{0};
  const int port_;
  const std::string prefix_;
  std::map<std::string, std::unique_ptr<TcpProxy>> proxies_;
};

std::unique_ptr<TrackerEnv> MakeEtcdEnv() {
  if (!EtcdProcess::Available()) return nullptr;  // skipped
  EtcdProcess* etcd = SharedEtcd();
  if (etcd == nullptr) return nullptr;
  return std::make_unique<EtcdTrackerEnv>(etcd->client_port());
}

INSTANTIATE_TEST_SUITE_P(Etcd, TrackerContractTest,
                         ::testing::Values(TrackerContractParam{"EtcdTracker", MakeEtcdEnv}),
                         ParamName);

}  // namespace
}  // namespace edge::testing
