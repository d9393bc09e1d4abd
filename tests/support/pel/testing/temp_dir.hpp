#pragma once
// A fresh directory under the system's temporary folder, removed with everything in it when
// the object goes.
#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace pel::testing {

class temp_dir {
public:
  explicit temp_dir(const std::string& prefix = "pel-test-") {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() / (prefix + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  /// The path of `name` inside it.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
  std::filesystem::path path_;
};

} // namespace pel::testing
