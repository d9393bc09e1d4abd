#pragma once
/// \file
/// The `stdin` source and the `stdout` and `discard` sinks. Internal to connectors/stdio;
/// tests include it to point them at pipes.

#include "../formats/line_reader.hpp"
#include "pel/connectors/format.hpp"
#include "pel/core/sink.hpp"
#include "pel/core/source.hpp"
#include "pel/spec/config.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pel::connectors {

std::vector<spec::param> stdin_params();
std::vector<spec::param> stdout_params();

/// Reads lines from a file descriptor (standard input by default). Blocking: the runtime
/// gives it a thread of its own. The schema must be declared (for JSON and CSV), since
/// standard input cannot be sampled before the pipeline starts.
class stdin_source final : public core::source_base {
public:
  /// `fd` is read but not closed.
  explicit stdin_source(const spec::config& cfg, int fd = 0);

  core::schema_ptr output_schema() const override { return schema_; }
  void open(const core::operator_context& ctx) override;
  /// Hands out the lines already buffered; reads (and may block) only when none is.
  core::poll_status poll(core::outputs& out, std::size_t max_rows) override;
  /// `path:line` (`stdin:line`) of a row of the last poll, for event-time dead letters.
  std::string row_position(std::size_t row) const override {
    return lines_ ? lines_->row_position(row) : std::string();
  }
  bool blocking() const override { return true; }

private:
  int fd_;
  core::schema_ptr schema_;
  std::unique_ptr<line_decoder> lines_;
  line_buffer buf_{1 << 16};
  bool header_pending_ = false;
  bool done_ = false;
  bool eof_ = false;
};

/// Writes each batch to a file descriptor (standard output by default) as JSON lines, CSV or
/// raw text, or as an aligned table (`pretty`), and flushes it per batch so results show
/// live.
class stdout_sink final : public core::sink_base {
public:
  /// `fd` is written but not closed.
  explicit stdout_sink(const spec::config& cfg, int fd = 1);

  void open(const core::operator_context& ctx, const core::schema_ptr& input) override;
  void write(const core::batch& in) override;
  std::uint64_t delivered() const override { return delivered_; }

private:
  void write_pretty(const core::batch& in);
  void write_all();

  spec::config cfg_;
  int fd_;
  bool iso_times_ = true;  ///< tables show event-time fields as ISO 8601
  bool pretty_ = false;
  core::schema_ptr schema_;
  std::unique_ptr<encoder> enc_;
  std::string buf_;
  bool header_done_ = false;
  std::vector<std::size_t> widths_;
  std::vector<std::string> cells_;
  std::uint64_t delivered_ = 0;
};

/// Drops every row and counts them (for benchmarks and dry runs).
class discard_sink final : public core::sink_base {
public:
  void open(const core::operator_context&, const core::schema_ptr&) override {}
  void write(const core::batch& in) override { rows_ += in.size(); }
  std::uint64_t delivered() const override { return rows_; }

private:
  std::uint64_t rows_ = 0;
};

}  // namespace pel::connectors
