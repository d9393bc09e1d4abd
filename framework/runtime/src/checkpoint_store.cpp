#include "checkpoint_store.hpp"

#include <zlib.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>

namespace fs = std::filesystem;

namespace pel::runtime {

namespace {

constexpr char magic[4] = {'P', 'E', 'L', 'S'};
constexpr std::uint32_t file_version = 1;
constexpr std::size_t header_size = 4 + 4 + 4 + 8;
constexpr const char* manifest_name = "MANIFEST";

std::string hex32(std::uint32_t v) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

[[noreturn]] void fail_io(const std::string& what, const std::string& path) {
  throw std::runtime_error("checkpoint: cannot " + what + " " + path + ": " + std::strerror(errno));
}

/// Writes `data` to `path` through a temporary file: write, fsync, rename.
void write_atomically(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_io("create", tmp);
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      fail_io("write", tmp);
    }
    off += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail_io("sync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail_io("rename", tmp);
}

void sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("checkpoint: cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// "chk-00000000000000000012" -> 12; 0 when the name is not a checkpoint's.
std::uint64_t id_of_dir(const std::string& name) {
  if (name.size() != 24 || name.compare(0, 4, "chk-") != 0) return 0;
  std::uint64_t id = 0;
  for (std::size_t i = 4; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return 0;
    id = id * 10 + static_cast<std::uint64_t>(name[i] - '0');
  }
  return id;
}

/// The payload of a state file, checked against its header and the manifest's size and CRC.
std::string read_state_file(const std::string& path, std::uint64_t size, std::uint32_t crc) {
  std::string raw = read_file(path);
  if (raw.size() < header_size || std::memcmp(raw.data(), magic, 4) != 0)
    throw std::runtime_error("checkpoint file " + path + " is not a PEL state file");
  std::uint32_t version = 0, fcrc = 0;
  std::uint64_t fsize = 0;
  std::memcpy(&version, raw.data() + 4, 4);
  std::memcpy(&fcrc, raw.data() + 8, 4);
  std::memcpy(&fsize, raw.data() + 12, 8);
  if (version != file_version)
    throw std::runtime_error("checkpoint file " + path + " has unknown version " + std::to_string(version));
  if (raw.size() - header_size != fsize || fsize != size)
    throw std::runtime_error("checkpoint file " + path + " is truncated: " +
                             std::to_string(raw.size() - header_size) + " bytes of " + std::to_string(size));
  std::string payload = raw.substr(header_size);
  const std::uint32_t actual = checkpoint_crc32(payload);
  if (actual != fcrc || actual != crc)
    throw std::runtime_error("checkpoint file " + path + " fails its checksum (crc32 " + hex32(actual) +
                             ", manifest says " + hex32(crc) + ")");
  return payload;
}

struct manifest {
  std::uint64_t id = 0;
  std::string pipeline;
  std::string fingerprint;
  std::int64_t time_ms = 0;
  struct file {
    std::string key;
    std::uint64_t size = 0;
    std::uint32_t crc = 0;
  };
  std::vector<file> files;
};

manifest parse_manifest(const std::string& path) {
  std::istringstream in(read_file(path));
  manifest m;
  std::string line;
  if (!std::getline(in, line) || line != "pel-checkpoint 1")
    throw std::runtime_error("checkpoint manifest " + path + " has an unknown format");
  bool end = false;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string word;
    ls >> word;
    if (word == "id") ls >> m.id;
    else if (word == "pipeline") std::getline(ls >> std::ws, m.pipeline);
    else if (word == "plan") std::getline(ls >> std::ws, m.fingerprint);
    else if (word == "time_ms") ls >> m.time_ms;
    else if (word == "file") {
      manifest::file f;
      std::string crc;
      ls >> f.key >> f.size >> crc;
      f.crc = static_cast<std::uint32_t>(std::stoul(crc, nullptr, 16));
      m.files.push_back(std::move(f));
    } else if (word == "end") end = true;
  }
  if (!end) throw std::runtime_error("checkpoint manifest " + path + " is truncated");
  return m;
}

} // namespace

std::uint32_t checkpoint_crc32(std::string_view data) {
  uLong c = crc32(0L, Z_NULL, 0);
  // zlib takes the length as uInt: feed large blobs in pieces.
  std::size_t off = 0;
  while (off < data.size()) {
    const std::size_t n = std::min<std::size_t>(data.size() - off, 1u << 30);
    c = crc32(c, reinterpret_cast<const Bytef*>(data.data() + off), static_cast<uInt>(n));
    off += n;
  }
  return static_cast<std::uint32_t>(c);
}

checkpoint_store::checkpoint_store(std::string dir, std::string pipeline, std::string fingerprint,
                                   std::uint32_t keep)
  : dir_(std::move(dir)), pipeline_(std::move(pipeline)), fingerprint_(std::move(fingerprint)),
    keep_(std::max<std::uint32_t>(1, keep)) {}

std::string checkpoint_store::path_of(std::uint64_t id) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "chk-%020llu", static_cast<unsigned long long>(id));
  return dir_ + "/" + buf;
}

checkpoint_store::recovered checkpoint_store::open() {
  recovered r;
  if (dir_.empty()) return r;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_))
    throw std::runtime_error("state directory " + dir_ + " cannot be created: " + ec.message());
  std::vector<std::uint64_t> ids;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (!e.is_directory()) continue;
    if (auto id = id_of_dir(e.path().filename().string())) ids.push_back(id);
  }
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string name = e.path().filename().string();
    if (name.size() > 8 && name.compare(name.size() - 8, 8, ".damaged") == 0)
      r.highest = std::max(r.highest, id_of_dir(name.substr(0, name.size() - 8)));
  }
  std::sort(ids.rbegin(), ids.rend());
  if (!ids.empty()) r.highest = std::max(r.highest, ids.front());
  std::lock_guard<std::mutex> lock(mu_);
  for (auto id : ids) {
    const std::string p = path_of(id);
    if (!fs::exists(p + "/" + manifest_name)) {
      // Begun, never completed (the process ended during it): not a checkpoint.
      fs::remove_all(p, ec);
      continue;
    }
    try {
      manifest m = parse_manifest(p + "/" + manifest_name);
      if (m.pipeline != pipeline_ || m.fingerprint != fingerprint_)
        throw std::invalid_argument("state directory " + dir_ + " holds checkpoint " + std::to_string(id) +
                                    " of another pipeline or plan (pipeline '" + m.pipeline + "', plan " +
                                    m.fingerprint + "; this one is '" + pipeline_ + "', plan " + fingerprint_ +
                                    "): give this pipeline its own --state-dir, or empty it to start over");
      std::map<std::string, entry> files;
      if (r.id == 0) {
        // The newest readable one is used: check every file now.
        for (const auto& f : m.files) {
          read_state_file(p + "/" + f.key + ".state", f.size, f.crc);
          files[f.key] = entry{{}, f.size, f.crc};
        }
        r.id = id;
        r.time_ms = m.time_ms;
      } else {
        for (const auto& f : m.files) files[f.key] = entry{{}, f.size, f.crc};
      }
      complete_[id] = std::move(files);
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    } catch (const std::exception& e) {
      // Damaged: keep it aside for inspection, so its id is not reused either.
      r.warnings.push_back(std::string(e.what()) + "; checkpoint " + std::to_string(id) +
                           " is skipped (moved to " + p + ".damaged), an earlier one is used");
      fs::remove_all(p + ".damaged", ec);
      fs::rename(p, p + ".damaged", ec);
    }
  }
  return r;
}

std::uint64_t checkpoint_store::put(std::uint64_t id, const std::string& key, std::string blob) {
  entry e;
  e.size = blob.size();
  e.crc = checkpoint_crc32(blob);
  if (!dir_.empty()) {
    const std::string p = path_of(id);
    std::error_code ec;
    fs::create_directories(p, ec);
    std::string data;
    data.reserve(header_size + blob.size());
    data.append(magic, 4);
    data.append(reinterpret_cast<const char*>(&file_version), 4);
    data.append(reinterpret_cast<const char*>(&e.crc), 4);
    data.append(reinterpret_cast<const char*>(&e.size), 8);
    data.append(blob);
    write_atomically(p + "/" + key + ".state", data);
  } else {
    e.blob = std::move(blob);
  }
  const std::uint64_t size = e.size;
  std::lock_guard<std::mutex> lock(mu_);
  pending_[id][key] = std::move(e);
  return size;
}

void checkpoint_store::complete(std::uint64_t id, std::int64_t time_ms) {
  std::map<std::string, entry> files;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(id);
    if (it != pending_.end()) {
      files = std::move(it->second);
      pending_.erase(it);
    }
  }
  if (!dir_.empty()) {
    std::string m = "pel-checkpoint 1\nid " + std::to_string(id) + "\npipeline " + pipeline_ + "\nplan " +
                    fingerprint_ + "\ntime_ms " + std::to_string(time_ms) + "\n";
    for (const auto& [key, e] : files)
      m += "file " + key + " " + std::to_string(e.size) + " " + hex32(e.crc) + "\n";
    m += "end\n";
    const std::string p = path_of(id);
    std::error_code ec;
    fs::create_directories(p, ec);
    write_atomically(p + "/" + manifest_name, m);
    sync_dir(p);
    sync_dir(dir_);
    for (auto& [key, e] : files) e.blob.clear();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    complete_[id] = std::move(files);
  }
  prune(id);
}

void checkpoint_store::abandon(std::uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.erase(id);
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(path_of(id), ec);
  }
}

void checkpoint_store::prune(std::uint64_t newest) {
  std::vector<std::uint64_t> drop;
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (complete_.size() > keep_) {
      drop.push_back(complete_.begin()->first);
      complete_.erase(complete_.begin());
    }
    for (auto it = pending_.begin(); it != pending_.end() && it->first < newest;) {
      drop.push_back(it->first);
      it = pending_.erase(it);
    }
  }
  if (dir_.empty()) return;
  std::error_code ec;
  for (auto id : drop) fs::remove_all(path_of(id), ec);
}

std::optional<std::string> checkpoint_store::get(std::uint64_t id, const std::string& key) const {
  entry e;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = complete_.find(id);
    if (it == complete_.end()) return std::nullopt;
    auto f = it->second.find(key);
    if (f == it->second.end()) return std::nullopt;
    if (dir_.empty()) return f->second.blob;
    e = f->second;
  }
  return read_state_file(path_of(id) + "/" + key + ".state", e.size, e.crc);
}

std::uint64_t checkpoint_store::latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return complete_.empty() ? 0 : complete_.rbegin()->first;
}

} // namespace pel::runtime
