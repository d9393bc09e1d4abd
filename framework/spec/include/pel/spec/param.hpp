#pragma once
/// \file
/// Declarative config schemas: every source, operator and sink type lists its parameters here.
/// The same table validates pipeline files and generates docs/reference/.

#include <optional>
#include <string>
#include <vector>

namespace pel::spec {

/// The YAML shape a parameter accepts.
enum class param_type {
  string,       ///< a scalar string; `allowed` makes it an enumeration
  integer,      ///< a whole number; `min`/`max` bound it
  number,       ///< any number
  boolean,      ///< true or false
  duration,     ///< `250ms`, `1s`, `5m`, ...
  bytes,        ///< `512`, `64KiB`, `1MiB`, ...
  expression,   ///< an expression in PEL's expression language (checked when the component is built)
  string_list,  ///< a list of strings; a single string is accepted as a list of one
  string_map,   ///< a map of string keys to scalar values, passed through (e.g. `rdkafka:`)
  object,       ///< a nested map validated by `fields`
  object_list,  ///< a list of maps, each validated by `fields`
  expression_map,  ///< a map of output names to expressions (e.g. map's `fields:`), order kept
};

/// Name of a param type as shown in docs and errors ("duration", "list of strings", ...).
const char* to_string(param_type t) noexcept;

/// One parameter of a component. Build with the named constructors and chain the setters:
///   param::integer("batch_size").min(1).max(100000).def("1000").doc("Rows per batch.")
struct param {
  std::string key;
  param_type type = param_type::string;
  std::string description;
  bool required = false;
  std::optional<std::string> default_value;  ///< as it would be written in YAML
  std::optional<double> minimum;
  std::optional<double> maximum;
  std::vector<std::string> allowed;  ///< allowed values of a string param
  std::vector<param> fields;         ///< children of object / object_list params, or of `alternative`
  /// A scalar param that also takes a map (`object`) or a list of maps (`object_list`) of
  /// `fields` instead, e.g. `parallelism: {initial, min, max}`.
  std::optional<param_type> alternative;
  /// Set when the value (a string, or each item of a list of strings) names a field of the
  /// component's input: the input's index, or -1 for every input. `plan::build` checks such
  /// names against the input schemas and reports each unknown one at its place in the file,
  /// before the component is built (sinks learn their schema only when opened).
  std::optional<int> input_field;

  static param string(std::string k) { return make(std::move(k), param_type::string); }
  static param integer(std::string k) { return make(std::move(k), param_type::integer); }
  static param number(std::string k) { return make(std::move(k), param_type::number); }
  static param boolean(std::string k) { return make(std::move(k), param_type::boolean); }
  static param duration(std::string k) { return make(std::move(k), param_type::duration); }
  static param bytes(std::string k) { return make(std::move(k), param_type::bytes); }
  static param expression(std::string k) { return make(std::move(k), param_type::expression); }
  static param string_list(std::string k) { return make(std::move(k), param_type::string_list); }
  static param string_map(std::string k) { return make(std::move(k), param_type::string_map); }
  static param expression_map(std::string k) { return make(std::move(k), param_type::expression_map); }
  static param object(std::string k, std::vector<param> f) {
    auto p = make(std::move(k), param_type::object);
    p.fields = std::move(f);
    return p;
  }
  static param object_list(std::string k, std::vector<param> f) {
    auto p = make(std::move(k), param_type::object_list);
    p.fields = std::move(f);
    return p;
  }

  param& doc(std::string d) { description = std::move(d); return *this; }
  param& req() { required = true; return *this; }
  param& def(std::string v) { default_value = std::move(v); return *this; }
  param& min(double v) { minimum = v; return *this; }
  param& max(double v) { maximum = v; return *this; }
  param& one_of(std::vector<std::string> v) { allowed = std::move(v); return *this; }
  /// The value names a field of input `input` (-1: of every input); see `input_field`.
  param& names_input_field(int input = -1) { input_field = input; return *this; }
  /// The param also takes a map of `f` instead of its scalar.
  param& or_map(std::vector<param> f) {
    fields = std::move(f);
    alternative = param_type::object;
    return *this;
  }
  /// The param also takes a list of maps of `f` instead of its scalar.
  param& or_list(std::vector<param> f) {
    fields = std::move(f);
    alternative = param_type::object_list;
    return *this;
  }

private:
  static param make(std::string k, param_type t) {
    param p;
    p.key = std::move(k);
    p.type = t;
    return p;
  }
};

/// What a component is.
enum class component_kind { source, operator_, sink };

const char* to_string(component_kind k) noexcept;

/// The schema of a component type.
struct component_schema {
  std::string type;           ///< the `type:` value in YAML, e.g. "filter"
  component_kind kind = component_kind::operator_;
  std::string summary;        ///< one line
  std::string description;    ///< paragraphs of markdown for the reference
  std::vector<param> params;  ///< own parameters (the common ones are added by the spec)
  std::string example;        ///< a YAML snippet that lints clean, for the reference
  int min_inputs = 1;         ///< operators and sinks: how many inputs it takes
  int max_inputs = 1;         ///< -1 for unbounded (union)
  std::vector<std::string> ports;  ///< extra output ports besides the main one, e.g. "late"

  /// The parameter called `key`, or nullptr.
  const param* find(std::string_view key) const noexcept;
};

} // namespace pel::spec
