#pragma once
/// \file
/// Located errors in pipeline files, gathered before failing.

#include "pel/spec/node.hpp"

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pel::spec {

/// One problem in a pipeline file.
struct diagnostic {
  std::string file;
  mark at;
  std::string path;     ///< dotted path to the key, e.g. "operators.vwap.window.size"
  std::string message;  ///< what is wrong and how to fix it

  /// `file:line:column: path: message`, always one line: the file name, path and message
  /// pass through `one_line`, since any of them may quote what the user wrote.
  std::string format() const;
};

/// `text` made safe to print on one line of a diagnostic: line breaks and tabs become `\n`,
/// `\r` and `\t`, other control characters (and bytes that are not UTF-8) become `\xNN`.
/// Everything else, backslashes included, is kept as it is.
std::string one_line(std::string_view text);

/// All problems found in one file, in file order once sorted.
class diagnostics {
public:
  void add(std::string file, mark at, std::string path, std::string message);
  void add(diagnostic d) { items_.push_back(std::move(d)); }
  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  const std::vector<diagnostic>& items() const noexcept { return items_; }
  /// Sorts by line and column and drops exact repeats.
  void sort();
  /// Every diagnostic formatted, one per line.
  std::string format() const;

private:
  std::vector<diagnostic> items_;
};

/// Thrown while building a component from its config (e.g. an expression that does not
/// compile, an unknown field name). Caught by the spec, turned into a diagnostic.
class config_error : public std::runtime_error {
public:
  config_error(mark at, std::string path, std::string message)
    : std::runtime_error(message), at_(at), path_(std::move(path)) {}
  const mark& at() const noexcept { return at_; }
  const std::string& path() const noexcept { return path_; }

private:
  mark at_;
  std::string path_;
};

/// Thrown by `load` when a file has errors; carries all of them.
class spec_error : public std::runtime_error {
public:
  explicit spec_error(diagnostics d)
    : std::runtime_error(d.format()), diags_(std::move(d)) {}
  const diagnostics& diags() const noexcept { return diags_; }

private:
  diagnostics diags_;
};

} // namespace pel::spec
