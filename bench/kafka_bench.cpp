// kafka_bench: PEL's Kafka source and sink against a raw librdkafka loop, on the embedded
// broker (librdkafka's mock cluster), in the same process and run.
//
//   (a) baseline: raw librdkafka consume topic A -> produce the same bytes to B
//   direct (the connectors called in a plain loop, no runtime):
//   (b) PEL kafka source -> kafka sink, raw format (passthrough)
//   (c) PEL kafka source (JSON decode) -> filter-like predicate -> kafka sink (JSON encode)
//   (d) end-to-end latency of (b) at a fixed offered rate: produce (stamped) -> A -> PEL ->
//       B -> consumer
//   runtime (the same work as a pipeline file run by pel::runtime::job, as `pel run` does):
//   (e) kafka source -> kafka sink, raw passthrough
//   (f) kafka source (JSON) -> filter `qty >= 500` -> kafka sink (JSON)
//   (g) end-to-end latency of (e) at the same offered rate
//
// Every run reads the same prepared topic A from the beginning (explicit assignment, no
// consumer-group delay) and writes a fresh output topic. Runtime variants stop the job once
// the sink has been given every expected row; the output counts are checked against the
// output topic's offsets. The latency variants use the connectors' default settings.
//
// Usage: kafka_bench [--messages=300000] [--partitions=16] [--runs=3] [--rate=50000]
//                    [--latency_seconds=4] [--out=<dir>] [--only=latency]

#include "bench_support.hpp"

#include "kafka_common.hpp"
#include "kafka_sink.hpp"
#include "kafka_source.hpp"

#include "pel/connectors/kafka_broker.hpp"
#include "pel/connectors/register.hpp"
#include "pel/core/time.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"
#include "pel/spec/yaml.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace pel;
using namespace pel::connectors::kafka_detail;

namespace {

constexpr std::int64_t qty_threshold = 500;  // (c) keeps rows with qty >= this
// librdkafka 2.0.2 stops fetching for a full second once its queue holds queued.min.messages
// (default 100,000; README.md): whether a run hit it decided between ~150 k and ~260 k msgs/s
// for every variant alike. All throughput variants raise it so the runs measure the work.
const char* const queued_min_messages = "1000000";

struct setup {
  std::string boot;
  std::string input = "bench_in";
  std::size_t messages = 0;
  int partitions = 16;
  std::size_t expected_filtered = 0;  // rows of the input with qty >= qty_threshold
  connectors::kafka_broker* broker = nullptr;
  int next_topic = 0;

  /// A fresh output topic for one run (keeps every run under the mock's retention).
  std::string fresh_topic(const std::string& prefix) {
    auto name = prefix + "_" + std::to_string(next_topic++);
    broker->create_topic(name, partitions);
    return name;
  }
};

/// The message of row `i`: a JSON trade of about 80 bytes.
std::string trade(std::size_t i) {
  char buf[160];
  std::snprintf(buf, sizeof buf, R"({"id":%zu,"sym":"SYM%03zu","px":%zu.25,"qty":%zu,"side":"%s"})",
                i, i % 500, 100 + i % 900, (i * 7919) % 1000, (i & 1) ? "buy" : "sell");
  return buf;
}

handle_ptr make_client(rd_kafka_type_t type,
                       const std::vector<std::pair<std::string, std::string>>& kv) {
  conf_ptr conf(rd_kafka_conf_new());
  std::string err;
  for (auto& [k, v] : kv)
    if (!try_set(conf.get(), k, v, err)) throw std::runtime_error(k + ": " + err);
  rd_kafka_conf_set_log_cb(conf.get(), [](const rd_kafka_t*, int, const char*, const char*) {});
  char errstr[256];
  handle_ptr rk(rd_kafka_new(type, conf.get(), errstr, sizeof errstr));
  if (!rk) throw std::runtime_error(errstr);
  conf.release();
  return rk;
}

/// Assigns every partition of `topic` from the beginning.
void assign_all(rd_kafka_t* rk, const std::string& topic, int partitions) {
  auto list = new_tplist(partitions);
  for (int p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
        RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(rk, list.get());
}

void produce_input(setup& s) {
  auto rk = make_client(RD_KAFKA_PRODUCER, {{"bootstrap.servers", s.boot}, {"linger.ms", "5"}});
  for (std::size_t i = 0; i < s.messages; ++i) {
    auto m = trade(i);
    if ((i * 7919) % 1000 >= static_cast<std::size_t>(qty_threshold)) ++s.expected_filtered;
    for (;;) {
      auto err = rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(s.input.c_str()),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                   RD_KAFKA_V_VALUE(m.data(), m.size()), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      rd_kafka_poll(rk.get(), 10);
    }
  }
  if (rd_kafka_flush(rk.get(), 60000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("could not produce the input");
}

double seconds_since(std::int64_t t0) {
  return (core::steady_ns() - t0) / 1e9;
}

// --- (a) raw librdkafka loop ---------------------------------------------------------------

struct raw_counts {
  std::atomic<std::uint64_t> delivered{0};
};

double run_raw(setup& s, std::uint64_t& out_count) {
  const auto out_topic = s.fresh_topic("raw_out");
  auto consumer = make_client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", s.boot},
                                                  {"group.id", "bench-raw"},
                                                  {"enable.auto.commit", "false"},
                                                  {"queued.min.messages", queued_min_messages}});
  raw_counts counts;
  conf_ptr pconf(rd_kafka_conf_new());
  std::string err;
  try_set(pconf.get(), "bootstrap.servers", s.boot, err);
  try_set(pconf.get(), "enable.idempotence", "true", err);
  try_set(pconf.get(), "linger.ms", "5", err);
  rd_kafka_conf_set_opaque(pconf.get(), &counts);
  rd_kafka_conf_set_dr_msg_cb(pconf.get(), [](rd_kafka_t*, const rd_kafka_message_t* m, void* op) {
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) static_cast<raw_counts*>(op)->delivered++;
  });
  rd_kafka_conf_set_log_cb(pconf.get(), [](const rd_kafka_t*, int, const char*, const char*) {});
  char errstr[256];
  handle_ptr producer(rd_kafka_new(RD_KAFKA_PRODUCER, pconf.get(), errstr, sizeof errstr));
  pconf.release();
  topic_ptr rkt(rd_kafka_topic_new(producer.get(), out_topic.c_str(), nullptr));

  assign_all(consumer.get(), s.input, s.partitions);
  std::size_t n = 0;
  std::int64_t t0 = 0;  // the clock starts at the first message (connection set-up excluded)
  const auto deadline = core::steady_ns() + 300'000'000'000LL;
  while (n < s.messages && core::steady_ns() < deadline) {
    // Same shape as the PEL driver: take what is fetched (up to 1024), produce it, then serve
    // delivery reports once.
    std::size_t taken = 0;
    for (; taken < 1024; ++taken) {
      message_ptr m(rd_kafka_consumer_poll(consumer.get(), 0));
      if (!m) break;
      if (m->err) continue;
      if (n++ == 0) t0 = core::steady_ns();
      while (rd_kafka_produce(rkt.get(), RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, m->payload,
                              m->len, m->key, m->key_len, nullptr) != 0)
        rd_kafka_poll(producer.get(), 10);
    }
    rd_kafka_poll(producer.get(), 0);
    if (taken == 0) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  rd_kafka_flush(producer.get(), 60000);
  const double secs = seconds_since(t0);
  rd_kafka_consumer_close(consumer.get());
  out_count = counts.delivered.load();
  return s.messages / secs;
}

// --- (b), (c) PEL source and sink in a plain loop --------------------------------------------

/// A config read from YAML text, with its parameter table kept alive.
struct yaml_config {
  std::vector<spec::param> params;
  spec::config cfg;
  yaml_config(const std::string& text, std::vector<spec::param> p, const std::string& path)
      : params(std::move(p)), cfg(spec::parse_yaml(text, "kafka_bench"), path, &params) {}
};

/// One PEL variant: source config, sink config, and the work between them.
struct pel_variant {
  std::string name;
  std::string source_yaml;
  std::string sink_yaml;
  bool filter = false;
};

/// Drives source → (predicate) → sink directly, as the runtime's fused chain would.
double run_pel(setup& s, const pel_variant& v, std::uint64_t& out_count,
               const std::string& out_topic) {
  yaml_config src_cfg("bootstrap_servers: " + s.boot + "\ntopics: [" + s.input +
                          "]\nassign: true\n" + "start_from: earliest\n" + v.source_yaml,
                      connectors::kafka_source_params(), "sources.in");
  yaml_config sink_cfg(
      "bootstrap_servers: " + s.boot + "\ntopic: " + out_topic + "\n" + v.sink_yaml,
      connectors::kafka_sink_params(), "sinks.out");
  connectors::kafka_source src(src_cfg.cfg);
  connectors::kafka_sink sink(sink_cfg.cfg);
  core::operator_context ctx;
  ctx.name = v.name;
  const auto schema = src.output_schema();
  const int qty = schema->index_of("qty");
  core::batch kept(static_cast<std::uint32_t>(schema->size()));

  src.open(ctx);
  sink.open(ctx, schema);
  core::outputs out;
  out.main.width = static_cast<std::uint32_t>(schema->size());
  std::size_t n = 0;
  std::int64_t t0 = 0;  // the clock starts at the first message, as for the raw loop
  const auto deadline = core::steady_ns() + 300'000'000'000LL;
  while (n < s.messages && core::steady_ns() < deadline) {
    if (src.poll(out, 1024) == core::poll_status::idle) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      continue;
    }
    if (n == 0) t0 = core::steady_ns();
    n += out.main.size() + out.dead_letter.size();
    if (v.filter) {
      kept.clear();
      for (std::size_t i = 0; i < out.main.size(); ++i) {
        const auto* q = std::get_if<std::int64_t>(&out.main.row(i)[qty]);
        if (q != nullptr && *q >= qty_threshold)
          kept.append_move(out.main.row(i), out.main.times[i]);
      }
      sink.write(kept);
    } else {
      sink.write(out.main);
    }
    out.main.clear();
    out.dead_letter.clear();
  }
  sink.flush();
  const double secs = seconds_since(t0);
  out_count = sink.delivered();
  src.close();
  sink.close();
  return s.messages / secs;
}

const pel_variant passthrough{"passthrough",
                              "format: raw\nrdkafka: {queued.min.messages: 1000000}\n",
                              "format: raw\n", false};
const pel_variant json_filter{
    "json_filter",
    "format: json\nschema: {id: int, sym: string, px: double, qty: int, side: string}\n"
    "rdkafka: {queued.min.messages: 1000000}\n",
    "format: json\n", true};

// --- (e), (f) the same work through the full runtime ---------------------------------------

/// Messages in `topic` (sum of the partitions' high watermarks: the topic is fresh and the
/// producer idempotent, so this is the number delivered).
std::uint64_t topic_count(const setup& s, const std::string& topic) {
  auto rk = make_client(RD_KAFKA_PRODUCER, {{"bootstrap.servers", s.boot}});
  std::uint64_t n = 0;
  for (int p = 0; p < s.partitions; ++p) {
    std::int64_t lo = 0, hi = 0;
    if (rd_kafka_query_watermark_offsets(rk.get(), topic.c_str(), p, &lo, &hi, 10000) ==
        RD_KAFKA_RESP_ERR_NO_ERROR)
      n += static_cast<std::uint64_t>(hi - lo);
  }
  return n;
}

/// The pipeline file of a full-runtime variant: what `pel run` would be given.
std::string job_yaml(const setup& s, const pel_variant& v, const std::string& in_topic,
                     const std::string& out_topic, int parallelism) {
  std::string y = "pipeline:\n  name: kafka_bench\n  parallelism: " + std::to_string(parallelism) +
                  "\nsources:\n  in:\n    type: kafka\n    bootstrap_servers: " + s.boot +
                  "\n    topics: [" + in_topic + "]\n    assign: true\n    start_from: earliest\n";
  auto indent = [](const std::string& block) {
    std::string o;
    std::size_t at = 0;
    while (at < block.size()) {
      auto nl = block.find('\n', at);
      if (nl == std::string::npos) nl = block.size();
      o += "    " + block.substr(at, nl - at) + "\n";
      at = nl + 1;
    }
    return o;
  };
  y += indent(v.source_yaml);
  std::string input = "in";
  if (v.filter) {
    y += "operators:\n  keep:\n    type: filter\n    input: in\n    where: qty >= " +
         std::to_string(qty_threshold) + "\n";
    input = "keep";
  }
  y += "sinks:\n  out:\n    type: kafka\n    input: " + input +
       "\n    bootstrap_servers: " + s.boot + "\n    topic: " + out_topic + "\n";
  y += indent(v.sink_yaml);
  return y;
}

spec::registry full_registry() {
  spec::registry reg;
  operators::register_builtin_operators(reg);
  connectors::register_builtin_connectors(reg);
  return reg;
}

std::uint64_t component_rows(const std::vector<runtime::instance_metrics>& ms,
                             const std::string& name, bool in) {
  std::uint64_t n = 0;
  for (const auto& m : ms)
    if (m.component == name) n += (in ? m.rows_in : m.rows_out) + (in ? 0 : m.dead_letters);
  return n;
}

/// Runs the variant as a pipeline through `runtime::job` (what `pel run` does) until the sink
/// has been given every expected row, then stops the job (sources end, the sink flushes every
/// delivery). The clock runs from the first row the source emitted to the end of the job.
double run_job(setup& s, const spec::registry& reg, const pel_variant& v, int parallelism,
               std::uint64_t& out_count) {
  const auto out_topic = s.fresh_topic(v.name + "_job_out");
  const auto yaml = job_yaml(s, v, s.input, out_topic, parallelism);
  auto pipeline = spec::load_text(yaml, "kafka_bench.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  runtime::job job(plan);
  const std::uint64_t expect_out = v.filter ? s.expected_filtered : s.messages;
  job.start();
  std::int64_t t0 = 0;
  const auto deadline = core::steady_ns() + 300'000'000'000LL;
  while (core::steady_ns() < deadline) {
    if (job.wait_for(std::chrono::microseconds(500))) break;  // ended early: a failure
    const auto ms = job.metrics();
    if (t0 == 0 && component_rows(ms, "in", false) > 0) t0 = core::steady_ns();
    if (component_rows(ms, "out", true) >= expect_out) break;
  }
  job.stop();
  auto r = job.wait();
  const double secs = seconds_since(t0);
  if (!r.ok) throw std::runtime_error("pipeline failed: " + r.error);
  out_count = topic_count(s, out_topic);
  return s.messages / secs;
}

// --- (d) latency ------------------------------------------------------------------------

struct latency_result {
  std::vector<double> ms;  // sorted
  std::size_t sent = 0;
  std::atomic<std::size_t> received{0};
  std::atomic<std::int64_t> measure_from{INT64_MAX};  // sends before this are warm-up
};

double percentile(const std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  auto i = static_cast<std::size_t>(p * (v.size() - 1));
  return v[i];
}

/// How the passthrough of the latency run is driven.
enum class latency_mode { raw, direct, runtime };

const char* mode_name(latency_mode m) {
  return m == latency_mode::raw ? "raw" : m == latency_mode::direct ? "direct" : "runtime";
}

/// librdkafka settings of the raw latency loop: the connectors' defaults (README.md), so that
/// the baseline and PEL use the same client tuning.
const std::vector<std::pair<std::string, std::string>> raw_consumer_latency_conf = {
    {"fetch.wait.max.ms", "1"}};
const std::vector<std::pair<std::string, std::string>> raw_producer_latency_conf = {
    {"linger.ms", "1"}, {"enable.idempotence", "true"}};

/// The passthrough of the latency run in a thread of its own: either a raw librdkafka
/// consume → produce loop, or the PEL connectors driven directly (source.poll → sink.write),
/// with their default settings, as a pipeline file would have them.
struct loop_passthrough {
  std::atomic<bool> stop{false}, ready{false};
  std::string failure;
  std::thread th;

  void start(setup& s, const std::string& in, const std::string& out, bool raw) {
    th = std::thread([this, &s, in, out, raw] {
      try {
        if (raw)
          run_raw_loop(s, in, out);
        else
          run_pel_loop(s, in, out);
      } catch (const std::exception& e) {
        failure = e.what();
        ready = true;
      }
    });
  }

  void run_raw_loop(setup& s, const std::string& in, const std::string& out) {
    auto cconf = raw_consumer_latency_conf;
    cconf.insert(cconf.end(), {{"bootstrap.servers", s.boot},
                               {"group.id", "bench-raw-lat"},
                               {"enable.auto.commit", "false"}});
    auto pconf = raw_producer_latency_conf;
    pconf.emplace_back("bootstrap.servers", s.boot);
    auto consumer = make_client(RD_KAFKA_CONSUMER, cconf);
    auto producer = make_client(RD_KAFKA_PRODUCER, pconf);
    topic_ptr rkt(rd_kafka_topic_new(producer.get(), out.c_str(), nullptr));
    assign_all(consumer.get(), in, s.partitions);
    ready = true;
    while (!stop) {
      std::size_t taken = 0;
      for (; taken < 1024; ++taken) {
        // As the PEL source does: wait up to 1 ms for a message only when none is queued.
        message_ptr m(rd_kafka_consumer_poll(consumer.get(), taken == 0 ? 1 : 0));
        if (!m) break;
        if (m->err) continue;
        while (rd_kafka_produce(rkt.get(), RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, m->payload,
                                m->len, m->key, m->key_len, nullptr) != 0)
          rd_kafka_poll(producer.get(), 10);
      }
      rd_kafka_poll(producer.get(), 0);
    }
    rd_kafka_flush(producer.get(), 30000);
    rd_kafka_consumer_close(consumer.get());
  }

  void run_pel_loop(setup& s, const std::string& in, const std::string& out) {
    yaml_config src_cfg("bootstrap_servers: " + s.boot + "\ntopics: [" + in +
                            "]\nassign: true\nstart_from: earliest\nformat: raw\n",
                        connectors::kafka_source_params(), "sources.in");
    yaml_config sink_cfg("bootstrap_servers: " + s.boot + "\ntopic: " + out + "\nformat: raw\n",
                         connectors::kafka_sink_params(), "sinks.out");
    connectors::kafka_source src(src_cfg.cfg);
    connectors::kafka_sink sink(sink_cfg.cfg);
    core::operator_context ctx;
    ctx.name = "latency";
    src.open(ctx);
    sink.open(ctx, src.output_schema());
    ready = true;
    core::outputs o;
    while (!stop) {
      if (src.poll(o, 1024) == core::poll_status::idle) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
        continue;
      }
      sink.write(o.main);
      o.main.clear();
    }
    sink.flush();
    src.close();
    sink.close();
  }
};

void run_latency(setup& s, const spec::registry& reg, latency_mode mode, double rate,
                 double seconds, latency_result& r) {
  const auto in = s.fresh_topic("lat_in");
  const auto out = s.fresh_topic("lat_out");
  std::atomic<bool> stop_consumer{false};

  loop_passthrough direct;
  std::unique_ptr<runtime::job> job;
  if (mode != latency_mode::runtime) {
    direct.start(s, in, out, mode == latency_mode::raw);
    const auto ready_by = core::steady_ns() + 30'000'000'000LL;
    while (!direct.ready && core::steady_ns() < ready_by)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  } else {
    const pel_variant raw{"latency", "format: raw\n", "format: raw\n", false};
    auto pipeline = spec::load_text(job_yaml(s, raw, in, out, 1), "kafka_latency.yaml", reg);
    job = std::make_unique<runtime::job>(plan::build(pipeline, reg));
    job->start();
  }

  // The measuring consumer stands for the application reading the output topic; it uses the
  // same fetch.wait.max.ms as the source (the mock answers an empty fetch only after it).
  std::thread consumer([&] {
    auto rk = make_client(RD_KAFKA_CONSUMER, {{"bootstrap.servers", s.boot},
                                              {"group.id", "bench-lat"},
                                              {"fetch.wait.max.ms", "1"},
                                              {"enable.auto.commit", "false"}});
    assign_all(rk.get(), out, s.partitions);
    while (!stop_consumer) {
      message_ptr m(rd_kafka_consumer_poll(rk.get(), 50));
      if (!m || m->err || m->len == 0) continue;
      const auto now = core::steady_ns();
      const std::string payload(static_cast<const char*>(m->payload), m->len);
      const auto sent_ns = std::stoll(payload);
      if (sent_ns >= r.measure_from) r.ms.push_back((now - sent_ns) / 1e6);
      r.received.fetch_add(1);
    }
    rd_kafka_consumer_close(rk.get());
  });

  // Producer at a fixed rate: the payload is the steady-clock send time in ns.
  auto producer =
      make_client(RD_KAFKA_PRODUCER, {{"bootstrap.servers", s.boot}, {"linger.ms", "1"}});
  const auto total = static_cast<std::size_t>(rate * (seconds + 1));
  const auto t0 = core::steady_ns();
  r.measure_from = t0 + 1'000'000'000;  // the first second warms connections and fetchers up
  const double interval_ns = 1e9 / rate;
  for (std::size_t i = 0; i < total; ++i) {
    const auto due = t0 + static_cast<std::int64_t>(i * interval_ns);
    while (core::steady_ns() < due) {
      rd_kafka_poll(producer.get(), 0);
      if (due - core::steady_ns() > 200'000)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    auto stamp = std::to_string(core::steady_ns());
    while (rd_kafka_producev(producer.get(), RD_KAFKA_V_TOPIC(in.c_str()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_VALUE(stamp.data(), stamp.size()), RD_KAFKA_V_END) != 0)
      rd_kafka_poll(producer.get(), 1);
  }
  rd_kafka_flush(producer.get(), 30000);
  r.sent = total;
  // Wait (bounded) until the consumer saw everything, then stop.
  const auto deadline = core::steady_ns() + 30'000'000'000LL;
  while (r.received.load() < total && core::steady_ns() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop_consumer = true;
  consumer.join();
  std::string failure;
  if (mode != latency_mode::runtime) {
    direct.stop = true;
    if (direct.th.joinable()) direct.th.join();
    failure = direct.failure;
  } else {
    job->stop();
    auto jr = job->wait();
    if (!jr.ok) failure = jr.error;
  }
  if (!failure.empty()) throw std::runtime_error(failure);
  std::sort(r.ms.begin(), r.ms.end());
}

}  // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  setup s;
  s.messages = a.get_size("messages", 300'000);
  s.partitions = static_cast<int>(a.get_size("partitions", 16));
  const std::size_t runs = a.get_size("runs", 3);
  const double rate = a.get_double("rate", 50'000);
  const double lat_seconds = a.get_double("latency_seconds", 4);
  const std::string out_dir = a.get_string("out", PEL_SOURCE_DIR "/bench/results");
  const std::string only = a.get_string("only", "");  // latency: just (d) and (g), no files

  try {
    connectors::kafka_broker broker({1, 0, {}, ""});
    s.broker = &broker;
    s.boot = broker.bootstraps();
    const auto reg = full_registry();

    if (only == "latency") {
      for (auto mode : {latency_mode::raw, latency_mode::direct, latency_mode::runtime}) {
        latency_result lat;
        run_latency(s, reg, mode, rate, lat_seconds, lat);
        std::cout << mode_name(mode) << " latency at " << rate << " msgs/s: p50 "
                  << bench::fmt(percentile(lat.ms, 0.5)) << " ms, p99 "
                  << bench::fmt(percentile(lat.ms, 0.99)) << " ms, p99.9 "
                  << bench::fmt(percentile(lat.ms, 0.999)) << " ms, max "
                  << bench::fmt(lat.ms.empty() ? 0 : lat.ms.back()) << " ms (" << lat.received
                  << "/" << lat.sent << " received)\n";
      }
      return 0;
    }

    broker.create_topic(s.input, s.partitions);
    std::cout << "producing " << s.messages << " prepared messages to " << s.input << " ("
              << s.partitions << " partitions)\n";
    produce_input(s);

    std::vector<double> raw_rates, pass_rates, json_rates, job_pass_rates, job_json_rates;
    bool counts_ok = true;
    for (std::size_t i = 0; i <= runs; ++i) {  // run 0 is the warm-up
      std::uint64_t raw_n = 0, pass_n = 0, json_n = 0, job_pass_n = 0, job_json_n = 0;
      const double ra = run_raw(s, raw_n);
      const double rb = run_pel(s, passthrough, pass_n, s.fresh_topic("pass_out"));
      const double rc = run_pel(s, json_filter, json_n, s.fresh_topic("json_out"));
      const double re = run_job(s, reg, passthrough, 1, job_pass_n);
      const double rf = run_job(s, reg, json_filter, 1, job_json_n);
      const bool ok = raw_n == s.messages && pass_n == s.messages &&
                      json_n == s.expected_filtered && job_pass_n == s.messages &&
                      job_json_n == s.expected_filtered;
      counts_ok = counts_ok && ok;
      std::cout << (i == 0 ? "warm-up" : "run " + std::to_string(i)) << ": raw "
                << bench::fmt_rate(ra) << " msgs/s (" << raw_n << " out); direct: passthrough "
                << bench::fmt_rate(rb) << " (" << pass_n << " out), json+filter "
                << bench::fmt_rate(rc) << " (" << json_n << " out); runtime: passthrough "
                << bench::fmt_rate(re) << " (" << job_pass_n << " out), json+filter "
                << bench::fmt_rate(rf) << " (" << job_json_n << " out); expected " << s.messages
                << " / " << s.expected_filtered << "\n";
      if (i == 0) continue;
      raw_rates.push_back(ra);
      pass_rates.push_back(rb);
      json_rates.push_back(rc);
      job_pass_rates.push_back(re);
      job_json_rates.push_back(rf);
    }
    const auto sa = bench::stats::of(raw_rates), sb = bench::stats::of(pass_rates),
               sc = bench::stats::of(json_rates), se = bench::stats::of(job_pass_rates),
               sf = bench::stats::of(job_json_rates);

    std::cout << "latency at " << rate << " msgs/s for " << lat_seconds << " s...\n";
    latency_result lat_raw, lat_direct, lat_job;
    run_latency(s, reg, latency_mode::raw, rate, lat_seconds, lat_raw);
    run_latency(s, reg, latency_mode::direct, rate, lat_seconds, lat_direct);
    run_latency(s, reg, latency_mode::runtime, rate, lat_seconds, lat_job);
    const bool lat_ok = lat_raw.received.load() == lat_raw.sent &&
                        lat_direct.received.load() == lat_direct.sent &&
                        lat_job.received.load() == lat_job.sent;

    bench::report rep("kafka", "Kafka source and sink vs a raw librdkafka loop (mock broker)");
    rep.condition("messages", std::to_string(s.messages));
    rep.condition("partitions", std::to_string(s.partitions));
    rep.condition("message", "JSON trade, ~75 bytes");
    rep.condition("broker", "librdkafka " + std::string(rd_kafka_version_str()) +
                                " mock cluster, 1 broker, same process");
    rep.condition("poll batch", "1024");
    rep.condition("throughput consumers",
                  "queued.min.messages 1000000 for the raw loop and the PEL sources alike "
                  "(2.0.2 pauses fetching 1 s at the default 100000)");
    rep.condition("runs", std::to_string(runs) + " after 1 warm-up, median (min–max)");
    rep.condition("direct", "the connectors called in a plain loop (no runtime)");
    rep.condition("runtime",
                  "the pipeline file run by pel::runtime::job as `pel run` does, parallelism 1, "
                  "default batch (1024, 1 ms), checkpoints every 1 s (sink flush)");
    rep.condition("latency",
                  bench::fmt(rate, "%.0f") + " msgs/s offered for " +
                      bench::fmt(lat_seconds, "%.0f") +
                      " s after 1 s of warm-up; passthrough with the connectors' default "
                      "settings (fetch.wait.max.ms 1, linger.ms 1, poll_wait 1 ms; the raw loop "
                      "the same); outside producer linger.ms 1, outside consumer "
                      "fetch.wait.max.ms 1; produce → input topic → passthrough → output topic "
                      "→ consume");
    rep.condition("throughput clock", "first message consumed to last delivery acknowledged");
    rep.metric("(a) raw librdkafka consume → produce", sa, "msgs/s", 1.0);
    rep.metric("(b) direct: kafka source → sink, raw passthrough", sb, "msgs/s",
               sb.median / sa.median);
    rep.metric("(c) direct: source → JSON decode → filter → JSON encode → sink", sc, "msgs/s",
               sc.median / sa.median);
    rep.metric("(e) runtime: kafka source → sink, raw passthrough", se, "msgs/s",
               se.median / sa.median, 0.8);
    rep.metric("(f) runtime: source → JSON decode → filter → JSON encode → sink", sf, "msgs/s",
               sf.median / sa.median, 0.5);
    rep.value("(a) raw loop: end-to-end latency p50", percentile(lat_raw.ms, 0.5), "ms");
    rep.value("(a) raw loop: end-to-end latency p99", percentile(lat_raw.ms, 0.99), "ms");
    rep.value("(d) direct: end-to-end latency p50", percentile(lat_direct.ms, 0.5), "ms");
    rep.value("(d) direct: end-to-end latency p99", percentile(lat_direct.ms, 0.99), "ms");
    rep.value("(g) runtime: end-to-end latency p50", percentile(lat_job.ms, 0.5), "ms");
    rep.value("(g) runtime: end-to-end latency p99", percentile(lat_job.ms, 0.99), "ms", 10, true);
    rep.value("(g) runtime: end-to-end latency p99.9", percentile(lat_job.ms, 0.999), "ms");
    rep.value("(g) runtime: end-to-end latency max", lat_job.ms.empty() ? 0 : lat_job.ms.back(),
              "ms");
    rep.value("check: every run delivered the expected count", counts_ok ? 1 : 0, "(1 = yes)");
    const auto lat_sent = lat_raw.sent + lat_direct.sent + lat_job.sent;
    const auto lat_received =
        lat_raw.received.load() + lat_direct.received.load() + lat_job.received.load();
    rep.value("check: latency messages received / sent",
              lat_sent ? double(lat_received) / lat_sent : 0, "");
    rep.write(out_dir);
    std::cout << "direct (b)/(a) = " << bench::fmt(sb.median / sa.median, "%.2f")
              << ", (c)/(a) = " << bench::fmt(sc.median / sa.median, "%.2f")
              << "; runtime (e)/(a) = " << bench::fmt(se.median / sa.median, "%.2f")
              << ", (f)/(a) = " << bench::fmt(sf.median / sa.median, "%.2f") << "\n"
              << "latency raw p50 " << bench::fmt(percentile(lat_raw.ms, 0.5)) << " ms, p99 "
              << bench::fmt(percentile(lat_raw.ms, 0.99)) << " ms; direct p50 "
              << bench::fmt(percentile(lat_direct.ms, 0.5)) << " ms, p99 "
              << bench::fmt(percentile(lat_direct.ms, 0.99)) << " ms; runtime p50 "
              << bench::fmt(percentile(lat_job.ms, 0.5)) << " ms, p99 "
              << bench::fmt(percentile(lat_job.ms, 0.99)) << " ms, p99.9 "
              << bench::fmt(percentile(lat_job.ms, 0.999)) << " ms\n"
              << "results in " << out_dir << "/kafka.json and kafka.md\n";
    if (!counts_ok || !lat_ok) {
      std::cerr << "error: output counts differ from the input (see above)\n";
      return 1;
    }
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
