#pragma once
/// \file
/// An embedded Kafka broker for development, tests and benchmarks: librdkafka's mock cluster
/// (a real implementation of the Kafka wire protocol on loopback TCP) wrapped in a class with
/// no librdkafka types, plus the body of the `pel kafka-broker` command.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pel::connectors {

/// Settings of an embedded broker (the flags of `pel kafka-broker`).
struct kafka_broker_options {
  int brokers = 1;                  ///< number of brokers in the cluster, 1..16
  int port = 0;                     ///< bootstrap port on 127.0.0.1; 0 = any free port
  std::vector<std::string> topics;  ///< topics to create, each `name:partitions`
  std::string bootstrap_file;       ///< when set, the bootstrap list is written there
};

/// What the embedded broker keeps, said when it starts: librdkafka's mock cluster keeps only
/// the newest 5 MiB or 100,000 message sets of each partition and has no setting to keep
/// more. A Kafka source that had not read what it deleted reports the count as lost.
inline constexpr const char* kafka_broker_retention =
    "each partition keeps only its newest 5 MiB or 100,000 message sets (librdkafka's mock "
    "cluster has no setting to keep more); older messages are deleted, and a Kafka source "
    "that had not read them reports how many it lost. Compress (rdkafka: {compression.type: "
    "lz4}) or use more partitions to keep more";

/// Kafka protocol API keys usable with `kafka_broker::push_request_errors`.
enum class kafka_api : std::int16_t {
  produce = 0,
  fetch = 1,
  list_offsets = 2,
  metadata = 3,
  offset_commit = 8,
  offset_fetch = 9,
  find_coordinator = 10,
  join_group = 11,
  heartbeat = 12,
  sync_group = 14,
  init_producer_id = 22,
};

/// Kafka protocol error codes for fault injection (values as on the wire).
namespace kafka_errc {
constexpr int leader_not_available = 5;
constexpr int not_leader_for_partition = 6;
constexpr int request_timed_out = 7;
constexpr int broker_not_available = 8;
constexpr int not_enough_replicas = 19;
constexpr int topic_authorization_failed = 29;
}  // namespace kafka_errc

/// A running mock Kafka cluster. Starts in the constructor and stops in the destructor (or
/// `stop()`). Thread-safe: fault-injection calls may come from any thread while clients use
/// the cluster. Brokers are numbered 1..brokers.
///
/// Limits of the mock (librdkafka 2.0.2): each partition keeps only its newest 5 MiB or
/// 100,000 message sets and silently drops older ones, so produce no more than that per
/// partition before it is consumed.
class kafka_broker {
public:
  /// Starts the cluster and creates `opts.topics`. Throws `std::runtime_error` when the
  /// cluster cannot start, a topic spec is malformed, or the bootstrap port is taken.
  explicit kafka_broker(const kafka_broker_options& opts);
  ~kafka_broker();
  kafka_broker(const kafka_broker&) = delete;
  kafka_broker& operator=(const kafka_broker&) = delete;

  /// `127.0.0.1:PORT[,...]` for `bootstrap.servers`. With a fixed `port`, that port comes
  /// first (it forwards to broker 1; metadata then leads clients to every broker directly).
  std::string bootstraps() const;

  /// Number of brokers.
  int broker_count() const noexcept;

  /// Creates a topic with `partitions` partitions (replication min(brokers, 3)).
  /// Throws std::runtime_error on failure.
  void create_topic(const std::string& name, int partitions);

  /// Creates a topic from `name:partitions`. Throws std::runtime_error when malformed.
  void create_topic(const std::string& spec);

  // --- fault injection (tests) -------------------------------------------------------

  /// Takes broker `id` down: its connections close and new ones are refused.
  void broker_down(int id);
  /// Brings broker `id` back up.
  void broker_up(int id);
  /// Adds `rtt_ms` of latency to every response of broker `id`.
  void set_rtt(int id, int rtt_ms);
  /// The next `errors.size()` requests of type `api` (to any broker) fail with these Kafka
  /// error codes, in order.
  void push_request_errors(kafka_api api, const std::vector<int>& errors);
  /// Makes broker `id` the leader of `topic`/`partition`.
  void set_leader(const std::string& topic, int partition, int id);
  /// Every request on `topic` fails with `error` (0 clears it).
  void set_topic_error(const std::string& topic, int error);

  /// Stops the cluster (idempotent). Clients still connected see their connections close.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Body of `pel kafka-broker`: starts a broker, prints `bootstrap: <list>` on its own line to
/// stdout (flushed), writes the list to `opts.bootstrap_file` when set (atomically, via a
/// temporary file and rename), then waits until `stop` becomes true and stops the broker.
/// Returns 0 after a clean stop, 1 when the broker cannot start (the reason on stderr), 2 for
/// invalid options. Signal handling is the caller's: it only sets `stop`.
int run_kafka_broker(const kafka_broker_options& opts, std::atomic<bool>& stop);

}  // namespace pel::connectors
