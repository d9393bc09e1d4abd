#pragma once
/// \file
/// The MQTT sink (`type: mqtt`). Internal to connectors/mqtt; tests include it.

#include "mqtt_common.hpp"

#include "pel/connectors/format.hpp"
#include "pel/core/sink.hpp"
#include "pel/spec/config.hpp"

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace pel::connectors {

std::vector<spec::param> mqtt_sink_params();

/// Publishes one message per row to a topic filled from the row's fields, with libmosquitto's
/// threaded network loop. `flush` (checkpoint, end of stream) waits until the broker has
/// acknowledged every message (QoS 1/2; QoS 0: written to the socket), up to `flush_timeout`.
class mqtt_sink final : public core::sink_base {
public:
  explicit mqtt_sink(const spec::config& cfg);
  ~mqtt_sink() override;

  void open(const core::operator_context& ctx, const core::schema_ptr& input) override;
  void write(const core::batch& in) override;
  void flush() override;
  void close() override;
  std::uint64_t delivered() const override;

  /// The topic for a row (after `open`).
  std::string topic_for(const core::value* row) const;

private:
  static void on_connect(struct mosquitto*, void* self, int rc);
  static void on_disconnect(struct mosquitto*, void* self, int rc);
  static void on_publish(struct mosquitto*, void* self, int mid);
  void wait_connected();

  mqtt_detail::connection conn_;
  spec::config cfg_;
  mqtt_detail::topic_template template_;
  std::vector<int> field_columns_;  ///< per template level: the row column, -1 for a literal
  int qos_ = 1;
  bool retain_ = false;
  std::int64_t flush_timeout_ns_ = 0;
  std::size_t max_in_flight_ = 1000;
  std::unique_ptr<encoder> enc_;
  std::string payload_;
  std::string name_;
  mqtt_detail::handle_ptr client_;
  bool loop_running_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool connected_ = false;
  std::string refused_;         ///< the broker's answer when it refused the connection
  std::uint64_t sent_ = 0;      ///< published (handed to libmosquitto)
  std::uint64_t acked_ = 0;     ///< acknowledged by the broker (on_publish)
};

}  // namespace pel::connectors
