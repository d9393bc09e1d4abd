// End-to-end guarantees of an edge node (labels mqtt, e2e): the real `pel` binary between a
// real mosquitto (started per test on a free loopback port) and the embedded Kafka broker
// (`pel kafka-broker`, a separate process), with kcat as the independent Kafka reader.
//
// - Uplink outage: a steady 5,000 messages/s over 50 devices (skewed: two devices send 60%)
//   goes MQTT -> Kafka through a store-and-forward buffer while the Kafka brokers go down
//   for several seconds and come back. Every message must arrive, in order per device, with
//   duplicates only from a re-sent batch (counted and printed).
// - kill -9 while the buffer holds data: everything buffered is delivered after a restart.
// - kill -9 while pel holds QoS 1 messages no checkpoint has covered: they were not
//   acknowledged, so the broker sends them all again to the restarted process (and, as the
//   control, with `ack: receipt` they are gone).
// - A full buffer follows its policy (drop_oldest) and says so, counting what it dropped.
// - QoS 1 and 2 publishers keep publishing while mosquitto restarts: pel receives what an
//   independent persistent subscriber receives, but for what the broker itself loses.
// - Bad input (malformed payloads, unexpected topics, oversized payloads) goes to the
//   dead-letter file with its reason, topic and message id.
#include "e2e_support.hpp"
#include "json_line.hpp"
#include "mqtt_test_broker.hpp"
#include "process.hpp"

#include <mosquitto.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using pel::e2e::lines_of;

namespace {

/// The device of message `i`: dev-0 gets 40% of them, dev-1 20%, the other 48 share the rest
/// unevenly (some send every few seconds, some often).
std::string device_of(std::int64_t i, int devices) {
  const std::int64_t r = i % 10;
  if (r < 4) return "dev-0";
  if (r < 6) return "dev-1";
  const std::int64_t k = (i * 7919) % ((devices - 2) * (devices - 1) / 2);
  // Triangular pick: device 2 + d with weight d + 1.
  std::int64_t d = 0, acc = 0;
  while (acc + d + 1 <= k) acc += ++d;
  return "dev-" + std::to_string(2 + std::min<std::int64_t>(d, devices - 3));
}

/// A publisher on libmosquitto: `total` messages at `rate` per second, QoS `qos`, persistent
/// session, reconnecting by itself. Message i goes to sensors/<site>/<device_of(i)> as
/// {"seq": i, "n": <the device's own count>, "ts": ..., "temperature": ...}.
class paced_publisher {
public:
  struct options {
    int port = 0;
    int qos = 1;
    std::string client_id;
    std::string site = "plant";
    int devices = 50;
    double rate = 5000;
    std::int64_t total = 0;  ///< below 65,535 (message ids must not wrap)
    bool clean_session = false;
  };

  explicit paced_publisher(options o) : o_(std::move(o)) {
    mosquitto_lib_init();
    mosq_ = mosquitto_new(o_.client_id.c_str(), o_.clean_session, this);
    if (mosq_ == nullptr) throw std::runtime_error("mosquitto_new failed");
    // A message re-sent after a reconnect may be acknowledged twice: count message ids.
    mosquitto_publish_callback_set(mosq_, [](mosquitto*, void* self, int mid) {
      auto* p = static_cast<paced_publisher*>(self);
      std::lock_guard<std::mutex> lk(p->mu_);
      p->acked_mids_.insert(mid);
    });
    mosquitto_max_inflight_messages_set(mosq_, o_.qos == 2 ? 20 : 1000);
    mosquitto_reconnect_delay_set(mosq_, 1, 2, false);
    if (mosquitto_connect(mosq_, "127.0.0.1", o_.port, 10) != MOSQ_ERR_SUCCESS)
      throw std::runtime_error("the test publisher cannot connect");
    mosquitto_loop_start(mosq_);
    thread_ = std::thread([this] { run(); });
  }

  ~paced_publisher() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    mosquitto_disconnect(mosq_);
    mosquitto_loop_stop(mosq_, true);
    mosquitto_destroy(mosq_);
  }

  std::int64_t sent() const { return sent_.load(); }
  /// Messages the broker acknowledged (ids are unique while fewer than 65,535 are sent).
  std::int64_t acked() {
    std::lock_guard<std::mutex> lk(mu_);
    return static_cast<std::int64_t>(acked_mids_.size());
  }
  /// Messages per device (complete once `sent() == total`).
  std::map<std::string, std::int64_t> per_device() {
    std::lock_guard<std::mutex> lk(mu_);
    return counts_;
  }

private:
  void run() {
    const auto start = std::chrono::steady_clock::now();
    for (std::int64_t i = 0; i < o_.total && !stop_; ++i) {
      std::this_thread::sleep_until(start + std::chrono::microseconds(
                                                static_cast<std::int64_t>(i * 1e6 / o_.rate)));
      const std::string dev = device_of(i, o_.devices);
      std::int64_t n;
      {
        std::lock_guard<std::mutex> lk(mu_);
        n = counts_[dev]++;
      }
      const std::string topic = "sensors/" + o_.site + "/" + dev;
      const std::string payload = "{\"seq\": " + std::to_string(i) + ", \"n\": " + std::to_string(n) +
                                  ", \"ts\": " + std::to_string(1717200000000 + i) +
                                  ", \"temperature\": " + std::to_string(20 + i % 17) + ".5}";
      // While disconnected, libmosquitto queues a QoS 1/2 message, says MOSQ_ERR_NO_CONN and
      // sends it on reconnect: that is not a failure. Anything else is retried for 30 s.
      const auto give_up = std::chrono::steady_clock::now() + 30s;
      for (;;) {
        const int rc = mosquitto_publish(mosq_, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                                         payload.data(), o_.qos, false);
        if (rc == MOSQ_ERR_SUCCESS || (rc == MOSQ_ERR_NO_CONN && o_.qos > 0)) break;
        if (std::chrono::steady_clock::now() > give_up || stop_) return;
        std::this_thread::sleep_for(5ms);
      }
      sent_.fetch_add(1);
    }
  }

  options o_;
  mosquitto* mosq_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> sent_{0};
  std::mutex mu_;
  std::map<std::string, std::int64_t> counts_;
  std::set<int> acked_mids_;
};

/// Messages read back, per device: every `n` seen, in order of arrival.
struct arrivals {
  std::map<std::string, std::vector<std::int64_t>> by_device;
  std::size_t total = 0;
};

arrivals parse_arrivals(const std::string& text) {
  arrivals a;
  for (const auto& l : lines_of(text)) {
    auto o = pel::e2e::parse_json_object(l);
    if (!o || !o->has("device") || !o->has("n") || o->integer("n") < 0) continue;  // probes
    a.by_device[o->str("device")].push_back(o->integer("n"));
    ++a.total;
  }
  return a;
}

/// Checks that each device's messages 0..count-1 all arrived and that, leaving duplicates out,
/// they arrived in order. Returns the number of duplicates.
std::size_t check_complete_in_order(const arrivals& got,
                                    const std::map<std::string, std::int64_t>& expected) {
  std::size_t dups = 0;
  for (const auto& [dev, count] : expected) {
    INFO("device " << dev);
    auto it = got.by_device.find(dev);
    REQUIRE(it != got.by_device.end());
    std::set<std::int64_t> seen;
    std::int64_t last = -1;
    for (std::int64_t n : it->second) {
      if (!seen.insert(n).second) {
        ++dups;
        continue;
      }
      REQUIRE(n > last);  // a first arrival never comes after a later message
      last = n;
    }
    REQUIRE(static_cast<std::int64_t>(seen.size()) == count);
    REQUIRE(*seen.rbegin() == count - 1);
  }
  REQUIRE(got.by_device.size() == expected.size());
  return dups;
}

/// `pel kafka-broker` in its own process, so that its brokers can be taken down (SIGUSR2).
struct kafka_process {
  pel::e2e::process p;
  std::string boot;
  bool down = false;

  explicit kafka_process(const std::string& topics)
      : p({pel::e2e::pel_binary(), "kafka-broker", "--port", "0", "--topics", topics}) {
    REQUIRE(p.wait_until([&] { return p.out().find("outage: ") != std::string::npos; }, 30s));
    const auto at = p.out().find("bootstrap: ") + 11;
    boot = p.out().substr(at, p.out().find('\n', at) - at);
  }
  /// Takes the brokers down or brings them back, and waits until it said so.
  void toggle() {
    down = !down;
    const std::string said = down ? "brokers down" : "brokers up";
    const auto before = count(said);
    p.send_signal(SIGUSR2);
    REQUIRE(p.wait_until([&] { return count(said) > before; }, 10s));
  }
  std::size_t count(const std::string& s) const {
    std::size_t n = 0;
    for (auto at = p.out().find(s); at != std::string::npos; at = p.out().find(s, at + 1)) ++n;
    return n;
  }
  std::string consume(const std::string& topic) const {
    return pel::e2e::shell_output("timeout 60 kcat -b " + boot + " -C -t " + topic +
                                  " -o beginning -e -q -f '%s\\n' 2>/dev/null");
  }
};

/// The value of `name{...component="C"...}` in pel's /metrics (-1: not there).
double metric(int port, const std::string& name, const std::string& component) {
  const auto text = pel::e2e::shell_output("curl -s --max-time 5 http://127.0.0.1:" +
                                           std::to_string(port) + "/metrics");
  for (const auto& l : lines_of(text))
    if (l.rfind(name + "{", 0) == 0 && l.find("component=\"" + component + "\"") != std::string::npos)
      return std::stod(l.substr(l.rfind(' ') + 1));
  return -1;
}

std::string mqtt_to_kafka(const pel::testing::mosquitto_broker& mqtt, const std::string& boot,
                          const std::string& buffer_dir, const std::string& client_id) {
  return "pipeline:\n"
         "  name: edge_uplink\n"
         "sources:\n"
         "  readings:\n"
         "    type: mqtt\n"
         "    broker: " + mqtt.address() + "\n"
         "    client_id: " + client_id + "\n"
         "    clean_session: false\n"
         "    topics: [sensors/+/+]\n"
         "    qos: 1\n"
         "    topic_fields: sensors/{site}/{device}\n"
         "    format: json\n"
         "    schema: {seq: int, n: int, ts: int, temperature: double}\n"
         "sinks:\n"
         "  uplink:\n"
         "    type: kafka\n"
         "    input: readings\n"
         "    bootstrap_servers: " + boot + "\n"
         "    topic: readings\n"
         "    key: device\n"
         "    flush_timeout: 2s\n"
         "    buffer: {dir: " + buffer_dir + ", max_size: 256MiB}\n";
}

/// pel is subscribed once a probe on a topic outside the test's devices reaches component
/// `sink`, as `metric_name` of pel's /metrics (on port `http`) counts it.
void wait_subscribed(const pel::testing::mosquitto_broker& mqtt, int http,
                     const std::string& metric_name = "pel_buffer_appended_total",
                     const std::string& sink = "uplink") {
  REQUIRE(pel::e2e::eventually(
      [&] {
        mqtt.publish("sensors/probe/probe", R"({"seq": -1, "n": -1, "ts": 0, "temperature": 0})", 1);
        return metric(http, metric_name, sink) > 0;
      },
      30s));
}

int free_port() { return pel::testing::free_loopback_port(); }

}  // namespace

TEST_CASE("uplink outage at 5000 messages/s: every message reaches Kafka in order per device",
          "[mqtt][e2e][edge]") {
  pel::e2e::temp_dir dir;
  pel::testing::mosquitto_broker mqtt(dir.path());
  kafka_process kafka("readings:4");
  const int http = free_port();
  const std::string yaml = dir / "edge.yaml";
  pel::e2e::write_file(yaml, mqtt_to_kafka(mqtt, kafka.boot, dir / "buffer", "pel-outage"));
  pel::e2e::process pel({pel::e2e::pel_binary(), "run", yaml, "--http",
                         "127.0.0.1:" + std::to_string(http)});
  wait_subscribed(mqtt, http);

  // 8 s of a steady 5,000 messages/s; the uplink goes down after 1.5 s, for about 4 s.
  const std::int64_t total = 40000;
  paced_publisher pub({mqtt.port(), 1, "outage-publisher", "plant", 50, 5000, total});
  REQUIRE(pel::e2e::eventually([&] { return pub.sent() >= 7500; }, 30s));
  kafka.toggle();
  // The buffer takes the stream while Kafka is away: forwarding fails, records pile up.
  REQUIRE(pel::e2e::eventually([&] { return metric(http, "pel_buffer_forwarding", "uplink") == 0; }, 30s));
  REQUIRE(pel::e2e::eventually([&] { return pub.sent() >= 27500; }, 30s));
  const double pending_in_outage = metric(http, "pel_buffer_pending_records", "uplink");
  CHECK(pending_in_outage > 10000);
  kafka.toggle();
  REQUIRE(pel::e2e::eventually([&] { return pub.sent() == total; }, 60s));
  REQUIRE(pel::e2e::eventually([&] { return pub.acked() == total; }, 60s));
  // Drained: every message (and the probes) forwarded, forwarding again.
  REQUIRE(pel::e2e::eventually(
      [&] {
        return metric(http, "pel_buffer_forwarded_total", "uplink") >= static_cast<double>(total) &&
               metric(http, "pel_buffer_pending_records", "uplink") == 0;
      },
      120s));
  CHECK(metric(http, "pel_buffer_forwarding", "uplink") == 1);
  const double failures = metric(http, "pel_buffer_forward_failures_total", "uplink");
  CHECK(failures >= 1);

  const arrivals got = parse_arrivals(kafka.consume("readings"));
  const auto expected = pub.per_device();
  const std::size_t dups = check_complete_in_order(got, expected);
  std::printf("uplink outage: %lld published at 5000/s over %zu devices (dev-0: %lld, dev-1: %lld); "
              "%.0f waited in the buffer during the outage, %.0f failed attempts; %zu read from "
              "Kafka, %zu duplicates\n",
              static_cast<long long>(total), expected.size(),
              static_cast<long long>(expected.at("dev-0")), static_cast<long long>(expected.at("dev-1")),
              pending_in_outage, failures, got.total, dups);
  // A duplicate comes only from a batch re-sent after a failed flush (at most `batch` rows each).
  CHECK(dups <= static_cast<std::size_t>(failures) * 1000);
  pel.send_signal(SIGTERM);
  CHECK_FALSE(pel.wait(60s).timed_out);
}

TEST_CASE("kill -9 while the buffer holds data: a restart delivers everything it held",
          "[mqtt][e2e][edge]") {
  pel::e2e::temp_dir dir;
  pel::testing::mosquitto_broker mqtt(dir.path());
  kafka_process kafka("readings:4");
  kafka.toggle();  // the uplink is down from the start
  const int http = free_port();
  const std::string yaml = dir / "edge.yaml";
  pel::e2e::write_file(yaml, mqtt_to_kafka(mqtt, kafka.boot, dir / "buffer", "pel-kill"));
  const std::int64_t total = 6000;
  std::map<std::string, std::int64_t> expected;
  {
    pel::e2e::process pel({pel::e2e::pel_binary(), "run", yaml, "--http",
                           "127.0.0.1:" + std::to_string(http)});
    wait_subscribed(mqtt, http);
    paced_publisher pub({mqtt.port(), 1, "kill-publisher", "plant", 50, 3000, total});
    REQUIRE(pel::e2e::eventually([&] { return pub.acked() == total; }, 60s));
    // Everything is on disk (the probes too), nothing went out.
    REQUIRE(pel::e2e::eventually(
        [&] { return metric(http, "pel_buffer_pending_records", "uplink") >= static_cast<double>(total); },
        60s));
    CHECK(metric(http, "pel_buffer_forwarded_total", "uplink") == 0);
    expected = pub.per_device();
    pel.send_signal(SIGKILL);
    const auto r = pel.wait(30s);
    REQUIRE(r.term_signal == SIGKILL);
  }
  kafka.toggle();
  const int http2 = free_port();
  pel::e2e::process again({pel::e2e::pel_binary(), "run", yaml, "--http",
                           "127.0.0.1:" + std::to_string(http2)});
  REQUIRE(again.wait_until_stderr(
      [&] { return again.err().find("records left in its buffer") != std::string::npos; }, 30s));
  REQUIRE(pel::e2e::eventually(
      [&] {
        return metric(http2, "pel_buffer_forwarded_total", "uplink") >= static_cast<double>(total) &&
               metric(http2, "pel_buffer_pending_records", "uplink") == 0;
      },
      120s));
  const arrivals got = parse_arrivals(kafka.consume("readings"));
  const std::size_t dups = check_complete_in_order(got, expected);
  std::printf("kill -9: %lld messages held in the buffer at the kill, %zu read from Kafka after "
              "the restart, %zu duplicates\n",
              static_cast<long long>(total), got.total, dups);
  // The broker sends again what pel received after its last completed checkpoint (acknowledged
  // only then): at most about one checkpoint interval (1 s) of the 3,000 messages/s.
  CHECK(dups <= 3000);
  again.send_signal(SIGTERM);
  CHECK_FALSE(again.wait(60s).timed_out);
}

namespace {

/// A pipeline from mosquitto to a JSON file, on a persistent session.
std::string mqtt_to_file(const pel::testing::mosquitto_broker& mqtt, const std::string& out,
                         const std::string& ack, const std::string& interval) {
  return "pipeline: {name: held, checkpoints: {interval: " + interval + "}}\n"
         "sources:\n"
         "  readings:\n"
         "    type: mqtt\n"
         "    broker: " + mqtt.address() + "\n"
         "    client_id: pel-held\n"
         "    clean_session: false\n"
         "    topics: [sensors/+/+]\n"
         "    qos: 1\n"
         "    ack: " + ack + "\n"
         "    topic_fields: sensors/{site}/{device}\n"
         "    format: json\n"
         "    schema: {seq: int, n: int, ts: int, temperature: double}\n"
         "sinks:\n"
         "  rows: {type: file, input: readings, path: " + out + ", format: json}\n";
}

/// Runs the pipeline until its sink has taken `want` records (probes first, so that it is
/// subscribed), then kills it with SIGKILL, before any checkpoint completed.
void run_and_kill(const std::string& yaml, pel::testing::mosquitto_broker& mqtt,
                  const std::string& publisher, std::int64_t total) {
  const int http = free_port();
  pel::e2e::process pel({pel::e2e::pel_binary(), "run", yaml, "--http",
                         "127.0.0.1:" + std::to_string(http)});
  wait_subscribed(mqtt, http, "pel_records_in_total", "rows");
  const double probes = metric(http, "pel_records_in_total", "rows");
  paced_publisher pub({mqtt.port(), 1, publisher, "plant", 20, 2000, total});
  REQUIRE(pel::e2e::eventually([&] { return pub.acked() == total; }, 60s));
  REQUIRE(pel::e2e::eventually(
      [&] { return metric(http, "pel_records_in_total", "rows") >= probes + static_cast<double>(total); },
      60s));
  pel.send_signal(SIGKILL);
  REQUIRE(pel.wait(30s).term_signal == SIGKILL);
}

/// Runs the pipeline until `want` distinct readings reached `out` or `within` passed, then
/// stops it with SIGTERM (the last checkpoint acknowledges everything); the distinct readings.
std::size_t run_and_count(const std::string& yaml, const std::string& out,
                          pel::testing::mosquitto_broker& mqtt, std::size_t want,
                          std::chrono::seconds within) {
  const int http = free_port();
  pel::e2e::process pel({pel::e2e::pel_binary(), "run", yaml, "--http",
                         "127.0.0.1:" + std::to_string(http)});
  // Subscribed (a probe got through) before anything is counted.
  wait_subscribed(mqtt, http, "pel_records_in_total", "rows");
  auto distinct = [&] {
    std::set<std::pair<std::string, std::int64_t>> got;
    for (const auto& l : lines_of(pel::e2e::read_file(out))) {
      auto o = pel::e2e::parse_json_object(l);
      if (o && o->has("device") && o->integer("n") >= 0) got.emplace(o->str("device"), o->integer("seq"));
    }
    return got.size();
  };
  // The file is written in batches: the count is read once pel has stopped; until then the
  // records_in metric says when enough arrived.
  pel::e2e::eventually(
      [&] { return metric(http, "pel_records_in_total", "rows") >= static_cast<double>(want) + 1; },
      within);
  // Two more checkpoints complete, the first of them after everything taken so far: all of
  // it is acknowledged. (A stop without a state directory drains without a checkpoint: what
  // came after the last one is not acknowledged and comes again on the next run.)
  auto checkpoints = [&] {
    for (const auto& l : lines_of(pel::e2e::shell_output("curl -s --max-time 5 http://127.0.0.1:" +
                                                         std::to_string(http) + "/metrics")))
      if (l.rfind("pel_checkpoints_total{", 0) == 0) return std::stod(l.substr(l.rfind(' ') + 1));
    return -1.0;
  };
  const double at = checkpoints();
  REQUIRE(at >= 0);
  REQUIRE(pel::e2e::eventually([&] { return checkpoints() >= at + 2; }, 30s));
  pel.send_signal(SIGTERM);
  REQUIRE_FALSE(pel.wait(60s).timed_out);
  return distinct();
}

}  // namespace

TEST_CASE("QoS 1 messages pel took but had not checkpointed come back after kill -9",
          "[mqtt][e2e][edge]") {
  pel::e2e::temp_dir dir;
  pel::testing::mosquitto_broker mqtt(dir.path());
  const std::int64_t total = 2000;
  const std::string out1 = dir / "first.json", out2 = dir / "second.json", out3 = dir / "third.json";
  // No checkpoint completes in the first run (an hour apart): pel holds every message
  // unacknowledged when it is killed.
  pel::e2e::write_file(dir / "first.yaml", mqtt_to_file(mqtt, out1, "checkpoint", "1h"));
  run_and_kill(dir / "first.yaml", mqtt, "held-publisher", total);
  // The restart on the same session gets them all again from the broker...
  pel::e2e::write_file(dir / "second.yaml", mqtt_to_file(mqtt, out2, "checkpoint", "200ms"));
  const std::size_t again = run_and_count(dir / "second.yaml", out2, mqtt, total, 60s);
  // ...and, acknowledged at its checkpoints, they are gone from the broker after it.
  pel::e2e::write_file(dir / "third.yaml", mqtt_to_file(mqtt, out3, "checkpoint", "200ms"));
  const std::size_t third = run_and_count(dir / "third.yaml", out3, mqtt, 1, 3s);

  // The control: acknowledged on receipt, what the killed process held is lost.
  const std::string out4 = dir / "receipt.json", out5 = dir / "receipt-after.json";
  pel::e2e::write_file(dir / "receipt.yaml", mqtt_to_file(mqtt, out4, "receipt", "1h"));
  run_and_kill(dir / "receipt.yaml", mqtt, "receipt-publisher", total);
  pel::e2e::write_file(dir / "receipt-after.yaml", mqtt_to_file(mqtt, out5, "receipt", "200ms"));
  const std::size_t receipt_again = run_and_count(dir / "receipt-after.yaml", out5, mqtt, total, 3s);
  std::printf("kill -9 with %lld QoS 1 messages taken and not checkpointed: the restart got %zu "
              "of them again, a third run %zu; with ack: receipt the restart got %zu\n",
              static_cast<long long>(total), again, third, receipt_again);
  CHECK(again == static_cast<std::size_t>(total));
  CHECK(third == 0);
  CHECK(receipt_again == 0);
}

TEST_CASE("a full buffer with drop_oldest drops the oldest records and says how many",
          "[mqtt][e2e][edge]") {
  pel::e2e::temp_dir dir;
  kafka_process kafka("out:2");
  kafka.toggle();
  const std::string yaml = dir / "full.yaml";
  pel::e2e::write_file(yaml,
                       "pipeline: {name: full}\n"
                       "sources:\n"
                       "  gen: {type: generator, profile: sensors, devices: 20, count: 120000}\n"
                       "sinks:\n"
                       "  uplink:\n"
                       "    type: kafka\n"
                       "    input: gen\n"
                       "    bootstrap_servers: " + kafka.boot + "\n"
                       "    topic: out\n"
                       "    flush_timeout: 1s\n"
                       "    buffer: {dir: " + (dir / "buffer") + ", max_size: 2MiB, "
                       "when_full: drop_oldest, drain_timeout: 2s}\n");
  pel::e2e::process pel({pel::e2e::pel_binary(), "run", yaml});
  const auto r = pel.wait(120s);
  REQUIRE_FALSE(r.timed_out);
  INFO(r.err);
  CHECK(r.err.find("is full (2 MiB): dropped the oldest") != std::string::npos);
  CHECK(r.err.find("when_full: drop_oldest") != std::string::npos);
  CHECK(r.err.find("records stay in its buffer") != std::string::npos);
  // The run's summary counts the dropped records as lost.
  CHECK(r.err.find("records dropped by full sink buffers") != std::string::npos);
  // What stayed is bounded by max_size.
  std::uintmax_t bytes = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir / "buffer"))
    if (e.is_regular_file()) bytes += e.file_size();
  CHECK(bytes <= (2u << 20) + 4096);
}

TEST_CASE("QoS 1 and 2 messages published across a mosquitto restart all reach pel",
          "[mqtt][e2e][edge]") {
  pel::e2e::temp_dir dir;
  // Sessions and queued messages survive the restart (persistence), and the queue of a
  // client that is away is not cut at mosquitto's default of 1,000 messages, which drops
  // the rest silently: the settings an edge broker needs (see examples/edge/mosquitto.conf).
  pel::testing::mosquitto_broker mqtt(dir.path(), "persistence true\npersistence_location " +
                                                      (dir / "") +
                                                      "\nautosave_interval 1\nmax_queued_messages 0\n");
  const std::string out = dir / "out.json";
  const std::string yaml = dir / "qos.yaml";
  pel::e2e::write_file(yaml,
                       "pipeline: {name: qos}\n"
                       "sources:\n"
                       "  readings:\n"
                       "    type: mqtt\n"
                       "    broker: " + mqtt.address() + "\n"
                       "    client_id: pel-qos\n"
                       "    clean_session: false\n"
                       "    topics: [sensors/+/+]\n"
                       "    qos: 2\n"
                       "    topic_fields: sensors/{site}/{device}\n"
                       "    format: json\n"
                       "    schema: {seq: int, n: int, ts: int, temperature: double}\n"
                       "sinks:\n"
                       "  rows: {type: file, input: readings, path: " + out + ", format: json}\n");
  const int http = free_port();
  pel::e2e::process pel({pel::e2e::pel_binary(), "run", yaml, "--http",
                         "127.0.0.1:" + std::to_string(http)});
  wait_subscribed(mqtt, http, "pel_records_in_total", "rows");
  pid_t ctl = pel::testing::spawn_logged({"mosquitto_sub", "-h", "127.0.0.1", "-p",
                                          std::to_string(mqtt.port()), "-q", "2", "-c", "-i",
                                          "witness", "-v", "-t", "sensors/+/+"},
                                         dir / "ctl.txt");
  REQUIRE(pel::e2e::eventually(
      [&] {
        mqtt.publish("sensors/probe/probe", R"({"seq": -1, "n": -1, "ts": 0, "temperature": 0})", 1);
        return pel::e2e::read_file(dir / "ctl.txt").find("probe") != std::string::npos;
      },
      30s));
  const double probes = metric(http, "pel_records_in_total", "rows");
  const std::int64_t total = 3000;
  paced_publisher q1({mqtt.port(), 1, "qos1-publisher", "q1", 20, 500, total});
  paced_publisher q2({mqtt.port(), 2, "qos2-publisher", "q2", 20, 500, total});
  REQUIRE(pel::e2e::eventually([&] { return q1.sent() >= 1000 && q2.sent() >= 1000; }, 30s));
  mqtt.stop_gracefully();
  REQUIRE(mqtt.start());
  const bool all_acked =
      pel::e2e::eventually([&] { return q1.acked() == total && q2.acked() == total; }, 90s);
  INFO("QoS 1: " << q1.sent() << " sent, " << q1.acked() << " acknowledged; QoS 2: " << q2.sent()
                 << " sent, " << q2.acked() << " acknowledged");
  REQUIRE(all_acked);
  // mosquitto_sub with a persistent session of its own is the independent witness of what the
  // broker delivered across its restart (mosquitto 2.0.11 may lose a few messages that were
  // in flight when it stopped, for every subscriber alike).
  auto witnessed = [&] {
    std::set<std::pair<std::string, std::int64_t>> w;
    for (const auto& l : lines_of(pel::e2e::read_file(dir / "ctl.txt"))) {
      const auto space = l.find(' ');
      auto o = pel::e2e::parse_json_object(l.substr(space + 1));
      if (!o || o->integer("n") < 0) continue;
      w.emplace(l.substr(8, l.find('/', 8) - 8), o->integer("seq"));
    }
    return w;
  };
  // Then pel stops, which closes (flushes) the file.
  // Both are done once pel has reconnected and their counts held still for 3 s (the broker
  // re-sends what was in flight within a second of a reconnect).
  std::size_t last_w = 0;
  double last_p = -1;
  auto last_change = std::chrono::steady_clock::now();
  const bool caught_up = pel::e2e::eventually(
      [&] {
        const auto w = witnessed().size();
        const double p = metric(http, "pel_records_in_total", "rows");
        const auto now = std::chrono::steady_clock::now();
        if (w != last_w || p != last_p) {
          last_w = w;
          last_p = p;
          last_change = now;
        }
        // pel says when it is back (its back-off may outlast the witness's).
        pel.wait_until([] { return false; }, 20ms);
        const bool back = pel.err().find("reconnected to") != std::string::npos;
        if (!back) last_change = now;
        return back && now - last_change >= 3s && w > 0 && p > probes;
      },
      90s);
  INFO("mosquitto_sub got " << last_w << ", pel took " << last_p - probes);
  pel.send_signal(SIGTERM);
  const auto ended = pel.wait(60s);
  pel::testing::kill_and_reap(ctl);
  REQUIRE_FALSE(ended.timed_out);
  REQUIRE(caught_up);
  const auto w = witnessed();
  std::set<std::pair<std::string, std::int64_t>> got;
  std::size_t dups1 = 0, dups2 = 0;
  for (const auto& l : lines_of(pel::e2e::read_file(out))) {
    auto o = pel::e2e::parse_json_object(l);
    if (!o || !o->has("site") || o->integer("n") < 0) continue;
    if (!got.emplace(o->str("site"), o->integer("seq")).second) ++(o->str("site") == "q1" ? dups1 : dups2);
  }
  std::size_t missed = 0;
  for (const auto& m : w)
    if (!got.count(m)) ++missed;
  std::printf("mosquitto restart under QoS 1 and 2: %lld + %lld published and acknowledged; "
              "mosquitto_sub got %zu, pel got %zu distinct (%zu QoS 1 duplicates, %zu QoS 2), "
              "pel missed %zu of what mosquitto_sub got\n",
              static_cast<long long>(total), static_cast<long long>(total), w.size(), got.size(),
              dups1, dups2, missed);
  // pel acknowledges a message only once a checkpoint holds it, so what was in flight to it
  // when mosquitto stopped comes again. What it can still miss is the broker's doing:
  // mosquitto 2.0.11 answers the first connect after a restart with "no session present"
  // and loses what is published to the forgotten subscription before the client has
  // subscribed again (seen: 0 to 4 for pel, and up to about 300 for mosquitto_sub, whose
  // acknowledgements on receipt lose what it had in flight).
  CHECK(missed <= 40);
  CHECK(got.size() + 40 >= w.size());
  CHECK(dups2 == 0);  // QoS 2: exactly once from the broker
  CHECK(ended.err.find("reconnected to") != std::string::npos);
}

TEST_CASE("malformed, unexpected-topic and oversized MQTT messages go to the dead-letter file",
          "[mqtt][e2e][edge]") {
  pel::e2e::temp_dir dir;
  pel::testing::mosquitto_broker mqtt(dir.path());
  const std::string out = dir / "out.json";
  const std::string dead = dir / "dead.json";
  const std::string yaml = dir / "bad.yaml";
  pel::e2e::write_file(yaml,
                       "pipeline: {name: bad, dead_letter: dead}\n"
                       "sources:\n"
                       "  readings:\n"
                       "    type: mqtt\n"
                       "    broker: " + mqtt.address() + "\n"
                       "    topics: ['sensors/#']\n"
                       "    qos: 1\n"
                       "    topic_fields: sensors/{site}/{device}\n"
                       "    format: json\n"
                       "    max_message_bytes: 1024\n"
                       "    schema: {seq: int, temperature: double}\n"
                       "sinks:\n"
                       "  rows: {type: file, input: readings, path: " + out + ", format: json}\n"
                       "  dead: {type: file, input: readings.dead_letter, path: " + dead +
                       ", format: json}\n");
  pel::e2e::process pel({pel::e2e::pel_binary(), "run", yaml});
  REQUIRE(pel::e2e::eventually(
      [&] {
        mqtt.publish("sensors/a/probe", R"({"seq": -1, "temperature": 0})", 1);
        return pel::e2e::read_file(out).find("probe") != std::string::npos;
      },
      30s));
  REQUIRE(mqtt.publish("sensors/a/d1", R"({"seq": 1, "temperature": 21.5})"));
  REQUIRE(mqtt.publish("sensors/a/d1", R"({"seq": 2, "temperature": )"));          // cut short
  REQUIRE(mqtt.publish("sensors/a/d1", R"({"seq": 3, "temperature": "ERR"})"));    // not a number
  REQUIRE(mqtt.publish("sensors/stray", R"({"seq": 4, "temperature": 20})"));      // no device level
  REQUIRE(mqtt.publish("sensors/a/d1", "{\"seq\": 5, \"pad\": \"" + std::string(3000, 'x') + "\"}"));
  REQUIRE(mqtt.publish("sensors/a/d1", R"({"seq": 6, "temperature": 22.5})"));
  REQUIRE(pel::e2e::eventually(
      [&] { return lines_of(pel::e2e::read_file(dead)).size() >= 4 &&
                   pel::e2e::read_file(out).find("\"seq\":6") != std::string::npos; },
      30s));
  const auto dl = pel::e2e::parse_json_lines(pel::e2e::read_file(dead));
  REQUIRE(dl.size() == 4);
  CHECK(dl[0].str("reason").find("topic sensors/a/d1, message id") != std::string::npos);
  CHECK(dl[1].str("reason").find("ERR") != std::string::npos);
  CHECK(dl[2].str("reason").find("does not match topic_fields") != std::string::npos);
  CHECK(dl[2].str("reason").find("topic sensors/stray") != std::string::npos);
  CHECK(dl[3].str("reason").find("over max_message_bytes") != std::string::npos);
  for (const auto& d : dl) CHECK(d.str("operator") == "readings");
  // The good ones went through, and nothing else.
  const auto rows = pel::e2e::parse_json_lines(pel::e2e::read_file(out));
  std::vector<std::int64_t> seqs;
  for (const auto& r : rows)
    if (r.integer("seq") >= 0) seqs.push_back(r.integer("seq"));  // not the probes
  CHECK(seqs == std::vector<std::int64_t>{1, 6});
  pel.send_signal(SIGTERM);
  const auto r = pel.wait(60s);
  CHECK(r.err.find("4 dead letters") != std::string::npos);
}
