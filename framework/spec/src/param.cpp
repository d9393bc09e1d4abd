#include "pel/spec/param.hpp"

namespace pel::spec {

const char* to_string(param_type t) noexcept {
  switch (t) {
    case param_type::string: return "string";
    case param_type::integer: return "integer";
    case param_type::number: return "number";
    case param_type::boolean: return "boolean";
    case param_type::duration: return "duration";
    case param_type::bytes: return "size";
    case param_type::expression: return "expression";
    case param_type::string_list: return "list of strings";
    case param_type::string_map: return "map of strings";
    case param_type::object: return "object";
    case param_type::object_list: return "list of objects";
    case param_type::expression_map: return "map of expressions";
  }
  return "?";
}

const char* to_string(component_kind k) noexcept {
  switch (k) {
    case component_kind::source: return "source";
    case component_kind::operator_: return "operator";
    case component_kind::sink: return "sink";
  }
  return "?";
}

const param* component_schema::find(std::string_view key) const noexcept {
  for (const auto& p : params)
    if (p.key == key) return &p;
  return nullptr;
}

} // namespace pel::spec
