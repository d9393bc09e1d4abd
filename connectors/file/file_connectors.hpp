#pragma once
/// \file
/// The file source and sink (`type: file`). Internal to connectors/file; tests include it.

#include "../formats/line_reader.hpp"
#include "pel/connectors/format.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/spec/config.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace pel::connectors {

/// Owns a POSIX file descriptor; closes it on destruction.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    reset(o.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  int release() noexcept {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1) noexcept;

private:
  int fd_ = -1;
};

/// Parameters of the file source / sink (format parameters included).
std::vector<spec::param> file_source_params();
std::vector<spec::param> file_sink_params();

/// The path instance `instance` of `parallelism` writes: `path` itself for one instance,
/// otherwise `-<instance>` inserted before the extension (`out/t.json` → `out/t-1.json`).
std::string instance_path(const std::string& path, std::uint32_t instance,
                          std::uint32_t parallelism);

/// Reads a file line by line with large buffered reads, decoding each line; optionally keeps
/// following it as it grows (tail -F: truncation and replacement are noticed at end of file).
/// Only instance 0 reads; the others end at once.
class file_source final : public core::source_base {
public:
  /// Infers the schema from the file's first lines when none is declared (throws
  /// `spec::config_error` when it cannot).
  explicit file_source(const spec::config& cfg);
  ~file_source() override;

  core::schema_ptr output_schema() const override { return schema_; }
  void open(const core::operator_context& ctx) override;
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override;
  /// `path:line` (`stdin:line`) of a row of the last poll, for event-time dead letters.
  std::string row_position(std::size_t row) const override {
    return lines_ ? lines_->row_position(row) : std::string();
  }
  void progress(std::uint64_t& done, std::uint64_t& total) const override;
  /// For the autoscaler: the lines still to read (the bytes after the position over the mean
  /// line length so far) and, when following, the rate the file grows at in lines a second.
  load offered() const override;
  /// True when the path is not a regular file (a named pipe, a terminal, a socket): opening
  /// and reading it may wait for a writer, so the source gets a thread of its own.
  bool blocking() const override { return special_; }
  void close() override;

  // -- checkpoints -------------------------------------------------------------------------

  /// A regular file can be read again from a byte offset (a pipe or terminal cannot).
  bool replayable() const override { return !special_; }
  /// Version, then whether this instance reads; for the reader: the byte offset of the first
  /// line not yet handed on in full (rows or dead letters), the lines before it, whether the
  /// header is still to be skipped and whether the offset is inside an over-long line whose
  /// rest is to be skipped. A CSV record spanning lines that is not complete yet is read
  /// again from its first line after a restore.
  void snapshot(core::state_writer& w) override;
  /// Seeks to the snapshot's offset: the next row is the one after the last row returned
  /// before the snapshot, with the same line numbers. Throws `std::runtime_error` when the
  /// file is now shorter than that offset (truncated or replaced) or gone.
  void restore(core::state_reader& r) override;

  /// Lines that did not decode so far.
  std::uint64_t malformed() const noexcept { return lines_ ? lines_->malformed() : 0; }

private:
  /// Everything taken from the buffer so far has been handed on: the position to resume at.
  void mark_position();
  bool open_file(bool at_end);
  /// At end of file in follow mode: true when reading should go on (truncated or replaced).
  bool check_rotation(core::outputs& out, std::int64_t now);
  void restart_counting();
  /// Hands on a last line without a newline.
  void take_rest(core::outputs& out, std::int64_t now);

  std::string path_;
  bool follow_ = false;
  bool special_ = false;  ///< the path is there and not a regular file
  bool start_at_end_ = false;
  bool skip_first_line_ = false;
  core::schema_ptr schema_;
  std::unique_ptr<line_decoder> lines_;
  line_buffer buf_;
  unique_fd fd_;
  std::uint64_t offset_ = 0;  ///< bytes read from the current file
  std::uint64_t size_at_open_ = 0;
  // `offered`: the file's size at the last call, to measure how fast it grows.
  mutable std::int64_t offered_size_ = -1;
  mutable std::int64_t offered_ns_ = 0;
  mutable double offered_rate_ = -1;
  bool header_pending_ = false;
  bool done_ = false;
  bool opened_once_ = false;
  bool reader_ = true;  ///< this instance reads the file (instance 0)
  /// After a restore inside an over-long line: its rest (up to the newline) is dropped.
  bool skip_partial_line_ = false;
  /// The checkpoint position: offset in the current file of the first line not handed on
  /// in full, the lines before it, and the reader's state there.
  struct position {
    std::uint64_t offset = 0;
    std::uint64_t lines = 0;
    bool header_pending = false;
    bool skipping = false;  ///< inside an over-long line
  };
  position pos_;
};

/// The committed files of an exactly-once file sink instance: `<dir>/<stem>.<seq><ext>`,
/// where `<dir>/<stem><ext>` is the instance's path (see `instance_path`) and `<seq>` counts
/// the instance's files from 1 in ten digits, so that name order is write order
/// (`out/t.json` → `out/t.0000000001.json`; `out/t-1.0000000001.json` for instance 1).
std::string committed_part_path(const std::string& instance_path, std::uint64_t seq);

/// Writes rows, one encoded line each, through a buffer; `flush` writes and fdatasyncs.
///
/// `delivery: at_least_once` (the default) writes the instance's path directly. With
/// `delivery: exactly_once` rows go to a hidden part file in the same directory
/// (`.<name>.inprogress`); `prepare(N)` syncs it and seals it for checkpoint N
/// (`.<name>.pending`), `commit(N)` renames every part sealed up to N to its visible name
/// (`committed_part_path`), and `close` at end of stream does the same for all of them. A part
/// holds the rows of one checkpoint interval (none: no file); each is a whole file (a CSV
/// part has its header).
class file_sink final : public core::sink_base {
public:
  explicit file_sink(const spec::config& cfg);
  ~file_sink() override;

  void open(const core::operator_context& ctx, const core::schema_ptr& input) override;
  void write(const core::batch& in) override;
  void flush() override;
  void close() override;
  std::uint64_t delivered() const override { return delivered_; }

  // -- checkpoints (two-phase commit, `delivery: exactly_once`) ----------------------------

  bool exactly_once() const override { return exactly_once_; }
  std::string buffer_refusal() const override;
  /// Syncs the open part and seals it as checkpoint `id`; the next rows start a new part.
  void prepare(std::uint64_t id) override;
  /// Version, then the next part number and the sealed, uncommitted parts (number,
  /// checkpoint, size, rows).
  void snapshot(core::state_writer& w) override;
  /// Renames the parts sealed up to `id` to their visible names, in order; idempotent.
  void commit(std::uint64_t id) override;
  /// Makes visible the parts of the snapshot sealed up to `id` that are still hidden (a part
  /// already renamed is skipped), and deletes what this instance left after that checkpoint:
  /// hidden parts not in the snapshot and visible files numbered after it.
  void restore(std::uint64_t id, core::state_reader& r) override;
  /// Deletes the open part; sealed parts stay for a restore to commit.
  void abort() override;

  /// The path this instance writes (after `open`): with exactly_once, the name its committed
  /// files are numbered from.
  const std::string& path() const noexcept { return path_; }

private:
  /// A part sealed by `prepare` and not yet committed.
  struct sealed_part {
    std::uint64_t seq = 0;
    std::uint64_t checkpoint = 0;
    std::uint64_t bytes = 0;
    std::uint64_t rows = 0;
  };

  void write_out();
  std::string part_path(std::uint64_t seq, const char* state) const;
  /// First use after `open` without a `restore`: removes what a previous run left.
  void start_fresh();
  void open_part();
  /// Syncs and closes the open part; returns its size.
  std::uint64_t finish_part();
  void publish(const sealed_part& p);
  void sync_dir();
  /// at_least_once: the first output of a run that did not resume (`mode: overwrite` empties
  /// the file) or did (writes go on at the checkpoint's length).
  void start_output();
  /// This instance's part files in the directory: number and state ("" visible).
  std::vector<std::pair<std::uint64_t, std::string>> list_parts() const;

  spec::config cfg_;
  std::string base_path_;
  std::string path_;
  bool append_ = false;
  bool exactly_once_ = false;
  std::unique_ptr<encoder> enc_;
  unique_fd fd_;
  std::string buf_;
  std::uint64_t buffered_rows_ = 0;
  std::uint64_t delivered_ = 0;
  // at_least_once
  /// `mode: overwrite` empties the file at the first output, not at `open`: a restore may
  /// come first and keep what the checkpoint covers.
  bool truncate_pending_ = false;
  std::uint64_t size_ = 0;  ///< bytes in `path_` (written out)
  // exactly_once
  bool fresh_pending_ = false;       ///< `start_fresh` still to run
  std::uint64_t next_seq_ = 1;       ///< number of the next part
  std::uint64_t part_seq_ = 0;       ///< number of the open part (0: none)
  std::uint64_t part_rows_ = 0;      ///< rows in the open part
  std::vector<sealed_part> sealed_;  ///< prepared, not committed, in order
};

}  // namespace pel::connectors
