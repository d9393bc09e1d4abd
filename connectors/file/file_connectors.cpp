#include "file_connectors.hpp"

#include "pel/core/time.hpp"
#include "pel/spec/diagnostics.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
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
          "inserted before the extension (`out.json` → `out-0.json`, `out-1.json`). With "
          "`delivery: exactly_once`, the name the committed files are numbered from (see "
          "`delivery`)."),
  };
  for (auto& f : format_params(false)) p.push_back(std::move(f));
  p.push_back(param::string("mode")
                  .one_of({"overwrite", "append"})
                  .def("overwrite")
                  .doc("`overwrite` truncates the file at start; `append` adds to it (a CSV header "
                       "is written "
                       "only to an empty file). With `delivery: exactly_once`, a fresh start "
                       "(not a restore from a checkpoint) deletes the instance's numbered files "
                       "(`overwrite`) or numbers on after them (`append`)."));
  p.push_back(
      param::string("delivery")
          .one_of({"at_least_once", "exactly_once"})
          .def("at_least_once")
          .doc("`at_least_once`: rows are written to `path` as they come and synced on every "
               "checkpoint; after a restart from a checkpoint the rows since it are written "
               "again (duplicates, never losses). `exactly_once`: rows are held in a hidden "
               "part file in the same directory (`.<name>.<n><ext>.inprogress`), sealed at "
               "each checkpoint barrier and renamed into view only when the checkpoint is "
               "complete, so that after a restart every row is visible exactly once. The "
               "output is then a series of whole files, one per checkpoint interval that had "
               "rows, numbered in order: `path` with `.<n>` (ten digits) before the extension "
               "(`out/t.json` → `out/t.0000000001.json`, `out/t.0000000002.json`, ...; "
               "`out/t-1.0000000001.json` for instance 1 of several); read them in name order "
               "(`cat out/t.*.json`). A CSV file has its own header. `path` itself is not "
               "written. Rows become visible at each completed checkpoint and at the end of "
               "the stream; a job stopped without ending its stream leaves the rows since its "
               "last checkpoint hidden until it is resumed from it."));
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
  reader_ = ctx.instance == 0;
  if (!reader_) {
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
  skip_partial_line_ = false;
  mark_position();
  return true;
}

void file_source::restart_counting() {
  lines_->reset();
  buf_.clear();
  offset_ = 0;
  header_pending_ = skip_first_line_;
  skip_partial_line_ = false;
  mark_position();
}

void file_source::mark_position() {
  if (lines_->in_record()) return;  // a CSV record is open: resume at its first line
  pos_.offset = offset_ - std::min<std::uint64_t>(offset_, buf_.pending());
  pos_.lines = lines_->lines();
  pos_.header_pending = header_pending_;
  pos_.skipping = buf_.skipping() || skip_partial_line_;
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
      if (skip_partial_line_) {
        // The rest of an over-long line whose start was handed on before the restore.
        skip_partial_line_ = false;
      } else if (header_pending_) {
        header_pending_ = false;
        lines_->skip();
      } else {
        lines_->take(got, line, out, now);
        ++handled;
      }
      mark_position();
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
      mark_position();
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
  if (got != line_status::none && !header_pending_ && !skip_partial_line_)
    lines_->take(got, rest, out, now);
  skip_partial_line_ = false;
  mark_position();
}

void file_source::progress(std::uint64_t& done, std::uint64_t& total) const {
  done = offset_ - std::min<std::uint64_t>(offset_, buf_.pending());
  total = follow_ || special_ ? 0 : std::max(size_at_open_, done);  // 0: unknown
}

core::source_base::load file_source::offered() const {
  load l;
  if (!reader_ || !fd_ || special_ || !lines_) return l;
  const std::uint64_t done = offset_ - std::min<std::uint64_t>(offset_, buf_.pending());
  const std::uint64_t lines = lines_->lines();
  struct stat st {};
  if (lines == 0 || done == 0 || ::fstat(fd_.get(), &st) != 0) return l;
  const double per_line = static_cast<double>(done) / static_cast<double>(lines);
  const auto size = static_cast<std::int64_t>(st.st_size);
  l.backlog = static_cast<double>(std::max<std::int64_t>(0, size - static_cast<std::int64_t>(done))) / per_line;
  if (!follow_) return l;  // a file that does not grow offers no rate of its own
  const std::int64_t now = core::steady_ns();
  if (offered_size_ >= 0 && now > offered_ns_ && size >= offered_size_) {
    const double r = static_cast<double>(size - offered_size_) / per_line * 1e9 / static_cast<double>(now - offered_ns_);
    offered_rate_ = offered_rate_ < 0 ? r : 0.5 * offered_rate_ + 0.5 * r;
  }
  offered_size_ = size;
  offered_ns_ = now;
  l.rate = offered_rate_;
  return l;
}

void file_source::close() {
  fd_.reset();
}

namespace {
constexpr std::uint32_t file_source_snapshot_version = 1;
}

void file_source::snapshot(core::state_writer& w) {
  w.put<std::uint32_t>(file_source_snapshot_version);
  w.put<std::uint8_t>(reader_ ? 1 : 0);
  if (!reader_) return;
  w.put<std::uint64_t>(pos_.offset);
  w.put<std::uint64_t>(pos_.lines);
  w.put<std::uint8_t>(pos_.header_pending ? 1 : 0);
  w.put<std::uint8_t>(pos_.skipping ? 1 : 0);
}

void file_source::restore(core::state_reader& r) {
  auto version = r.get<std::uint32_t>();
  if (version != file_source_snapshot_version)
    throw std::runtime_error("file source: cannot restore a snapshot of version " +
                             std::to_string(version) + " (this build reads version " +
                             std::to_string(file_source_snapshot_version) + ")");
  const bool reader = r.get<std::uint8_t>() != 0;
  if (!reader) return;
  position p;
  p.offset = r.get<std::uint64_t>();
  p.lines = r.get<std::uint64_t>();
  p.header_pending = r.get<std::uint8_t>() != 0;
  p.skipping = r.get<std::uint8_t>() != 0;
  if (!reader_) return;  // only instance 0 reads
  const std::string where = "file source: cannot resume '" + path_ + "' at byte " +
                            std::to_string(p.offset) + " (after line " + std::to_string(p.lines) +
                            ") from the checkpoint: ";
  if (!fd_ && !open_file(false)) {
    if (p.offset == 0 && follow_) return;  // nothing read yet: wait for the file as before
    throw std::runtime_error(where + errno_text(errno) +
                             "; put the file back, or start the job without the checkpoint");
  }
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) throw std::runtime_error(where + errno_text(errno));
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < p.offset)
    throw std::runtime_error(where + "the file has only " + std::to_string(size) +
                             " bytes now, so it was truncated or replaced since the "
                             "checkpoint; put the file that was read back, or start the job "
                             "without the checkpoint");
  if (::lseek(fd_.get(), static_cast<off_t>(p.offset), SEEK_SET) < 0)
    throw std::runtime_error(where + errno_text(errno));
  buf_.clear();
  lines_->reset();
  lines_->set_lines(p.lines);
  offset_ = p.offset;
  header_pending_ = p.header_pending;
  skip_partial_line_ = p.skipping;
  done_ = false;
  pos_ = p;
}

// ---------------------------------------------------------------------------------------------
// Sink

namespace {

constexpr std::uint32_t file_sink_snapshot_version = 1;

/// `path` split into directory (with its slash, or empty), stem and extension, the way
/// `instance_path` splits it.
struct path_parts {
  std::string dir, stem, ext;
};

path_parts split_path(const std::string& path) {
  path_parts p;
  std::size_t slash = path.find_last_of('/');
  std::size_t name_start = slash == std::string::npos ? 0 : slash + 1;
  p.dir = path.substr(0, name_start);
  std::size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || dot <= name_start) dot = path.size();
  p.stem = path.substr(name_start, dot - name_start);
  p.ext = path.substr(dot);
  return p;
}

std::string seq_text(std::uint64_t seq) {
  char num[32];
  std::snprintf(num, sizeof num, "%010llu", static_cast<unsigned long long>(seq));
  return num;
}

}  // namespace

std::string committed_part_path(const std::string& instance_path, std::uint64_t seq) {
  auto p = split_path(instance_path);
  return p.dir + p.stem + "." + seq_text(seq) + p.ext;
}

file_sink::file_sink(const spec::config& cfg) : cfg_(cfg) {
  base_path_ = cfg.get_string("path");
  if (base_path_.empty()) cfg.fail("path", "give the file to write");
  append_ = cfg.get_string("mode") == "append";
  exactly_once_ = cfg.get_string("delivery") == "exactly_once";
  format_name(cfg);
  read_csv_options(cfg);  // report a bad delimiter at build time
}

file_sink::~file_sink() {
  // Best effort: close() is where errors are reported. An exactly-once part is left as it
  // is, as after a crash: a restore or the next fresh start removes it.
  if (!exactly_once_ && fd_ && !buf_.empty()) {
    try {
      write_out();
    } catch (...) {
    }
  }
}

std::string file_sink::buffer_refusal() const {
  if (append_ || exactly_once_) return {};  // exactly_once: refused by the planner already
  return "with `mode: overwrite` the file is truncated each time the sink is built again "
         "behind its buffer (after a failure or a restart), losing what was forwarded: use "
         "`mode: append`";
}

void file_sink::open(const core::operator_context& ctx, const core::schema_ptr& input) {
  enc_ = make_encoder(cfg_, input);
  path_ = instance_path(base_path_, ctx.instance, ctx.parallelism);
  std::error_code ec;
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (exactly_once_) {
    // Nothing is touched yet: a `restore` may follow and needs the previous run's parts.
    std::string dir = parent.empty() ? std::string(".") : parent.string();
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
      throw std::runtime_error("file sink: cannot write in '" + dir + "': " + errno_text(errno));
    fresh_pending_ = true;
    return;
  }
  // Not truncated here: a restore may follow and keep what its checkpoint covers.
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append_ ? O_APPEND : 0);
  unique_fd fd(::open(path_.c_str(), flags, 0644));
  if (!fd) throw std::runtime_error("file sink: cannot open '" + path_ + "': " + errno_text(errno));
  struct stat st {};
  size_ = ::fstat(fd.get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  fd_ = std::move(fd);
  truncate_pending_ = true;
}

void file_sink::start_output() {
  truncate_pending_ = false;
  if (!append_) {
    if (::ftruncate(fd_.get(), 0) != 0)
      throw std::runtime_error("file sink: truncating '" + path_ + "': " + errno_text(errno));
    size_ = 0;
  }
  ::lseek(fd_.get(), static_cast<off_t>(size_), SEEK_SET);
  auto header = enc_->header();
  if (!header.empty() && size_ == 0) buf_.insert(0, header + "\n");
}

void file_sink::write(const core::batch& in) {
  if (in.size() == 0) return;
  if (exactly_once_ && !fd_) open_part();
  for (std::size_t i = 0; i < in.size(); ++i) {
    enc_->encode(in.row(i), buf_);
    buf_ += '\n';
  }
  if (exactly_once_)
    part_rows_ += in.size();
  else
    buffered_rows_ += in.size();
  if (buf_.size() >= (1u << 20)) write_out();
}

void file_sink::write_out() {
  if (!exactly_once_ && truncate_pending_) start_output();
  std::size_t off = 0;
  while (off < buf_.size()) {
    ssize_t n = ::write(fd_.get(), buf_.data() + off, buf_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("file sink: writing '" + path_ + "': " + errno_text(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  if (!exactly_once_) size_ += buf_.size();
  buf_.clear();
}

void file_sink::flush() {
  if (!fd_) return;
  write_out();
  if (::fdatasync(fd_.get()) != 0 && errno != EINVAL)
    throw std::runtime_error("file sink: syncing '" + path_ + "': " + errno_text(errno));
  if (exactly_once_) return;  // delivered when committed
  delivered_ += buffered_rows_;
  buffered_rows_ = 0;
}

void file_sink::close() {
  if (exactly_once_) {
    // End of stream: everything written is final.
    if (fresh_pending_) start_fresh();
    commit(UINT64_MAX);
    if (fd_) {
      sealed_part last{part_seq_, 0, finish_part(), part_rows_};
      auto from = part_path(last.seq, "inprogress");
      auto to = part_path(last.seq, "");
      if (::rename(from.c_str(), to.c_str()) != 0)
        throw std::runtime_error("file sink: renaming '" + from + "' to '" + to +
                                 "': " + errno_text(errno));
      delivered_ += last.rows;
      part_seq_ = part_rows_ = 0;
      sync_dir();
    }
    return;
  }
  if (!fd_) return;
  flush();
  if (::close(fd_.release()) != 0)
    throw std::runtime_error("file sink: closing '" + path_ + "': " + errno_text(errno));
}

// -- exactly once --------------------------------------------------------------------------

std::string file_sink::part_path(std::uint64_t seq, const char* state) const {
  auto visible = committed_part_path(path_, seq);
  if (*state == '\0') return visible;
  auto p = split_path(visible);
  return p.dir + "." + p.stem + p.ext + "." + state;
}

std::vector<std::pair<std::uint64_t, std::string>> file_sink::list_parts() const {
  auto p = split_path(path_);
  std::vector<std::pair<std::uint64_t, std::string>> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(p.dir.empty() ? std::string(".") : p.dir, ec), end;
  if (ec) throw std::runtime_error("file sink: listing '" + p.dir + "': " + ec.message());
  const std::string prefix = p.stem + ".";
  for (; it != end; it.increment(ec)) {
    if (ec) break;
    std::string name = it->path().filename().string();
    std::string state;
    bool hidden = !name.empty() && name[0] == '.';
    if (hidden) {
      name.erase(0, 1);
      auto last = name.find_last_of('.');
      if (last == std::string::npos) continue;
      state = name.substr(last + 1);
      if (state != "inprogress" && state != "pending") continue;
      name.erase(last);
    }
    // <stem>.<digits><ext>
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    std::size_t d = prefix.size(), e = d;
    while (e < name.size() && name[e] >= '0' && name[e] <= '9') ++e;
    if (e - d < 10 || e - d > 19 || name.compare(e, std::string::npos, p.ext) != 0) continue;
    out.emplace_back(std::stoull(name.substr(d, e - d)), state);
  }
  return out;
}

void file_sink::start_fresh() {
  fresh_pending_ = false;
  std::uint64_t last = 0;
  for (auto& [seq, state] : list_parts()) {
    if (state.empty() && append_) {
      last = std::max(last, seq);
      continue;
    }
    // A previous run's unfinished parts, and with `mode: overwrite` its output.
    std::error_code ec;
    std::filesystem::remove(part_path(seq, state.c_str()), ec);
  }
  next_seq_ = last + 1;
  sync_dir();
}

void file_sink::open_part() {
  if (fresh_pending_) start_fresh();
  part_seq_ = next_seq_++;
  part_rows_ = 0;
  auto name = part_path(part_seq_, "inprogress");
  unique_fd fd(::open(name.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) throw std::runtime_error("file sink: cannot open '" + name + "': " + errno_text(errno));
  fd_ = std::move(fd);
  auto header = enc_->header();
  if (!header.empty()) {
    buf_.insert(0, "\n");
    buf_.insert(0, header);
  }
}

std::uint64_t file_sink::finish_part() {
  write_out();
  const auto name = part_path(part_seq_, "inprogress");
  if (::fdatasync(fd_.get()) != 0 && errno != EINVAL)
    throw std::runtime_error("file sink: syncing '" + name + "': " + errno_text(errno));
  struct stat st {};
  std::uint64_t size = ::fstat(fd_.get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  if (::close(fd_.release()) != 0)
    throw std::runtime_error("file sink: closing '" + name + "': " + errno_text(errno));
  return size;
}

void file_sink::sync_dir() {
  auto p = split_path(path_);
  unique_fd dir(::open(p.dir.empty() ? "." : p.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir) ::fsync(dir.get());  // best effort: some file systems refuse it
}

void file_sink::prepare(std::uint64_t id) {
  if (!exactly_once_) {
    flush();
    return;
  }
  if (fresh_pending_) start_fresh();
  if (!fd_) return;  // no rows since the last barrier: no part
  sealed_part p{part_seq_, id, finish_part(), part_rows_};
  auto from = part_path(p.seq, "inprogress");
  auto to = part_path(p.seq, "pending");
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw std::runtime_error("file sink: renaming '" + from + "' to '" + to +
                             "': " + errno_text(errno));
  sync_dir();
  sealed_.push_back(p);
  part_seq_ = part_rows_ = 0;
}

void file_sink::snapshot(core::state_writer& w) {
  w.put<std::uint32_t>(file_sink_snapshot_version);
  w.put<std::uint8_t>(exactly_once_ ? 1 : 0);
  if (!exactly_once_) {
    // The file's length at the barrier (flushed by `prepare`): a restore cuts what follows.
    w.put<std::uint64_t>(truncate_pending_ && !append_ ? 0 : size_);
    return;
  }
  w.put<std::uint64_t>(next_seq_);
  w.put<std::uint64_t>(sealed_.size());
  for (const auto& p : sealed_) {
    w.put<std::uint64_t>(p.seq);
    w.put<std::uint64_t>(p.checkpoint);
    w.put<std::uint64_t>(p.bytes);
    w.put<std::uint64_t>(p.rows);
  }
}

void file_sink::publish(const sealed_part& p) {
  auto from = part_path(p.seq, "pending");
  auto to = part_path(p.seq, "");
  if (::rename(from.c_str(), to.c_str()) != 0) {
    int e = errno;
    struct stat st {};
    // Renamed already (a commit repeated after a restart): nothing to do.
    if (!(e == ENOENT && ::stat(to.c_str(), &st) == 0))
      throw std::runtime_error("file sink: renaming '" + from + "' to '" + to +
                               "': " + errno_text(e));
  }
  delivered_ += p.rows;
}

void file_sink::commit(std::uint64_t id) {
  if (!exactly_once_) return;
  std::size_t n = 0;
  while (n < sealed_.size() && sealed_[n].checkpoint <= id) publish(sealed_[n++]);
  if (n == 0) return;
  sealed_.erase(sealed_.begin(), sealed_.begin() + static_cast<std::ptrdiff_t>(n));
  sync_dir();
}

void file_sink::restore(std::uint64_t id, core::state_reader& r) {
  auto version = r.get<std::uint32_t>();
  if (version != file_sink_snapshot_version)
    throw std::runtime_error("file sink: cannot restore a snapshot of version " +
                             std::to_string(version) + " (this build reads version " +
                             std::to_string(file_sink_snapshot_version) + ")");
  const bool was_exactly_once = r.get<std::uint8_t>() != 0;
  if (!exactly_once_) {
    // At-least-once: the file is cut back to its length at the checkpoint, so the rows written
    // after it, which the replay writes again, are not there twice.
    if (was_exactly_once || !fd_) return;
    const auto size = r.get<std::uint64_t>();
    struct stat st {};
    if (::fstat(fd_.get(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) >= size) {
      if (::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0)
        throw std::runtime_error("file sink: truncating '" + path_ + "': " + errno_text(errno));
      size_ = size;
      truncate_pending_ = false;
      ::lseek(fd_.get(), static_cast<off_t>(size_), SEEK_SET);
    }
    return;
  }
  fresh_pending_ = false;
  std::uint64_t next_seq = 1;
  std::vector<sealed_part> keep;
  if (was_exactly_once) {
    next_seq = r.get<std::uint64_t>();
    auto n = r.get<std::uint64_t>();
    for (std::uint64_t i = 0; i < n; ++i) {
      sealed_part p;
      p.seq = r.get<std::uint64_t>();
      p.checkpoint = r.get<std::uint64_t>();
      p.bytes = r.get<std::uint64_t>();
      p.rows = r.get<std::uint64_t>();
      if (p.checkpoint <= id) keep.push_back(p);
    }
  } else {
    // The checkpoint was taken with at-least-once delivery: number after what is there.
    for (auto& [seq, state] : list_parts())
      if (state.empty()) next_seq = std::max(next_seq, seq + 1);
  }
  // What the previous run did after the checkpoint is discarded: its parts in progress or
  // sealed for a later checkpoint, and files it committed past the checkpoint's numbering.
  for (auto& [seq, state] : list_parts()) {
    bool kept = state == "pending" &&
                std::any_of(keep.begin(), keep.end(), [&](auto& p) { return p.seq == seq; });
    bool later = state.empty() && seq >= next_seq;
    if (kept || (state.empty() && !later)) continue;
    std::error_code ec;
    std::filesystem::remove(part_path(seq, state.c_str()), ec);
  }
  for (const auto& p : keep) {
    auto name = part_path(p.seq, "pending");
    struct stat st {};
    // Gone: committed by the previous run before it stopped (and perhaps consumed since).
    if (::stat(name.c_str(), &st) != 0) continue;
    {
      auto size = static_cast<std::uint64_t>(st.st_size);
      if (size < p.bytes)
        throw std::runtime_error(
            "file sink: the prepared part '" + name + "' has " + std::to_string(size) +
            " bytes, not the " + std::to_string(p.bytes) + " of checkpoint " +
            std::to_string(p.checkpoint) + "; it was changed after it was sealed");
      if (size > p.bytes && ::truncate(name.c_str(), static_cast<off_t>(p.bytes)) != 0)
        throw std::runtime_error("file sink: truncating '" + name + "': " + errno_text(errno));
    }
    publish(p);
  }
  sealed_.clear();
  next_seq_ = next_seq;
  sync_dir();
}

void file_sink::abort() {
  if (!exactly_once_) {
    close();
    return;
  }
  buf_.clear();
  if (fd_) {
    fd_.reset();
    std::error_code ec;
    std::filesystem::remove(part_path(part_seq_, "inprogress"), ec);
    part_seq_ = part_rows_ = 0;
  }
}

}  // namespace pel::connectors
