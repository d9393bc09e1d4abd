#include "line_reader.hpp"

#include <algorithm>
#include <cstring>

namespace pel::connectors {

spec::param max_record_bytes_param() {
  return spec::param::bytes("max_record_bytes")
      .def("1MiB")
      .min(1)
      .doc(
          "The longest record (line, or CSV record spanning lines) read whole. A longer one "
          "goes to the dead-letter output with its position and its first 1 KiB as the "
          "record; the rest of its line is skipped without being held in memory.");
}

std::size_t read_max_record_bytes(const spec::config& cfg) {
  auto n = cfg.get_bytes("max_record_bytes");
  return n > 0 ? static_cast<std::size_t>(n) : default_max_record_bytes;
}

std::string_view utf8_prefix(std::string_view text, std::size_t max) noexcept {
  if (text.size() <= max) return text;
  std::size_t n = max;
  // Back off over continuation bytes (10xxxxxx) so that a multi-byte character is not split.
  std::size_t back = 0;
  while (n > 0 && back < 3 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) {
    --n;
    ++back;
  }
  if ((static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) n = max;  // not UTF-8 anyway
  return text.substr(0, n);
}

// ---------------------------------------------------------------------------------------------
// line_buffer

namespace {

/// Drops a UTF-8 byte order mark from the first line of an input (editors on Windows write
/// one; it is not part of the first field or JSON value).
line_status first_line(line_status s, std::string_view& line, bool& at_start) noexcept {
  if (at_start && s != line_status::none) {
    at_start = false;
    if (line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
  }
  return s;
}

}  // namespace

char* line_buffer::write_ptr() {
  if (buf_.size() - end_ < chunk_) {
    // Move the unconsumed bytes to the front, then grow if one chunk still does not fit
    // (a line longer than the buffer, at most max_line_ bytes).
    std::size_t n = end_ - begin_;
    if (begin_ > 0 && n > 0) std::memmove(buf_.data(), buf_.data() + begin_, n);
    scan_ = scan_ > begin_ ? scan_ - begin_ : 0;
    begin_ = 0;
    end_ = n;
    if (buf_.size() - end_ < chunk_) buf_.resize(end_ + chunk_);
  }
  return buf_.data() + end_;
}

line_status line_buffer::next_raw(std::string_view& line) noexcept {
  const char* base = buf_.data();
  if (skipping_) {
    auto nl = begin_ < end_
                  ? static_cast<const char*>(std::memchr(base + begin_, '\n', end_ - begin_))
                  : nullptr;
    if (nl == nullptr) {
      begin_ = end_ = scan_ = 0;  // all of it belongs to the over-long line
      return line_status::none;
    }
    begin_ = scan_ = static_cast<std::size_t>(nl - base) + 1;
    skipping_ = false;
  }
  std::size_t from = scan_ > begin_ ? scan_ : begin_;
  const char* nl =
      from < end_ ? static_cast<const char*>(std::memchr(base + from, '\n', end_ - from)) : nullptr;
  if (nl != nullptr) {
    std::size_t stop = static_cast<std::size_t>(nl - base);
    std::size_t len = stop - begin_;
    if (len > 0 && base[stop - 1] == '\r') --len;
    line = std::string_view(base + begin_, len);
    begin_ = stop + 1;
    scan_ = begin_;
    if (len > max_line_) {
      line = line.substr(0, max_line_);
      return line_status::too_long;
    }
    return line_status::line;
  }
  scan_ = end_;
  if (end_ - begin_ > max_line_) {
    // No newline within the limit: report the line now and drop the rest as it comes.
    line = std::string_view(base + begin_, max_line_);
    begin_ = scan_ = end_;
    skipping_ = true;
    return line_status::too_long;
  }
  return line_status::none;
}

line_status line_buffer::take_rest_raw(std::string_view& line) noexcept {
  const bool skipped = skipping_;
  std::string_view rest(buf_.data() + begin_, end_ - begin_);
  begin_ = end_ = scan_ = 0;
  skipping_ = false;
  if (skipped) return line_status::none;  // the end of an over-long line, reported already
  if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
  if (rest.empty()) return line_status::none;
  line = rest;
  if (rest.size() > max_line_) {
    line = rest.substr(0, max_line_);
    return line_status::too_long;
  }
  return line_status::line;
}

line_status line_buffer::next_line(std::string_view& line) noexcept {
  return first_line(next_raw(line), line, at_start_);
}

line_status line_buffer::take_rest(std::string_view& line) noexcept {
  return first_line(take_rest_raw(line), line, at_start_);
}

// ---------------------------------------------------------------------------------------------
// line_decoder

line_decoder::line_decoder(std::unique_ptr<decoder> dec, const csv_options* csv,
                           std::size_t max_record_bytes)
    : dec_(std::move(dec)),
      max_record_bytes_(max_record_bytes > 0 ? max_record_bytes : default_max_record_bytes) {
  width_ = static_cast<std::uint32_t>(dec_->schema()->size());
  if (csv != nullptr) csv_ = *csv;
}

void line_decoder::set_origin(std::string component, std::string where) {
  component_ = std::move(component);
  where_ = std::move(where);
}

namespace {

std::string too_long_reason(std::string_view what, std::size_t limit, std::string_view hint = {}) {
  return std::string(what) + " longer than max_record_bytes (" + std::to_string(limit) +
         " bytes): the record holds its first " + std::to_string(overlong_prefix_bytes) +
         " bytes and the rest was skipped; " + std::string(hint) +
         "raise max_record_bytes if such records are valid";
}

}  // namespace

bool line_decoder::line(std::string_view text, core::outputs& out, std::int64_t now) {
  ++line_no_;
  if (csv_) {
    if (!pending_.empty()) {
      if (pending_.size() + 1 + text.size() > max_record_bytes_) {
        // A quoted field that runs on and on: most likely a quote that is never closed.
        dead(too_long_reason("CSV record", max_record_bytes_,
                             "a quoted field opened here runs over many lines (is a quote not "
                             "closed?); "),
             utf8_prefix(pending_, overlong_prefix_bytes), pending_line_, out, now);
        pending_.clear();
        // This line starts afresh.
      } else {
        pending_ += '\n';
        pending_.append(text);
        // Only the new line is scanned, from inside the quoted field, so that a long record
        // costs linear time.
        if (csv_open_quote(text, *csv_, true)) return false;
        bool ok = decode(pending_, pending_line_, out, now);
        pending_.clear();
        return ok;
      }
    }
    if (csv_open_quote(text, *csv_)) {
      pending_.assign(text);
      pending_line_ = line_no_;
      return false;
    }
  }
  if (text.empty()) return false;
  return decode(text, line_no_, out, now);
}

void line_decoder::too_long(std::string_view start, core::outputs& out, std::int64_t now) {
  ++line_no_;
  if (!pending_.empty()) {
    // The over-long line continues a CSV record: the whole record goes.
    dead(too_long_reason("CSV record", max_record_bytes_),
         utf8_prefix(pending_, overlong_prefix_bytes), pending_line_, out, now);
    pending_.clear();
    return;
  }
  dead(too_long_reason("line", max_record_bytes_), utf8_prefix(start, overlong_prefix_bytes),
       line_no_, out, now);
}

void line_decoder::finish(core::outputs& out, std::int64_t now) {
  if (pending_.empty()) return;
  decode(pending_, pending_line_, out, now);
  pending_.clear();
}

bool line_decoder::decode(std::string_view text, std::uint64_t line_no, core::outputs& out,
                          std::int64_t now) {
  if (out.main.width == 0) out.main.width = width_;
  core::value* row = out.main.append(now);
  if (dec_->decode(text, row, error_)) {
    row_lines_.push_back(line_no);
    return true;
  }
  // Drop the half-filled row again.
  out.main.cells.resize(out.main.cells.size() - width_);
  out.main.times.pop_back();
  dead(error_, text, line_no, out, now);
  return false;
}

void line_decoder::dead(std::string_view reason, std::string_view record, std::uint64_t line_no,
                        core::outputs& out, std::int64_t now) {
  ++malformed_;
  dead_letter_message(out, component_, reason, record, now, where_ + ":" + std::to_string(line_no));
}

}  // namespace pel::connectors
