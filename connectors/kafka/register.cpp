#include "pel/connectors/register.hpp"

#include "kafka_sink.hpp"
#include "kafka_source.hpp"

namespace pel::connectors {

void register_kafka_connectors(spec::registry& reg) {
  spec::component_schema src;
  src.type = "kafka";
  src.kind = spec::component_kind::source;
  src.summary = "Reads records from Kafka topics (consumer group or explicit partitions).";
  src.description =
      "Consumes with librdkafka. With `group_id` the source joins a consumer group "
      "(cooperative-sticky rebalancing) and the group splits the partitions among all "
      "instances and processes; with `partitions` or `assign: true` each instance reads a "
      "fixed share. Offsets are committed only when a checkpoint completes (at-least-once). "
      "Replayable: a checkpoint holds the next offset of each partition, and a job restored "
      "from it resumes each of those partitions exactly there (in group mode, when the group "
      "assigns the partition to the instance that saved it; others start at the committed "
      "offset). "
      "Each row's event time is the message timestamp unless `event_time.field` (or "
      "`expression`) is set.\n\n"
      "Event time: each partition is a split with a watermark of its own, the largest time seen "
      "in it less `event_time.max_out_of_orderness`, whether the time comes from a field or the "
      "message timestamp; an instance's watermark is the minimum over its partitions. So a "
      "partition read ahead of another (a backlog fetched unevenly) makes nothing late, as long "
      "as each partition is in order within the bound. A partition with no data yet holds the "
      "watermark back; one that has been at its end for `event_time.idle_timeout` (default 5s) "
      "stops holding it until data returns, and its records older than the watermark by then "
      "are late. A partition that is paused or whose data waits behind backpressure is never "
      "idle. A partition holding the watermark back for 30 s is named in the log. With "
      "`event_time.max_drift` a partition more than that ahead of the slowest active partition "
      "of the source (over all its instances) is paused until the others catch up (watermark "
      "alignment); the slowest are never paused.\n\n"
      "Loss: a jump in a partition's offsets that the broker's retention explains (the "
      "partition's first offset is past the position) is logged as an error with topic, "
      "partition and offsets, and counted in the run summary as input lost before it was "
      "read. The embedded broker keeps only the newest 5 MiB or 100,000 message sets of each "
      "partition.\n\n"
      "Messages that do not decode, are empty, or exceed `max_message_bytes` go to the "
      "dead-letter output with their position `topic/partition@offset`.";
  src.params = kafka_source_params();
  src.example =
      "sources:\n"
      "  ticks:\n"
      "    type: kafka\n"
      "    bootstrap_servers: 127.0.0.1:9092\n"
      "    topics: [ticks]\n"
      "    group_id: trading\n"
      "    format: json\n"
      "    schema: {symbol: string, price: double, qty: int}\n"
      "    include: [partition, offset]\n";
  reg.add_source(std::move(src), [](const spec::config& cfg) -> core::source_ptr {
    return std::make_unique<kafka_source>(cfg);
  });

  spec::component_schema snk;
  snk.type = "kafka";
  snk.kind = spec::component_kind::sink;
  snk.summary =
      "Writes each record as one Kafka message (idempotent producer; at-least-once or "
      "exactly-once with transactions).";
  snk.description =
      "Produces with librdkafka's idempotent producer. The message timestamp is the record's "
      "event time.\n\n"
      "`delivery: at_least_once` (default): each flush (checkpoint, end of stream) waits until "
      "every message is acknowledged; a message that cannot be delivered fails the pipeline. "
      "Nothing is lost; after a restart from a checkpoint, what was written after it is written "
      "again (duplicates).\n\n"
      "`delivery: exactly_once`: the rows of each checkpoint are held in memory and, once the "
      "checkpoint is complete, produced in one Kafka transaction together with a marker record "
      "in `marker_topic` saying which checkpoint is visible. A restart from a checkpoint commits "
      "what the failed run prepared but had not made visible, and never repeats what it had: "
      "consumers reading with `isolation.level=read_committed` see each record exactly once, "
      "up to one checkpoint interval later. Each instance uses the transactional id "
      "`<transactional_id>-<instance>`; a restarted instance fences the one it replaces. The "
      "marker topic must exist or be created on first use (one partition, compacted, is "
      "enough).";
  snk.params = kafka_sink_params();
  snk.example =
      "sinks:\n"
      "  out:\n"
      "    type: kafka\n"
      "    input: large\n"
      "    bootstrap_servers: 127.0.0.1:9092\n"
      "    topic: large-trades\n"
      "    key: symbol\n"
      "    format: json\n";
  reg.add_sink(std::move(snk), [](const spec::config& cfg) -> core::sink_ptr {
    return std::make_unique<kafka_sink>(cfg);
  });
}

}  // namespace pel::connectors
