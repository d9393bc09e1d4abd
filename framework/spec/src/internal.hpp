#pragma once
/// \file
/// Shared by the spec's sources; not installed.

#include "pel/spec/diagnostics.hpp"
#include "pel/spec/node.hpp"
#include "pel/spec/param.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace pel::spec::detail {

/// Gathers diagnostics for one file, keeping at most `max_reported_errors`.
class reporter {
public:
  explicit reporter(std::string file) : file_(std::move(file)) {}

  /// Records one problem.
  void error(mark at, std::string path, std::string message);
  /// True when nothing was reported.
  bool empty() const noexcept { return diags_.empty(); }
  /// The file name used in messages.
  const std::string& file() const noexcept { return file_; }
  /// Sorts what was gathered and throws `spec_error` when anything was reported.
  void throw_if_any();
  /// Sorts what was gathered and hands it over (with the "too many errors" note).
  diagnostics take();
  /// Read access to what was gathered so far (unsorted).
  const diagnostics& gathered() const noexcept { return diags_; }

private:
  std::string file_;
  diagnostics diags_;
  std::size_t dropped_ = 0;
  mark first_dropped_;
};

/// Parses `text` into a node tree, reporting every problem to `out`. Returns nullptr when
/// the document cannot be used at all (then at least one error was reported).
node_ptr read_yaml(const std::string& text, reporter& out);

/// Reads at most `max_file_bytes` of a file into `text`; reports and returns false on failure.
bool read_file(const std::string& path, std::string& text, reporter& out);

/// A bound, default or duration as written in docs and messages: 1024, 0.5, 250ms, 1s.
std::string format_number(double v);
/// Nanoseconds as the largest exact unit: 1500000 → "1500us", 2000000000 → "2s".
std::string format_duration(std::int64_t ns);

/// The pipeline block's parameters with where each common key applies (one table for
/// validation and for docs).
struct common_key {
  param p;
  bool source = false;
  bool operator_ = false;
  bool sink = false;
};
const std::vector<common_key>& common_key_table();

} // namespace pel::spec::detail
