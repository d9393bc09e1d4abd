#pragma once
/// \file
/// RAII wrappers for librdkafka handles and the configuration helpers shared by the Kafka
/// source, sink and embedded broker. Private to connectors/kafka.

#include "pel/spec/config.hpp"

#include <librdkafka/rdkafka.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pel::connectors::kafka_detail {

/// Destroys a client handle (producer or consumer).
struct handle_deleter {
  void operator()(rd_kafka_t* rk) const noexcept { rd_kafka_destroy(rk); }
};
/// Destroys a configuration that was not handed over to `rd_kafka_new`.
struct conf_deleter {
  void operator()(rd_kafka_conf_t* c) const noexcept { rd_kafka_conf_destroy(c); }
};
/// Destroys a topic-partition list.
struct tplist_deleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const noexcept {
    rd_kafka_topic_partition_list_destroy(l);
  }
};
/// Returns a consumed message to librdkafka.
struct message_deleter {
  void operator()(rd_kafka_message_t* m) const noexcept { rd_kafka_message_destroy(m); }
};
/// Releases a topic handle.
struct topic_deleter {
  void operator()(rd_kafka_topic_t* t) const noexcept { rd_kafka_topic_destroy(t); }
};
/// Destroys a queue handle.
struct queue_deleter {
  void operator()(rd_kafka_queue_t* q) const noexcept { rd_kafka_queue_destroy(q); }
};
/// Destroys a header list that was not handed over to a produced message.
struct headers_deleter {
  void operator()(rd_kafka_headers_t* h) const noexcept { rd_kafka_headers_destroy(h); }
};

using handle_ptr = std::unique_ptr<rd_kafka_t, handle_deleter>;
using conf_ptr = std::unique_ptr<rd_kafka_conf_t, conf_deleter>;
using tplist_ptr = std::unique_ptr<rd_kafka_topic_partition_list_t, tplist_deleter>;
using message_ptr = std::unique_ptr<rd_kafka_message_t, message_deleter>;
using topic_ptr = std::unique_ptr<rd_kafka_topic_t, topic_deleter>;
using queue_ptr = std::unique_ptr<rd_kafka_queue_t, queue_deleter>;
using headers_ptr = std::unique_ptr<rd_kafka_headers_t, headers_deleter>;

/// A new, empty topic-partition list.
inline tplist_ptr new_tplist(int size = 0) {
  return tplist_ptr(rd_kafka_topic_partition_list_new(size));
}

/// Sets one librdkafka property; false with `error` filled when librdkafka rejects it.
bool try_set(rd_kafka_conf_t* conf, const std::string& key, const std::string& value,
             std::string& error);

/// Sets one property the connector itself chose; throws `spec::config_error` located at
/// `at_key` of `cfg` when librdkafka rejects it (a setting derived from that key).
void set_or_fail(rd_kafka_conf_t* conf, const spec::config& cfg, std::string_view at_key,
                 const std::string& key, const std::string& value);

/// Applies the `rdkafka:` pass-through map of `cfg` unchanged, after the connector's own
/// defaults so that the user's values win. Each rejected entry becomes a located config
/// error at `rdkafka.<key>`.
void apply_passthrough(rd_kafka_conf_t* conf, const spec::config& cfg);

/// True when the `rdkafka:` map of `cfg` sets `key` (so a connector default must yield).
bool passthrough_sets(const spec::config& cfg, std::string_view key);

/// `topic/partition@offset`, the position written into dead-letter records.
std::string position_text(std::string_view topic, std::int32_t partition, std::int64_t offset);

/// Parses `name:N` (N > 0); false when malformed.
bool parse_topic_partition_count(std::string_view text, std::string& name, int& count);

}  // namespace pel::connectors::kafka_detail
