// End-to-end: the edge example as its README runs it. A real mosquitto and the embedded Kafka
// broker (`pel kafka-broker`) are started on free ports; `pel run examples/edge/edge.yaml`
// subscribes, `pel run examples/edge/replay.yaml` publishes the NAB series as 60 devices, and
// mosquitto_sub records independently what was published. The uplink is down during the
// whole replay: the Kafka broker is stopped first, the aggregates and alerts wait in the
// store-and-forward buffer (its /metrics figures are watched), and the broker is started
// again on the same port. The per-device minute aggregates read back from Kafka with kcat
// must then add up, device by device, to what was published less the bad readings (each
// minute once, or repeated identically: the buffer is at least once); the bad readings must
// be in the dead-letter file with their reasons; and the anomaly detector must have flagged
// something. Then the README's outage: the broker's brokers go down with their data kept
// (SIGUSR2), a second replay waits in the buffer, and after SIGUSR2 brings them back Kafka
// holds both replays' minutes, adding up the same way.
#include "e2e_support.hpp"
#include "json_line.hpp"
#include "mqtt_test_broker.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using pel::e2e::lines_of;
using pel::e2e::read_file;

namespace {

/// What mosquitto_sub saw on one device's topic.
struct published {
  std::string site;
  std::size_t sent = 0;            ///< every message
  std::size_t bad = 0;             ///< "ERR", null or outside -40..200 (what edge.yaml rejects)
  std::set<std::int64_t> minutes;  ///< the minutes (ts / 60000) of its good readings
};

/// Reads mosquitto_sub's `topic payload` lines of sensors/site-S/dev-D topics (the probes on
/// sensors/probe/... are left out).
std::map<std::string, published> published_by_device(const std::vector<std::string>& lines) {
  std::map<std::string, published> out;
  for (const auto& l : lines) {
    const auto space = l.find(' ');
    if (space == std::string::npos || l.rfind("sensors/site-", 0) != 0) continue;
    const std::string topic = l.substr(0, space);
    const auto slash = topic.rfind('/');
    auto msg = pel::e2e::parse_json_object(l.substr(space + 1));
    if (!msg) throw std::runtime_error("mosquitto_sub saw a payload that is not JSON: " + l);
    auto& p = out[topic.substr(slash + 1)];
    p.site = topic.substr(8, slash - 8);
    ++p.sent;
    const auto& t = msg->fields.at("temperature");
    const bool number =
        std::holds_alternative<std::int64_t>(t) || std::holds_alternative<double>(t);
    if (!number || msg->num("temperature") < -40 || msg->num("temperature") > 200)
      ++p.bad;
    else
      p.minutes.insert(msg->integer("ts") / 60000);
  }
  return out;
}

std::string kcat_topic(const std::string& boot, const std::string& topic) {
  return pel::e2e::shell_output("timeout 30 kcat -b " + boot + " -C -t " + topic +
                                " -o beginning -e -q -f '%s\\n' 2>/dev/null");
}

/// The value of a /metrics line `name{...component="C"...} V` of the edge pipeline (-1 when
/// it is not there), read with curl.
double metric(int http_port, const std::string& name, const std::string& component) {
  const auto text = pel::e2e::shell_output(
      "curl -s --max-time 10 http://127.0.0.1:" + std::to_string(http_port) + "/metrics");
  const std::string label = "component=\"" + component + "\"";
  for (const auto& l : lines_of(text))
    if (l.rfind(name + "{", 0) == 0 && l.find(label) != std::string::npos)
      return std::stod(l.substr(l.rfind(' ') + 1));
  return -1;
}

/// Starts `pel kafka-broker` on 127.0.0.1:`port` with the edge's topics.
std::unique_ptr<pel::e2e::process> start_kafka(int port, const std::string& bootstrap_file) {
  std::remove(bootstrap_file.c_str());
  auto kafka = std::make_unique<pel::e2e::process>(std::vector<std::string>{
      pel::e2e::pel_binary(), "kafka-broker", "--port", std::to_string(port), "--topics",
      "edge-aggregates:3,edge-alerts:1", "--bootstrap-file", bootstrap_file});
  const bool up = kafka->wait_until([&] { return !read_file(bootstrap_file).empty(); }, 30000ms);
  if (!up) throw std::runtime_error("pel kafka-broker did not start: " + kafka->err());
  return kafka;
}

/// Checks the aggregates read from Kafka against what mosquitto_sub saw: every device's
/// minutes add up to its good readings, each minute once or repeated identically (at least
/// once). Returns how many were repeated.
std::size_t check_aggregates(const std::vector<pel::e2e::json_object>& aggregates,
                             const std::map<std::string, published>& pub) {
  std::map<std::string, std::size_t> readings;
  std::map<std::pair<std::string, std::int64_t>, std::string> minutes;
  std::size_t repeated = 0, expected_minutes = 0;
  for (const auto& a : aggregates) {
    const auto& device = a.str("device");
    const auto p = pub.find(device);
    if (p == pub.end()) continue;  // the probes
    REQUIRE(a.str("site") == p->second.site);
    // A minute sent twice (in the Kafka client when a flush timed out, and again from the
    // buffer) must be the same aggregate, and counts once.
    const std::pair<std::string, std::int64_t> key{device, a.integer("window_start")};
    const std::string text = a.str("site") + " " + std::to_string(a.integer("readings")) + " " +
                             std::to_string(a.num("avg_temperature"));
    const auto [it, first] = minutes.emplace(key, text);
    if (!first) {
      REQUIRE(it->second == text);
      ++repeated;
      continue;
    }
    readings[device] += static_cast<std::size_t>(a.integer("readings"));
    REQUIRE(a.integer("window_end") - a.integer("window_start") == 60000);
    REQUIRE(a.num("min_temperature") <= a.num("avg_temperature") + 1e-9);
    REQUIRE(a.num("avg_temperature") <= a.num("max_temperature") + 1e-9);
    REQUIRE(a.num("min_temperature") >= -40);
  }
  for (const auto& [device, p] : pub) {
    INFO(device << ": sent " << p.sent << ", bad " << p.bad);
    CHECK(readings[device] == p.sent - p.bad);
    expected_minutes += p.minutes.size();
  }
  CHECK(minutes.size() == expected_minutes);
  return repeated;
}

/// The number of distinct (device, minute) aggregates of `pub`'s devices in `aggregates`.
std::size_t distinct_minutes(const std::vector<pel::e2e::json_object>& aggregates,
                             const std::map<std::string, published>& pub) {
  std::set<std::pair<std::string, std::int64_t>> seen;
  for (const auto& a : aggregates)
    if (pub.count(a.str("device"))) seen.insert({a.str("device"), a.integer("window_start")});
  return seen.size();
}

}  // namespace

TEST_CASE(
    "the edge example: 60 replayed devices reach Kafka as minute aggregates that add up, bad "
    "readings as dead letters",
    "[mqtt][examples][e2e]") {
  pel::e2e::temp_dir dir;
  // As examples/edge/mosquitto.conf: the replay publishes in a burst, so mosquitto may queue
  // more than its default 1000 messages for the edge node.
  pel::testing::mosquitto_broker mqtt(dir.path(), "max_queued_messages 100000\n");

  // The broker listens on a port of our choosing, so that it can come back on the same one.
  const int kafka_port = pel::testing::free_loopback_port();
  auto kafka = start_kafka(kafka_port, dir / "bootstrap");
  const std::string boot = "127.0.0.1:" + std::to_string(kafka_port);

  // The edge pipeline as written, with the test's brokers and files; checkpoints (which sync
  // the dead-letter file) every 500 ms instead of 5 s.
  std::string edge_yaml = read_file(pel::e2e::source_dir() + "/examples/edge/edge.yaml");
  const std::string every_5s = "interval: 5s";
  const auto at = edge_yaml.find(every_5s);
  REQUIRE(at != std::string::npos);
  edge_yaml.replace(at, every_5s.size(), "interval: 500ms");
  pel::e2e::write_file(dir / "edge.yaml", edge_yaml);
  const std::string dead = dir / "dead.jsonl";
  const std::string late = dir / "late.jsonl";
  pel::e2e::process_options env;
  env.cwd = dir.path().string();
  env.env = {"MQTT_BROKER=" + mqtt.address(),
             "KAFKA_BOOTSTRAP=" + boot,
             "EDGE_CLIENT_ID=edge-e2e",
             "EDGE_DEAD_LETTERS=" + dead,
             "EDGE_LATE=" + late,
             "EDGE_STATE_DIR=" + (dir / "state"),
             "EDGE_BUFFER_DIR=" + (dir / "buffer")};
  pel::e2e::process edge({pel::e2e::pel_binary(), "run", "--progress", "never", "--http",
                          "127.0.0.1:0", dir / "edge.yaml"},
                         env);
  std::smatch m;
  static const std::regex http_line(R"(HTTP API and dashboard at http://[^ ]+:([0-9]+)/)");
  REQUIRE(edge.wait_until([&] { return std::regex_search(edge.err(), m, http_line); }, 30000ms));
  const int http = std::stoi(m[1].str());

  // mosquitto_sub and the edge are both subscribed once a probe that is not JSON has reached
  // the subscriber's file and the edge's dead letters.
  pel::testing::mosquitto_subscriber sub(mqtt, "sensors/#", dir.path() / "sub.txt");
  REQUIRE(pel::e2e::eventually(
      [&] {
        mqtt.publish("sensors/probe/p0", "probe", 0);
        edge.wait_until([] { return false; }, 100ms);
        return read_file(dead).find("sensors/probe/p0") != std::string::npos &&
               read_file(dir / "sub.txt").find("sensors/probe/p0") != std::string::npos;
      },
      30000ms));
  REQUIRE_FALSE(edge.exited());

  // The uplink goes away before the replay.
  kafka->send_signal(SIGTERM);
  REQUIRE(kafka->wait(15000ms).exit_code == 0);

  // The replay: 22,695 readings, 50 of them bad on purpose (replay.yaml says which).
  pel::e2e::process_options replay_env;
  replay_env.env = {"MQTT_BROKER=" + mqtt.address()};
  const auto replay = pel::e2e::run_pel({"run", "examples/edge/replay.yaml"}, 180000ms, replay_env);
  INFO(replay.err);
  REQUIRE(replay.exit_code == 0);

  // Every published message reached mosquitto_sub (the independent record).
  std::map<std::string, published> pub;
  REQUIRE(pel::e2e::eventually(
      [&] {
        edge.wait_until([] { return false; }, 50ms);
        std::size_t n = 0;
        pub = published_by_device(sub.lines());
        for (const auto& [device, p] : pub) n += p.sent;
        return n == 22695;
      },
      60000ms));
  std::size_t bad = 0, good = 0, device_minutes = 0;
  for (const auto& [device, p] : pub) {
    bad += p.bad;
    good += p.sent - p.bad;
    device_minutes += p.minutes.size();
  }
  CHECK(pub.size() == 60);
  CHECK(bad == 50);

  // A reading hours later closes every minute of the replay (its own minute stays open).
  REQUIRE(mqtt.publish("sensors/probe/closer", R"({"ts": 1717210000000, "temperature": 80})"));

  // Every device's every minute waits in the buffer, and the forwarder knows Kafka is away.
  double pending = 0;
  const bool buffered = pel::e2e::eventually(
      [&] {
        edge.wait_until([] { return false; }, 200ms);
        pending = metric(http, "pel_buffer_pending_records", "aggregates");
        return pending >= static_cast<double>(device_minutes) || edge.exited();
      },
      60000ms);
  INFO("edge stderr: " << edge.err());
  REQUIRE(buffered);
  REQUIRE_FALSE(edge.exited());
  CHECK(pending == static_cast<double>(device_minutes));
  CHECK(metric(http, "pel_buffer_bytes", "aggregates") > 0);

  // The uplink comes back on the same port (the mock broker starts empty).
  kafka = start_kafka(kafka_port, dir / "bootstrap");

  // The aggregates in Kafka: each device's readings over its minutes add up to what it sent
  // less its bad readings.
  std::vector<pel::e2e::json_object> aggregates;
  const bool complete = pel::e2e::eventually(
      [&] {
        edge.wait_until([] { return false; }, 200ms);
        aggregates = pel::e2e::parse_json_lines(kcat_topic(boot, "edge-aggregates"));
        return distinct_minutes(aggregates, pub) >= device_minutes || edge.exited();
      },
      120000ms);
  REQUIRE(complete);
  REQUIRE_FALSE(edge.exited());
  const std::size_t repeated = check_aggregates(aggregates, pub);
  // The backlog has drained.
  REQUIRE(pel::e2e::eventually(
      [&] {
        edge.wait_until([] { return false; }, 100ms);
        return metric(http, "pel_buffer_pending_records", "aggregates") == 0 &&
               metric(http, "pel_buffer_pending_records", "alerts") == 0;
      },
      30000ms));
  std::printf(
      "edge example: %zu readings published, %zu bad, %zu device-minutes buffered "
      "during the outage and delivered (%zu of them twice)\n",
      good + bad, bad, device_minutes, repeated);

  // The bad readings are dead letters with a reason: "ERR" refused by the source (with its
  // topic), nulls and the -273.15 sentinel by the plausibility check.
  std::vector<pel::e2e::json_object> dead_letters;
  REQUIRE(pel::e2e::eventually(
      [&] {
        edge.wait_until([] { return false; }, 100ms);
        dead_letters.clear();
        for (auto& d : pel::e2e::parse_json_lines(read_file(dead)))
          if (d.str("record").find("probe") == std::string::npos &&
              d.str("position").find("sensors/probe/") == std::string::npos)
            dead_letters.push_back(std::move(d));
        return dead_letters.size() >= bad;
      },
      30000ms));
  std::size_t not_a_number = 0, no_reading = 0, out_of_range = 0;
  for (const auto& d : dead_letters) {
    const auto& reason = d.str("reason");
    if (reason.find("expected double, found string \"ERR\" (topic sensors/site-") !=
        std::string::npos)
      ++not_a_number;
    else if (reason.find("no reading") != std::string::npos)
      ++no_reading;
    else if (reason.find("out of range -273.15") != std::string::npos)
      ++out_of_range;
  }
  CHECK(dead_letters.size() == bad);
  CHECK(not_a_number == 23);
  CHECK(no_reading == 22);
  CHECK(out_of_range == 5);
  CHECK(lines_of(read_file(late)).empty());

  // The machine's failures in the series are flagged.
  std::vector<pel::e2e::json_object> alerts;
  REQUIRE(pel::e2e::eventually(
      [&] {
        alerts = pel::e2e::parse_json_lines(kcat_topic(boot, "edge-alerts"));
        return !alerts.empty();
      },
      30000ms));
  std::set<std::string> reasons;
  for (const auto& a : alerts) {
    REQUIRE(pub.count(a.str("device")));
    reasons.insert(a.str("reason"));
  }
  CHECK(reasons.count("zscore") == 1);
  CHECK(reasons.count("above") == 1);

  // The README's outage: the brokers go down with their data kept (SIGUSR2), a second replay
  // four hours on (after the first closer) waits in the buffer, and follows what was
  // delivered before once they are back (SIGUSR2 again).
  auto kafka_says = [&](const std::string& what) {
    return kafka->wait_until(
        [&] {
          return kafka->out().find(what) != std::string::npos ||
                 kafka->err().find(what) != std::string::npos;
        },
        10000ms);
  };
  kafka->send_signal(SIGUSR2);
  REQUIRE(kafka_says("brokers down"));
  replay_env.env.push_back("REPLAY_START_MS=1717214400000");
  const auto replay2 =
      pel::e2e::run_pel({"run", "examples/edge/replay.yaml"}, 180000ms, replay_env);
  INFO(replay2.err);
  REQUIRE(replay2.exit_code == 0);
  REQUIRE(pel::e2e::eventually(
      [&] {
        edge.wait_until([] { return false; }, 50ms);
        std::size_t n = 0;
        pub = published_by_device(sub.lines());
        for (const auto& [device, p] : pub) n += p.sent;
        return n == 2 * 22695;
      },
      60000ms));
  REQUIRE(mqtt.publish("sensors/probe/closer", R"({"ts": 1717224400000, "temperature": 80})"));
  REQUIRE(pel::e2e::eventually(
      [&] {
        edge.wait_until([] { return false; }, 200ms);
        return metric(http, "pel_buffer_pending_records", "aggregates") >=
                   static_cast<double>(device_minutes) ||
               edge.exited();
      },
      60000ms));
  REQUIRE_FALSE(edge.exited());
  kafka->send_signal(SIGUSR2);
  REQUIRE(kafka_says("brokers up"));
  REQUIRE(pel::e2e::eventually(
      [&] {
        edge.wait_until([] { return false; }, 200ms);
        aggregates = pel::e2e::parse_json_lines(kcat_topic(boot, "edge-aggregates"));
        return distinct_minutes(aggregates, pub) >= 2 * device_minutes || edge.exited();
      },
      120000ms));
  REQUIRE_FALSE(edge.exited());
  const std::size_t repeated2 = check_aggregates(aggregates, pub);
  std::printf(
      "edge example, second outage (broker down, data kept): %zu device-minutes in "
      "Kafka, %zu of them twice\n",
      distinct_minutes(aggregates, pub), repeated2);

  edge.send_signal(SIGTERM);
  const auto r = edge.wait(30000ms);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  kafka->send_signal(SIGTERM);
  CHECK(kafka->wait(15000ms).exit_code == 0);
}
