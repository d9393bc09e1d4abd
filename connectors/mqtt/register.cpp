#include "pel/connectors/register.hpp"

#include "mqtt_sink.hpp"
#include "mqtt_source.hpp"

namespace pel::connectors {

void register_mqtt_connectors(spec::registry& reg) {
  spec::component_schema src;
  src.type = "mqtt";
  src.kind = spec::component_kind::source;
  src.summary = "Subscribes to MQTT topic filters and decodes each message into a row.";
  src.description =
      "PEL's own MQTT 3.1.1 client, on a network thread of its own (TLS with OpenSSL). "
      "Messages go through a bounded queue "
      "(`queue_size`) to the pipeline, which decodes them with `format` (json, csv or raw: one "
      "message is one record). Levels of the topic become string fields with `topic_fields` "
      "(`sensors/{site}/{device}`). A message that does not decode, whose topic does not match "
      "`topic_fields`, or that is over `max_message_bytes` goes to the dead-letter output with "
      "the reason, the topic and the message id (`position`: `topic@mid`; the id is 0 for QoS "
      "0).\n\n"
      "The connection is made in the background: a broker that is down or goes away is "
      "retried with exponential back-off (`reconnect_delay` doubling up to "
      "`reconnect_delay_max`), and the subscriptions are made again on each connect. Lost and "
      "restored connections are logged.\n\n"
      "Delivery: with `ack: checkpoint` (the default) a QoS 1/2 message is acknowledged to the "
      "broker (PUBACK, PUBREC) only once the checkpoint after it has completed, when the sinks, "
      "or a sink's `buffer`, hold what it became. Until then the broker keeps it: with "
      "`clean_session: false` it sends it again after a reconnect or to a restarted process, "
      "so a crash loses nothing (at least once), and the source counts as replayable. The "
      "broker must allow that many unacknowledged messages in flight (mosquitto: "
      "`max_inflight_messages 0`); a window too small is detected and logged. A stop without a "
      "checkpoint directory drains without a last checkpoint: what came after the last one is "
      "sent again on the next run. `ack: receipt` acknowledges on arrival (at most once across "
      "a crash). Never ends; rows carry the processing time at receipt unless `event_time` "
      "names a field.";
  src.params = mqtt_source_params();
  src.example =
      "sources:\n"
      "  readings:\n"
      "    type: mqtt\n"
      "    broker: localhost:1883\n"
      "    topics: [sensors/+/+]\n"
      "    qos: 1\n"
      "    topic_fields: sensors/{site}/{device}\n"
      "    format: json\n"
      "    schema: {temperature: double, humidity: double}\n";
  reg.add_source(std::move(src), [](const spec::config& cfg) -> core::source_ptr {
    return std::make_unique<mqtt_source>(cfg);
  });

  spec::component_schema snk;
  snk.type = "mqtt";
  snk.kind = spec::component_kind::sink;
  snk.summary = "Publishes one MQTT message per record to a topic filled from its fields.";
  snk.description =
      "Uses libmosquitto's network thread (MQTT 3.1.1). Each row is encoded with `format` and "
      "published to `topic` with its `{field}` levels filled from the row, with `qos` and "
      "`retain`. At most `max_in_flight` messages wait for the broker's acknowledgement; a "
      "flush (checkpoint, end of stream) waits until all are acknowledged (QoS 0: written to "
      "the socket), up to `flush_timeout`, so with QoS 1/2 the sink is at least once. A lost "
      "connection is re-established with back-off while `write` waits, up to "
      "`flush_timeout`.";
  snk.params = mqtt_sink_params();
  snk.example =
      "sources:\n"
      "  readings:\n"
      "    type: generator\n"
      "    profile: sensors\n"
      "    count: 1000\n"
      "sinks:\n"
      "  averages:\n"
      "    type: mqtt\n"
      "    input: readings\n"
      "    broker: localhost:1883\n"
      "    topic: sensors/{device}/reading\n"
      "    qos: 1\n"
      "    format: json\n";
  reg.add_sink(std::move(snk), [](const spec::config& cfg) -> core::sink_ptr {
    return std::make_unique<mqtt_sink>(cfg);
  });
}

}  // namespace pel::connectors
