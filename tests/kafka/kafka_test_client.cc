#include "kafka/kafka_test_client.h"

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace edge::testing {
namespace {

struct RkDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RkPtr = std::unique_ptr<rd_kafka_t, RkDeleter>;

absl::StatusOr<RkPtr> NewClient(rd_kafka_type_t type,
                                const std::vector<std::pair<std::string, std::string>>& props,
                                void (*dr)(rd_kafka_t*, const rd_kafka_message_t*, void*) = nullptr,
                                void* opaque = nullptr) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char errstr[512];
  for (const auto& [name, value] : props) {
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(errstr);
    }
  }
  if (dr != nullptr) rd_kafka_conf_set_dr_msg_cb(conf, dr);
  if (opaque != nullptr) rd_kafka_conf_set_opaque(conf, opaque);
  rd_kafka_t* rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
  if (rk == nullptr) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(errstr);
  }
  return RkPtr(rk);
}

absl::Status FromErr(rd_kafka_resp_err_t err, absl::string_view what) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(what, ": ", rd_kafka_err2str(err)));
}

}  // namespace

absl::Status KafkaTestClient::Produce(const std::string& topic, int32_t partition,
                                      const std::string& key, const std::string& value,
                                      const std::vector<RecordHeader>& headers) {
  rd_kafka_resp_err_t delivery = RD_KAFKA_RESP_ERR__IN_PROGRESS;
  auto on_delivery = [](rd_kafka_t*, const rd_kafka_message_t* msg, void* opaque) {
    *static_cast<rd_kafka_resp_err_t*>(opaque) = msg->err;
  };
  absl::StatusOr<RkPtr> rk =
      NewClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", bootstrap_servers_}, {"linger.ms", "0"}},
                on_delivery, &delivery);
  if (!rk.ok()) return rk.status();
  rd_kafka_headers_t* hdrs = rd_kafka_headers_new(headers.size());
  for (const RecordHeader& h : headers) {
    rd_kafka_header_add(hdrs, h.key.data(), h.key.size(), h.value.data(), h.value.size());
  }
  rd_kafka_resp_err_t err = rd_kafka_producev(
      rk->get(), RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
      RD_KAFKA_V_KEY(key.data(), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    rd_kafka_headers_destroy(hdrs);
    return FromErr(err, "produce");
  }
  rd_kafka_flush(rk->get(), 10000);
  return FromErr(delivery, "delivery");
}

absl::StatusOr<std::vector<IncomingRecord>> KafkaTestClient::ReadAll(const std::string& topic,
                                                                     size_t n,
                                                                     absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<RkPtr> rk =
      NewClient(RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap_servers_},
                                    {"group.id", "edge-test-reader"},
                                    {"enable.partition.eof", "true"},
                                    {"enable.auto.commit", "false"},
                                    {"fetch.wait.max.ms", "10"}});
  if (!rk.ok()) return rk.status();
  // Partition count from metadata (the topic may still be being created).
  int partitions = 0;
  while (partitions == 0) {
    rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk->get(), topic.c_str(), nullptr);
    const rd_kafka_metadata_t* md = nullptr;
    if (rd_kafka_metadata(rk->get(), 0, rkt, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        partitions = md->topics[0].partition_cnt;
      }
      rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    if (partitions == 0 && absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat("topic ", topic, " not found"));
    }
  }
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions);
  for (int p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list, topic.c_str(), p)->offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  rd_kafka_assign(rk->get(), list);
  rd_kafka_topic_partition_list_destroy(list);
  std::map<int32_t, std::vector<IncomingRecord>> by_partition;
  std::set<int32_t> at_end;
  size_t count = 0;
  while (count < n || static_cast<int>(at_end.size()) < partitions) {
    if (absl::Now() > deadline) {
      rd_kafka_consumer_close(rk->get());
      return absl::DeadlineExceededError(
          absl::StrCat("read ", count, " of ", n, " records from ", topic));
    }
    rd_kafka_message_t* msg = rd_kafka_consumer_poll(rk->get(), 100);
    if (msg == nullptr) continue;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      at_end.insert(msg->partition);
    } else if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      at_end.erase(msg->partition);
      IncomingRecord r;
      r.topic = topic;
      r.partition = msg->partition;
      r.offset = msg->offset;
      if (msg->key) r.key.assign(static_cast<const char*>(msg->key), msg->key_len);
      if (msg->payload) r.value.assign(static_cast<const char*>(msg->payload), msg->len);
      rd_kafka_headers_t* hdrs = nullptr;
      if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char* name;
        const void* value;
        size_t size;
        for (size_t i = 0;
             rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
             ++i) {
          r.headers.push_back(
              {name, value ? std::string(static_cast<const char*>(value), size) : std::string()});
        }
      }
      by_partition[r.partition].push_back(std::move(r));
      ++count;
    }
    rd_kafka_message_destroy(msg);
  }
  rd_kafka_consumer_close(rk->get());
  std::vector<IncomingRecord> out;
  for (auto& [p, records] : by_partition) {
    for (IncomingRecord& r : records) out.push_back(std::move(r));
  }
  return out;
}

absl::StatusOr<int64_t> KafkaTestClient::Committed(const std::string& group,
                                                   const std::string& topic, int32_t partition) {
  absl::StatusOr<RkPtr> rk = NewClient(
      RD_KAFKA_CONSUMER, {{"bootstrap.servers", bootstrap_servers_}, {"group.id", group}});
  if (!rk.ok()) return rk.status();
  rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, topic.c_str(), partition);
  rd_kafka_resp_err_t err = rd_kafka_committed(rk->get(), list, 5000);
  int64_t offset = list->elems[0].offset;
  rd_kafka_resp_err_t perr = list->elems[0].err;
  rd_kafka_topic_partition_list_destroy(list);
  rd_kafka_consumer_close(rk->get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErr(err, "committed");
  if (perr != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErr(perr, "committed");
  return offset < 0 ? -1 : offset;
}

}  // namespace edge::testing
