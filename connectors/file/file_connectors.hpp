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
  /// True when the path is not a regular file (a named pipe, a terminal, a socket): opening
  /// and reading it may wait for a writer, so the source gets a thread of its own.
  bool blocking() const override { return special_; }
  void close() override;

  /// Lines that did not decode so far.
  std::uint64_t malformed() const noexcept { return lines_ ? lines_->malformed() : 0; }

private:
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
  bool header_pending_ = false;
  bool done_ = false;
  bool opened_once_ = false;
};

/// Writes rows, one encoded line each, through a buffer; `flush` writes and fdatasyncs.
class file_sink final : public core::sink_base {
public:
  explicit file_sink(const spec::config& cfg);
  ~file_sink() override;

  void open(const core::operator_context& ctx, const core::schema_ptr& input) override;
  void write(const core::batch& in) override;
  void flush() override;
  void close() override;
  std::uint64_t delivered() const override { return delivered_; }

  /// The path this instance writes (after `open`).
  const std::string& path() const noexcept { return path_; }

private:
  void write_out();

  spec::config cfg_;
  std::string base_path_;
  std::string path_;
  bool append_ = false;
  std::unique_ptr<encoder> enc_;
  unique_fd fd_;
  std::string buf_;
  std::uint64_t buffered_rows_ = 0;
  std::uint64_t delivered_ = 0;
};

}  // namespace pel::connectors
