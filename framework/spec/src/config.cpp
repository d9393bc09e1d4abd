#include "pel/spec/config.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace pel::spec {

config::config(node_ptr n, std::string path, const std::vector<param>* params)
  : node_(std::move(n)), path_(std::move(path)), params_(params) {}

const node* config::value_node(std::string_view key) const {
  if (!node_ || !node_->is_map()) return nullptr;
  auto e = node_->find(key);
  return e ? e->value.get() : nullptr;
}

const param* config::find_param(std::string_view key) const {
  if (params_ == nullptr) return nullptr;
  for (const auto& p : *params_)
    if (p.key == key) return &p;
  return nullptr;
}

bool config::has(std::string_view key) const {
  auto n = value_node(key);
  return n != nullptr && !n->is_null();
}

std::string config::path_of(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

mark config::mark_of(std::string_view key) const {
  if (auto n = value_node(key)) return n->at;
  return node_ ? node_->at : mark{};
}

void config::fail(std::string_view key, const std::string& message) const {
  throw config_error(mark_of(key), path_of(key), message);
}

config config::gathering(std::shared_ptr<error_list> errors) const {
  config out = *this;
  out.errors_ = std::move(errors);
  return out;
}

void config::report(std::string_view key, const std::string& message) const {
  if (!errors_) fail(key, message);
  errors_->emplace_back(mark_of(key), path_of(key), message);
}

std::string config::scalar_or_default(std::string_view key, bool& present) const {
  present = false;
  if (auto n = value_node(key); n && !n->is_null()) {
    if (!n->is_scalar()) fail(key, std::string("expected a single value, found a ") + n->kind_name());
    present = true;
    return n->text;
  }
  if (auto p = find_param(key); p && p->default_value) {
    present = true;
    return *p->default_value;
  }
  return {};
}

std::string config::get_string(std::string_view key) const {
  bool present;
  return scalar_or_default(key, present);
}

std::int64_t config::get_int(std::string_view key) const {
  bool present;
  auto text = scalar_or_default(key, present);
  if (!present) return 0;
  std::int64_t v = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size())
    fail(key, "expected a whole number, found '" + text + "'");
  return v;
}

double config::get_number(std::string_view key) const {
  bool present;
  auto text = scalar_or_default(key, present);
  if (!present) return 0;
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v))
    fail(key, "expected a number, found '" + text + "'");
  return v;
}

bool config::get_bool(std::string_view key) const {
  bool present;
  auto text = scalar_or_default(key, present);
  if (!present) return false;
  if (text == "true" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "no" || text == "off") return false;
  fail(key, "expected true or false, found '" + text + "'");
}

std::int64_t config::get_duration_ns(std::string_view key) const {
  bool present;
  auto text = scalar_or_default(key, present);
  if (!present) return 0;
  std::int64_t ns;
  if (text.size() > 1 && text[0] == '-' && parse_duration(std::string_view(text).substr(1), ns))
    fail(key, "must not be negative, found '" + text + "'; use a duration such as 250ms, 1s or 5m");
  if (!parse_duration(text, ns))
    fail(key, "expected a duration such as 250ms, 1s or 5m, found '" + text + "'");
  return ns;
}

std::int64_t config::get_bytes(std::string_view key) const {
  bool present;
  auto text = scalar_or_default(key, present);
  if (!present) return 0;
  std::int64_t b;
  if (text.size() > 1 && text[0] == '-' && parse_bytes(std::string_view(text).substr(1), b))
    fail(key, "must not be negative, found '" + text + "'; use a size such as 512, 64KiB or 1MiB");
  if (!parse_bytes(text, b)) fail(key, "expected a size such as 512, 64KiB or 1MiB, found '" + text + "'");
  return b;
}

std::vector<std::string> config::get_string_list(std::string_view key) const {
  std::vector<std::string> out;
  auto n = value_node(key);
  if (n == nullptr || n->is_null()) {
    if (auto p = find_param(key); p && p->default_value && !p->default_value->empty())
      out.push_back(*p->default_value);
    return out;
  }
  if (n->is_scalar()) {
    out.push_back(n->text);
    return out;
  }
  if (!n->is_sequence()) fail(key, std::string("expected a list of strings, found a ") + n->kind_name());
  for (const auto& item : n->items) {
    if (!item->is_scalar()) throw config_error(item->at, path_of(key), "expected a string in this list");
    out.push_back(item->text);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> config::get_string_map(std::string_view key) const {
  std::vector<std::pair<std::string, std::string>> out;
  auto n = value_node(key);
  if (n == nullptr || n->is_null()) return out;
  if (!n->is_map()) fail(key, std::string("expected a map, found a ") + n->kind_name());
  for (const auto& e : n->entries) {
    if (!e.value->is_scalar())
      throw config_error(e.value->at, path_of(key) + "." + e.key, "expected a single value");
    out.emplace_back(e.key, e.value->text);
  }
  return out;
}

config config::child(std::string_view key) const {
  auto p = find_param(key);
  auto e = (node_ && node_->is_map()) ? node_->find(key) : nullptr;
  config out(e ? e->value : nullptr, path_of(key), p ? &p->fields : nullptr);
  out.errors_ = errors_;
  return out;
}

std::vector<config> config::children(std::string_view key) const {
  std::vector<config> out;
  auto p = find_param(key);
  auto e = (node_ && node_->is_map()) ? node_->find(key) : nullptr;
  if (e == nullptr || e->value->is_null()) return out;
  if (!e->value->is_sequence())
    fail(key, std::string("expected a list, found a ") + e->value->kind_name());
  for (std::size_t i = 0; i < e->value->items.size(); ++i) {
    out.emplace_back(e->value->items[i], path_of(key) + "[" + std::to_string(i) + "]",
                     p ? &p->fields : nullptr);
    out.back().errors_ = errors_;
  }
  return out;
}

std::vector<config::named_text> config::get_expression_map(std::string_view key) const {
  std::vector<named_text> out;
  auto n = value_node(key);
  if (n == nullptr || n->is_null()) return out;
  if (!n->is_map()) fail(key, std::string("expected a map of name: expression, found a ") + n->kind_name());
  for (const auto& e : n->entries) {
    if (!e.value->is_scalar())
      throw config_error(e.value->at, path_of(key) + "." + e.key, "expected an expression");
    out.push_back({e.key, e.value->text, e.value->at, path_of(key) + "." + e.key, e.value->quoted});
  }
  return out;
}

} // namespace pel::spec
