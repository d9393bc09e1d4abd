// Faults injected through the mock cluster: request errors, leader changes, brokers down.
// Nothing acknowledged may be lost, and both connectors recover by themselves.
#include "kafka_test_util.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>

using namespace pel;
using namespace pel::kafka_test;

namespace {



core::operator_context named(const char* n) {
  core::operator_context c;
  c.name = n;
  return c;
}

}  // namespace

TEST_CASE("kafka sink and source survive injected faults without loss", "[kafka][faults]") {
  connectors::kafka_broker broker({3, 0, {"f:4"}, ""});
  const auto boot = broker.bootstraps();
  auto sc = sink_config(
      {{"bootstrap_servers", scalar(boot)}, {"topic", scalar("f")}, {"key", scalar("sym")}});
  connectors::kafka_sink sink(sc.cfg);
  sink.open(named("out"), row_schema());

  // Produce requests fail with retriable errors first.
  sink.write(rows(0, 10));
  sink.flush();
  broker.push_request_errors(
      connectors::kafka_api::produce,
      {connectors::kafka_errc::not_leader_for_partition,
       connectors::kafka_errc::not_leader_for_partition, connectors::kafka_errc::request_timed_out,
       connectors::kafka_errc::request_timed_out, connectors::kafka_errc::not_enough_replicas});
  sink.write(rows(10, 500));
  sink.flush();
  REQUIRE(sink.delivered() == 500);

  // Leaders move.
  for (int p = 0; p < 4; ++p) broker.set_leader("f", p, 1 + (p + 1) % 3);
  sink.write(rows(500, 1000));
  sink.flush();
  REQUIRE(sink.delivered() == 1000);

  // A broker goes down while messages are in flight, then comes back.
  broker.broker_down(2);
  sink.write(rows(1000, 1500));
  broker.broker_up(2);
  sink.flush();
  REQUIRE(sink.delivered() == 1500);

  // The idempotent producer neither lost nor duplicated anything.
  auto lines = kcat_consume(boot, "f", "%s\\n");
  REQUIRE(lines.size() == 1500);
  std::set<std::string> unique(lines.begin(), lines.end());
  REQUIRE(unique.size() == 1500);

  // The source reads through a broker outage and fetch errors.
  auto c = source_config({{"bootstrap_servers", scalar(boot)},
                          {"topics", list({"f"})},
                          {"assign", scalar("true")},
                          {"schema", test_schema()}});
  connectors::kafka_source src(c.cfg);
  src.open(named("in"));
  core::outputs out;
  REQUIRE(read_rows(src, out, 200));
  broker.push_request_errors(connectors::kafka_api::fetch,
                             {connectors::kafka_errc::not_leader_for_partition,
                              connectors::kafka_errc::request_timed_out});
  broker.broker_down(3);
  // Keep polling while the broker is down (whatever arrives from the others is fine).
  for (int i = 0; i < 50; ++i) src.poll(out, 64);
  broker.broker_up(3);
  REQUIRE(poll_until(
      [&] {
        src.poll(out, 512);
        std::set<std::int64_t> ids;
        for (auto id : ints(out.main, 0)) ids.insert(id);
        return ids.size() >= 1500;
      },
      std::chrono::seconds(60)));
  std::set<std::int64_t> ids;
  for (auto id : ints(out.main, 0)) ids.insert(id);
  REQUIRE(ids.size() == 1500);
  REQUIRE(*ids.begin() == 0);
  REQUIRE(*ids.rbegin() == 1499);
  src.close();
  sink.close();
}
