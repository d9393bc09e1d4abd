// The MQTT source and sink driven without the runtime against a real mosquitto broker, with
// mosquitto_pub and mosquitto_sub on the other side.
#include "connector_test_util.hpp"
#include "mqtt_client.hpp"
#include "mqtt_common.hpp"
#include "mqtt_sink.hpp"
#include "mqtt_source.hpp"
#include "mqtt_test_broker.hpp"

#include "pel/core/batch.hpp"
#include "pel/core/state_io.hpp"
#include "pel/spec/config.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <vector>

using namespace pel;
using pel::testing::list;
using pel::testing::map;
using pel::testing::scalar;
using pel::testing::test_config;
using topic_template = connectors::mqtt_detail::topic_template;
using namespace std::chrono_literals;

namespace {

core::operator_context ctx(const std::string& name) {
  core::operator_context c;
  c.name = name;
  return c;
}

std::vector<std::pair<std::string, spec::node_ptr>> source_entries(const std::string& broker) {
  return {{"broker", scalar(broker)},
          {"topics", list({scalar("sensors/#")})},
          {"qos", scalar("1")},
          {"topic_fields", scalar("sensors/{site}/{device}")},
          {"format", scalar("json")},
          {"schema", map({{"temperature", scalar("double")}})}};
}

/// Polls `src` into `out` until `rows` main rows and `dead` dead letters are there.
bool read(connectors::mqtt_source& src, core::outputs& out, std::size_t rows, std::size_t dead) {
  return pel::testing::poll_until(
      [&] {
        src.poll(out, 256);
        return out.main.size() >= rows && out.dead_letter.size() >= dead;
      },
      10s, 5ms);
}

std::string str(const core::value& v) { return std::get<std::string>(v); }

/// Publishes `payload` to `topic` every 50 ms and polls `src` into `out` until one more main
/// row is there than before: a live subscription (what was published before it is lost).
bool arrives(connectors::mqtt_source& src, const pel::testing::mosquitto_broker& broker,
             core::outputs& out, const std::string& topic, const std::string& payload,
             std::chrono::milliseconds timeout = 10s) {
  const std::size_t before = out.main.size();
  return pel::testing::poll_until(
      [&] {
        broker.publish(topic, payload);
        src.poll(out, 256);
        return out.main.size() > before;
      },
      timeout, 50ms);
}

}  // namespace

TEST_CASE("mqtt topic templates turn levels into fields", "[mqtt]") {
  topic_template t;
  std::string error;
  REQUIRE(topic_template::parse("sensors/{site}/{device}", t, error));
  REQUIRE(t.fields() == std::vector<std::string>{"site", "device"});
  std::vector<std::string_view> v;
  REQUIRE(t.match("sensors/berlin/d7", v));
  REQUIRE(v == std::vector<std::string_view>{"berlin", "d7"});
  REQUIRE_FALSE(t.match("sensors/berlin", v));
  REQUIRE_FALSE(t.match("sensors/berlin/d7/x", v));
  REQUIRE_FALSE(t.match("other/berlin/d7", v));
  REQUIRE(t.match("sensors//d7", v));  // an empty level is a level
  REQUIRE(v == std::vector<std::string_view>{"", "d7"});

  REQUIRE(topic_template::parse("a/{x}/#", t, error));
  REQUIRE(t.match("a/1/b/c", v));
  REQUIRE(v == std::vector<std::string_view>{"1"});
  REQUIRE(t.match("a/1", v));  // `#` also matches no more levels, as in MQTT

  REQUIRE_FALSE(topic_template::parse("a/x{y}", t, error));
  REQUIRE_FALSE(topic_template::parse("a/#/b", t, error));
  REQUIRE_FALSE(topic_template::parse("a/{}", t, error));
  REQUIRE_FALSE(topic_template::parse("a/+", t, error));
}

TEST_CASE("mqtt source and sink settings are checked when the pipeline is built", "[mqtt]") {
  auto bad_source = [](std::vector<std::pair<std::string, spec::node_ptr>> e) {
    test_config c(map(std::move(e)), connectors::mqtt_source_params());
    REQUIRE_THROWS_AS(connectors::mqtt_source(c.cfg), spec::config_error);
  };
  auto with = [](std::string key, spec::node_ptr v) {
    auto e = source_entries("127.0.0.1:1883");
    bool replaced = false;
    for (auto& [k, n] : e)
      if (k == key) n = v, replaced = true;
    if (!replaced) e.emplace_back(key, v);
    return e;
  };
  bad_source(with("broker", scalar("127.0.0.1:99999")));
  bad_source(with("broker", scalar(":1883")));
  bad_source(with("topics", list({scalar("a/#/b")})));
  bad_source(with("clean_session", scalar("false")));  // no client_id
  bad_source(with("topic_fields", scalar("sensors/{temperature}")));  // field exists
  bad_source(with("topic_fields", scalar("sensors/x{y}")));
  {
    auto e = source_entries("127.0.0.1:1883");
    e.pop_back();  // json without a schema
    bad_source(e);
  }
  test_config sink(map({{"broker", scalar("127.0.0.1:1883")}, {"topic", scalar("a/#")}}),
                   connectors::mqtt_sink_params());
  REQUIRE_THROWS_AS(connectors::mqtt_sink(sink.cfg), spec::config_error);
}

TEST_CASE("mqtt source receives published messages with topic fields and dead-letters bad ones",
          "[mqtt]") {
  pel::testing::temp_dir dir;
  pel::testing::mosquitto_broker broker(dir.path());
  test_config c(map(source_entries(broker.address())), connectors::mqtt_source_params());
  connectors::mqtt_source src(c.cfg);
  REQUIRE(src.output_schema()->names() == "temperature, site, device");
  src.open(ctx("readings"));
  REQUIRE(pel::testing::poll_until([&] { return src.connects() == 1; }, 10s, 5ms));

  core::outputs out;
  out.main.width = static_cast<std::uint32_t>(src.output_schema()->size());
  REQUIRE(broker.publish("sensors/berlin/d1", R"({"temperature": 21.5})"));
  REQUIRE(broker.publish("sensors/paris/d2", R"({"temperature": -3})", 2));
  REQUIRE(broker.publish("sensors/paris/d3", "not json"));
  REQUIRE(broker.publish("sensors/nowhere", R"({"temperature": 1})", 0));
  REQUIRE(read(src, out, 2, 2));

  std::set<std::string> got;
  for (std::size_t i = 0; i < out.main.size(); ++i) {
    const auto* r = out.main.row(i);
    got.insert(str(r[1]) + "/" + str(r[2]) + "=" + std::to_string(std::get<double>(r[0])));
  }
  REQUIRE(got == std::set<std::string>{"berlin/d1=21.500000", "paris/d2=-3.000000"});

  // Dead letters say why, with the topic and the message id (QoS 1: a packet id; QoS 0: 0).
  REQUIRE(out.dead_letter.size() == 2);
  std::set<std::string> positions;
  for (std::size_t i = 0; i < out.dead_letter.size(); ++i) {
    const auto* d = out.dead_letter.row(i);
    positions.insert(str(d[3]).substr(0, str(d[3]).find('@')));
    REQUIRE(str(d[0]).find("topic " + str(d[3]).substr(0, str(d[3]).find('@'))) !=
            std::string::npos);
    REQUIRE(str(d[1]) == "readings");
    if (str(d[4]) == "not json") {
      REQUIRE(str(d[0]).find("invalid JSON") != std::string::npos);
      REQUIRE(str(d[3]) != "sensors/paris/d3@0");
    } else {
      REQUIRE(str(d[0]).find("does not match topic_fields") != std::string::npos);
      REQUIRE(str(d[3]) == "sensors/nowhere@0");
    }
  }
  REQUIRE(positions == std::set<std::string>{"sensors/paris/d3", "sensors/nowhere"});
  REQUIRE(src.received() == 4);
  src.close();
}

TEST_CASE("mqtt source dead-letters messages over max_message_bytes", "[mqtt]") {
  pel::testing::temp_dir dir;
  pel::testing::mosquitto_broker broker(dir.path());
  auto e = source_entries(broker.address());
  e.emplace_back("max_message_bytes", scalar("64"));
  test_config c(map(std::move(e)), connectors::mqtt_source_params());
  connectors::mqtt_source src(c.cfg);
  src.open(ctx("readings"));
  REQUIRE(pel::testing::poll_until([&] { return src.connects() == 1; }, 10s, 5ms));
  core::outputs out;
  out.main.width = static_cast<std::uint32_t>(src.output_schema()->size());
  const std::string big = R"({"temperature": 1, "pad": ")" + std::string(100, 'x') + "\"}";
  REQUIRE(broker.publish("sensors/a/b", big));
  REQUIRE(read(src, out, 0, 1));
  REQUIRE(out.main.empty());
  REQUIRE(str(out.dead_letter.row(0)[0]).find("over max_message_bytes") != std::string::npos);
  REQUIRE(str(out.dead_letter.row(0)[4]) == big);
}

TEST_CASE("mqtt source reconnects and subscribes again after the broker restarts", "[mqtt]") {
  pel::testing::temp_dir dir;
  pel::testing::mosquitto_broker broker(dir.path());
  test_config c(map(source_entries(broker.address())), connectors::mqtt_source_params());
  connectors::mqtt_source src(c.cfg);
  src.open(ctx("readings"));
  REQUIRE(pel::testing::poll_until([&] { return src.connects() == 1; }, 10s, 5ms));
  core::outputs out;
  out.main.width = static_cast<std::uint32_t>(src.output_schema()->size());
  REQUIRE(broker.publish("sensors/a/before", R"({"temperature": 1})"));
  REQUIRE(read(src, out, 1, 0));

  broker.stop();
  REQUIRE(broker.start());
  // The back-off starts at 1 s; the new broker has no subscriptions, so a message arrives
  // only when the source has subscribed again.
  REQUIRE(pel::testing::poll_until([&] { return src.connects() == 2; }, 15s, 10ms));
  REQUIRE(arrives(src, broker, out, "sensors/a/after", R"({"temperature": 2})"));
  REQUIRE(str(out.main.row(1)[2]) == "after");
  std::vector<core::source_notice> notices;
  src.take_notices(notices);
  REQUIRE(std::any_of(notices.begin(), notices.end(), [](const core::source_notice& n) {
    return n.text.find("lost") != std::string::npos;
  }));
}

TEST_CASE("mqtt sink publishes each row to its templated topic", "[mqtt]") {
  pel::testing::temp_dir dir;
  pel::testing::mosquitto_broker broker(dir.path());
  pel::testing::mosquitto_subscriber sub(broker, "sensors/#", dir.path() / "sub.txt");
  // mosquitto_sub has subscribed once a probe message reaches it.
  REQUIRE(pel::testing::poll_until(
      [&] {
        broker.publish("sensors/probe", "p", 0);
        return !sub.lines().empty();
      },
      10s, 50ms));

  test_config c(map({{"broker", scalar(broker.address())},
                     {"topic", scalar("sensors/{device}/avg")},
                     {"qos", scalar("1")},
                     {"format", scalar("json")}}),
                connectors::mqtt_sink_params());
  connectors::mqtt_sink snk(c.cfg);
  auto schema = std::make_shared<core::schema>();
  schema->add("device", core::value_type::string);
  schema->add("avg", core::value_type::number);
  snk.open(ctx("out"), schema);
  core::batch b(2);
  for (int i = 0; i < 100; ++i) {
    auto* r = b.append(0);
    r[0] = std::string(i == 99 ? "a/b+c" : "d" + std::to_string(i % 3));
    r[1] = i * 0.5;
  }
  snk.write(b);
  snk.flush();
  REQUIRE(snk.delivered() == 100);
  REQUIRE(snk.topic_for(b.row(99)) == "sensors/a_b_c/avg");

  std::vector<std::string> got;
  REQUIRE(pel::testing::poll_until(
      [&] {
        got.clear();
        for (const auto& l : sub.lines())
          if (l.rfind("sensors/probe", 0) != 0) got.push_back(l);
        return got.size() >= 100;
      },
      10s, 20ms));
  REQUIRE(got.size() == 100);
  REQUIRE(got[0] == R"(sensors/d0/avg {"device":"d0","avg":0})");
  REQUIRE(got[4] == R"(sensors/d1/avg {"device":"d1","avg":2})");
  REQUIRE(got[99] == R"(sensors/a_b_c/avg {"device":"a/b+c","avg":49.5})");
  snk.close();
}

TEST_CASE("mqtt source with clean_session false gets the QoS 1 and 2 messages sent while away",
          "[mqtt]") {
  pel::testing::temp_dir dir;
  pel::testing::mosquitto_broker broker(dir.path());
  auto e = source_entries(broker.address());
  e.emplace_back("client_id", scalar("pel-session-test"));
  e.emplace_back("clean_session", scalar("false"));
  test_config c(map(std::move(e)), connectors::mqtt_source_params());
  {
    connectors::mqtt_source first(c.cfg);
    first.open(ctx("readings"));
    REQUIRE(pel::testing::poll_until([&] { return first.connects() == 1; }, 10s, 5ms));
    core::outputs out;
    out.main.width = static_cast<std::uint32_t>(first.output_schema()->size());
    // Subscribed once a message gets through.
    REQUIRE(arrives(first, broker, out, "sensors/a/probe", R"({"temperature": 0})"));
    first.close();
  }
  // Away: the broker keeps these for the session.
  for (int i = 0; i < 10; ++i)
    REQUIRE(broker.publish("sensors/away/d" + std::to_string(i),
                           R"({"temperature": )" + std::to_string(i) + "}", 1 + i % 2));
  connectors::mqtt_source second(c.cfg);
  second.open(ctx("readings"));
  core::outputs out;
  out.main.width = static_cast<std::uint32_t>(second.output_schema()->size());
  REQUIRE(read(second, out, 10, 0));
  std::set<std::string> devices;
  for (std::size_t i = 0; i < out.main.size(); ++i)
    if (str(out.main.row(i)[1]) == "away") devices.insert(str(out.main.row(i)[2]));
  REQUIRE(devices.size() == 10);

  // With a clean session the same messages would be gone: the control.
  auto clean = source_entries(broker.address());
  clean.emplace_back("client_id", scalar("pel-session-clean"));
  test_config cc(map(std::move(clean)), connectors::mqtt_source_params());
  {
    connectors::mqtt_source s(cc.cfg);
    s.open(ctx("readings"));
    REQUIRE(pel::testing::poll_until([&] { return s.connects() == 1; }, 10s, 5ms));
    s.close();
  }
  REQUIRE(broker.publish("sensors/away/lost", R"({"temperature": 1})"));
  connectors::mqtt_source again(cc.cfg);
  again.open(ctx("readings"));
  REQUIRE(pel::testing::poll_until([&] { return again.connects() == 1; }, 10s, 5ms));
  core::outputs none;
  none.main.width = static_cast<std::uint32_t>(again.output_schema()->size());
  REQUIRE(arrives(again, broker, none, "sensors/away/marker", R"({"temperature": 2})"));
  for (std::size_t i = 0; i < none.main.size(); ++i)
    REQUIRE(str(none.main.row(i)[2]) != "lost");
}

TEST_CASE("mqtt source restored from a checkpoint says when the broker has lost its session",
          "[mqtt]") {
  for (const bool broker_restarts : {true, false}) {
    CAPTURE(broker_restarts);
    pel::testing::temp_dir dir;
    pel::testing::mosquitto_broker broker(dir.path());  // no persistence: sessions die with it
    auto e = source_entries(broker.address());
    e.emplace_back("client_id", scalar("pel-restore-test"));
    e.emplace_back("clean_session", scalar("false"));
    test_config c(map(std::move(e)), connectors::mqtt_source_params());
    std::string snap;
    {
      connectors::mqtt_source first(c.cfg);
      first.open(ctx("readings"));
      core::outputs out;
      out.main.width = static_cast<std::uint32_t>(first.output_schema()->size());
      REQUIRE(arrives(first, broker, out, "sensors/a/probe", R"({"temperature": 0})"));
      core::state_writer w;
      first.snapshot(w);
      snap = w.take();
      first.close();
    }
    if (broker_restarts) {
      broker.stop();
      REQUIRE(broker.start());
    }
    connectors::mqtt_source second(c.cfg);
    second.open(ctx("readings"));
    core::state_reader r(snap);
    second.restore(r);
    REQUIRE(pel::testing::poll_until([&] { return second.connects() == 1; }, 15s, 10ms));
    // The warning goes out from the network thread at the CONNACK or from `restore`,
    // whichever comes second: wait for it a little, then check what was said.
    std::vector<core::source_notice> notices;
    const auto lost = [&] {
      second.take_notices(notices);
      return std::any_of(notices.begin(), notices.end(), [](const core::source_notice& n) {
        return n.text.find("kept no session for client id 'pel-restore-test'") !=
               std::string::npos;
      });
    };
    CHECK(pel::testing::poll_until(lost, broker_restarts ? 5s : 500ms, 10ms) == broker_restarts);
    second.close();
  }
}

TEST_CASE("mqtt source connects with TLS to a broker whose certificate its CA signed", "[mqtt]") {
  pel::testing::temp_dir dir;
  const auto d = dir.path().string();
  // A throwaway CA and a server certificate for localhost / 127.0.0.1, made by openssl.
  pel::testing::write_file(d + "/san.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  const std::string q = " >/dev/null 2>&1";
  REQUIRE(std::system(("cd " + d +
                       " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt"
                       " -days 1 -subj /CN=pel-test-ca" + q +
                       " && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr"
                       " -subj /CN=localhost" + q +
                       " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key"
                       " -CAcreateserial -out server.crt -days 1 -extfile san.ext" + q +
                       // mosquitto started as root reads them as the user `mosquitto`.
                       " && chmod a+rx . && chmod a+r ca.crt server.crt server.key")
                          .c_str()) == 0);
  pel::testing::mosquitto_broker broker(
      dir.path(),
      "cafile " + d + "/ca.crt\ncertfile " + d + "/server.crt\nkeyfile " + d + "/server.key\n",
      {"--cafile", d + "/ca.crt"});

  auto e = source_entries("localhost:" + std::to_string(broker.port()));
  e.emplace_back("tls", map({{"ca_file", scalar(d + "/ca.crt")}}));
  test_config c(map(std::move(e)), connectors::mqtt_source_params());
  connectors::mqtt_source src(c.cfg);
  src.open(ctx("readings"));
  // Without TLS the same broker does not get as far as a connection.
  test_config plain(map(source_entries(broker.address())), connectors::mqtt_source_params());
  connectors::mqtt_source no_tls(plain.cfg);
  no_tls.open(ctx("plain"));

  core::outputs out;
  out.main.width = static_cast<std::uint32_t>(src.output_schema()->size());
  REQUIRE(arrives(src, broker, out, "sensors/tls/d1", R"({"temperature": 5})", 15s));
  REQUIRE(str(out.main.row(0)[1]) == "tls");
  REQUIRE(src.connects() == 1);
  REQUIRE(no_tls.connects() == 0);
  no_tls.close();

  // A CA file that is not there is a config error, found when the pipeline is built.
  auto bad = source_entries(broker.address());
  bad.emplace_back("tls", map({{"ca_file", scalar(d + "/missing.crt")}}));
  test_config b(map(std::move(bad)), connectors::mqtt_source_params());
  REQUIRE_THROWS_AS(connectors::mqtt_source(b.cfg), spec::config_error);
}

namespace {

using subscriber = connectors::mqtt_detail::subscriber;

/// The notices a subscriber gave, kept for the test to read.
struct notices {
  std::mutex mu;
  std::vector<std::string> lines;
  subscriber::notice_fn fn() {
    return [this](subscriber::level, std::string text) {
      std::lock_guard lock(mu);
      lines.push_back(std::move(text));
    };
  }
  bool any(const std::string& part) {
    std::lock_guard lock(mu);
    return std::any_of(lines.begin(), lines.end(),
                       [&](const auto& l) { return l.find(part) != std::string::npos; });
  }
};

subscriber::settings subscriber_settings(const pel::testing::mosquitto_broker& broker,
                                         const std::string& client_id) {
  subscriber::settings s;
  s.conn.broker.host = "127.0.0.1";
  s.conn.broker.port = broker.port();
  s.conn.client_id = client_id;
  s.clean_session = false;
  s.topics = {"sensors/#"};
  s.qos = 1;
  s.component = "readings";
  return s;
}

/// Publishes `n` QoS 1 messages on `topic` with one mosquitto_pub (one line each).
void publish_many(const pel::testing::mosquitto_broker& broker, const std::filesystem::path& dir,
                  const std::string& topic, int n) {
  const auto file = (dir / "lines.txt").string();
  {
    std::ofstream f(file);
    for (int i = 0; i < n; ++i) f << R"({"temperature": )" << i << "}\n";
  }
  REQUIRE(std::system(("mosquitto_pub -h 127.0.0.1 -p " + std::to_string(broker.port()) +
                       " -q 1 -t " + topic + " -l < " + file)
                          .c_str()) == 0);
}

/// Subscribes and waits until the broker sees the subscription (a probe message arrives),
/// then until the last probe sent has arrived too: every probe after the first one to arrive
/// was published to a live subscription, and one still on its way would otherwise turn up
/// in the middle of what the test counts next.
void subscribed(subscriber& sub, const pel::testing::mosquitto_broker& broker,
                std::vector<subscriber::message>& got) {
  int sent = 0;
  REQUIRE(pel::testing::poll_until(
      [&] {
        broker.publish("sensors/probe/p", "{\"probe\": " + std::to_string(++sent) + "}");
        sub.take(got, 1000);
        return !got.empty();
      },
      10s, 50ms));
  const std::string last = "{\"probe\": " + std::to_string(sent) + "}";
  REQUIRE(pel::testing::poll_until(
      [&] {
        sub.take(got, 1000);
        return !got.empty() && got.back().payload == last;
      },
      10s, 5ms));
}

}  // namespace

TEST_CASE("mqtt subscriber pauses at max_unacknowledged messages and goes on once they are acknowledged",
          "[mqtt]") {
  pel::testing::temp_dir dir;
  pel::testing::mosquitto_broker broker(dir.path());
  notices said;
  auto s = subscriber_settings(broker, "pel-cap-test");
  s.max_unacknowledged = 10;
  subscriber sub(s, said.fn());
  sub.start();
  std::vector<subscriber::message> got;
  subscribed(sub, broker, got);
  sub.acknowledge(got.back().seq);
  REQUIRE(pel::testing::poll_until([&] { return sub.unacknowledged() == 0; }, 10s, 5ms));
  got.clear();

  publish_many(broker, dir.path(), "sensors/a/d1", 25);
  // Ten arrive, then the client stops reading and says why.
  REQUIRE(pel::testing::poll_until([&] { return said.any("packet ids"); }, 10s, 5ms));
  sub.take(got, 1000);
  CHECK(got.size() == 10);
  CHECK(sub.unacknowledged() == 10);
  // Acknowledging them lets the next ten in, then the last five.
  sub.acknowledge(got.back().seq);
  REQUIRE(pel::testing::poll_until(
      [&] {
        sub.take(got, 1000);
        return got.size() >= 20;
      },
      10s, 5ms));
  CHECK(got.size() == 20);
  sub.acknowledge(got.back().seq);
  REQUIRE(pel::testing::poll_until(
      [&] {
        sub.take(got, 1000);
        return got.size() >= 25;
      },
      10s, 5ms));
  for (std::size_t i = 0; i < got.size(); ++i)
    CHECK(got[i].payload == R"({"temperature": )" + std::to_string(i) + "}");
  sub.stop();
  // The pauses were the client's own: not taken for the broker's in-flight window.
  CHECK_FALSE(said.any("in-flight window"));
}

TEST_CASE("mqtt subscriber says when the broker lost its persistent session across a restart",
          "[mqtt]") {
  for (const bool clean : {false, true}) {
    CAPTURE(clean);
    pel::testing::temp_dir dir;
    pel::testing::mosquitto_broker broker(dir.path());  // no persistence: sessions die with it
    notices said;
    auto s = subscriber_settings(broker, "pel-lost-session-test");
    s.clean_session = clean;
    subscriber sub(s, said.fn());
    sub.start();
    std::vector<subscriber::message> got;
    subscribed(sub, broker, got);
    sub.acknowledge(got.back().seq);
    broker.stop();
    REQUIRE(broker.start());
    // The back-off starts at 1 s; the reconnect is said once subscribed again.
    REQUIRE(pel::testing::poll_until([&] { return said.any("reconnected to"); }, 15s, 10ms));
    // Asked for a session and not given one: said, as a possible loss.
    CHECK(said.any("kept no session for client id 'pel-lost-session-test'") == !clean);
    // A clean session never had one to lose: the reconnect says what that means.
    CHECK(said.any("a clean session: what was published while disconnected was not kept") ==
          clean);
    sub.stop();
  }
}

TEST_CASE("mqtt subscriber warns when the broker's in-flight window holds back deferred acknowledgements",
          "[mqtt]") {
  for (const bool small : {true, false}) {
    pel::testing::temp_dir dir;
    // The broker helper lifts the window; a small one comes after it and wins. mosquitto
    // 2.0.11 then sends up to its window again for each acknowledgement: the batches grow
    // tenfold per checkpoint (10, 100, 1000, the rest), three checkpoints held back.
    pel::testing::mosquitto_broker broker(
        dir.path(), std::string(small ? "max_inflight_messages 10\n" : "") + "max_queued_messages 0\n");
    notices said;
    subscriber sub(subscriber_settings(broker, "pel-window-test"), said.fn());
    sub.start();
    std::vector<subscriber::message> got;
    subscribed(sub, broker, got);
    sub.acknowledge(got.back().seq);
    got.clear();
    const std::size_t n = 1500;
    publish_many(broker, dir.path(), "sensors/a/d1", static_cast<int>(n));
    // Checkpoints every 300 ms: each acknowledges what came so far.
    for (int round = 0; round < 20 && got.size() < n; ++round) {
      const auto before = got.size();
      (void)pel::testing::poll_until(
          [&] {
            sub.take(got, 1000);
            return got.size() >= n;
          },
          300ms, 5ms);
      if (!got.empty()) sub.acknowledge(got.back().seq);
      UNSCOPED_INFO("round " << round << ": " << got.size() - before << " messages");
    }
    INFO("small window: " << small);
    if (small) {
      // The broker waits for each checkpoint's acknowledgements before it sends more.
      REQUIRE(pel::testing::poll_until([&] { return said.any("in-flight window"); }, 10s, 5ms));
      CHECK(said.any("max_inflight_messages 0"));
    } else {
      CHECK(got.size() == n);
      CHECK_FALSE(said.any("in-flight window"));
    }
    sub.stop();
  }
}
