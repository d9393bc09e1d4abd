// `pel test` run as a user would: a passing file exits 0, a failing one exits 1 with a diff
// that names the record and the field, an invalid file exits 2 with file:line:column, and a
// watermark entry fires a window before the end of the input.
#include "e2e_support.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace pel::e2e;

namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

/// Trades from a generator (replaced in tests), counted per symbol in 10-second windows. The
/// sink `all` reads the windows and the trades themselves (tagged `kind: trade`) through a
/// union, so the order of its records shows when each window fired.
const char* const pipeline = R"(pipeline: {name: counts, parallelism: 2}
sources:
  trades:
    type: generator
    profile: trades
    count: 1000
    event_time: {field: ts, format: epoch_ms, max_out_of_orderness: 1s}
operators:
  counts:
    type: window
    input: trades
    key: symbol
    window: {type: tumbling, size: 10s}
    aggregates: {n: count(), volume: sum(qty)}
  tagged:
    type: map
    input: trades
    parallelism: 1
    fields: {kind: '"trade"'}
  both:
    type: union
    input: [counts, tagged]
    parallelism: 1
sinks:
  out: {type: stdout, input: counts}
  all: {type: stdout, input: both, parallelism: 1}
)";

const char* const trades = R"(
    inputs:
      trades:
        - {ts: 1000, symbol: A, price: 1.5, qty: 10, side: buy, trade_id: 1}
        - {ts: 2000, symbol: A, price: 1.5, qty: 5, side: buy, trade_id: 2}
)";

struct files {
  temp_dir dir;
  std::string test;
  explicit files(const std::string& test_text) {
    write_file(dir / "counts.yaml", pipeline);
    test = dir / "counts.test.yaml";
    write_file(test, test_text);
  }
};

}  // namespace

TEST_CASE("pel test: a passing file prints PASS per case and exits 0", "[e2e][pel_test]") {
  files f(std::string("pipeline: counts.yaml\ncases:\n  - name: two trades of A") + trades + R"(
    expect:
      out: [{symbol: A, window_start: 0, n: 2, volume: 15}]
  - name: no trades
    expect:
      out: []
)");
  auto r = run_pel({"test", f.test});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.out, "PASS two trades of A\n"));
  CHECK(contains(r.out, "PASS no trades\n"));
  CHECK(contains(r.out, "2 passed, 0 failed\n"));
  // A folder runs every *.test.yaml in it.
  auto d = run_pel({"test", f.dir.path().string()});
  INFO(d.out << d.err);
  CHECK(d.exit_code == 0);
  CHECK(contains(d.out, "2 passed, 0 failed\n"));
}

TEST_CASE("pel test: a failing case exits 1 with a diff naming the record and the field",
          "[e2e][pel_test]") {
  files f(std::string("pipeline: counts.yaml\ncases:\n  - name: wrong volume") + trades + R"(
    expect:
      out:
        - {symbol: A, window_start: 0, n: 2, volume: 16}
        - {symbol: B, n: 1}
  - name: right count
)" + std::string(trades).substr(1) +
          R"(
    expect:
      out: [{symbol: A, n: 2}]
)");
  auto r = run_pel({"test", f.test});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(r.out, "FAIL wrong volume\n"));
  CHECK(contains(r.out, "  out: record 0 (symbol=A, window_start=0) at " + f.test +
                            ":11:11: field volume: expected 16, actual 15\n"));
  CHECK(contains(
      r.out, "  out: missing record 1 (symbol=B) at " + f.test + ":12:11: {symbol: B, n: 1}\n"));
  CHECK(contains(r.out, "PASS right count\n"));
  CHECK(contains(r.out, "1 passed, 1 failed\n"));
}

TEST_CASE("pel test: an invalid test file exits 2 with every error at file:line:column",
          "[e2e][pel_test]") {
  files f(R"(pipeline: counts.yaml
cases:
  - name: typos
    inputs:
      trade: [{ts: 1000, symbol: A}]
      trades:
        - {ts: 1000, symbl: A}
    expect:
      outt: []
    lat: {counts: 1}
)");
  auto r = run_pel({"test", f.test});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err,
                 f.test +
                     ":5:7: cases[0].inputs.trade: no source 'trade' in the pipeline; did you mean "
                     "'trades'?"));
  CHECK(contains(r.err,
                 f.test + ":7:22: cases[0].inputs.trades[0].symbl: unknown field 'symbl' of source "
                          "'trades'; did you mean 'symbol'?"));
  CHECK(contains(r.err,
                 f.test +
                     ":9:7: cases[0].expect.outt: no sink or component 'outt' in the pipeline; did "
                     "you mean 'out'?"));
  // The file's own shape is checked with the rest.
  CHECK(contains(r.err, f.test + ":10:5: cases[0].lat: unknown key 'lat'; did you mean 'late'?"));
  CHECK(contains(r.err, f.test + ": 4 errors, no case run"));
  CHECK_FALSE(contains(r.out, "PASS"));
  // The shape of the file, before the pipeline is looked at.
  write_file(
      f.test,
      "pipeline: counts.yaml\ncases:\n  - name: x\n    expect: {out: []}\n    orderd: true\n");
  auto s = run_pel({"test", f.test});
  CHECK(s.exit_code == 2);
  CHECK(contains(s.err,
                 f.test + ":5:5: cases[0].orderd: unknown key 'orderd'; did you mean 'ordered'?"));
  // A file that does not exist.
  auto m = run_pel({"test", f.dir / "missing.test.yaml"});
  CHECK(m.exit_code == 2);
}

TEST_CASE("pel test: a watermark entry fires a window before the end of the input",
          "[e2e][pel_test]") {
  // The same trades with and without a watermark at 15 s after the first two: with it, the
  // window [0, 10 s) comes out before the third trade; without it, only at the end.
  const std::string third =
      "        - {ts: 12000, symbol: A, price: 1.5, qty: 7, side: buy, trade_id: 3}\n";
  const std::string expect_with = R"(    expect:
      all:
        ordered: true
        records:
          - {kind: trade, trade_id: 1}
          - {kind: trade, trade_id: 2}
          - {kind: null, symbol: A, window_start: 0, n: 2}
          - {kind: trade, trade_id: 3}
          - {kind: null, symbol: A, window_start: 10000, n: 1}
)";
  const std::string expect_without = R"(    expect:
      all:
        ordered: true
        records:
          - {kind: trade, trade_id: 1}
          - {kind: trade, trade_id: 2}
          - {kind: trade, trade_id: 3}
          - {kind: null, symbol: A, window_start: 0, n: 2}
          - {kind: null, symbol: A, window_start: 10000, n: 1}
)";
  files f(std::string("pipeline: counts.yaml\ncases:\n  - name: with a watermark") + trades +
          "        - {watermark: 15000}\n" + third + expect_with + "  - name: without" + trades +
          third + expect_without);
  // Any run: the order depends on the input alone.
  for (int run = 0; run < 3; ++run) {
    auto r = run_pel({"test", f.test});
    INFO("run " << run << "\n" << r.out << r.err);
    CHECK(r.exit_code == 0);
    CHECK(contains(r.out, "PASS with a watermark\n"));
    CHECK(contains(r.out, "PASS without\n"));
  }
  // The two orders differ: the case with the watermark fails on the other's expectation.
  files g(std::string("pipeline: counts.yaml\ncases:\n  - name: with a watermark") + trades +
          "        - {watermark: 15000}\n" + third + expect_without);
  auto r = run_pel({"test", g.test});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(contains(
      r.out, "  all: record 2 at " + g.test + ":16:13: field kind: expected trade, actual null\n"));
  CHECK(contains(r.out, "  all: record 3 (window_start=0) at " + g.test +
                            ":17:13: field n: expected 2, actual null\n"));
}
