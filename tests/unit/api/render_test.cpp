// The HTTP API's documents rendered from hand-made runtime snapshots: rates and fractions over
// the interval between two samples, nulls for unknown figures, times, and the Prometheus text.
#include "pel/api/render.hpp"

#include <simdjson.h>
#include <catch2/catch.hpp>

#include <climits>
#include <sstream>
#include <string>

using namespace pel;
using namespace pel::api;

namespace {

constexpr std::int64_t t0 = 1'704'205'800'000'000'000;  // 2024-01-02T14:30:00Z

/// A three-component job (source -> op -> sink) with one instance each, at `at_ns`.
sample make_sample(std::int64_t at_ns, std::uint64_t rows, std::int64_t busy_ns,
                   std::int64_t bp_ns) {
  sample s;
  s.status.at_ns = at_ns;
  s.status.uptime_ns = at_ns - t0;
  s.status.state = "running";
  const char* names[] = {"src", "op", "out"};
  const char* kinds[] = {"source", "operator", "sink"};
  for (int i = 0; i < 3; ++i) {
    runtime::graph_component g;
    g.name = names[i];
    g.kind = kinds[i];
    g.type = "t";
    g.parallelism = 1;
    if (i > 0) g.inputs.push_back({names[i - 1], ""});
    s.graph.components.push_back(g);
    runtime::instance_metrics m;
    m.component = names[i];
    m.global_id = 7;
    m.rows_in = i == 0 ? 0 : rows;
    m.rows_out = i == 2 ? 0 : rows;
    m.busy_ns = busy_ns;
    m.backpressure_ns = bp_ns;
    m.idle_ns = 0;
    m.credits = 3;
    m.credit_capacity = 8;
    m.queued_batches = 2;
    m.queue_capacity = 16;
    m.watermark_ns = INT64_MIN;
    s.status.instances.push_back(m);
    runtime::component_stats c;
    c.name = names[i];
    c.rows_in = m.rows_in;
    c.rows_out = m.rows_out;
    s.status.components.push_back(c);
  }
  return s;
}

simdjson::dom::element parse(simdjson::dom::parser& p, const std::string& text) {
  INFO(text);
  simdjson::dom::element e;
  REQUIRE(p.parse(text).get(e) == simdjson::SUCCESS);
  return e;
}

double num(simdjson::dom::element e) {
  double d = 0;
  REQUIRE(e.get_double().get(d) == simdjson::SUCCESS);
  return d;
}

std::string str(simdjson::dom::element e) {
  std::string_view s;
  REQUIRE(e.get_string().get(s) == simdjson::SUCCESS);
  return std::string(s);
}

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("iso_time writes UTC with milliseconds", "[api]") {
  CHECK(iso_time(t0) == "2024-01-02T14:30:00.000Z");
  CHECK(iso_time(t0 + 123'456'789) == "2024-01-02T14:30:00.123Z");
  CHECK(iso_time(0) == "1970-01-01T00:00:00.000Z");
  CHECK(iso_time(-1'000'000) == "1969-12-31T23:59:59.999Z");
}

TEST_CASE("instances show rates and fractions over the interval between two samples", "[api]") {
  auto a = make_sample(t0, 1000, 100'000'000, 0);
  auto b = make_sample(t0 + 2'000'000'000, 5000, 600'000'000, 1'000'000'000);
  b.status.instances[1].watermark_ns = t0 + 500'000'000;
  b.status.instances[2].watermark_ns = INT64_MAX;
  b.status.instances[1].state_bytes = 4096;
  simdjson::dom::parser p;
  auto doc = parse(p, render_instances(a, b));
  CHECK(str(doc["at"]) == "2024-01-02T14:30:02.000Z");
  CHECK(num(doc["at_ms"]) == 1'704'205'802'000.0);
  CHECK(num(doc["interval_s"]) == Approx(2.0));
  simdjson::dom::array list = doc["instances"];
  REQUIRE(list.size() == 3);
  auto src = list.at(0), op = list.at(1), out = list.at(2);
  CHECK(str(op["component"]) == "op");
  CHECK(num(op["records_in"]) == 5000);
  CHECK(num(op["records_in_per_s"]) == Approx(2000.0));
  CHECK(num(src["records_out_per_s"]) == Approx(2000.0));
  CHECK(num(op["busy"]) == Approx(0.25));
  CHECK(num(op["backpressured"]) == Approx(0.5));
  CHECK(num(op["credits_used"]) == 5);
  CHECK(num(op["credit_capacity"]) == 8);
  CHECK(num(op["queue_used"]) == 2);
  CHECK(num(op["queue_capacity"]) == 16);
  CHECK(str(op["watermark"]) == "2024-01-02T14:30:00.500Z");
  CHECK(num(op["watermark_ms"]) == 1'704'205'800'500.0);
  CHECK(num(op["watermark_lag_s"]) == Approx(1.5));
  CHECK(num(op["state_bytes"]) == 4096);
  CHECK(src["watermark"].is_null());
  CHECK(src["watermark_lag_s"].is_null());
  CHECK(src["state_bytes"].is_null());
  CHECK(str(out["watermark"]) == "end");
}

TEST_CASE("an instance stalled with sealed output through the interval is backpressured", "[api]") {
  // The runtime's counter has not moved (the period has not ended) but nothing went out and
  // output waited at both readings.
  auto a = make_sample(t0, 1000, 100'000'000, 0);
  auto b = make_sample(t0 + 1'000'000'000, 1000, 150'000'000, 0);
  a.status.instances[0].outbound_batches = 1;
  b.status.instances[0].outbound_batches = 2;
  a.status.instances[0].batches_out = b.status.instances[0].batches_out = 40;
  simdjson::dom::parser p;
  auto doc = parse(p, render_instances(a, b));
  CHECK(num(doc["instances"].at(0)["busy"]) == Approx(0.05));
  CHECK(num(doc["instances"].at(0)["backpressured"]) == Approx(0.95));
  CHECK(num(doc["instances"].at(0)["idle"]) == Approx(0.0).margin(1e-9));
  // One that sent a batch in between is judged by the counter alone.
  b.status.instances[0].batches_out = 41;
  auto doc2 = parse(p, render_instances(a, b));
  CHECK(num(doc2["instances"].at(0)["backpressured"]) == Approx(0.0));
}

TEST_CASE("without a previous sample rates are null, not zero", "[api]") {
  auto a = make_sample(t0, 1000, 0, 0);
  simdjson::dom::parser p;
  auto doc = parse(p, render_instances(a, a));
  CHECK(doc["interval_s"].is_null());
  CHECK(doc["instances"].at(1)["records_in_per_s"].is_null());
  CHECK(doc["instances"].at(1)["busy"].is_null());
  // An instance new since the previous sample (a rescale) has no rates either.
  auto b = make_sample(t0 + 1'000'000'000, 2000, 0, 0);
  b.status.instances[1].global_id = 9;
  auto doc2 = parse(p, render_instances(a, b));
  CHECK(doc2["instances"].at(1)["records_in_per_s"].is_null());
  CHECK(num(doc2["instances"].at(0)["records_out_per_s"]) == Approx(1000.0));
}

TEST_CASE("the pipeline list counts rows of the sources in and of the sinks out", "[api]") {
  auto a = make_sample(t0, 1000, 0, 0);
  auto b = make_sample(t0 + 1'000'000'000, 4000, 0, 0);
  b.status.components[2].rows_in = 30;  // the sink received fewer than the source emitted
  b.status.components[1].late = 3;
  b.status.components[1].dead_letters = 2;
  b.status.checkpoints = 4;
  simdjson::dom::parser p;
  auto doc = parse(p, render_pipelines({{"live", "live.yaml", &a, &b}}));
  auto x = doc["pipelines"].at(0);
  CHECK(str(x["name"]) == "live");
  CHECK(str(x["file"]) == "live.yaml");
  CHECK(str(x["state"]) == "running");
  CHECK(num(x["uptime_s"]) == Approx(1.0));
  CHECK(num(x["records_in"]) == 4000);
  CHECK(num(x["records_out"]) == 30);
  CHECK(num(x["records_in_per_s"]) == Approx(3000.0));
  CHECK(num(x["dead_letters"]) == 2);
  CHECK(num(x["late"]) == 3);
  CHECK(num(x["checkpoints"]) == 4);
  CHECK(num(x["components"]) == 3);
  CHECK(num(x["instances"]) == 3);
  CHECK(x["error"].error() == simdjson::NO_SUCH_FIELD);
  b.status.state = "failed";
  b.status.error = "op: boom";
  auto doc2 = parse(p, render_pipelines({{"live", "live.yaml", &a, &b}}));
  CHECK(str(doc2["pipelines"].at(0)["error"]) == "op: boom");
}

TEST_CASE("the graph names the main port and lists chains and channels", "[api]") {
  auto a = make_sample(t0, 0, 0, 0);
  runtime::graph_chain ch;
  ch.id = 0;
  ch.components = {"src", "op"};
  ch.instances = {0, 1};
  a.graph.chains.push_back(ch);
  runtime::graph_channel c;
  c.from = "op";
  c.port = "main";
  c.to = "out";
  c.partitioning = "hash";
  c.keys = {"symbol"};
  a.graph.channels.push_back(c);
  simdjson::dom::parser p;
  auto doc = parse(p, render_pipeline({"x", "x.yaml", &a, &a}));
  CHECK(str(doc["components"].at(1)["inputs"].at(0)["port"]) == "main");
  CHECK(str(doc["components"].at(1)["kind"]) == "operator");
  CHECK(num(doc["chains"].at(0)["instances"].at(1)) == 1);
  CHECK(str(doc["channels"].at(0)["keys"].at(0)) == "symbol");
  CHECK(str(doc["channels"].at(0)["partitioning"]) == "hash");
}

TEST_CASE("dead letters keep the newest 20, newest last, with the row as JSON", "[api]") {
  runtime::job_status s;
  runtime::component_stats c;
  c.name = "parse";
  c.dead_letters = 25;
  s.components.push_back(c);
  s.dead_letters_logged = 20;
  s.dead_letters_dropped = 5;
  for (int i = 0; i < 25; ++i)
    s.dead_letters.push_back({t0 + i * 1'000'000, "parse",
                              "{\"reason\":\"bad " + std::to_string(i) + "\",\"record\":\"x\"}"});
  simdjson::dom::parser p;
  auto doc = parse(p, render_dead_letters(s));
  CHECK(num(doc["total"]) == 25);
  CHECK(num(doc["logged"]) == 20);
  CHECK(num(doc["dropped"]) == 5);
  CHECK(num(doc["by_component"]["parse"]) == 25);
  simdjson::dom::array latest = doc["latest"];
  REQUIRE(latest.size() == 20);
  CHECK(str(latest.at(19)["record"]["reason"]) == "bad 24");
  CHECK(str(latest.at(0)["record"]["reason"]) == "bad 5");
  CHECK(num(latest.at(19)["at_ms"]) == Approx(1'704'205'800'024.0));
}

TEST_CASE("checkpoints, late, restarts and scaling use null for what did not happen", "[api]") {
  runtime::job_status s;
  simdjson::dom::parser p;
  auto none = parse(p, render_checkpoints(s));
  CHECK(num(none["completed"]) == 0);
  CHECK(none["in_progress"].is_null());
  CHECK(none["last_id"].is_null());
  CHECK(none["last_at"].is_null());
  CHECK(none["last_at_ms"].is_null());
  CHECK(none["restored_from"].is_null());
  s.checkpoints = 4;
  s.last_checkpoint = 4;
  s.last_checkpoint_bytes = 81920;
  s.last_checkpoint_ns = 4'000'000;
  s.last_checkpoint_at_ns = t0;
  s.restored_from = 2;
  auto some = parse(p, render_checkpoints(s));
  CHECK(num(some["last_id"]) == 4);
  CHECK(num(some["last_duration_s"]) == Approx(0.004));
  CHECK(str(some["last_at"]) == "2024-01-02T14:30:00.000Z");
  CHECK(num(some["restored_from"]) == 2);

  CHECK(parse(p, render_scaling(s))["policy"].is_null());
  s.scaling_policy = "ds2";
  runtime::scaling_event e;
  e.component = "tagged";
  e.from = 1;
  e.to = 3;
  e.at_ns = 12'100'000'000;
  e.done = true;
  s.scaling.push_back(e);
  auto sc = parse(p, render_scaling(s));
  CHECK(str(sc["policy"]) == "ds2");
  CHECK(num(sc["events"].at(0)["to"]) == 3);
  CHECK(num(sc["events"].at(0)["at_s"]) == Approx(12.1));

  runtime::component_stats c;
  c.name = "bars";
  c.late = 3;
  s.components.push_back(c);
  auto late = parse(p, render_late(s));
  CHECK(num(late["total"]) == 3);
  CHECK(num(late["by_component"]["bars"]) == 3);

  s.restarts = 1;
  s.restart_log = {"at 3.2 s: bars[1] failed"};
  auto r = parse(p, render_restarts(s));
  CHECK(num(r["count"]) == 1);
  CHECK(str(r["log"].at(0)) == "at 3.2 s: bars[1] failed");
}

TEST_CASE("sources show each split and the lag summed per source", "[api]") {
  auto a = make_sample(t0, 0, 0, 0);
  auto b = make_sample(t0 + 1'000'000'000, 500, 0, 0);
  for (int i = 0; i < 2; ++i) {
    runtime::split_status sp;
    sp.component = "src";
    sp.split = "ticks/" + std::to_string(i);
    sp.position = 100;
    sp.end = 150 + i * 10;
    sp.lag = 50 + i * 10;
    sp.watermark_ns = t0;
    b.status.splits.push_back(sp);
  }
  b.status.progress_total = 0;
  simdjson::dom::parser p;
  auto doc = parse(p, render_sources(a, b));
  CHECK(str(doc["splits"].at(1)["split"]) == "ticks/1");
  CHECK(num(doc["splits"].at(1)["lag"]) == 60);
  CHECK(str(doc["splits"].at(0)["watermark"]) == "2024-01-02T14:30:00.000Z");
  auto src = doc["sources"].at(0);
  CHECK(str(src["component"]) == "src");
  CHECK(num(src["lag"]) == 110);
  CHECK(num(src["records_out_per_s"]) == Approx(500.0));
  CHECK(src["progress"].is_null());
}

TEST_CASE("a history point has rates and the mean fractions per component", "[api]") {
  auto a = make_sample(t0, 0, 0, 0);
  auto b = make_sample(t0 + 1'000'000'000, 800, 200'000'000, 700'000'000);
  std::deque<history_point> h{make_history_point(a, b)};
  simdjson::dom::parser p;
  auto doc = parse(p, render_history(h, 1.0));
  auto pt = doc["points"].at(0);
  CHECK(num(pt["at_ms"]) == 1'704'205'801'000.0);
  CHECK(num(pt["records_in_per_s"]) == Approx(800.0));
  CHECK(num(pt["components"]["op"]["in"]) == Approx(800.0));
  CHECK(num(pt["components"]["op"]["busy"]) == Approx(0.2));
  CHECK(num(pt["components"]["op"]["backpressured"]) == Approx(0.7));
}

TEST_CASE("a tap line holds the row as an object", "[api]") {
  simdjson::dom::parser p;
  auto doc = parse(p, render_tap_line("big", "main", 42, R"({"a":1})"));
  CHECK(str(doc["component"]) == "big");
  CHECK(str(doc["port"]) == "main");
  CHECK(num(doc["at_ms"]) == 42);
  CHECK(num(doc["record"]["a"]) == 1);
}

TEST_CASE("metrics are one family per name with escaped labels and a cumulative histogram",
          "[api]") {
  auto b = make_sample(t0, 100, 1'500'000'000, 0);
  b.status.instances[1].component = "we\"ird\\na\nme";
  b.status.instances[1].watermark_ns = t0;
  runtime::split_status sp;
  sp.component = "src";
  sp.split = "ticks/0";
  sp.lag = 50;
  b.status.splits.push_back(sp);
  request_histograms h;
  h.observe("/metrics", 0.0003);
  h.observe("/metrics", 0.02);
  h.observe("/metrics", 10);
  const std::string text = render_metrics({{"p1", &b.status, &b.graph}}, h);
  INFO(text);
  for (const char* name :
       {"pel_records_in_total", "pel_busy_seconds_total", "pel_instances", "pel_kafka_lag_records",
        "pel_up", "pel_checkpoints_total", "pel_http_request_duration_seconds",
        "pel_watermark_seconds", "pel_state_bytes"}) {
    CHECK(count_of(text, std::string("# TYPE ") + name + " ") == 1);
    CHECK(count_of(text, std::string("# HELP ") + name + " ") == 1);
  }
  CHECK(count_of(text, "# TYPE pel_http_request_duration_seconds histogram") == 1);
  CHECK(text.find("pel_records_in_total{pipeline=\"p1\",component=\"op\",instance=\"0\"}") ==
        std::string::npos);
  CHECK(text.find("component=\"we\\\"ird\\\\na\\nme\"") != std::string::npos);
  CHECK(
      text.find("pel_busy_seconds_total{pipeline=\"p1\",component=\"src\",instance=\"0\"} 1.5\n") !=
      std::string::npos);
  CHECK(text.find("pel_kafka_lag_records{pipeline=\"p1\",component=\"src\",instance=\"0\",split="
                  "\"ticks/0\"} 50\n") != std::string::npos);
  CHECK(text.find("pel_watermark_seconds{pipeline=\"p1\",component=\"we") != std::string::npos);
  CHECK(text.find("pel_up{pipeline=\"p1\"} 1\n") != std::string::npos);
  // Only known watermarks and state sizes are exposed.
  CHECK(count_of(text, "pel_watermark_seconds{") == 1);
  CHECK(count_of(text, "pel_state_bytes{") == 0);
  // Buckets are cumulative and +Inf equals the count.
  CHECK(
      text.find("pel_http_request_duration_seconds_bucket{path=\"/metrics\",le=\"0.0005\"} 1\n") !=
      std::string::npos);
  CHECK(text.find("pel_http_request_duration_seconds_bucket{path=\"/metrics\",le=\"0.025\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("pel_http_request_duration_seconds_bucket{path=\"/metrics\",le=\"2.5\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("pel_http_request_duration_seconds_bucket{path=\"/metrics\",le=\"+Inf\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("pel_http_request_duration_seconds_count{path=\"/metrics\"} 3\n") !=
        std::string::npos);
  // Every sample line is `name{labels} value` or `name value`.
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# ", 0) == 0) continue;
    INFO(line);
    CHECK(line.rfind("pel_", 0) == 0);
    CHECK(line.find(' ', line.rfind('}') == std::string::npos ? 0 : line.rfind('}')) !=
          std::string::npos);
  }
}
