#pragma once
/// \file
/// Byte-level writer and reader that operators use to snapshot and restore their state.

#include "pel/core/value.hpp"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace pel::core {

/// Appends state to a byte string in a fixed little-endian layout. Operators write their key
/// groups in order so that a restore can pick a subset of them (see pel::state).
class state_writer {
public:
  template <class T, class = std::enable_if_t<std::is_arithmetic_v<T>>>
  void put(T x) {
    char buf[sizeof(T)];
    std::memcpy(buf, &x, sizeof(T));
    bytes_.append(buf, sizeof(T));
  }
  void put_string(std::string_view s) {
    put<std::uint64_t>(s.size());
    bytes_.append(s.data(), s.size());
  }
  void put_value(const value& v);

  const std::string& bytes() const noexcept { return bytes_; }
  std::string take() noexcept { return std::move(bytes_); }

private:
  std::string bytes_;
};

/// Reads what a `state_writer` wrote. Throws `std::runtime_error` on truncated input.
class state_reader {
public:
  explicit state_reader(std::string_view bytes) : bytes_(bytes) {}

  template <class T, class = std::enable_if_t<std::is_arithmetic_v<T>>>
  T get() {
    need(sizeof(T));
    T x;
    std::memcpy(&x, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return x;
  }
  std::string get_string() {
    auto n = get<std::uint64_t>();
    need(n);
    std::string s(bytes_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  value get_value();
  bool at_end() const noexcept { return pos_ == bytes_.size(); }

private:
  void need(std::size_t n) const {
    if (bytes_.size() - pos_ < n) throw std::runtime_error("state snapshot is truncated");
  }
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

} // namespace pel::core
