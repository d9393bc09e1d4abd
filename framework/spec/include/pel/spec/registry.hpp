#pragma once
/// \file
/// The table of component types: name → schema and factory. Built once at start-up by
/// explicit `register_builtin_*` calls (no static initialisers).

#include "pel/core/operator.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace pel::spec {

/// Builds one operator instance for the given input schemas (one per input).
using operator_factory =
    std::function<core::operator_ptr(const config&, const std::vector<core::schema_ptr>&)>;
/// Builds one source instance.
using source_factory = std::function<core::source_ptr(const config&)>;
/// Builds one sink instance.
using sink_factory = std::function<core::sink_ptr(const config&)>;

/// All known component types. Not thread-safe while being filled; read-only afterwards.
class registry {
public:
  struct operator_entry {
    component_schema schema;
    operator_factory make;
  };
  struct source_entry {
    component_schema schema;
    source_factory make;
  };
  struct sink_entry {
    component_schema schema;
    sink_factory make;
  };

  /// Registers a type; throws std::logic_error when the name is taken.
  void add_operator(component_schema s, operator_factory f);
  void add_source(component_schema s, source_factory f);
  void add_sink(component_schema s, sink_factory f);

  const operator_entry* find_operator(std::string_view type) const;
  const source_entry* find_source(std::string_view type) const;
  const sink_entry* find_sink(std::string_view type) const;

  /// Type names of one kind, sorted (for "did you mean" and docs).
  std::vector<std::string> names(component_kind k) const;
  /// Every schema of one kind, sorted by type.
  std::vector<const component_schema*> schemas(component_kind k) const;

private:
  std::map<std::string, operator_entry, std::less<>> operators_;
  std::map<std::string, source_entry, std::less<>> sources_;
  std::map<std::string, sink_entry, std::less<>> sinks_;
};

} // namespace pel::spec
