// alignment_bench: catching up a skewed Kafka backlog with watermark alignment against the
// same job without it, in the same process and run, on the embedded broker.
//
// The backlog: a topic whose partitions are very different in size over the same span of
// event time (one holds most of the trades, one a tenth of them, one a hundredth, one none),
// each in event-time order, already produced when the job starts. The job is what `pel run`
// would run: kafka source (explicit assignment, parallelism 1, event time from `ts`) → 1 s
// tumbling count per symbol (parallelism 2) → a file sink on /dev/null.
//
//   baseline: the job without alignment (`max_drift: 0s`)
//   aligned:  the same job with `max_drift: 2s`
//
// Each run's clock goes from the first row the source emitted until the window has been given
// every row. Reported: both rates and their ratio (alignment must not cap how fast a backlog is
// caught up: target ≥ 0.8×), and how far the fastest partition's event time ran ahead of the
// slowest in each (the runtime's `max_split_lead_ns`): what bounds the windows such a backlog
// keeps open. Late records must be 0 in both.
//
// Usage: alignment_bench [--messages=120000] [--runs=3] [--out=<dir>]

#include "bench_support.hpp"

#include "pel/connectors/kafka_broker.hpp"
#include "pel/connectors/register.hpp"
#include "pel/core/time.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace pel;

namespace {

constexpr std::int64_t t0_ms = 1'704'205'800'000;
constexpr std::int64_t span_ms = 300'000;  // five minutes of event time in every partition

/// Produces the skewed backlog: partition p gets `shares[p]` of `total` trades, evenly over
/// the span, in time order, lz4-compressed (the mock broker keeps 5 MiB per partition).
void produce_backlog(const std::string& boot, const std::string& topic, std::size_t total,
                     const std::vector<double>& shares) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  for (auto [k, v] : {std::pair<const char*, const char*>{"bootstrap.servers", boot.c_str()},
                      {"compression.type", "lz4"},
                      {"linger.ms", "20"}})
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK)
      throw std::runtime_error(err);
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> rk(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err), rd_kafka_destroy);
  if (!rk) throw std::runtime_error(err);
  for (std::size_t p = 0; p < shares.size(); ++p) {
    const auto n = static_cast<std::size_t>(static_cast<double>(total) * shares[p]);
    for (std::size_t i = 0; i < n; ++i) {
      char v[128];
      const int len = std::snprintf(
          v, sizeof v, R"({"ts":%lld,"symbol":"P%zuS%zu","price":%zu.25,"qty":%zu})",
          static_cast<long long>(t0_ms + static_cast<std::int64_t>(i) * span_ms / static_cast<std::int64_t>(n)),
          p, i % 8, 100 + i % 300, 1 + i % 97);
      while (rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                               RD_KAFKA_V_PARTITION(static_cast<std::int32_t>(p)),
                               RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                               RD_KAFKA_V_VALUE(v, static_cast<std::size_t>(len)),
                               RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk.get(), 10);
    }
  }
  if (rd_kafka_flush(rk.get(), 120'000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("could not produce the backlog");
}

struct outcome {
  double rate = 0;             // rows per second
  double lead_s = 0;           // max_split_lead_ns of the source, in s
  std::uint64_t late = 0;      // late records over every component
  std::uint64_t windowed = 0;  // rows the window was given
};

outcome run_job(const spec::registry& reg, const std::string& boot, const std::string& topic,
                const std::string& drift, std::uint64_t total) {
  const std::string yaml =
      "pipeline: {name: alignment_bench}\n"
      "sources:\n"
      "  trades:\n"
      "    type: kafka\n"
      "    bootstrap_servers: " + boot + "\n"
      "    topics: [" + topic + "]\n"
      "    assign: true\n"
      "    start_from: earliest\n"
      "    schema: {ts: int, symbol: string, price: double, qty: int}\n"
      // As in kafka_bench: librdkafka 2.0.2 stops fetching for a second at its default.
      "    rdkafka: {queued.min.messages: 1000000}\n"
      "    event_time: {field: ts, format: epoch_ms, max_drift: " + drift + "}\n"
      "operators:\n"
      "  counts:\n"
      "    type: window\n"
      "    parallelism: 2\n"
      "    input: trades\n"
      "    key: symbol\n"
      "    window: {type: tumbling, size: 1s}\n"
      "    aggregates: {n: count(), volume: sum(qty)}\n"
      "sinks:\n"
      "  out: {type: file, input: counts, path: /dev/null}\n";
  auto plan = plan::build(spec::load_text(yaml, "alignment_bench.yaml", reg), reg);
  runtime::job job(plan);
  job.start();
  std::int64_t t0 = 0, t1 = 0;
  const auto deadline = core::steady_ns() + 300'000'000'000LL;
  auto rows_of = [&](const std::vector<runtime::instance_metrics>& ms, const std::string& c, bool in) {
    std::uint64_t n = 0;
    for (const auto& m : ms)
      if (m.component == c || m.component == c + "/local") n += in ? m.rows_in : m.rows_out;
    return n;
  };
  outcome o;
  while (core::steady_ns() < deadline) {
    if (job.wait_for(std::chrono::microseconds(500))) break;  // ended early: a failure
    const auto ms = job.metrics();
    if (t0 == 0 && rows_of(ms, "trades", false) > 0) t0 = core::steady_ns();
    // The local half takes the rows first when the window splits in two phases.
    std::uint64_t given = 0;
    for (const auto& m : ms)
      if (m.component == "counts/local") given += m.rows_in;
    if (given == 0) given = rows_of(ms, "counts", true);
    if (given >= total) {
      t1 = core::steady_ns();
      o.windowed = given;
      break;
    }
  }
  job.stop();
  auto r = job.wait();
  if (!r.ok) throw std::runtime_error("pipeline failed: " + r.error);
  if (t1 == 0) throw std::runtime_error("the window was not given every row in time");
  for (const auto& c : r.components) {
    o.late += c.late;
    if (c.name == "trades") o.lead_s = static_cast<double>(c.max_split_lead_ns) / 1e9;
  }
  o.rate = static_cast<double>(total) / (static_cast<double>(t1 - t0) / 1e9);
  return o;
}

} // namespace

int main(int argc, char** argv) {
  bench::args a(argc, argv);
  const std::size_t messages = a.get_size("messages", 120'000);
  const std::size_t runs = a.get_size("runs", 3);
  const std::string out_dir = a.get_string("out", PEL_SOURCE_DIR "/bench/results");
  const std::vector<double> shares = {0.89, 0.10, 0.01, 0.0};
  try {
    connectors::kafka_broker broker({1, 0, {"backlog:4"}, ""});
    spec::registry reg;
    operators::register_builtin_operators(reg);
    connectors::register_builtin_connectors(reg);
    std::cout << "producing a skewed backlog of " << messages << " trades\n";
    produce_backlog(broker.bootstraps(), "backlog", messages, shares);
    std::uint64_t total = 0;
    for (double s : shares) total += static_cast<std::uint64_t>(static_cast<double>(messages) * s);

    std::vector<double> base_rates, aligned_rates, base_leads, aligned_leads;
    std::uint64_t late = 0;
    for (std::size_t i = 0; i <= runs; ++i) {  // run 0 is the warm-up
      const auto b = run_job(reg, broker.bootstraps(), "backlog", "0s", total);
      const auto al = run_job(reg, broker.bootstraps(), "backlog", "2s", total);
      std::cout << (i == 0 ? "warm-up" : "run " + std::to_string(i)) << ": without alignment "
                << bench::fmt_rate(b.rate) << " rows/s, lead " << bench::fmt(b.lead_s)
                << " s; max_drift 2s " << bench::fmt_rate(al.rate) << " rows/s, lead "
                << bench::fmt(al.lead_s) << " s; late " << b.late + al.late << "\n";
      late += b.late + al.late;
      if (i == 0) continue;
      base_rates.push_back(b.rate);
      aligned_rates.push_back(al.rate);
      base_leads.push_back(b.lead_s);
      aligned_leads.push_back(al.lead_s);
    }
    const auto base = bench::stats::of(base_rates);
    const auto aligned = bench::stats::of(aligned_rates);
    bench::report rep("alignment", "Watermark alignment: catching up a skewed Kafka backlog");
    rep.metric("without alignment (`max_drift: 0s`, baseline)", base, "rows/s", 1.0);
    rep.metric("with alignment (`max_drift: 2s`)", aligned, "rows/s", aligned.median / base.median, 0.8);
    rep.value("fastest partition's lead over the slowest, without alignment (median)",
              bench::stats::of(base_leads).median, "s");
    // The bound: max_drift plus what one poll's 16 messages of the sparsest partition span
    // (4 s here), with room for a run whose pause came a poll late.
    rep.value("the same with `max_drift: 2s` (median)", bench::stats::of(aligned_leads).median, "s",
              10, true);
    rep.value("the same, the largest of the runs", bench::stats::of(aligned_leads).max, "s");
    rep.value("late records, all runs", static_cast<double>(late), "records");
#ifdef PEL_BENCH_BUILD
    rep.condition("libraries built as", PEL_BENCH_BUILD);
#endif
    rep.condition("trades", std::to_string(total));
    rep.condition("partitions", "4, holding 89 %, 10 %, 1 % and 0 % of the trades over the same 300 s of event time, each in time order");
    rep.condition("job", "kafka source (assign, parallelism 1, event time from ts) → 1 s tumbling count and volume per symbol (24 symbols, parallelism 2) → file sink on /dev/null");
    rep.condition("broker", "librdkafka 2.0.2 mock cluster, same process, backlog produced before each run starts; consumer queued.min.messages 1000000 in both jobs (2.0.2 pauses fetching 1 s at the default)");
    rep.condition("runs", std::to_string(runs) + " pairs after 1 warm-up pair, interleaved, median (min–max)");
    rep.write(out_dir);
    std::cout << "wrote " << out_dir << "/alignment.{json,md}\n";
  } catch (const std::exception& e) {
    std::cerr << "alignment_bench: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
