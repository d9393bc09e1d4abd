#pragma once
/// \file
/// Settings that name fields (private to operators/): one message for an unknown field, the
/// planner's, located at the list item that names it, and reported through the config so that
/// a gathering factory lists every bad name of a block, not only the first. Header-only since
/// every operator family uses it and each family is a static library of its own.

#include "pel/core/schema.hpp"
#include "pel/expr/expression.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/diagnostics.hpp"
#include "pel/spec/node.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace pel::operators {

/// Location of item `i` of the list (or single string) param `key`.
inline spec::mark item_mark(const spec::config& cfg, std::string_view key, std::size_t i) {
  const auto& n = cfg.raw();
  if (n && n->is_map())
    if (auto e = n->find(key);
        e && e->value && e->value->is_sequence() && i < e->value->items.size())
      return e->value->items[i]->at;
  return cfg.mark_of(key);
}

/// Dotted path of item `i` of the list param `key` (`key[i]`), or of `key` when its value is
/// a single string: the paths under which the planner reports the names it checks.
inline std::string item_path(const spec::config& cfg, std::string_view key, std::size_t i) {
  const auto& n = cfg.raw();
  if (n && n->is_map())
    if (auto e = n->find(key); e && e->value && e->value->is_sequence())
      return cfg.path_of(key) + "[" + std::to_string(i) + "]";
  return cfg.path_of(key);
}

/// "unknown field 'x'; did you mean 'y'? (fields: a, b, c)". `of` says whose fields they are
/// when that is not plain ("of the left input" gives "(fields of the left input: ...)").
inline std::string unknown_field_message(std::string_view name,
                                         const std::vector<std::string>& fields,
                                         std::string_view of = {}) {
  std::string msg = "unknown field '" + std::string(name) + "'";
  auto best = expr::closest_name(name, fields);
  if (!best.empty()) msg += "; did you mean '" + best + "'?";
  std::string all;
  for (const auto& f : fields) {
    if (!all.empty()) all += ", ";
    all += f;
  }
  const std::string whose = of.empty() ? std::string("fields") : "fields " + std::string(of);
  msg += fields.empty() ? " (there are no " + whose + ")" : " (" + whose + ": " + all + ")";
  return msg;
}

/// Records a problem located at `at` and `path` when `cfg` gathers; otherwise throws it, as
/// `config::fail` does.
inline void report_at(const spec::config& cfg, spec::mark at, std::string path,
                      const std::string& message) {
  cfg.gather([&] { throw spec::config_error(at, std::move(path), message); });
}

/// Positions in `in` of `names`, the value of the list param `key`, in order. Each unknown
/// name is reported at its own item (see `report_at`) and left out of the result, so a
/// gathering factory can go on building.
inline std::vector<int> find_fields(const spec::config& cfg, std::string_view key,
                                    const std::vector<std::string>& names, const core::schema& in,
                                    std::string_view of = {}) {
  std::vector<int> cols;
  std::vector<std::string> fields;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const int c = in.index_of(names[i]);
    if (c >= 0) {
      cols.push_back(c);
      continue;
    }
    if (fields.empty())
      for (const auto& f : in.fields()) fields.push_back(f.name);
    report_at(cfg, item_mark(cfg, key, i), item_path(cfg, key, i),
              unknown_field_message(names[i], fields, of));
  }
  return cols;
}

}  // namespace pel::operators
