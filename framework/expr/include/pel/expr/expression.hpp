#pragma once
/// \file
/// PEL's expression language: parsed once against a schema, compiled to a tree of small
/// nodes that read fields by position. Evaluation never looks at names or text.
/// The language is described in framework/expr/README.md and docs/reference/expressions.md.

#include "pel/core/schema.hpp"
#include "pel/core/value.hpp"
#include "pel/spec/config.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pel::expr {

/// A parse or compile error; `offset` is the byte offset in the expression text.
struct parse_error : std::runtime_error {
  std::size_t offset;  ///< byte offset of the offending token in the expression text
  parse_error(std::size_t off, const std::string& msg) : std::runtime_error(msg), offset(off) {}
};

/// An error while evaluating one record (e.g. "abc" * 2); the caller routes the record to the
/// dead-letter output with what().
struct eval_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class node;  // internal: one compiled operation

/// A compiled expression. Cheap to copy and share (the compiled tree is immutable and held by
/// a shared pointer); safe to evaluate from several threads at once.
class expression {
public:
  /// An empty expression: evaluates to null. `valid()` is false.
  expression() = default;

  /// Evaluates against one row (values in the schema's order) with its event time in ns.
  /// Throws eval_error.
  core::value eval(const core::value* row, std::int64_t event_time_ns) const;

  /// Evaluates without copying when the result is a field or a constant: returns a reference
  /// to the row's cell, to a constant inside the expression, or to `scratch` (which then holds
  /// the result and may be moved from). The reference is valid while the row, the expression
  /// and `scratch` are. Throws eval_error.
  const core::value& eval_ref(const core::value* row, std::int64_t event_time_ns,
                              core::value& scratch) const;

  /// A condition: null is false, a non-bool result is an eval_error.
  bool eval_bool(const core::value* row, std::int64_t t) const;

  /// A number: false when the result is null, an eval_error when it is not a number.
  bool eval_number(const core::value* row, std::int64_t t, double& out) const;

  /// Positions (in the compile schema) of the fields the expression reads, sorted, unique.
  const std::vector<int>& fields_used() const;

  /// The text it was compiled from.
  const std::string& text() const;

  /// The type of a non-null result when it is known at compile time (any result may be null).
  std::optional<core::value_type> result_type() const;

  /// True when the expression is a constant (no fields, no event_time(), no now_ns()).
  bool is_constant() const;

  /// False for a default-constructed expression.
  bool valid() const noexcept { return impl_ != nullptr; }

  struct impl;  ///< internal

private:
  friend expression compile(std::string_view text, const core::schema& input);
  std::shared_ptr<const impl> impl_;
};

/// Parses and compiles `text` against `input`. Throws parse_error (unknown field or function,
/// wrong arity, syntax), with the offset of the offending token and a suggestion when one fits.
expression compile(std::string_view text, const core::schema& input);

/// Compiles the expression param `key` of `cfg`; turns a parse_error into spec::config_error
/// located at the exact line:column inside the YAML scalar (mark.column + offset for plain
/// one-line scalars; +1 for quoted ones).
expression compile_config(const spec::config& cfg, std::string_view key, const core::schema& input);

/// Same for one entry of an expression map (spec::config::named_text).
expression compile_named(const spec::config::named_text& e, const core::schema& input);

/// The closest of `candidates` to `word` as spec::suggest finds it (a likely typo, case
/// ignored), else the shortest that starts with `word` (3 characters or more), else empty:
/// the "did you mean" of unknown fields, functions and aggregates (shared by the operators
/// for their own name checks).
std::string closest_name(std::string_view word, const std::vector<std::string>& candidates);

} // namespace pel::expr
