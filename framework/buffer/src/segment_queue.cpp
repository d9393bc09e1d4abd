#include "pel/buffer/segment_queue.hpp"

#include "pel/core/state_io.hpp"

#include <zlib.h>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace fs = std::filesystem;

namespace pel::buffer {
namespace {

constexpr std::size_t header_size = 8;
constexpr char position_magic[8] = {'P', 'E', 'L', 'Q', 'P', 'O', 'S', '1'};
constexpr const char* position_name = "position";

[[noreturn]] void fail_io(const char* what, const std::string& path) {
  throw std::system_error(errno, std::generic_category(),
                          std::string("segment queue: ") + what + " " + path);
}

std::uint32_t crc_of(const char* len_bytes, std::string_view payload) {
  uLong c = crc32(0L, Z_NULL, 0);
  c = crc32(c, reinterpret_cast<const Bytef*>(len_bytes), 4);
  std::size_t off = 0;
  while (off < payload.size()) {
    const std::size_t n = std::min<std::size_t>(payload.size() - off, 1u << 30);
    c = crc32(c, reinterpret_cast<const Bytef*>(payload.data() + off), static_cast<uInt>(n));
    off += n;
  }
  return static_cast<std::uint32_t>(c);
}

void frame_into(std::string& out, std::string_view payload) {
  char hdr[header_size];
  const auto len = static_cast<std::uint32_t>(payload.size());
  std::memcpy(hdr, &len, 4);
  const std::uint32_t crc = crc_of(hdr, payload);
  std::memcpy(hdr + 4, &crc, 4);
  out.append(hdr, header_size);
  out.append(payload.data(), payload.size());
}

/// Reads exactly `n` bytes at `pos`; returns the count read (less at end of file).
std::size_t pread_full(int fd, char* buf, std::size_t n, std::uint64_t pos, const std::string& path) {
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::pread(fd, buf + got, n - got, static_cast<off_t>(pos + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_io("cannot read", path);
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return got;
}

void write_full(int fd, const char* data, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t r = ::write(fd, data, n);
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_io("cannot write", path);
    }
    data += r;
    n -= static_cast<std::size_t>(r);
  }
}

void sync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

struct file {
  int fd = -1;
  explicit file(int f) : fd(f) {}
  ~file() {
    if (fd >= 0) ::close(fd);
  }
  file(const file&) = delete;
  file& operator=(const file&) = delete;
};

} // namespace

segment_queue::segment_queue(options opts) : opts_(std::move(opts)) {
  if (opts_.dir.empty()) throw std::runtime_error("segment queue: dir is empty: give the buffer a directory");
  if (opts_.segment_size < 1024)
    throw std::runtime_error("segment queue: segment_size " + std::to_string(opts_.segment_size) +
                             " is below 1024 bytes: raise it");
  if (opts_.segment_size > opts_.max_size / 2)
    throw std::runtime_error("segment queue: segment_size " + std::to_string(opts_.segment_size) +
                             " is more than half of max_size " + std::to_string(opts_.max_size) +
                             ": raise max_size or lower segment_size");
  std::error_code ec;
  fs::create_directories(opts_.dir, ec);
  if (ec)
    throw std::runtime_error("segment queue: cannot create " + opts_.dir + ": " + ec.message());
  // One process at a time: two writers would interleave frames. The lock goes with the
  // process (a killed owner releases it).
  const std::string lock_path = opts_.dir + "/lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) fail_io("cannot open", lock_path);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    char owner[32] = {};
    const ssize_t n = ::pread(lock_fd_, owner, sizeof owner - 1, 0);
    ::close(lock_fd_);
    lock_fd_ = -1;
    std::string who = n > 0 ? std::string(owner, static_cast<std::size_t>(n)) : std::string();
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    long owner_pid = 0;
    try {
      owner_pid = who.empty() ? 0 : std::stol(who);
    } catch (...) {
      owner_pid = 0;
    }
    throw locked_error("segment queue: " + opts_.dir + " is in use by another process" +
                           (who.empty() ? std::string() : " (pid " + who + ")") +
                           ": give each running pipeline its own buffer directory",
                       owner_pid);
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) == 0) (void)!::pwrite(lock_fd_, pid.data(), pid.size(), 0);
  try {
    recover();
  } catch (...) {
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw;
  }
}

segment_queue::~segment_queue() {
  if (fd_ >= 0) ::close(fd_);
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

bool segment_queue::wait_pending(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lk(mu_);
  auto pending = [&] { return segments_.back().first + segments_.back().records > ack_; };
  appended_.wait_for(lk, timeout, [&] { return pending() || woken_; });
  woken_ = false;
  return pending();
}

void segment_queue::wake() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    woken_ = true;
  }
  appended_.notify_all();
  acked_.notify_all();
}

std::string segment_queue::segment_path(std::uint64_t first) const {
  char name[48];
  std::snprintf(name, sizeof(name), "seg-%020llu.log", static_cast<unsigned long long>(first));
  return opts_.dir + "/" + name;
}

/// Reads every frame of `s`, counting its records. A bad frame in the last segment is a torn
/// tail: the file is truncated there and the bytes cut are returned. Elsewhere it throws.
std::uint64_t segment_queue::scan(segment& s, bool last) {
  file f(::open(s.path.c_str(), O_RDWR | O_CLOEXEC));
  if (f.fd < 0) fail_io("cannot open", s.path);
  const auto size = static_cast<std::uint64_t>(fs::file_size(s.path));
  std::uint64_t pos = 0;
  std::string payload;
  std::string bad;
  while (pos < size) {
    char hdr[header_size];
    if (size - pos < header_size) {
      bad = "a partial frame header";
      break;
    }
    pread_full(f.fd, hdr, header_size, pos, s.path);
    std::uint32_t len = 0, crc = 0;
    std::memcpy(&len, hdr, 4);
    std::memcpy(&crc, hdr + 4, 4);
    if (len > size - pos - header_size) {
      bad = "a record of " + std::to_string(len) + " bytes with only " +
            std::to_string(size - pos - header_size) + " left in the file";
      break;
    }
    payload.resize(len);
    pread_full(f.fd, payload.data(), len, pos + header_size, s.path);
    if (crc_of(hdr, payload) != crc) {
      bad = "a record failing its checksum";
      break;
    }
    pos += header_size + len;
    ++s.records;
  }
  s.bytes = pos;
  if (bad.empty()) return 0;
  if (!last)
    throw std::runtime_error("segment queue: " + s.path + " is corrupt at byte " + std::to_string(pos) +
                             " (" + bad + ") and is not the last segment, so this is not a torn write: "
                             "move the file aside to drop its records, or the directory to start empty");
  const std::uint64_t cut = size - pos;
  if (::ftruncate(f.fd, static_cast<off_t>(pos)) != 0) fail_io("cannot truncate", s.path);
  ::fsync(f.fd);
  recovery_.warnings.push_back("cut a torn tail of " + std::to_string(cut) + " bytes from " + s.path +
                               " at byte " + std::to_string(pos) + " (" + bad + ")");
  return cut;
}

void segment_queue::recover() {
  std::vector<std::pair<std::uint64_t, std::string>> found;
  for (const auto& e : fs::directory_iterator(opts_.dir)) {
    const auto name = e.path().filename().string();
    if (name.size() == 28 && name.compare(0, 4, "seg-") == 0 && name.compare(24, 4, ".log") == 0)
      found.emplace_back(std::stoull(name.substr(4, 20)), e.path().string());
    else if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0)
      fs::remove(e.path());
  }
  std::sort(found.begin(), found.end());
  for (std::size_t i = 0; i < found.size(); ++i) {
    segment s;
    s.first = found[i].first;
    s.path = found[i].second;
    recovery_.cut_bytes += scan(s, i + 1 == found.size());
    if (!segments_.empty() && segments_.back().first + segments_.back().records != s.first)
      throw std::runtime_error("segment queue: " + s.path + " does not follow " + segments_.back().path +
                               " (records " + std::to_string(segments_.back().first + segments_.back().records) +
                               " to " + std::to_string(s.first) + " are missing): move the directory aside");
    segments_.push_back(std::move(s));
  }

  // The acknowledged position.
  const std::string pos_path = opts_.dir + "/" + position_name;
  std::uint64_t ack = segments_.empty() ? 0 : segments_.front().first;
  if (fs::exists(pos_path)) {
    file f(::open(pos_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.fd < 0) fail_io("cannot open", pos_path);
    char buf[20];
    const std::size_t n = pread_full(f.fd, buf, sizeof(buf), 0, pos_path);
    std::uint32_t crc = 0;
    if (n == sizeof(buf)) std::memcpy(&crc, buf + 16, 4);
    uLong c = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(buf), 16);
    if (n != sizeof(buf) || std::memcmp(buf, position_magic, 8) != 0 || static_cast<std::uint32_t>(c) != crc)
      throw std::runtime_error("segment queue: " + pos_path +
                               " is damaged (it is only ever replaced atomically): remove it to re-deliver "
                               "every record in the directory");
    std::uint64_t saved = 0;
    std::memcpy(&saved, buf + 8, 8);
    ack = std::max(ack, saved);
  }
  const std::uint64_t end = segments_.empty() ? ack : segments_.back().first + segments_.back().records;
  if (ack > end) {
    recovery_.warnings.push_back("acknowledged position " + std::to_string(ack) + " is past the last record " +
                                 std::to_string(end) + " (records were lost before they reached the disk)");
    ack = end;
  }
  // Segments wholly acknowledged (a crash came between the position and their deletion).
  while (segments_.size() > 1 && segments_[1].first <= ack) {
    fs::remove(segments_.front().path);
    segments_.pop_front();
  }
  if (segments_.empty()) {
    segment s;
    s.first = ack;
    s.path = segment_path(ack);
    segments_.push_back(std::move(s));
  }
  ack_ = persisted_ack_ = ack;
  cur_seg_ = 0;
  cur_pos_ = 0;
  {  // Walk the cursor to the acknowledged record.
    file f(::open(segments_.front().path.c_str(), O_RDONLY | O_CLOEXEC | O_CREAT, 0644));
    for (std::uint64_t o = segments_.front().first; o < ack && f.fd >= 0; ++o) {
      char hdr[header_size];
      pread_full(f.fd, hdr, header_size, cur_pos_, segments_.front().path);
      std::uint32_t len = 0;
      std::memcpy(&len, hdr, 4);
      cur_pos_ += header_size + len;
    }
  }
  bytes_ = 0;
  for (const auto& s : segments_) bytes_ += s.bytes;
  open_active();
  sync_dir(opts_.dir);

  stats_.cut_bytes = recovery_.cut_bytes;
  recovery_.segments = segments_.size();
  recovery_.records = end - ack;
  recovery_.ack_offset = ack;
}

void segment_queue::open_active() {
  if (fd_ >= 0) ::close(fd_);
  const auto& path = segments_.back().path;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) fail_io("cannot open", path);
}

/// Closes the back segment (durably) and starts a new one after it.
void segment_queue::roll() {
  ::fdatasync(fd_);
  segment s;
  s.first = segments_.back().first + segments_.back().records;
  s.path = segment_path(s.first);
  segments_.push_back(std::move(s));
  open_active();
  sync_dir(opts_.dir);
}

/// Deletes the front segment (never the back one); moves the acknowledged position past it,
/// counting its unacknowledged records as dropped.
void segment_queue::drop_segment_front() {
  const segment& s = segments_.front();
  if (cur_seg_ == 0) {
    const std::uint64_t next = s.first + s.records;
    stats_.dropped += next - ack_;
    ack_ = next;
    cur_seg_ = 1;
    cur_pos_ = 0;
  }
  reclaim();
}

/// Deletes the segments before the cursor's.
void segment_queue::reclaim() {
  bool any = false;
  while (cur_seg_ > 0) {
    if (!any) persist_position();
    any = true;
    fs::remove(segments_.front().path);
    bytes_ -= segments_.front().bytes;
    segments_.pop_front();
    --cur_seg_;
  }
  if (any) sync_dir(opts_.dir);
}

void segment_queue::persist_position() {
  if (persisted_ack_ == ack_) return;
  char buf[20];
  std::memcpy(buf, position_magic, 8);
  std::memcpy(buf + 8, &ack_, 8);
  const auto crc = static_cast<std::uint32_t>(crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(buf), 16));
  std::memcpy(buf + 16, &crc, 4);
  const std::string path = opts_.dir + "/" + position_name;
  const std::string tmp = path + ".tmp";
  {
    file f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (f.fd < 0) fail_io("cannot create", tmp);
    write_full(f.fd, buf, sizeof(buf), tmp);
    if (opts_.sync == sync_policy::every_append && ::fdatasync(f.fd) != 0) fail_io("cannot sync", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail_io("cannot rename", tmp);
  if (opts_.sync == sync_policy::every_append) sync_dir(opts_.dir);
  persisted_ack_ = ack_;
}

/// Frees room for `need` more bytes per the policy. False: no room within the timeout.
bool segment_queue::make_room(std::uint64_t need, std::unique_lock<std::mutex>& lk,
                              std::chrono::milliseconds timeout) {
  if (bytes_ + need <= opts_.max_size) return true;
  ++stats_.full_events;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Everything acknowledged but the back segment still holds it: start a new one, which
  // lets the old one go.
  auto roll_if_all_acked = [this] {
    if (ack_ == segments_.back().first + segments_.back().records && segments_.back().bytes > 0) {
      roll();
      cur_seg_ = segments_.size() - 1;
      cur_pos_ = 0;
      reclaim();
    }
  };
  for (;;) {
    roll_if_all_acked();
    if (bytes_ + need <= opts_.max_size) return true;
    if (opts_.when_full == when_full::drop_oldest) {
      if (segments_.size() == 1) roll();
      drop_segment_front();
      continue;
    }
    if (acked_.wait_until(lk, deadline) == std::cv_status::timeout) {
      roll_if_all_acked();
      return bytes_ + need <= opts_.max_size;
    }
  }
}

append_status segment_queue::append(std::string_view record, std::chrono::milliseconds timeout) {
  return append(std::vector<std::string>{std::string(record)}, timeout);
}

append_status segment_queue::append(const std::vector<std::string>& records, std::chrono::milliseconds timeout) {
  if (records.empty()) return append_status::ok;
  std::uint64_t total = 0;
  for (const auto& r : records) {
    if (r.size() + header_size > opts_.segment_size || r.size() > UINT32_MAX) return append_status::too_large;
    total += r.size() + header_size;
  }
  if (total > opts_.max_size - opts_.segment_size) return append_status::too_large;
  std::unique_lock<std::mutex> lk(mu_);
  if (!make_room(total, lk, timeout)) return append_status::full;
  // Frame and write, rolling segments as they fill.
  std::string out;
  std::uint64_t in_out = 0;
  auto flush = [&] {
    if (out.empty()) return;
    try {
      write_full(fd_, out.data(), out.size(), segments_.back().path);
      if (opts_.sync == sync_policy::every_append && ::fdatasync(fd_) != 0)
        fail_io("cannot sync", segments_.back().path);
    } catch (...) {
      // A partial frame (disk full) must not stay in front of later appends, or the next
      // open would cut them all as a torn tail.
      const int saved = errno;
      if (::ftruncate(fd_, static_cast<off_t>(segments_.back().bytes)) != 0) errno = saved;
      throw;
    }
    segments_.back().bytes += out.size();
    segments_.back().records += in_out;
    bytes_ += out.size();
    out.clear();
    in_out = 0;
  };
  for (const auto& r : records) {
    const std::uint64_t framed = r.size() + header_size;
    if (segments_.back().bytes + out.size() > 0 &&
        segments_.back().bytes + out.size() + framed > opts_.segment_size) {
      flush();
      roll();
    }
    frame_into(out, r);
    ++in_out;
  }
  flush();
  stats_.appended += records.size();
  appended_.notify_all();
  return append_status::ok;
}

std::vector<record> segment_queue::peek(std::size_t max_records, std::size_t max_bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<record> out;
  std::size_t seg = cur_seg_;
  std::uint64_t pos = cur_pos_;
  std::uint64_t offset = ack_;
  std::size_t bytes = 0;
  while (out.size() < max_records && seg < segments_.size()) {
    const segment& s = segments_[seg];
    if (pos >= s.bytes) {
      ++seg;
      pos = 0;
      continue;
    }
    file f(::open(s.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.fd < 0) fail_io("cannot open", s.path);
    while (out.size() < max_records && pos < s.bytes) {
      char hdr[header_size];
      if (pread_full(f.fd, hdr, header_size, pos, s.path) != header_size)
        throw std::runtime_error("segment queue: " + s.path + " is shorter than written");
      std::uint32_t len = 0, crc = 0;
      std::memcpy(&len, hdr, 4);
      std::memcpy(&crc, hdr + 4, 4);
      if (!out.empty() && bytes + len > max_bytes) return out;
      record r;
      r.offset = offset;
      r.data.resize(len);
      if (pread_full(f.fd, r.data.data(), len, pos + header_size, s.path) != len || crc_of(hdr, r.data) != crc)
        throw std::runtime_error("segment queue: " + s.path + " record at byte " + std::to_string(pos) +
                                 " fails its checksum on read (the file changed under the queue)");
      bytes += len;
      pos += header_size + len;
      ++offset;
      out.push_back(std::move(r));
    }
  }
  return out;
}

void segment_queue::ack(std::uint64_t end) {
  std::lock_guard<std::mutex> lk(mu_);
  end = std::min(end, segments_.back().first + segments_.back().records);
  if (end <= ack_) return;
  stats_.delivered += end - ack_;
  // Jump to the segment holding `end` (or the back one), then walk its frames.
  std::size_t seg = cur_seg_;
  while (seg + 1 < segments_.size() && segments_[seg + 1].first <= end) ++seg;
  std::uint64_t o = seg == cur_seg_ ? ack_ : segments_[seg].first;
  std::uint64_t pos = seg == cur_seg_ ? cur_pos_ : 0;
  const segment& s = segments_[seg];
  if (o < end) {
    file f(::open(s.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (f.fd < 0) fail_io("cannot open", s.path);
    for (; o < end; ++o) {
      char hdr[header_size];
      pread_full(f.fd, hdr, header_size, pos, s.path);
      std::uint32_t len = 0;
      std::memcpy(&len, hdr, 4);
      pos += header_size + len;
    }
  }
  ack_ = end;
  cur_seg_ = seg;
  cur_pos_ = pos;
  persist_position();
  reclaim();
  acked_.notify_all();
}

std::vector<record> segment_queue::pop(std::size_t max_records, std::size_t max_bytes) {
  auto out = peek(max_records, max_bytes);
  if (!out.empty()) ack(out.back().offset + 1);
  return out;
}

std::uint64_t segment_queue::ack_offset() const {
  std::lock_guard<std::mutex> lk(mu_);
  return ack_;
}

std::uint64_t segment_queue::end_offset() const {
  std::lock_guard<std::mutex> lk(mu_);
  return segments_.back().first + segments_.back().records;
}

counters segment_queue::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  counters c = stats_;
  c.bytes_on_disk = bytes_;
  c.records_pending = segments_.back().first + segments_.back().records - ack_;
  c.segments = segments_.size();
  return c;
}

std::string encode_row(const std::vector<core::value>& row) {
  core::state_writer w;
  w.put<std::uint32_t>(static_cast<std::uint32_t>(row.size()));
  for (const auto& v : row) w.put_value(v);
  return w.take();
}

std::string encode_row(const core::value* row, std::uint32_t width, std::int64_t time) {
  core::state_writer w;
  w.put<std::int64_t>(time);
  w.put<std::uint32_t>(width);
  for (std::uint32_t i = 0; i < width; ++i) w.put_value(row[i]);
  return w.take();
}

std::int64_t decode_row(std::string_view record, std::vector<core::value>& out) {
  core::state_reader r(record);
  const auto t = r.get<std::int64_t>();
  const auto n = r.get<std::uint32_t>();
  if (n > record.size()) throw std::runtime_error("segment queue: malformed row record");
  out.clear();
  out.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) out.push_back(r.get_value());
  if (!r.at_end()) throw std::runtime_error("segment queue: row record has trailing bytes");
  return t;
}

std::vector<core::value> decode_row(std::string_view record) {
  core::state_reader r(record);
  const auto n = r.get<std::uint32_t>();
  if (n > record.size()) throw std::runtime_error("segment queue: malformed row record");
  std::vector<core::value> row;
  row.reserve(n);
  for (std::uint32_t i = 0; i < n; ++i) row.push_back(r.get_value());
  if (!r.at_end()) throw std::runtime_error("segment queue: row record has trailing bytes");
  return row;
}

} // namespace pel::buffer
