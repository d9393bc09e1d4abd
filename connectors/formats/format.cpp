// Format parameters, factories, schema inference and the raw format.
#include "pel/connectors/format.hpp"

#include "format_impl.hpp"
#include "line_reader.hpp"

#include <charconv>

namespace pel::connectors {

namespace {

const std::vector<std::string> format_names{"json", "csv", "raw"};

}  // namespace

std::vector<spec::param> format_params(bool for_source) {
  using spec::param;
  std::vector<param> out;
  out.push_back(param::string("format")
                    .one_of(format_names)
                    .def("json")
                    .doc(for_source
                             ? "How each line (message) is decoded: `json` (one object per line), "
                               "`csv` (RFC 4180) or `raw` (the whole line as the string field "
                               "`value`)."
                             : "How each row is written: `json` (one object per line, fields in "
                               "schema order; always valid JSON: bytes that are not UTF-8 become "
                               "U+FFFD, NaN and infinities `null`), `csv` or `raw` (the field "
                               "`value`, or the first field, as text)."));
  if (for_source) {
    out.push_back(param::string_map("schema").doc(
        "The fields and their types, in order, e.g. `{ts: int, symbol: string, price: "
        "double}`. Types: `bool`, `int`, `double`, `string`, `any`. A field gets exactly "
        "its declared type: a JSON value of another type (`\"29\"` for an int, `5` for a "
        "string, `7.0` for an int, an int above the int64 range) or a CSV text that does not "
        "read as the type makes the record malformed (dead letter, with the field, the "
        "expected and the found type). The one widening: an integer where a `double` is "
        "declared. Null (a JSON null, a missing JSON field, a CSV null value) fits every "
        "type; `any` keeps the value as it comes (JSON objects and arrays as their text). "
        "When absent, the schema is inferred from the first 100 lines where the connector "
        "can sample its input."));
    out.push_back(param::object(
        "csv", {param::string("delimiter")
                    .def(",")
                    .doc("Field separator, one character (`\\t` or "
                         "`tab` for a tab)."),
                param::string("quote").def("\"").doc("Quote character, one character."),
                param::boolean("header").def("true").doc(
                    "The first line names the columns (and is not a record)."),
                param::string_list("null_values")
                    .doc("Unquoted field texts read as null. Default: `[\"\", NA, null]`.")}));
    out.back().doc("CSV options (used when `format: csv`).");
  } else {
    out.push_back(param::object(
        "csv", {param::string("delimiter")
                    .def(",")
                    .doc("Field separator, one character (`\\t` or "
                         "`tab` for a tab)."),
                param::string("quote").def("\"").doc("Quote character, one character."),
                param::boolean("header").def("true").doc("Write a header line with the field names "
                                                         "first.")}));
    out.back().doc("CSV options (used when `format: csv`).");
  }
  return out;
}

const core::schema_ptr& raw_schema() {
  static const core::schema_ptr s =
      std::make_shared<core::schema>(std::vector<core::field>{{"value", core::value_type::string}});
  return s;
}

std::string format_name(const spec::config& cfg) {
  auto f = cfg.get_string("format");
  if (f.empty()) return "json";
  for (const auto& n : format_names)
    if (f == n) return f;
  cfg.fail("format", "unknown format '" + f + "'; use json, csv or raw");
}

namespace {

char one_char(const spec::config& csv, std::string_view key, char def) {
  if (!csv.has(key)) return def;
  auto s = csv.get_string(key);
  if (s == "\\t" || s == "tab") return '\t';
  if (s.size() != 1) csv.fail(key, "expected one character, found '" + s + "'");
  if (s[0] == '\n' || s[0] == '\r') csv.fail(key, "a line break cannot be a " + std::string(key));
  return s[0];
}

}  // namespace

csv_options read_csv_options(const spec::config& cfg) {
  csv_options o;
  auto csv = cfg.child("csv");
  o.delimiter = one_char(csv, "delimiter", ',');
  o.quote = one_char(csv, "quote", '"');
  if (o.quote == o.delimiter) csv.fail("quote", "the quote and the delimiter must differ");
  o.header = csv.has("header") ? csv.get_bool("header") : true;
  if (csv.has("null_values")) o.null_values = csv.get_string_list("null_values");
  return o;
}

core::schema_ptr declared_schema(const spec::config& cfg) {
  if (!cfg.has("schema")) return nullptr;
  auto entries = cfg.get_string_map("schema");
  if (entries.empty()) cfg.fail("schema", "declare at least one field, e.g. {id: int}");
  auto s = std::make_shared<core::schema>();
  for (const auto& [name, type] : entries) {
    if (s->index_of(name) >= 0) cfg.fail("schema", "field '" + name + "' is declared twice");
    if (type == "any") {
      s->add(name);
      continue;
    }
    core::value_type t;
    if (!core::parse_value_type(type, t) || t == core::value_type::null)
      cfg.fail("schema", "field '" + name + "': unknown type '" + type +
                             "'; use bool, int, double, string or any");
    s->add(name, t);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Raw format

namespace {

class raw_decoder final : public decoder {
public:
  const core::schema_ptr& schema() const override { return raw_schema(); }
  bool decode(std::string_view message, core::value* row, std::string&) override {
    row[0] = std::string(message);
    return true;
  }
};

class raw_encoder final : public encoder {
public:
  explicit raw_encoder(const core::schema& s) {
    int i = s.index_of("value");
    column_ = i >= 0 ? static_cast<std::size_t>(i) : 0;
    empty_ = s.size() == 0;
  }
  void encode(const core::value* row, std::string& out) override {
    if (!empty_) detail::append_text(out, row[column_]);
  }

private:
  std::size_t column_ = 0;
  bool empty_ = false;
};

}  // namespace

std::unique_ptr<decoder> make_decoder(const spec::config& cfg, core::schema_ptr schema) {
  auto f = format_name(cfg);
  if (f == "raw") return std::make_unique<raw_decoder>();
  if (!schema) cfg.fail("schema", "the " + f + " format needs a schema; declare `schema:`");
  if (f == "csv") return detail::make_csv_decoder(read_csv_options(cfg), std::move(schema));
  return detail::make_json_decoder(std::move(schema));
}

std::unique_ptr<encoder> make_encoder(const spec::config& cfg, const core::schema_ptr& input) {
  auto f = format_name(cfg);
  if (f == "raw") return std::make_unique<raw_encoder>(*input);
  if (f == "csv") return detail::make_csv_encoder(read_csv_options(cfg), input);
  return detail::make_json_encoder(input);
}

// ---------------------------------------------------------------------------------------------
// Inference

namespace detail {

type_guess merge(type_guess a, type_guess b) noexcept {
  if (a == type_guess::unseen) return b;
  if (b == type_guess::unseen || a == b) return a;
  if ((a == type_guess::integer && b == type_guess::number) ||
      (a == type_guess::number && b == type_guess::integer))
    return type_guess::number;
  return type_guess::mixed;
}

}  // namespace detail

namespace {

using detail::type_guess;

type_guess guess_text(std::string_view t) {
  std::int64_t i;
  double d;
  if (detail::parse_int(t, i)) return type_guess::integer;
  if (detail::parse_number_text(t, d)) return type_guess::number;
  bool b;
  if (detail::parse_bool(t, b)) return type_guess::boolean;
  return type_guess::string;
}

core::schema_ptr infer_csv(const csv_options& opt, const std::vector<std::string>& samples,
                           bool& too_many) {
  std::vector<csv_field> fields;
  std::string scratch, error;
  std::vector<std::string> names;
  std::size_t first = 0;
  if (opt.header) {
    if (samples.empty()) return nullptr;
    if (!split_csv(samples[0], opt, fields, scratch, error)) return nullptr;
    if (fields.size() > max_inferred_fields) {
      too_many = true;
      return nullptr;
    }
    for (std::size_t i = 0; i < fields.size(); ++i) {
      std::string n(fields[i].text);
      if (n.empty()) n = "c" + std::to_string(i + 1);
      names.push_back(std::move(n));
    }
    first = 1;
  }
  std::vector<type_guess> guesses(names.size(), type_guess::unseen);
  std::size_t used = 0;
  for (std::size_t r = first; r < samples.size() && used < inference_sample_rows; ++r) {
    if (samples[r].empty()) continue;
    if (!split_csv(samples[r], opt, fields, scratch, error)) continue;
    ++used;
    if (!opt.header && fields.size() > max_inferred_fields) {
      too_many = true;
      return nullptr;
    }
    if (!opt.header && fields.size() > names.size()) {
      for (std::size_t i = names.size(); i < fields.size(); ++i)
        names.push_back("c" + std::to_string(i + 1));
      guesses.resize(names.size(), type_guess::unseen);
    }
    if (fields.size() != names.size()) continue;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const auto& f = fields[i];
      bool is_null = false;
      if (!f.quoted)
        for (const auto& nv : opt.null_values)
          if (f.text == nv) is_null = true;
      if (is_null) continue;
      guesses[i] = detail::merge(guesses[i], f.quoted ? type_guess::string : guess_text(f.text));
    }
  }
  if (names.empty()) return nullptr;
  auto s = std::make_shared<core::schema>();
  for (std::size_t i = 0; i < names.size(); ++i) {
    core::value_type t = core::value_type::string;
    switch (guesses[i]) {
      case type_guess::integer:
        t = core::value_type::integer;
        break;
      case type_guess::number:
        t = core::value_type::number;
        break;
      case type_guess::boolean:
        t = core::value_type::boolean;
        break;
      default:
        break;
    }
    std::string name = names[i];
    if (s->index_of(name) >= 0) name += "_" + std::to_string(i + 1);
    s->add(std::move(name), t);
  }
  return s;
}

}  // namespace

core::schema_ptr infer_schema(const spec::config& cfg, const std::vector<std::string>& samples) {
  auto f = format_name(cfg);
  if (f == "raw") return raw_schema();
  bool too_many = false;
  auto s = f == "csv" ? infer_csv(read_csv_options(cfg), samples, too_many)
                      : detail::infer_json(samples, too_many);
  if (too_many)
    cfg.fail("schema", "cannot infer a schema: the first records have more than " +
                           std::to_string(max_inferred_fields) +
                           " fields; declare `schema:` with the fields you need");
  return s;
}

void dead_letter_message(core::outputs& out, std::string_view component, std::string_view reason,
                         std::string_view message, std::int64_t time, std::string_view position) {
  if (out.dead_letter.width == 0)
    out.dead_letter.width = static_cast<std::uint32_t>(core::dead_letter_schema()->size());
  core::value* r = out.dead_letter.append(time);
  r[0] = std::string(reason);
  r[1] = std::string(component);
  r[2] = std::string(component);
  r[3] = std::string(position);
  r[4] = std::string(message);
  r[5] = core::dead_letter_time(time);
}

// ---------------------------------------------------------------------------------------------
// Text helpers shared by the formats

namespace detail {

namespace {
std::string_view trim(std::string_view t) noexcept {
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  return t;
}
}  // namespace

bool parse_int(std::string_view t, std::int64_t& out) noexcept {
  t = trim(t);
  if (!t.empty() && t.front() == '+') t.remove_prefix(1);
  if (t.empty()) return false;
  auto r = std::from_chars(t.data(), t.data() + t.size(), out);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

bool parse_double(std::string_view t, double& out) noexcept {
  t = trim(t);
  if (!t.empty() && t.front() == '+') t.remove_prefix(1);
  if (t.empty()) return false;
  auto r = std::from_chars(t.data(), t.data() + t.size(), out);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

bool parse_number_text(std::string_view t, double& out) noexcept {
  bool digit = false;
  for (char c : t)
    if (c >= '0' && c <= '9') digit = true;
  return digit && parse_double(t, out);
}

bool parse_bool(std::string_view t, bool& out) noexcept {
  t = trim(t);
  auto eq = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
      if ((a[i] | 0x20) != b[i]) return false;
    return true;
  };
  if (eq(t, "true"))
    out = true;
  else if (eq(t, "false"))
    out = false;
  else
    return false;
  return true;
}

void append_text(std::string& out, const core::value& v) {
  switch (core::type_of(v)) {
    case core::value_type::null:
      break;
    case core::value_type::boolean:
      out += std::get<bool>(v) ? "true" : "false";
      break;
    case core::value_type::integer: {
      char buf[24];
      auto r = std::to_chars(buf, buf + sizeof buf, std::get<std::int64_t>(v));
      out.append(buf, r.ptr);
      break;
    }
    case core::value_type::number: {
      double d = std::get<double>(v);
      if (d != d) {
        out += "NaN";
      } else {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof buf, d);
        out.append(buf, r.ptr);
      }
      break;
    }
    case core::value_type::string:
      out += std::get<std::string>(v);
      break;
  }
}

std::string describe(std::string_view text) {
  std::string out = "\"";
  if (text.size() > 40) {
    out.append(utf8_prefix(text, 40));  // not in the middle of a character
    out += "...";
  } else {
    out.append(text);
  }
  out += '"';
  return out;
}

}  // namespace detail

}  // namespace pel::connectors
