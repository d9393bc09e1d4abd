// The runner on real pipelines: the built-in operators and connectors, the real planner and
// runtime, with the sources replaced by a case's records and the sinks by captures.
#include "pel/testing/runner.hpp"

#include "pel/connectors/register.hpp"
#include "pel/operators/register.hpp"
#include "pel/testing/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>

using namespace pel;

namespace {

const spec::registry& registry() {
  static const spec::registry reg = [] {
    spec::registry r;
    operators::register_builtin_operators(r);
    connectors::register_builtin_connectors(r);
    return r;
  }();
  return reg;
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

/// A keyed 10-second window over a Kafka topic (never contacted), its late records routed
/// to a sink of their own; `parallelism` for every component.
std::string pipeline(int parallelism) {
  return "pipeline: {name: t, parallelism: " + std::to_string(parallelism) + R"(}
sources:
  trades:
    type: kafka
    bootstrap_servers: 127.0.0.1:1
    topics: [trades]
    group_id: g
    schema: {ts: int, symbol: string, qty: int}
    event_time: {field: ts, format: epoch_ms, max_out_of_orderness: 1s}
operators:
  big:
    type: filter
    input: trades
    where: qty > 0
  counts:
    type: window
    input: big
    key: symbol
    window: {type: tumbling, size: 10s}
    aggregates: {n: count(), volume: sum(qty)}
    late: route
sinks:
  out: {type: kafka, input: counts, bootstrap_servers: 127.0.0.1:1, topic: out}
  late_out: {type: file, input: counts.late, path: /nonexistent/late.jsonl, format: json}
)";
}

// Records at 1 s and 2 s, then 3 s after a watermark at 15 s: late (its window ended at
// 10 s), though without the watermark entry it would have been counted. Then 12 s.
const char* const case_text = R"(
    inputs:
      trades:
        - {ts: 1000, symbol: A, qty: 10}
        - {ts: 2000, symbol: A, qty: 5}
        - {watermark: 15000}
        - {ts: 3000, symbol: A, qty: 7}
        - {ts: 12000, symbol: B, qty: 1}
        - {ts: 11000, symbol: B, qty: 0}
)";

std::string failures(const testing::file_result& r) {
  std::string s = r.errors.format();
  for (const auto& c : r.cases)
    for (const auto& d : c.diff) s += c.name + ": " + d + "\n";
  return s;
}

}  // namespace

TEST_CASE("a watermark entry fires the window at its place in the input, at any parallelism",
          "[testing]") {
  pel::testing::temp_dir dir;
  write(dir.file("p.yaml"), pipeline(1));
  write(dir.file("p2.yaml"), pipeline(2));
  write(dir.file("p4.yaml"), pipeline(4));
  for (const char* p : {"p.yaml", "p2.yaml", "p4.yaml"}) {
    write(dir.file("t.test.yaml"), std::string("pipeline: ") + p +
                                       "\ncases:\n  - name: late after a watermark" + case_text +
                                       R"(
    expect:
      out:
        - {symbol: A, window_start: 0, n: 2, volume: 15}
        - {symbol: B, window_start: 10000, n: 1, volume: 1}
      counts: [{symbol: A, n: 2}, {symbol: B, n: 1}]
      late_out: [{ts: 3000, symbol: A, qty: 7}]
      big.dead_letter: []
    late: {counts: 1}
    dead_letters: {big: 0}
)");
    // Run it again and again: the late record must be late every time.
    for (int run = 0; run < 5; ++run) {
      INFO(p << " run " << run);
      auto r = testing::run_test_file(dir.file("t.test.yaml"), registry());
      INFO(failures(r));
      REQUIRE(r.valid());
      REQUIRE(r.cases.size() == 1);
      CHECK(r.cases[0].passed);
    }
  }
}

TEST_CASE("a failing case names the record, its key fields and the field", "[testing]") {
  pel::testing::temp_dir dir;
  write(dir.file("p.yaml"), pipeline(2));
  write(dir.file("t.test.yaml"),
        std::string("pipeline: p.yaml\ncases:\n  - name: wrong") + case_text + R"(
    expect:
      out:
        - {symbol: A, window_start: 0, n: 3, volume: 15}
        - {symbol: C, n: 1}
    late: {counts: 0}
)");
  testing::case_result seen;
  testing::run_options o;
  o.on_case = [&](const testing::case_result& c) { seen = c; };
  auto r = testing::run_test_file(dir.file("t.test.yaml"), registry(), o);
  REQUIRE(r.valid());
  REQUIRE(r.cases.size() == 1);
  CHECK_FALSE(r.cases[0].passed);
  CHECK(seen.name == "wrong");
  const std::string d = failures(r);
  CHECK(d.find("out: record 0 (symbol=A, window_start=0) at " + dir.file("t.test.yaml") +
               ":15:11: field n: expected 3, actual 2") != std::string::npos);
  CHECK(d.find("out: missing record 1 (symbol=C)") != std::string::npos);
  CHECK(d.find("out: unexpected record 1 (symbol=B, window_start=10000)") != std::string::npos);
  CHECK(d.find("counts: late records: expected 0, actual 1") != std::string::npos);
}

TEST_CASE("names, fields and values are checked against the plan before anything runs",
          "[testing]") {
  pel::testing::temp_dir dir;
  write(dir.file("p.yaml"), pipeline(1));
  write(dir.file("t.test.yaml"), R"(pipeline: p.yaml
cases:
  - name: bad
    inputs:
      trade: [{ts: 1}]
      trades:
        - {ts: 1000, symbl: A, qty: many}
        - {at: 5, ts: 5}
    expect:
      outt: []
      out: [{symbol: A, volumes: 1}]
      counts.lateness: []
    late: {count: 1}
)");
  auto r = testing::run_test_file(dir.file("t.test.yaml"), registry());
  REQUIRE_FALSE(r.valid());
  CHECK(r.cases.empty());
  const std::string e = r.errors.format();
  const std::string f = dir.file("t.test.yaml");
  CHECK(e.find(f + ":5:7: cases[0].inputs.trade: no source 'trade' in the pipeline; did you mean "
                   "'trades'?") != std::string::npos);
  CHECK(e.find(f + ":7:22: cases[0].inputs.trades[0].symbl: unknown field 'symbl' of source "
                   "'trades'; did you "
                   "mean 'symbol'?") != std::string::npos);
  CHECK(e.find(f +
               ":7:32: cases[0].inputs.trades[0].qty: field 'qty': expected an int, not 'many'") !=
        std::string::npos);
  CHECK(e.find(f + ":8:16: cases[0].inputs.trades[1].at: the record gives its time twice") !=
        std::string::npos);
  CHECK(e.find(f + ":10:7: cases[0].expect.outt: no sink or component 'outt' in the pipeline; did "
                   "you mean 'out'?") != std::string::npos);
  CHECK(e.find(f + ":11:25: cases[0].expect.out[0].volumes: 'out' has no field 'volumes'; did you "
                   "mean 'volume'?") != std::string::npos);
  CHECK(e.find(f + ":12:7: cases[0].expect.counts.lateness: no sink or component") !=
        std::string::npos);
  CHECK(e.find(f + ":13:12: cases[0].late.count: no component 'count'") != std::string::npos);
}

TEST_CASE("the pipeline's own errors make the test file invalid", "[testing]") {
  pel::testing::temp_dir dir;
  write(dir.file("p.yaml"),
        "sources:\n  s: {type: generatr}\nsinks:\n  o: {type: stdout, input: s}\n");
  write(dir.file("t.test.yaml"), "pipeline: p.yaml\ncases:\n  - name: x\n    expect: {o: []}\n");
  auto r = testing::run_test_file(dir.file("t.test.yaml"), registry());
  REQUIRE_FALSE(r.valid());
  const std::string e = r.errors.format();
  CHECK(e.find(dir.file("p.yaml") + ":2:") != std::string::npos);
  CHECK(e.find(dir.file("t.test.yaml") + ":1:11: pipeline: the pipeline '") != std::string::npos);
}

TEST_CASE("inputs from files of JSON or CSV lines, and times given with at", "[testing]") {
  pel::testing::temp_dir dir;
  write(dir.file("p.yaml"), R"(pipeline: {name: t}
sources:
  a:
    type: stdin
    format: json
    schema: {ts: int, k: string, v: double}
    event_time: {field: ts, format: epoch_ms}
  b:
    type: stdin
    format: csv
    schema: {ts: string, k: string, v: double}
    event_time: {field: ts, format: iso8601}
  c:
    type: stdin
    format: json
    schema: {k: string, v: double}
operators:
  all: {type: union, input: [a, b]}
  sums:
    type: window
    input: all
    key: k
    window: {type: tumbling, size: 1m}
    aggregates: {total: sum(v), n: count()}
  c_sums:
    type: window
    input: c
    key: k
    window: {type: tumbling, size: 1m}
    aggregates: {total: sum(v)}
sinks:
  out: {type: stdout, input: sums}
  c_out: {type: stdout, input: c_sums}
)");
  write(dir.file("a.jsonl"),
        "{\"ts\": 1000, \"k\": \"x\", \"v\": 1.5}\n{\"ts\": 61000, \"k\": \"x\", \"v\": 2}\n");
  write(dir.file("b.csv"), "ts,k,v\n1970-01-01T00:00:30Z,x,0.25\n\"1970-01-01T00:00:40Z\",y,\n");
  write(dir.file("t.test.yaml"), R"(pipeline: p.yaml
cases:
  - name: files
    inputs:
      a: {file: a.jsonl}
      b: {file: b.csv}
      c:
        - {at: "1970-01-01T00:00:05Z", k: z, v: 1}
        - {k: z, v: 2}
        - {at: 65000, k: z, v: 4}
    expect:
      out:
        - {k: x, window_start: 0, total: 1.75, n: 2}
        - {k: x, window_start: 60000, total: 2, n: 1}
        - {k: y, window_start: 0, total: null, n: 1}
      c_out:
        - {k: z, window_start: 0, total: 3}
        - {k: z, window_start: "1970-01-01T00:01:00Z", total: 4}
)");
  auto r = testing::run_test_file(dir.file("t.test.yaml"), registry());
  INFO(failures(r));
  REQUIRE(r.valid());
  CHECK(r.passed());
}

TEST_CASE("records of several sources take turns in event-time order", "[testing]") {
  pel::testing::temp_dir dir;
  write(dir.file("p.yaml"), R"(pipeline: {name: t, parallelism: 2}
sources:
  a:
    type: stdin
    format: json
    schema: {ts: int, id: string}
    event_time: {field: ts, format: epoch_ms}
  b:
    type: stdin
    format: json
    schema: {ts: int, id: string}
    event_time: {field: ts, format: epoch_ms}
operators:
  both: {type: union, input: [a, b]}
sinks:
  out: {type: stdout, input: both, parallelism: 1}
)");
  write(dir.file("t.test.yaml"), R"(pipeline: p.yaml
cases:
  - name: merged
    inputs:
      a: [{ts: 1000, id: a1}, {ts: 3000, id: a2}, {ts: 2500, id: a3}]
      b: [{ts: 2000, id: b1}, {ts: 4000, id: b2}]
    expect:
      out:
        ordered: true
        records: [{id: a1}, {id: b1}, {id: a2}, {id: a3}, {id: b2}]
)");
  for (int run = 0; run < 5; ++run) {
    auto r = testing::run_test_file(dir.file("t.test.yaml"), registry());
    INFO("run " << run << "\n" << failures(r));
    REQUIRE(r.valid());
    CHECK(r.passed());
  }
}
