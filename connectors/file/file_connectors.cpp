#include "file_connectors.hpp"

#include "pel/core/time.hpp"
#include "pel/spec/diagnostics.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>

namespace pel::connectors {

void unique_fd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

namespace {

/// Bytes one poll reads at most.
constexpr std::size_t max_read_per_poll = std::size_t{16} << 20;

std::string errno_text(int e) {
  return std::strerror(e);
}

/// What `sample_lines` read besides the samples, to say why there are none.
struct sample_stats {
  std::size_t bytes = 0;     ///< bytes read
  std::size_t too_long = 0;  ///< lines over the limit, left out
};

/// The first lines of `path` (at most `max_lines`, blank ones skipped), for inference. Lines
/// longer than `max_line` are left out. False with `err` set when the file cannot be read.
bool sample_lines(const std::string& path, std::size_t max_lines, std::size_t max_line,
                  const csv_options* csv, std::vector<std::string>& out, int& err,
                  sample_stats& stats) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    err = errno;
    return false;
  }
  line_buffer buf(1 << 16, max_line);
  std::string pending;  // a CSV record spanning lines
  auto take = [&](std::string_view line) {
    if (csv && !pending.empty()) {
      if (pending.size() + 1 + line.size() > max_line) {
        pending.clear();  // a quote that is never closed: not a sample
        ++stats.too_long;
        return;
      }
      pending += '\n';
      pending.append(line);
      if (csv_open_quote(line, *csv, true)) return;  // still inside the quoted field
      out.push_back(std::move(pending));
      pending.clear();
      return;
    }
    if (csv && csv_open_quote(line, *csv)) {
      pending.assign(line);
      return;
    }
    if (!line.empty()) out.emplace_back(line);
  };
  std::size_t read_total = 0;
  while (out.size() < max_lines && read_total < (64u << 20)) {
    std::string_view line;
    auto got = buf.next_line(line);
    if (got == line_status::line) take(line);
    if (got == line_status::too_long) ++stats.too_long;
    if (got != line_status::none) continue;
    char* dst = buf.write_ptr();  // before write_space(): it may grow the buffer
    ssize_t n = ::read(fd.get(), dst, buf.write_space());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) {
      err = errno;
      return false;
    }
    if (n <= 0) {
      auto got = buf.take_rest(line);
      if (got == line_status::line) take(line);
      if (got == line_status::too_long) ++stats.too_long;
      break;
    }
    buf.commit(static_cast<std::size_t>(n));
    read_total += static_cast<std::size_t>(n);
    stats.bytes = read_total;
  }
  return true;
}

bool has_glob(const std::string& path) {
  return path.find_first_of("*?[") != std::string::npos;
}

/// Checks at build (and lint) time that `path` can be read: a missing file, a directory or an
/// unreadable file is a located error at `path`. A missing file is fine when following, as
/// the source waits for it. Returns true when the path is there and not a regular file.
bool check_path(const spec::config& cfg, const std::string& path, bool follow) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    if (e == ENOENT && follow) return false;
    std::string msg = "cannot read '" + path + "': " + errno_text(e);
    if (e == ENOENT) {
      msg += "; check the path";
      if (has_glob(path))
        msg += " (the file source reads one file and does not expand `*`, `?` or `[`)";
      msg += ", or set `follow: true` to wait for the file to appear";
    }
    cfg.fail("path", msg);
  }
  if (S_ISDIR(st.st_mode))
    cfg.fail("path", "'" + path + "' is a directory; give the path of a file in it");
  if (::access(path.c_str(), R_OK) != 0) {
    int e = errno;
    cfg.fail("path",
             "cannot read '" + path + "': " + errno_text(e) + "; check the file's permissions");
  }
  return !S_ISREG(st.st_mode);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parameters

std::vector<spec::param> file_source_params() {
  using spec::param;
  std::vector<param> p{
      param::string("path").req().doc("The file to read."),
  };
  for (auto& f : format_params(true)) p.push_back(std::move(f));
  p.push_back(param::boolean("follow").def("false").doc(
      "Keep reading as the file grows, like `tail -F`: the stream never ends; a truncated "
      "file is read again from its start and a replaced (rotated) one from the new file's "
      "start."));
  p.push_back(
      param::string("start_at")
          .one_of({"beginning", "end"})
          .def("beginning")
          .doc(
              "With `follow`: read the existing content (`beginning`) or only lines appended after "
              "the start (`end`)."));
  p.push_back(
      param::boolean("skip_header")
          .def("false")
          .doc("Skip the first line of the file (any format). With `format: csv` and `csv.header: "
               "true` the first line is the header and is skipped anyway."));
  p.push_back(max_record_bytes_param());
  return p;
}

std::vector<spec::param> file_sink_params() {
  using spec::param;
  std::vector<param> p{
      param::string("path").req().doc(
          "The file to write. With parallelism > 1, instance i writes `path` with `-i` "
          "inserted before the extension (`out.json` → `out-0.json`, `out-1.json`)."),
  };
  for (auto& f : format_params(false)) p.push_back(std::move(f));
  p.push_back(param::string("mode")
                  .one_of({"overwrite", "append"})
                  .def("overwrite")
                  .doc("`overwrite` truncates the file at start; `append` adds to it (a CSV header "
                       "is written "
                       "only to an empty file)."));
  return p;
}

std::string instance_path(const std::string& path, std::uint32_t instance,
                          std::uint32_t parallelism) {
  if (parallelism <= 1) return path;
  std::size_t slash = path.find_last_of('/');
  std::size_t name_start = slash == std::string::npos ? 0 : slash + 1;
  std::size_t dot = path.find_last_of('.');
  std::string suffix = "-" + std::to_string(instance);
  if (dot == std::string::npos || dot <= name_start) return path + suffix;
  return path.substr(0, dot) + suffix + path.substr(dot);
}

// ---------------------------------------------------------------------------------------------
// Source

file_source::file_source(const spec::config& cfg) {
  path_ = cfg.get_string("path");
  if (path_.empty()) cfg.fail("path", "give the file to read");
  follow_ = cfg.get_bool("follow");
  start_at_end_ = cfg.get_string("start_at") == "end";
  if (start_at_end_ && !follow_)
    cfg.fail("start_at", "`start_at: end` only makes sense with `follow: true`");
  skip_first_line_ = cfg.get_bool("skip_header");
  const auto format = format_name(cfg);
  const bool csv = format == "csv";
  const auto csv_opt = read_csv_options(cfg);
  if (csv && csv_opt.header) skip_first_line_ = true;
  const std::size_t max_record = read_max_record_bytes(cfg);
  buf_.set_max_line(max_record);
  special_ = check_path(cfg, path_, follow_);

  if (format == "raw") {
    schema_ = raw_schema();
  } else if (auto declared = declared_schema(cfg)) {
    schema_ = declared;
  } else {
    std::vector<std::string> samples;
    int err = 0;
    // For CSV with a header the first sample must be the header, which inference reads.
    bool drop_first = skip_first_line_ && !(csv && csv_opt.header);
    sample_stats stats;
    if (!sample_lines(path_, inference_sample_rows + 2, max_record, csv ? &csv_opt : nullptr,
                      samples, err, stats))
      cfg.fail("path", "cannot read '" + path_ + "' to infer its schema (" + errno_text(err) +
                           "); declare `schema:`");
    if (drop_first && !samples.empty()) samples.erase(samples.begin());
    schema_ = infer_schema(cfg, samples);
    if (!schema_ || schema_->size() == 0) {
      std::string why = "no record in its first lines";
      if (stats.bytes == 0)
        why = "it is empty";
      else if (samples.empty() && stats.too_long > 0)
        why = "its first lines are longer than max_record_bytes (" + std::to_string(max_record) +
              " bytes)";
      cfg.fail("path",
               "cannot infer a schema from '" + path_ + "' (" + why + "); declare `schema:`");
    }
  }
  lines_ = std::make_unique<line_decoder>(make_decoder(cfg, schema_), csv ? &csv_opt : nullptr,
                                          max_record);
  lines_->set_origin("file", path_);
}

file_source::~file_source() = default;

void file_source::open(const core::operator_context& ctx) {
  lines_->set_origin(ctx.name.empty() ? std::string("file") : ctx.name, path_);
  if (ctx.instance != 0) {
    done_ = true;  // one reader per file
    return;
  }
  if (!open_file(follow_ && start_at_end_) && !follow_)
    throw std::runtime_error("file source: cannot open '" + path_ + "': " + errno_text(errno));
  if (fd_) {
    struct stat st {};
    if (::fstat(fd_.get(), &st) == 0 && S_ISDIR(st.st_mode))
      throw std::runtime_error("file source: '" + path_ + "' is a directory; give a file");
  }
}

bool file_source::open_file(bool at_end) {
  unique_fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  struct stat st {};
  if (::fstat(fd.get(), &st) == 0) size_at_open_ = static_cast<std::uint64_t>(st.st_size);
  offset_ = 0;
  buf_.clear();
  header_pending_ = skip_first_line_;
  if (at_end && !opened_once_) {
    // Only lines appended from now on: the existing content (with any header) is skipped.
    offset_ = static_cast<std::uint64_t>(::lseek(fd.get(), 0, SEEK_END));
    header_pending_ = false;
  }
  fd_ = std::move(fd);
  opened_once_ = true;
  return true;
}

void file_source::restart_counting() {
  lines_->reset();
  buf_.clear();
  offset_ = 0;
  header_pending_ = skip_first_line_;
}

bool file_source::check_rotation(core::outputs& out, std::int64_t now) {
  struct stat cur {
  }, named{};
  if (::fstat(fd_.get(), &cur) != 0) return false;
  if (static_cast<std::uint64_t>(cur.st_size) < offset_) {
    // Truncated in place: start over.
    ::lseek(fd_.get(), 0, SEEK_SET);
    restart_counting();
    return true;
  }
  if (::stat(path_.c_str(), &named) != 0) return false;  // moved away, not yet recreated
  if (named.st_ino == cur.st_ino && named.st_dev == cur.st_dev) return false;
  // Replaced: the old file is complete, so its last unterminated line is a record.
  take_rest(out, now);
  lines_->finish(out, now);
  lines_->reset();
  return open_file(false);
}

core::poll_status file_source::poll(core::outputs& out, std::size_t max_rows) {
  if (lines_) lines_->begin_rows();
  if (done_) return core::poll_status::end;
  if (!fd_) {
    if (!open_file(false)) return core::poll_status::idle;  // follow: wait for the file
  }
  if (out.main.width == 0) out.main.width = static_cast<std::uint32_t>(schema_->size());
  const std::int64_t now = core::processing_time::now().ns;
  const std::size_t rows_before = out.main.size(), dead_before = out.dead_letter.size();
  std::size_t handled = 0, read_bytes = 0;
  bool at_eof = false;
  // The read budget ends a poll that finds no line end (the rest of an endless line being
  // skipped), so the runtime regains control between reads.
  while (handled < max_rows && read_bytes < max_read_per_poll) {
    std::string_view line;
    if (auto got = buf_.next_line(line); got != line_status::none) {
      if (header_pending_) {
        header_pending_ = false;
        lines_->skip();
        continue;
      }
      lines_->take(got, line, out, now);
      ++handled;
      continue;
    }
    // A pipe's read waits for its writer: hand on what this poll has before waiting.
    if (special_ && handled > 0) break;
    char* dst = buf_.write_ptr();  // before write_space(): it may grow the buffer
    ssize_t n = ::read(fd_.get(), dst, buf_.write_space());
    if (n > 0) {
      buf_.commit(static_cast<std::size_t>(n));
      offset_ += static_cast<std::uint64_t>(n);
      read_bytes += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("file source: reading '" + path_ + "': " + errno_text(errno));
    }
    if (!follow_) {
      take_rest(out, now);
      lines_->finish(out, now);
      done_ = true;
      at_eof = true;
      break;
    }
    if (!check_rotation(out, now)) {
      at_eof = true;
      break;
    }
  }
  bool produced = out.main.size() > rows_before || out.dead_letter.size() > dead_before;
  if (produced || !at_eof) return core::poll_status::data;
  return done_ ? core::poll_status::end : core::poll_status::idle;
}

void file_source::take_rest(core::outputs& out, std::int64_t now) {
  std::string_view rest;
  auto got = buf_.take_rest(rest);
  if (got != line_status::none && !header_pending_) lines_->take(got, rest, out, now);
}

void file_source::progress(std::uint64_t& done, std::uint64_t& total) const {
  done = offset_ - std::min<std::uint64_t>(offset_, buf_.pending());
  total = follow_ || special_ ? 0 : std::max(size_at_open_, done);  // 0: unknown
}

void file_source::close() {
  fd_.reset();
}

// ---------------------------------------------------------------------------------------------
// Sink

file_sink::file_sink(const spec::config& cfg) : cfg_(cfg) {
  base_path_ = cfg.get_string("path");
  if (base_path_.empty()) cfg.fail("path", "give the file to write");
  append_ = cfg.get_string("mode") == "append";
  format_name(cfg);
  read_csv_options(cfg);  // report a bad delimiter at build time
}

file_sink::~file_sink() {
  // Best effort: close() is where errors are reported.
  if (fd_ && !buf_.empty()) {
    try {
      write_out();
    } catch (...) {
    }
  }
}

void file_sink::open(const core::operator_context& ctx, const core::schema_ptr& input) {
  enc_ = make_encoder(cfg_, input);
  path_ = instance_path(base_path_, ctx.instance, ctx.parallelism);
  std::error_code ec;
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append_ ? O_APPEND : O_TRUNC);
  unique_fd fd(::open(path_.c_str(), flags, 0644));
  if (!fd) throw std::runtime_error("file sink: cannot open '" + path_ + "': " + errno_text(errno));
  struct stat st {};
  bool empty = ::fstat(fd.get(), &st) != 0 || st.st_size == 0;
  fd_ = std::move(fd);
  auto header = enc_->header();
  if (!header.empty() && empty) {
    buf_ += header;
    buf_ += '\n';
  }
}

void file_sink::write(const core::batch& in) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    enc_->encode(in.row(i), buf_);
    buf_ += '\n';
  }
  buffered_rows_ += in.size();
  if (buf_.size() >= (1u << 20)) write_out();
}

void file_sink::write_out() {
  std::size_t off = 0;
  while (off < buf_.size()) {
    ssize_t n = ::write(fd_.get(), buf_.data() + off, buf_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("file sink: writing '" + path_ + "': " + errno_text(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  buf_.clear();
}

void file_sink::flush() {
  if (!fd_) return;
  write_out();
  if (::fdatasync(fd_.get()) != 0 && errno != EINVAL)
    throw std::runtime_error("file sink: syncing '" + path_ + "': " + errno_text(errno));
  delivered_ += buffered_rows_;
  buffered_rows_ = 0;
}

void file_sink::close() {
  if (!fd_) return;
  flush();
  if (::close(fd_.release()) != 0)
    throw std::runtime_error("file sink: closing '" + path_ + "': " + errno_text(errno));
}

}  // namespace pel::connectors
