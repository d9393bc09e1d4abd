#include "pel/plan/plan.hpp"

#include "pel/core/time_format.hpp"
#include "pel/spec/suggest.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <tuple>

namespace pel::plan {

const char* to_string(partitioning p) noexcept {
  switch (p) {
    case partitioning::forward: return "forward";
    case partitioning::rebalance: return "rebalance";
    case partitioning::hash: return "hash";
    case partitioning::broadcast: return "broadcast";
  }
  return "?";
}

const char* to_string(port_kind p) noexcept {
  switch (p) {
    case port_kind::main: return "";
    case port_kind::dead_letter: return "dead_letter";
    case port_kind::late: return "late";
  }
  return "?";
}

core::schema_ptr node::port_schema(port_kind p) const {
  switch (p) {
    case port_kind::main: return output_schema;
    case port_kind::dead_letter: return core::dead_letter_schema();
    case port_kind::late:
      return input_schemas.empty() ? core::schema_ptr{} : input_schemas.front();
  }
  return {};
}

int physical_plan::find(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].name == name) return static_cast<int>(i);
  return -1;
}

namespace {

const char* section(spec::component_kind k) {
  switch (k) {
    case spec::component_kind::source: return "sources";
    case spec::component_kind::operator_: return "operators";
    case spec::component_kind::sink: return "sinks";
  }
  return "?";
}

std::string path_of(const spec::component& c) { return std::string(section(c.kind)) + "." + c.name; }

/// Builds prototypes, edges and chains; collects diagnostics on the way.
class builder {
public:
  builder(const spec::pipeline& p, const spec::registry& reg) : p_(p), reg_(reg) {
    plan_.file = p.file;
    plan_.settings = p.settings;
    plan_.root = p.root;
  }

  physical_plan run() {
    collect();
    auto order = topological_order();
    std::vector<bool> failed(all_.size(), false);
    std::vector<int> node_of(all_.size(), -1);
    for (int ci : order) {
      const spec::component& c = *all_[ci];
      node n;
      n.name = c.name;
      n.type = c.type;
      n.kind = c.kind;
      n.spec = c;
      n.parallelism = c.parallelism > 0 ? c.parallelism : std::max<std::uint32_t>(1, p_.settings.parallelism);
      if (c.parallelism_min < c.parallelism_max) {
        n.parallelism_min = c.parallelism_min;
        n.parallelism_max = c.parallelism_max;
      } else {
        n.parallelism_min = n.parallelism_max = n.parallelism;
      }
      bool ok = true;
      std::vector<pending_edge> ins;
      for (const auto& ref : c.inputs) {
        auto it = index_.find(ref.component);
        if (it == index_.end() && is_rejected(ref.component)) {
          ok = false;  // left out by the spec with its own errors; nothing more to say
          continue;
        }
        if (it == index_.end()) {
          diag(ref.at, path_of(c) + ".input", "unknown input '" + ref.component + "'");
          ok = false;
          continue;
        }
        int up_ci = it->second;
        int up = node_of[up_ci];
        if (failed[up_ci] || up < 0) {
          ok = false;  // the upstream already has an error; its schema is unknown
          continue;
        }
        port_kind port = port_kind::main;
        const node& un = plan_.nodes[up];
        if (ref.port.empty()) {
          if (un.kind == spec::component_kind::sink) {
            diag(ref.at, path_of(c) + ".input", "'" + un.name + "' is a sink and has no output");
            ok = false;
            continue;
          }
        } else if (ref.port == "dead_letter" && un.kind != spec::component_kind::sink) {
          port = port_kind::dead_letter;
        } else if (ref.port == "late" && un.kind == spec::component_kind::operator_ &&
                   has_port(un, "late")) {
          port = port_kind::late;
        } else {
          diag(ref.at, path_of(c) + ".input",
               "'" + un.name + "' has no output port '" + ref.port +
                   "'; its ports are: " + ports_of(un));
          ok = false;
          continue;
        }
        ins.push_back({up, port});
        n.input_schemas.push_back(un.port_schema(port));
      }
      if (ok) {
        // Fields named by the settings first, each at its place. The component is built
        // anyway, so that its other problems are listed too; what it says again about a name
        // checked here is left out (see `make_prototype`).
        unknown_fields_.clear();
        const bool fields_ok = check_input_fields(c, n);
        ok = make_prototype(c, n) && fields_ok;
        // A refused range is reported; the node goes on with a fixed parallelism, so that
        // what follows it is still checked.
        if (ok && n.autoscales() && !check_range(c)) n.parallelism_min = n.parallelism_max = n.parallelism;
      }
      if (!ok) {
        failed[ci] = true;
        continue;
      }
      split_two_phase(c, n, ins);
      int self = static_cast<int>(plan_.nodes.size());
      node_of[ci] = self;
      for (std::size_t i = 0; i < ins.size(); ++i) {
        edge e;
        e.from = ins[i].from;
        e.port = ins[i].port;
        e.to = self;
        e.input = static_cast<int>(i);
        e.schema = n.input_schemas[i];
        int ei = static_cast<int>(plan_.edges.size());
        plan_.edges.push_back(std::move(e));
        n.in_edges.push_back(ei);
        plan_.nodes[ins[i].from].out_edges.push_back(ei);
        if (ins[i].port == port_kind::dead_letter) plan_.nodes[ins[i].from].dead_letter_unread = false;
      }
      plan_.nodes.push_back(std::move(n));
    }
    route_dead_letters();
    partition_edges();
    if (!diags_.empty()) {
      diags_.sort();
      throw spec::spec_error(std::move(diags_));
    }
    fuse();
    return std::move(plan_);
  }

private:
  struct pending_edge {
    int from;
    port_kind port;
  };

  /// Two-phase aggregation (`operator_base::split`). When a keyed operator's only input
  /// would be hash-partitioned, it is the only reader of its upstream's main output, and the
  /// operator splits, its local half becomes a node of its own, `<name>/local`, right after
  /// the upstream with the upstream's parallelism (a forward edge, so it fuses into the
  /// upstream's chain), and `n` becomes the global half, which reads the partials through
  /// the shuffle. `ins` is redirected to the local half.
  void split_two_phase(const spec::component& c, node& n, std::vector<pending_edge>& ins) {
    if (n.kind != spec::component_kind::operator_ || ins.size() != 1 ||
        ins[0].port != port_kind::main || n.key_columns.size() != 1 || n.key_columns[0].empty())
      return;
    if (c.partition != spec::partitioning::automatic && c.partition != spec::partitioning::hash)
      return;
    const int up = ins[0].from;
    const std::uint32_t up_parallelism = plan_.nodes[up].parallelism;
    if (up_parallelism == 1 && n.parallelism == 1 && !plan_.nodes[up].autoscales() && !n.autoscales())
      return;  // no shuffle to save
    // The local half must fuse behind the upstream, or it adds a hop to every record: the
    // upstream's main output must have no other consumer.
    std::size_t readers = 0;
    for (const spec::component* other : all_)
      for (const auto& ref : other->inputs)
        if (ref.component == plan_.nodes[up].name && ref.port.empty()) ++readers;
    if (readers != 1) return;
    const auto rows = n.input_schemas;
    const spec::operator_factory whole = n.make_operator;
    core::operator_ptr local, global;
    try {
      local = whole(c.settings, rows)->split(core::phase::local);
      if (local) global = whole(c.settings, rows)->split(core::phase::global);
    } catch (const std::exception&) {
      return;  // the prototype was built from the same settings; keep the single operator
    }
    if (!local || !global) return;
    // The local half's partial aggregates are the instance's, not the key groups': it cannot
    // be rescaled, so it cannot fuse into an upstream that autoscales.
    if (plan_.nodes[up].autoscales()) {
      n.notes.push_back("single phase: its input '" + plan_.nodes[up].name +
                        "' autoscales, and a local half (state per instance) cannot follow it");
      return;
    }

    node ln;
    ln.name = n.name + "/local";
    ln.type = n.type;
    ln.kind = n.kind;
    ln.spec = c;
    ln.spec.name = ln.name;
    ln.spec.partition = spec::partitioning::automatic;
    ln.parallelism = up_parallelism;
    ln.parallelism_min = plan_.nodes[up].parallelism_min;
    ln.parallelism_max = plan_.nodes[up].parallelism_max;
    ln.input_schemas = rows;
    ln.output_schema = local->output_schema();
    ln.key_columns.push_back(local->key_columns(0));
    ln.make_operator = [whole](const spec::config& s, const std::vector<core::schema_ptr>& in) {
      return whole(s, in)->split(core::phase::local);
    };
    const int self = static_cast<int>(plan_.nodes.size());
    edge e;
    e.from = up;
    e.port = port_kind::main;
    e.to = self;
    e.input = 0;
    e.schema = rows[0];
    const int ei = static_cast<int>(plan_.edges.size());
    plan_.edges.push_back(std::move(e));
    ln.in_edges.push_back(ei);
    plan_.nodes[up].out_edges.push_back(ei);
    plan_.nodes.push_back(std::move(ln));

    n.input_schemas = {plan_.nodes[self].output_schema};
    n.key_columns = {global->key_columns(0)};
    n.output_schema = global->output_schema();
    n.make_operator = [whole, rows](const spec::config& s, const std::vector<core::schema_ptr>&) {
      return whole(s, rows)->split(core::phase::global);
    };
    ins[0] = {self, port_kind::main};
  }

  /// Where `c`'s `parallelism` is written (the component when built in code).
  static spec::mark parallelism_at(const spec::component& c) {
    return c.settings.raw() && c.settings.raw()->is_map() && c.settings.raw()->find("parallelism")
               ? c.settings.mark_of("parallelism")
               : c.at;
  }

  /// A `parallelism` range is for operators whose state moves by key group.
  bool check_range(const spec::component& c) {
    const std::string where = path_of(c) + ".parallelism";
    if (c.kind == spec::component_kind::sink) {
      diag(parallelism_at(c), where,
           "sinks have a fixed parallelism; autoscaling applies to operators and split sources: "
           "give '" + c.name + "' a number");
      return false;
    }
    if (c.kind == spec::component_kind::source && !rescalable_) {
      diag(parallelism_at(c), where,
           "source '" + c.name + "' (" + c.type + ") cannot autoscale: only a source that assigns "
           "its own splits can (kafka with `assign: true` or `partitions`); give it a number");
      return false;
    }
    if (!rescalable_) {
      diag(parallelism_at(c), where,
           "'" + c.name + "' (" + c.type + ") cannot autoscale: its state is not kept by key "
           "group; give it a fixed parallelism");
      return false;
    }
    return true;
  }

  void diag(spec::mark at, std::string path, std::string msg) {
    diags_.add(p_.file, at, std::move(path), std::move(msg));
  }

  bool has_port(const node& n, std::string_view port) const {
    if (n.kind != spec::component_kind::operator_) return false;
    const auto* e = reg_.find_operator(n.type);
    if (e == nullptr) return false;
    return std::find(e->schema.ports.begin(), e->schema.ports.end(), port) != e->schema.ports.end();
  }

  std::string ports_of(const node& n) const {
    if (n.kind == spec::component_kind::sink) return "(none: a sink has no outputs)";
    std::string s = "main, dead_letter";
    if (has_port(n, "late")) s += ", late";
    return s;
  }

  bool is_rejected(const std::string& name) const {
    return std::find(p_.rejected.begin(), p_.rejected.end(), name) != p_.rejected.end();
  }

  void collect() {
    for (const auto& c : p_.sources) all_.push_back(&c);
    for (const auto& c : p_.operators) all_.push_back(&c);
    for (const auto& c : p_.sinks) all_.push_back(&c);
    for (std::size_t i = 0; i < all_.size(); ++i) index_.emplace(all_[i]->name, static_cast<int>(i));
  }

  // Kahn's algorithm, preferring file order (sources, operators, sinks), so every sink comes
  // after every source and operator.
  std::vector<int> topological_order() {
    std::vector<int> indegree(all_.size(), 0);
    std::vector<std::vector<int>> down(all_.size());
    for (std::size_t i = 0; i < all_.size(); ++i)
      for (const auto& ref : all_[i]->inputs) {
        auto it = index_.find(ref.component);
        if (it == index_.end()) continue;
        ++indegree[i];
        down[it->second].push_back(static_cast<int>(i));
      }
    std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
    for (std::size_t i = 0; i < all_.size(); ++i)
      if (indegree[i] == 0) ready.push(static_cast<int>(i));
    std::vector<int> order;
    while (!ready.empty()) {
      int i = ready.top();
      ready.pop();
      order.push_back(i);
      for (int d : down[i])
        if (--indegree[d] == 0) ready.push(d);
    }
    for (std::size_t i = 0; i < all_.size(); ++i)
      if (indegree[i] > 0)
        diag(all_[i]->at, path_of(*all_[i]) + ".input",
             "'" + all_[i]->name + "' is part of a cycle; inputs must form a directed acyclic graph");
    return order;
  }

  /// Builds one instance of `c` with its factory to learn its output schema and to check its
  /// settings. The factory reads a gathering config, so that every problem it can report
  /// (not only the first) becomes a diagnostic.
  /// Errors about a name that `check_input_fields` reported already (an operator checks its
  /// fields itself too, for when it is built without the planner) are left out.
  bool make_prototype(const spec::component& c, node& n) {
    auto gathered = std::make_shared<spec::config::error_list>();
    const bool ok = build_prototype(c, n, c.settings.gathering(gathered));
    for (const auto& e : *gathered)
      if (!reported_field(e)) diag(e.at(), e.path().empty() ? path_of(c) : e.path(), e.what());
    return ok && gathered->empty();
  }

  /// True when `e` is an unknown-field error at a name `check_field` reported.
  bool reported_field(const spec::config_error& e) const {
    if (std::string_view(e.what()).rfind("unknown field '", 0) != 0) return false;
    for (const auto& [at, path] : unknown_fields_)
      if (at.line == e.at().line && at.column == e.at().column && path == e.path()) return true;
    return false;
  }

  bool build_prototype(const spec::component& c, node& n, const spec::config& settings) {
    try {
      switch (c.kind) {
        case spec::component_kind::source: {
          const auto* e = reg_.find_source(c.type);
          if (e == nullptr) return unknown_type(c);
          n.make_source = e->make;
          auto proto = e->make(settings);
          if (!proto) throw std::runtime_error("the factory returned no source");
          n.output_schema = proto->output_schema();
          if (!n.output_schema) throw std::runtime_error("the source declares no output schema");
          n.blocking = proto->blocking();
          rescalable_ = proto->rescalable();
          // Event-time errors are reported, but the schema is known: downstream is checked.
          if (c.event_time) {
            const auto& et = *c.event_time;
            // Each problem at the value it is about (at the source when built in code).
            auto at = [&](std::string_view key) {
              return et.settings.raw() ? et.settings.mark_of(key) : c.at;
            };
            const std::string where = path_of(c) + ".event_time";
            core::time_format fmt;
            std::int64_t off = 0;
            if (!core::parse_time_format(et.format, fmt))
              diag(at("format"), where + ".format",
                   "unknown time format '" + et.format +
                       "'; use auto, epoch_s, epoch_ms, epoch_us, epoch_ns, iso8601 or datetime");
            if (!core::parse_utc_offset(et.timezone, off))
              diag(at("timezone"), where + ".timezone",
                   "unknown time zone '" + et.timezone +
                       "'; use UTC or a fixed offset such as +08:00 (zone names are not supported)");
            if (!et.field.empty() && !et.expression.empty())
              diag(at("expression"), where + ".expression",
                   "give either `field` or `expression`, not both");
            else if (!et.field.empty()) {
              n.event_time_column = n.output_schema->index_of(et.field);
              // A number in a known epoch unit is an event time for the tables downstream.
              std::int64_t unit = 0;
              switch (fmt) {
                case core::time_format::epoch_s: unit = 1'000'000'000; break;
                case core::time_format::epoch_ms: unit = 1'000'000; break;
                case core::time_format::epoch_us: unit = 1'000; break;
                case core::time_format::epoch_ns: unit = 1; break;
                default: break;
              }
              if (n.event_time_column >= 0 && unit != 0) {
                auto marked = std::make_shared<core::schema>(*n.output_schema);
                marked->set_time_unit(static_cast<std::size_t>(n.event_time_column), unit);
                n.output_schema = std::move(marked);
              }
              if (n.event_time_column < 0)
                diag(at("field"), where + ".field",
                     "unknown field '" + et.field + "'" +
                         spec::did_you_mean(et.field, field_names(*n.output_schema)) +
                         " (the source's fields: " + n.output_schema->names() + ")");
            } else if (!et.expression.empty()) {
              compile_event_time(c, n);
            }
          }
          break;
        }
        case spec::component_kind::operator_: {
          const auto* e = reg_.find_operator(c.type);
          if (e == nullptr) return unknown_type(c);
          n.make_operator = e->make;
          auto proto = e->make(settings, n.input_schemas);
          if (!proto) throw std::runtime_error("the factory returned no operator");
          n.output_schema = proto->output_schema();
          if (!n.output_schema) throw std::runtime_error("the operator declares no output schema");
          for (std::size_t i = 0; i < n.input_schemas.size(); ++i)
            n.key_columns.push_back(proto->key_columns(static_cast<int>(i)));
          rescalable_ = proto->rescalable();
          break;
        }
        case spec::component_kind::sink: {
          const auto* e = reg_.find_sink(c.type);
          if (e == nullptr) return unknown_type(c);
          n.make_sink = e->make;
          auto proto = e->make(settings);
          if (!proto) throw std::runtime_error("the factory returned no sink");
          if (c.buffer && proto->exactly_once()) {
            diag(c.buffer->at, path_of(c) + ".buffer",
                 "a buffer delivers at least once (it re-sends what the sink had not confirmed "
                 "before a failure), which `delivery: exactly_once` would not hold to: remove "
                 "the buffer or use `delivery: at_least_once`");
            return false;
          }
          if (c.buffer) {
            if (const std::string why = proto->buffer_refusal(); !why.empty()) {
              diag(c.buffer->at, path_of(c) + ".buffer", "this sink cannot have a buffer: " + why);
              return false;
            }
          }
          n.key_columns.resize(n.input_schemas.size());
          break;
        }
      }
    } catch (const spec::config_error& e) {
      if (!reported_field(e)) diag(e.at(), e.path().empty() ? path_of(c) : e.path(), e.what());
      return false;
    } catch (const spec::spec_error& e) {
      for (const auto& d : e.diags().items()) diags_.add(d);
      return false;
    } catch (const std::exception& e) {
      diag(c.at, path_of(c), e.what());
      return false;
    }
    return true;
  }

  /// Checks every setting of `c` that names a field of its input (`param::input_field`)
  /// against the input schemas, reporting each unknown name at its place. False on any.
  bool check_input_fields(const spec::component& c, const node& n) {
    const spec::component_schema* schema = schema_of(c);
    if (schema == nullptr || n.input_schemas.empty()) return true;
    return check_fields_in(c, n, c.settings, schema->params);
  }

  bool check_fields_in(const spec::component& c, const node& n, const spec::config& cfg,
                       const std::vector<spec::param>& params) {
    bool ok = true;
    for (const auto& p : params) {
      if (p.type == spec::param_type::object && !p.fields.empty()) {
        ok = check_fields_in(c, n, cfg.child(p.key), p.fields) && ok;
        continue;
      }
      if (!p.input_field || !cfg.has(p.key)) continue;
      const spec::node::entry* e = cfg.raw()->find(p.key);
      const spec::node& v = *e->value;
      if (v.is_scalar()) {
        ok = check_field(c, n, *p.input_field, v.text, v.at, cfg.path_of(p.key)) && ok;
      } else if (v.is_sequence()) {
        for (std::size_t i = 0; i < v.items.size(); ++i)
          if (v.items[i]->is_scalar())
            ok = check_field(c, n, *p.input_field, v.items[i]->text, v.items[i]->at,
                             cfg.path_of(p.key) + "[" + std::to_string(i) + "]") &&
                 ok;
      }
    }
    return ok;
  }

  /// `name` must be a field of input `input` (-1: of every input) of `n`.
  bool check_field(const spec::component& c, const node& n, int input, const std::string& name,
                   spec::mark at, const std::string& path) {
    bool ok = true;
    const bool several = n.input_schemas.size() > 1;
    for (std::size_t i = 0; i < n.input_schemas.size(); ++i) {
      if (input >= 0 && static_cast<std::size_t>(input) != i) continue;
      const core::schema_ptr& s = n.input_schemas[i];
      if (!s || s->index_of(name) >= 0) continue;
      ok = false;
      unknown_fields_.emplace_back(at, path);
      std::string from;
      if (several && i < c.inputs.size())
        from = " of input '" + c.inputs[i].component +
               (c.inputs[i].port.empty() ? "" : "." + c.inputs[i].port) + "'";
      diag(at, path,
           "unknown field '" + name + "'" + did_you_mean_field(name, *s) + " (fields" + from +
               ": " + s->names() + ")");
    }
    return ok;
  }

  const spec::component_schema* schema_of(const spec::component& c) const {
    switch (c.kind) {
      case spec::component_kind::source:
        if (auto e = reg_.find_source(c.type)) return &e->schema;
        return nullptr;
      case spec::component_kind::operator_:
        if (auto e = reg_.find_operator(c.type)) return &e->schema;
        return nullptr;
      case spec::component_kind::sink:
        if (auto e = reg_.find_sink(c.type)) return &e->schema;
        return nullptr;
    }
    return nullptr;
  }

  /// "; did you mean 'x'?" for an unknown field, found as the operators find it (a likely
  /// typo, or the start of a name), so both say the same.
  static std::string did_you_mean_field(std::string_view name, const core::schema& s) {
    auto best = expr::closest_name(name, field_names(s));
    return best.empty() ? std::string() : "; did you mean '" + best + "'?";
  }

  static std::vector<std::string> field_names(const core::schema& s) {
    std::vector<std::string> out;
    for (const auto& f : s.fields()) out.push_back(f.name);
    return out;
  }

  /// Compiles `event_time.expression` against the source's schema; errors are reported at
  /// their place in the expression (or at the source when the pipeline was built in code).
  void compile_event_time(const spec::component& c, node& n) {
    const auto& et = *c.event_time;
    try {
      if (et.settings.raw())
        n.event_time_expression = expr::compile_config(et.settings, "expression", *n.output_schema);
      else
        n.event_time_expression = expr::compile(et.expression, *n.output_schema);
    } catch (const spec::config_error& e) {
      diag(e.at(), e.path().empty() ? path_of(c) + ".event_time.expression" : e.path(), e.what());
    } catch (const expr::parse_error& e) {
      diag(et.settings.raw() ? et.settings.mark_of("expression") : c.at,
           path_of(c) + ".event_time.expression", e.what());
    }
  }

  bool unknown_type(const spec::component& c) {
    diag(c.at, path_of(c) + ".type", "unknown " + std::string(to_string(c.kind)) + " type '" + c.type + "'");
    return false;
  }

  void route_dead_letters() {
    const std::string& mode = p_.settings.dead_letter;
    if (mode == "log" || mode.empty()) {
      plan_.dead_letters = dead_letter_mode::log;
      return;
    }
    if (mode == "drop") {
      plan_.dead_letters = dead_letter_mode::drop;
      return;
    }
    int s = plan_.find(mode);
    if (s < 0 || plan_.nodes[s].kind != spec::component_kind::sink) {
      // An unknown name whose component failed to build was already reported.
      if (index_.count(mode) == 0 || all_[index_[mode]]->kind != spec::component_kind::sink)
        diag(p_.settings.dead_letter_at, "pipeline.dead_letter",
             "'" + mode + "' is not a sink of this pipeline that could be built; fix that sink "
             "(its errors are listed), or use log or drop");
      return;
    }
    plan_.dead_letters = dead_letter_mode::sink;
    plan_.dead_letter_sink = s;
    node& sink = plan_.nodes[s];
    for (std::size_t i = 0; i < plan_.nodes.size(); ++i) {
      node& n = plan_.nodes[i];
      if (n.kind == spec::component_kind::sink || !n.dead_letter_unread) continue;
      edge e;
      e.from = static_cast<int>(i);
      e.port = port_kind::dead_letter;
      e.to = s;
      e.input = static_cast<int>(sink.input_schemas.size());
      e.schema = core::dead_letter_schema();
      e.implicit = true;
      int ei = static_cast<int>(plan_.edges.size());
      plan_.edges.push_back(std::move(e));
      sink.input_schemas.push_back(core::dead_letter_schema());
      sink.key_columns.emplace_back();
      sink.in_edges.push_back(ei);
      n.out_edges.push_back(ei);
      n.dead_letter_unread = false;
    }
  }

  void partition_edges() {
    for (auto& e : plan_.edges) {
      const node& up = plan_.nodes[e.from];
      const node& down = plan_.nodes[e.to];
      const std::vector<int> keys =
          e.input < static_cast<int>(down.key_columns.size()) ? down.key_columns[e.input] : std::vector<int>{};
      bool same = up.parallelism == down.parallelism;
      // Autoscaling changes the instance count of one side alone: never one to one.
      const node* scaling = up.autoscales() ? &up : down.autoscales() ? &down : nullptr;
      spec::partitioning forced = e.implicit ? spec::partitioning::automatic : down.spec.partition;
      std::string where = path_of(down.spec) + ".partition";
      switch (forced) {
        case spec::partitioning::forward:
          if (scaling != nullptr)
            diag(down.spec.settings.raw() ? down.spec.settings.mark_of("partition") : down.spec.at, where,
                 "the edge from '" + up.name + "' to '" + down.name + "' cannot be forward: '" +
                     scaling->name + "' autoscales; use rebalance or hash, or a fixed parallelism");
          else if (!same)
            diag(down.spec.at, where,
                 "partition: forward needs equal parallelism, but '" + up.name + "' has " +
                     std::to_string(up.parallelism) + " and '" + down.name + "' has " +
                     std::to_string(down.parallelism) + "; use rebalance or equal parallelism");
          e.part = partitioning::forward;
          break;
        case spec::partitioning::rebalance: e.part = partitioning::rebalance; break;
        case spec::partitioning::broadcast: e.part = partitioning::broadcast; break;
        case spec::partitioning::hash:
          if (keys.empty())
            diag(down.spec.at, where,
                 "partition: hash needs key fields, but '" + down.name +
                     "' is not keyed on this input; use rebalance or a keyed operator");
          e.part = partitioning::hash;
          e.key_columns = keys;
          break;
        case spec::partitioning::automatic:
          if (e.implicit) e.part = partitioning::rebalance;
          else if (!keys.empty() && !(up.parallelism == 1 && down.parallelism == 1 && !scaling)) {
            e.part = partitioning::hash;
            e.key_columns = keys;
          } else if (same && !scaling) e.part = partitioning::forward;
          else e.part = partitioning::rebalance;
          break;
      }
      // One instance on each side: every strategy delivers the same rows to the same place.
      // An explicit `partition: rebalance` still keeps the actor boundary: users split a
      // chain that way to run its halves on two cores.
      if (up.parallelism == 1 && down.parallelism == 1 && !scaling && e.part != partitioning::forward &&
          forced != spec::partitioning::rebalance)
        e.part = partitioning::forward, e.key_columns.clear();
    }
  }

  void fuse() {
    std::vector<int> main_consumers(plan_.nodes.size(), 0);
    for (const auto& e : plan_.edges)
      if (e.port == port_kind::main) ++main_consumers[e.from];
    std::vector<int> fused_out(plan_.nodes.size(), -1);
    std::vector<bool> fused_in(plan_.nodes.size(), false);
    for (std::size_t i = 0; i < plan_.edges.size(); ++i) {
      auto& e = plan_.edges[i];
      const node& up = plan_.nodes[e.from];
      const node& down = plan_.nodes[e.to];
      e.fused = e.port == port_kind::main && main_consumers[e.from] == 1 &&
                down.in_edges.size() == 1 && e.part == partitioning::forward &&
                up.parallelism == down.parallelism && up.parallelism_min == down.parallelism_min &&
                up.parallelism_max == down.parallelism_max;
      if (e.fused) {
        fused_out[e.from] = e.to;
        fused_in[e.to] = true;
      }
    }
    for (std::size_t i = 0; i < plan_.nodes.size(); ++i) {
      if (fused_in[i]) continue;
      chain c;
      c.parallelism = plan_.nodes[i].parallelism;
      c.parallelism_min = plan_.nodes[i].parallelism_min;
      c.parallelism_max = plan_.nodes[i].parallelism_max;
      int cur = static_cast<int>(i);
      int ci = static_cast<int>(plan_.chains.size());
      while (cur >= 0) {
        plan_.nodes[cur].chain = ci;
        plan_.nodes[cur].chain_position = static_cast<int>(c.nodes.size());
        c.nodes.push_back(cur);
        cur = fused_out[cur];
      }
      plan_.chains.push_back(std::move(c));
    }
  }

  const spec::pipeline& p_;
  const spec::registry& reg_;
  physical_plan plan_;
  spec::diagnostics diags_;
  /// Where `check_field` reported unknown names of the component being built: (at, path).
  std::vector<std::pair<spec::mark, std::string>> unknown_fields_;
  bool rescalable_ = false;  ///< `rescalable()` of the operator prototype built last
  std::vector<const spec::component*> all_;
  std::map<std::string, int, std::less<>> index_;
};

std::string duration_text(std::int64_t ns) {
  if (ns == 0) return "0";
  if (ns % 1'000'000'000 == 0) return std::to_string(ns / 1'000'000'000) + "s";
  if (ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
  if (ns % 1'000 == 0) return std::to_string(ns / 1'000) + "us";
  return std::to_string(ns) + "ns";
}

/// `2`, or `2 (1..4)` for a range.
std::string parallelism_text(std::uint32_t p, std::uint32_t lo, std::uint32_t hi) {
  std::string out = std::to_string(p);
  if (lo < hi) out += " (" + std::to_string(lo) + ".." + std::to_string(hi) + ")";
  return out;
}

std::string fields_text(const core::schema_ptr& s) {
  if (!s) return "-";
  std::string out;
  for (const auto& f : s->fields()) {
    if (!out.empty()) out += ", ";
    out += f.name;
    if (f.type) {
      out += ':';
      out += core::to_string(*f.type);
    }
  }
  return "[" + out + "]";
}

std::string port_name(const physical_plan& p, const edge& e) {
  std::string s = p.nodes[e.from].name;
  if (e.port != port_kind::main) s += std::string(".") + to_string(e.port);
  return s;
}

} // namespace

physical_plan build(const spec::pipeline& p, const spec::registry& reg) {
  return builder(p, reg).run();
}

namespace {

/// The planner's pass over what the spec's pass left plannable.
checked_plan plan_checked(spec::check_result checked, const spec::registry& reg) {
  checked_plan out;
  out.diags = std::move(checked.diags);
  if (!checked.plannable) return out;
  try {
    auto plan = build(checked.p, reg);
    if (out.diags.empty()) out.plan = std::move(plan);
  } catch (const spec::spec_error& e) {
    for (const auto& d : e.diags().items()) out.diags.add(d);
    out.diags.sort();
  }
  return out;
}

} // namespace

checked_plan check_file(const std::string& path, const spec::registry& reg) {
  return plan_checked(spec::check_file(path, reg), reg);
}

checked_plan check_text(const std::string& text, const std::string& file,
                        const spec::registry& reg) {
  return plan_checked(spec::check_text(text, file, reg), reg);
}

namespace {

/// One component's use of a file, for `check_shared_files`.
struct file_use {
  std::string normalised;
  std::string written;  ///< the name as the setting gives it
  std::string file;     ///< the pipeline file
  spec::mark at;
  std::string path;     ///< dotted path of the setting
  std::string owner;    ///< dotted path of the component, e.g. "sinks.out"
  bool writes = true;
};

std::string normalise(const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(name), ec);
  if (ec) return fs::path(name).lexically_normal().string();
  fs::path canonical = fs::weakly_canonical(p, ec);
  return ec ? p.lexically_normal().string() : canonical.string();
}

std::string located(const file_use& u) {
  return spec::one_line(u.file) + ":" + std::to_string(u.at.line) + ":" +
         std::to_string(u.at.column);
}

} // namespace

spec::diagnostics check_shared_files(const std::vector<const physical_plan*>& plans,
                                     const std::vector<file_setting>& settings) {
  std::vector<file_use> uses;
  for (const physical_plan* p : plans) {
    std::vector<file_use> mine;
    for (const node& n : p->nodes) {
      for (const auto& fs : settings) {
        if (n.kind != fs.kind || n.type != fs.type) continue;
        const spec::config& cfg = n.spec.settings;
        const std::string name = cfg.get_string(fs.key);
        if (name.empty()) continue;
        mine.push_back({normalise(name), name, p->file, cfg.mark_of(fs.key), cfg.path_of(fs.key),
                        cfg.path(), fs.writes});
      }
    }
    // Nodes are in topological order; messages go in file order.
    std::stable_sort(mine.begin(), mine.end(), [](const file_use& a, const file_use& b) {
      return std::tie(a.at.line, a.at.column) < std::tie(b.at.line, b.at.column);
    });
    uses.insert(uses.end(), mine.begin(), mine.end());
  }
  spec::diagnostics out;
  for (std::size_t i = 0; i < uses.size(); ++i) {
    const file_use& later = uses[i];
    for (std::size_t j = 0; j < i; ++j) {
      const file_use& earlier = uses[j];
      if (earlier.normalised != later.normalised || (!earlier.writes && !later.writes)) continue;
      std::string what = "'" + later.written + "'";
      if (later.written != later.normalised) what += " (" + later.normalised + ")";
      std::string msg;
      if (earlier.writes && later.writes)
        msg = "the file " + what + " is also written by " + earlier.owner + " at " + located(earlier) +
              "; two sinks writing one file lose each other's rows: give each its own file";
      else if (earlier.writes)
        msg = "the file " + what + " is written by " + earlier.owner + " at " + located(earlier) +
              " while this source reads it; read another file, or run the two one after the other";
      else
        msg = "the file " + what + " is read by " + earlier.owner + " at " + located(earlier) +
              " while this sink writes it; write another file, or run the two one after the other";
      out.add(later.file, later.at, later.path, std::move(msg));
      break;  // one report per use is enough
    }
  }
  return out;
}

std::string explain(const physical_plan& p) {
  const auto& s = p.settings;
  std::string out;
  out += "pipeline " + s.name + " (" + p.file + ")\n";
  out += "  time: " + s.time + ", batch: " + std::to_string(s.batch_size) + " rows / " +
         duration_text(s.batch_linger_ns) + ", credits: " + std::to_string(s.channel_credits) +
         ", max_parallelism: " + std::to_string(s.max_parallelism) +
         ", checkpoint: " + duration_text(s.checkpoint_interval_ns) + "\n";
  if (std::any_of(p.nodes.begin(), p.nodes.end(), [](const node& n) { return n.autoscales(); })) {
    const auto& sc = s.scaling;
    out += "  scaling: " + sc.policy + ", every " + duration_text(sc.interval_ns);
    if (sc.policy == "schedule") {
      for (const auto& st : sc.schedule)
        out += ", at " + duration_text(st.at_ns) + " " + st.component + " x" + std::to_string(st.parallelism);
    } else {
      char buf[160];
      std::snprintf(buf, sizeof buf, ", target utilisation %g, stabilisation %s, scale-in delay %s, "
                                     "scale-in keeps at least %g",
                    sc.target_utilisation, duration_text(sc.stabilisation_ns).c_str(),
                    duration_text(sc.scale_in_delay_ns).c_str(), sc.max_scale_in);
      out += buf;
    }
    out += "\n";
  }
  out += "  dead letters: ";
  switch (p.dead_letters) {
    case dead_letter_mode::log: out += "log (JSON lines on stderr)\n"; break;
    case dead_letter_mode::drop: out += "drop (counted)\n"; break;
    case dead_letter_mode::sink: out += "sink " + p.nodes[p.dead_letter_sink].name + "\n"; break;
  }
  out += "chains (one actor per instance):\n";
  for (std::size_t ci = 0; ci < p.chains.size(); ++ci) {
    const auto& c = p.chains[ci];
    out += "  chain " + std::to_string(ci) + " x" + std::to_string(c.parallelism);
    if (c.parallelism_min < c.parallelism_max)
      out += " (" + std::to_string(c.parallelism_min) + ".." + std::to_string(c.parallelism_max) + ")";
    out += ": ";
    for (std::size_t i = 0; i < c.nodes.size(); ++i) {
      if (i > 0) out += " -> ";
      out += p.nodes[c.nodes[i]].name;
    }
    out += "\n";
    for (int ni : c.nodes) {
      const node& n = p.nodes[ni];
      out += "    " + std::string(spec::to_string(n.kind)) + " " + n.name + " (" + n.type +
             "), parallelism " + parallelism_text(n.parallelism, n.parallelism_min, n.parallelism_max) + "\n";
      for (const auto& note : n.notes) out += "      " + note + "\n";
      for (std::size_t i = 0; i < n.input_schemas.size(); ++i)
        out += "      in " + std::to_string(i) + ": " + fields_text(n.input_schemas[i]) + "\n";
      if (n.output_schema) out += "      out: " + fields_text(n.output_schema) + "\n";
      if (n.event_time_column >= 0 || n.event_time_expression.valid())
        out += "      event time: " +
               (n.event_time_column >= 0 ? n.spec.event_time->field
                                         : "expression " + n.spec.event_time->expression) +
               " (" + n.spec.event_time->format +
               ", out of order " + duration_text(n.spec.event_time->max_out_of_orderness_ns) +
               ", idle " +
               (n.spec.event_time->idle_timeout_ns < 0
                    ? std::string("source default")
                    : duration_text(n.spec.event_time->idle_timeout_ns)) +
               (n.spec.event_time->max_drift_ns > 0
                    ? ", max drift " + duration_text(n.spec.event_time->max_drift_ns)
                    : std::string()) +
               ")\n";
    }
  }
  out += "edges:\n";
  for (const auto& e : p.edges) {
    const node& down = p.nodes[e.to];
    out += "  " + port_name(p, e) + " -> " + down.name + "[" + std::to_string(e.input) + "]: " +
           to_string(e.part);
    if (e.part == partitioning::hash) {
      out += " by ";
      for (std::size_t i = 0; i < e.key_columns.size(); ++i) {
        if (i > 0) out += ", ";
        int k = e.key_columns[i];
        out += e.schema && k >= 0 && k < static_cast<int>(e.schema->size()) ? (*e.schema)[k].name
                                                                              : std::to_string(k);
      }
    }
    out += e.fused ? " (fused)" : " (channel)";
    if (e.implicit) out += " (dead letters)";
    out += "\n";
  }
  for (const auto& n : p.nodes) {
    if (n.kind == spec::component_kind::sink || !n.dead_letter_unread) continue;
    out += "  " + n.name + ".dead_letter -> " +
           (p.dead_letters == dead_letter_mode::drop ? "drop" : "log") + "\n";
  }
  return out;
}

} // namespace pel::plan
