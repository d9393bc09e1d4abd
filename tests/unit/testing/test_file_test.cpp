// The shape of a test file: what is read, and every problem located at file:line:column.
#include "pel/testing/test_file.hpp"
#include "pel/testing/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <string>

using namespace pel::testing;

namespace {

std::string errors_of(const std::string& text) {
  try {
    parse_test_text(text, "t.test.yaml");
    return "";
  } catch (const pel::spec::spec_error& e) {
    return e.diags().format();
  }
}

}  // namespace

TEST_CASE("a test file gives its pipeline, cases, inputs, watermarks and expectations",
          "[testing]") {
  auto t = parse_test_text(R"(pipeline: ../p.yaml
tolerance: 1e-6
cases:
  - name: first
    inputs:
      trades:
        - {ts: 1000, symbol: A}
        - {watermark: "2024-01-02T14:30:05Z"}
        - {at: 2000, symbol: B}
      quotes: {file: data/q.jsonl}
    expect:
      out: [{symbol: A, n: 2}]
      bars: {records: [{symbol: B}], ordered: true, contains: true}
    late: {bars: 1}
    dead_letters: {bars: 0}
    timeout: 5s
)",
                           "dir/t.test.yaml");
  REQUIRE(t.pipeline == "../p.yaml");
  CHECK(t.pipeline_path() == "dir/../p.yaml");
  REQUIRE(t.cases.size() == 1);
  const auto& c = t.cases[0];
  CHECK(c.name == "first");
  CHECK(c.timeout_ns == 5'000'000'000);
  REQUIRE(c.inputs.size() == 2);
  REQUIRE(c.inputs[0].items.size() == 3);
  CHECK_FALSE(c.inputs[0].items[0].watermark);
  CHECK(c.inputs[0].items[0].record->entries.size() == 2);
  CHECK(c.inputs[0].items[1].watermark);
  CHECK(c.inputs[0].items[1].time->text == "2024-01-02T14:30:05Z");
  // `at:` is taken out of the record.
  CHECK(c.inputs[0].items[2].time->text == "2000");
  CHECK(c.inputs[0].items[2].record->entries.size() == 1);
  CHECK(c.inputs[1].file == "data/q.jsonl");
  CHECK(t.resolve(c.inputs[1].file) == "dir/data/q.jsonl");
  REQUIRE(c.expect.size() == 2);
  CHECK(c.expect[0].target == "out");
  CHECK(c.expect[0].records.size() == 1);
  CHECK(c.expect[0].options.tolerance == 1e-6);
  CHECK_FALSE(c.expect[0].options.ordered);
  CHECK(c.expect[1].options.ordered);
  CHECK(c.expect[1].options.contains);
  REQUIRE(c.late.size() == 1);
  CHECK(c.late[0].component == "bars");
  CHECK(c.late[0].count == 1);
  CHECK(c.dead_letters[0].count == 0);
}

TEST_CASE("every problem of a test file's shape is reported at file:line:column", "[testing]") {
  const std::string errs = errors_of(R"(pipeline: p.yaml
tolerence: 1
cases:
  - name: a
    inputs:
      trades:
        - {watermark: 5, ts: 1}
        - 7
    expect:
      out: {recrds: []}
    late: {bars: many}
  - name: a
    expect: {out: []}
    ordered: maybe
)");
  CHECK(
      errs.find("t.test.yaml:2:1: tolerence: unknown key 'tolerence'; did you mean 'tolerance'?") !=
      std::string::npos);
  CHECK(errs.find("t.test.yaml:7:11: cases[0].inputs.trades[0]: a watermark entry holds "
                  "`watermark:` alone") != std::string::npos);
  CHECK(errs.find("t.test.yaml:8:11: cases[0].inputs.trades[1]: expected a record") !=
        std::string::npos);
  CHECK(errs.find("t.test.yaml:10:13: cases[0].expect.out.recrds: unknown key 'recrds'; did you "
                  "mean 'records'?") != std::string::npos);
  CHECK(errs.find("t.test.yaml:11:18: cases[0].late.bars: expected a count") != std::string::npos);
  CHECK(errs.find("t.test.yaml:12:5: cases[1].name: case 'a' is named twice") != std::string::npos);
  CHECK(errs.find("t.test.yaml:14:14: cases[1].ordered: expected true or false") !=
        std::string::npos);
}

TEST_CASE("a test file needs a pipeline and cases that expect something", "[testing]") {
  CHECK(errors_of("cases: []\n").find("t.test.yaml:1:1: pipeline: missing") != std::string::npos);
  CHECK(errors_of("pipeline: p.yaml\ncases: []\n")
            .find("t.test.yaml:2:8: cases: expected a non-empty list") != std::string::npos);
  CHECK(errors_of("pipeline: p.yaml\ncases:\n  - name: x\n").find("case 'x' expects nothing") !=
        std::string::npos);
  // YAML syntax errors come located from the spec's reader.
  CHECK(errors_of("pipeline: [p.yaml\n").find("t.test.yaml:") == 0);
}

TEST_CASE("checking a test file keeps what is well formed beside the problems", "[testing]") {
  pel::testing::temp_dir dir;
  const std::string path = dir.file("t.test.yaml");
  std::ofstream(path)
      << "pipeline: p.yaml\ncases:\n  - name: a\n    expect: {out: []}\n    orderd: true\n";
  pel::spec::diagnostics d;
  auto t = check_test_file(path, d);
  CHECK(t.pipeline == "p.yaml");
  REQUIRE(t.cases.size() == 1);
  CHECK(t.cases[0].expect.size() == 1);
  REQUIRE(d.size() == 1);
  CHECK(d.items()[0].format() ==
        path +
            ":5:5: cases[0].orderd: unknown key 'orderd'; did you mean 'ordered'? "
            "(allowed: name, description, inputs, expect, dead_letters, late, "
            "tolerance, ordered, contains, timeout)");
  // A syntax error leaves nothing to check further.
  std::ofstream(path) << "pipeline: [p.yaml\n";
  pel::spec::diagnostics e;
  CHECK(check_test_file(path, e).pipeline.empty());
  CHECK_FALSE(e.empty());
}
