// `pel test FILE...`: pipeline unit tests written in YAML (framework/testing). Prints one line
// per case (PASS or FAIL, with a diff under a failure), then `N passed, M failed`. Exit codes:
// 0 all passed, 1 a case failed, 2 a test file (or its pipeline) is invalid.

#include "commands.hpp"
#include "pel/connectors/register.hpp"
#include "pel/operators/register.hpp"
#include "pel/spec/diagnostics.hpp"
#include "pel/spec/registry.hpp"
#include "pel/testing/runner.hpp"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace pel::cli {

namespace {

struct test_args {
  std::vector<std::string> paths;
  bool verbose = false;
};

int run_tests(const test_args& args) {
  // The runtime's own log (a job started, dead letters a test expects) would bury the
  // results; --verbose keeps it at the level `--log-level` chose.
  if (!args.verbose) spdlog::set_level(spdlog::level::err);
  spec::registry reg;
  operators::register_builtin_operators(reg);
  connectors::register_builtin_connectors(reg);

  std::vector<std::string> files;
  for (const auto& p : args.paths) {
    auto found = testing::test_files_in(p);
    if (found.empty()) {
      std::cerr << spec::one_line(p) << ": no *.test.yaml files in this folder\n";
      return 2;
    }
    files.insert(files.end(), found.begin(), found.end());
  }
  std::size_t passed = 0, failed = 0;
  bool invalid = false;
  for (const auto& f : files) {
    if (files.size() > 1) std::cout << spec::one_line(f) << "\n";
    testing::run_options opts;
    opts.on_case = [&](const testing::case_result& c) {
      std::cout << (c.passed ? "PASS " : "FAIL ") << spec::one_line(c.name);
      if (args.verbose) std::printf(" (%.0f ms)", static_cast<double>(c.took_ns) / 1e6);
      std::cout << "\n";
      for (const auto& d : c.diff) std::cout << "  " << spec::one_line(d) << "\n";
      std::cout.flush();
      (c.passed ? passed : failed) += 1;
    };
    auto r = testing::run_test_file(f, reg, opts);
    if (!r.valid()) {
      invalid = true;
      std::cout.flush();
      std::cerr << r.errors.format();
      std::cerr << spec::one_line(f) << ": " << r.errors.size()
                << (r.errors.size() == 1 ? " error" : " errors") << ", no case run\n";
    }
  }
  std::cout << passed << " passed, " << failed << " failed\n";
  if (invalid) return 2;
  return failed > 0 ? 1 : 0;
}

}  // namespace

command test_command() {
  auto args = std::make_shared<test_args>();
  command c;
  c.add = [args](CLI::App& app) {
    auto* sub = app.add_subcommand(
        "test",
        "Run pipeline unit tests written in YAML (*.test.yaml): the real pipeline with its sources "
        "replaced by the cases' records and its sinks captured; see docs/testing.md");
    sub->add_option("files", args->paths, "Test files, or folders holding *.test.yaml files")
        ->required();
    sub->add_flag("-v,--verbose", args->verbose, "Time each case and keep the runtime's log");
    return sub;
  };
  c.run = [args] { return run_tests(*args); };
  return c;
}

}  // namespace pel::cli
