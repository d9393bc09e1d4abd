// MQTT source benchmark, with its baseline in the same run on the same broker and publisher:
//   baseline: a raw libmosquitto subscriber whose message callback only counts (the least a
//             program can do with a message);
//   PEL:      the `mqtt` source (JSON decoded with a schema, site and device from the topic)
//             → a counting sink, the job built in this process as `pel run` builds it. Its
//             client is PEL's own (connectors/mqtt/mqtt_client.hpp); QoS 1 messages are
//             acknowledged when a checkpoint completes (every second by default).
// A real mosquitto on a free loopback port (the tests' broker helper, with no limit on queued
// messages, so that a slow reader is slowed down rather than dropped). One libmosquitto
// publisher sends N prepared sensor readings (topics sensors/<site>/<device>, ~80 bytes of
// JSON) as fast as it can, QoS 0 and QoS 1 (publisher and subscription alike). Throughput =
// messages received / (last received − first published). Runs alternate baseline and PEL;
// median of `runs` after a warm-up of each. Writes bench/results/mqtt.json and mqtt.md.

#include "bench_support.hpp"
#include "mqtt_workload.hpp"

#include "pel/connectors/register.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/time.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

using namespace pel;

namespace {

std::atomic<std::uint64_t> g_count{0};
std::atomic<std::int64_t> g_last_ns{0};

/// Counts rows and stamps the last arrival: the same work as the baseline's callback.
class count_sink final : public core::sink_base {
public:
  void open(const core::operator_context&, const core::schema_ptr&) override {}
  void write(const core::batch& in) override {
    g_count.fetch_add(in.size(), std::memory_order_relaxed);
    g_last_ns.store(core::steady_ns(), std::memory_order_relaxed);
  }
};

struct prepared_messages {
  std::vector<std::string> topics, payloads;
};

prepared_messages prepare(std::size_t n, int devices) {
  prepared_messages p;
  auto msgs = bench::prepare_mqtt_messages(n, devices, false);
  const std::int64_t t0 = 1'700'000'000'000;
  for (std::size_t i = 0; i < n; ++i) {
    p.topics.push_back(std::move(msgs[i].topic));
    p.payloads.push_back(bench::sensor_payload(msgs[i].device, t0 + static_cast<std::int64_t>(i), i));
  }
  return p;
}

struct run_result {
  std::uint64_t received = 0;
  double seconds = 0;           ///< first published → last received
  double publish_seconds = 0;   ///< first → last mosquitto_publish
  double cpu_us_per_msg = 0;    ///< this process's CPU (publisher included) per message
  double rate() const { return seconds > 0 ? received / seconds : 0; }
};

/// Publishes every prepared message and waits for `count` to reach them all (or to stop
/// moving for 5 s, or 120 s in all).
run_result publish_and_wait(int port, const prepared_messages& p, int qos,
                            const std::function<std::uint64_t()>& count,
                            const std::function<std::int64_t()>& last_ns) {
  bench::mqtt_client pub("bench-pub", port);
  const std::uint64_t before = count();
  const double cpu0 = bench::process_cpu_seconds();
  const std::int64_t t0 = core::steady_ns();
  for (std::size_t i = 0; i < p.topics.size(); ++i) pub.publish(p.topics[i], p.payloads[i], qos);
  const std::int64_t t_pub = core::steady_ns();
  const std::uint64_t want = before + p.topics.size();
  std::uint64_t seen = count();
  std::int64_t moved = core::steady_ns();
  const std::int64_t deadline = t0 + 120'000'000'000LL;
  while (seen < want && core::steady_ns() < deadline && core::steady_ns() - moved < 5'000'000'000LL) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto c = count();
    if (c != seen) {
      seen = c;
      moved = core::steady_ns();
    }
  }
  run_result r;
  r.received = count() - before;
  r.cpu_us_per_msg = r.received > 0 ? (bench::process_cpu_seconds() - cpu0) * 1e6 / r.received : 0;
  r.seconds = (last_ns() - t0) / 1e9;
  r.publish_seconds = (t_pub - t0) / 1e9;
  return r;
}

run_result run_raw(int port, const prepared_messages& p, int qos, int k) {
  struct counter {
    std::atomic<std::uint64_t> n{0};
    std::atomic<std::int64_t> last{0};
  } c;
  bench::mqtt_client sub("bench-raw-" + std::to_string(k), port);
  sub.on_message = [&c](const mosquitto_message*) {
    c.n.fetch_add(1, std::memory_order_relaxed);
    c.last.store(core::steady_ns(), std::memory_order_relaxed);
  };
  sub.subscribe("sensors/#", qos);
  return publish_and_wait(port, p, qos, [&] { return c.n.load(); }, [&] { return c.last.load(); });
}

run_result run_pel(const spec::registry& reg, const pel::testing::mosquitto_broker& broker,
                   const prepared_messages& p, int qos, int k) {
  const std::string client = "bench-pel-" + std::to_string(k);
  const std::string yaml =
      "pipeline:\n  name: mqtt_bench\n"
      "sources:\n  in:\n    type: mqtt\n    broker: " + broker.address() +
      "\n    client_id: " + client + "\n    topics: ['sensors/#']\n    qos: " + std::to_string(qos) +
      "\n    topic_fields: sensors/{site}/{device}\n    format: json\n"
      "    schema: {ts: int, temperature: double, humidity: double, battery: double}\n"
      "sinks:\n  out:\n    type: bench_count\n    input: in\n";
  auto pipeline = spec::load_text(yaml, "mqtt_bench.yaml", reg);
  auto plan = plan::build(pipeline, reg);
  runtime::options opts;
  opts.threads = 2;
  runtime::job job(plan, opts);
  job.start();
  if (!pel::testing::poll_until(
          [&] { return bench::broker_saw_subscription(broker, client, "sensors/#"); },
          std::chrono::seconds(20), std::chrono::milliseconds(5))) {
    std::fprintf(stderr, "PEL's mqtt source did not subscribe within 20 s\n");
    std::exit(1);
  }
  auto r = publish_and_wait(broker.port(), p, qos, [] { return g_count.load(); },
                            [] { return g_last_ns.load(); });
  job.stop(true);
  auto res = job.wait();
  if (!res.ok) {
    std::fprintf(stderr, "PEL pipeline failed: %s\n", res.error.c_str());
    std::exit(1);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  bench::args args(argc, argv);
  const int runs = static_cast<int>(args.get_size("runs", 3));
  const std::size_t n0 = args.get_size("messages", 300'000);
  const std::size_t n1 = args.get_size("qos1-messages", 150'000);
  const int devices = static_cast<int>(args.get_size("devices", 200));

  const auto dir = std::filesystem::temp_directory_path() /
                   ("pel-mqtt-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  pel::testing::mosquitto_broker broker(dir, bench::mqtt_bench_broker_conf);
  std::printf("mosquitto on %s\n", broker.address().c_str());

  spec::registry reg;
  operators::register_builtin_operators(reg);
  connectors::register_builtin_connectors(reg);
  spec::component_schema cs;
  cs.type = "bench_count";
  cs.summary = "counts rows (benchmark only)";
  reg.add_sink(cs, [](const spec::config&) { return std::make_unique<count_sink>(); });

  bench::report rep("mqtt", "MQTT source: PEL vs a raw libmosquitto subscriber");
  rep.condition("broker", "mosquitto " + bench::shell("mosquitto -h 2>/dev/null | head -1 | awk '{print $3}'") +
                              " on loopback, max_queued_messages 0, max_inflight_messages 0");
  rep.condition("messages", std::to_string(n0) + " at QoS 0, " + std::to_string(n1) +
                                " at QoS 1, " + std::to_string(devices) +
                                " devices, ~80-byte JSON payloads");
  rep.condition("PEL", "mqtt source (json with a 4-field schema, topic_fields sensors/{site}/{device}) "
                       "→ counting sink, 2 scheduler threads");
  rep.condition("runs", std::to_string(runs) + " each side, alternating, after a warm-up (median; min–max)");
  rep.condition("load", bench::shell("cut -d' ' -f1-3 /proc/loadavg"));
  rep.condition("what bounds it", "mosquitto forwards on one thread; when the raw subscriber runs at "
                                  "the broker's pace, the ratio says whether PEL keeps up with the "
                                  "broker, not how far PEL's source alone could go");

  int k = 0;
  bool all_received = true;
  for (int qos : {0, 1}) {
    const std::size_t n = qos == 0 ? n0 : n1;
    auto p = prepare(n, devices);
    std::vector<double> raw_rates, pel_rates, pub_rates, raw_cpu, pel_cpu;
    for (int i = 0; i <= runs; ++i) {
      auto raw = run_raw(broker.port(), p, qos, ++k);
      auto pr = run_pel(reg, broker, p, qos, ++k);
      std::printf("QoS %d %s: raw %llu msgs in %.3f s (%.0f/s), PEL %llu msgs in %.3f s (%.0f/s), "
                  "publisher %.0f/s\n",
                  qos, i == 0 ? "warm-up" : ("run " + std::to_string(i)).c_str(),
                  static_cast<unsigned long long>(raw.received), raw.seconds, raw.rate(),
                  static_cast<unsigned long long>(pr.received), pr.seconds, pr.rate(),
                  n / pr.publish_seconds);
      if (raw.received != n || pr.received != n) {
        std::fprintf(stderr, "QoS %d: not every message arrived (raw %llu, PEL %llu of %zu)\n", qos,
                     static_cast<unsigned long long>(raw.received),
                     static_cast<unsigned long long>(pr.received), n);
        all_received = false;
      }
      if (i == 0) continue;
      raw_rates.push_back(raw.rate());
      pel_rates.push_back(pr.rate());
      pub_rates.push_back(n / pr.publish_seconds);
      raw_cpu.push_back(raw.cpu_us_per_msg);
      pel_cpu.push_back(pr.cpu_us_per_msg);
    }
    auto raw = bench::stats::of(raw_rates), pel_s = bench::stats::of(pel_rates),
         pub = bench::stats::of(pub_rates);
    std::printf("QoS %d: raw %.3g msgs/s, PEL %.3g msgs/s (%.2fx)\n", qos, raw.median,
                pel_s.median, pel_s.median / raw.median);
    const std::string q = "QoS " + std::to_string(qos);
    rep.metric(q + ": raw libmosquitto subscriber (counts)", raw, "msgs/s", 1.0);
    rep.metric(q + ": PEL mqtt source → counting sink", pel_s, "msgs/s", pel_s.median / raw.median, 0.7);
    const double rc = bench::stats::of(raw_cpu).median, pc = bench::stats::of(pel_cpu).median;
    std::printf("QoS %d: CPU per message (this process, publisher included): raw %.2f us, PEL %.2f us\n",
                qos, rc, pc);
    rep.value(q + ": CPU per message, raw side (this process, the publisher included; median)", rc, "µs");
    rep.value(q + ": CPU per message, PEL side (the same; PEL's client and pipeline against libmosquitto's loop)", pc, "µs");
    rep.value(q + ": the publisher's mosquitto_publish calls a second (for reference)",
              pub.median, "msgs/s");
  }
  rep.write(PEL_SOURCE_DIR "/bench/results");
  std::filesystem::remove_all(dir);
  return all_received ? 0 : 1;
}
