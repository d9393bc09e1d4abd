#include "pel/testing/runner.hpp"

#include "pel/core/time_format.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/suggest.hpp"
#include "pel/testing/compare.hpp"
#include "pel/testing/test_file.hpp"
#include "replay.hpp"

#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <thread>

namespace pel::testing {

namespace {

// ---- values as written ------------------------------------------------------------------

/// A scalar as written in a test file or a data file: its text, whether it was quoted (a
/// string for sure), or null.
struct scalar_text {
  std::string text;
  bool quoted = false;
  bool null = false;
};

bool whole_number(const std::string& t, std::int64_t& out) {
  if (t.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (end == t.c_str() || *end != '\0' || errno != 0) return false;
  out = v;
  return true;
}

bool decimal_number(const std::string& t, double& out) {
  if (t.empty()) return false;
  for (char c : t)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' ||
          c == 'e' || c == 'E'))
      return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(t.c_str(), &end);
  return end != t.c_str() && *end == '\0' && errno == 0;
}

/// The value of `s` for a field declared `type` (none: by its shape). False with `error`
/// when it is not a value of that type.
bool to_value(const scalar_text& s, const std::optional<core::value_type>& type, core::value& out,
              std::string& error) {
  if (s.null) {
    out = core::value{};
    return true;
  }
  const core::value_type t = type ? *type : core::value_type::null;
  std::int64_t i = 0;
  double d = 0;
  switch (t) {
    case core::value_type::string:
      out = s.text;
      return true;
    case core::value_type::integer:
      if (whole_number(s.text, i)) {
        out = i;
        return true;
      }
      break;
    case core::value_type::number:
      if (decimal_number(s.text, d)) {
        out = d;
        return true;
      }
      if (!s.quoted && (s.text == ".nan" || s.text == ".NaN" || s.text == ".NAN")) {
        out = std::numeric_limits<double>::quiet_NaN();
        return true;
      }
      if (!s.quoted && (s.text == ".inf" || s.text == "+.inf" || s.text == "-.inf" ||
                        s.text == ".Inf" || s.text == "-.Inf")) {
        out = s.text[0] == '-' ? -std::numeric_limits<double>::infinity()
                               : std::numeric_limits<double>::infinity();
        return true;
      }
      break;
    case core::value_type::boolean:
      if (s.text == "true" || s.text == "false") {
        out = s.text == "true";
        return true;
      }
      break;
    case core::value_type::null:
      break;
  }
  if (t != core::value_type::null) {
    // A declared type is a promise, not a storage format: a quoted value stays a string (the
    // "ERR" of a sensor that a real source would pass on too); a plain one must fit.
    if (s.quoted) {
      out = s.text;
      return true;
    }
    error = "expected " +
            std::string(t == core::value_type::integer  ? "an int"
                        : t == core::value_type::number ? "a number"
                                                        : "true or false") +
            ", not '" + s.text + "' (quote it to give a string)";
    return false;
  }
  // Untyped: by its shape, as a plain YAML scalar reads.
  if (s.quoted) {
    out = s.text;
  } else if (s.text == "true" || s.text == "false") {
    out = s.text == "true";
  } else if (whole_number(s.text, i)) {
    out = i;
  } else if (decimal_number(s.text, d)) {
    out = d;
  } else {
    out = s.text;
  }
  return true;
}

scalar_text of_node(const spec::node& n) {
  scalar_text s;
  s.null = n.is_null();
  s.text = n.text;
  s.quoted = n.quoted;
  return s;
}

// ---- binding a case to the plan ---------------------------------------------------------

/// What a case does to one replaced source and how its times are read.
struct source_binding {
  int node = -1;
  core::schema_ptr schema;
  int time_column = -1;
  const expr::expression* time_expression = nullptr;
  core::time_parser parser;
  bool own_time = true;  ///< no event-time field or expression: rows carry their own time
};

/// One expectation with what is needed to capture and compare it.
struct bound_expectation {
  const expectation* ex = nullptr;
  int node = -1;
  plan::port_kind port = plan::port_kind::main;
  bool sink = false;
  core::schema_ptr schema;
  std::vector<std::string> keys;
};

struct bound_case {
  const test_case* tc = nullptr;
  std::map<int, std::shared_ptr<replay_input>> inputs;  ///< by source node
  std::vector<bound_expectation> expect;
};

class binder {
public:
  binder(const test_file& t, const plan::physical_plan& p, spec::diagnostics& diags)
      : t_(t), plan_(p), diags_(diags) {}

  bound_case bind(const test_case& tc) {
    bound_case bc;
    bc.tc = &tc;
    for (const auto& in : tc.inputs) bind_input(in, bc);
    for (const auto& ex : tc.expect) bind_expect(ex, bc);
    for (const auto& c : tc.dead_letters) check_component(c);
    for (const auto& c : tc.late) check_component(c);
    return bc;
  }

private:
  void error(spec::mark at, const std::string& path, const std::string& message) {
    diags_.add(t_.file, at, path, message);
  }

  std::vector<std::string> names(bool sources_only) const {
    std::vector<std::string> out;
    for (const auto& n : plan_.nodes)
      if (n.name.find('/') == std::string::npos &&
          (!sources_only || n.kind == spec::component_kind::source))
        out.push_back(n.name);
    return out;
  }

  source_binding binding_of(int index) const {
    const auto& n = plan_.nodes[static_cast<std::size_t>(index)];
    source_binding b;
    b.node = index;
    b.schema = n.output_schema;
    b.time_column = n.event_time_column;
    if (n.event_time_expression.valid()) b.time_expression = &n.event_time_expression;
    b.own_time = b.time_column < 0 && b.time_expression == nullptr;
    if (n.spec.event_time) {
      core::parse_time_format(n.spec.event_time->format, b.parser.format);
      core::parse_utc_offset(n.spec.event_time->timezone, b.parser.tz_offset_ns);
    } else {
      b.parser.format = core::time_format::epoch_ms;  // `at:` of a source keeping its own time
    }
    return b;
  }

  /// An event time as written for `b` (`at:` of a source without a time field, a watermark):
  /// in the source's format, or ISO 8601.
  bool read_time(const source_binding& b, const spec::node& n, std::int64_t& ns) const {
    core::value v;
    std::string ignored;
    to_value(of_node(n), std::nullopt, v, ignored);
    if (core::parse_event_time(v, b.parser.format, b.parser.tz_offset_ns, ns)) return true;
    // A number where the source reads text (iso8601, datetime): epoch milliseconds.
    if (!std::holds_alternative<std::string>(v) &&
        core::parse_event_time(v, core::time_format::epoch_ms, 0, ns))
      return true;
    return core::parse_iso8601(n.text, 0, ns);
  }

  std::int64_t event_ns_of(const source_binding& b, replay_item& it) const {
    std::int64_t ns = INT64_MIN;
    if (b.own_time) return it.row_time;
    const core::value* v = nullptr;
    core::value scratch;
    if (b.time_column >= 0) {
      v = &it.row[static_cast<std::size_t>(b.time_column)];
    } else {
      try {
        v = &b.time_expression->eval_ref(it.row.data(), 0, scratch);
      } catch (const std::exception&) {
        return INT64_MIN;
      }
    }
    if (!b.parser(*v, ns)) return INT64_MIN;
    return ns;
  }

  /// Fills `row` from a record's fields; errors located at each field.
  bool fill_row(const source_binding& b,
                const std::vector<std::pair<std::string, scalar_text>>& fields,
                const std::vector<spec::mark>& marks, const std::string& path,
                const std::string& file, std::vector<core::value>& row) {
    const core::schema& s = *b.schema;
    row.assign(s.size(), core::value{});
    bool ok = true;
    std::vector<std::string> field_names;
    for (const auto& f : s.fields()) field_names.push_back(f.name);
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const auto& [name, text] = fields[i];
      const int c = s.index_of(name);
      if (c < 0) {
        diags_.add(file, marks[i], path + "." + name,
                   "unknown field '" + name + "' of source '" +
                       plan_.nodes[static_cast<std::size_t>(b.node)].name + "'" +
                       spec::did_you_mean(name, field_names) + " (fields: " + s.names() + ")");
        ok = false;
        continue;
      }
      std::string err;
      if (!to_value(text, s[static_cast<std::size_t>(c)].type, row[static_cast<std::size_t>(c)],
                    err)) {
        diags_.add(file, marks[i], path + "." + name, "field '" + name + "': " + err);
        ok = false;
      }
    }
    return ok;
  }

  void bind_input(const source_input& in, bound_case& bc) {
    const int index = plan_.find(in.source);
    if (index < 0 ||
        plan_.nodes[static_cast<std::size_t>(index)].kind != spec::component_kind::source) {
      error(in.at, in.path,
            "no source '" + in.source + "' in the pipeline" +
                spec::did_you_mean(in.source, names(true)) +
                " (sources: " + spec::join(names(true)) + ")");
      return;
    }
    const source_binding b = binding_of(index);
    const auto& node = plan_.nodes[static_cast<std::size_t>(index)];
    auto input = std::make_shared<replay_input>();
    input->processing_time = plan_.settings.time == "processing";
    if (node.spec.event_time)
      input->max_out_of_orderness_ns = node.spec.event_time->max_out_of_orderness_ns;
    std::int64_t last_time = 0;
    for (const auto& item : in.items) {
      replay_item it;
      if (item.watermark) {
        it.watermark = true;
        if (!read_time(b, *item.time, it.event_ns)) {
          error(item.time->at, item.path + ".watermark",
                "cannot read '" + item.time->text +
                    "' as a time: give a number in the source's format (" +
                    std::string(core::to_string(b.parser.format)) +
                    ") or ISO 8601 such as 2024-01-02T14:30:05Z");
          continue;
        }
        input->items.push_back(std::move(it));
        continue;
      }
      std::vector<std::pair<std::string, scalar_text>> fields;
      std::vector<spec::mark> marks;
      for (const auto& e : item.record->entries) {
        if (!e.value->is_null() && !e.value->is_scalar()) {
          error(e.value->at, item.path + "." + e.key,
                "expected a scalar value, not a " + std::string(e.value->kind_name()));
          continue;
        }
        fields.emplace_back(e.key, of_node(*e.value));
        marks.push_back(e.key_mark);
      }
      if (item.time) {
        if (b.time_column >= 0) {
          const std::string& tf = b.schema->fields()[static_cast<std::size_t>(b.time_column)].name;
          if (item.record->find(tf) != nullptr) {
            error(item.time->at, item.path + ".at",
                  "the record gives its time twice: in '" + tf + "' and in `at:`; keep one");
            continue;
          }
          fields.emplace_back(tf, of_node(*item.time));
          marks.push_back(item.time->at);
        } else if (b.time_expression != nullptr) {
          error(item.time->at, item.path + ".at",
                "source '" + in.source +
                    "' computes its event time with `event_time.expression`; give the "
                    "fields it reads instead of `at:`");
          continue;
        } else if (!read_time(b, *item.time, last_time)) {
          error(item.time->at, item.path + ".at",
                "cannot read '" + item.time->text +
                    "' as a time: give epoch milliseconds or ISO 8601 such as "
                    "2024-01-02T14:30:05Z");
          continue;
        }
      }
      if (!fill_row(b, fields, marks, item.path, t_.file, it.row)) continue;
      it.row_time = last_time;
      it.event_ns = event_ns_of(b, it);
      input->items.push_back(std::move(it));
    }
    if (!in.file.empty()) read_data_file(in, b, *input);
    bc.inputs[index] = input;
  }

  void read_data_file(const source_input& in, const source_binding& b, replay_input& input) {
    const std::string path = t_.resolve(in.file);
    std::ifstream f(path);
    if (!f) {
      error(in.file_at, in.path + ".file",
            "cannot read '" + path + "' (" + std::strerror(errno) + ")");
      return;
    }
    const bool csv = path.size() >= 4 && path.compare(path.size() - 4, 4, ".csv") == 0;
    std::string line;
    std::vector<std::string> header;
    simdjson::dom::parser parser;
    int line_no = 0;
    std::size_t errors = diags_.size();
    while (std::getline(f, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty()) continue;
      const spec::mark at{line_no, 1};
      const std::string lpath = in.path + ".file[line " + std::to_string(line_no) + "]";
      std::vector<std::pair<std::string, scalar_text>> fields;
      std::string err;
      if (csv) {
        std::vector<scalar_text> cells;
        if (!split_csv(line, cells, err)) {
          diags_.add(path, at, lpath, err);
          continue;
        }
        if (header.empty()) {
          for (auto& c : cells) header.push_back(c.text);
          continue;
        }
        if (cells.size() != header.size()) {
          diags_.add(path, at, lpath,
                     std::to_string(cells.size()) + " values for " + std::to_string(header.size()) +
                         " columns");
          continue;
        }
        for (std::size_t i = 0; i < cells.size(); ++i) fields.emplace_back(header[i], cells[i]);
      } else if (!json_fields(parser, line, fields, err)) {
        diags_.add(path, at, lpath, err);
        continue;
      }
      std::vector<spec::mark> marks(fields.size(), at);
      replay_item it;
      if (!fill_row(b, fields, marks, lpath, path, it.row)) continue;
      it.event_ns = event_ns_of(b, it);
      input.items.push_back(std::move(it));
      if (diags_.size() - errors > 20) break;  // a file of the wrong shape: enough said
    }
  }

  /// A CSV line (RFC 4180 quotes, no line breaks inside a field): unquoted empty cells are null.
  static bool split_csv(const std::string& line, std::vector<scalar_text>& out, std::string& err) {
    std::size_t i = 0;
    while (true) {
      scalar_text cell;
      if (i < line.size() && line[i] == '"') {
        cell.quoted = true;
        ++i;
        while (true) {
          if (i >= line.size()) {
            err = "a quoted field is not closed";
            return false;
          }
          if (line[i] == '"') {
            if (i + 1 < line.size() && line[i + 1] == '"') {
              cell.text += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          cell.text += line[i++];
        }
        if (i < line.size() && line[i] != ',') {
          err = "text after a closing quote";
          return false;
        }
      } else {
        while (i < line.size() && line[i] != ',') cell.text += line[i++];
        cell.null = cell.text.empty();
      }
      out.push_back(std::move(cell));
      if (i >= line.size()) return true;
      ++i;  // the comma
    }
  }

  static bool json_fields(simdjson::dom::parser& parser, const std::string& line,
                          std::vector<std::pair<std::string, scalar_text>>& out, std::string& err) {
    simdjson::dom::element doc;
    if (auto e = parser.parse(line).get(doc); e) {
      err = std::string("not JSON: ") + simdjson::error_message(e);
      return false;
    }
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) {
      err = "expected a JSON object per line";
      return false;
    }
    for (auto field : obj) {
      scalar_text s;
      const auto v = field.value;
      switch (v.type()) {
        case simdjson::dom::element_type::STRING:
          s.text = std::string(std::string_view(v.get_string().value()));
          s.quoted = true;
          break;
        case simdjson::dom::element_type::INT64:
          s.text = std::to_string(std::int64_t(v.get_int64().value()));
          break;
        case simdjson::dom::element_type::UINT64:
          s.text = std::to_string(std::uint64_t(v.get_uint64().value()));
          break;
        case simdjson::dom::element_type::DOUBLE:
          s.text = core::to_text(core::value{double(v.get_double().value())});
          break;
        case simdjson::dom::element_type::BOOL:
          s.text = bool(v.get_bool().value()) ? "true" : "false";
          break;
        case simdjson::dom::element_type::NULL_VALUE:
          s.null = true;
          break;
        default:
          err = "field '" + std::string(field.key) + "' is not a scalar";
          return false;
      }
      out.emplace_back(std::string(field.key), std::move(s));
    }
    return true;
  }

  std::vector<std::string> key_fields(const plan::node& n, const core::schema& out_schema) const {
    std::vector<std::string> keys;
    const plan::node* keyed = &n;
    if (n.kind == spec::component_kind::sink && !n.spec.inputs.empty()) {
      const int up = plan_.find(n.spec.inputs.front().component);
      if (up >= 0) keyed = &plan_.nodes[static_cast<std::size_t>(up)];
    }
    if (!keyed->key_columns.empty() && !keyed->input_schemas.empty())
      for (int c : keyed->key_columns[0]) {
        const auto& name = (*keyed->input_schemas[0])[static_cast<std::size_t>(c)].name;
        if (out_schema.index_of(name) >= 0) keys.push_back(name);
      }
    for (const char* w : {"window_start"})
      if (out_schema.index_of(w) >= 0) keys.push_back(w);
    return keys;
  }

  void bind_expect(const expectation& ex, bound_case& bc) {
    bound_expectation be;
    be.ex = &ex;
    std::string name = ex.target;
    int index = plan_.find(name);
    if (index < 0) {
      const auto dot = name.rfind('.');
      if (dot != std::string::npos) {
        const std::string port = name.substr(dot + 1);
        const int base = plan_.find(name.substr(0, dot));
        if (base >= 0 && (port == "late" || port == "dead_letter" || port == "main")) {
          index = base;
          be.port = port == "late"          ? plan::port_kind::late
                    : port == "dead_letter" ? plan::port_kind::dead_letter
                                            : plan::port_kind::main;
          if (be.port == plan::port_kind::late &&
              plan_.nodes[static_cast<std::size_t>(base)].kind != spec::component_kind::operator_) {
            error(ex.at, ex.path, "'" + name.substr(0, dot) + "' has no late output");
            return;
          }
        }
      }
    }
    if (index < 0 ||
        plan_.nodes[static_cast<std::size_t>(index)].name.find('/') != std::string::npos) {
      error(ex.at, ex.path,
            "no sink or component '" + name + "' in the pipeline" +
                spec::did_you_mean(name, names(false)) + " (components: " +
                spec::join(names(false)) + "; a port is `name.late` or `name.dead_letter`)");
      return;
    }
    const auto& n = plan_.nodes[static_cast<std::size_t>(index)];
    be.node = index;
    be.sink = n.kind == spec::component_kind::sink && be.port == plan::port_kind::main;
    if (be.sink)
      be.schema = n.input_schemas.empty() ? core::dead_letter_schema() : n.input_schemas[0];
    else if (be.port == plan::port_kind::late)
      be.schema = local_or(n).port_schema(plan::port_kind::late);
    else
      be.schema = n.port_schema(be.port);
    if (!be.schema) {
      error(ex.at, ex.path, "'" + name + "' has no output to compare");
      return;
    }
    std::vector<std::string> field_names;
    for (const auto& f : be.schema->fields()) field_names.push_back(f.name);
    for (std::size_t r = 0; r < ex.records.size(); ++r)
      for (const auto& e : ex.records[r]->entries) {
        const std::string p = ex.path + "[" + std::to_string(r) + "]." + e.key;
        if (be.schema->index_of(e.key) < 0)
          error(e.key_mark, p,
                "'" + name + "' has no field '" + e.key + "'" +
                    spec::did_you_mean(e.key, field_names) + " (fields: " + be.schema->names() +
                    ")");
        else if (!e.value->is_null() && !e.value->is_scalar())
          error(e.value->at, p,
                "expected a scalar value, not a " + std::string(e.value->kind_name()));
      }
    if (be.port == plan::port_kind::main) be.keys = key_fields(n, *be.schema);
    bc.expect.push_back(std::move(be));
  }

  /// A window split in two halves sends its late records from the local half.
  const plan::node& local_or(const plan::node& n) const {
    const int local = plan_.find(n.name + "/local");
    return local >= 0 ? plan_.nodes[static_cast<std::size_t>(local)] : n;
  }

  void check_component(const count_expectation& c) {
    const int index = plan_.find(c.component);
    if (index < 0)
      error(c.at, c.path,
            "no component '" + c.component + "' in the pipeline" +
                spec::did_you_mean(c.component, names(false)) +
                " (components: " + spec::join(names(false)) + ")");
  }

  const test_file& t_;
  const plan::physical_plan& plan_;
  spec::diagnostics& diags_;
};

// ---- running a case ---------------------------------------------------------------------

/// Parses a tapped row (a flat JSON object) into the values of `schema`.
std::vector<core::value> parse_tapped(simdjson::dom::parser& parser, const std::string& json,
                                      const core::schema& schema) {
  std::vector<core::value> row(schema.size());
  simdjson::dom::object obj;
  if (parser.parse(json).get_object().get(obj)) return row;
  for (auto field : obj) {
    const int c = schema.index_of(std::string_view(field.key));
    if (c < 0) continue;
    auto& v = row[static_cast<std::size_t>(c)];
    switch (field.value.type()) {
      case simdjson::dom::element_type::STRING:
        v = std::string(std::string_view(field.value.get_string().value()));
        break;
      case simdjson::dom::element_type::INT64:
        v = std::int64_t(field.value.get_int64().value());
        break;
      case simdjson::dom::element_type::UINT64:
        v = double(std::uint64_t(field.value.get_uint64().value()));
        break;
      case simdjson::dom::element_type::DOUBLE:
        v = double(field.value.get_double().value());
        break;
      case simdjson::dom::element_type::BOOL:
        v = bool(field.value.get_bool().value());
        break;
      default:
        break;
    }
  }
  return row;
}

std::uint64_t count_of(const runtime::result& r, const std::string& component, bool late) {
  std::uint64_t n = 0;
  for (const auto& name : {component, component + "/local"})
    if (const auto* s = r.find(name)) n += late ? s->late : s->dead_letters;
  return n;
}

/// Gives the replayed sources their turns (see `replay_gate`): whenever a source has handed
/// an item on, waits until the job is quiet — no batch queued, in flight or waiting for
/// credit, and every instance's watermark at least the lowest watermark of the sources
/// upstream of it — and lets the next item go. Runs until `over`.
void settle_items(const runtime::job& job, const plan::physical_plan& p,
                  const std::vector<int>& source_nodes, replay_gate& gate,
                  const std::atomic<bool>& over) {
  // The sources upstream of every node (nodes are in topological order).
  std::vector<std::vector<char>> upstream(p.nodes.size(),
                                          std::vector<char>(source_nodes.size(), 0));
  for (std::size_t n = 0; n < p.nodes.size(); ++n) {
    for (std::size_t s = 0; s < source_nodes.size(); ++s)
      if (source_nodes[s] == static_cast<int>(n)) upstream[n][s] = 1;
    for (int e : p.nodes[n].in_edges) {
      const int from = p.edges[static_cast<std::size_t>(e)].from;
      for (std::size_t s = 0; s < source_nodes.size(); ++s)
        upstream[n][s] |= upstream[static_cast<std::size_t>(from)][s];
    }
  }
  std::vector<std::int64_t> wms;
  std::int64_t waiting_since = 0;
  while (!over.load()) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
    if (!gate.waiting(wms)) {
      waiting_since = 0;
      continue;
    }
    const std::int64_t now = core::steady_ns();
    if (waiting_since == 0) waiting_since = now;
    const runtime::job_status st = job.status();
    bool quiet = true;
    std::uint64_t out = 0, in = 0;
    std::vector<std::uint32_t> seen;
    for (const auto& x : st.instances) {
      const int n = p.find(x.component);
      if (n < 0) continue;
      std::int64_t expected = INT64_MAX;
      for (std::size_t s = 0; s < source_nodes.size(); ++s)
        if (upstream[static_cast<std::size_t>(n)][s]) expected = std::min(expected, wms[s]);
      if (expected != INT64_MIN && expected != INT64_MAX && x.watermark_ns < expected)
        quiet = false;
      if (std::find(seen.begin(), seen.end(), x.global_id) != seen.end())
        continue;  // one chain instance
      seen.push_back(x.global_id);
      out += x.batches_out;
      in += x.batches_in;
      if (x.queued_batches != 0 || x.outbound_batches != 0) quiet = false;
    }
    if (out != in) quiet = false;
    // Something that never settles (an instance that keeps no watermark) must not hang the
    // case: after 5 s the next item goes anyway.
    if (quiet || now - waiting_since > 5'000'000'000) {
      gate.settle();
      waiting_since = 0;
    }
  }
}

case_result run_case(const test_file& t, const plan::physical_plan& base, const bound_case& bc,
                     const run_options& opts) {
  case_result res;
  res.name = bc.tc->name;
  const std::int64_t t0 = core::steady_ns();
  plan::physical_plan p = base;
  // Nothing is kept between runs: no state directory to resume from.
  p.settings.checkpoints.dir.clear();
  std::map<int, std::shared_ptr<capture_store>> sinks;
  static const auto empty = std::make_shared<const replay_input>();
  // The sources in plan order, each with its items' sort keys for the gate.
  std::vector<int> source_nodes;
  std::vector<std::vector<std::int64_t>> keys;
  for (std::size_t i = 0; i < p.nodes.size(); ++i) {
    if (p.nodes[i].kind != spec::component_kind::source) continue;
    source_nodes.push_back(static_cast<int>(i));
    auto it = bc.inputs.find(static_cast<int>(i));
    std::vector<std::int64_t> k;
    std::int64_t last = INT64_MIN;
    if (it != bc.inputs.end())
      for (const auto& item : it->second->items) {
        if (item.event_ns != INT64_MIN) last = item.event_ns;
        k.push_back(last);
      }
    keys.push_back(std::move(k));
  }
  auto gate = std::make_shared<replay_gate>(keys);
  for (std::size_t i = 0; i < p.nodes.size(); ++i) {
    auto& n = p.nodes[i];
    if (n.kind == spec::component_kind::source) {
      auto it = bc.inputs.find(static_cast<int>(i));
      std::shared_ptr<const replay_input> in = it == bc.inputs.end() ? empty : it->second;
      const auto slot = static_cast<std::size_t>(
          std::find(source_nodes.begin(), source_nodes.end(), static_cast<int>(i)) -
          source_nodes.begin());
      n.blocking = false;
      // A replayed source waits for its turn, never for input: it is never idle.
      if (n.spec.event_time) n.spec.event_time->idle_timeout_ns = 0;
      n.make_source = [schema = n.output_schema, in, gate,
                       slot](const spec::config&) -> core::source_ptr {
        return std::make_unique<replay_source>(schema, in, gate, slot);
      };
    } else if (n.kind == spec::component_kind::sink) {
      auto store = std::make_shared<capture_store>();
      store->rows.schema =
          n.input_schemas.empty() ? core::dead_letter_schema() : n.input_schemas[0];
      sinks[static_cast<int>(i)] = store;
      n.spec.buffer.reset();  // captured in memory: no store-and-forward buffer on disk
      n.make_sink = [store](const spec::config&) -> core::sink_ptr {
        return std::make_unique<capture_sink>(store);
      };
    }
  }
  runtime::options o;
  o.threads = opts.threads;
  o.watermark_interval_ns = 0;  // each poll's watermark goes out at once: see replay_source
  o.autoscale = false;
  o.state_dir.clear();
  // A source waiting for its turn polls again soon.
  o.idle_backoff_min_ns = 50'000;
  o.idle_backoff_max_ns = 200'000;
  // Every row goes out at once: nothing waits in a half-full batch, so a job with no batch
  // queued or in flight is quiet.
  p.settings.batch_linger_ns = 0;
  runtime::job job(p, o);

  // Components (and ports) to capture, through taps that take every row.
  std::vector<std::shared_ptr<capture_store>> taps(bc.expect.size());
  std::vector<std::uint64_t> tap_ids;
  for (std::size_t e = 0; e < bc.expect.size(); ++e) {
    const auto& be = bc.expect[e];
    if (be.sink) continue;
    auto store = std::make_shared<capture_store>();
    store->rows.schema = be.schema;
    taps[e] = store;
    const std::string port = be.port == plan::port_kind::main   ? "main"
                             : be.port == plan::port_kind::late ? "late"
                                                                : "dead_letter";
    auto parser = std::make_shared<simdjson::dom::parser>();
    const auto& name = base.nodes[static_cast<std::size_t>(be.node)].name;
    for (const auto& component : {name, name + "/local"}) {
      if (component != name && (be.port == plan::port_kind::main || base.find(component) < 0))
        continue;
      const auto id = job.tap(component, port, 1e15, [store, parser](const std::string& json) {
        std::lock_guard<std::mutex> lock(store->mu);
        store->rows.rows.push_back(parse_tapped(*parser, json, *store->rows.schema));
      });
      if (id != 0) tap_ids.push_back(id);
    }
  }

  job.start();
  std::atomic<bool> over{false};
  std::thread settler([&] { settle_items(job, p, source_nodes, *gate, over); });
  bool finished = job.wait_for(std::chrono::nanoseconds(bc.tc->timeout_ns));
  over = true;
  settler.join();
  if (!finished) job.stop(true);
  runtime::result r = job.wait();
  for (auto id : tap_ids) job.untap(id);
  res.took_ns = core::steady_ns() - t0;
  if (!finished)
    res.diff.push_back("the pipeline did not finish within " +
                       std::to_string(bc.tc->timeout_ns / 1'000'000'000) +
                       " s (`timeout:` sets the limit)");
  if (!r.ok) res.diff.push_back("the pipeline failed: " + r.error);

  for (std::size_t e = 0; e < bc.expect.size(); ++e) {
    const auto& be = bc.expect[e];
    const auto& store = be.sink ? sinks.at(be.node) : taps[e];
    std::lock_guard<std::mutex> lock(store->mu);
    for (auto& line : compare(*be.ex, store->rows, be.keys, t.file))
      res.diff.push_back(std::move(line));
  }
  for (const auto* list : {&bc.tc->dead_letters, &bc.tc->late}) {
    const bool late = list == &bc.tc->late;
    for (const auto& c : *list) {
      const std::uint64_t n = count_of(r, c.component, late);
      if (n != c.count)
        res.diff.push_back(c.component + ": " + (late ? "late records" : "dead letters") +
                           ": expected " + std::to_string(c.count) + ", actual " +
                           std::to_string(n) + " (" + t.file + ":" + std::to_string(c.at.line) +
                           ":" + std::to_string(c.at.column) + ")");
    }
  }
  res.passed = res.diff.empty();
  return res;
}

/// In file order: by file (the test file first, then the data files it reads), line and
/// column.
void sort_by_place(spec::diagnostics& d) {
  std::vector<spec::diagnostic> items = d.items();
  const std::string first = items.empty() ? std::string() : items.front().file;
  std::stable_sort(items.begin(), items.end(),
                   [&](const spec::diagnostic& a, const spec::diagnostic& b) {
                     const bool af = a.file == first, bf = b.file == first;
                     if (af != bf) return af;
                     if (a.file != b.file) return a.file < b.file;
                     if (a.at.line != b.at.line) return a.at.line < b.at.line;
                     return a.at.column < b.at.column;
                   });
  d = {};
  for (auto& x : items) d.add(std::move(x));
}

}  // namespace

bool file_result::passed() const noexcept {
  if (!valid()) return false;
  for (const auto& c : cases)
    if (!c.passed) return false;
  return true;
}

file_result run_test_file(const std::string& path, const spec::registry& reg,
                          const run_options& opts) {
  file_result out;
  out.file = path;
  // The file's shape first; what is well formed is checked against the plan too, so that
  // every problem is listed at once.
  test_file t = check_test_file(path, out.errors);
  if (t.pipeline.empty()) {
    sort_by_place(out.errors);
    return out;
  }
  auto checked = plan::check_file(t.pipeline_path(), reg);
  if (!checked.plan) {
    for (const auto& d : checked.diags.items()) out.errors.add(d);
    out.errors.add(
        t.file, t.pipeline_at, "pipeline",
        "the pipeline '" + t.pipeline_path() + "' has errors (listed above); `pel lint` it");
    return out;
  }
  // The replaced sources run as one instance each: their records are one ordered stream, and
  // every reader sees its watermark through one channel, right after the record that moved it.
  // Everything else keeps its parallelism (the edges out of a source are planned again).
  plan::physical_plan plan;
  try {
    spec::pipeline p = spec::load_file(t.pipeline_path(), reg);
    for (auto& s : p.sources) s.parallelism = s.parallelism_min = s.parallelism_max = 1;
    plan = plan::build(p, reg);
  } catch (const spec::spec_error& e) {
    for (const auto& d : e.diags().items()) out.errors.add(d);
    out.errors.add(
        t.file, t.pipeline_at, "pipeline",
        "the pipeline cannot be planned with its sources at parallelism 1, as tests run them");
    return out;
  }
  std::vector<bound_case> cases;
  binder b(t, plan, out.errors);
  for (const auto& tc : t.cases) cases.push_back(b.bind(tc));
  if (!out.errors.empty()) {
    sort_by_place(out.errors);
    return out;
  }
  for (const auto& bc : cases) {
    out.cases.push_back(run_case(t, plan, bc, opts));
    if (opts.on_case) opts.on_case(out.cases.back());
  }
  return out;
}

std::vector<std::string> test_files_in(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return {path};
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(path, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string suffix = ".test.yaml";
    if (it->is_regular_file(ec) && name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace pel::testing
