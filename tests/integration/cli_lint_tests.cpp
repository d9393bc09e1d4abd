// `pel lint` and the command line's usage handling, run as a user would: the bad-file corpus
// gives exit 2 and exactly its expected diagnostics, the examples lint clean, `--explain`
// shows the plan, `pel run` on a bad file starts nothing, usage errors exit 2.
#include "e2e_support.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>

using namespace pel::e2e;

namespace {

/// Files with extension `ext` directly in `dir` (relative to the repository root), sorted,
/// as relative paths.
std::vector<std::string> files_in(const std::string& dir, const std::string& ext) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(source_dir()) / dir))
    if (e.is_regular_file() && e.path().extension() == ext)
      out.push_back(dir + "/" + e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> example_files() {
  auto v = files_in("examples/trading", ".yaml");
  auto s = files_in("examples/sensors", ".yaml");
  v.insert(v.end(), s.begin(), s.end());
  return v;
}

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("pel lint: every bad file exits 2 with exactly its expected diagnostics", "[e2e][lint]") {
  auto files = files_in("tests/data/bad", ".yaml");
  REQUIRE(files.size() >= 30);
  std::size_t with_expected = 0;
  for (const auto& f : files) {
    INFO("file: " << f);
    auto r = run_pel({"lint", f}, milliseconds(20000));
    REQUIRE_FALSE(r.timed_out);
    CHECK(r.exit_code == 2);
    CHECK(r.out.empty());  // nothing claims "ok"
    auto expected_path = source_dir() + "/" + f.substr(0, f.size() - 5) + ".expected";
    if (!fs::exists(expected_path)) {
      WARN(f << " has no .expected file; only its exit code is checked");
      continue;
    }
    ++with_expected;
    auto expected = lines_of(read_file(expected_path));
    auto got = lines_of(r.err);
    // The diagnostics, then one summary line.
    REQUIRE(!got.empty());
    CHECK(got.back() == f + ": " + std::to_string(expected.size()) +
                            (expected.size() == 1 ? " error" : " errors") + ", nothing started");
    got.pop_back();
    CHECK(got == expected);
  }
  CHECK(with_expected >= 30);
}

TEST_CASE("pel lint: the bad corpus in one call reports every file and exits 2", "[e2e][lint]") {
  auto files = files_in("tests/data/bad", ".yaml");
  std::vector<std::string> args{"lint", "-q", "examples/trading/vwap.yaml"};
  args.insert(args.end(), files.begin(), files.end());
  auto r = run_pel(args, milliseconds(30000));
  CHECK(r.exit_code == 2);
  for (const auto& f : files) CHECK(contains(r.err, f + ": "));
  CHECK(r.out.empty());  // -q: the good file is not reported
}

TEST_CASE("pel lint: every example is valid", "[e2e][lint]") {
  auto files = example_files();
  REQUIRE(files.size() >= 7);
  std::vector<std::string> args{"lint"};
  args.insert(args.end(), files.begin(), files.end());
  auto r = run_pel(args, milliseconds(30000));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  auto lines = lines_of(r.out);
  REQUIRE(lines.size() == files.size());
  for (std::size_t i = 0; i < files.size(); ++i) CHECK(lines[i].rfind(files[i] + ": ok (", 0) == 0);
}

TEST_CASE("pel lint --explain shows chains and hash partitioning for a keyed example",
          "[e2e][lint]") {
  auto r = run_pel({"lint", "--explain", "examples/trading/vwap.yaml"});
  REQUIRE(r.exit_code == 0);
  // The keyed window's local half is fused behind the generator; partials and records reach
  // the window through a hash on its key; the sink is fused to it.
  CHECK(contains(r.out, "chains"));
  CHECK(contains(r.out, "chain 0 x1: trades -> vwap/local"));
  CHECK(contains(r.out, "chain 1 x2: vwap -> out"));
  CHECK(contains(r.out, "trades -> vwap/local[0]: forward (fused)"));
  CHECK(contains(r.out, "vwap/local -> vwap[0]: hash by symbol"));
  CHECK(contains(r.out, "vwap -> out[0]: forward (fused)"));
  CHECK(contains(r.out, "operator vwap (window), parallelism 2"));
  // Without --explain, only the summary line.
  auto plain = run_pel({"lint", "examples/trading/vwap.yaml"});
  CHECK(plain.exit_code == 0);
  CHECK_FALSE(contains(plain.out, "hash by symbol"));
}

TEST_CASE("pel run on a bad file exits 2 and starts nothing", "[e2e][run]") {
  temp_dir dir;
  auto out_path = dir / "out.json";
  // A file sink and an unknown operator type: the sink must not even be created.
  write_file(dir / "bad.yaml",
             "sources:\n"
             "  ticks: {type: generator, count: 100}\n"
             "operators:\n"
             "  big: {type: filtr, input: ticks, where: qty > 1}\n"
             "sinks:\n"
             "  out: {type: file, input: big, path: " +
                 out_path + "}\n");
  auto r = run_pel({"run", dir / "bad.yaml"});
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, "bad.yaml:4:"));
  CHECK(contains(r.err, "unknown operator type 'filtr'; did you mean 'filter'?"));
  CHECK(contains(r.err, "1 error, nothing started"));
  CHECK_FALSE(contains(r.err, "starting"));
  CHECK(r.out.empty());
  CHECK_FALSE(fs::exists(out_path));

  // A corpus file through `pel run` gives the same diagnostics as lint.
  auto lint = run_pel({"lint", "tests/data/bad/cycle.yaml"});
  auto run = run_pel({"run", "tests/data/bad/cycle.yaml"});
  CHECK(run.exit_code == 2);
  CHECK(run.err == lint.err);

  // One bad file among good ones: nothing runs at all (the good one writes nothing).
  write_file(dir / "good.yaml",
             "sources:\n"
             "  ticks: {type: generator, count: 100}\n"
             "sinks:\n"
             "  out: {type: file, input: ticks, path: " +
                 (dir / "good.json") + "}\n");
  auto both = run_pel({"run", dir / "good.yaml", dir / "bad.yaml"});
  CHECK(both.exit_code == 2);
  CHECK_FALSE(fs::exists(dir / "good.json"));
  // ... and the good one alone runs (so the check above can fail).
  auto good = run_pel({"run", dir / "good.yaml"});
  CHECK(good.exit_code == 0);
  CHECK(lines_of(read_file(dir / "good.json")).size() == 100);
}

TEST_CASE("pel usage errors exit 2, --help exits 0 and teaches", "[e2e][usage]") {
  auto none = run_pel({});
  CHECK(none.exit_code == 2);
  CHECK(contains(none.err + none.out, "subcommand"));

  auto unknown = run_pel({"frobnicate"});
  CHECK(unknown.exit_code == 2);

  auto missing_file = run_pel({"lint", "no/such/pipeline.yaml"});
  CHECK(missing_file.exit_code == 2);
  CHECK(contains(missing_file.err, "no/such/pipeline.yaml"));

  auto no_files = run_pel({"run"});
  CHECK(no_files.exit_code == 2);

  auto bad_option = run_pel({"run", "--threads", "0", "examples/trading/vwap.yaml"});
  CHECK(bad_option.exit_code == 2);
  CHECK(bad_option.out.empty());  // nothing ran

  auto bad_format = run_pel({"--log-format", "xml", "lint", "examples/trading/vwap.yaml"});
  CHECK(bad_format.exit_code == 2);

  auto help = run_pel({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(contains(help.out, "lint"));
  CHECK(contains(help.out, "run"));
  CHECK(contains(help.out, "Exit codes"));

  auto run_help = run_pel({"run", "--help"});
  CHECK(run_help.exit_code == 0);
  CHECK(contains(run_help.out, "--threads"));
  CHECK(contains(run_help.out, "SIGINT"));
}

TEST_CASE("pel --version prints pel's version and its libraries', and exits 0", "[e2e][usage]") {
  auto r = run_pel({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.err.empty());
  auto lines = lines_of(r.out);
  REQUIRE(lines.size() >= 3);
  // `pel X.Y.Z`, then one `library X.Y.Z` line each.
  auto is_version_line = [](const std::string& line, const std::string& name) {
    if (line.rfind(name + " ", 0) != 0) return false;
    const std::string v = line.substr(name.size() + 1);
    return !v.empty() && std::isdigit(static_cast<unsigned char>(v[0])) &&
           std::count(v.begin(), v.end(), '.') >= 1;
  };
  CHECK(is_version_line(lines[0], "pel"));
  CHECK(is_version_line(lines[1], "CAF"));
  CHECK(std::any_of(lines.begin(), lines.end(),
                    [&](const std::string& l) { return is_version_line(l, "yaml-cpp"); }));
  // The help lists it.
  CHECK(contains(run_pel({"--help"}).out, "--version"));
}

TEST_CASE("pel usage errors in option values exit 2 and start nothing", "[e2e][usage]") {
  struct bad_option {
    std::vector<std::string> args;
    std::string message;
  };
  const std::vector<bad_option> cases{
      {{"run", "--embedded-kafka", "ticks:abc", "examples/trading/vwap.yaml"},
       "--embedded-kafka: topic 'ticks:abc': the partition count must be a whole number from 1 "
       "to 10000, found 'abc'"},
      {{"run", "--embedded-kafka", "ticks:4,:2", "examples/trading/vwap.yaml"},
       "--embedded-kafka: topic ':2' has no name; write name:partitions, e.g. ticks:16"},
      {{"run", "--embedded-kafka", "ticks:4,ticks:2", "examples/trading/vwap.yaml"},
       "--embedded-kafka: topic 'ticks' is given twice"},
      {{"run", "--duration", "-5s", "examples/trading/vwap.yaml"},
       "--duration: must not be negative, found '-5s'"},
      {{"run", "--duration", "soon", "examples/trading/vwap.yaml"},
       "--duration: expected a duration such as 30s or 2m, found 'soon'"},
      {{"run", "--threads", "many", "examples/trading/vwap.yaml"}, "--threads"},
      {{"kafka-broker", "--topics", "ticks:0"},
       "--topics: topic 'ticks:0': the partition count must be a whole number from 1 to 10000, "
       "found '0'"},
      {{"kafka-broker", "--port", "http"}, "--port"},
      {{"kafka-broker", "--brokers", "0"}, "--brokers"},
  };
  for (const auto& c : cases) {
    INFO("pel " << c.args[0] << " " << c.args[1] << " " << c.args[2]);
    auto r = run_pel(c.args, milliseconds(20000));
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, c.message));
    CHECK(r.out.empty());  // nothing started: no broker address, no rows
    CHECK_FALSE(contains(r.err, "starting"));
  }
}

TEST_CASE("pel lint: an environment value with a line break stays on its diagnostic's line",
          "[e2e][lint]") {
  temp_dir dir;
  write_file(dir / "p.yaml",
             "sources:\n"
             "  ticks: {type: generator, count: 10}\n"
             "sinks:\n"
             "  out: {type: stdout, input: ticks, format: \"${PEL_TEST_FORMAT}\"}\n");
  process_options env;
  env.env = {"PEL_TEST_FORMAT=json\nx: 1\x1b[2J"};
  auto r = run_pel({"lint", dir / "p.yaml"}, milliseconds(20000), env);
  CHECK(r.exit_code == 2);
  auto lines = lines_of(r.err);
  REQUIRE(lines.size() == 2);  // the diagnostic, then the summary
  CHECK(lines[0] == dir / "p.yaml" +
                        ":4:45: sinks.out.format: 'json\\nx: 1\\x1B[2J' is not allowed here; "
                        "allowed values: json, csv, raw");

  // A file name with a line break, in a usage error and in diagnostics.
  auto missing = run_pel({"lint", "no\nsuch.yaml"}, milliseconds(20000));
  CHECK(missing.exit_code == 2);
  CHECK(lines_of(missing.err).at(0) == "files: File does not exist: no\\nsuch.yaml");
  fs::copy_file(dir / "p.yaml", dir / "new\nline.yaml");
  auto named = run_pel({"lint", dir / "new\nline.yaml"}, milliseconds(20000), env);
  CHECK(named.exit_code == 2);
  auto named_lines = lines_of(named.err);
  REQUIRE(named_lines.size() == 2);
  CHECK(named_lines[0].rfind(dir / "new\\nline.yaml:4:45: sinks.out.format: ", 0) == 0);
  CHECK(named_lines[1] == dir / "new\\nline.yaml: 1 error, nothing started");
}
