#include "line_reader.hpp"

#include <cstring>

namespace pel::connectors {

char* line_buffer::write_ptr() {
  if (buf_.size() - end_ < chunk_) {
    // Move the unconsumed bytes to the front, then grow if one chunk still does not fit
    // (a line longer than the buffer).
    std::size_t n = end_ - begin_;
    if (begin_ > 0 && n > 0) std::memmove(buf_.data(), buf_.data() + begin_, n);
    scan_ = scan_ > begin_ ? scan_ - begin_ : 0;
    begin_ = 0;
    end_ = n;
    if (buf_.size() - end_ < chunk_) buf_.resize(end_ + chunk_);
  }
  return buf_.data() + end_;
}

bool line_buffer::next_line(std::string_view& line) noexcept {
  std::size_t from = scan_ > begin_ ? scan_ : begin_;
  if (from >= end_) return false;
  const char* base = buf_.data();
  auto nl = static_cast<const char*>(std::memchr(base + from, '\n', end_ - from));
  if (nl == nullptr) {
    scan_ = end_;
    return false;
  }
  std::size_t stop = static_cast<std::size_t>(nl - base);
  std::size_t len = stop - begin_;
  if (len > 0 && base[stop - 1] == '\r') --len;
  line = std::string_view(base + begin_, len);
  begin_ = stop + 1;
  scan_ = begin_;
  return true;
}

std::string_view line_buffer::take_rest() noexcept {
  std::string_view rest(buf_.data() + begin_, end_ - begin_);
  if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
  begin_ = end_ = scan_ = 0;
  return rest;
}

line_decoder::line_decoder(std::unique_ptr<decoder> dec, char csv_quote)
    : dec_(std::move(dec)), csv_quote_(csv_quote) {
  width_ = static_cast<std::uint32_t>(dec_->schema()->size());
}

void line_decoder::set_origin(std::string component, std::string where) {
  component_ = std::move(component);
  where_ = std::move(where);
}

bool line_decoder::line(std::string_view text, core::outputs& out, std::int64_t now) {
  ++line_no_;
  if (csv_quote_ != 0) {
    if (!pending_.empty()) {
      pending_ += '\n';
      pending_.append(text);
      if (csv_open_quote(pending_, csv_quote_)) return false;
      bool ok = decode(pending_, pending_line_, out, now);
      pending_.clear();
      return ok;
    }
    if (csv_open_quote(text, csv_quote_)) {
      pending_.assign(text);
      pending_line_ = line_no_;
      return false;
    }
  }
  if (text.empty()) return false;
  return decode(text, line_no_, out, now);
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
  if (dec_->decode(text, row, error_)) return true;
  // Drop the half-filled row again.
  out.main.cells.resize(out.main.cells.size() - width_);
  out.main.times.pop_back();
  ++malformed_;
  dead_letter_message(out, component_, error_, text, now, where_ + ":" + std::to_string(line_no));
  return false;
}

}  // namespace pel::connectors
