// Validation of a pipeline file against the registry, and the logical graph it describes.
// Every check reports to the reporter and goes on, so one run lists every problem.
#include "pel/spec/pipeline.hpp"

#include "internal.hpp"
#include "pel/spec/common_params.hpp"
#include "pel/spec/registry.hpp"
#include "pel/spec/suggest.hpp"
#include "pel/spec/yaml.hpp"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <deque>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace pel::spec {

const component* pipeline::find(std::string_view name) const {
  for (const auto* section : {&sources, &operators, &sinks})
    for (const auto& c : *section)
      if (c.name == name) return &c;
  return nullptr;
}

namespace {

using detail::reporter;

/// "; did you mean 'X'?" or ";", to go before a list of what is allowed.
std::string hint(std::string_view word, const std::vector<std::string>& candidates) {
  auto dym = did_you_mean(word, candidates);
  return dym.empty() ? ";" : dym;
}

std::string join_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

/// How a value looks in a message: 'text' for scalars, "a list" / "a map" otherwise.
std::string shown(const node& n) {
  if (n.is_scalar()) return (n.quoted ? "the quoted string '" : "'") + n.text + "'";
  if (n.is_null()) return "nothing";
  return std::string("a ") + n.kind_name();
}

/// "a" or "an" before a param type name.
std::string with_article(param_type t) {
  const std::string name = to_string(t);
  if (t == param_type::string_list || t == param_type::string_map ||
      t == param_type::object_list || t == param_type::expression_map)
    return "a " + name;
  const bool vowel = name[0] == 'a' || name[0] == 'e' || name[0] == 'i' || name[0] == 'o';
  return (vowel ? "an " : "a ") + name;
}

bool parse_int(const std::string& text, std::int64_t& v) {
  auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  return r.ec == std::errc() && r.ptr == text.data() + text.size() && !text.empty();
}

bool parse_double(const std::string& text, double& v) {
  if (text.empty()) return false;
  char* end = nullptr;
  v = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(v);
}

std::string bounds_text(const param& p, bool duration) {
  auto fmt = [&](double v) {
    return duration ? detail::format_duration(static_cast<std::int64_t>(v)) : detail::format_number(v);
  };
  if (p.minimum && p.maximum) return "from " + fmt(*p.minimum) + " to " + fmt(*p.maximum);
  if (p.minimum) return "of at least " + fmt(*p.minimum);
  return "of at most " + fmt(*p.maximum);
}

// ---------------------------------------------------------------------------------------------
// Schema checks of one block

class checker {
public:
  explicit checker(reporter& out) : out_(out) {}

  /// Checks the map `n` (null: an empty block) against `params`. Missing keys are reported
  /// at `owner`. With `report_unknown` false, keys not in `params` are let through.
  /// Missing keys named in `own_missing` are left to the caller, which has a better message.
  void block(const node* n, const std::vector<const param*>& params, const std::string& path,
             mark owner, bool report_unknown = true,
             const std::vector<std::string_view>& own_missing = {}) {
    if (n != nullptr && !n->is_null() && !n->is_map()) {
      out_.error(n->at, path, "expected a map of keys, found " + shown(*n));
      return;
    }
    if (n != nullptr && n->is_map()) {
      for (const auto& e : n->entries) {
        const param* p = find(params, e.key);
        if (p == nullptr) {
          if (report_unknown) unknown_key(e, params, path);
          continue;
        }
        value(*e.value, *p, join_path(path, e.key));
      }
    }
    for (const param* p : params) {
      if (!p->required) continue;
      if (std::find(own_missing.begin(), own_missing.end(), p->key) != own_missing.end()) continue;
      const node::entry* e = (n != nullptr && n->is_map()) ? n->find(p->key) : nullptr;
      if (e == nullptr) missing(*p, path, owner);
    }
  }

  /// Checks one value against its param.
  void value(const node& v, const param& p, const std::string& path) {
    if (p.alternative) {
      const bool map = *p.alternative == param_type::object;
      if (map ? v.is_map() : v.is_sequence()) {
        param alt = p;
        alt.type = *p.alternative;
        alt.alternative.reset();
        value(v, alt, path);
        return;
      }
      if (!v.is_scalar() && !v.is_null()) {
        out_.error(v.at, path, "expected " + with_article(p.type) + " or a " +
                                   (map ? "map" : "list of maps") + " of " +
                                   join(keys(pointers(p.fields))) + ", found " + shown(v));
        return;
      }
    }
    switch (p.type) {
      case param_type::string:
      case param_type::expression:
        if (!scalar(v, p, path)) return;
        if (p.type == param_type::expression && v.text.empty()) {
          out_.error(v.at, path, "the expression is empty");
          return;
        }
        if (!p.allowed.empty()) allowed(v, p, path);
        return;
      case param_type::integer: {
        if (!unquoted_scalar(v, p, path)) return;
        std::int64_t i = 0;
        if (!parse_int(v.text, i)) {
          out_.error(v.at, path, "expected an integer, found " + shown(v));
          return;
        }
        bounded(static_cast<double>(i), v, p, path, false);
        return;
      }
      case param_type::number: {
        if (!unquoted_scalar(v, p, path)) return;
        double d = 0;
        if (!parse_double(v.text, d)) {
          out_.error(v.at, path, "expected a number, found " + shown(v));
          return;
        }
        bounded(d, v, p, path, false);
        return;
      }
      case param_type::boolean:
        if (!unquoted_scalar(v, p, path)) return;
        if (v.text != "true" && v.text != "false" && v.text != "yes" && v.text != "no" &&
            v.text != "on" && v.text != "off")
          out_.error(v.at, path, "expected true or false, found " + shown(v));
        return;
      case param_type::duration: {
        if (!scalar(v, p, path)) return;
        std::int64_t ns = 0;
        if (negative(v.text, parse_duration)) {
          out_.error(v.at, path, "must not be negative, found " + shown(v) + "; use a duration " +
                                     (p.minimum || p.maximum ? bounds_text(p, true)
                                                             : std::string("such as 250ms, 1s or 5m")));
          return;
        }
        if (!parse_duration(v.text, ns)) {
          out_.error(v.at, path,
                     "expected a duration such as 250ms, 1s or 5m, found " + shown(v) +
                         (parse_int(v.text, ns) ? "; add a unit (ns, us, ms, s, m, h, d)" : ""));
          return;
        }
        bounded(static_cast<double>(ns), v, p, path, true);
        return;
      }
      case param_type::bytes: {
        if (!scalar(v, p, path)) return;
        std::int64_t b = 0;
        if (negative(v.text, parse_bytes)) {
          out_.error(v.at, path, "must not be negative, found " + shown(v) + "; use a size " +
                                     (p.minimum || p.maximum ? bounds_text(p, false)
                                                             : std::string("such as 512, 64KiB or 1MiB")));
          return;
        }
        if (!parse_bytes(v.text, b)) {
          out_.error(v.at, path, "expected a size such as 512, 64KiB or 1MiB, found " + shown(v));
          return;
        }
        bounded(static_cast<double>(b), v, p, path, false);
        return;
      }
      case param_type::string_list:
        if (v.is_null()) return;
        if (v.is_scalar()) {
          if (!p.allowed.empty()) allowed(v, p, path);
          return;
        }
        if (!v.is_sequence()) {
          out_.error(v.at, path, "expected a string or a list of strings, found " + shown(v));
          return;
        }
        for (std::size_t i = 0; i < v.items.size(); ++i) {
          const node& item = *v.items[i];
          const std::string item_path = path + "[" + std::to_string(i) + "]";
          if (!item.is_scalar())
            out_.error(item.at, item_path, "expected a string, found " + shown(item));
          else if (!p.allowed.empty())
            allowed(item, p, item_path);
        }
        return;
      case param_type::string_map:
      case param_type::expression_map:
        if (v.is_null()) return;
        if (!v.is_map()) {
          out_.error(v.at, path,
                     std::string(p.type == param_type::string_map ? "expected a map of key: value"
                                                                 : "expected a map of name: expression") +
                         ", found " + shown(v));
          return;
        }
        for (const auto& e : v.entries) {
          if (!e.value->is_scalar())
            out_.error(e.value->at, join_path(path, e.key),
                       std::string(p.type == param_type::string_map ? "expected a single value"
                                                                   : "expected an expression") +
                           ", found " + shown(*e.value));
          else if (p.type == param_type::expression_map && e.value->text.empty())
            out_.error(e.value->at, join_path(path, e.key), "the expression is empty");
        }
        return;
      case param_type::object: {
        auto fields = pointers(p.fields);
        block(&v, fields, path, v.at);
        return;
      }
      case param_type::object_list: {
        if (v.is_null()) return;
        if (!v.is_sequence()) {
          out_.error(v.at, path, "expected a list of maps, found " + shown(v));
          return;
        }
        auto fields = pointers(p.fields);
        for (std::size_t i = 0; i < v.items.size(); ++i) {
          const node& item = *v.items[i];
          const std::string item_path = path + "[" + std::to_string(i) + "]";
          if (!item.is_map())
            out_.error(item.at, item_path, "expected a map, found " + shown(item));
          else
            block(&item, fields, item_path, item.at);
        }
        return;
      }
    }
  }

  /// The parameters as pointers, for `block`.
  static std::vector<const param*> pointers(const std::vector<param>& ps) {
    std::vector<const param*> out;
    out.reserve(ps.size());
    for (const auto& p : ps) out.push_back(&p);
    return out;
  }

  static std::vector<std::string> keys(const std::vector<const param*>& params) {
    std::vector<std::string> out;
    for (const param* p : params) out.push_back(p->key);
    std::sort(out.begin(), out.end());
    return out;
  }

  static const param* find(const std::vector<const param*>& params, std::string_view key) {
    for (const param* p : params)
      if (p->key == key) return p;
    return nullptr;
  }

  /// The message for a missing required key; `input` and `type` get their own.
  void missing(const param& p, const std::string& path, mark owner) {
    std::string msg = "missing required key '" + p.key + "' (" + to_string(p.type) + ")";
    if (!p.description.empty()) msg += ": " + p.description;
    out_.error(owner, join_path(path, p.key), msg);
  }

private:
  void unknown_key(const node::entry& e, const std::vector<const param*>& params,
                   const std::string& path) {
    if ((e.key == "strategy" || e.key == "shutdown_timeout") && component_supervision(path)) {
      out_.error(e.key_mark, join_path(path, e.key),
                 "'" + e.key + "' is set for the whole pipeline only; move it to "
                 "`pipeline.supervision." + e.key + "`");
      return;
    }
    const auto allowed_keys = keys(params);
    out_.error(e.key_mark, join_path(path, e.key),
               "unknown key '" + e.key + "'" + hint(e.key, allowed_keys) +
                   " allowed keys: " + join(allowed_keys));
  }

  /// True for the path of a component's own `supervision:` block (`operators.x.supervision`).
  static bool component_supervision(const std::string& path) {
    const std::string suffix = ".supervision";
    if (path.size() <= suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
      return false;
    if (std::count(path.begin(), path.end(), '.') != 2) return false;
    const std::string section = path.substr(0, path.find('.'));
    return section == "sources" || section == "operators" || section == "sinks";
  }

  bool scalar(const node& v, const param& p, const std::string& path) {
    if (v.is_scalar()) return true;
    if (v.is_null())
      out_.error(v.at, path, "no value; write " + with_article(p.type) + " or remove the key");
    else
      out_.error(v.at, path, "expected " + with_article(p.type) + ", found " + shown(v));
    return false;
  }

  bool unquoted_scalar(const node& v, const param& p, const std::string& path) {
    if (!scalar(v, p, path)) return false;
    if (v.quoted) {
      out_.error(v.at, path, "expected " + with_article(p.type) + ", found " + shown(v) +
                                 "; remove the quotes");
      return false;
    }
    return true;
  }

  void allowed(const node& v, const param& p, const std::string& path) {
    if (std::find(p.allowed.begin(), p.allowed.end(), v.text) != p.allowed.end()) return;
    out_.error(v.at, path, "'" + v.text + "' is not allowed here" + hint(v.text, p.allowed) +
                               " allowed values: " + join(p.allowed));
  }

  void bounded(double x, const node& v, const param& p, const std::string& path, bool duration) {
    if (x < 0 && p.minimum && *p.minimum >= 0)
      out_.error(v.at, path, "must not be negative, found " + shown(v) + "; use a value " +
                                 bounds_text(p, duration));
    else if ((p.minimum && x < *p.minimum) || (p.maximum && x > *p.maximum))
      out_.error(v.at, path, v.text + " is out of range; use a value " + bounds_text(p, duration));
  }

  /// True when `text` is a '-' before what `parse` reads as a duration or size: a negative
  /// amount, which gets its own message rather than "expected a duration".
  static bool negative(const std::string& text, bool (*parse)(std::string_view, std::int64_t&) noexcept) {
    std::int64_t ignored = 0;
    return text.size() > 1 && text[0] == '-' && parse(std::string_view(text).substr(1), ignored);
  }

  reporter& out_;
};

// ---------------------------------------------------------------------------------------------
// The whole file

constexpr const char* section_names[] = {"pipeline", "sources", "operators", "sinks"};

/// A component block as found in the file, before it becomes a `component`.
struct block_info {
  std::string name;
  std::string path;
  component_kind kind;
  mark at;
  const node* n = nullptr;
  const component_schema* schema = nullptr;
  bool is_map = true;  ///< false: the block is not a map (reported); the name still exists
  std::vector<output_ref> inputs;
  bool has_input_key = false;
};

class loader {
public:
  loader(const registry& reg, reporter& out, pipeline& p)
    : reg_(reg), out_(out), check_(out), p_(p) {}

  void run() {
    const node& root = *p_.root;
    if (!root.is_map()) {
      out_.error(root.at, "", "the top level must be a map with the sections pipeline, sources, "
                              "operators and sinks; found " + shown(root));
      return;
    }
    const std::vector<std::string> sections(std::begin(section_names), std::end(section_names));
    std::vector<std::string> sorted = sections;
    std::sort(sorted.begin(), sorted.end());
    for (const auto& e : root.entries)
      if (std::find(sections.begin(), sections.end(), e.key) == sections.end())
        out_.error(e.key_mark, e.key,
                   "unknown section '" + e.key + "'" + hint(e.key, sections) +
                       " allowed keys: " + join(sorted));

    const node::entry* settings = root.find("pipeline");
    const auto pipeline_ps = checker::pointers(pipeline_params());
    if (settings != nullptr) {
      check_.block(settings->value.get(), pipeline_ps, "pipeline", settings->key_mark);
      pipeline_block(*settings->value);
    }

    section(root, "sources", component_kind::source);
    section(root, "operators", component_kind::operator_);
    section(root, "sinks", component_kind::sink);
    inputs();
    cycles();
    whole(root, settings);
    if (out_.empty()) {
      fill(settings, {});
    } else if (lenient_) {
      std::vector<std::string> bad;
      if (errors_confined_to_blocks(bad)) {
        fill(settings, bad);
        p_.rejected = std::move(bad);
        plannable_ = true;
      }
    }
  }

  /// Asks `run` to fill the clean components even when others have errors.
  void lenient() { lenient_ = true; }
  bool plannable() const noexcept { return plannable_; }

private:
  /// True when every error so far lies inside a uniquely named component block; collects
  /// the names of those blocks into `bad`.
  bool errors_confined_to_blocks(std::vector<std::string>& bad) const {
    std::unordered_map<std::string, int> seen;
    for (const auto& b : blocks_)
      if (++seen[b.name] > 1) return false;
    for (const auto& d : out_.gathered().items()) {
      const block_info* owner = nullptr;
      for (const auto& b : blocks_) {
        const auto& bp = b.path;
        if (d.path.compare(0, bp.size(), bp) == 0 &&
            (d.path.size() == bp.size() || d.path[bp.size()] == '.' || d.path[bp.size()] == '[')) {
          owner = &b;
          break;
        }
      }
      if (owner == nullptr || !owner->is_map || owner->schema == nullptr) return false;
      if (std::find(bad.begin(), bad.end(), owner->name) == bad.end()) bad.push_back(owner->name);
    }
    return true;
  }

  void section(const node& root, const char* name, component_kind kind) {
    const node::entry* e = root.find(name);
    if (e == nullptr || e->value->is_null()) return;
    const node& s = *e->value;
    if (!s.is_map()) {
      out_.error(s.at, name,
                 std::string("expected a map of ") + to_string(kind) + " name: {type: ...}, found " +
                     shown(s));
      return;
    }
    for (const auto& c : s.entries) component_block(c, name, kind);
  }

  static bool valid_name(const std::string& name) {
    if (name.empty()) return false;
    for (char c : name)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
    return true;
  }

  void component_block(const node::entry& e, const std::string& section, component_kind kind) {
    const std::string path = section + "." + e.key;
    if (!valid_name(e.key))
      out_.error(e.key_mark, path,
                 "invalid name '" + e.key + "'; names may hold letters, digits, '_' and '-' "
                 "(a '.' would be read as a port)");
    auto [it, inserted] = names_.emplace(e.key, blocks_.size());
    if (!inserted) {
      const block_info& first = blocks_[it->second];
      out_.error(e.key_mark, path,
                 "the name '" + e.key + "' is already used by the " + to_string(first.kind) +
                     " at line " + std::to_string(first.at.line) + ", column " +
                     std::to_string(first.at.column) +
                     "; names must be unique across sources, operators and sinks");
    }
    const node& v = *e.value;
    block_info b{e.key, path, kind, e.key_mark, &v, nullptr, true, {}, false};
    if (!v.is_map()) {
      out_.error(v.at, path, std::string("expected a map with at least `type:`, found ") + shown(v));
      b.is_map = false;
      blocks_.push_back(std::move(b));
      return;
    }

    const auto& common = common_params(kind);
    std::vector<const param*> params = checker::pointers(common);
    const node::entry* type = v.find("type");
    bool type_known = false;
    if (type == nullptr) {
      out_.error(e.key_mark, path + ".type",
                 std::string("missing required key 'type'; ") + to_string(kind) + " types: " +
                     type_list(kind));
    } else if (type->value->is_scalar()) {
      b.schema = lookup(kind, type->value->text);
      if (b.schema == nullptr) {
        const auto names = reg_.names(kind);
        out_.error(type->value->at, path + ".type",
                   std::string("unknown ") + to_string(kind) + " type '" + type->value->text + "'" +
                       hint(type->value->text, names) + " " + to_string(kind) +
                       " types: " + type_list(kind));
      } else {
        type_known = true;
        for (const auto& p : b.schema->params)
          if (checker::find(params, p.key) == nullptr) params.push_back(&p);
      }
    }
    // Unknown keys are only known when the type is; `type` and `input` have their own
    // messages when missing.
    check_.block(&v, params, path, e.key_mark, type_known, {"type", "input"});
    if (kind == component_kind::source) event_time_choice(v, path);
    if (const node::entry* sup = v.find("supervision"))
      backoff_order(sup->value.get(), pipeline_supervision_, path + ".supervision");

    if (kind != component_kind::source) {
      const node::entry* in = v.find("input");
      if (in == nullptr) {
        out_.error(e.key_mark, path + ".input",
                   std::string("missing required key 'input'; name what this ") + to_string(kind) +
                       " reads, e.g. `input: <source or operator>`");
      } else {
        b.has_input_key = true;
        refs(*in->value, path + ".input", b.inputs);
      }
    }
    blocks_.push_back(std::move(b));
  }

  /// Checks across keys of the `pipeline:` block: the checkpoint interval is given once, and
  /// the backoff's initial delay is at most its maximum.
  void pipeline_block(const node& s) {
    if (!s.is_map()) return;
    const node::entry* alias = s.find("checkpoint_interval");
    const node::entry* cps = s.find("checkpoints");
    if (alias != nullptr && cps != nullptr && cps->value->is_map() && cps->value->find("interval"))
      out_.error(alias->key_mark, "pipeline.checkpoint_interval",
                 "give either `checkpoint_interval` or `checkpoints.interval`, not both; "
                 "`checkpoint_interval` is the older name of `checkpoints.interval`");
    if (const node::entry* sup = s.find("supervision"); sup && sup->value->is_map()) {
      pipeline_supervision_ = sup->value.get();
      backoff_order(pipeline_supervision_, nullptr, "pipeline.supervision");
    }
  }

  /// The `backoff` map of a supervision block, or nullptr.
  static const node* backoff_of(const node* supervision) {
    if (supervision == nullptr || !supervision->is_map()) return nullptr;
    const node::entry* b = supervision->find("backoff");
    return b && b->value->is_map() ? b->value.get() : nullptr;
  }

  /// `backoff.initial` must not be longer than `backoff.max`. In a component's block, a key it
  /// does not set is the pipeline's (`inherited`), or the default.
  void backoff_order(const node* supervision, const node* inherited, const std::string& path) {
    const node* own = backoff_of(supervision);
    if (own == nullptr) return;
    const node* base = backoff_of(inherited);
    auto value = [&](const char* key, std::int64_t def, std::int64_t& out, const node::entry*& set) {
      set = own->find(key);
      const node::entry* e = set ? set : (base ? base->find(key) : nullptr);
      out = def;
      if (e == nullptr) return true;
      return e->value->is_scalar() && parse_duration(e->value->text, out);
    };
    std::int64_t initial = 0, max = 0;
    const node::entry *set_initial = nullptr, *set_max = nullptr;
    if (!value("initial", backoff_spec{}.initial_ns, initial, set_initial) ||
        !value("max", backoff_spec{}.max_ns, max, set_max) || initial <= max)
      return;
    const node::entry* at = set_initial ? set_initial : set_max;
    if (at == nullptr) return;  // both inherited: reported at the pipeline
    out_.error(at->value->at, path + ".backoff." + at->key,
               "the initial backoff (" + detail::format_duration(initial) +
                   ") is longer than the maximum (" + detail::format_duration(max) +
                   "); lower `initial` or raise `max`");
  }

  /// `event_time` takes a `field` or an `expression`, not both.
  void event_time_choice(const node& v, const std::string& path) {
    const node::entry* et = v.find("event_time");
    if (et == nullptr || !et->value->is_map()) return;
    const node::entry* field = et->value->find("field");
    const node::entry* expression = et->value->find("expression");
    if (field != nullptr && expression != nullptr)
      out_.error(expression->key_mark, path + ".event_time.expression",
                 "give either `field` or `expression`, not both; remove `field: " +
                     (field->value->is_scalar() ? field->value->text : std::string("...")) +
                     "` to take the time from the expression");
  }

  std::string type_list(component_kind kind) const {
    auto names = reg_.names(kind);
    return names.empty() ? std::string("(none registered)") : join(names);
  }

  const component_schema* lookup(component_kind kind, const std::string& type) const {
    switch (kind) {
      case component_kind::source:
        if (auto s = reg_.find_source(type)) return &s->schema;
        return nullptr;
      case component_kind::operator_:
        if (auto o = reg_.find_operator(type)) return &o->schema;
        return nullptr;
      case component_kind::sink:
        if (auto k = reg_.find_sink(type)) return &k->schema;
        return nullptr;
    }
    return nullptr;
  }

  /// `input:` as output references (shape errors are reported by the schema check).
  static void refs(const node& v, const std::string& path, std::vector<output_ref>& out) {
    auto one = [&](const node& n) {
      if (!n.is_scalar()) return;
      output_ref r;
      r.at = n.at;
      const auto dot = n.text.find('.');
      r.component = n.text.substr(0, dot);
      if (dot != std::string::npos) r.port = n.text.substr(dot + 1);
      out.push_back(std::move(r));
    };
    (void)path;
    if (v.is_scalar()) one(v);
    else if (v.is_sequence())
      for (const auto& item : v.items) one(*item);
  }

  // -------------------------------------------------------------------------------------------
  // inputs

  void inputs() {
    std::vector<std::string> readable;
    for (const auto& b : blocks_)
      if (b.kind != component_kind::sink) readable.push_back(b.name);
    std::sort(readable.begin(), readable.end());
    readable.erase(std::unique(readable.begin(), readable.end()), readable.end());
    for (auto& b : blocks_) {
      if (b.kind == component_kind::source || !b.is_map || !b.has_input_key) continue;
      const node& in = *b.n->find("input")->value;
      const std::string path = b.path + ".input";
      if (b.inputs.empty()) {
        if (in.is_null() || (in.is_sequence() && in.items.empty()))
          out_.error(in.is_null() ? b.n->find("input")->key_mark : in.at, path,
                     std::string("the ") + to_string(b.kind) +
                         " reads nothing; name at least one source or operator");
        continue;
      }
      std::unordered_set<std::string> seen;
      for (const auto& r : b.inputs) {
        const std::string text = r.port.empty() ? r.component : r.component + "." + r.port;
        if (!seen.insert(text).second) {
          out_.error(r.at, path, "input '" + text + "' is listed twice; remove one");
          continue;
        }
        auto it = names_.find(r.component);
        if (it == names_.end()) {
          out_.error(r.at, path,
                     "unknown input '" + r.component + "'" + hint(r.component, readable) +
                         (readable.empty() ? std::string(" there is nothing to read: add a source")
                                           : " sources and operators: " + join(readable)));
          continue;
        }
        const block_info& from = blocks_[it->second];
        if (from.kind == component_kind::sink) {
          out_.error(r.at, path,
                     "'" + r.component + "' is a sink and has no output; read a source or an operator");
          continue;
        }
        if (!r.port.empty() && from.schema != nullptr) {
          std::vector<std::string> ports{"dead_letter"};
          for (const auto& port : from.schema->ports) ports.push_back(port);
          std::sort(ports.begin(), ports.end());
          if (std::find(ports.begin(), ports.end(), r.port) == ports.end())
            out_.error(r.at, path,
                       "'" + r.component + "' has no output port '" + r.port + "'" +
                           hint(r.port, ports) + " ports of '" + r.component +
                           "': " + join(ports) + " (or '" + r.component + "' for its main output)");
        }
      }
      if (b.schema != nullptr) count(b, in.is_sequence() ? in.at : b.inputs.front().at, path);
    }
  }

  void count(const block_info& b, mark at, const std::string& path) {
    const int n = static_cast<int>(b.inputs.size());
    const int lo = b.schema->min_inputs;
    const int hi = b.schema->max_inputs;
    if (n >= lo && (hi < 0 || n <= hi)) return;
    auto inputs = [](int k) { return std::to_string(k) + (k == 1 ? " input" : " inputs"); };
    std::string takes;
    if (hi == lo) takes = "exactly " + inputs(lo);
    else if (hi < 0) takes = "at least " + inputs(lo);
    else takes = std::to_string(lo) + " to " + inputs(hi);
    out_.error(at, path,
               std::string(to_string(b.kind)) + " type '" + b.schema->type + "' takes " + takes +
                   ", found " + std::to_string(n));
  }

  // -------------------------------------------------------------------------------------------
  // cycles among operators (Tarjan's strongly connected components, without recursion)

  void cycles() {
    const std::size_t n = blocks_.size();
    // Data flows from an input to its reader: edges[producer] = readers.
    std::vector<std::vector<std::size_t>> edges(n);
    for (std::size_t i = 0; i < n; ++i) {
      if (blocks_[i].kind != component_kind::operator_) continue;
      for (const auto& r : blocks_[i].inputs) {
        auto it = names_.find(r.component);
        if (it == names_.end() || blocks_[it->second].kind != component_kind::operator_) continue;
        auto& e = edges[it->second];
        if (std::find(e.begin(), e.end(), i) == e.end()) e.push_back(i);
      }
    }
    const std::size_t none = static_cast<std::size_t>(-1);
    std::vector<std::size_t> index(n, none), low(n, 0), stack;
    std::vector<bool> on_stack(n, false);
    std::size_t next = 0;
    struct frame {
      std::size_t v;
      std::size_t edge;
    };
    for (std::size_t start = 0; start < n; ++start) {
      if (index[start] != none) continue;
      std::vector<frame> call{{start, 0}};
      index[start] = low[start] = next++;
      stack.push_back(start);
      on_stack[start] = true;
      while (!call.empty()) {
        frame& f = call.back();
        if (f.edge < edges[f.v].size()) {
          const std::size_t w = edges[f.v][f.edge++];
          if (index[w] == none) {
            index[w] = low[w] = next++;
            stack.push_back(w);
            on_stack[w] = true;
            call.push_back({w, 0});
          } else if (on_stack[w]) {
            low[f.v] = std::min(low[f.v], index[w]);
          }
          continue;
        }
        const std::size_t v = f.v;
        call.pop_back();
        if (!call.empty()) low[call.back().v] = std::min(low[call.back().v], low[v]);
        if (low[v] != index[v]) continue;
        std::vector<std::size_t> scc;
        for (;;) {
          const std::size_t w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          scc.push_back(w);
          if (w == v) break;
        }
        const bool self = std::find(edges[v].begin(), edges[v].end(), v) != edges[v].end();
        if (scc.size() > 1 || self) report_cycle(scc, edges);
      }
    }
  }

  void report_cycle(std::vector<std::size_t> scc, const std::vector<std::vector<std::size_t>>& edges) {
    std::sort(scc.begin(), scc.end());  // file order
    const std::size_t first = scc.front();
    // Shortest way round from the first member back to itself, within the component.
    std::unordered_map<std::size_t, std::size_t> parent;
    std::deque<std::size_t> queue{first};
    std::size_t last = first;
    bool found = false;
    while (!queue.empty() && !found) {
      const std::size_t v = queue.front();
      queue.pop_front();
      for (std::size_t w : edges[v]) {
        if (!std::binary_search(scc.begin(), scc.end(), w)) continue;
        if (w == first) {
          last = v;
          found = true;
          break;
        }
        if (parent.emplace(w, v).second) queue.push_back(w);
      }
    }
    std::vector<std::string> path{blocks_[first].name};
    for (std::size_t v = last; v != first; v = parent[v]) path.insert(path.begin() + 1, blocks_[v].name);
    path.push_back(blocks_[first].name);
    std::string members;
    for (std::size_t i = 0; i < path.size(); ++i) members += (i ? " -> " : "") + path[i];
    const node::entry* in = blocks_[first].n->find("input");
    out_.error(in ? in->value->at : blocks_[first].at, blocks_[first].path + ".input",
               "operators read each other in a cycle: " + members +
                   "; an operator cannot read its own output, directly or through others");
  }

  // -------------------------------------------------------------------------------------------
  // the pipeline as a whole

  void whole(const node& root, const node::entry* settings) {
    auto has = [&](component_kind k) {
      for (const auto& b : blocks_)
        if (b.kind == k) return true;
      return false;
    };
    auto where = [&](const char* section) {
      const node::entry* e = root.find(section);
      return e ? e->key_mark : mark{1, 1};
    };
    if (!has(component_kind::source))
      out_.error(where("sources"), "sources",
                 "the pipeline has no sources; add a `sources:` section with at least one source");
    if (!has(component_kind::sink))
      out_.error(where("sinks"), "sinks",
                 "the pipeline has no sinks; add a `sinks:` section with at least one sink");

    const node* s = settings ? settings->value.get() : nullptr;
    if (s == nullptr || !s->is_map()) {
      max_parallelism(nullptr);
      return;
    }
    if (auto dl = s->find("dead_letter"); dl && dl->value->is_scalar()) {
      const std::string& target = dl->value->text;
      std::vector<std::string> sinks;
      for (const auto& b : blocks_)
        if (b.kind == component_kind::sink) sinks.push_back(b.name);
      std::sort(sinks.begin(), sinks.end());
      auto it = names_.find(target);
      if (target != "log" && target != "drop" &&
          (it == names_.end() || blocks_[it->second].kind != component_kind::sink)) {
        std::vector<std::string> candidates{"log", "drop"};
        candidates.insert(candidates.end(), sinks.begin(), sinks.end());
        out_.error(dl->value->at, "pipeline.dead_letter",
                   "'" + target + "' is neither log, drop nor a sink" +
                       hint(target, candidates) +
                       (sinks.empty() ? std::string(" there are no sinks") : " sinks: " + join(sinks)));
      }
    }
    max_parallelism(s);
    scaling(*s);
  }

  /// Every parallelism must fit in the key groups.
  void max_parallelism(const node* s) {
    std::int64_t max = 128;
    std::string where = "the default max_parallelism (128)";
    if (s != nullptr) {
      if (auto m = s->find("max_parallelism")) {
        if (!m->value->is_scalar() || !parse_int(m->value->text, max)) return;
        where = "pipeline.max_parallelism (" + m->value->text + ")";
      }
      if (auto p = s->find("parallelism"); p && p->value->is_scalar()) {
        std::int64_t v = 0;
        if (parse_int(p->value->text, v) && v > max)
          out_.error(p->value->at, "pipeline.parallelism",
                     "parallelism " + p->value->text + " is above " + where +
                         "; lower it or raise max_parallelism");
      }
    }
    for (const auto& b : blocks_) {
      if (!b.is_map) continue;
      auto p = b.n->find("parallelism");
      std::int64_t v = 0;
      if (p && p->value->is_map()) range(b, *p->value, max, where);
      else if (p && p->value->is_scalar() && parse_int(p->value->text, v) && v > max)
        out_.error(p->value->at, b.path + ".parallelism",
                   "parallelism " + p->value->text + " is above " + where +
                       "; lower it or raise max_parallelism");
    }
  }

  /// A `parallelism: {initial, min, max}` map: 1 <= min <= initial <= max <= max_parallelism.
  /// A consistent range is remembered in `ranges_` for the checks of `pipeline.scaling`.
  void range(const block_info& b, const node& m, std::int64_t max_parallelism, const std::string& where) {
    const std::string path = b.path + ".parallelism";
    // Each value as written, or its default; false when it is malformed (reported already).
    auto value = [&](const char* key, std::int64_t def, std::int64_t& out, const node::entry*& e) {
      e = m.find(key);
      out = def;
      if (e == nullptr) return true;
      return e->value->is_scalar() && !e->value->quoted && parse_int(e->value->text, out) && out >= 1 &&
             out <= 1024;
    };
    const node::entry *e_min = nullptr, *e_max = nullptr, *e_initial = nullptr;
    std::int64_t lo = 1, hi = 0, initial = 0;
    if (!value("min", 1, lo, e_min) || !value("max", 0, hi, e_max) || e_max == nullptr) return;
    if (!value("initial", lo, initial, e_initial)) return;
    bool ok = true;
    if (lo > hi) {
      out_.error(e_min ? e_min->value->at : e_max->value->at, path + (e_min ? ".min" : ".max"),
                 "min (" + std::to_string(lo) + ") is above max (" + std::to_string(hi) +
                     "); autoscaling needs min <= initial <= max");
      ok = false;
    } else if (e_initial != nullptr && (initial < lo || initial > hi)) {
      out_.error(e_initial->value->at, path + ".initial",
                 "initial (" + std::to_string(initial) + ") is outside min..max (" +
                     std::to_string(lo) + ".." + std::to_string(hi) + "); use a value from " +
                     std::to_string(lo) + " to " + std::to_string(hi));
      ok = false;
    }
    if (hi > max_parallelism) {
      out_.error(e_max->value->at, path + ".max",
                 "max " + std::to_string(hi) + " is above " + where +
                     "; lower it or raise max_parallelism");
      ok = false;
    }
    if (ok) ranges_[b.name] = {static_cast<std::uint32_t>(lo), static_cast<std::uint32_t>(hi)};
  }

  /// Checks of `pipeline.scaling` across keys and against the components: the schedule's
  /// steps name components with a `parallelism` range and stay inside it, a schedule comes
  /// with `policy: schedule` only, fractions are above 0.
  void scaling(const node& s) {
    const node::entry* sc = s.find("scaling");
    if (sc == nullptr || !sc->value->is_map()) return;
    const node& m = *sc->value;
    for (const char* key : {"target_utilisation", "max_scale_in"}) {
      const node::entry* e = m.find(key);
      double d = 0;
      if (e && e->value->is_scalar() && parse_double(e->value->text, d) && d == 0)
        out_.error(e->value->at, std::string("pipeline.scaling.") + key,
                   std::string(key) + " must be above 0; use a value above 0 and at most 1");
    }
    const node::entry* pol = m.find("policy");
    const bool schedule_policy = pol && pol->value->is_scalar() && pol->value->text == "schedule";
    const bool policy_known = pol == nullptr || (pol->value->is_scalar() &&
                                                 (pol->value->text == "schedule" || pol->value->text == "ds2"));
    const node::entry* steps = m.find("schedule");
    const bool has_steps = steps && steps->value->is_sequence() && !steps->value->items.empty();
    if (policy_known && schedule_policy && !has_steps)
      out_.error(steps ? steps->value->at : pol->value->at, "pipeline.scaling.schedule",
                 "policy: schedule needs steps; add `schedule: [{at: 10s, component: <operator>, "
                 "parallelism: 4}]`");
    if (policy_known && !schedule_policy && steps != nullptr && !steps->value->is_null())
      out_.error(steps->key_mark, "pipeline.scaling.schedule",
                 "a schedule is only read with `policy: schedule`; set `policy: schedule` or "
                 "remove `schedule`");
    if (!has_steps) return;
    std::vector<std::string> scalable;
    for (const auto& [name, r] : ranges_) scalable.push_back(name);
    std::sort(scalable.begin(), scalable.end());
    for (std::size_t i = 0; i < steps->value->items.size(); ++i) {
      const node& step = *steps->value->items[i];
      if (!step.is_map()) continue;
      const std::string path = "pipeline.scaling.schedule[" + std::to_string(i) + "]";
      const node::entry* comp = step.find("component");
      if (comp == nullptr || !comp->value->is_scalar()) continue;
      const std::string& name = comp->value->text;
      auto r = ranges_.find(name);
      if (r == ranges_.end()) {
        auto it = names_.find(name);
        const bool has_map = it != names_.end() && blocks_[it->second].is_map &&
                             blocks_[it->second].n->find("parallelism") &&
                             blocks_[it->second].n->find("parallelism")->value->is_map();
        if (has_map) continue;  // its range has errors of its own
        out_.error(comp->value->at, path + ".component",
                   (it == names_.end() ? "unknown component '" + name + "'" + hint(name, scalable)
                                       : "'" + name + "' has a fixed parallelism;") +
                       (scalable.empty() ? std::string(" no component has a parallelism range; give "
                                                       "one as `parallelism: {min: 1, max: 4}`")
                                         : " components with a parallelism range: " + join(scalable)));
        continue;
      }
      const node::entry* par = step.find("parallelism");
      std::int64_t v = 0;
      if (par && par->value->is_scalar() && parse_int(par->value->text, v) && v >= 1 &&
          (v < r->second.first || v > r->second.second))
        out_.error(par->value->at, path + ".parallelism",
                   "parallelism " + par->value->text + " is outside the range of '" + name + "' (" +
                       std::to_string(r->second.first) + ".." + std::to_string(r->second.second) +
                       "); use a value from " + std::to_string(r->second.first) + " to " +
                       std::to_string(r->second.second));
    }
  }

  // -------------------------------------------------------------------------------------------
  // filling the result (only when the file is clean, so the getters cannot fail)

  /// Fills the result from the checked blocks, leaving out those named in `skip`.
  void fill(const node::entry* settings, const std::vector<std::string>& skip) {
    pipeline_settings& s = p_.settings;
    config c(settings ? settings->value : nullptr, "pipeline", &pipeline_params());
    s.name = c.get_string("name");
    s.parallelism = static_cast<std::uint32_t>(c.get_int("parallelism"));
    s.max_parallelism = static_cast<std::uint32_t>(c.get_int("max_parallelism"));
    s.time = c.get_string("time");
    const config batch = c.child("batch");
    s.batch_size = static_cast<std::uint32_t>(batch.get_int("size"));
    s.batch_linger_ns = batch.get_duration_ns("linger");
    s.channel_credits = static_cast<std::uint32_t>(c.get_int("credits"));
    const config cps = c.child("checkpoints");
    s.checkpoints.interval_ns = c.has("checkpoint_interval") ? c.get_duration_ns("checkpoint_interval")
                                                             : cps.get_duration_ns("interval");
    s.checkpoints.dir = cps.get_string("dir");
    s.checkpoints.keep = static_cast<std::uint32_t>(cps.get_int("keep"));
    s.checkpoints.timeout_ns = cps.get_duration_ns("timeout");
    s.checkpoint_interval_ns = s.checkpoints.interval_ns;
    s.supervision = read_supervision(c.child("supervision"), supervision_spec{}, true);
    s.scaling = read_scaling(c.child("scaling"), c.mark_of("scaling"));
    s.dead_letter = c.get_string("dead_letter");
    s.dead_letter_at = c.mark_of("dead_letter");

    for (const auto& b : blocks_) {
      if (std::find(skip.begin(), skip.end(), b.name) != skip.end()) continue;
      component out;
      out.name = b.name;
      out.type = b.schema->type;
      out.kind = b.kind;
      out.at = b.at;
      out.inputs = b.inputs;
      // Share the root's ownership so the config's node lives as long as the pipeline.
      node_ptr self(p_.root, b.n);
      out.settings = config(self, b.path, &b.schema->params);
      const config common(self, b.path, &common_params(b.kind));
      const node::entry* par = b.n->find("parallelism");
      if (par != nullptr && par->value->is_map()) {
        const config r = common.child("parallelism");
        out.parallelism_min = static_cast<std::uint32_t>(r.get_int("min"));
        out.parallelism_max = static_cast<std::uint32_t>(r.get_int("max"));
        out.parallelism = r.has("initial") ? static_cast<std::uint32_t>(r.get_int("initial"))
                                           : out.parallelism_min;
      } else {
        out.parallelism = common.has("parallelism")
                              ? static_cast<std::uint32_t>(common.get_int("parallelism"))
                              : s.parallelism;
        out.parallelism_min = out.parallelism_max = out.parallelism;
      }
      const std::string part = common.get_string("partition");
      out.partition = part == "forward"     ? partitioning::forward
                      : part == "rebalance" ? partitioning::rebalance
                      : part == "hash"      ? partitioning::hash
                      : part == "broadcast" ? partitioning::broadcast
                                            : partitioning::automatic;
      out.supervision = read_supervision(common.child("supervision"), s.supervision, false);
      if (b.kind == component_kind::sink && common.has("buffer")) {
        const config bc = common.child("buffer");
        buffer_spec bs;
        bs.dir = bc.get_string("dir");
        bs.max_size = static_cast<std::uint64_t>(bc.get_bytes("max_size"));
        bs.drop_oldest = bc.get_string("when_full") == "drop_oldest";
        bs.fsync = bc.get_bool("fsync");
        bs.batch = static_cast<std::uint32_t>(bc.get_int("batch"));
        bs.retry_max_ns = bc.get_duration_ns("retry_max");
        bs.drain_timeout_ns = bc.get_duration_ns("drain_timeout");
        if (const node::entry* e = b.n->find("buffer")) bs.at = e->key_mark;
        out.buffer = bs;
      }
      if (b.kind == component_kind::source && common.has("event_time")) {
        const config et = common.child("event_time");
        event_time_spec t;
        t.field = et.get_string("field");
        t.expression = et.get_string("expression");
        t.settings = et;
        t.format = et.get_string("format");
        t.timezone = et.get_string("timezone");
        t.max_out_of_orderness_ns = et.get_duration_ns("max_out_of_orderness");
        if (et.has("idle_timeout")) t.idle_timeout_ns = et.get_duration_ns("idle_timeout");
        t.max_drift_ns = et.get_duration_ns("max_drift");
        out.event_time = t;
      }
      auto& section = b.kind == component_kind::source     ? p_.sources
                      : b.kind == component_kind::operator_ ? p_.operators
                                                            : p_.sinks;
      section.push_back(std::move(out));
    }
  }

  /// The `pipeline.scaling` block (`at`: where it is, or the pipeline block when absent).
  static scaling_spec read_scaling(const config& c, mark at) {
    scaling_spec out;
    out.at = at;
    out.policy = c.get_string("policy");
    out.interval_ns = c.get_duration_ns("interval");
    out.target_utilisation = c.get_number("target_utilisation");
    out.stabilisation_ns = c.get_duration_ns("stabilisation");
    out.scale_in_delay_ns = c.get_duration_ns("scale_in_delay");
    out.max_scale_in = c.get_number("max_scale_in");
    for (const config& step : c.children("schedule")) {
      scaling_step st;
      st.at_ns = step.get_duration_ns("at");
      st.component = step.get_string("component");
      st.parallelism = static_cast<std::uint32_t>(step.get_int("parallelism"));
      st.at = step.raw() ? step.raw()->at : at;
      out.schedule.push_back(std::move(st));
    }
    return out;
  }

  /// A `supervision:` block over `base`: the pipeline's (`pipeline_level`, every key, with
  /// the defaults) or a component's (only the keys it sets).
  static supervision_spec read_supervision(const config& c, supervision_spec base, bool pipeline_level) {
    auto set = [&](const config& from, std::string_view key) { return pipeline_level || from.has(key); };
    if (pipeline_level) {
      const std::string strategy = c.get_string("strategy");
      base.strategy = strategy == "one_for_all"    ? supervision_strategy::one_for_all
                      : strategy == "rest_for_one" ? supervision_strategy::rest_for_one
                                                   : supervision_strategy::one_for_one;
      base.shutdown_timeout_ns = c.get_duration_ns("shutdown_timeout");
    }
    if (set(c, "intensity")) base.intensity = static_cast<std::uint32_t>(c.get_int("intensity"));
    if (set(c, "period")) base.period_ns = c.get_duration_ns("period");
    if (set(c, "restart")) {
      const std::string restart = c.get_string("restart");
      base.restart = restart == "transient"   ? restart_type::transient
                     : restart == "temporary" ? restart_type::temporary
                                              : restart_type::permanent;
    }
    const config b = c.child("backoff");
    if (set(b, "initial")) base.backoff.initial_ns = b.get_duration_ns("initial");
    if (set(b, "max")) base.backoff.max_ns = b.get_duration_ns("max");
    if (set(b, "multiplier")) base.backoff.multiplier = b.get_number("multiplier");
    if (set(b, "jitter")) base.backoff.jitter = b.get_number("jitter");
    if (set(c, "quarantine_after"))
      base.quarantine_after = static_cast<std::uint32_t>(c.get_int("quarantine_after"));
    return base;
  }

  const registry& reg_;
  reporter& out_;
  checker check_;
  const node* pipeline_supervision_ = nullptr;  ///< the `pipeline.supervision` map, if any
  pipeline& p_;
  std::vector<block_info> blocks_;  ///< every block in file order, duplicates included
  std::unordered_map<std::string, std::size_t> names_;
  /// Components with a consistent `parallelism` range: name -> (min, max).
  std::map<std::string, std::pair<std::uint32_t, std::uint32_t>> ranges_;
  bool lenient_ = false;
  bool plannable_ = false;
};

} // namespace

pipeline load_text(const std::string& text, const std::string& file, const registry& reg) {
  reporter out(file);
  pipeline p;
  p.file = file;
  p.root = detail::read_yaml(text, out);
  if (p.root) {
    loader l(reg, out, p);
    l.run();
  }
  out.throw_if_any();
  return p;
}

check_result check_text(const std::string& text, const std::string& file, const registry& reg) {
  reporter out(file);
  check_result r;
  r.p.file = file;
  try {
    r.p.root = detail::read_yaml(text, out);
  } catch (const spec_error& e) {
    r.diags = e.diags();
    return r;
  }
  if (r.p.root) {
    loader l(reg, out, r.p);
    l.lenient();
    l.run();
    r.plannable = out.empty() || l.plannable();
  }
  r.diags = out.take();
  return r;
}

check_result check_file(const std::string& path, const registry& reg) {
  reporter out(path);
  std::string text;
  if (!detail::read_file(path, text, out)) {
    check_result r;
    r.p.file = path;
    r.diags = out.take();
    return r;
  }
  return check_text(text, path, reg);
}

pipeline load_file(const std::string& path, const registry& reg) {
  reporter out(path);
  std::string text;
  if (!detail::read_file(path, text, out)) out.throw_if_any();
  return load_text(text, path, reg);
}

} // namespace pel::spec
