#pragma once
/// \file
/// Decoding one UTF-8 sequence, strictly (RFC 3629: no overlong forms, no surrogates, nothing
/// above U+10FFFF). Shared by everything that checks or escapes text.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace pel::core {

/// Length of the well-formed UTF-8 sequence that starts at `s[i]` (1 for ASCII), with its
/// code point in `cp`; 0 when the bytes there are not well-formed UTF-8.
inline std::size_t utf8_decode(std::string_view s, std::size_t i, std::uint32_t& cp) noexcept {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  std::size_t len;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0Fu;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07u;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3Fu);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return len;
}

} // namespace pel::core
