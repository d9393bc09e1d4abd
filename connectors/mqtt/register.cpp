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
      "Uses libmosquitto's network thread (MQTT 3.1.1). Messages go through a bounded queue "
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
      "Delivery: libmosquitto acknowledges a QoS 1/2 message to the broker when it arrives, "
      "before the pipeline has processed or checkpointed it, so across a crash of the process "
      "the source is at most once (messages in its queue are lost). It is not replayable: a "
      "job restored from a checkpoint reads on from what the broker sends now (with "
      "`clean_session: false`, what it queued for the session while the client was away). "
      "Never ends; rows carry the processing time at receipt unless `event_time` names a "
      "field.";
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
