#pragma once
/// \file
/// A read-only view of one component's YAML block, with typed getters that apply the
/// defaults of the component's schema. Components read their settings only through this.

#include "pel/spec/diagnostics.hpp"
#include "pel/spec/node.hpp"
#include "pel/spec/param.hpp"

#include <cstdint>
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
};

} // namespace pel::spec
