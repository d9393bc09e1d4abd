// The Kafka sink against the mock cluster, with kcat as the consumer.
#include "kafka_test_util.hpp"

#include "pel/spec/diagnostics.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

using namespace pel;
using namespace pel::kafka_test;

namespace {


core::operator_context sink_ctx() {
  core::operator_context c;
  c.name = "out";
  return c;
}


}  // namespace

TEST_CASE("kafka sink output is exactly what kcat reads", "[kafka][sink]") {
  connectors::kafka_broker broker({1, 0, {"out:4"}, ""});
  const auto boot = broker.bootstraps();
  auto c = sink_config({{"bootstrap_servers", scalar(boot)},
                        {"topic", scalar("out")},
                        {"key", scalar("sym")},
                        {"headers", map({{"app", scalar("pel")}})}});
  connectors::kafka_sink sink(c.cfg);
  sink.open(sink_ctx(), row_schema());
  for (int i = 0; i < 4; ++i) sink.write(rows(i * 250, (i + 1) * 250));
  sink.flush();
  REQUIRE(sink.delivered() == 1000);
  REQUIRE(sink.in_flight() == 0);

  // Expected payloads from the same encoder the sink uses.
  auto enc = connectors::make_encoder(c.cfg, row_schema());
  auto all = rows(0, 1000);
  std::multiset<std::string> expected;
  for (std::size_t i = 0; i < all.size(); ++i) {
    std::string s;
    enc->encode(all.row(i), s);
    expected.insert("S" + std::to_string(i % 7) + "|" +
                    std::to_string(1'700'000'000'000LL + static_cast<std::int64_t>(i)) +
                    "|app=pel|" + s);
  }
  auto lines = kcat_consume(boot, "out", "%k|%T|%h|%s\\n");
  std::multiset<std::string> got(lines.begin(), lines.end());
  REQUIRE(got.size() == 1000);
  REQUIRE(got == expected);

  // Same key, same partition.
  auto parts = kcat_consume(boot, "out", "%k %p\\n");
  std::map<std::string, std::set<std::string>> by_key;
  for (auto& l : parts) by_key[l.substr(0, l.find(' '))].insert(l.substr(l.find(' ') + 1));
  REQUIRE(by_key.size() == 7);
  for (auto& [k, ps] : by_key) REQUIRE(ps.size() == 1);
  sink.close();
}

TEST_CASE("kafka sink fails loudly when a delivery fails for good", "[kafka][sink]") {
  connectors::kafka_broker broker({1, 0, {"lost:1"}, ""});
  auto c = sink_config({{"bootstrap_servers", scalar(broker.bootstraps())},
                        {"topic", scalar("lost")},
                        {"rdkafka", map({{"message.timeout.ms", scalar("1500")}})}});
  connectors::kafka_sink sink(c.cfg);
  sink.open(sink_ctx(), row_schema());
  sink.write(rows(0, 10));
  sink.flush();
  REQUIRE(sink.delivered() == 10);
  broker.broker_down(1);
  sink.write(rows(10, 20));
  REQUIRE_THROWS_WITH(sink.flush(), Catch::Contains("kafka sink 'out'"));
  REQUIRE(sink.delivered() == 10);
  // Later writes keep failing: the loss is never hidden.
  REQUIRE_THROWS(sink.write(rows(20, 21)));
}

TEST_CASE("kafka sink waits out a full producer queue", "[kafka][sink]") {
  connectors::kafka_broker broker({1, 0, {"small:2"}, ""});
  // A local queue of 50 messages: writing 2,000 must wait for room again and again.
  auto c = sink_config({{"bootstrap_servers", scalar(broker.bootstraps())},
                        {"topic", scalar("small")},
                        {"timestamp", scalar("now")},
                        {"rdkafka", map({{"queue.buffering.max.messages", scalar("50")}})}});
  connectors::kafka_sink sink(c.cfg);
  sink.open(sink_ctx(), row_schema());
  const auto before_ms = core::processing_time::now().ns / 1'000'000;
  sink.write(rows(0, 2000));
  sink.flush();
  REQUIRE(sink.delivered() == 2000);
  auto ts = kcat_consume(broker.bootstraps(), "small", "%T\\n");
  REQUIRE(ts.size() == 2000);
  // `timestamp: now`: the send time, not the rows' event time.
  for (const auto& t : ts) REQUIRE(std::stoll(t) >= before_ms);
}

TEST_CASE("kafka sink config errors are located", "[kafka][sink][config]") {
  auto c = sink_config({{"bootstrap_servers", scalar("127.0.0.1:1")},
                        {"topic", scalar("t")},
                        {"rdkafka", map({{"linger.ms", scalar("not-a-number")}})}});
  try {
    connectors::kafka_sink s(c.cfg);
    FAIL("no error");
  } catch (const spec::config_error& e) {
    REQUIRE(e.path() == "sinks.out.rdkafka.linger.ms");
  }
  auto k = sink_config({{"bootstrap_servers", scalar("127.0.0.1:1")},
                        {"topic", scalar("t")},
                        {"key", scalar("nope")}});
  connectors::kafka_sink s(k.cfg);
  REQUIRE_THROWS_WITH(s.open(sink_ctx(), row_schema()),
                      Catch::Contains("field 'nope' is not in the input"));
}
