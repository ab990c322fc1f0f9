// EtcdTracker: the cluster tracker of contract §9, backed by etcd's v3 API.
//
// Each edge holds one etcd lease (TTL `lease_ttl`), kept alive from the
// tracker's own thread. The edge registers `{prefix}edges/{edge_id}` (JSON
// naming the edge and its advertised address) and claims a peer in one
// transaction that creates `{prefix}peers/{peer_id}` (value: the edge id,
// bound to the lease) and the claim's record `{prefix}claims/{peer_id}`
// (JSON: edge id and claim time; no lease, so it outlives the edge), only if
// both are absent. A claim's epoch is the revision of the transaction that
// made it: the record's mod revision (for a first claim also the peer key's
// create revision). A claim replacing this edge's own rewrites both keys,
// so it gets a new epoch. Release deletes both, only if the record is still
// the claim's. New claims and releases are group-committed: while one
// batch is in etcd, the next waits and goes out as one request nesting
// each op's own transaction (docs/cluster.md).
//
// Lost claims (contract §5): when an edge dies, its lease expires and its
// peer keys vanish, but the records stay. A record without its peer key is
// a lost claim. Peer keys vanish with their lease, and so does the edge's
// registration, which is bound to the same lease. So with a lost-claim
// listener set, the tracker reads the registrations' keys every
// `lost_claim_scan_interval` (a handful of keys, whatever the number of
// peers) and looks for lost claims (one count of records and peer keys; a
// full read, in pages of `lost_claim_scan_page`, only when they differ) only
// when it may find some: for a lease TTL plus two intervals from its start;
// when a registration vanished, once, after a lease TTL (etcd deleted the
// lease's registration and peer keys in one revision, so the tracker first
// reads that revision's deletions from etcd's history and takes its share
// of the claims they name; at once where that history is compacted,
// etcd does not answer, or it spans more than 10,000 revisions); for
// the lease TTL plus two intervals after a registration changed lease (the
// replaced lease's keys go by then); again after a look that took lost
// claims (a take may fail); and every `lost_claim_check_interval` in any
// case (a peer key deleted by hand; 75 to 125 % of it, differing per edge,
// so that edges started together do not count together). A look waits
// while this edge is still publishing lost claims it took, up to
// `lost_claim_check_interval`. The live edges share the lost claims by a
// hash of edge and peer: an edge takes its share at once, another's only
// once it has stayed untaken for a lease TTL. Looking every second, and
// every survivor taking every claim, flooded etcd at 100,000 peers on a
// 2-core host until the survivors' own leases expired
// (docs/performance.md). It takes each lost claim by creating
// `{prefix}lost/{peer_id}` under its own lease (one etcd transaction: only
// one edge wins), hands it to the listener, and deletes record and lost key
// once the listener reports the `edge_lost` stored. An edge that dies while
// publishing leaves the record: another edge takes it again. A claim of a
// peer whose record is lost takes it the same way and completes only after
// its `edge_lost` is stored (a take etcd answers after the claim's deadline
// goes again, and is published all the same); while another edge publishes
// it, UNAVAILABLE.
//
// When the lease is lost (etcd unreachable past the TTL, or etcd reports the
// lease gone) the tracker grants a new lease as soon as etcd answers again,
// keeps it alive from then on, re-registers and re-claims every peer it
// still holds, up to 60 per transaction; a peer whose record changed or
// whose loss another edge took meanwhile is reported to the lost listener.
// While no lease is held, Claim fails at once with UNAVAILABLE.
//
// Threads: Claim/Release/Lookup never block; their callbacks run on gRPC's
// threads. The lost listener runs on the tracker's thread; the lost-claim
// listener on the tracker's scan thread or a gRPC thread. No tracker lock is
// held while a callback runs.
//
//   auto endpoints = edge::etcd::ParseEtcdEndpoints("10.0.0.1:2379,10.0.0.2:2379");
//   edge::etcd::EtcdTrackerOptions options;
//   options.edge_id = "edge-1";
//   options.advertised_address = "10.0.0.7:50051";
//   options.endpoints = *endpoints;
//   auto tracker = edge::etcd::EtcdTracker::Create(std::move(options));
//   if (!tracker.ok()) return tracker.status();
//   (*tracker)->Start();
#ifndef EDGE_ETCD_ETCD_TRACKER_H_
#define EDGE_ETCD_ETCD_TRACKER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "edge/clock.h"
#include "edge/logger.h"
#include "edge/tracker.h"

namespace edge::etcd {

struct EtcdTrackerOptions {
  // Required: this edge's id (the value of its claims) and the gRPC address
  // other services reach it at (stored in its registration).
  std::string edge_id;
  std::string advertised_address;
  // Required: etcd client endpoints as `host:port`, tried in order; on an
  // unreachable endpoint the tracker moves to the next one.
  std::vector<std::string> endpoints;
  // Whole seconds, at least 1 (etcd's lease TTL unit).
  absl::Duration lease_ttl = absl::Seconds(10);
  // Must start and end with '/'.
  std::string key_prefix = "/giggityflix/";
  // Bound on each request the tracker makes on its own (lease grant, keep
  // alive, re-claims, revoke); caller requests use the caller's deadline.
  absl::Duration request_timeout = absl::Seconds(5);
  // How often a tracker with a lost-claim listener reads the edges'
  // registrations, and looks for lost claims while it may find some.
  absl::Duration lost_claim_scan_interval = absl::Seconds(1);
  // The longest time between two looks for lost claims in any case.
  absl::Duration lost_claim_check_interval = absl::Seconds(30);
  // A look reads every claim in pages of this many keys (~100 bytes each):
  // one answer must stay under gRPC's 4 MB message limit, and etcd 3.4
  // walks its index from a page's first key to the prefix's end for each
  // page, so fewer, larger pages cost etcd less.
  int64_t lost_claim_scan_page = 10000;
  // Schedules keepalives and retries; null: a real clock owned by the
  // tracker. Deadlines given to Claim/Lookup are read against it.
  Clock* clock = nullptr;
  Logger* logger = nullptr;  // null: Logger::Null()

  // TLS to every endpoint: the server's certificate is verified against
  // `tls_ca_file` (PEM; empty: the system's roots) and its host name;
  // `tls_cert_file` + `tls_key_file` (PEM) are a client certificate, for
  // etcd's --client-cert-auth.
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // etcd's own authentication (`etcdctl auth enable`); empty username: none.
  // The token etcd hands out is renewed whenever etcd reports it invalid
  // (tokens expire, --auth-token-ttl) and the call retried once.
  std::string username;
  std::string password;
};

// Parses ETCD_ENDPOINTS: a comma-separated list of `host:port`, each
// optionally prefixed with `http://` or `https://` (in any case) and followed
// by one `/`; the host is a name, an IPv4 address or an IPv6 address in
// brackets (`[::1]:2379`). Rejects empty lists, empty items, a mix of
// `https://` and plaintext endpoints, hosts of other characters, and ports
// that are not 1..65535 in digits, with INVALID_ARGUMENT starting
// "ETCD_ENDPOINTS: " and naming the endpoint. Returns the endpoints as
// `host:port`; `tls` (may be null) is set when they are `https://`
// (EtcdTrackerOptions::tls). edged's configuration uses this parser.
absl::StatusOr<std::vector<std::string>> ParseEtcdEndpoints(absl::string_view list,
                                                            bool* tls = nullptr);

class EtcdTracker final : public Tracker {
 public:
  static absl::StatusOr<std::unique_ptr<EtcdTracker>> Create(EtcdTrackerOptions options);
  // Shuts down with a deadline of `request_timeout` if not already done.
  ~EtcdTracker() override;

  // Starts the lease thread and waits (up to `request_timeout`) for the first
  // lease. Returns OK even when etcd cannot be reached yet: the tracker keeps
  // trying, and claims fail with UNAVAILABLE until it succeeds.
  absl::Status Start() override;
  void Claim(const std::string& peer_id, absl::Time deadline, ClaimDone done) override;
  void Release(const std::string& peer_id, const PeerClaim& claim, ReleaseDone done) override;
  void Lookup(const std::string& peer_id, absl::Time deadline, LookupDone done) override;
  // The holder's epoch is its claim record's mod revision (read in the same
  // transaction as the peer key).
  void LookupHolder(const std::string& peer_id, absl::Time deadline, HolderDone done) override;
  void SetLostListener(LostListener listener) override;
  void SetLostClaimListener(LostClaimListener listener) override;
  // Waits for releases in flight, then revokes the lease (deleting this
  // edge's peer keys and registration; unreleased claims' records stay, as
  // lost claims).
  void Shutdown(absl::Time deadline) override;

  // True while the tracker holds a lease it believes live.
  bool HasLease() const;

  // The address `edge_id` registered under `{prefix}edges/{edge_id}`;
  // NOT_FOUND when it has no live registration. `done` runs on a gRPC
  // thread (inline after Shutdown).
  using AddressDone = absl::AnyInvocable<void(absl::StatusOr<std::string>)>;
  void EdgeAddress(const std::string& edge_id, absl::Time deadline, AddressDone done);

  class Impl;

 private:
  explicit EtcdTracker(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edge::etcd

#endif  // EDGE_ETCD_ETCD_TRACKER_H_
