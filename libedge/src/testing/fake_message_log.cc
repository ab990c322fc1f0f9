#include "edge/testing/fake_message_log.h"

#include <functional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace edge::testing {

absl::Status FakeMessageLog::CreateTopic(const std::string& topic, int32_t partitions) {
  if (topic.empty()) return absl::InvalidArgumentError("topic name is empty");
  if (partitions <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("topic ", topic, ": partition count must be positive, got ", partitions));
  }
  absl::MutexLock lock(&mu_);
  auto& parts = topics_[topic];
  if (static_cast<int32_t>(parts.size()) < partitions) parts.resize(partitions);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> FakeMessageLog::Append(const std::string& topic, int32_t partition,
                                               std::string key, std::string value,
                                               std::vector<RecordHeader> headers, bool from_publish,
                                               int32_t* partition_out) {
  if (topic.empty()) return absl::InvalidArgumentError("topic name is empty");
  absl::MutexLock lock(&mu_);
  auto& parts = topics_[topic];
  if (parts.empty()) parts.resize(1);
  if (partition < 0) {
    partition = static_cast<int32_t>(std::hash<std::string>()(key) % parts.size());
  } else if (partition >= static_cast<int32_t>(parts.size())) {
    parts.resize(partition + 1);
  }
  Partition& log = parts[partition];
  Stored stored;
  stored.record.topic = topic;
  stored.record.partition = partition;
  stored.record.offset = static_cast<int64_t>(log.size());
  stored.record.key = std::move(key);
  stored.record.value = std::move(value);
  stored.record.headers = std::move(headers);
  stored.from_publish = from_publish;
  stored.sequence = ++version_;
  log.push_back(std::move(stored));
  if (partition_out != nullptr) *partition_out = partition;
  return log.back().record.offset;
}

int32_t FakeMessageLog::Partitions(const std::string& topic) const {
  absl::MutexLock lock(&mu_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? 0 : static_cast<int32_t>(it->second.size());
}

std::vector<IncomingRecord> FakeMessageLog::Records(const std::string& topic) const {
  absl::MutexLock lock(&mu_);
  std::vector<IncomingRecord> out;
  auto it = topics_.find(topic);
  if (it == topics_.end()) return out;
  for (const Partition& p : it->second) {
    for (const Stored& s : p) out.push_back(s.record);
  }
  return out;
}

std::vector<OutgoingRecord> FakeMessageLog::Published(const std::string& topic) const {
  absl::MutexLock lock(&mu_);
  std::vector<const Stored*> stored;
  auto it = topics_.find(topic);
  if (it == topics_.end()) return {};
  for (const Partition& p : it->second) {
    for (const Stored& s : p) {
      if (s.from_publish) stored.push_back(&s);
    }
  }
  std::sort(stored.begin(), stored.end(),
            [](const Stored* a, const Stored* b) { return a->sequence < b->sequence; });
  std::vector<OutgoingRecord> out;
  out.reserve(stored.size());
  for (const Stored* s : stored) {
    out.push_back({s->record.topic, s->record.key, s->record.value, s->record.headers});
  }
  return out;
}

std::vector<IncomingRecord> FakeMessageLog::Read(const std::string& topic, int32_t partition,
                                                 int64_t from, size_t max) const {
  absl::MutexLock lock(&mu_);
  std::vector<IncomingRecord> out;
  auto it = topics_.find(topic);
  if (it == topics_.end() || partition < 0 ||
      partition >= static_cast<int32_t>(it->second.size()) || from < 0) {
    return out;
  }
  const Partition& p = it->second[partition];
  for (size_t i = static_cast<size_t>(from); i < p.size() && out.size() < max; ++i) {
    out.push_back(p[i].record);
  }
  return out;
}

int64_t FakeMessageLog::Committed(const std::string& group, const std::string& topic,
                                  int32_t partition) const {
  absl::MutexLock lock(&mu_);
  auto it = committed_.find({group, {topic, partition}});
  return it == committed_.end() ? 0 : it->second;
}

void FakeMessageLog::Commit(const std::string& group, const std::string& topic, int32_t partition,
                            int64_t offset) {
  absl::MutexLock lock(&mu_);
  committed_[{group, {topic, partition}}] = offset;
}

uint64_t FakeMessageLog::version() const {
  absl::MutexLock lock(&mu_);
  return version_;
}

bool FakeMessageLog::WaitForPublished(const std::string& topic, size_t n,
                                      absl::Duration timeout) const {
  auto enough = [this, &topic, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = topics_.find(topic);
    if (it == topics_.end()) return n == 0;
    size_t count = 0;
    for (const Partition& p : it->second) {
      for (const Stored& s : p) count += s.from_publish ? 1 : 0;
    }
    return count >= n;
  };
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

}  // namespace edge::testing
