#pragma once
/// \file
/// The Kafka source (`type: kafka`): consumes topics with librdkafka's high-level consumer,
/// either as a member of a consumer group (subscribe) or on an explicit assignment. Private
/// to connectors/kafka; the registry builds it from YAML and tests include it directly.

#include "kafka_common.hpp"

#include "pel/connectors/format.hpp"
#include "pel/core/source.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace pel::connectors {

/// The parameters of `type: kafka` sources (for the registry and docs).
std::vector<spec::param> kafka_source_params();

/// A Kafka source instance. Offsets are committed only in `on_committed` (at-least-once):
/// what `on_barrier(id)` remembered is committed when checkpoint `id` completes, as the next
/// offset to read. Not thread-safe: the runtime calls it from one thread at a time.
class kafka_source final : public core::source_base {
public:
  /// Reads and checks the settings (librdkafka options included); does not connect.
  /// Throws spec::config_error located at the offending key.
  explicit kafka_source(const spec::config& cfg);
  ~kafka_source() override;

  core::schema_ptr output_schema() const override { return schema_; }
  /// Creates the consumer, then subscribes (group mode) or assigns this instance's share of
  /// the partitions (partition i of the list goes to instance i % parallelism).
  void open(const core::operator_context& ctx) override;
  /// Takes at most `max_rows` messages fetched by librdkafka. When none is queued it waits up
  /// to `poll_wait` for one (never with `poll_wait: 0s`). Returns `data` while messages came
  /// within the last 100 ms (or `event_time.idle_timeout`), even if this call found none, so
  /// the runtime calls again at once (the wait paces the calls); `idle` after that.
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override;
  /// True unless `poll_wait` is 0: the short wait in `poll` needs a thread of its own.
  bool blocking() const override { return poll_wait_ms_ > 0; }
  /// With an explicit assignment (`assign: true`, `partitions`), instance i of p reads the
  /// partitions i, i+p, ... of the sorted list, and a restore keeps its own partitions'
  /// offsets: instances can be added and removed live. A group subscription cannot.
  bool rescalable() const override { return assign_all_ || !explicit_partitions_.empty(); }
  /// Lag (records between the position and each assigned partition's end, from the high
  /// watermarks librdkafka learns with every fetch) and the produce rate (how fast those ends
  /// grow), for the autoscaler.
  load offered() const override;
  bool assignment_pending() const override { return awaiting_assignment_; }
  /// Partitions are splits: each row is tagged with its partition, and the runtime keeps a
  /// watermark per partition (by `event_time.field` or by the Kafka timestamp).
  bool has_splits() const override { return true; }
  /// The assigned partitions; `at_end` after the partition's end was reached with no message
  /// since.
  void splits(std::vector<core::split_report>& out) const override;
  /// Pauses or resumes fetching one partition (librdkafka pause/resume); a resumed
  /// partition goes on right after the last message taken.
  void pause_split(std::uint32_t id, bool paused) override;
  void positions(std::vector<core::split_position>& out) const override;
  std::int64_t last_wait_ns() const override { return wait_ns_; }
  /// 5 s: a partition at its end that long stops holding the watermark back.
  std::int64_t default_idle_timeout_ns() const override { return 5'000'000'000; }
  /// `topic/partition@offset` of a row of the last poll.
  std::string row_position(std::size_t row) const override;
  /// Offsets found missing (retention deleted them before they were read) and client errors.
  void take_notices(std::vector<core::source_notice>& out) override;
  void on_barrier(std::uint64_t id) override;
  void on_committed(std::uint64_t id) override;
  /// Kafka offsets can be read again: true.
  bool replayable() const override { return true; }
  /// Writes version 1, then per partition whose next offset is known (rows taken, its end
  /// reached, or a restored offset not yet used): topic, partition, next offset to read.
  void snapshot(core::state_writer& w) override;
  /// Reads what `snapshot` wrote. Explicit assignment: this instance's partitions that are in
  /// it are assigned again at exactly those offsets. Group mode: a partition that is in it
  /// starts at that offset (not the committed one) the first time the group assigns it.
  /// Other partitions start as `start_from` says. Throws `std::runtime_error` on a snapshot
  /// it cannot read.
  void restore(core::state_reader& r) override;
  void close() override;

  // --- introspection for status and tests ---------------------------------------------

  /// Partitions currently assigned to this instance, as `topic/partition`.
  std::vector<std::string> assignment() const;
  /// Offset commits acknowledged by the broker so far.
  std::uint64_t commits_acknowledged() const noexcept { return commits_ok_.load(); }
  /// The last client or commit error reported by librdkafka (empty when none).
  std::string last_error() const;
  /// Number of rebalance events (assign and revoke) handled.
  std::uint64_t rebalances() const noexcept { return rebalances_; }

private:
  enum class start_mode { committed, earliest, latest, timestamp };
  enum meta_field : std::uint8_t {
    meta_key,
    meta_partition,
    meta_offset,
    meta_timestamp,
    meta_headers
  };

  /// What this instance knows about one assigned partition.
  struct partition_state {
    std::string topic;
    std::int32_t partition = 0;
    std::uint32_t split = 0;           // id reported to the runtime, never reused
    bool paused = false;               // by watermark alignment
    kafka_detail::queue_ptr queue;     // with alignment: the partition's own message queue
    /// With alignment: its messages (and end-of-partition events) that came through the
    /// consumer's shared queue before its own queue was split off; read before the queue.
    std::deque<kafka_detail::message_ptr> stash;
    rd_kafka_topic_t* rkt = nullptr;   // learned from the first message; identifies the topic
    std::int64_t next_offset = -1;     // next offset to read, -1 before the first message
    std::int64_t committed = -1;       // start_from committed: the group's offset, if any
    std::int64_t caught_up_since = 0;  // steady ns when the partition reached its end, 0 if not
  };
  /// A partition's position read from a checkpoint.
  // `offered`: the summed partition ends at the last call, to estimate the produce rate.
  /// Group mode: no assignment yet, or all partitions revoked and none assigned since.
  bool awaiting_assignment_ = false;
  mutable std::int64_t offered_high_ = -1;
  mutable std::int64_t offered_ns_ = 0;
  mutable double offered_rate_ = -1;
  struct restored_offset {
    std::string topic;
    std::int32_t partition = 0;
    std::int64_t offset = 0;
  };
  /// Positions remembered at a barrier.
  struct pending_commit {
    std::uint64_t id = 0;
    std::vector<std::pair<std::string, std::int32_t>> partitions;
    std::vector<std::int64_t> offsets;
  };

  static void rebalance_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* opaque);
  static void commit_cb(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                        rd_kafka_topic_partition_list_t* offsets, void* opaque);
  static void error_cb(rd_kafka_t* rk, int err, const char* reason, void* opaque);

  void on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void add_partitions(const rd_kafka_topic_partition_list_t* parts);
  void forget_partitions(const rd_kafka_topic_partition_list_t* parts);
  void forget_all();
  void resolve_timestamps(rd_kafka_topic_partition_list_t* parts, bool only_uncommitted);
  partition_state* state_for(const rd_kafka_message_t* m);
  void handle_message(const rd_kafka_message_t* m, core::outputs& out);
  void dead(core::outputs& out, const rd_kafka_message_t* m, std::int64_t t, std::string reason);
  void assign_explicit(const core::operator_context& ctx);
  /// Explicit assignment: hands `explicit_assignment_` to librdkafka (first poll, or a
  /// `restore` after it).
  void assign_now();
  /// Offsets `s.next_offset` .. `offset - 1` were skipped: find out whether retention deleted
  /// them (then they are lost, and said so) or the log has holes (compaction, transaction
  /// markers) that lose nothing.
  void check_gap(partition_state& s, std::int64_t offset);
  /// Handles one polled message or event; true when it was a message (counted as taken).
  bool take(rd_kafka_message_t* m, core::outputs& out);
  /// With alignment: reads the partitions' own queues in turn, skipping paused ones.
  void poll_partition_queues(core::outputs& out, std::size_t max_rows, std::size_t& taken);
  void notice(core::source_notice::level l, std::string text, std::uint64_t lost = 0);
  /// start_from committed: remembers the group's committed offsets of `parts`, so that a
  /// start past them (retention deleted them meanwhile) is found like any other gap.
  void remember_committed(const rd_kafka_topic_partition_list_t* parts);
  /// Group mode: partitions of `parts` with a restored offset start there (used once).
  void apply_restored(rd_kafka_topic_partition_list_t* parts);
  /// Group mode: partitions of `parts` this member read before, in a checkpoint that
  /// completed, start at that checkpoint's offset when the group's commit is older (the
  /// member's commit failed, e.g. during a rebalance, and the partition came back to it).
  void resume_own(rd_kafka_topic_partition_list_t* parts);
  /// The first position known for `s` (no message taken yet): offset `offset`. With the
  /// group's committed offset below it, what lies between is checked like any other gap.
  void start_known(partition_state& s, std::int64_t offset);

  // --- settings ------------------------------------------------------------------------
  spec::config cfg_;
  kafka_detail::conf_ptr conf_;  // checked at construction, handed to rd_kafka_new in open
  std::vector<std::string> topics_;
  std::string group_id_;
  std::vector<std::pair<std::string, std::int32_t>> explicit_partitions_;
  bool assign_all_ = false;
  start_mode start_ = start_mode::committed;
  std::int64_t start_timestamp_ms_ = 0;
  std::int64_t max_message_bytes_ = 0;
  std::int64_t wait_ns_ = 0;  ///< blocked in the last poll (see last_wait_ns)
  int poll_wait_ms_ = 1;                       // poll_wait, whole ms; 0: never wait
  std::int64_t quiet_after_ns_ = 100'000'000;  // no message for this long: report idle
  std::int64_t idle_timeout_ns_ = 5'000'000'000;  // event_time.idle_timeout
  /// event_time.max_drift is set: each partition's messages are read from its own queue, so
  /// that a paused partition's fetched messages wait there instead of being handed on.
  bool aligned_ = false;
  std::size_t next_queue_ = 0;  // round robin over the partition queues
  std::unique_ptr<decoder> decoder_;
  std::uint32_t data_width_ = 0;
  std::vector<std::pair<meta_field, std::uint32_t>> meta_;  // metadata columns
  core::schema_ptr schema_;

  // --- runtime state -------------------------------------------------------------------
  std::string name_;
  kafka_detail::handle_ptr rk_;
  std::vector<partition_state> states_;
  std::size_t last_state_ = 0;
  std::uint32_t next_split_ = 0;
  std::vector<std::pair<std::uint32_t, std::int64_t>> row_offsets_;  // per row of the last poll
  std::vector<core::source_notice> notices_;
  std::string reported_error_;  // last_error_ as last told
  std::vector<pending_commit> pending_;
  /// The offsets of the last completed checkpoint, committed once more, synchronously, on
  /// `close` (the asynchronous commit may still be on its way when a stop closes the source,
  /// and whoever takes the partitions over must start right after them).
  kafka_detail::tplist_ptr last_commit_;
  /// Group mode: per partition, the offset of the newest completed checkpoint that read it
  /// here (`on_committed`). Kept when the partition is revoked: if the group gives it back
  /// with an older committed offset (this member's commit did not get through), the
  /// partition starts here, as everything below was handed on in a completed checkpoint.
  std::vector<restored_offset> own_completed_;
  std::vector<restored_offset> restored_;  // group mode: restored, partition not assigned yet
  /// Explicit assignment: the partitions and start offsets, assigned at the first poll (so
  /// that `restore` can still change the offsets and nothing is fetched twice).
  kafka_detail::tplist_ptr explicit_assignment_;
  bool assigned_ = false;
  std::atomic<std::uint64_t> commits_ok_{0};
  std::uint64_t rebalances_ = 0;
  std::int64_t last_message_ns_ = INT64_MIN / 2;  // steady ns of the last message taken
  std::string last_error_;
  std::string scratch_;
};

}  // namespace pel::connectors
