// The HTTP API with Kafka: the trading example's feed and live pipelines on the embedded
// broker; `/sources` shows each partition of `ticks` with its position and lag.
#include "api_e2e_client.hpp"
#include "e2e_support.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <map>

using namespace pel::e2e;
using namespace std::chrono_literals;

TEST_CASE("pel run --http: Kafka partitions show position and lag in /sources",
          "[http][kafka][e2e]") {
  process p(
      {pel_binary(), "run", "--progress", "never", "--embedded-kafka", "ticks:4,bars:4,alerts:1",
       "--http", "127.0.0.1:0", "examples/trading/feed.yaml", "examples/trading/live.yaml"},
      {source_dir(), {}, ""});
  const int port = http_port(p, 60000ms);
  INFO(p.err());
  REQUIRE(port > 0);

  // Both pipelines are listed, by pipeline.name.
  {
    auto r = http_get(port, "/api/v1/pipelines");
    REQUIRE(r);
    json_doc d(r->body);
    INFO(r->body);
    REQUIRE(d.size("/pipelines") == 2);
    CHECK(d.str("/pipelines/0/name") == "feed");
    CHECK(d.str("/pipelines/1/name") == "live-trading");
  }

  // Every partition of `ticks` once its instance has published it, with a position that grows.
  std::map<std::string, double> first;
  std::string last;
  const bool all = eventually(
      [&] {
        auto r = http_get(port, "/api/v1/pipelines/live-trading/sources");
        if (!r || r->status != 200) return false;
        last = r->body;
        json_doc d(r->body);
        if (!d.ok() || d.size("/splits") != 4) return false;
        for (std::size_t i = 0; i < 4; ++i) {
          const std::string at = "/splits/" + std::to_string(i);
          if (d.is_null(at + "/position") || d.num(at + "/position") <= 0) return false;
        }
        for (std::size_t i = 0; i < 4; ++i) {
          const std::string at = "/splits/" + std::to_string(i);
          first[d.str(at + "/split")] = d.num(at + "/position");
        }
        return true;
      },
      60000ms);
  INFO(last);
  REQUIRE(all);
  {
    json_doc d(last);
    CHECK(first.count("ticks/0") == 1);
    CHECK(first.count("ticks/3") == 1);
    for (std::size_t i = 0; i < 4; ++i) {
      const std::string at = "/splits/" + std::to_string(i);
      CHECK(d.str(at + "/component") == "ticks");
      CHECK(d.num(at + "/instance") < 2);
      CHECK(d.num(at + "/lag") >= 0);
      CHECK(d.num(at + "/end") >= d.num(at + "/position"));
      CHECK(d.num(at + "/lag") == d.num(at + "/end") - d.num(at + "/position"));
      CHECK(d.has(at + "/watermark_ms"));
      CHECK(d.has(at + "/idle"));
      CHECK(d.has(at + "/paused"));
    }
    CHECK(d.str("/sources/0/component") == "ticks");
    CHECK(d.num("/sources/0/lag") >= 0);
    CHECK(d.num("/sources/0/records_out") > 0);
  }
  // The positions move on while the feed writes.
  CHECK(eventually(
      [&] {
        auto r = http_get(port, "/api/v1/pipelines/live-trading/sources");
        if (!r || r->status != 200) return false;
        json_doc d(r->body);
        if (!d.ok() || d.size("/splits") != 4) return false;
        double grew = 0;
        for (std::size_t i = 0; i < 4; ++i) {
          const std::string at = "/splits/" + std::to_string(i);
          grew += d.num(at + "/position") - first[d.str(at + "/split")];
        }
        return grew > 0;
      },
      20000ms));
  // The lag per partition is also a Prometheus gauge.
  auto m = http_get(port, "/metrics");
  REQUIRE(m);
  CHECK(m->body.find("pel_kafka_lag_records{pipeline=\"live-trading\",component=\"ticks\",instance="
                     "\"0\",split=\"ticks/") != std::string::npos);
  p.send_signal(SIGTERM);
  auto r = p.wait(60000ms);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
}
