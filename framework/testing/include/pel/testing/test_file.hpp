#pragma once
/// \file
/// A pipeline test file (`*.test.yaml`) as written: the pipeline it tests and its cases, each
/// with inputs per source and expected outputs per sink or component. Only the file's own
/// shape is checked here; names, fields and values are checked against the plan by the
/// runner (`runner.hpp`). See docs/testing.md for the format.

#include "pel/spec/diagnostics.hpp"
#include "pel/spec/node.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace pel::testing {

/// One entry of a source's input list: a record (a map of field values, optionally `at:`)
/// or a watermark advance (`{watermark: TIME}`).
struct input_item {
  bool watermark = false;
  spec::node_ptr record;  ///< the record's map (without `at`); null for a watermark
  spec::node_ptr time;    ///< `at:` of a record, or the watermark's value; may be null
  spec::mark at;          ///< where the entry is
  std::string path;       ///< dotted path for diagnostics
};

/// The input of one source in one case: a list of items, or a file of JSON or CSV lines.
struct source_input {
  std::string source;
  spec::mark at;  ///< of the source's name
  std::string path;
  std::vector<input_item> items;
  std::string file;  ///< `file:` as written (relative to the test file); empty for a list
  spec::mark file_at;
};

/// Comparison settings; a case inherits the file's, an expectation the case's.
struct compare_options {
  double tolerance = 1e-9;  ///< numbers: |a - b| <= tolerance * max(1, |a|, |b|)
  bool ordered = false;     ///< records in this order (else any order)
  bool contains = false;    ///< the expected records are among the actual ones (else exactly them)
};

/// The expected records of one sink, component, or component port (`name.late`,
/// `name.dead_letter`).
struct expectation {
  std::string target;  ///< as written: `sink`, `component` or `component.port`
  spec::mark at;
  std::string path;
  std::vector<spec::node_ptr> records;  ///< maps of field: value
  compare_options options;
};

/// An expected count of dead letters or late records of one component.
struct count_expectation {
  std::string component;
  spec::mark at;
  std::string path;
  std::uint64_t count = 0;
};

/// One test case.
struct test_case {
  std::string name;
  spec::mark at;
  std::string path;
  std::vector<source_input> inputs;
  std::vector<expectation> expect;
  std::vector<count_expectation> dead_letters;
  std::vector<count_expectation> late;
  std::int64_t timeout_ns = 60'000'000'000;  ///< a case still running then fails
};

/// A whole test file.
struct test_file {
  std::string file;      ///< the test file's name as given
  std::string pipeline;  ///< as written (relative to the test file's folder)
  spec::mark pipeline_at;
  std::vector<test_case> cases;

  /// `pipeline` resolved against the test file's folder.
  std::string pipeline_path() const;
  /// `relative` (a `file:` input) resolved against the test file's folder.
  std::string resolve(const std::string& relative) const;
};

/// Reads a test file. Throws `spec::spec_error` with every problem of its shape, each as
/// `file:line:column: path: message` (unknown keys with "did you mean", wrong types, missing
/// keys, duplicate case names, bad durations and numbers).
test_file parse_test_file(const std::string& path);

/// Same, from text; `file` names it in messages and anchors relative paths.
test_file parse_test_text(const std::string& text, const std::string& file);

/// Like `parse_test_file`, but adds the problems to `diags` instead of throwing, and returns
/// what could be read (cases whose own entries are wrong are kept without them), so that the
/// runner can check the rest against the plan and report every problem at once. The
/// `pipeline` is empty when it could not be read.
test_file check_test_file(const std::string& path, spec::diagnostics& diags);

}  // namespace pel::testing
