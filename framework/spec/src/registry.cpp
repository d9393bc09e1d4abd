#include "pel/spec/registry.hpp"

#include <stdexcept>

namespace pel::spec {

namespace {
template <class Map, class Entry>
void insert(Map& m, Entry e) {
  auto name = e.schema.type;
  if (!m.emplace(name, std::move(e)).second)
    throw std::logic_error("component type registered twice: " + name);
}
template <class Map>
auto lookup(const Map& m, std::string_view type) -> const typename Map::mapped_type* {
  auto i = m.find(type);
  return i == m.end() ? nullptr : &i->second;
}
} // namespace

void registry::add_operator(component_schema s, operator_factory f) {
  s.kind = component_kind::operator_;
  insert(operators_, operator_entry{std::move(s), std::move(f)});
}
void registry::add_source(component_schema s, source_factory f) {
  s.kind = component_kind::source;
  s.min_inputs = s.max_inputs = 0;
  insert(sources_, source_entry{std::move(s), std::move(f)});
}
void registry::add_sink(component_schema s, sink_factory f) {
  s.kind = component_kind::sink;
  insert(sinks_, sink_entry{std::move(s), std::move(f)});
}

const registry::operator_entry* registry::find_operator(std::string_view type) const {
  return lookup(operators_, type);
}
const registry::source_entry* registry::find_source(std::string_view type) const {
  return lookup(sources_, type);
}
const registry::sink_entry* registry::find_sink(std::string_view type) const {
  return lookup(sinks_, type);
}

std::vector<std::string> registry::names(component_kind k) const {
  std::vector<std::string> out;
  auto collect = [&](const auto& m) {
    for (const auto& [name, e] : m) out.push_back(name);
  };
  if (k == component_kind::source) collect(sources_);
  else if (k == component_kind::operator_) collect(operators_);
  else collect(sinks_);
  return out;
}

std::vector<const component_schema*> registry::schemas(component_kind k) const {
  std::vector<const component_schema*> out;
  auto collect = [&](const auto& m) {
    for (const auto& [name, e] : m) out.push_back(&e.schema);
  };
  if (k == component_kind::source) collect(sources_);
  else if (k == component_kind::operator_) collect(operators_);
  else collect(sinks_);
  return out;
}

} // namespace pel::spec
