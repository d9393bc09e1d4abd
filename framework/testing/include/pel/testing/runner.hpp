#pragma once
/// \file
/// Runs the cases of a pipeline test file: the real planner, runtime, operators and windows,
/// with every source replaced by the case's records (deterministic event time and watermarks)
/// and every sink by a capture; then compares what was captured with what the case expects.

#include "pel/spec/diagnostics.hpp"
#include "pel/spec/registry.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pel::testing {

/// The outcome of one case.
struct case_result {
  std::string name;
  bool passed = false;
  /// Why it failed: one line per difference (a record's field, a missing or unexpected
  /// record, a count), or the pipeline's error.
  std::vector<std::string> diff;
  std::int64_t took_ns = 0;
};

/// The outcome of one test file.
struct file_result {
  std::string file;
  /// Problems of the test file (or of the pipeline it names), each located; when there are
  /// any, no case ran.
  spec::diagnostics errors;
  std::vector<case_result> cases;

  bool valid() const noexcept { return errors.empty(); }
  bool passed() const noexcept;
};

/// Settings of a test run.
struct run_options {
  std::size_t threads = 2;  ///< the runtime's scheduler threads
  /// Called after each case, in order (e.g. to print PASS or FAIL as they come).
  std::function<void(const case_result&)> on_case;
};

/// Reads `path`, plans its pipeline with `reg`, checks every case against the plan (sources,
/// sinks and components named, record fields and values, times), then runs each case. Never
/// throws for problems in the files: they are in `file_result::errors`.
file_result run_test_file(const std::string& path, const spec::registry& reg,
                          const run_options& opts = {});

/// The test files a command-line argument stands for: the file itself, or every
/// `*.test.yaml` under a folder (recursively, sorted).
std::vector<std::string> test_files_in(const std::string& path);

}  // namespace pel::testing
