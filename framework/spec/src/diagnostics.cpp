#include "pel/spec/diagnostics.hpp"

#include <algorithm>
#include <tuple>

namespace pel::spec {

std::string diagnostic::format() const {
  std::string out = file;
  out += ':' + std::to_string(at.line) + ':' + std::to_string(at.column) + ": ";
  if (!path.empty()) out += path + ": ";
  out += message;
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
