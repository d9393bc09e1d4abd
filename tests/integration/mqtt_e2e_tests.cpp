// End-to-end: the real `pel` binary between a mosquitto broker started by the test and
// mosquitto_pub / mosquitto_sub. Messages published to templated topics arrive as rows with
// their topic fields, a malformed one as a dead letter with its topic, and the sink's messages
// arrive on the templated topics; after the broker restarts, both sides carry on.
#include "e2e_support.hpp"
#include "mqtt_test_broker.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using pel::e2e::lines_of;
using pel::e2e::read_file;

namespace {

std::size_t count_with(const std::vector<std::string>& lines, const std::string& part) {
  std::size_t n = 0;
  for (const auto& l : lines)
    if (l.find(part) != std::string::npos) ++n;
  return n;
}

}  // namespace

TEST_CASE("pel carries MQTT messages from mosquitto_pub to a file and back to mosquitto_sub",
          "[mqtt][e2e]") {
  pel::e2e::temp_dir dir;
  pel::testing::mosquitto_broker broker(dir.path());
  const std::string out = dir / "out.json";
  const std::string dead = dir / "dead.json";
  const std::string pipeline = dir / "edge.yaml";
  pel::e2e::write_file(pipeline,
                       "pipeline:\n"
                       "  name: mqtt_e2e\n"
                       "sources:\n"
                       "  readings:\n"
                       "    type: mqtt\n"
                       "    broker: " + broker.address() + "\n"
                       "    topics: [sensors/#]\n"
                       "    qos: 1\n"
                       "    topic_fields: sensors/{site}/{device}\n"
                       "    format: json\n"
                       "    schema: {seq: int, temperature: double}\n"
                       "sinks:\n"
                       "  rows:\n"
                       "    type: file\n"
                       "    input: readings\n"
                       "    path: " + out + "\n"
                       "    format: json\n"
                       "  bad:\n"
                       "    type: file\n"
                       "    input: readings.dead_letter\n"
                       "    path: " + dead + "\n"
                       "    format: json\n"
                       "  echo:\n"
                       "    type: mqtt\n"
                       "    input: readings\n"
                       "    broker: " + broker.address() + "\n"
                       "    topic: echo/{site}/{device}/t\n"
                       "    qos: 1\n"
                       "    format: json\n");
  pel::testing::mosquitto_subscriber sub(broker, "echo/#", dir.path() / "sub.txt");
  pel::e2e::process pel({pel::e2e::pel_binary(), "run", pipeline});

  // pel has subscribed (and mosquitto_sub too) once a probe makes the round trip.
  auto probe = [&](const std::string& site) {
    return pel::e2e::eventually(
        [&] {
          broker.publish("sensors/" + site + "/probe", R"({"seq": -1, "temperature": 0})", 0);
          pel.wait_until([] { return false; }, 20ms);
          return count_with(sub.lines(), "echo/" + site + "/probe/t") > 0;
        },
        20000ms);
  };
  REQUIRE(probe("p1"));

  constexpr int n = 20;
  for (int i = 0; i < n; ++i)
    REQUIRE(broker.publish("sensors/site" + std::to_string(i % 2) + "/dev" + std::to_string(i),
                           R"({"seq": )" + std::to_string(i) + R"(, "temperature": 20.5})"));
  REQUIRE(broker.publish("sensors/site0/broken", "{not json"));

  REQUIRE(pel::e2e::eventually(
      [&] {
        pel.wait_until([] { return false; }, 20ms);
        return count_with(sub.lines(), "\"temperature\":20.5") >= n &&
               !read_file(dead).empty();
      },
      20000ms));
  // Every reading made the round trip, on the topic its fields give.
  const auto echoed = sub.lines();
  for (int i = 0; i < n; ++i) {
    const std::string topic =
        "echo/site" + std::to_string(i % 2) + "/dev" + std::to_string(i) + "/t ";
    INFO(topic);
    REQUIRE(count_with(echoed, topic + R"({"seq":)" + std::to_string(i) + ",") == 1);
  }
  // The malformed payload is a dead letter with its topic.
  const auto dl = lines_of(read_file(dead));
  REQUIRE(dl.size() == 1);
  REQUIRE(dl[0].find("sensors/site0/broken") != std::string::npos);
  REQUIRE(dl[0].find("invalid JSON") != std::string::npos);

  // The broker goes away and comes back: the source subscribes again, the sink reconnects.
  broker.stop();
  REQUIRE(broker.start());
  pel::testing::mosquitto_subscriber sub2(broker, "echo/#", dir.path() / "sub2.txt");
  REQUIRE(pel::e2e::eventually(
      [&] {
        broker.publish("sensors/p2/probe", R"({"seq": -2, "temperature": 0})", 0);
        pel.wait_until([] { return false; }, 50ms);
        return count_with(sub2.lines(), "echo/p2/probe/t") > 0;
      },
      30000ms));
  REQUIRE(broker.publish("sensors/site9/after", R"({"seq": 100, "temperature": 1.5})"));
  REQUIRE(pel::e2e::eventually(
      [&] {
        pel.wait_until([] { return false; }, 20ms);
        return count_with(sub2.lines(), R"(echo/site9/after/t {"seq":100,)") == 1;
      },
      20000ms));

  pel.send_signal(SIGTERM);
  const auto result = pel.wait(30000ms);
  INFO(result.err);
  REQUIRE(result.exit_code == 0);
  // The file sink has every reading, with its topic fields.
  const auto rows = lines_of(read_file(out));
  for (int i = 0; i < n; ++i)
    REQUIRE(count_with(rows, R"({"seq":)" + std::to_string(i) + R"(,"temperature":20.5,"site":"site)" +
                                 std::to_string(i % 2) + R"(","device":"dev)" + std::to_string(i) +
                                 "\"}") == 1);
  REQUIRE(count_with(rows, R"("seq":100,"temperature":1.5,"site":"site9","device":"after")") == 1);
  // The lost connection was logged.
  REQUIRE(result.err.find("lost") != std::string::npos);
}
