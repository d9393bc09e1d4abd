#include "pel/testing/compare.hpp"

#include "pel/core/time_format.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>

namespace pel::testing {

namespace {

bool parse_number(const std::string& text, double& out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || errno == ERANGE) return false;
  // strtod also reads `nan`, `inf` and hex; YAML numbers are decimal.
  for (char c : text)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '+' ||
          c == 'e' || c == 'E'))
      return false;
  return true;
}

bool close(double a, double b, double tolerance) {
  if (a == b) return true;
  if (std::isnan(a) || std::isnan(b)) return false;
  const double scale = std::max({1.0, std::fabs(a), std::fabs(b)});
  return std::fabs(a - b) <= tolerance * scale;
}

/// What the expected records need of one actual row: the field positions of their keys.
struct field_ref {
  const spec::node::entry* entry;
  int column;  ///< -1: not in the schema
};

std::vector<field_ref> fields_of(const spec::node& rec, const core::schema& schema) {
  std::vector<field_ref> out;
  for (const auto& e : rec.entries) out.push_back({&e, schema.index_of(e.key)});
  return out;
}

bool record_matches(const std::vector<field_ref>& fields, const core::schema& schema,
                    const std::vector<core::value>& row, double tolerance) {
  for (const auto& f : fields) {
    if (f.column < 0) return false;
    const auto c = static_cast<std::size_t>(f.column);
    if (!value_matches(*f.entry->value, row[c], schema[c].time_unit_ns, tolerance)) return false;
  }
  return true;
}

std::size_t equal_fields(const std::vector<field_ref>& fields, const core::schema& schema,
                         const std::vector<core::value>& row, double tolerance) {
  std::size_t n = 0;
  for (const auto& f : fields)
    if (f.column >= 0 &&
        value_matches(*f.entry->value, row[static_cast<std::size_t>(f.column)],
                      schema[static_cast<std::size_t>(f.column)].time_unit_ns, tolerance))
      ++n;
  return n;
}

/// Maximum bipartite matching (augmenting paths): `match[e]` is the actual row of expected
/// record `e`, or -1.
std::vector<int> match_all(const std::vector<std::vector<int>>& candidates,
                           std::size_t actual_rows) {
  std::vector<int> of_expected(candidates.size(), -1);
  std::vector<int> of_actual(actual_rows, -1);
  std::vector<char> seen;
  std::function<bool(std::size_t)> augment = [&](std::size_t e) {
    for (int a : candidates[e]) {
      if (seen[static_cast<std::size_t>(a)]) continue;
      seen[static_cast<std::size_t>(a)] = 1;
      if (of_actual[static_cast<std::size_t>(a)] < 0 ||
          augment(static_cast<std::size_t>(of_actual[static_cast<std::size_t>(a)]))) {
        of_actual[static_cast<std::size_t>(a)] = static_cast<int>(e);
        of_expected[e] = a;
        return true;
      }
    }
    return false;
  };
  for (std::size_t e = 0; e < candidates.size(); ++e) {
    seen.assign(actual_rows, 0);
    augment(e);
  }
  return of_expected;
}

class differ {
public:
  differ(const expectation& ex, const captured& actual, const std::vector<std::string>& keys,
         const std::string& file)
      : ex_(ex), actual_(actual), keys_(keys), file_(file) {
    for (const auto& r : ex.records) fields_.push_back(fields_of(*r, *actual.schema));
  }

  std::vector<std::string> run() {
    if (ex_.options.ordered)
      ordered();
    else
      unordered();
    return std::move(lines_);
  }

private:
  const core::schema& schema() const { return *actual_.schema; }

  bool matches(std::size_t e, std::size_t a) const {
    return record_matches(fields_[e], schema(), actual_.rows[a], ex_.options.tolerance);
  }

  /// `symbol=AAPL, window_start=...` from the expected record's key fields (or from the
  /// actual row when the expected one does not name them).
  std::string key_text(std::size_t e) const {
    std::string s;
    for (const auto& k : keys_)
      if (auto* f = ex_.records[e]->find(k)) {
        if (!s.empty()) s += ", ";
        s += k + "=" + show_expected(*f->value);
      }
    return s;
  }

  std::string actual_key_text(std::size_t a) const {
    std::string s;
    for (const auto& k : keys_) {
      int c = schema().index_of(k);
      if (c < 0) continue;
      if (!s.empty()) s += ", ";
      const auto& x = actual_.rows[a][static_cast<std::size_t>(c)];
      std::string v;
      if (auto* str = std::get_if<std::string>(&x))
        v = *str;  // as the expected records' keys are shown
      else
        core::append_json(v, x);
      s += k + "=" + v;
    }
    return s;
  }

  std::string where(std::size_t e) const {
    const auto& at = ex_.records[e]->at;
    return file_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
  }

  std::string record_name(std::size_t e) const {
    std::string k = key_text(e);
    return "record " + std::to_string(e) + (k.empty() ? "" : " (" + k + ")") + " at " + where(e);
  }

  /// One line per field of expected record `e` that differs from actual row `a`.
  void field_diff(std::size_t e, std::size_t a) {
    for (const auto& f : fields_[e]) {
      std::string head = ex_.target + ": " + record_name(e) + ": field " + f.entry->key + ": ";
      if (f.column < 0) {
        lines_.push_back(head + "no such field (fields: " + schema().names() + ")");
        continue;
      }
      const auto c = static_cast<std::size_t>(f.column);
      const auto& v = actual_.rows[a][c];
      if (value_matches(*f.entry->value, v, schema()[c].time_unit_ns, ex_.options.tolerance))
        continue;
      std::string shown;
      core::append_json(shown, v);
      lines_.push_back(head + "expected " + show_expected(*f.entry->value) + ", actual " + shown);
    }
  }

  void missing(std::size_t e) {
    lines_.push_back(ex_.target + ": missing " + record_name(e) + ": " +
                     show_expected_record(*ex_.records[e]));
  }

  void unexpected(std::size_t a) {
    std::string k = actual_key_text(a);
    lines_.push_back(ex_.target + ": unexpected record " + std::to_string(a) +
                     (k.empty() ? "" : " (" + k + ")") + ": " +
                     show_actual_record(schema(), actual_.rows[a]));
  }

  /// The unmatched actual row closest to expected record `e`: all its named key fields
  /// equal, then the most equal fields; -1 when none shares a key field value (or any field).
  int closest(std::size_t e, const std::vector<char>& used) const {
    int best = -1;
    std::size_t best_score = 0;
    std::vector<field_ref> keyed;
    for (const auto& f : fields_[e])
      if (std::find(keys_.begin(), keys_.end(), f.entry->key) != keys_.end()) keyed.push_back(f);
    for (std::size_t a = 0; a < actual_.rows.size(); ++a) {
      if (used[a]) continue;
      if (!keyed.empty() &&
          !record_matches(keyed, schema(), actual_.rows[a], ex_.options.tolerance))
        continue;
      std::size_t score =
          equal_fields(fields_[e], schema(), actual_.rows[a], ex_.options.tolerance) + 1;
      if (score > best_score) {
        best_score = score;
        best = static_cast<int>(a);
      }
    }
    // Without key fields, a pairing needs at least one equal field to be worth showing.
    if (keyed.empty() && best_score <= 1) return -1;
    return best;
  }

  void unordered() {
    std::vector<std::vector<int>> cand(ex_.records.size());
    for (std::size_t e = 0; e < ex_.records.size(); ++e)
      for (std::size_t a = 0; a < actual_.rows.size(); ++a)
        if (matches(e, a)) cand[e].push_back(static_cast<int>(a));
    auto m = match_all(cand, actual_.rows.size());
    std::vector<char> used(actual_.rows.size(), 0);
    for (int a : m)
      if (a >= 0) used[static_cast<std::size_t>(a)] = 1;
    for (std::size_t e = 0; e < ex_.records.size(); ++e) {
      if (m[e] >= 0) continue;
      int a = closest(e, used);
      if (a < 0) {
        missing(e);
      } else {
        used[static_cast<std::size_t>(a)] = 1;
        field_diff(e, static_cast<std::size_t>(a));
      }
    }
    if (!ex_.options.contains)
      for (std::size_t a = 0; a < actual_.rows.size(); ++a)
        if (!used[a]) unexpected(a);
  }

  void ordered() {
    if (!ex_.options.contains) {
      const std::size_t n = std::min(ex_.records.size(), actual_.rows.size());
      for (std::size_t i = 0; i < n; ++i)
        if (!matches(i, i)) field_diff(i, i);
      for (std::size_t e = n; e < ex_.records.size(); ++e) missing(e);
      for (std::size_t a = n; a < actual_.rows.size(); ++a) unexpected(a);
      return;
    }
    // A subsequence: each expected record after the previous one's match.
    std::size_t next = 0;
    for (std::size_t e = 0; e < ex_.records.size(); ++e) {
      std::size_t a = next;
      while (a < actual_.rows.size() && !matches(e, a)) ++a;
      if (a < actual_.rows.size()) {
        next = a + 1;
      } else {
        lines_.push_back(ex_.target + ": missing " + record_name(e) +
                         " (in order, after actual record " +
                         std::to_string(next == 0 ? 0 : next - 1) +
                         "): " + show_expected_record(*ex_.records[e]));
      }
    }
  }

  const expectation& ex_;
  const captured& actual_;
  const std::vector<std::string>& keys_;
  const std::string& file_;
  std::vector<std::vector<field_ref>> fields_;
  std::vector<std::string> lines_;
};

}  // namespace

bool value_matches(const spec::node& expected, const core::value& actual, std::int64_t time_unit_ns,
                   double tolerance) {
  if (expected.is_null()) return core::is_null(actual);
  if (!expected.is_scalar()) return false;
  const std::string& text = expected.text;
  if (core::is_null(actual)) return false;
  if (auto* s = std::get_if<std::string>(&actual)) return *s == text;
  if (auto* b = std::get_if<bool>(&actual))
    return !expected.quoted && ((*b && text == "true") || (!*b && text == "false"));
  double a = 0;
  if (!core::as_number(actual, a)) return false;
  if (time_unit_ns > 0) {
    std::int64_t ns = 0;
    if (core::parse_iso8601(text, 0, ns)) {
      // Exact, in the field's unit (a relative tolerance would be far too wide on epochs).
      const std::int64_t units = ns / time_unit_ns - (ns % time_unit_ns < 0 ? 1 : 0);
      if (auto* i = std::get_if<std::int64_t>(&actual)) return *i == units;
      return a == static_cast<double>(units);
    }
  }
  if (expected.quoted) return false;
  double e = 0;
  if (!parse_number(text, e)) return false;
  if (auto* i = std::get_if<std::int64_t>(&actual)) {
    // Whole numbers against an int are exact (ids, epochs, counts): a relative tolerance
    // would let 1704205800000 match 1704205800001.
    if (text.find_first_not_of("-0123456789") == std::string::npos && text.size() < 19)
      return std::stoll(text) == *i;
  }
  return close(e, a, tolerance);
}

std::string show_expected(const spec::node& expected) {
  if (expected.is_null()) return "null";
  if (!expected.is_scalar()) return std::string("(a ") + expected.kind_name() + ")";
  if (!expected.quoted) return expected.text;
  std::string s;
  core::append_json_string(s, expected.text);
  return s;
}

std::string show_expected_record(const spec::node& record) {
  std::string s = "{";
  for (std::size_t i = 0; i < record.entries.size(); ++i) {
    if (i > 0) s += ", ";
    s += record.entries[i].key + ": " + show_expected(*record.entries[i].value);
  }
  return s + "}";
}

std::string show_actual_record(const core::schema& schema, const std::vector<core::value>& row) {
  std::string s = "{";
  for (std::size_t c = 0; c < schema.size() && c < row.size(); ++c) {
    if (c > 0) s += ",";
    core::append_json_string(s, schema[c].name);
    s += ":";
    core::append_json(s, row[c]);
  }
  return s + "}";
}

std::vector<std::string> compare(const expectation& ex, const captured& actual,
                                 const std::vector<std::string>& key_fields,
                                 const std::string& file) {
  return differ(ex, actual, key_fields, file).run();
}

}  // namespace pel::testing
