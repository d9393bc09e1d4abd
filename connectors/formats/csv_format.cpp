// CSV (RFC 4180): splitting, decoding by schema, encoding with minimal quoting.
#include "format_impl.hpp"

#include <charconv>

namespace pel::connectors {

bool split_csv(std::string_view record, const csv_options& opt, std::vector<csv_field>& fields,
               std::string& scratch, std::string& error) {
  fields.clear();
  scratch.clear();
  // Unescaped text is never longer than the record, so the views into `scratch` stay valid.
  scratch.reserve(record.size());
  const char delim = opt.delimiter, quote = opt.quote;
  const std::size_t n = record.size();
  std::size_t i = 0;
  for (;;) {
    if (i < n && record[i] == quote) {
      const std::size_t start = scratch.size();
      bool closed = false;
      ++i;
      while (i < n) {
        char c = record[i];
        if (c == quote) {
          if (i + 1 < n && record[i + 1] == quote) {
            scratch += quote;
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        scratch += c;
        ++i;
      }
      if (!closed) {
        error = "field " + std::to_string(fields.size() + 1) + ": the quote is not closed";
        return false;
      }
      fields.push_back({std::string_view(scratch.data() + start, scratch.size() - start), true});
      if (i == n) break;
      if (record[i] != delim) {
        error =
            "field " + std::to_string(fields.size()) + ": unexpected text after the closing quote";
        return false;
      }
      ++i;
    } else {
      std::size_t j = record.find(delim, i);
      if (j == std::string_view::npos) j = n;
      fields.push_back({record.substr(i, j - i), false});
      if (j == n) break;
      i = j + 1;
    }
  }
  return true;
}

bool csv_open_quote(std::string_view text, const csv_options& opt, bool open) noexcept {
  const char delim = opt.delimiter, quote = opt.quote;
  const std::size_t n = text.size();
  bool field_start = !open;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[i];
    if (open) {
      if (c == quote) {
        if (i + 1 < n && text[i + 1] == quote) {
          ++i;  // a doubled quote inside the field
        } else {
          open = false;
        }
      }
      continue;
    }
    if (c == delim) {
      field_start = true;
      continue;
    }
    if (c == quote && field_start) open = true;
    field_start = false;
  }
  return open;
}

namespace detail {

namespace {

using core::value_type;

class csv_decoder final : public decoder {
public:
  csv_decoder(csv_options opt, core::schema_ptr s) : opt_(std::move(opt)), schema_(std::move(s)) {}

  const core::schema_ptr& schema() const override { return schema_; }

  bool decode(std::string_view message, core::value* row, std::string& error) override {
    if (!split_csv(message, opt_, fields_, scratch_, error)) return false;
    const auto& sf = schema_->fields();
    if (fields_.size() != sf.size()) {
      error = "expected " + std::to_string(sf.size()) + " fields, found " +
              std::to_string(fields_.size());
      return false;
    }
    for (std::size_t i = 0; i < sf.size(); ++i) {
      const auto& f = fields_[i];
      if (!f.quoted && is_null_text(f.text)) continue;
      if (!convert(f, sf[i].type, row[i])) {
        error = "field '" + sf[i].name + "': expected " +
                std::string(core::to_string(*sf[i].type)) + ", found " + kind_of(f.text) + " " +
                describe(f.text);
        return false;
      }
    }
    return true;
  }

private:
  /// What a CSV text reads as, for error messages.
  static std::string kind_of(std::string_view t) {
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (!t.empty() && t.front() == '+') t.remove_prefix(1);
    const char* end = t.data() + t.size();
    std::int64_t i;
    auto ri = std::from_chars(t.data(), end, i);
    if (!t.empty() && ri.ptr == end)
      return ri.ec == std::errc() ? "int" : "int (outside the int64 range)";
    double d;
    auto rd = std::from_chars(t.data(), end, d);
    if (!t.empty() && rd.ptr == end)
      return rd.ec == std::errc() ? "double" : "double (outside the double range)";
    bool b;
    if (parse_bool(t, b)) return "bool";
    return "string";
  }

  bool is_null_text(std::string_view t) const noexcept {
    for (const auto& nv : opt_.null_values)
      if (t == nv) return true;
    return false;
  }

  static bool convert(const csv_field& f, const std::optional<value_type>& type, core::value& out) {
    if (!type) {
      std::int64_t i;
      double d;
      if (!f.quoted && parse_int(f.text, i))
        out = i;
      else if (!f.quoted && parse_number_text(f.text, d))
        out = d;
      else
        out = std::string(f.text);
      return true;
    }
    switch (*type) {
      case value_type::string:
        out = std::string(f.text);
        return true;
      case value_type::integer: {
        std::int64_t i;
        if (!parse_int(f.text, i)) return false;
        out = i;
        return true;
      }
      case value_type::number: {
        double d;
        if (!parse_double(f.text, d)) return false;
        out = d;
        return true;
      }
      case value_type::boolean: {
        bool b;
        if (!parse_bool(f.text, b)) return false;
        out = b;
        return true;
      }
      case value_type::null:
        return true;
    }
    return false;
  }

  csv_options opt_;
  core::schema_ptr schema_;
  std::vector<csv_field> fields_;
  std::string scratch_;
};

class csv_encoder final : public encoder {
public:
  csv_encoder(csv_options opt, const core::schema& s) : opt_(std::move(opt)) {
    width_ = s.size();
    if (opt_.header) {
      for (std::size_t i = 0; i < s.size(); ++i) {
        if (i > 0) header_ += opt_.delimiter;
        append_field(header_, s[i].name);
      }
    }
  }

  std::string header() const override { return header_; }

  void encode(const core::value* row, std::string& out) override {
    for (std::size_t i = 0; i < width_; ++i) {
      if (i > 0) out += opt_.delimiter;
      if (auto s = std::get_if<std::string>(&row[i]))
        append_field(out, *s);
      else
        append_text(out, row[i]);
    }
  }

private:
  /// Quotes a string when it holds a delimiter, quote or line break, or when it would read
  /// back as null (the empty string, "NA", ...).
  void append_field(std::string& out, std::string_view s) const {
    bool needs = false;
    for (char c : s)
      if (c == opt_.delimiter || c == opt_.quote || c == '\n' || c == '\r') {
        needs = true;
        break;
      }
    if (!needs)
      for (const auto& nv : opt_.null_values)
        if (s == nv) needs = true;
    if (!needs) {
      out.append(s);
      return;
    }
    out += opt_.quote;
    for (char c : s) {
      if (c == opt_.quote) out += opt_.quote;
      out += c;
    }
    out += opt_.quote;
  }

  csv_options opt_;
  std::size_t width_ = 0;
  std::string header_;
};

}  // namespace

std::unique_ptr<decoder> make_csv_decoder(csv_options opt, core::schema_ptr schema) {
  return std::make_unique<csv_decoder>(std::move(opt), std::move(schema));
}

std::unique_ptr<encoder> make_csv_encoder(csv_options opt, const core::schema_ptr& schema) {
  return std::make_unique<csv_encoder>(std::move(opt), *schema);
}

}  // namespace detail

}  // namespace pel::connectors
