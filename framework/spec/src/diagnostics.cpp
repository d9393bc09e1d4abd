#include "pel/spec/diagnostics.hpp"

#include <algorithm>
#include <cstdint>
#include <tuple>

namespace pel::spec {

namespace {

/// Length of the valid UTF-8 sequence of two or more bytes at `i`, or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  std::size_t len;
  std::uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) { len = 2; cp = b0 & 0x1F; }
  else if (b0 >= 0xE0 && b0 <= 0xEF) { len = 3; cp = b0 & 0x0F; }
  else if (b0 >= 0xF0 && b0 <= 0xF4) { len = 4; cp = b0 & 0x07; }
  else return 0;
  if (i + len > s.size()) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  // C1 controls (NEL among them) and the Unicode line and paragraph separators break lines
  // in some terminals and editors.
  if (cp <= 0x9F || cp == 0x2028 || cp == 0x2029) return 0;
  return len;
}

void append_hex(std::string& out, unsigned char c) {
  static const char digits[] = "0123456789ABCDEF";
  out += "\\x";
  out += digits[c >> 4];
  out += digits[c & 0xF];
}

} // namespace

std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7F) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c >= 0x80) {
      if (const std::size_t len = utf8_sequence(text, i)) {
        out.append(text.substr(i, len));
        i += len;
        continue;
      }
      append_hex(out, c);
    } else {
      append_hex(out, c);
    }
    ++i;
  }
  return out;
}

std::string diagnostic::format() const {
  std::string out = one_line(file);
  out += ':' + std::to_string(at.line) + ':' + std::to_string(at.column) + ": ";
  if (!path.empty()) out += one_line(path) + ": ";
  out += one_line(message);
  return out;
}

void diagnostics::add(std::string file, mark at, std::string path, std::string message) {
  items_.push_back({std::move(file), at, std::move(path), std::move(message)});
}

void diagnostics::sort() {
  auto key = [](const diagnostic& d) {
    return std::tie(d.file, d.at.line, d.at.column, d.path, d.message);
  };
  std::stable_sort(items_.begin(), items_.end(),
                   [&](const diagnostic& a, const diagnostic& b) { return key(a) < key(b); });
  items_.erase(std::unique(items_.begin(), items_.end(),
                           [&](const diagnostic& a, const diagnostic& b) { return key(a) == key(b); }),
               items_.end());
}

std::string diagnostics::format() const {
  std::string out;
  for (const auto& d : items_) {
    out += d.format();
    out += '\n';
  }
  return out;
}

} // namespace pel::spec
