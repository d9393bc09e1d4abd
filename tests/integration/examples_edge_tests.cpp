// End-to-end: the edge example as its README runs it. A real mosquitto and the embedded Kafka
// broker (`pel kafka-broker`) are started on free ports; `pel run examples/edge/edge.yaml`
// subscribes, `pel run examples/edge/replay.yaml` publishes the NAB series as 60 devices, and
// mosquitto_sub records independently what was published. The per-device minute aggregates
// read back from Kafka with kcat must add up, device by device, to what was published less
// the bad readings; the bad readings must be in the dead-letter file with their reasons; and
// the anomaly detector must have flagged something.
#include "e2e_support.hpp"
#include "json_line.hpp"
#include "mqtt_test_broker.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <fstream>
#include <map>
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
  std::size_t sent = 0;  ///< every message
  std::size_t bad = 0;   ///< "ERR", null or outside -40..200 (what edge.yaml rejects)
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
    const bool number = std::holds_alternative<std::int64_t>(t) || std::holds_alternative<double>(t);
    if (!number || msg->num("temperature") < -40 || msg->num("temperature") > 200) ++p.bad;
  }
  return out;
}

std::string kcat_topic(const std::string& boot, const std::string& topic) {
  return pel::e2e::shell_output("timeout 30 kcat -b " + boot + " -C -t " + topic +
                                " -o beginning -e -q -f '%s\\n' 2>/dev/null");
}

}  // namespace

TEST_CASE("the edge example: 60 replayed devices reach Kafka as minute aggregates that add up, bad readings as dead letters",
          "[mqtt][examples][e2e]") {
  pel::e2e::temp_dir dir;
  // As examples/edge/mosquitto.conf: the replay publishes in a burst, so mosquitto may queue
  // more than its default 1000 messages for the edge node.
  pel::testing::mosquitto_broker mqtt(dir.path(), "max_queued_messages 100000\n");

  pel::e2e::process kafka({pel::e2e::pel_binary(), "kafka-broker", "--port", "0", "--topics",
                           "edge-aggregates:3,edge-alerts:1", "--bootstrap-file", dir / "bootstrap"});
  std::string boot;
  REQUIRE(kafka.wait_until(
      [&] {
        std::ifstream f(dir / "bootstrap");
        return static_cast<bool>(std::getline(f, boot)) && !boot.empty();
      },
      30000ms));

  // The edge pipeline as written, with the test's brokers and files; checkpoints (which sync
  // the dead-letter file) every 500 ms instead of 10 s.
  std::string edge_yaml = read_file(pel::e2e::source_dir() + "/examples/edge/edge.yaml");
  const std::string every_10s = "interval: 10s";
  const auto at = edge_yaml.find(every_10s);
  REQUIRE(at != std::string::npos);
  edge_yaml.replace(at, every_10s.size(), "interval: 500ms");
  pel::e2e::write_file(dir / "edge.yaml", edge_yaml);
  const std::string dead = dir / "dead.jsonl";
  const std::string late = dir / "late.jsonl";
  pel::e2e::process_options env;
  env.cwd = dir.path().string();
  env.env = {"MQTT_BROKER=" + mqtt.address(),   "KAFKA_BOOTSTRAP=" + boot,
             "EDGE_CLIENT_ID=edge-e2e",         "EDGE_DEAD_LETTERS=" + dead,
             "EDGE_LATE=" + late,               "EDGE_STATE_DIR=" + (dir / "state"),
             "EDGE_BUFFER_DIR=" + (dir / "buffer")};
  pel::e2e::process edge({pel::e2e::pel_binary(), "run", dir / "edge.yaml"}, env);

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

  // The replay: 22,695 readings, 50 of them bad on purpose (replay.yaml says which).
  pel::e2e::process_options replay_env;
  replay_env.env = {"MQTT_BROKER=" + mqtt.address()};
  const auto replay =
      pel::e2e::run_pel({"run", "examples/edge/replay.yaml"}, 180000ms, replay_env);
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
  std::size_t bad = 0, good = 0;
  for (const auto& [device, p] : pub) {
    bad += p.bad;
    good += p.sent - p.bad;
  }
  CHECK(pub.size() == 60);
  CHECK(bad == 50);

  // A reading hours later closes every minute of the replay (its own minute stays open).
  REQUIRE(mqtt.publish("sensors/probe/closer", R"({"ts": 1717210000000, "temperature": 80})"));

  // The aggregates in Kafka: each device's readings over its minutes add up to what it sent
  // less its bad readings.
  std::vector<pel::e2e::json_object> aggregates;
  const bool complete = pel::e2e::eventually(
      [&] {
        edge.wait_until([] { return false; }, 200ms);
        aggregates = pel::e2e::parse_json_lines(kcat_topic(boot, "edge-aggregates"));
        std::size_t n = 0;
        for (const auto& a : aggregates)
          if (pub.count(a.str("device"))) n += static_cast<std::size_t>(a.integer("readings"));
        return n >= good || edge.exited();
      },
      120000ms);
  INFO("edge stderr: " << edge.err());
  REQUIRE(complete);
  REQUIRE_FALSE(edge.exited());
  std::map<std::string, std::size_t> readings;
  std::set<std::pair<std::string, std::int64_t>> minutes;
  for (const auto& a : aggregates) {
    const auto& device = a.str("device");
    if (!pub.count(device)) continue;
    readings[device] += static_cast<std::size_t>(a.integer("readings"));
    REQUIRE(a.str("site") == pub[device].site);
    REQUIRE(minutes.insert({device, a.integer("window_start")}).second);  // each minute once
    REQUIRE(a.integer("window_end") - a.integer("window_start") == 60000);
    REQUIRE(a.num("min_temperature") <= a.num("avg_temperature") + 1e-9);
    REQUIRE(a.num("avg_temperature") <= a.num("max_temperature") + 1e-9);
    REQUIRE(a.num("min_temperature") >= -40);
  }
  for (const auto& [device, p] : pub) {
    INFO(device << ": sent " << p.sent << ", bad " << p.bad);
    CHECK(readings[device] == p.sent - p.bad);
  }
  // 38 minutes of event time: the busiest devices report in every one of them.
  CHECK(minutes.size() > 1000);

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

  edge.send_signal(SIGTERM);
  const auto r = edge.wait(30000ms);
  INFO(r.err);
  CHECK(r.exit_code == 0);
  kafka.send_signal(SIGTERM);
  CHECK(kafka.wait(15000ms).exit_code == 0);
}
