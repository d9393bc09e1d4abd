#include "pel/spec/diagnostics.hpp"
#include "pel/core/utf8.hpp"

#include <algorithm>
#include <cstdint>
#include <tuple>

namespace pel::spec {

namespace {

/// Length of the valid UTF-8 sequence of two or more bytes at `i` that is safe to show on a
/// line, or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  std::uint32_t cp = 0;
  const std::size_t len = core::utf8_decode(s, i, cp);
  // ASCII is handled by the caller; C1 controls (NEL among them) and the Unicode line and
  // paragraph separators break lines in some terminals and editors.
  if (len < 2 || cp <= 0x9F || cp == 0x2028 || cp == 0x2029) return 0;
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
