#pragma once
/// \file
/// Small helpers shared by the end-to-end tests: temporary folders, whole-file reads and
/// writes, and number comparison.

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>

namespace pel::e2e {

namespace fs = std::filesystem;

/// A fresh folder under the system temp folder, removed with its contents at destruction.
class temp_dir {
public:
  temp_dir() {
    static std::atomic<int> counter{0};
    std::random_device rd;
    for (int attempt = 0; attempt < 100; ++attempt) {
      auto p = fs::temp_directory_path() /
               ("pel_e2e_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
                std::to_string(rd() % 1000000));
      std::error_code ec;
      if (fs::create_directory(p, ec)) {
        path_ = p;
        return;
      }
    }
    throw std::runtime_error("cannot create a temp folder");
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const fs::path& path() const noexcept { return path_; }
  /// `name` inside the folder, as a string.
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

private:
  fs::path path_;
};

/// The whole content of a file ("" when it does not exist).
inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

/// Writes `text` to `path`, replacing it.
inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + path);
}

/// Everything a shell command writes to stdout (for kcat and other clients).
inline std::string shell_output(const std::string& cmd) {
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[65536];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  return out;
}

/// True when a and b agree within `rel` relative (or 1e-12 absolute near zero).
inline bool close_to(double a, double b, double rel = 1e-9) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  double scale = std::max(std::fabs(a), std::fabs(b));
  return std::fabs(a - b) <= std::max(rel * scale, 1e-12);
}

}  // namespace pel::e2e
