#pragma once
/// \file
/// The Kafka sink (`type: kafka`): produces each row as one message with librdkafka's
/// idempotent producer and checks every delivery report. Private to connectors/kafka; the
/// registry builds it from YAML and tests include it directly.

#include "kafka_common.hpp"

#include "pel/connectors/format.hpp"
#include "pel/core/sink.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pel::connectors {

/// The parameters of `type: kafka` sinks (for the registry and docs).
std::vector<spec::param> kafka_sink_params();

/// A Kafka sink instance. At-least-once: `flush()` returns only when every message written
/// so far is acknowledged by the broker, and throws when any was not. A delivery that failed
/// for good fails the pipeline from the next `write` or `flush`; nothing is dropped silently.
/// Not thread-safe, except `delivered()`.
///
/// Transactions (exactly-once) will hook in at three points: `open` (init_transactions and
/// begin), `flush` on a checkpoint barrier (flush then commit, then begin the next
/// transaction) and the failure path (abort). Production itself (`produce_row`) does not
/// change.
class kafka_sink final : public core::sink_base {
public:
  /// Reads and checks the settings (librdkafka options included); does not connect.
  explicit kafka_sink(const spec::config& cfg);
  ~kafka_sink() override;

  void open(const core::operator_context& ctx, const core::schema_ptr& input) override;
  void write(const core::batch& in) override;
  void flush() override;
  void close() override;
  std::uint64_t delivered() const override { return delivered_.load(); }

  /// Messages handed to librdkafka and not yet acknowledged or failed.
  std::uint64_t in_flight() const noexcept;

private:
  static void delivery_cb(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  void produce_row(const core::value* row, std::int64_t t);
  void throw_if_failed();

  // --- settings ------------------------------------------------------------------------
  spec::config cfg_;
  kafka_detail::conf_ptr conf_;
  std::string topic_name_;
  std::string key_name_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::int64_t flush_timeout_ms_ = 0;
  std::int64_t queue_full_timeout_ms_ = 0;
  bool event_timestamps_ = true;  // message timestamp = row event time

  // --- runtime state -------------------------------------------------------------------
  std::string name_;
  kafka_detail::handle_ptr rk_;
  kafka_detail::topic_ptr topic_;
  kafka_detail::headers_ptr header_proto_;
  std::unique_ptr<encoder> encoder_;
  int key_col_ = -1;
  std::string payload_;
  std::string key_buf_;
  std::uint64_t produced_ = 0;
  std::atomic<std::uint64_t> delivered_{0};
  std::uint64_t failed_ = 0;
  std::string first_failure_;
};

}  // namespace pel::connectors
