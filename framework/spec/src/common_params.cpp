#include "pel/spec/common_params.hpp"

#include "internal.hpp"

#include <cmath>
#include <cstdio>

namespace pel::spec {

namespace {

/// The keys of a `supervision:` block. At the pipeline level they have defaults and include
/// `strategy` and `shutdown_timeout`; in a component block they default to the pipeline's.
std::vector<param> supervision_fields(bool pipeline_level) {
  auto def = [&](param p, const char* value) {
    if (pipeline_level) p.def(value);
    return p;
  };
  auto doc = [&](std::string text) {
    return pipeline_level ? text : text + " Default: the pipeline's.";
  };
  std::vector<param> out;
  if (pipeline_level)
    out.push_back(param::string("strategy").def("one_for_one")
                      .one_of({"one_for_one", "one_for_all", "rest_for_one"})
                      .doc("Which instances restart when one fails: `one_for_one` only that one, "
                           "`one_for_all` all of them, `rest_for_one` that one and those started "
                           "after it (downstream of it). Pipeline level only."));
  out.push_back(def(param::integer("intensity"), "5").min(0).max(1000000).doc(doc(
      "At most this many restarts within `period`; one more and the supervisor gives up and "
      "escalates (the pipeline fails). 0: never restart, any failure escalates.")));
  out.push_back(def(param::duration("period"), "1m").min(1e6).doc(doc(
      "The sliding window over which `intensity` counts restarts.")));
  out.push_back(def(param::string("restart"), "permanent")
                    .one_of({"permanent", "transient", "temporary"})
                    .doc(doc("Which ends lead to a restart: `permanent` after a failure or a stop "
                             "on request, `transient` after a failure only, `temporary` never. "
                             "An instance that ends its stream is never restarted.")));
  out.push_back(param::object("backoff", {
      def(param::duration("initial"), "100ms").doc(doc("Delay before the first restart.")),
      def(param::duration("max"), "10s").doc(doc(
          "Longest delay before a restart; at least `initial`.")),
      def(param::number("multiplier"), "2").min(1).max(1000).doc(doc(
          "Each further restart of the same instance in a row waits this many times longer; "
          "the count starts again after a `period` without failures.")),
      def(param::number("jitter"), "0.2").min(0).max(1).doc(doc(
          "Each delay is multiplied by a random factor between 1 - jitter and 1 + jitter.")),
  }).doc("Exponential backoff between restarts of the same instance."));
  out.push_back(def(param::integer("quarantine_after"), "3").min(0).max(1000000).doc(doc(
      "Failures on the same input record before that record is quarantined to the dead-letter "
      "output (with its source position and the error) instead of being retried. 0: never.")));
  if (pipeline_level)
    out.push_back(param::duration("shutdown_timeout").def("10s").min(1e6).doc(
        "How long an orderly stop may take (each instance is asked to stop, in reverse start "
        "order) before the instances left are killed. Pipeline level only."));
  return out;
}

std::vector<param> make_pipeline_params() {
  return {
      param::string("name").def("pipeline").doc("Name of the pipeline, shown in logs, metrics and the API."),
      param::integer("parallelism").def("1").min(1).max(1024).doc(
          "Default number of instances of every component that does not set its own `parallelism`."),
      param::integer("max_parallelism").def("128").min(1).max(32768).doc(
          "Number of key groups: the most instances a keyed operator can ever be split into. "
          "Every `parallelism` must be at most this."),
      param::string("time").def("event").one_of({"event", "processing"}).doc(
          "Which clock drives windows and timers: the records' event time (with watermarks) or "
          "the machine's clock."),
      param::object("batch", {
          param::integer("size").def("1024").min(1).max(1000000).doc(
              "Rows per batch: a batch is sent when it holds this many rows."),
          param::duration("linger").def("1ms").doc(
              "A partial batch is sent when its first row is this old."),
      }).doc("How records are grouped into batches between instances."),
      param::integer("credits").def("8").min(1).max(1024).doc(
          "Batches in flight per channel: a sender without credit waits (backpressure)."),
      param::duration("checkpoint_interval").min(1e6).doc(
          "The older name of `checkpoints.interval`, still accepted; give one or the other."),
      param::object("checkpoints", {
          param::duration("interval").def("1s").min(1e6).doc(
              "How often sources inject checkpoint barriers (and commit their positions)."),
          param::string("dir").doc(
              "Directory where checkpoints keep operator state; empty (the default): no state "
              "is kept, checkpoints only commit source positions."),
          param::integer("keep").def("3").min(1).max(1000).doc(
              "How many complete checkpoints are kept in `dir`; older ones are deleted."),
          param::duration("timeout").def("1m").min(1e6).doc(
              "A checkpoint that is not complete after this long is abandoned (the next one "
              "starts afresh)."),
      }).doc("Checkpoints: aligned barriers from the sources, positions and state saved together."),
      param::object("supervision", supervision_fields(true)).doc(
          "How failed instances are restarted (Erlang/OTP supervision). Each component may "
          "override `restart`, `intensity`, `period`, `backoff` and `quarantine_after` in its "
          "own `supervision:` block."),
      param::object("scaling", {
          param::string("policy").def("ds2").one_of({"ds2", "schedule"}).doc(
              "How the parallelism of the operators with a `parallelism` range is chosen: "
              "`ds2` from their measured rates and busy time (the DS2 model), `schedule` at "
              "the times `schedule` gives."),
          param::duration("interval").def("5s").min(1e8).doc(
              "How often metrics are gathered and a decision is taken."),
          param::number("target_utilisation").def("0.7").min(0).max(1).doc(
              "ds2: the busy fraction each instance should run at after a decision; above 0."),
          param::duration("stabilisation").def("30s").doc(
              "After a rescale, no other decision is taken for this long."),
          param::duration("scale_in_delay").def("2m").doc(
              "ds2: fewer instances are only chosen when they would have sufficed for this long."),
          param::number("max_scale_in").def("0.5").min(0).max(1).doc(
              "One scale-in keeps at least this fraction of the instances; above 0."),
          param::object_list("schedule", {
              param::duration("at").req().doc("Time after the start of the run."),
              param::string("component").req().doc(
                  "An operator with a `parallelism` range."),
              param::integer("parallelism").req().min(1).max(1024).doc(
                  "Instances from then on, within the component's range."),
          }).doc("policy: schedule: the steps, e.g. `- {at: 10s, component: w, parallelism: 4}`."),
      }).doc("Autoscaling of the components whose `parallelism` is a range `{initial, min, max}`."),
      param::string("dead_letter").def("log").doc(
          "Where dead letters nothing reads go: `log`, `drop`, or the name of a sink."),
  };
}

std::vector<detail::common_key> make_common_keys() {
  std::vector<detail::common_key> t;
  auto add = [&](param p, bool src, bool op, bool snk) { t.push_back({std::move(p), src, op, snk}); };
  add(param::string("type").req().doc("The component type: one of the types on its reference page."),
      true, true, true);
  add(param::string("description").doc("Free text for people reading the pipeline."), true, true, true);
  add(param::integer("parallelism").min(1).max(1024).or_map({
          param::integer("initial").min(1).max(1024).doc(
              "Instances at the start. Default: `min`."),
          param::integer("min").def("1").min(1).max(1024).doc(
              "Fewest instances autoscaling may leave."),
          param::integer("max").req().min(1).max(1024).doc(
              "Most instances autoscaling may start; at most `pipeline.max_parallelism`."),
      }).doc(
          "Number of instances of this component; default `pipeline.parallelism`. A map "
          "`{initial, min, max}` lets autoscaling (`pipeline.scaling`) move it within "
          "min <= initial <= max while the pipeline runs: operators whose state is kept by key "
          "group or that keep none, and Kafka sources with their own partition assignment "
          "(`assign: true`, `partitions`); `pel lint` says why another component cannot."),
      true, true, true);
  add(param::string_list("input").req().doc(
          "What this component reads: a component name, `name.port` (e.g. `parse.dead_letter`), "
          "or a list of them."),
      false, true, true);
  add(param::string("partition").one_of({"forward", "rebalance", "hash", "broadcast"}).doc(
          "How records reach the instances of this component; by default the planner chooses "
          "(hash for keyed operators, forward when parallelism matches, else rebalance)."),
      false, true, true);
  add(param::object("event_time", {
          param::string("field").doc("The field holding the event time; empty: the source's own "
                                     "time (e.g. the Kafka timestamp) or the time of reading. "
                                     "Exclusive with `expression`."),
          param::expression("expression").doc(
              "An expression over the source's fields that gives the event time, read like "
              "`field` with `format` and `timezone`, e.g. "
              "`datetime(year, month, day, hour) - 8 * 3600 * 1000` with `format: epoch_ms`. "
              "A record whose expression fails or gives a value that cannot be read goes to "
              "the dead-letter output. Exclusive with `field`."),
          param::string("format").def("auto").one_of(
              {"epoch_s", "epoch_ms", "epoch_us", "epoch_ns", "iso8601", "datetime", "auto"}).doc(
              "How `field` (or the value of `expression`) is written; `auto` guesses from the "
              "first value."),
          param::string("timezone").def("UTC").doc("Time zone of `datetime` values "
                                                   "(`YYYY-MM-DD HH:MM:SS`)."),
          param::duration("max_out_of_orderness").def("0ms").doc(
              "How late a record may be behind the newest one seen: the watermark trails the "
              "highest event time by this much."),
          param::duration("idle_timeout").doc(
              "A source instance, or a Kafka partition, that has delivered everything there is "
              "for this long stops holding the watermark back, until data returns (records "
              "older than the watermark by then are late). A partition that is paused or whose "
              "data waits behind backpressure is never idle. 0s: never. Default: 5s for Kafka "
              "sources, 0s for the others."),
          param::duration("max_drift").def("0s").doc(
              "Watermark alignment (sources with splits, i.e. Kafka partitions): a partition "
              "whose event time runs more than this far ahead of the slowest active partition "
              "of the source (over all its instances) is paused until the others catch up, so "
              "that a backlog read unevenly does not fill windows with one partition's future. "
              "The slowest partitions are never slowed. 0s: no alignment."),
      }).doc("Event-time settings of a source: where the time of each record comes from and "
             "how watermarks follow it."),
      true, false, false);
  add(param::object("buffer", {
          param::string("dir").req().doc(
              "Directory of the buffer; each instance of the sink keeps its records in "
              "`<dir>/<sink name>-<instance>`. Only one process may use it at a time (it is "
              "locked)."),
          param::bytes("max_size").def("1GiB").min(2 << 20).doc(
              "Bound on the buffer's files on disk."),
          param::string("when_full").def("block").one_of({"block", "drop_oldest"}).doc(
              "When the buffer is full: `block` stops taking records (the pipeline "
              "backpressures up to its sources) until the sink catches up; `drop_oldest` "
              "deletes the oldest records, counted (`dropped`) and logged."),
          param::boolean("fsync").def("true").doc(
              "Flush appended records to the disk before going on: they then survive a power "
              "loss. `false`: they survive the process being killed, not a power loss, at a "
              "lower cost per batch."),
          param::integer("batch").def("1000").min(1).max(1000000).doc(
              "Most records handed to the sink at a time when forwarding."),
          param::duration("retry_max").def("10s").doc(
              "Longest wait between two attempts while the sink fails (the wait starts at "
              "100 ms and doubles)."),
          param::duration("drain_timeout").def("30s").doc(
              "At the end of the stream, how long to wait for the buffer to be forwarded "
              "before stopping; what is left stays on disk and goes first on the next run."),
      }).doc(
          "A durable store-and-forward buffer in front of this sink: records are appended to "
          "checksummed files on disk, and a forwarder hands them to the sink in order and "
          "removes them only once the sink has confirmed them (at least once). While the sink "
          "fails or its destination is unreachable, records accumulate on disk and drain when "
          "it is back; they survive a crash or `kill -9` and are sent after a restart. A "
          "checkpoint barrier is acknowledged once the records before it are on disk. Not with "
          "`delivery: exactly_once`, nor on a file sink with `mode: overwrite` (`pel lint` says "
          "why)."),
      false, false, true);
  add(param::object("supervision", supervision_fields(false)).doc(
          "This component's supervision settings, overriding `pipeline.supervision` "
          "(`strategy` and `shutdown_timeout` are set for the whole pipeline only)."),
      true, true, true);
  return t;
}

std::vector<param> filter_common(component_kind k) {
  std::vector<param> out;
  for (const auto& c : detail::common_key_table()) {
    const bool applies = k == component_kind::source     ? c.source
                         : k == component_kind::operator_ ? c.operator_
                                                          : c.sink;
    if (applies) out.push_back(c.p);
  }
  return out;
}

} // namespace

const std::vector<param>& pipeline_params() {
  static const std::vector<param> table = make_pipeline_params();
  return table;
}

const std::vector<param>& common_params(component_kind k) {
  static const std::vector<param> sources = filter_common(component_kind::source);
  static const std::vector<param> operators = filter_common(component_kind::operator_);
  static const std::vector<param> sinks = filter_common(component_kind::sink);
  return k == component_kind::source ? sources : k == component_kind::operator_ ? operators : sinks;
}

namespace detail {

const std::vector<common_key>& common_key_table() {
  static const std::vector<common_key> table = make_common_keys();
  return table;
}

std::string format_number(double v) {
  char buf[64];
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
  else
    std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

std::string format_duration(std::int64_t ns) {
  struct unit {
    std::int64_t scale;
    const char* name;
  };
  static const unit units[] = {{86400'000'000'000, "d"}, {3600'000'000'000, "h"}, {60'000'000'000, "m"},
                               {1'000'000'000, "s"},     {1'000'000, "ms"},       {1'000, "us"}};
  if (ns == 0) return "0s";
  for (const auto& u : units)
    if (ns % u.scale == 0) return std::to_string(ns / u.scale) + u.name;
  return std::to_string(ns) + "ns";
}

} // namespace detail
} // namespace pel::spec
