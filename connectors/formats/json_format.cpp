// JSON lines: decoding with simdjson's DOM parser into a reused padded buffer, encoding with
// field prefixes built once.
#include "format_impl.hpp"

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string_view>
#include <unordered_map>

namespace pel::connectors::detail {

namespace {

using core::value_type;
using simdjson::dom::element;
using simdjson::dom::element_type;

std::string describe_element(const element& e) {
  switch (e.type()) {
    case element_type::ARRAY:
      return "array";
    case element_type::OBJECT:
      return "object";
    case element_type::INT64:
      return "int " + std::to_string(int64_t(e));
    case element_type::UINT64:
      return "int " + std::to_string(uint64_t(e)) + " (above the int64 range)";
    case element_type::DOUBLE: {
      std::string out = "double ";
      append_text(out, core::value{double(e)});
      return out;
    }
    case element_type::STRING:
      return "string " + describe(std::string_view(e));
    case element_type::BOOL:
      return bool(e) ? "bool true" : "bool false";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "?";
}

/// The value of `e` without a declared type.
core::value natural(const element& e) {
  switch (e.type()) {
    case element_type::INT64:
      return std::int64_t(e);
    case element_type::UINT64:
      return static_cast<double>(std::uint64_t(e));
    case element_type::DOUBLE:
      return double(e);
    case element_type::STRING:
      return std::string(std::string_view(e));
    case element_type::BOOL:
      return bool(e);
    case element_type::NULL_VALUE:
      return {};
    case element_type::ARRAY:
    case element_type::OBJECT:
      return simdjson::minify(e);
  }
  return {};
}

/// Reads `e` as the declared type `t`; false when it is of another type. JSON values are not
/// converted between types ("12" is not an int, 5 is not a string, 7.0 is not an int); the
/// one widening is an integer where a double is declared. Null fits every type.
bool coerce(const element& e, value_type t, core::value& out) {
  auto et = e.type();
  if (et == element_type::NULL_VALUE) return true;  // stays null
  switch (t) {
    case value_type::string:
      if (et != element_type::STRING) return false;
      out = std::string(std::string_view(e));
      return true;
    case value_type::integer:
      if (et != element_type::INT64) return false;  // UINT64: above the int64 range
      out = std::int64_t(e);
      return true;
    case value_type::number:
      if (et == element_type::INT64)
        out = static_cast<double>(std::int64_t(e));
      else if (et == element_type::UINT64)
        out = static_cast<double>(std::uint64_t(e));
      else if (et == element_type::DOUBLE)
        out = double(e);
      else
        return false;
      return true;
    case value_type::boolean:
      if (et != element_type::BOOL) return false;
      out = bool(e);
      return true;
    case value_type::null:
      return true;
  }
  return false;
}

const char* json_kind(element_type t) {
  switch (t) {
    case element_type::ARRAY:
      return "an array";
    case element_type::OBJECT:
      return "an object";
    case element_type::STRING:
      return "a string";
    case element_type::NULL_VALUE:
      return "null";
    case element_type::BOOL:
      return "a bool";
    default:
      return "a number";
  }
}

class json_decoder final : public decoder {
public:
  explicit json_decoder(core::schema_ptr s) : schema_(std::move(s)) {
    const auto& fields = schema_->fields();
    for (std::size_t i = 0; i < fields.size(); ++i) index_.emplace(fields[i].name, i);
  }

  const core::schema_ptr& schema() const override { return schema_; }

  bool decode(std::string_view message, core::value* row, std::string& error) override {
    // simdjson reads up to SIMDJSON_PADDING bytes past the end: parse from our own buffer,
    // reused between messages, rather than letting the parser allocate one per call.
    const std::size_t need = message.size() + simdjson::SIMDJSON_PADDING;
    if (buffer_.size() < need) buffer_.resize(need * 2);
    std::memcpy(buffer_.data(), message.data(), message.size());
    std::memset(buffer_.data() + message.size(), 0, simdjson::SIMDJSON_PADDING);
    element doc;
    auto err = parser_.parse(buffer_.data(), message.size(), false).get(doc);
    if (err) {
      error = std::string("invalid JSON: ") + simdjson::error_message(err);
      return false;
    }
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) {
      error = std::string("expected a JSON object, found ") + json_kind(doc.type());
      return false;
    }
    const auto& fields = schema_->fields();
    const std::size_t n = fields.size();
    std::size_t next = 0;
    for (auto kv : obj) {
      // Fields usually come in schema order: try the next expected one before scanning.
      std::size_t idx = n;
      if (next < n && fields[next].name == kv.key) {
        idx = next;
      } else if (auto it = index_.find(kv.key); it != index_.end()) {
        idx = it->second;
      }
      if (idx == n) continue;  // not in the schema: ignored
      next = idx + 1;
      const auto& type = fields[idx].type;
      if (!type) {
        row[idx] = natural(kv.value);
      } else if (!coerce(kv.value, *type, row[idx])) {
        error = "field '" + fields[idx].name + "': expected " +
                std::string(core::to_string(*type)) + ", found " + describe_element(kv.value);
        return false;
      }
    }
    return true;
  }

private:
  core::schema_ptr schema_;
  /// Field name → index; views of the names in `schema_`, which it keeps alive.
  std::unordered_map<std::string_view, std::size_t> index_;
  simdjson::dom::parser parser_;
  std::vector<char> buffer_;
};

void append_json_value(std::string& out, const core::value& v) {
  switch (core::type_of(v)) {
    case value_type::null:
      out += "null";
      break;
    case value_type::boolean:
      out += std::get<bool>(v) ? "true" : "false";
      break;
    case value_type::integer:
    case value_type::number: {
      if (auto d = std::get_if<double>(&v); d && !std::isfinite(*d)) {
        out += "null";  // JSON has no NaN or infinity
        break;
      }
      append_text(out, v);
      break;
    }
    case value_type::string:
      core::append_json(out, v);
      break;
  }
}

class json_encoder final : public encoder {
public:
  explicit json_encoder(const core::schema& s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      std::string p = i == 0 ? "{" : ",";
      core::append_json(p, core::value{s[i].name});
      p += ':';
      prefixes_.push_back(std::move(p));
    }
  }

  void encode(const core::value* row, std::string& out) override {
    if (prefixes_.empty()) {
      out += "{}";
      return;
    }
    for (std::size_t i = 0; i < prefixes_.size(); ++i) {
      out += prefixes_[i];
      append_json_value(out, row[i]);
    }
    out += '}';
  }

private:
  std::vector<std::string> prefixes_;
};

type_guess guess_element(const element& e) {
  switch (e.type()) {
    case element_type::INT64:
      return type_guess::integer;
    case element_type::UINT64:
    case element_type::DOUBLE:
      return type_guess::number;
    case element_type::BOOL:
      return type_guess::boolean;
    case element_type::NULL_VALUE:
      return type_guess::unseen;
    default:
      return type_guess::string;  // strings, and nested JSON kept as text
  }
}

}  // namespace

std::unique_ptr<decoder> make_json_decoder(core::schema_ptr schema) {
  return std::make_unique<json_decoder>(std::move(schema));
}

std::unique_ptr<encoder> make_json_encoder(const core::schema_ptr& schema) {
  return std::make_unique<json_encoder>(*schema);
}

core::schema_ptr infer_json(const std::vector<std::string>& samples, bool& too_many) {
  simdjson::dom::parser parser;
  std::vector<std::string> names;
  names.reserve(max_inferred_fields);  // never moves: `index` holds views of the names
  std::unordered_map<std::string_view, std::size_t> index;
  std::vector<type_guess> guesses;
  std::size_t used = 0;
  for (const auto& s : samples) {
    if (used >= inference_sample_rows) break;
    element doc;
    if (parser.parse(s).get(doc)) continue;
    simdjson::dom::object obj;
    if (doc.get_object().get(obj)) continue;
    ++used;
    for (auto kv : obj) {
      auto it = index.find(kv.key);
      std::size_t i = it != index.end() ? it->second : names.size();
      if (i == names.size()) {
        if (names.size() == max_inferred_fields) {
          too_many = true;
          return nullptr;
        }
        names.emplace_back(kv.key);
        index.emplace(names.back(), i);
        guesses.push_back(type_guess::unseen);
      }
      guesses[i] = merge(guesses[i], guess_element(kv.value));
    }
  }
  if (used == 0) return nullptr;
  auto out = std::make_shared<core::schema>();
  for (std::size_t i = 0; i < names.size(); ++i) {
    switch (guesses[i]) {
      case type_guess::boolean:
        out->add(names[i], value_type::boolean);
        break;
      case type_guess::integer:
        out->add(names[i], value_type::integer);
        break;
      case type_guess::number:
        out->add(names[i], value_type::number);
        break;
      case type_guess::string:
        out->add(names[i], value_type::string);
        break;
      default:
        out->add(names[i]);
        break;
    }
  }
  return out;
}

}  // namespace pel::connectors::detail
