#pragma once
/// \file
/// The value of one field of a record: null, bool, int64, double or string.

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace pel::core {

/// The type of a field value. The order matches the alternatives of `value`.
enum class value_type : std::uint8_t { null, boolean, integer, number, string };

/// One field value. Records hold values by position; names live in the schema.
using value = std::variant<std::monostate, bool, std::int64_t, double, std::string>;

/// The type held by `v`.
inline value_type type_of(const value& v) noexcept { return static_cast<value_type>(v.index()); }

inline bool is_null(const value& v) noexcept { return v.index() == 0; }

/// Name of a value type as written in YAML schemas and error messages.
std::string_view to_string(value_type t) noexcept;

/// Parses a type name ("null", "bool", "int", "double", "string"); false if unknown.
bool parse_value_type(std::string_view name, value_type& out) noexcept;

/// True when `v` is an integer or a double; stores it as a double in `out`.
inline bool as_number(const value& v, double& out) noexcept {
  if (auto i = std::get_if<std::int64_t>(&v)) {
    out = static_cast<double>(*i);
    return true;
  }
  if (auto d = std::get_if<double>(&v)) {
    out = *d;
    return true;
  }
  return false;
}

/// Text form used by CSV output and string functions: null is empty, bools are true/false,
/// doubles use the shortest form that reads back to the same value.
std::string to_text(const value& v);

/// Appends `v` as a JSON value (strings quoted and escaped) to `out`.
void append_json(std::string& out, const value& v);

/// A hash of the value that is stable across processes and runs (used for key groups).
std::uint64_t stable_hash(const value& v) noexcept;

/// Mixes a second hash into a first (for composite keys).
inline std::uint64_t hash_combine(std::uint64_t a, std::uint64_t b) noexcept {
  return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
}

/// Total order used by sorting and min/max: null < bool < numbers < string; ints and doubles
/// compare numerically. Returns <0, 0 or >0.
int compare(const value& a, const value& b) noexcept;

} // namespace pel::core
