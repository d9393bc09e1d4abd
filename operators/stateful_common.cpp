#include "stateful_common.hpp"

#include "field_names.hpp"

#include "pel/expr/expression.hpp"
#include "pel/spec/diagnostics.hpp"
#include "pel/state/key.hpp"
#include "pel/spec/node.hpp"

#include <cstdlib>

namespace pel::operators {

std::vector<int> resolve_names(const spec::config& cfg, std::string_view key,
                               const std::vector<std::string>& names, const core::schema& in,
                               std::string_view of) {
  return find_fields(cfg, key, names, in, of);
}

std::vector<int> resolve_fields(const spec::config& cfg, std::string_view key, const core::schema& in,
                                bool required) {
  auto names = cfg.get_string_list(key);
  if (required && names.empty()) cfg.fail(key, "name at least one key field");
  return resolve_names(cfg, key, names, in);
}

void save_row(core::state_writer& w, const core::value* row, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) w.put_value(row[i]);
}

void load_row(core::state_reader& r, std::vector<core::value>& out, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(r.get_value());
}

void row_store::insert_sorted(const core::value* src, std::int64_t t) {
  auto begin = times_.begin() + static_cast<std::ptrdiff_t>(head_);
  auto pos = std::upper_bound(begin, times_.end(), t);
  auto idx = static_cast<std::size_t>(pos - times_.begin());
  times_.insert(pos, t);
  cells_.insert(cells_.begin() + static_cast<std::ptrdiff_t>(idx * width_), src, src + width_);
}

void row_store::pop_front(std::size_t n) {
  head_ += std::min(n, size());
  if (head_ > 64 && head_ * 2 > times_.size()) {
    times_.erase(times_.begin(), times_.begin() + static_cast<std::ptrdiff_t>(head_));
    cells_.erase(cells_.begin(), cells_.begin() + static_cast<std::ptrdiff_t>(head_ * width_));
    head_ = 0;
  }
  if (head_ == times_.size()) clear();
}

void row_store::save(core::state_writer& w) const {
  w.put<std::uint64_t>(size());
  for (std::size_t i = 0; i < size(); ++i) {
    w.put<std::int64_t>(time(i));
    save_row(w, row(i), width_);
  }
}

void row_store::load(core::state_reader& r) {
  clear();
  auto n = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < n; ++i) {
    times_.push_back(r.get<std::int64_t>());
    load_row(r, cells_, width_);
  }
}

void reorder_buffer::save(core::state_writer& w, const std::vector<int>& key,
                          std::uint32_t max_parallelism) const {
  w.put<std::int64_t>(watermark_);
  state::keyed_map<row_store> by_key(max_parallelism);
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    std::uint64_t hash;
    bool inserted;
    auto& rows = by_key.at(find_or_insert(by_key, pending_.row(i), key, hash, inserted));
    if (inserted) rows.set_width(pending_.width);
    rows.push(pending_.row(i), pending_.times[i]);
  }
  by_key.snapshot(w, {0, max_parallelism},
                  [](core::state_writer& w, const row_store& rows) { rows.save(w); });
}

void reorder_buffer::load(core::state_reader& r, state::key_group_range range,
                          std::uint32_t max_parallelism) {
  watermark_ = std::max(watermark_, r.get<std::int64_t>());
  state::keyed_map<row_store> by_key(max_parallelism);
  by_key.restore(r, range, [this](core::state_reader& r) {
    row_store rows(pending_.width);
    rows.load(r);
    return rows;
  });
  by_key.for_each([this](auto, const state::key&, const row_store& rows) {
    for (std::size_t i = 0; i < rows.size(); ++i) pending_.append_copy(rows.row(i), rows.time(i));
  });
}

// ---------------------------------------------------------------------------------------

number_expr number_expr::compile(const spec::config& cfg, std::string_view key, const std::string& text,
                                 const core::schema& in) {
  number_expr e;
  expr::expression x;
  auto at = cfg.raw() && cfg.raw()->is_map() ? cfg.raw()->find(key) : nullptr;
  if (at && at->value->is_scalar() && at->value->text == text) {
    x = expr::compile_config(cfg, key, in);  // located at the exact column
  } else {
    try {
      x = expr::compile(text, in);
    } catch (const expr::parse_error& err) {
      cfg.fail(key, std::string("in '") + text + "': " + err.what());
    }
  }
  if (auto t = x.result_type(); t && *t != core::value_type::integer && *t != core::value_type::number)
    cfg.fail(key, "'" + text + "' is not a number (it is " + std::string(core::to_string(*t)) + ")");
  e.fn_ = [x](const core::value* row, std::int64_t t, double& out) {
    try {
      return x.eval_number(row, t, out);
    } catch (const expr::eval_error&) {
      return false;  // a value that is not a number counts as missing
    }
  };
  return e;
}

spec::param order_param() {
  return spec::param::string("order")
      .one_of({"event", "arrival"})
      .def("event")
      .doc("`event`: hold records until the watermark passes them and handle them in event-time "
           "order (deterministic, late records go to the `late` port); `arrival`: handle each "
           "record as it comes (lowest latency, result depends on arrival order).");
}

bool event_order(const spec::config& cfg) { return cfg.get_string("order") != "arrival"; }

std::int64_t signed_duration(const spec::config& cfg, std::string_view key) {
  auto text = cfg.get_string(key);
  bool neg = !text.empty() && text.front() == '-';
  std::string_view body(text);
  if (neg || (!body.empty() && body.front() == '+')) body.remove_prefix(1);
  std::int64_t ns = 0;
  if (body == "0") return 0;
  if (!spec::parse_duration(body, ns))
    cfg.fail(key, "expected a duration such as -5s, 0s or 250ms, found '" + text + "'");
  return neg ? -ns : ns;
}

core::schema_ptr extend_schema(const spec::config& cfg, std::string_view key,
                               const core::schema& in, const std::vector<core::field>& extra) {
  auto s = std::make_shared<core::schema>(in.fields());
  for (const auto& f : extra) {
    if (s->index_of(f.name) >= 0)
      cfg.fail(key, "output field '" + f.name + "' is already an input field; choose another name");
    s->add(f.name, f.type);
  }
  return s;
}

core::schema_ptr pick_schema(const core::schema& in, const std::vector<int>& cols,
                             const std::vector<std::pair<std::string, std::optional<core::value_type>>>& extra) {
  auto s = std::make_shared<core::schema>();
  for (int c : cols) s->add(in[c].name, in[c].type);
  for (const auto& [name, type] : extra) s->add(name, type);
  return s;
}

core::schema_ptr join_schema(const core::schema& left, const core::schema& right,
                             const std::vector<int>& skip_right, const std::string& prefix,
                             std::vector<int>& right_map) {
  auto s = std::make_shared<core::schema>(left.fields());
  right_map.clear();
  for (std::size_t i = 0; i < right.size(); ++i) {
    if (std::find(skip_right.begin(), skip_right.end(), static_cast<int>(i)) != skip_right.end()) continue;
    std::string name = right[i].name;
    while (s->index_of(name) >= 0) name = prefix + name;
    s->add(name, right[i].type);
    right_map.push_back(static_cast<int>(i));
  }
  return s;
}

} // namespace pel::operators

namespace pel::operators {

// ---------------------------------------------------------------------------------------
// series_window

void series_window::init(std::size_t m, bool track_extrema) {
  m_ = m;
  extrema_ = track_extrema;
  shift_.assign(m, 0.0);
  sum_.assign(m, 0.0);
  sumsq_.assign(m, 0.0);
  n_.assign(m, 0);
  shifted_.assign(m, false);
  mins_.assign(track_extrema ? m : 0, {});
  maxs_.assign(track_extrema ? m : 0, {});
}

void series_window::pop() {
  bool resum = false;
  for (std::size_t j = 0; j < m_; ++j) {
    double x = vals_[j];
    if (!std::isnan(x)) {
      double d = x - shift_[j];
      sum_[j] -= d;
      sumsq_[j] -= d * d;
      --n_[j];
      if (n_[j] == 0) sum_[j] = sumsq_[j] = 0;  // no drift carried into the next values
      // A sum that overflowed cannot have the value taken back out (inf - inf): it is
      // summed again over the values that stay.
      resum = resum || !std::isfinite(sum_[j]) || !std::isfinite(sumsq_[j]) || far_shift(j);
    }
    if (extrema_) {
      if (!mins_[j].empty() && mins_[j].front().first == first_seq_) mins_[j].pop_front();
      if (!maxs_[j].empty() && maxs_[j].front().first == first_seq_) maxs_[j].pop_front();
    }
  }
  vals_.erase(vals_.begin(), vals_.begin() + static_cast<std::ptrdiff_t>(m_));
  times_.pop_front();
  ++first_seq_;
  if (resum)
    for (std::size_t j = 0; j < m_; ++j)
      if (!std::isfinite(sum_[j]) || !std::isfinite(sumsq_[j]) || far_shift(j)) sum_again(j);
}

void series_window::sum_again(std::size_t j) {
  sum_[j] = sumsq_[j] = 0;
  // Shifted to the oldest value that stays: the old shift may be the huge value that left.
  for (std::size_t i = j; i < vals_.size(); i += m_)
    if (!std::isnan(vals_[i])) {
      shift_[j] = vals_[i];
      break;
    }
  for (std::size_t i = j; i < vals_.size(); i += m_) {
    const double x = vals_[i];
    if (std::isnan(x)) continue;
    const double d = x - shift_[j];
    sum_[j] += d;
    sumsq_[j] += d * d;
  }
}

bool series_window::far_shift(std::size_t j) const {
  // The shift is the first value seen; once the window's values are far from it (an outlier
  // came first, or the series moved), the sums cancel and lose the spread. Far: the mean is
  // more than 2^20 standard deviations from it, which a value still in the window cannot be.
  if (n_[j] < 2) return false;
  const double n = static_cast<double>(n_[j]);
  const double off = sum_[j] / n;
  const double spread = sumsq_[j] / n - off * off;
  return off != 0 && off * off > 0x1p40 * std::max(spread, 0.0);
}

bool series_window::overflowed(std::size_t j) const {
  return !std::isfinite(sum_[j]) || !std::isfinite(sumsq_[j]);
}

double series_window::exact_mean(std::size_t j) const {
  const double n = static_cast<double>(n_[j]);
  double m = 0;
  for (std::size_t i = j; i < vals_.size(); i += m_)
    if (!std::isnan(vals_[i])) m += vals_[i] / n;  // no term, and no partial sum, overflows
  return m;
}

double series_window::scaled_variance(std::size_t j, int& scale) const {
  // Divided by a power of two above the largest magnitude: differences and squares stay
  // finite, and the variance is 2^(2 scale) times the result.
  double top = 0;
  for (std::size_t i = j; i < vals_.size(); i += m_)
    if (!std::isnan(vals_[i])) top = std::max(top, std::fabs(vals_[i]));
  scale = top > 0 ? std::ilogb(top) + 1 : 0;
  const double n = static_cast<double>(n_[j]);
  double m = 0;
  for (std::size_t i = j; i < vals_.size(); i += m_)
    if (!std::isnan(vals_[i])) m += std::ldexp(vals_[i], -scale) / n;
  double ss = 0;
  for (std::size_t i = j; i < vals_.size(); i += m_)
    if (!std::isnan(vals_[i])) {
      const double d = std::ldexp(vals_[i], -scale) - m;
      ss += d * d;
    }
  return ss / (n - 1);
}

void series_window::evict(std::size_t rows, std::int64_t range, std::int64_t now) {
  if (rows > 0)
    while (times_.size() > rows) pop();
  if (range > 0)
    while (!times_.empty() && times_.front() <= now - range) pop();
}

void series_window::push(const double* xs, std::int64_t t) {
  times_.push_back(t);
  for (std::size_t j = 0; j < m_; ++j) {
    double x = xs[j];
    vals_.push_back(x);
    if (std::isnan(x)) continue;
    if (!shifted_[j]) {
      shift_[j] = x;
      shifted_[j] = true;
    }
    double d = x - shift_[j];
    sum_[j] += d;
    sumsq_[j] += d * d;
    ++n_[j];
    if (extrema_) {
      auto& mn = mins_[j];
      while (!mn.empty() && mn.back().second >= x) mn.pop_back();
      mn.emplace_back(next_seq_, x);
      auto& mx = maxs_[j];
      while (!mx.empty() && mx.back().second <= x) mx.pop_back();
      mx.emplace_back(next_seq_, x);
    }
  }
  ++next_seq_;
}

double series_window::sum(std::size_t j) const {
  if (!overflowed(j)) return sum_[j] + shift_[j] * static_cast<double>(n_[j]);
  double s = 0;  // the plain sum, which may be +-inf: that is its value
  for (std::size_t i = j; i < vals_.size(); i += m_)
    if (!std::isnan(vals_[i])) s += vals_[i];
  return s;
}

double series_window::mean(std::size_t j) const {
  if (n_[j] == 0) return std::nan("");
  if (overflowed(j)) return exact_mean(j);
  return shift_[j] + sum_[j] / static_cast<double>(n_[j]);
}

double series_window::stddev(std::size_t j) const {
  if (n_[j] < 2) return std::nan("");
  if (!overflowed(j)) return std::sqrt(variance(j));
  int scale = 0;
  const double v = scaled_variance(j, scale);
  return std::ldexp(std::sqrt(v), scale);
}

double series_window::variance(std::size_t j) const {
  if (n_[j] < 2) return std::nan("");
  if (overflowed(j)) {
    int scale = 0;
    const double v = scaled_variance(j, scale);
    return std::ldexp(v, 2 * scale);  // +inf past the largest double
  }
  double n = static_cast<double>(n_[j]);
  double v = (sumsq_[j] - sum_[j] * sum_[j] / n) / (n - 1);
  return v < 0 ? 0 : v;
}

double series_window::min(std::size_t j) const {
  return (!extrema_ || mins_[j].empty()) ? std::nan("") : mins_[j].front().second;
}

double series_window::max(std::size_t j) const {
  return (!extrema_ || maxs_[j].empty()) ? std::nan("") : maxs_[j].front().second;
}

void series_window::clear() {
  auto m = m_;
  auto e = extrema_;
  times_.clear();
  vals_.clear();
  first_seq_ = next_seq_ = 0;
  init(m, e);
}

void series_window::save(core::state_writer& w) const {
  w.put<std::uint64_t>(times_.size());
  for (std::size_t i = 0; i < times_.size(); ++i) {
    w.put<std::int64_t>(times_[i]);
    for (std::size_t j = 0; j < m_; ++j) w.put<double>(vals_[i * m_ + j]);
  }
}

void series_window::load(core::state_reader& r) {
  clear();
  auto n = r.get<std::uint64_t>();
  std::vector<double> xs(m_);
  for (std::uint64_t i = 0; i < n; ++i) {
    auto t = r.get<std::int64_t>();
    for (std::size_t j = 0; j < m_; ++j) xs[j] = r.get<double>();
    push(xs.data(), t);
  }
}

} // namespace pel::operators

namespace pel::operators {

void join_keys::init(const spec::config& cfg, const core::schema& l, const core::schema& r) {
  // An unknown name is reported and left out (see `find_fields`), so the counts below are
  // those of the names written, not of the fields found.
  if (cfg.has("key")) {
    if (cfg.has("left_key") || cfg.has("right_key")) cfg.fail("key", "use either `key` or `left_key` + `right_key`");
    auto names = cfg.get_string_list("key");
    if (names.empty()) cfg.fail("key", "name at least one key field");
    left = resolve_names(cfg, "key", names, l, "of the left input");
    right = resolve_names(cfg, "key", names, r, "of the right input");
  } else {
    if (!cfg.has("left_key") || !cfg.has("right_key"))
      cfg.fail("key", "set `key` (field names both inputs share) or `left_key` and `right_key`");
    auto left_names = cfg.get_string_list("left_key");
    auto right_names = cfg.get_string_list("right_key");
    if (left_names.empty()) cfg.fail("left_key", "name at least one key field");
    if (left_names.size() != right_names.size())
      cfg.report("right_key", "needs as many fields as `left_key`");
    left = resolve_names(cfg, "left_key", left_names, l);
    right = resolve_names(cfg, "right_key", right_names, r);
  }
  // Left out unknown names leave the sides unpaired; only a gathering config gets here then.
  if (left.size() != right.size()) right.resize(std::min(left.size(), right.size()));
  left.resize(right.size());
  left_outer = cfg.get_string("how") == "left";
  left_width = static_cast<std::uint32_t>(l.size());
  right_width = static_cast<std::uint32_t>(r.size());
  out = join_schema(l, r, right, cfg.get_string("prefix"), right_map);
}

void join_keys::emit(core::batch& out_batch, const core::value* left_row, const core::value* right_row,
                     std::int64_t t) const {
  auto o = out_batch.append(t);
  auto lw = out->size() - right_map.size();
  for (std::size_t c = 0; c < lw; ++c) o[c] = left_row[c];
  if (right_row)
    for (std::size_t c = 0; c < right_map.size(); ++c) o[lw + c] = right_row[right_map[c]];
}

void join_sides::add(const join_keys& keys, int input, const core::value* row, std::int64_t t) {
  if (left.width() == 0) {
    left.set_width(keys.left_width);
    right.set_width(keys.right_width);
  }
  (input == 0 ? left : right).insert_sorted(row, t);
}

void join_sides::save(core::state_writer& w) const {
  left.save(w);
  right.save(w);
}

join_sides join_sides::load(core::state_reader& r, const join_keys& keys) {
  join_sides s;
  s.left.set_width(keys.left_width);
  s.right.set_width(keys.right_width);
  s.left.load(r);
  s.right.load(r);
  return s;
}

void add_join_schema(spec::component_schema& s) {
  auto params = join_params();
  s.params.insert(s.params.begin(), params.begin(), params.end());
  s.min_inputs = 2;
  s.max_inputs = 2;
  s.ports = {"late"};
}

void require_two_inputs(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs,
                        const std::string& type) {
  if (inputs.size() != 2) cfg.fail("input", type + " takes two inputs: [left, right]");
}

std::vector<spec::param> join_params() {
  using spec::param;
  return {
      param::string_list("key").names_input_field(-1).doc(
          "Key fields with the same names in both inputs."),
      param::string_list("left_key").names_input_field(0).doc(
          "Key fields of the left (first) input."),
      param::string_list("right_key").names_input_field(1).doc(
          "Key fields of the right (second) input, in the same order."),
      param::string("how").one_of({"inner", "left"}).def("inner").doc(
          "`inner`: only matches; `left`: also left records without a match (right fields null)."),
      param::string("prefix").def("right_").doc(
          "Prefix of right fields whose names the left input already has (right key fields are dropped)."),
  };
}

} // namespace pel::operators
