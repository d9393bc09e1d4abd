#pragma once
/// \file
/// The MQTT source (`type: mqtt`). Internal to connectors/mqtt; tests include it.

#include "mqtt_common.hpp"

#include "pel/connectors/format.hpp"
#include "pel/core/source.hpp"
#include "pel/spec/config.hpp"

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

struct mosquitto_message;

namespace pel::connectors {

std::vector<spec::param> mqtt_source_params();

/// Subscribes to topic filters with libmosquitto's threaded network loop. Its callback thread
/// puts messages into a bounded queue (`queue_size`; when full it waits, which stops reading
/// from the socket); `poll` takes them out and decodes them on the runtime's thread, never
/// blocking. Reconnects with exponential back-off and subscribes again on each connect.
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
  void close() override;

  /// Messages received from the broker so far (decoded or not).
  std::uint64_t received() const;
  /// Connections made so far (the first and every reconnect).
  std::uint64_t connects() const;

private:
  struct message {
    std::string topic;
    std::string payload;
    int mid = 0;
    std::size_t oversize = 0;  ///< over max_message_bytes: its size (payload: first 4 KiB)
    std::int64_t time = 0;  ///< processing time at receipt, ns
  };

  static void on_connect(struct mosquitto*, void* self, int rc);
  static void on_disconnect(struct mosquitto*, void* self, int rc);
  static void on_message(struct mosquitto*, void* self, const struct mosquitto_message* m);
  void connected(int rc);
  void disconnected(int rc);
  void received(const struct mosquitto_message* m);
  void dead(core::outputs& out, const message& m, const std::string& reason);
  void notice(core::source_notice::level l, std::string text);

  // --- settings ------------------------------------------------------------------------
  mqtt_detail::connection conn_;
  std::vector<std::string> topics_;
  int qos_ = 1;
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
  mqtt_detail::handle_ptr client_;
  bool loop_running_ = false;
  std::vector<std::string> row_positions_;  ///< per row of the last poll
  std::vector<message> taken_;              ///< reused between polls
  std::vector<std::string_view> values_;
  std::string scratch_;

  // --- shared with the callback thread (under mu_) -------------------------------------
  mutable std::mutex mu_;
  std::condition_variable space_;
  std::deque<message> queue_;
  bool stopping_ = false;
  std::uint64_t received_ = 0;
  std::uint64_t connects_ = 0;
  std::vector<core::source_notice> notices_;
};

}  // namespace pel::connectors
