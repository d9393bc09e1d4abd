#pragma once
/// \file
/// A tiny JSON reader for the tests' view of pel's output: one JSON object per line. It is
/// written apart from pel's own decoder on purpose, so that the tests check pel's output
/// with an independent reading of it. Objects and arrays nested in a line are kept as their
/// raw text.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace pel::e2e {

/// A JSON scalar (nested objects and arrays are held as `raw_json`).
struct raw_json {
  std::string text;
  bool operator==(const raw_json& o) const { return text == o.text; }
};
using json_value = std::variant<std::monostate, bool, std::int64_t, double, std::string, raw_json>;

/// One JSON object: field name → value, plus the field names in their order.
struct json_object {
  std::map<std::string, json_value> fields;
  std::vector<std::string> order;

  bool has(const std::string& k) const { return fields.count(k) != 0; }
  bool is_null(const std::string& k) const {
    auto it = fields.find(k);
    return it == fields.end() || it->second.index() == 0;
  }
  /// The field as a number (int or double); throws std::runtime_error otherwise.
  double num(const std::string& k) const;
  /// The field as an integer; throws std::runtime_error otherwise.
  std::int64_t integer(const std::string& k) const;
  /// The field as a string; throws std::runtime_error otherwise.
  const std::string& str(const std::string& k) const;
  /// The field as a bool; throws std::runtime_error otherwise.
  bool boolean(const std::string& k) const;
};

/// Parses one line holding a JSON object; nullopt (and `error` set) when it is not one.
std::optional<json_object> parse_json_object(std::string_view line, std::string* error = nullptr);

/// Parses every non-empty line of `text` as a JSON object. Throws std::runtime_error naming
/// the first line that is not one.
std::vector<json_object> parse_json_lines(const std::string& text);

}  // namespace pel::e2e
