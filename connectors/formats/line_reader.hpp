#pragma once
/// \file
/// Helpers for connectors that read text lines (file, stdin): a reusable read buffer that
/// hands out complete lines, and a decoder wrapper that numbers lines, joins CSV records that
/// span lines and sends malformed ones to the dead letter. Both bound what one record may
/// hold (`max_record_bytes`), so an endless line (`/dev/zero`) or a CSV quote that is never
/// closed costs a dead letter, not unbounded memory. Internal to the connectors.

#include "pel/connectors/format.hpp"
#include "pel/core/operator.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pel::connectors {

/// The default bound on one record (a line, or a CSV record spanning lines): 1 MiB.
constexpr std::size_t default_max_record_bytes = std::size_t{1} << 20;

/// How many bytes of an over-long record its dead letter keeps as `record`.
constexpr std::size_t overlong_prefix_bytes = 1024;

/// The `max_record_bytes` parameter of the line-reading sources.
spec::param max_record_bytes_param();

/// Reads `max_record_bytes` from `cfg`.
std::size_t read_max_record_bytes(const spec::config& cfg);

/// What `line_buffer::next_line` found.
enum class line_status {
  none,      ///< no complete line is buffered: read more
  line,      ///< a complete line
  too_long,  ///< a line over the limit: the view holds its start, the rest is skipped
};

/// A byte buffer filled by large reads and consumed line by line. A line longer than
/// `max_line` is reported as `too_long` as soon as that many bytes are buffered without a
/// newline; the rest of it, up to the next newline, is then dropped as it is read, so the
/// buffer never holds more than `max_line` plus one read. Not thread-safe.
class line_buffer {
public:
  /// `chunk` is the least free space `write_ptr` offers (the size of one read).
  explicit line_buffer(std::size_t chunk = 1 << 20, std::size_t max_line = default_max_record_bytes)
      : chunk_(chunk), max_line_(max_line) {}

  /// Sets the longest line handed out whole (at least 1).
  void set_max_line(std::size_t n) noexcept { max_line_ = n > 0 ? n : 1; }
  std::size_t max_line() const noexcept { return max_line_; }

  /// Where the next read may write at least `write_space()` bytes. Moves the unconsumed
  /// bytes, which invalidates lines handed out before.
  char* write_ptr();
  std::size_t write_space() const noexcept { return buf_.size() - end_; }
  /// `n` bytes were written at `write_ptr()`.
  void commit(std::size_t n) noexcept { end_ += n; }

  /// The next complete line without its '\n' (and without a '\r' before it; the first line
  /// without a UTF-8 byte order mark). With
  /// `too_long`, `line` is the line's first `max_line` bytes (or fewer). The view is valid
  /// until `write_ptr` or `clear`.
  line_status next_line(std::string_view& line) noexcept;
  /// Takes what is left (a last line without a newline): `none` when nothing is left.
  line_status take_rest(std::string_view& line) noexcept;
  /// Bytes buffered but not yet handed out.
  std::size_t pending() const noexcept { return end_ - begin_; }
  /// True while the rest of an over-long line is being dropped.
  bool skipping() const noexcept { return skipping_; }
  /// Forgets what is buffered; the next line is the first of an input again.
  void clear() noexcept {
    begin_ = end_ = scan_ = 0;
    skipping_ = false;
    at_start_ = true;
  }

private:
  line_status next_raw(std::string_view& line) noexcept;
  line_status take_rest_raw(std::string_view& line) noexcept;

  std::vector<char> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t scan_ = 0;  ///< no '\n' before this offset among the pending bytes
  std::size_t chunk_;
  std::size_t max_line_;
  bool skipping_ = false;  ///< dropping bytes up to the next '\n'
  bool at_start_ = true;   ///< no line handed out yet: a UTF-8 byte order mark is dropped
};

/// Decodes lines into rows of `out.main`; malformed ones go to `out.dead_letter` with the
/// position `where:line`. CSV records whose quoted fields hold line breaks are joined first,
/// up to `max_record_bytes`.
class line_decoder {
public:
  /// `csv` is the CSV dialect when the format is CSV, null otherwise.
  line_decoder(std::unique_ptr<decoder> dec, const csv_options* csv,
               std::size_t max_record_bytes = default_max_record_bytes);

  /// `component` is the source's name (for dead letters), `where` the input's name (a path,
  /// "stdin").
  void set_origin(std::string component, std::string where);

  /// Handles one line. Returns true when a row was appended (false: blank line, dead letter,
  /// or a CSV record that continues on the next line).
  bool line(std::string_view text, core::outputs& out, std::int64_t now);

  /// Handles a line over `max_record_bytes`, of which `start` is the beginning: a dead
  /// letter whose record is its first `overlong_prefix_bytes`.
  void too_long(std::string_view start, core::outputs& out, std::int64_t now);

  /// Hands `line_buffer` results on: `line` or `too_long`.
  void take(line_status s, std::string_view text, core::outputs& out, std::int64_t now) {
    if (s == line_status::line)
      line(text, out, now);
    else if (s == line_status::too_long)
      too_long(text, out, now);
  }

  /// Skips one line (a header) while keeping the line count right.
  void skip() noexcept { ++line_no_; }

  /// Handles a CSV record left open at end of input as malformed.
  void finish(core::outputs& out, std::int64_t now);

  /// Starts counting lines again (the input was truncated or replaced).
  void reset() noexcept {
    line_no_ = 0;
    pending_.clear();
  }

  /// Forgets the line numbers of the rows appended so far (call at the start of a poll).
  void begin_rows() noexcept { row_lines_.clear(); }
  /// `where:line` of the `i`-th row appended since `begin_rows` (empty if there is none).
  std::string row_position(std::size_t i) const {
    return i < row_lines_.size() ? where_ + ":" + std::to_string(row_lines_[i]) : std::string();
  }

  std::uint64_t lines() const noexcept { return line_no_; }
  /// Resuming at a checkpointed position: the lines before it were counted already.
  void set_lines(std::uint64_t n) noexcept { line_no_ = n; }
  /// True while a CSV record spanning lines is held, waiting for its next line (the lines
  /// taken so far gave no row yet).
  bool in_record() const noexcept { return !pending_.empty(); }
  std::uint64_t malformed() const noexcept { return malformed_; }
  std::size_t max_record_bytes() const noexcept { return max_record_bytes_; }
  const core::schema_ptr& schema() const { return dec_->schema(); }

private:
  bool decode(std::string_view text, std::uint64_t line_no, core::outputs& out, std::int64_t now);
  void dead(std::string_view reason, std::string_view record, std::uint64_t line_no,
            core::outputs& out, std::int64_t now);

  std::unique_ptr<decoder> dec_;
  std::optional<csv_options> csv_;
  std::size_t max_record_bytes_;
  std::string component_;
  std::string where_;
  std::uint64_t line_no_ = 0;
  std::uint64_t pending_line_ = 0;
  std::uint64_t malformed_ = 0;
  std::string pending_;                   ///< a CSV record that spans lines, so far
  std::vector<std::uint64_t> row_lines_;  ///< line of each row appended since begin_rows
  std::string error_;
  std::uint32_t width_ = 0;
};

/// `text` cut to at most `max` bytes, not inside a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t max) noexcept;

}  // namespace pel::connectors
