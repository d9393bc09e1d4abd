#include "rolling.hpp"

#include "stateful_common.hpp"

#include "pel/operators/aggregates.hpp"
#include "pel/spec/diagnostics.hpp"

#include <cctype>
#include <cmath>
#include <deque>
#include <limits>
#include <optional>
#include <stdexcept>

namespace pel::operators {

namespace {

// `rolling` takes its aggregates from the window operator's library (`aggregate_set`): the
// function names, argument compilation, error messages, null handling, dead letters for
// non-numbers and output types are the library's. What differs is the evaluation: the
// library only adds and merges, while a sliding window also removes the record that leaves.
// So rolling evaluates each function in an O(1) form that can remove: running sums for
// count/sum/avg/stddev/variance and monotonic queues for min/max (`series_window`), and the
// non-null values in window order for first/last. Functions without such a form
// (distinct_count, percentile, vwap, ohlc, returns) are refused: they belong in a `window`.

enum class rolling_fn { count_rows, count, sum, avg, min, max, stddev, variance, first, last };

std::optional<rolling_fn> rolling_fn_of(const std::string& func) {
  static const std::pair<const char*, rolling_fn> table[] = {
      {"count", rolling_fn::count},       {"sum", rolling_fn::sum},
      {"avg", rolling_fn::avg},           {"min", rolling_fn::min},
      {"max", rolling_fn::max},           {"stddev", rolling_fn::stddev},
      {"variance", rolling_fn::variance}, {"first", rolling_fn::first},
      {"last", rolling_fn::last}};
  for (const auto& [name, fn] : table)
    if (func == name) return fn;
  return std::nullopt;
}

/// One output: its function and where its input lives (a series column, or a pick list).
struct rolling_agg {
  rolling_fn fn;
  std::size_t slot = 0;
};

/// One numeric series column: the library aggregate that evaluates its argument, and whether
/// it counts values (0 for a value, NaN for null) rather than keeping the number.
struct rolling_column {
  std::unique_ptr<aggregate> eval;
  std::string name;
  std::string key;  // function class + argument text, to share a column
  bool counts = false;
};

/// The NaN, +inf and -inf values of one numeric column in the window: the running sums skip
/// them (they could not be taken back out), and the results account for them here.
struct non_finite {
  enum kind : std::uint8_t { nan, pos_inf, neg_inf };
  std::deque<std::pair<std::uint64_t, kind>> in_window;  // record number, kind
  std::uint64_t n[3] = {0, 0, 0};

  static kind of(double x) { return std::isnan(x) ? nan : (x > 0 ? pos_inf : neg_inf); }
  void push(std::uint64_t seq, kind k) {
    in_window.emplace_back(seq, k);
    ++n[k];
  }
  void evict(std::uint64_t oldest) {
    while (!in_window.empty() && in_window.front().first < oldest) {
      --n[in_window.front().second];
      in_window.pop_front();
    }
  }
  std::uint64_t size() const { return in_window.size(); }
};

struct rolling_key {
  series_window win;
  std::vector<non_finite> odd;  // per numeric column
  /// Per first/last output: the non-null values in the window with their record numbers.
  std::vector<std::deque<std::pair<std::uint64_t, core::value>>> picks;
  std::uint64_t next = 0;  // number of the key's next record
  bool ready = false;      // `win` and `picks` are set up
};

class rolling_op final : public per_record_operator<rolling_key> {
public:
  rolling_op(const spec::config& cfg, const core::schema_ptr& in) {
    init_base(in, event_order(cfg));
    key_ = resolve_fields(cfg, "key", *in, false);
    if (cfg.has("rows") == cfg.has("range")) cfg.fail("rows", "set exactly one of `rows` and `range`");
    rows_ = static_cast<std::size_t>(cfg.get_int("rows"));
    range_ = cfg.get_duration_ns("range");
    if (cfg.has("range") && range_ <= 0) cfg.fail("range", "must be a positive duration");
    auto list = cfg.get_expression_map("aggregates");
    if (list.empty()) cfg.fail("aggregates", "name at least one aggregate, e.g. `avg_price: avg(price)`");
    // Validates every entry (located errors, the same messages as the window operator); a
    // gathering config gets every bad entry, and the others are still checked for rolling.
    std::vector<bool> compiled;
    auto set = aggregate_set::compile(cfg, list, *in, &compiled);
    for (std::size_t i = 0; i < list.size(); ++i)
      if (compiled[i]) cfg.gather([&] { add_aggregate(list[i], *in); });
    xs_.resize(columns_.size());
    odd_.resize(columns_.size());
    picked_.resize(picks_.size());
    out_ = extend_schema(cfg, "aggregates", *in, set.outputs());
  }

protected:
  void handle(core::value* row, std::int64_t t, core::outputs& out) override {
    // Evaluate every argument first: a record that cannot be aggregated goes to the dead
    // letter output and leaves the windows as they were.
    for (std::size_t c = 0; c < columns_.size(); ++c) {
      auto& col = columns_[c];
      if (!col.eval->prepare(row, t, input_, error_)) return dead(col.name, row, t, out);
      double x = input_.num[0];
      // A non-finite number stays out of the running sums (inf - inf could not take it back
      // out); `odd` keeps it for the results.
      odd_[c] = !input_.null[0] && !col.counts && !std::isfinite(x);
      bool missing = input_.null[0] || odd_[c];
      xs_[c] = missing ? (odd_[c] ? x : std::nan("")) : (col.counts ? 0.0 : x);
    }
    for (std::size_t p = 0; p < picks_.size(); ++p) {
      if (!picks_[p].eval->prepare(row, t, input_, error_))
        return dead(picks_[p].name, row, t, out);
      picked_[p] = input_.null[0] ? core::value{} : *input_.val;
    }

    auto& st = state_of(row);
    if (!st.ready) {
      st.win.init(columns_.size(), extrema_);
      st.odd.resize(columns_.size());
      st.picks.resize(picks_.size());
      st.ready = true;
    }
    for (std::size_t c = 0; c < columns_.size(); ++c)
      if (odd_[c]) {
        st.odd[c].push(st.next, non_finite::of(xs_[c]));
        xs_[c] = std::nan("");
      }
    st.win.push(xs_.data(), t);
    for (std::size_t p = 0; p < picks_.size(); ++p)
      if (!core::is_null(picked_[p])) st.picks[p].emplace_back(st.next, std::move(picked_[p]));
    ++st.next;
    st.win.evict(rows_, range_, t);
    const std::uint64_t oldest = st.next - st.win.size();
    for (auto& q : st.picks)
      while (!q.empty() && q.front().first < oldest) q.pop_front();
    for (auto& q : st.odd) q.evict(oldest);

    auto o = out.main.append(t);
    for (std::size_t c = 0; c < in_->size(); ++c) o[c] = std::move(row[c]);
    auto w = in_->size();
    auto num = [](double d) { return std::isnan(d) ? core::value{} : core::value{d}; };
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < aggs_.size(); ++i) {
      auto j = aggs_[i].slot;
      core::value& v = o[w + i];
      // As in the window operator: a NaN makes the result NaN, infinities take part as
      // numbers (+inf and -inf together sum to NaN), stddev and variance of a window with an
      // infinity are NaN.
      const bool numeric = aggs_[i].fn != rolling_fn::count_rows && aggs_[i].fn != rolling_fn::count &&
                           aggs_[i].fn != rolling_fn::first && aggs_[i].fn != rolling_fn::last;
      if (numeric && st.odd[j].size() > 0) {
        const auto& k = st.odd[j].n;
        const auto total = static_cast<std::uint64_t>(st.win.count(j)) + st.odd[j].size();
        const bool both = k[non_finite::pos_inf] > 0 && k[non_finite::neg_inf] > 0;
        const double signed_inf = k[non_finite::pos_inf] > 0 ? inf : -inf;
        switch (aggs_[i].fn) {
          case rolling_fn::sum:
          case rolling_fn::avg:
            v = k[non_finite::nan] > 0 || both ? nan : signed_inf;
            break;
          case rolling_fn::min:
            if (k[non_finite::nan] > 0) v = nan;
            else if (k[non_finite::neg_inf] > 0) v = -inf;
            else v = st.win.count(j) > 0 ? st.win.min(j) : inf;
            break;
          case rolling_fn::max:
            if (k[non_finite::nan] > 0) v = nan;
            else if (k[non_finite::pos_inf] > 0) v = inf;
            else v = st.win.count(j) > 0 ? st.win.max(j) : -inf;
            break;
          default:  // stddev, variance
            v = total >= 2 ? core::value{nan} : core::value{};
            break;
        }
        continue;
      }
      switch (aggs_[i].fn) {
        case rolling_fn::count_rows:
          v = static_cast<std::int64_t>(st.win.size());
          break;
        case rolling_fn::count:
          v = st.win.count(j);
          break;
        case rolling_fn::sum:
          v = st.win.count(j) > 0 ? core::value{st.win.sum(j)} : core::value{};
          break;
        case rolling_fn::avg:
          v = num(st.win.mean(j));
          break;
        case rolling_fn::min:
          v = num(st.win.min(j));
          break;
        case rolling_fn::max:
          v = num(st.win.max(j));
          break;
        case rolling_fn::stddev:
          v = num(st.win.stddev(j));
          break;
        case rolling_fn::variance:
          v = num(st.win.variance(j));
          break;
        case rolling_fn::first:
          if (!st.picks[j].empty()) v = st.picks[j].front().second;
          break;
        case rolling_fn::last:
          if (!st.picks[j].empty()) v = st.picks[j].back().second;
          break;
      }
    }
  }

  void expire(std::int64_t wm, core::outputs&) override {
    if (range_ <= 0 || wm == time_max) return;
    erase_keys_if(
        [&](const rolling_key& s) { return s.win.empty() || s.win.newest_time() <= wm - range_; });
  }

  void write_key(core::state_writer& w, const rolling_key& s) const override {
    w.put<std::uint64_t>(s.next);
    s.win.save(w);
    for (const auto& q : s.odd) {
      w.put<std::uint64_t>(q.size());
      for (const auto& [n, k] : q.in_window) {
        w.put<std::uint64_t>(n);
        w.put<std::uint8_t>(k);
      }
    }
    for (const auto& q : s.picks) {
      w.put<std::uint64_t>(q.size());
      for (const auto& [n, v] : q) {
        w.put<std::uint64_t>(n);
        w.put_value(v);
      }
    }
  }
  rolling_key read_key(core::state_reader& r) const override {
    rolling_key s;
    s.ready = true;
    s.next = r.get<std::uint64_t>();
    s.win.init(columns_.size(), extrema_);
    s.win.load(r);
    s.odd.resize(columns_.size());
    for (auto& q : s.odd) {
      auto n = r.get<std::uint64_t>();
      for (std::uint64_t i = 0; i < n; ++i) {
        auto seq = r.get<std::uint64_t>();
        auto k = r.get<std::uint8_t>();
        if (k > non_finite::neg_inf) throw std::runtime_error("rolling snapshot: bad value kind");
        q.push(seq, static_cast<non_finite::kind>(k));
      }
    }
    s.picks.resize(picks_.size());
    for (auto& q : s.picks) {
      auto n = r.get<std::uint64_t>();
      for (std::uint64_t i = 0; i < n; ++i) {
        auto seq = r.get<std::uint64_t>();
        q.emplace_back(seq, r.get_value());
      }
    }
    return s;
  }

private:
  void add_aggregate(const spec::config::named_text& a, const core::schema& in) {
    auto text = a.text;
    auto b = text.find_first_not_of(" \t\n");
    auto open = text.find('(');  // present: the set compiled it
    auto func = text.substr(b, open - b);
    while (!func.empty() && std::isspace(static_cast<unsigned char>(func.back()))) func.pop_back();
    auto fn = rolling_fn_of(func);
    if (!fn)
      throw spec::config_error(a.at, a.path,
                               "aggregate '" + a.name +
                                   "': rolling computes count, sum, avg, min, max, "
                                   "stddev, variance, first and last over its sliding window; " +
                                   func + " needs a `window` operator");
    auto eval = compile_aggregate(a.name, a.text, in);
    if (*fn == rolling_fn::count &&
        text.find_first_not_of(" \t\n)", open + 1) == std::string::npos) {
      aggs_.push_back({rolling_fn::count_rows, 0});
      return;
    }
    if (*fn == rolling_fn::first || *fn == rolling_fn::last) {
      aggs_.push_back({*fn, picks_.size()});
      picks_.push_back({std::move(eval), a.name, {}, false});
      return;
    }
    bool counts = *fn == rolling_fn::count;
    if (*fn == rolling_fn::min || *fn == rolling_fn::max) extrema_ = true;
    // Aggregates of the same argument share one column (avg, min, max of price: one series).
    std::string key = (counts ? "count" : "number") + text.substr(open);
    std::size_t c = 0;
    while (c < columns_.size() && columns_[c].key != key) ++c;
    if (c == columns_.size()) columns_.push_back({std::move(eval), a.name, key, counts});
    aggs_.push_back({*fn, c});
  }

  void dead(const std::string& name, core::value* row, std::int64_t t, core::outputs& out) {
    out.dead(ctx_.name, name + ": " + error_, row, *in_, t);
  }

  std::size_t rows_ = 0;
  std::int64_t range_ = 0;
  bool extrema_ = false;
  std::vector<rolling_agg> aggs_;
  std::vector<rolling_column> columns_;
  std::vector<rolling_column> picks_;
  aggregate_input input_;
  std::string error_;
  std::vector<double> xs_;
  std::vector<char> odd_;  // per column: this record's number is NaN or infinite
  std::vector<core::value> picked_;
};

} // namespace

spec::component_schema rolling_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "rolling";
  s.summary = "Per-key aggregates over the last N records or the last T of event time, on every record.";
  s.description =
      "Each record is emitted with its own fields followed by the `aggregates`, computed over "
      "the key's window that ends with (and includes) the record: the last `rows` records, or "
      "the records whose event time is within `range` before it (`(t - range, t]`). Aggregates "
      "are written `name: function(expression)` with the window operator's functions and "
      "semantics: count (count() counts records, count(x) non-null values), sum, avg, min, "
      "max, stddev and variance (sample), first and last (the oldest / newest non-null value "
      "in the window, any type); nulls are skipped and a value that is not a number sends the "
      "record to the dead-letter port. NaN and infinities are numbers, as in the window "
      "operator: a NaN in the window makes sum, avg, min, max, stddev and variance NaN (JSON "
      "writes null), max of a window with +inf is +inf, +inf and -inf sum to NaN, stddev and "
      "variance of a window with an infinity are NaN; count(x) counts them. Sums are updated "
      "in O(1) per record and min/max with monotonic queues, so functions that cannot remove "
      "a record (distinct_count, percentile, vwap, ohlc, returns) need a `window` operator.";
  s.params = {
      param::string_list("key").names_input_field(0).doc(
          "Fields that identify a series (empty: one series)."),
      param::integer("rows").min(1).max(10000000).doc("Window size in records."),
      param::duration("range").doc("Window span in event time."),
      param::expression_map("aggregates").req().doc("Output field → `function(expression)`."),
      order_param(),
  };
  s.example =
      "operators:\n"
      "  moving:\n"
      "    type: rolling\n"
      "    input: trades\n"
      "    key: symbol\n"
      "    range: 1m\n"
      "    aggregates:\n"
      "      avg_price: avg(price)\n"
      "      volume: sum(qty)\n"
      "      trades: count()\n";
  s.ports = {"late"};
  return s;
}

core::operator_ptr make_rolling(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  return std::make_unique<rolling_op>(cfg, inputs.at(0));
}

} // namespace pel::operators
