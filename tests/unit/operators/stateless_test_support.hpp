#pragma once
// Helpers for the stateless operator tests: config blocks built by hand (with marks), the
// registry, and batches.

#include "pel/core/operator.hpp"
#include "pel/operators/register.hpp"
#include "pel/spec/diagnostics.hpp"
#include "pel/spec/registry.hpp"
#include "pel/spec/yaml.hpp"

#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace Catch {
/// Values print as JSON in failure messages.
template <>
struct StringMaker<pel::core::value> {
  static std::string convert(const pel::core::value& v) {
    std::string out;
    pel::core::append_json(out, v);
    return out;
  }
};
} // namespace Catch

namespace pel::test {

using core::value;
using core::value_type;

inline value I(std::int64_t i) { return value{i}; }
inline value D(double d) { return value{d}; }
inline value S(const std::string& s) { return value{s}; }
inline value B(bool b) { return value{b}; }
inline const value N{};

/// A scalar node at line:column.
inline spec::node_ptr scalar(std::string text, int line, int column, bool quoted = false) {
  auto n = std::make_shared<spec::node>();
  n->type = spec::node::kind::scalar;
  n->text = std::move(text);
  n->at = {line, column};
  n->quoted = quoted;
  return n;
}

/// A flow list `[a, b]` whose items start at the given columns on `line`.
inline spec::node_ptr list(std::vector<spec::node_ptr> items, int line, int column) {
  auto n = std::make_shared<spec::node>();
  n->type = spec::node::kind::sequence;
  n->at = {line, column};
  n->items = std::move(items);
  return n;
}

/// A block map; each entry's key is written at its value's line, two columns plus the key's
/// length before the value (`key: value`).
inline spec::node_ptr map(std::vector<std::pair<std::string, spec::node_ptr>> entries, int line,
                          int column) {
  auto n = std::make_shared<spec::node>();
  n->type = spec::node::kind::map;
  n->at = {line, column};
  for (auto& [k, v] : entries) {
    spec::mark key_at{v->at.line, v->at.column - static_cast<int>(k.size()) - 2};
    if (v->is_map() && !v->entries.empty()) key_at = {v->at.line - 1, column + 2};
    n->entries.push_back({k, key_at, v});
  }
  return n;
}

/// The stateless operators, registered.
struct stateless_fixture {
  spec::registry reg;
  stateless_fixture() { operators::register_stateless_operators(reg); }

  /// Builds operator `type` (named "op" at path operators.op) from `block`, and opens it.
  core::operator_ptr make(const std::string& type, spec::node_ptr block,
                          std::vector<core::schema_ptr> inputs) const {
    const auto* e = reg.find_operator(type);
    REQUIRE(e != nullptr);
    spec::config cfg(std::move(block), "operators.op", &e->schema.params);
    auto op = e->make(cfg, inputs);
    core::operator_context ctx;
    ctx.name = "op";
    op->open(ctx);
    return op;
  }

  /// What building `type` from `block` with a gathering config reports, in the order found,
  /// each as "line:column path: message".
  std::vector<std::string> gathered(const std::string& type, spec::node_ptr block,
                                    std::vector<core::schema_ptr> inputs) const {
    const auto* e = reg.find_operator(type);
    REQUIRE(e != nullptr);
    auto errors = std::make_shared<spec::config::error_list>();
    spec::config cfg(std::move(block), "operators.op", &e->schema.params);
    e->make(cfg.gathering(errors), inputs);
    std::vector<std::string> out;
    for (const auto& x : *errors)
      out.push_back(std::to_string(x.at().line) + ":" + std::to_string(x.at().column) + " " +
                    x.path() + ": " + x.what());
    return out;
  }

  /// The config_error that building throws (fails the test when it does not throw).
  spec::config_error error(const std::string& type, spec::node_ptr block,
                           std::vector<core::schema_ptr> inputs) const {
    try {
      make(type, std::move(block), std::move(inputs));
    } catch (const spec::config_error& e) {
      return e;
    }
    FAIL("expected a config_error");
    return spec::config_error({}, "", "");
  }
};

inline core::schema_ptr schema_of(std::vector<core::field> f) {
  return std::make_shared<core::schema>(std::move(f));
}

/// A batch of `rows` (each `width` values) with times 1000, 2000, ...
inline core::batch batch_of(std::uint32_t width, std::vector<std::vector<value>> rows) {
  core::batch b(width);
  std::int64_t t = 1000;
  for (auto& r : rows) {
    REQUIRE(r.size() == width);
    b.append_move(r.data(), t);
    t += 1000;
  }
  return b;
}

/// Outputs with the widths the runtime would set.
inline core::outputs outputs_for(const core::operator_base& op) {
  core::outputs out;
  out.main.width = static_cast<std::uint32_t>(op.output_schema()->size());
  out.dead_letter.width = static_cast<std::uint32_t>(core::dead_letter_schema()->size());
  return out;
}

/// Row `r` of `b` as a vector.
inline std::vector<value> row_of(const core::batch& b, std::size_t r) {
  return std::vector<value>(b.row(r), b.row(r) + b.width);
}

inline std::vector<std::string> names(const core::schema& s) {
  std::vector<std::string> v;
  for (const auto& f : s.fields()) v.push_back(f.name);
  return v;
}

/// A string long enough to live on the heap, so a move keeps its buffer.
inline std::string long_text(const std::string& tag) { return tag + std::string(64, 'x'); }

} // namespace pel::test
