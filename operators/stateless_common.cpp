#include "stateless_common.hpp"

#include "pel/expr/expression.hpp"

namespace pel::operators {

spec::mark entry_key_mark(const spec::config& cfg, std::string_view key, std::size_t i) {
  const auto& n = cfg.raw();
  if (n && n->is_map())
    if (auto e = n->find(key); e && e->value && e->value->is_map() && i < e->value->entries.size())
      return e->value->entries[i].key_mark;
  return cfg.mark_of(key);
}

int position_of(const std::vector<std::string>& names, std::string_view name) {
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<int>(i);
  return -1;
}

std::vector<std::string> names_of(const core::schema& s) {
  std::vector<std::string> out;
  out.reserve(s.size());
  for (const auto& f : s.fields()) out.push_back(f.name);
  return out;
}

} // namespace pel::operators
