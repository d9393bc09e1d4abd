#pragma once
/// \file
/// Helpers for connectors that read text lines (file, stdin): a reusable read buffer that
/// hands out complete lines, and a decoder wrapper that numbers lines, joins CSV records that
/// span lines and sends malformed ones to the dead letter. Internal to the connectors.

#include "pel/connectors/format.hpp"
#include "pel/core/operator.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pel::connectors {

/// A byte buffer filled by large reads and consumed line by line. Not thread-safe.
class line_buffer {
public:
  /// `chunk` is the least free space `write_ptr` offers (the size of one read).
  explicit line_buffer(std::size_t chunk = 1 << 20) : chunk_(chunk) {}

  /// Where the next read may write at least `write_space()` bytes. Moves the unconsumed
  /// bytes, which invalidates lines handed out before.
  char* write_ptr();
  std::size_t write_space() const noexcept { return buf_.size() - end_; }
  /// `n` bytes were written at `write_ptr()`.
  void commit(std::size_t n) noexcept { end_ += n; }

  /// The next complete line without its '\n' (and without a '\r' before it). False when no
  /// complete line is buffered. The view is valid until `write_ptr` or `clear`.
  bool next_line(std::string_view& line) noexcept;
  /// Takes what is left (a last line without a newline); empty when nothing is left.
  std::string_view take_rest() noexcept;
  /// Bytes buffered but not yet handed out.
  std::size_t pending() const noexcept { return end_ - begin_; }
  void clear() noexcept { begin_ = end_ = 0; }

private:
  std::vector<char> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::size_t scan_ = 0;  ///< no '\n' before this offset among the pending bytes
  std::size_t chunk_;
};

/// Decodes lines into rows of `out.main`; malformed ones go to `out.dead_letter` with the
/// position `where:line`. CSV records whose quoted fields hold line breaks are joined first.
class line_decoder {
public:
  /// `component` is the source's name (for dead letters), `where` the input's name (a path,
  /// "stdin"). `csv_quote` is the quote character when the format is CSV, 0 otherwise.
  line_decoder(std::unique_ptr<decoder> dec, char csv_quote);

  void set_origin(std::string component, std::string where);

  /// Handles one line. Returns true when a row was appended (false: blank line, dead letter,
  /// or a CSV record that continues on the next line).
  bool line(std::string_view text, core::outputs& out, std::int64_t now);

  /// Skips one line (a header) while keeping the line count right.
  void skip() noexcept { ++line_no_; }

  /// Handles a CSV record left open at end of input as malformed.
  void finish(core::outputs& out, std::int64_t now);

  /// Starts counting lines again (the input was truncated or replaced).
  void reset() noexcept {
    line_no_ = 0;
    pending_.clear();
  }

  std::uint64_t lines() const noexcept { return line_no_; }
  std::uint64_t malformed() const noexcept { return malformed_; }
  const core::schema_ptr& schema() const { return dec_->schema(); }

private:
  bool decode(std::string_view text, std::uint64_t line_no, core::outputs& out, std::int64_t now);

  std::unique_ptr<decoder> dec_;
  char csv_quote_;
  std::string component_;
  std::string where_;
  std::uint64_t line_no_ = 0;
  std::uint64_t pending_line_ = 0;
  std::uint64_t malformed_ = 0;
  std::string pending_;  ///< a CSV record that spans lines, so far
  std::string error_;
  std::uint32_t width_ = 0;
};

}  // namespace pel::connectors
