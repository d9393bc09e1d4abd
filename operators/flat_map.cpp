#include "flat_map.hpp"

#include "stateless_common.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <utility>

namespace pel::operators {

namespace {

// --- a small JSON array reader (values only; objects and nested arrays kept as text) --------

struct json_reader {
  std::string_view s;
  std::size_t i = 0;
  std::string error;

  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  bool fail(const std::string& msg) {
    if (error.empty()) error = msg + " at offset " + std::to_string(i);
    return false;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool hex4(unsigned& cp) {
    if (i + 4 > s.size()) return fail("truncated \\u escape");
    auto r = std::from_chars(s.data() + i, s.data() + i + 4, cp, 16);
    if (r.ec != std::errc() || r.ptr != s.data() + i + 4) return fail("bad \\u escape");
    i += 4;
    return true;
  }

  bool string(std::string& out) {
    ++i;  // opening quote
    while (i < s.size()) {
      char c = s[i++];
      if (c == '"') return true;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i >= s.size()) break;
      char e = s[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && i + 1 < s.size() && s[i] == '\\' && s[i + 1] == 'u') {
            i += 2;
            unsigned lo;
            if (!hex4(lo)) return false;
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default: return fail(std::string("bad escape '\\") + e + "'");
      }
    }
    return fail("unterminated string");
  }

  /// Skips a nested object or array, respecting strings; keeps its text.
  bool nested(core::value& out) {
    const std::size_t begin = i;
    int depth = 0;
    while (i < s.size()) {
      char c = s[i];
      if (c == '"') {
        std::string ignored;
        if (!string(ignored)) return false;
        continue;
      }
      if (c == '[' || c == '{') ++depth;
      if (c == ']' || c == '}') {
        if (--depth == 0) {
          ++i;
          out = std::string(s.substr(begin, i - begin));
          return true;
        }
      }
      ++i;
    }
    return fail("unterminated nested value");
  }

  bool literal(std::string_view word, core::value v, core::value& out) {
    if (s.substr(i, word.size()) != word) return fail("unexpected character");
    i += word.size();
    out = std::move(v);
    return true;
  }

  bool number(core::value& out) {
    const std::size_t begin = i;
    bool is_double = false;
    if (i < s.size() && s[i] == '-') ++i;
    while (i < s.size()) {
      char c = s[i];
      if (c >= '0' && c <= '9') ++i;
      else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') is_double = true, ++i;
      else break;
    }
    std::string_view text = s.substr(begin, i - begin);
    if (text.empty() || text == "-") return fail("unexpected character");
    if (!is_double) {
      std::int64_t v;
      auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      if (r.ec == std::errc() && r.ptr == text.data() + text.size()) {
        out = v;
        return true;
      }
    }
    std::string tmp(text);
    char* end = nullptr;
    double d = std::strtod(tmp.c_str(), &end);
    if (end != tmp.c_str() + tmp.size() || !std::isfinite(d)) return fail("bad number");
    out = d;
    return true;
  }

  bool element(core::value& out) {
    ws();
    if (i >= s.size()) return fail("unexpected end");
    char c = s[i];
    if (c == '"') {
      std::string str;
      if (!string(str)) return false;
      out = std::move(str);
      return true;
    }
    if (c == '[' || c == '{') return nested(out);
    if (c == 't') return literal("true", true, out);
    if (c == 'f') return literal("false", false, out);
    if (c == 'n') return literal("null", core::value{}, out);
    return number(out);
  }

  bool array(std::vector<core::value>& out) {
    ws();
    if (i >= s.size() || s[i] != '[') return fail("expected a JSON array '['");
    ++i;
    ws();
    if (i < s.size() && s[i] == ']') {
      ++i;
    } else {
      while (true) {
        core::value v;
        if (!element(v)) return false;
        out.push_back(std::move(v));
        ws();
        if (i < s.size() && s[i] == ',') {
          ++i;
          continue;
        }
        if (i < s.size() && s[i] == ']') {
          ++i;
          break;
        }
        return fail("expected ',' or ']'");
      }
    }
    ws();
    if (i != s.size()) return fail("unexpected text after the array");
    return true;
  }
};

enum class mode { split, explode };

class flat_map_operator final : public core::operator_base {
public:
  flat_map_operator(core::schema_ptr in, core::schema_ptr out, mode m, int field, int into,
                    int index, std::string separator, bool keep_empty)
    : in_(std::move(in)), out_(std::move(out)), mode_(m), field_(field), into_(into),
      index_(index), separator_(std::move(separator)), keep_empty_(keep_empty) {}

  core::schema_ptr output_schema() const override { return out_; }
  /// No state: instances can come and go at any time.
  bool rescalable() const override { return true; }

  void open(const core::operator_context& ctx) override { name_ = ctx.name; }

  void process(core::batch& in, int, core::outputs& out) override {
    if (out.main.width == 0) out.main.width = static_cast<std::uint32_t>(out_->size());
    const std::size_t rows = in.size();
    for (std::size_t r = 0; r < rows; ++r) {
      core::value* row = in.row(r);
      const std::int64_t t = in.times[r];
      const core::value& v = row[field_];
      if (core::is_null(v)) continue;
      const std::string* text = std::get_if<std::string>(&v);
      if (text == nullptr) {
        out.dead(name_, "field '" + (*in_)[static_cast<std::size_t>(field_)].name +
                            "' holds " + std::string(core::to_string(core::type_of(v))) +
                            ", expected a string", row, *in_, t);
        continue;
      }
      pieces_.clear();
      if (mode_ == mode::split) {
        split(*text);
      } else {
        std::string error;
        if (!parse_json_array(*text, pieces_, error)) {
          out.dead(name_, "field '" + (*in_)[static_cast<std::size_t>(field_)].name +
                              "' is not a JSON array: " + error, row, *in_, t);
          continue;
        }
        if (!keep_empty_) drop_empty();
      }
      emit(row, in.width, t, out);
    }
    in.clear();
  }

private:
  void split(const std::string& s) {
    std::size_t pos = 0;
    while (true) {
      std::size_t hit = s.find(separator_, pos);
      std::size_t end = hit == std::string::npos ? s.size() : hit;
      if (keep_empty_ || end > pos) pieces_.emplace_back(s.substr(pos, end - pos));
      if (hit == std::string::npos) break;
      pos = hit + separator_.size();
    }
  }

  void drop_empty() {
    std::size_t w = 0;
    for (std::size_t r = 0; r < pieces_.size(); ++r) {
      auto& p = pieces_[r];
      if (core::is_null(p)) continue;
      if (auto s = std::get_if<std::string>(&p); s && s->empty()) continue;
      if (w != r) pieces_[w] = std::move(p);  // never self-move: it would empty the string
      ++w;
    }
    pieces_.resize(w);
  }

  /// One output row per piece: the other fields are copied, and moved for the last piece.
  void emit(core::value* row, std::uint32_t in_width, std::int64_t t, core::outputs& out) {
    const std::size_t n = pieces_.size();
    for (std::size_t k = 0; k < n; ++k) {
      core::value* dst = out.main.append(t);
      const bool last = k + 1 == n;
      for (std::uint32_t c = 0; c < in_width; ++c) {
        if (static_cast<int>(c) == into_) continue;
        if (last) dst[c] = std::move(row[c]);
        else dst[c] = row[c];
      }
      dst[into_] = std::move(pieces_[k]);
      if (index_ >= 0) dst[index_] = static_cast<std::int64_t>(k);
    }
  }

  core::schema_ptr in_;
  core::schema_ptr out_;
  mode mode_;
  int field_;
  int into_;
  int index_;
  std::string separator_;
  bool keep_empty_;
  std::vector<core::value> pieces_;  ///< reused between rows
  std::string name_ = "flat_map";
};

} // namespace

bool parse_json_array(std::string_view text, std::vector<core::value>& out, std::string& error) {
  json_reader r;
  r.s = text;
  if (r.array(out)) return true;
  error = r.error;
  return false;
}

spec::component_schema flat_map_schema() {
  spec::component_schema s;
  s.type = "flat_map";
  s.kind = spec::component_kind::operator_;
  s.summary = "Turns one record into one record per piece of a field.";
  s.description =
      "With `mode: split` the string in `field` is cut at every `separator`; with "
      "`mode: explode` it is read as a JSON array (`[1, \"a\", null]`). Each piece becomes one "
      "record that keeps all the other fields and the event time, with the piece in `into` "
      "(by default `field` itself, replaced in place; a new name is appended to the schema). "
      "`index` adds the piece's position (0, 1, ...).\n\n"
      "Empty pieces (and, for explode, null elements) are skipped unless `keep_empty` is true. "
      "A null field gives no records. A field that is not a string, or not a JSON array in "
      "explode mode, sends the record to `<name>.dead_letter`.";
  s.params = {
      spec::param::string("mode").def("split").one_of({"split", "explode"}).doc(
          "`split`: cut text at `separator`; `explode`: read a JSON array."),
      spec::param::string("field").req().names_input_field(0).doc(
          "The field holding the text or the JSON array."),
      spec::param::string("separator").def(",").doc("Where to cut in split mode (any text)."),
      spec::param::string("into").doc(
          "The output field for each piece; defaults to `field` (replaced in place)."),
      spec::param::boolean("keep_empty").def("false").doc(
          "Emit empty pieces (and null elements) too."),
      spec::param::string("index").doc(
          "If set, a new field with this name holds each piece's position, from 0."),
  };
  s.example =
      "operators:\n"
      "  tags:\n"
      "    type: flat_map\n"
      "    input: readings\n"
      "    mode: split\n"
      "    field: tags\n"
      "    separator: \";\"\n"
      "    into: tag\n";
  s.min_inputs = 1;
  s.max_inputs = 1;
  return s;
}

core::operator_ptr make_flat_map(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  const core::schema_ptr& in = inputs.at(0);
  const auto names = names_of(*in);
  const std::string mode_text = cfg.get_string("mode");
  mode m;
  if (mode_text == "split") m = mode::split;
  else if (mode_text == "explode") m = mode::explode;
  else cfg.fail("mode", "mode must be split or explode, found '" + mode_text + "'");

  const std::string field_name = cfg.get_string("field");
  const int field = in->index_of(field_name);
  // Reported and gone on from (when gathering), so that the other settings are checked too.
  if (field < 0) cfg.report("field", unknown_field_message(field_name, names));

  const std::string separator = cfg.get_string("separator");
  if (m == mode::split && separator.empty())
    cfg.report("separator", "the separator is empty: give the text to cut at, e.g. \",\"");

  std::vector<core::field> out_fields(in->fields());
  const auto piece_type = m == mode::split ? std::optional<core::value_type>(core::value_type::string)
                                           : std::nullopt;
  int into = field;
  if (cfg.has("into")) {
    const std::string into_name = cfg.get_string("into");
    if (into_name.empty()) cfg.fail("into", "the output field name is empty");
    into = in->index_of(into_name);
    if (into < 0) {
      into = static_cast<int>(out_fields.size());
      out_fields.push_back({into_name, piece_type});
    }
  }
  if (into >= 0) out_fields[static_cast<std::size_t>(into)].type = piece_type;

  int index = -1;
  if (cfg.has("index")) {
    const std::string index_name = cfg.get_string("index");
    for (const auto& f : out_fields)
      if (f.name == index_name)
        cfg.fail("index", "a field called '" + index_name + "' exists already: choose another name");
    index = static_cast<int>(out_fields.size());
    out_fields.push_back({index_name, core::value_type::integer});
  }

  return std::make_unique<flat_map_operator>(in, std::make_shared<core::schema>(std::move(out_fields)),
                                             m, field, into, index, separator,
                                             cfg.get_bool("keep_empty"));
}

} // namespace pel::operators
