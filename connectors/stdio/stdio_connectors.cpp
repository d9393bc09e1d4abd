#include "stdio_connectors.hpp"

#include "pel/core/time.hpp"
#include "pel/core/time_format.hpp"

#include <unistd.h>
#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

namespace pel::connectors {

std::vector<spec::param> stdin_params() {
  using spec::param;
  auto p = format_params(true);
  for (auto& f : p)
    if (f.key == "schema")
      f.doc(
          "The fields and their types, in order, e.g. `{ts: int, symbol: string, price: "
          "double}` (types: `bool`, `int`, `double`, `string`, `any`). Required for json "
          "and csv: standard input cannot be sampled before the pipeline starts.");
  p.push_back(param::boolean("skip_header")
                  .def("false")
                  .doc("Skip the first line. With `format: csv` and `csv.header: true` the first "
                       "line is the "
                       "header and is skipped anyway."));
  p.push_back(max_record_bytes_param());
  return p;
}

std::vector<spec::param> stdout_params() {
  using spec::param;
  auto p = format_params(false);
  p.push_back(param::boolean("pretty").def("false").doc(
      "Print an aligned table for people (header once, columns sized from the first batch) "
      "instead of `format`."));
  p.push_back(param::string("time_format")
                  .one_of({"iso8601", "epoch"})
                  .def("iso8601")
                  .doc("How a table (`pretty: true`) shows event-time fields: the source's "
                       "`event_time.field` when its format is an epoch unit, a window's "
                       "`window_start` and `window_end`, and fields a `map` copies from them. "
                       "`iso8601`: `2024-01-02T14:30:00.000Z` (UTC); `epoch`: the number as it is."));
  return p;
}

// ---------------------------------------------------------------------------------------------
// stdin

stdin_source::stdin_source(const spec::config& cfg, int fd) : fd_(fd) {
  const auto format = format_name(cfg);
  const auto csv_opt = read_csv_options(cfg);
  if (format == "raw") {
    schema_ = raw_schema();
  } else {
    schema_ = declared_schema(cfg);
    if (!schema_)
      cfg.fail("schema",
               "standard input cannot be sampled before the pipeline starts: "
               "declare `schema:` (or use `format: raw`)");
  }
  header_pending_ = cfg.get_bool("skip_header") || (format == "csv" && csv_opt.header);
  const std::size_t max_record = read_max_record_bytes(cfg);
  buf_.set_max_line(max_record);
  lines_ = std::make_unique<line_decoder>(make_decoder(cfg, schema_),
                                          format == "csv" ? &csv_opt : nullptr, max_record);
  lines_->set_origin("stdin", "stdin");
}

void stdin_source::open(const core::operator_context& ctx) {
  lines_->set_origin(ctx.name.empty() ? std::string("stdin") : ctx.name, "stdin");
  if (ctx.instance != 0) done_ = true;  // one reader
}

core::poll_status stdin_source::poll(core::outputs& out, std::size_t max_rows) {
  if (lines_) lines_->begin_rows();
  if (done_) return core::poll_status::end;
  if (out.main.width == 0) out.main.width = static_cast<std::uint32_t>(schema_->size());
  const std::int64_t now = core::processing_time::now().ns;
  std::size_t handled = 0;
  bool read_once = false;
  while (handled < max_rows) {
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
    // Read again only when this poll has nothing yet: whatever a read returns is handed
    // on at once, so interactive input is not held back waiting for a full batch.
    if (handled > 0 || read_once || eof_) break;
    char* dst = buf_.write_ptr();
    ssize_t n = ::read(fd_, dst, buf_.write_space());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("stdin: ") + std::strerror(errno));
    }
    read_once = true;
    if (n == 0) {
      eof_ = true;
      auto got = buf_.take_rest(line);
      if (got != line_status::none && !header_pending_) lines_->take(got, line, out, now);
      lines_->finish(out, now);
      break;
    }
    buf_.commit(static_cast<std::size_t>(n));
  }
  if (eof_ && buf_.pending() == 0) {
    done_ = true;
    if (out.main.empty() && out.dead_letter.empty()) return core::poll_status::end;
  }
  return core::poll_status::data;
}

// ---------------------------------------------------------------------------------------------
// stdout

stdout_sink::stdout_sink(const spec::config& cfg, int fd) : cfg_(cfg), fd_(fd) {
  pretty_ = cfg.get_bool("pretty");
  iso_times_ = cfg.get_string("time_format") != "epoch";
  format_name(cfg);
  read_csv_options(cfg);
}

void stdout_sink::open(const core::operator_context&, const core::schema_ptr& input) {
  schema_ = input;
  enc_ = make_encoder(cfg_, input);
}

void stdout_sink::write(const core::batch& in) {
  if (in.empty()) return;
  if (pretty_) {
    write_pretty(in);
  } else {
    if (!header_done_) {
      auto h = enc_->header();
      if (!h.empty()) {
        buf_ += h;
        buf_ += '\n';
      }
      header_done_ = true;
    }
    for (std::size_t i = 0; i < in.size(); ++i) {
      enc_->encode(in.row(i), buf_);
      buf_ += '\n';
    }
  }
  write_all();
  delivered_ += in.size();
}

namespace {

void cell_text(std::string& out, const core::value& v, std::int64_t time_unit_ns = 0) {
  out.clear();
  if (core::is_null(v)) {
    out = "null";
    return;
  }
  if (time_unit_ns != 0)
    if (const auto* i = std::get_if<std::int64_t>(&v);
        i != nullptr && *i <= INT64_MAX / time_unit_ns && *i >= INT64_MIN / time_unit_ns) {
      out = core::format_iso8601(*i * time_unit_ns);
      return;
    }
  out = core::to_text(v);
  for (auto& c : out)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
}

}  // namespace

void stdout_sink::write_pretty(const core::batch& in) {
  constexpr std::size_t max_width = 40;
  const std::size_t w = schema_->size();
  if (!header_done_) {
    // Columns are sized once, from the names and the first batch, so that rows printed
    // later line up with the header.
    widths_.assign(w, 0);
    for (std::size_t c = 0; c < w; ++c) widths_[c] = (*schema_)[c].name.size();
    std::string t;
    for (std::size_t r = 0; r < in.size() && r < 1000; ++r)
      for (std::size_t c = 0; c < w; ++c) {
        cell_text(t, in.row(r)[c], iso_times_ ? (*schema_)[c].time_unit_ns : 0);
        widths_[c] = std::min(max_width, std::max(widths_[c], t.size()));
      }
    for (std::size_t c = 0; c < w; ++c) {
      if (c > 0) buf_ += "  ";
      const auto& name = (*schema_)[c].name;
      buf_ += name;
      if (c + 1 < w) buf_.append(widths_[c] > name.size() ? widths_[c] - name.size() : 0, ' ');
    }
    buf_ += '\n';
    for (std::size_t c = 0; c < w; ++c) {
      if (c > 0) buf_ += "  ";
      buf_.append(widths_[c], '-');
    }
    buf_ += '\n';
    header_done_ = true;
  }
  if (cells_.size() != w) cells_.resize(w);
  for (std::size_t r = 0; r < in.size(); ++r) {
    const core::value* row = in.row(r);
    for (std::size_t c = 0; c < w; ++c) {
      auto& t = cells_[c];
      const std::int64_t unit = iso_times_ ? (*schema_)[c].time_unit_ns : 0;
      cell_text(t, row[c], unit);
      if (t.size() > max_width) {
        t.resize(max_width - 3);
        t += "...";
      }
      if (c > 0) buf_ += "  ";
      std::size_t pad = widths_[c] > t.size() ? widths_[c] - t.size() : 0;
      bool numeric = unit == 0 && (core::type_of(row[c]) == core::value_type::integer ||
                                   core::type_of(row[c]) == core::value_type::number);
      if (numeric) {
        buf_.append(pad, ' ');
        buf_ += t;
      } else {
        buf_ += t;
        if (c + 1 < w) buf_.append(pad, ' ');
      }
    }
    buf_ += '\n';
  }
}

void stdout_sink::write_all() {
  std::size_t off = 0;
  while (off < buf_.size()) {
    ssize_t n = ::write(fd_, buf_.data() + off, buf_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      buf_.clear();
      throw std::runtime_error(std::string("stdout: ") + std::strerror(errno));
    }
    off += static_cast<std::size_t>(n);
  }
  buf_.clear();
}

}  // namespace pel::connectors
