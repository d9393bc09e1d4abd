#pragma once
/// \file
/// A read-only view of one component's YAML block, with typed getters that apply the
/// defaults of the component's schema. Components read their settings only through this.

#include "pel/spec/diagnostics.hpp"
#include "pel/spec/node.hpp"
#include "pel/spec/param.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pel::spec {

/// A component's (or a nested object's) settings. Cheap to copy. The getters throw
/// `config_error` with the key's location when a value cannot be converted, so a factory can
/// simply read what it needs; the spec turns the exception into a located diagnostic.
class config {
public:
  config() = default;
  /// `n` may be null (all defaults). `path` is the dotted path of `n`, `params` its schema.
  config(node_ptr n, std::string path, const std::vector<param>* params);

  /// True when the key is written in the file (defaults do not count).
  bool has(std::string_view key) const;

  std::string get_string(std::string_view key) const;
  std::int64_t get_int(std::string_view key) const;
  double get_number(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::int64_t get_duration_ns(std::string_view key) const;
  std::int64_t get_bytes(std::string_view key) const;
  /// A string or a list of strings; empty when absent without default.
  std::vector<std::string> get_string_list(std::string_view key) const;
  /// A map of scalars, in file order.
  std::vector<std::pair<std::string, std::string>> get_string_map(std::string_view key) const;
  /// The nested object `key` as a config with its own schema (all defaults when absent).
  config child(std::string_view key) const;
  /// The list of objects `key`.
  std::vector<config> children(std::string_view key) const;
  /// A map of name → expression text (with each expression's location), in file order.
  struct named_text {
    std::string name;
    std::string text;
    mark at;
    std::string path;
    bool quoted = false;  ///< the expression was a quoted scalar (its text starts one column later)
  };
  std::vector<named_text> get_expression_map(std::string_view key) const;

  /// Location of `key`'s value (or of this block when absent).
  mark mark_of(std::string_view key) const;
  /// Dotted path of `key`.
  std::string path_of(std::string_view key) const;
  /// Throws a config_error located at `key`.
  [[noreturn]] void fail(std::string_view key, const std::string& message) const;

  // --- gathering every error of a block ----------------------------------------------------
  // A factory stops at the first `fail`. Where it can go on after a bad setting (the other
  // keys do not depend on it, or each item of a list stands alone), it reports through
  // `report` or `gather` instead, so that `pel lint` lists every problem of the block at once.
  // The planner builds each prototype from a gathering config and reads what was gathered;
  // a config that does not gather (the runtime's) throws at the first error as before.

  /// Where a gathering config puts its errors, in the order they were found.
  using error_list = std::vector<config_error>;

  /// A copy of this config (and of every child taken from it) that gathers into `errors`.
  config gathering(std::shared_ptr<error_list> errors) const;
  /// True when this config gathers errors instead of throwing them from `report`/`gather`.
  bool gathers() const noexcept { return static_cast<bool>(errors_); }
  /// Records a problem located at `key` and returns, when gathering; else throws like `fail`.
  void report(std::string_view key, const std::string& message) const;
  /// Runs `f()`. When gathering, a `config_error` it throws is recorded and `gather` returns
  /// false; otherwise the error propagates. True when `f` did not throw.
  template <class F>
  bool gather(F&& f) const {
    if (!errors_) {
      f();
      return true;
    }
    try {
      f();
      return true;
    } catch (const config_error& e) {
      errors_->push_back(e);
      return false;
    }
  }

  const node_ptr& raw() const noexcept { return node_; }
  const std::string& path() const noexcept { return path_; }

private:
  const node* value_node(std::string_view key) const;
  const param* find_param(std::string_view key) const;
  /// The text of the value or of the default; fails when required and absent.
  std::string scalar_or_default(std::string_view key, bool& present) const;

  node_ptr node_;
  std::string path_;
  const std::vector<param>* params_ = nullptr;
  std::shared_ptr<error_list> errors_;  ///< set when gathering; shared with children
};

} // namespace pel::spec
