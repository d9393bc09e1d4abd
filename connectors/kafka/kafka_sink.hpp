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
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace pel::connectors {

/// The parameters of `type: kafka` sinks (for the registry and docs).
std::vector<spec::param> kafka_sink_params();

/// A Kafka sink instance, in one of two delivery modes.
///
/// `delivery: at_least_once` (default): `write` produces at once; `flush()` (and `prepare`)
/// returns only when every message written so far is acknowledged by the broker, and throws
/// when any was not. A delivery that failed for good fails the pipeline from the next
/// `write` or `flush`; nothing is dropped silently. A restart may repeat output.
///
/// `delivery: exactly_once`: a transactional producer (`transactional.id` =
/// `<transactional_id>-<instance>`, fenced by the next producer with the same id). `write`
/// encodes each row into its message but keeps it in memory; `prepare(id)` seals what was
/// written as epoch `id`; `snapshot` saves the sealed, uncommitted epochs; `commit(id)`
/// produces each sealed epoch up to `id` in a transaction of its own together with a marker
/// record (`marker_topic`, partition 0, key = transactional id, value = epoch id), so the
/// epoch's data and the record saying it is visible become visible atomically. `restore`
/// reads the last marker (read_committed) and commits the restored epochs after it. `abort`
/// drops what is not sealed. `close` commits everything as a final epoch.
///
/// Not thread-safe, except `delivered()`.
class kafka_sink final : public core::sink_base {
public:
  /// Reads and checks the settings (librdkafka options included); does not connect.
  explicit kafka_sink(const spec::config& cfg);
  ~kafka_sink() override;

  /// Creates the producer. exactly_once: also `init_transactions`, which fences any earlier
  /// producer with the same transactional id and aborts its open transaction.
  void open(const core::operator_context& ctx, const core::schema_ptr& input) override;
  /// at_least_once: produces every row. exactly_once: encodes them into the open epoch.
  void write(const core::batch& in) override;
  /// at_least_once: waits for every delivery report (at most `flush_timeout`). exactly_once:
  /// nothing (output is held until `commit`).
  void flush() override;
  /// At end of stream. exactly_once: seals what was written since the last `prepare` as a
  /// final epoch and commits every sealed epoch, then releases the producer.
  void close() override;
  std::uint64_t delivered() const override { return delivered_.load(); }

  bool exactly_once() const override { return exactly_once_; }
  /// at_least_once: `flush()`. exactly_once: seals the rows written since the last
  /// `prepare` as epoch `id` (an epoch without rows is not kept).
  void prepare(std::uint64_t id) override;
  /// exactly_once: version 1, then each sealed, uncommitted epoch (id, its messages).
  /// at_least_once: version 1 and no epochs.
  void snapshot(core::state_writer& w) override;
  /// exactly_once: commits each sealed epoch up to `id`, in order, one transaction each
  /// (aborted and tried again on abortable errors until `flush_timeout`; fatal: throws).
  void commit(std::uint64_t id) override;
  /// exactly_once: reads the last committed epoch from the marker topic, drops restored
  /// epochs at or before it and commits the others up to `id`. Throws when the marker cannot
  /// be read within `flush_timeout`.
  void restore(std::uint64_t id, core::state_reader& r) override;
  /// exactly_once: drops what is not sealed and releases the producer without committing.
  /// at_least_once: `close()`.
  void abort() override;

  /// Messages handed to librdkafka and not yet acknowledged or failed.
  std::uint64_t in_flight() const noexcept;
  /// exactly_once: the producer's `transactional.id` (after `open`); empty otherwise.
  const std::string& transactional_id() const noexcept { return transactional_id_; }
  /// exactly_once: ids of the sealed epochs not yet committed, oldest first.
  std::vector<std::uint64_t> pending_epochs() const;
  /// exactly_once: the last epoch this instance knows to be visible (committed by it, or
  /// read from the marker topic by `restore`); -1 when none.
  std::int64_t last_committed_epoch() const noexcept { return last_committed_; }

private:
  /// One encoded row, held until its epoch is committed (exactly_once).
  struct held_message {
    std::string value;
    std::string key;
    bool has_key = false;
    std::int64_t timestamp_ms = 0;  // 0: the send time
  };
  /// The messages of one checkpoint, sealed by `prepare(id)`.
  struct epoch {
    std::uint64_t id = 0;
    std::vector<held_message> messages;
  };

  static void delivery_cb(rd_kafka_t* rk, const rd_kafka_message_t* m, void* opaque);
  /// Encodes a row: payload into `payload_`, key into `key`/`key_len` (null: no key).
  std::int64_t encode_row(const core::value* row, std::int64_t t, const char*& key,
                          std::size_t& key_len);
  void produce_row(const core::value* row, std::int64_t t);
  /// Hands one message to librdkafka, waiting out a full queue up to `queue_full_timeout`.
  void produce_message(rd_kafka_topic_t* topic, std::int32_t partition, const void* value,
                       std::size_t value_len, const void* key, std::size_t key_len,
                       std::int64_t timestamp_ms, bool with_headers);
  void throw_if_failed();
  /// Seals the open epoch as `id` (if it has rows).
  void seal(std::uint64_t id);
  /// Commits sealed epochs up to `id` in order.
  void commit_through(std::uint64_t id);
  /// One transaction: the epoch's messages and its marker; retried until flush_timeout.
  void commit_epoch(const epoch& e);
  /// The last epoch id in the marker topic under this transactional id; -1 when none.
  std::int64_t read_marker();
  /// Throws with the operation, the error and what to do.
  [[noreturn]] void fail_txn(const char* what, rd_kafka_error_t* err);

  // --- settings ------------------------------------------------------------------------
  spec::config cfg_;
  kafka_detail::conf_ptr conf_;
  std::string topic_name_;
  std::string key_name_;
  std::vector<std::pair<std::string, std::string>> headers_;
  std::int64_t flush_timeout_ms_ = 0;
  std::int64_t queue_full_timeout_ms_ = 0;
  bool event_timestamps_ = true;  // message timestamp = row event time
  bool exactly_once_ = false;     // delivery: exactly_once
  std::string transactional_prefix_;
  std::string marker_topic_;

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
  // exactly_once
  std::string transactional_id_;
  kafka_detail::topic_ptr marker_;
  std::vector<held_message> open_epoch_;
  std::vector<epoch> sealed_;
  std::uint64_t last_sealed_ = 0;
  std::int64_t last_committed_ = -1;
};

}  // namespace pel::connectors
