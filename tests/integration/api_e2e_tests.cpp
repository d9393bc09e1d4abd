// The HTTP API end to end: the real `pel run --http 127.0.0.1:0`, its port read from the log,
// every endpoint of docs/api.md read while the pipelines run: live rates and growing counters,
// backpressure behind a sink whose stdout nobody reads, dead letters with their reason, late
// records, a tap stream, and the security rules (loopback without a token, 401, 405).
#include "api_e2e_client.hpp"
#include "e2e_support.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <sstream>

using namespace pel::e2e;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

/// A generator (2,000 trades a second) through a filter into a discarding sink; never ends.
const char* const generator_yaml =
    "pipeline:\n"
    "  name: gen\n"
    "sources:\n"
    "  trades: {type: generator, profile: trades, rate: 2000}\n"
    "operators:\n"
    "  big: {type: filter, input: trades, where: qty >= 100}\n"
    "sinks:\n"
    "  out: {type: discard, input: big}\n";

/// Polls GET `path` until `ok(doc)` holds (a parsed 200 answer), at most `timeout`; `last`
/// keeps the last body for the failure message.
template <class F>
bool poll_json(int port, const std::string& path, F ok, std::string& last,
               milliseconds timeout = 20000ms, const std::string& token = "") {
  return eventually(
      [&] {
        auto r = http_get(port, path, token);
        if (!r || r->status != 200) return false;
        last = r->body;
        json_doc d(r->body);
        try {
          return d.ok() && ok(d);
        } catch (const std::exception&) {
          return false;
        }
      },
      timeout);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// Stops `pel run` with SIGTERM and requires a clean exit.
void stop(process& p) {
  p.send_signal(SIGTERM);
  auto r = p.wait(30000ms);
  INFO(r.err);
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
}

}  // namespace

TEST_CASE("pel run --http serves every endpoint with live figures", "[http][e2e]") {
  temp_dir dir;
  write_file(dir / "gen.yaml", generator_yaml);
  process p(
      {pel_binary(), "run", "--progress", "never", "--http", "127.0.0.1:0", dir / "gen.yaml"});
  const int port = http_port(p);
  INFO(p.err());
  REQUIRE(port > 0);
  std::string last;

  // The list: rates over the last interval are above 0 while the generator runs.
  REQUIRE(poll_json(
      port, "/api/v1/pipelines",
      [](const json_doc& d) {
        return d.num("/pipelines/0/records_in_per_s") > 0 &&
               d.num("/pipelines/0/records_out_per_s") > 0;
      },
      last));
  {
    json_doc d(last);
    INFO(last);
    CHECK(d.size("/pipelines") == 1);
    CHECK(d.str("/pipelines/0/name") == "gen");
    CHECK(d.str("/pipelines/0/file") == dir / "gen.yaml");
    CHECK(d.str("/pipelines/0/state") == "running");
    CHECK(d.num("/pipelines/0/uptime_s") > 0);
    CHECK(d.num("/pipelines/0/records_in_per_s") == Approx(2000).margin(1000));
    CHECK(d.num("/pipelines/0/records_out") <= d.num("/pipelines/0/records_in"));
    CHECK(d.num("/pipelines/0/dead_letters") == 0);
    CHECK(d.num("/pipelines/0/late") == 0);
    CHECK(d.num("/pipelines/0/restarts") == 0);
    CHECK(d.num("/pipelines/0/components") == 3);
    CHECK(d.num("/pipelines/0/instances") == 3);
    // Counters grow between two reads.
    const double before = d.num("/pipelines/0/records_in");
    std::string later;
    CHECK(poll_json(
        port, "/api/v1/pipelines",
        [&](const json_doc& e) { return e.num("/pipelines/0/records_in") > before; }, later,
        5000ms));
  }

  // The graph.
  {
    auto r = http_get(port, "/api/v1/pipelines/gen");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    json_doc d(r->body);
    INFO(r->body);
    REQUIRE(d.ok());
    CHECK(d.str("/name") == "gen");
    CHECK(d.str("/state") == "running");
    CHECK(d.size("/components") == 3);
    CHECK(d.str("/components/0/name") == "trades");
    CHECK(d.str("/components/0/kind") == "source");
    CHECK(d.str("/components/0/type") == "generator");
    CHECK(d.str("/components/1/inputs/0/component") == "trades");
    CHECK(d.str("/components/1/inputs/0/port") == "main");
    CHECK(d.num("/components/1/parallelism") == 1);
    CHECK(d.size("/chains") >= 1);
    CHECK(d.size("/channels") == 2);
    CHECK(d.str("/channels/0/from") == "trades");
    CHECK(d.str("/channels/0/to") == "big");
  }

  // Instances: rates, fractions that sum to about 1, a watermark near the clock.
  REQUIRE(poll_json(
      port, "/api/v1/pipelines/gen/instances",
      [](const json_doc& d) { return d.num("/instances/1/records_in_per_s") > 0; }, last));
  {
    json_doc d(last);
    INFO(last);
    CHECK(d.num("/interval_s") == Approx(1.0).margin(0.5));
    CHECK(std::abs(d.num("/at_ms") - static_cast<double>(now_ms())) < 10000);
    CHECK(d.str("/at").size() == 24);
    CHECK(d.size("/instances") == 3);
    CHECK(d.str("/instances/1/component") == "big");
    CHECK(d.num("/instances/1/instance") == 0);
    const double sum = d.num("/instances/1/busy") + d.num("/instances/1/idle") +
                       d.num("/instances/1/backpressured");
    CHECK(sum == Approx(1.0).margin(0.3));
    CHECK(d.num("/instances/1/queue_capacity") >= 0);
    CHECK(d.num("/instances/1/credit_capacity") >= 0);
    CHECK(d.num("/instances/1/dead_letters") == 0);
    CHECK(d.has("/instances/1/watermark_lag_s"));
    CHECK(d.has("/instances/1/state_bytes"));
  }

  // Sources: the generator's output rate; it has no splits.
  REQUIRE(poll_json(
      port, "/api/v1/pipelines/gen/sources",
      [](const json_doc& d) { return d.num("/sources/0/records_out_per_s") > 0; }, last));
  {
    json_doc d(last);
    INFO(last);
    CHECK(d.str("/sources/0/component") == "trades");
    CHECK(d.size("/splits") == 0);
    CHECK(d.is_null("/sources/0/lag"));
    CHECK(d.num("/sources/0/lost") == 0);
  }

  // What did not happen is zero or null.
  for (const auto& [path, check] :
       std::vector<std::pair<std::string, std::function<bool(const json_doc&)>>>{
           {"/api/v1/pipelines/gen/dead-letters",
            [](const json_doc& d) {
              return d.num("/total") == 0 && d.size("/latest") == 0 && d.size("/by_component") == 0;
            }},
           {"/api/v1/pipelines/gen/late", [](const json_doc& d) { return d.num("/total") == 0; }},
           {"/api/v1/pipelines/gen/checkpoints",
            [](const json_doc& d) {
              return d.num("/abandoned") == 0 && d.is_null("/restored_from");
            }},
           {"/api/v1/pipelines/gen/restarts",
            [](const json_doc& d) { return d.num("/count") == 0 && d.size("/log") == 0; }},
           {"/api/v1/pipelines/gen/scaling",
            [](const json_doc& d) { return d.is_null("/policy") && d.size("/events") == 0; }},
       }) {
    auto r = http_get(port, path);
    INFO(path);
    REQUIRE(r);
    INFO(r->body);
    CHECK(r->status == 200);
    json_doc d(r->body);
    REQUIRE(d.ok());
    CHECK(check(d));
  }

  // History: one point a second, with rates per component.
  REQUIRE(poll_json(
      port, "/api/v1/pipelines/gen/history",
      [](const json_doc& d) {
        return d.size("/points") >= 2 && d.num("/points/1/records_in_per_s") > 0;
      },
      last));
  {
    json_doc d(last);
    INFO(last);
    CHECK(d.num("/interval_s") == 1.0);
    CHECK(d.num("/points/1/at_ms") > d.num("/points/0/at_ms"));
    CHECK(d.num("/points/1/components/big/in") > 0);
    CHECK(d.has("/points/1/components/big/busy"));
    CHECK(d.has("/points/1/components/out/backpressured"));
  }

  // Prometheus: the families with their types, counters growing between two scrapes.
  auto scrape = [&] {
    auto r = http_get(port, "/metrics");
    REQUIRE(r);
    REQUIRE(r->status == 200);
    CHECK(contains(r->get_header_value("Content-Type"), "text/plain; version=0.0.4"));
    return r->body;
  };
  auto value_of = [](const std::string& text, const std::string& series) {
    auto pos = text.find(series + " ");
    REQUIRE(pos != std::string::npos);
    return std::stod(text.substr(pos + series.size() + 1));
  };
  const std::string series =
      "pel_records_in_total{pipeline=\"gen\",component=\"big\",instance=\"0\"}";
  const std::string m1 = scrape();
  INFO(m1);
  for (const char* family :
       {"# TYPE pel_records_in_total counter", "# TYPE pel_backpressure_seconds_total counter",
        "# TYPE pel_queue_batches gauge", "# TYPE pel_instances gauge",
        "# TYPE pel_http_request_duration_seconds histogram", "# TYPE pel_up gauge"})
    CHECK(contains(m1, family));
  CHECK(contains(m1, "pel_up{pipeline=\"gen\"} 1\n"));
  CHECK(contains(m1, "pel_instances{pipeline=\"gen\",component=\"big\"} 1\n"));
  CHECK(contains(m1,
                 "pel_http_request_duration_seconds_bucket{path=\"/api/v1/pipelines/{name}/"
                 "instances\",le=\"+Inf\"}"));
  const double first = value_of(m1, series);
  CHECK(eventually([&] { return value_of(scrape(), series) > first; }, 5000ms));

  // The dashboard's page is built in.
  {
    auto r = http_get(port, "/");
    REQUIRE(r);
    const std::string index = read_file(source_dir() + "/framework/api/dashboard/index.html");
    if (!index.empty()) {
      CHECK(r->status == 200);
      CHECK(r->body == index);
      CHECK(contains(r->get_header_value("Content-Type"), "text/html"));
    }
  }

  // A tap: 10 of the filter's rows at 5 a second, as JSON lines, then the stream ends.
  {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = http_get(port, "/api/v1/pipelines/gen/tap?component=big&rate=5&limit=10");
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    REQUIRE(r);
    INFO(r->body);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Type") == "application/x-ndjson");
    const auto lines = lines_of(r->body);
    REQUIRE(lines.size() == 10);
    for (const auto& l : lines) {
      json_doc d(l);
      REQUIRE(d.ok());
      CHECK(d.str("/component") == "big");
      CHECK(d.str("/port") == "main");
      CHECK(d.num("/record/qty") >= 100);
      CHECK(d.str("/record/symbol").size() > 0);
      CHECK(std::abs(d.num("/at_ms") - static_cast<double>(now_ms())) < 60000);
    }
    // At 5 rows a second, 10 rows take about 2 s (the first come at once).
    CHECK(took > 1.0);
  }

  // Errors.
  {
    auto r = http_get(port, "/api/v1/pipelines/nope");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(json_doc(r->body).str("/error").size() > 0);
    auto bad = http_get(port, "/api/v1/pipelines/gen/tap?component=big&rate=abc");
    REQUIRE(bad);
    CHECK(bad->status == 400);
    auto nocomp = http_get(port, "/api/v1/pipelines/gen/tap?component=nope");
    REQUIRE(nocomp);
    CHECK(nocomp->status == 404);
  }
  stop(p);
}

TEST_CASE("pel run --http: a sink nobody reads shows its upstream backpressured", "[http][e2e]") {
  temp_dir dir;
  // The sink runs apart from the source (parallelism 2), so a blocked write shows as the
  // source waiting for credit, not as the source busy.
  write_file(dir / "bp.yaml",
             "pipeline:\n"
             "  name: bp\n"
             "sources:\n"
             "  src: {type: generator, profile: trades}\n"
             "sinks:\n"
             "  show: {type: stdout, input: src, parallelism: 2}\n");
  process p({pel_binary(), "run", "--progress", "never", "--http", "127.0.0.1:0", dir / "bp.yaml"});
  const int port = http_port(p);
  INFO(p.err());
  REQUIRE(port > 0);
  // The test never reads stdout: the pipe fills and the sink blocks in write.
  std::string last;
  const bool backpressured = poll_json(
      port, "/api/v1/pipelines/bp/instances",
      [](const json_doc& d) {
        for (std::size_t i = 0; i < d.size("/instances"); ++i) {
          const std::string at = "/instances/" + std::to_string(i);
          if (d.str(at + "/component") == "src" && !d.is_null(at + "/backpressured") &&
              d.num(at + "/backpressured") > 0.5)
            return true;
        }
        return false;
      },
      last, 30000ms);
  INFO(last);
  CHECK(p.stdout_pending() > 0);
  REQUIRE(backpressured);
  {
    json_doc d(last);
    // Waiting for credit: the source holds sealed batches or has used its credits.
    CHECK(d.num("/instances/0/credits_used") + d.num("/instances/0/outbound") > 0);
  }
  // The same in the history the dashboard charts.
  std::string hist;
  CHECK(poll_json(
      port, "/api/v1/pipelines/bp/history",
      [](const json_doc& d) {
        const std::size_t n = d.size("/points");
        return n > 0 &&
               d.num("/points/" + std::to_string(n - 1) + "/components/src/backpressured") > 0.5;
      },
      hist, 10000ms));
  // Nobody will read: kill rather than wait for a drain.
  p.send_signal(SIGKILL);
  p.wait(10000ms);
}

TEST_CASE("pel run --http: dead letters show with their reason", "[http][e2e]") {
  temp_dir dir;
  std::string lines;
  for (int i = 0; i < 20; ++i)
    lines += "{\"id\": " + std::to_string(i) + ", \"name\": \"n" + std::to_string(i) + "\"}\n";
  lines += "this is not json\n";
  lines += "{\"id\": \"seven\", \"name\": \"x\"}\n";
  lines += "{\"id\": 3, \"name\": \n";
  write_file(dir / "in.jsonl", lines);
  // `follow`: the source keeps the pipeline running after the file's end.
  write_file(dir / "dl.yaml",
             "pipeline:\n"
             "  name: dl\n"
             "sources:\n"
             "  src:\n"
             "    type: file\n"
             "    path: " +
                 (dir / "in.jsonl") +
                 "\n"
                 "    follow: true\n"
                 "    schema: {id: int, name: string}\n"
                 "sinks:\n"
                 "  out: {type: discard, input: src}\n");
  process p({pel_binary(), "run", "--progress", "never", "--http", "127.0.0.1:0", dir / "dl.yaml"});
  const int port = http_port(p);
  INFO(p.err());
  REQUIRE(port > 0);
  std::string last;
  const bool seen = poll_json(
      port, "/api/v1/pipelines/dl/dead-letters",
      [](const json_doc& d) { return d.num("/total") == 3 && d.size("/latest") == 3; }, last);
  INFO(last);
  REQUIRE(seen);
  json_doc d(last);
  CHECK(d.num("/by_component/src") == 3);
  for (int i = 0; i < 3; ++i) {
    const std::string at = "/latest/" + std::to_string(i);
    CHECK(d.str(at + "/component") == "src");
    CHECK(d.str(at + "/record/reason").size() > 0);
    CHECK(std::abs(d.num(at + "/at_ms") - static_cast<double>(now_ms())) < 60000);
  }
  // Newest last: the lines in file order, the position names the line.
  CHECK(contains(simdjson::minify(d.at("/latest/0/record")), ":21"));
  CHECK(contains(simdjson::minify(d.at("/latest/2/record")), ":23"));
  // The list and the instances agree.
  std::string list;
  REQUIRE(poll_json(
      port, "/api/v1/pipelines",
      [](const json_doc& e) { return e.num("/pipelines/0/dead_letters") == 3; }, list, 5000ms));
  stop(p);
}

TEST_CASE("pel run --http: late records show per component", "[http][e2e]") {
  temp_dir dir;
  // A fifth of the trades come up to 2 s late; the watermark allows 10 ms.
  write_file(dir / "late.yaml",
             "pipeline:\n"
             "  name: late\n"
             "sources:\n"
             "  trades:\n"
             "    type: generator\n"
             "    profile: trades\n"
             "    rate: 2000\n"
             "    out_of_order: 0.2\n"
             "    max_delay: 2s\n"
             "    event_time: {field: ts, format: epoch_ms, max_out_of_orderness: 10ms}\n"
             "operators:\n"
             "  bars:\n"
             "    type: window\n"
             "    input: trades\n"
             "    key: symbol\n"
             "    window: {type: tumbling, size: 100ms}\n"
             "    aggregates: {n: count()}\n"
             "sinks:\n"
             "  out: {type: discard, input: bars}\n");
  process p(
      {pel_binary(), "run", "--progress", "never", "--http", "127.0.0.1:0", dir / "late.yaml"});
  const int port = http_port(p);
  INFO(p.err());
  REQUIRE(port > 0);
  std::string last;
  const bool seen = poll_json(
      port, "/api/v1/pipelines/late/late", [](const json_doc& d) { return d.num("/total") > 0; },
      last);
  INFO(last);
  REQUIRE(seen);
  json_doc d(last);
  CHECK(d.num("/by_component/bars") > 0);
  CHECK(d.num("/by_component/bars") == d.num("/total"));
  std::string inst;
  CHECK(poll_json(
      port, "/api/v1/pipelines/late/instances",
      [](const json_doc& e) {
        for (std::size_t i = 0; i < e.size("/instances"); ++i)
          if (e.str("/instances/" + std::to_string(i) + "/component") == "bars" &&
              e.num("/instances/" + std::to_string(i) + "/late") > 0)
            return true;
        return false;
      },
      inst, 5000ms));
  stop(p);
}

TEST_CASE("pel run --http: the security rules", "[http][e2e]") {
  temp_dir dir;
  write_file(dir / "gen.yaml", generator_yaml);

  SECTION("a non-loopback address without a token is a usage error before anything starts") {
    auto r = run_pel({"run", "--http", "0.0.0.0:0", dir / "gen.yaml"}, 30000ms);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "--http: 0.0.0.0 is not a loopback address"));
    CHECK(contains(r.err, "--http-token"));
    CHECK_FALSE(contains(r.err, "starting"));
  }

  SECTION("a malformed address is a usage error") {
    for (const char* bad : {"127.0.0.1:http", "127.0.0.1:70000", ":", "[::1"}) {
      auto r = run_pel({"run", "--http", bad, dir / "gen.yaml"}, 30000ms);
      INFO(bad << "\n" << r.err);
      CHECK(r.exit_code == 2);
      CHECK_FALSE(contains(r.err, "starting"));
    }
  }

  SECTION("with a token, requests need the bearer header; the API is read-only") {
    process p({pel_binary(), "run", "--progress", "never", "--http", "127.0.0.1:0", "--http-token",
               "s3cret", dir / "gen.yaml"});
    const int port = http_port(p);
    INFO(p.err());
    REQUIRE(port > 0);
    auto no = http_get(port, "/api/v1/pipelines");
    REQUIRE(no);
    CHECK(no->status == 401);
    CHECK(json_doc(no->body).str("/error").size() > 0);
    auto wrong = http_get(port, "/metrics", "s3creT");
    REQUIRE(wrong);
    CHECK(wrong->status == 401);
    auto yes = http_get(port, "/api/v1/pipelines", "s3cret");
    REQUIRE(yes);
    CHECK(yes->status == 200);
    CHECK(json_doc(yes->body).str("/pipelines/0/name") == "gen");
    httplib::Client cli("127.0.0.1", port);
    auto post = cli.Post("/api/v1/pipelines", {{"Authorization", "Bearer s3cret"}}, "{}",
                         "application/json");
    REQUIRE(post);
    CHECK(post->status == 405);
    auto put = cli.Put("/api/v1/pipelines/gen", {{"Authorization", "Bearer s3cret"}}, "{}",
                       "application/json");
    REQUIRE(put);
    CHECK(put->status == 405);
    stop(p);
  }

  SECTION("the token may come from PEL_HTTP_TOKEN, and then any address may be bound") {
    process p({pel_binary(), "run", "--progress", "never", "--http", "0.0.0.0:0", dir / "gen.yaml"},
              {"", {"PEL_HTTP_TOKEN=fromenv"}, ""});
    const int port = http_port(p);
    INFO(p.err());
    REQUIRE(port > 0);
    auto no = http_get(port, "/api/v1/pipelines");
    REQUIRE(no);
    CHECK(no->status == 401);
    auto yes = http_get(port, "/api/v1/pipelines", "fromenv");
    REQUIRE(yes);
    CHECK(yes->status == 200);
    stop(p);
  }
}
