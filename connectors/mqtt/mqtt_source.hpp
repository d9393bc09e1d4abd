#pragma once
/// \file
/// The MQTT source (`type: mqtt`). Internal to connectors/mqtt; tests include it.

#include "mqtt_client.hpp"
#include "mqtt_common.hpp"

#include "pel/connectors/format.hpp"
#include "pel/core/source.hpp"
#include "pel/spec/config.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pel::connectors {

std::vector<spec::param> mqtt_source_params();

/// Subscribes to topic filters with PEL's MQTT client (`mqtt_detail::subscriber`), whose
/// network thread puts messages into a bounded queue (`queue_size`; when full it stops reading
/// the socket); `poll` takes them out and decodes them on the runtime's thread, never blocking.
/// With `ack: checkpoint` a QoS 1/2 message is acknowledged to the broker only when the
/// checkpoint after it completes (`on_committed`): until then the broker keeps it, and sends it
/// again to a restarted process on the same session. Reconnects with exponential back-off.
class mqtt_source final : public core::source_base {
public:
  explicit mqtt_source(const spec::config& cfg);
  ~mqtt_source() override;

  core::schema_ptr output_schema() const override { return schema_; }
  void open(const core::operator_context& ctx) override;
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override;
  /// `topic@mid` of a row of the last poll.
  std::string row_position(std::size_t row) const override;
  void take_notices(std::vector<core::source_notice>& out) override;
  void on_barrier(std::uint64_t id) override;
  void on_committed(std::uint64_t id) override;
  /// With `ack: checkpoint`, QoS 1/2 and a persistent session (`clean_session: false`): what
  /// was read after the last completed checkpoint is not acknowledged, so the broker sends it
  /// again to the restarted instance (same `client_id`). The position is the broker's: the
  /// snapshot holds only a version. At least once: a crash between a checkpoint completing
  /// and its acknowledgements reaching the broker replays a little more.
  bool replayable() const override;
  void snapshot(core::state_writer& w) override;
  void restore(core::state_reader& r) override;
  void close() override;

  /// Messages received from the broker so far (decoded or not).
  std::uint64_t received() const;
  /// Connections made so far (the first and every reconnect).
  std::uint64_t connects() const;
  /// QoS 1/2 messages received and not yet acknowledged to the broker.
  std::size_t unacknowledged() const;
  /// Redeliveries of messages still held unacknowledged, dropped as duplicates.
  std::uint64_t redelivered() const;

private:
  using message = mqtt_detail::subscriber::message;

  void dead(core::outputs& out, const message& m, const std::string& reason);
  void notice(core::source_notice::level l, std::string text);

  // --- settings ------------------------------------------------------------------------
  mqtt_detail::connection conn_;
  std::vector<std::string> topics_;
  int qos_ = 1;
  bool ack_on_checkpoint_ = true;
  bool clean_session_ = true;
  std::size_t queue_size_ = 10000;
  std::size_t max_message_bytes_ = 0;
  mqtt_detail::topic_template template_;
  std::string template_text_;
  std::vector<std::uint32_t> field_columns_;  ///< the template's fields in the schema
  std::uint32_t topic_column_ = 0;            ///< `topic_field`, if set
  bool has_topic_column_ = false;
  std::unique_ptr<decoder> decoder_;
  core::schema_ptr schema_;

  // --- runtime -------------------------------------------------------------------------
  std::string name_;
  std::unique_ptr<mqtt_detail::subscriber> sub_;
  std::vector<std::string> row_positions_;  ///< per row of the last poll
  std::vector<message> taken_;              ///< reused between polls
  std::vector<std::string_view> values_;
  std::string scratch_;
  std::uint64_t taken_seq_ = 0;                   ///< seq of the last message polled
  std::map<std::uint64_t, std::uint64_t> marks_;  ///< barrier id -> taken_seq_ at it

  // --- shared with the network thread (under mu_) --------------------------------------
  mutable std::mutex mu_;
  std::vector<core::source_notice> notices_;
};

}  // namespace pel::connectors
