#pragma once
/// \file
/// The value of one field of a record: null, bool, int64, double or string.

#include <cstdint>
#include <cstring>
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

/// Appends `v` as a JSON value to `out`; the result is always valid JSON (RFC 8259). Strings
/// are quoted and escaped (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, other control
/// characters as `\u00XX`). Bytes that are not well-formed UTF-8 become U+FFFD, one for each
/// maximal invalid subsequence (the Unicode and WHATWG practice that Python's
/// `errors="replace"` and Rust's `from_utf8_lossy` follow). NaN and infinities, which JSON
/// cannot express, are written as `null`.
void append_json(std::string& out, const value& v);

/// Appends `s` as a JSON string, quoted and escaped as `append_json` does.
void append_json_string(std::string& out, std::string_view s);

/// Pieces of `stable_hash` kept inline so that the hot per-record call needs no jump.
namespace hash_detail {

/// Reads 8 (or 4) bytes at `p` as a little-endian number, whatever the host's byte order.
inline std::uint64_t load_le64(const char* p) noexcept {
  std::uint64_t w;
  std::memcpy(&w, p, sizeof w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap64(w);
#endif
  return w;
}
inline std::uint64_t load_le32(const char* p) noexcept {
  std::uint32_t w;
  std::memcpy(&w, p, sizeof w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  w = __builtin_bswap32(w);
#endif
  return w;
}

/// The 128-bit product of `a` and `b` folded to 64 bits (high half xor low half).
inline std::uint64_t fold_mul(std::uint64_t a, std::uint64_t b) noexcept {
  __extension__ using u128 = unsigned __int128;
  const u128 r = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

/// A bijective 64-bit finaliser (every input bit affects every output bit).
inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

/// `stable_hash` of the alternatives other than string and integer (out of line).
std::uint64_t stable_hash_other(const value& v) noexcept;

} // namespace hash_detail

/// The stable hash of the bytes `[p, p + n)` (the hash of a string value). Reads the bytes
/// eight at a time as little-endian words; the same bytes give the same hash on every host,
/// in every process and run.
inline std::uint64_t stable_hash_bytes(const char* p, std::size_t n) noexcept {
  using namespace hash_detail;
  constexpr std::uint64_t k_seed = 0x243f6a8885a308d3ULL;   // pi
  constexpr std::uint64_t k_len = 0x9e3779b97f4a7c15ULL;    // golden ratio
  constexpr std::uint64_t k_word = 0xb7e151628aed2a6bULL;   // e
  std::uint64_t h = k_seed ^ (static_cast<std::uint64_t>(n) * k_len);
  if (n >= 8) {
    const char* const end = p + n;
    for (; p + 8 <= end; p += 8) h = fold_mul(h ^ load_le64(p), k_word);
    if (const std::size_t r = static_cast<std::size_t>(end - p)) {
      // The last r bytes are the high bytes of the (overlapping) last word.
      h = fold_mul(h ^ (load_le64(end - 8) >> (64 - 8 * r)), k_word);
    }
  } else if (n >= 4) {
    // Two overlapping 4-byte reads cover all n bytes.
    h = fold_mul(h ^ (load_le32(p) | (load_le32(p + n - 4) << 32)), k_word);
  } else if (n > 0) {
    const auto b = [p](std::size_t i) {
      return static_cast<std::uint64_t>(static_cast<unsigned char>(p[i]));
    };
    h = fold_mul(h ^ (b(0) | (b(n / 2) << 8) | (b(n - 1) << 16)), k_word);
  }
  return mix64(h);
}

/// A hash of the value that is stable across processes, runs and hosts (it decides key
/// groups, so it must never change between builds; tests pin some values). Rules:
/// - null hashes to a constant; `true` and `false` to two constants;
/// - an integer `i` hashes to `mix64(i)` (so 0 hashes to 0);
/// - a double with an integral value (|d| < 9.2e18) hashes like the equal integer, so 3 and
///   3.0 meet in one key group; any other double hashes its IEEE bits with `mix64`;
/// - a string hashes its bytes with `stable_hash_bytes`.
inline std::uint64_t stable_hash(const value& v) noexcept {
  if (const auto* s = std::get_if<std::string>(&v)) return stable_hash_bytes(s->data(), s->size());
  if (const auto* i = std::get_if<std::int64_t>(&v))
    return hash_detail::mix64(static_cast<std::uint64_t>(*i));
  return hash_detail::stable_hash_other(v);
}

/// Mixes a second hash into a first (for composite keys).
inline std::uint64_t hash_combine(std::uint64_t a, std::uint64_t b) noexcept {
  return a ^ (b + 0x9e3779b97f4a7c15ULL + (a << 6) + (a >> 2));
}

/// Total order used by sorting and min/max: null < bool < numbers < string; ints and doubles
/// compare numerically. Returns <0, 0 or >0.
int compare(const value& a, const value& b) noexcept;

} // namespace pel::core
