#include "zscore.hpp"

#include "stateful_common.hpp"

#include <cmath>
#include <limits>

namespace pel::operators {

namespace {

struct zscore_key {
  series_window win;
  std::int64_t last_alert = time_min;
  bool ready = false;
};

class zscore_op final : public per_record_operator<zscore_key> {
public:
  zscore_op(const spec::config& cfg, const core::schema_ptr& in) {
    init_base(in, event_order(cfg));
    key_ = resolve_fields(cfg, "key", *in, false);
    value_ = number_expr::compile(cfg, "value", *in);
    rows_ = static_cast<std::size_t>(cfg.get_int("rows"));
    range_ = cfg.has("range") ? cfg.get_duration_ns("range") : 0;
    if (range_ > 0 && !cfg.has("rows")) rows_ = 0;
    k_ = cfg.get_number("k");
    min_samples_ = cfg.get_int("min_samples");
    all_ = cfg.get_string("mode") == "all";
    has_above_ = cfg.has("above");
    has_below_ = cfg.has("below");
    if (has_above_) above_ = cfg.get_number("above");
    if (has_below_) below_ = cfg.get_number("below");
    cooldown_ = cfg.get_duration_ns("cooldown");
    auto name = cfg.get_string("output_prefix");
    using vt = core::value_type;
    if (all_) {
      out_ = extend_schema(cfg, "output_prefix", *in,
                           {{name + "mean", vt::number},
                            {name + "stddev", vt::number},
                            {name + "z", vt::number},
                            {name + "alert", vt::string}});
    } else {
      out_ = pick_schema(*in, key_,
                         {{"value", vt::number}, {"mean", vt::number}, {"stddev", vt::number},
                          {"z", vt::number}, {"reason", vt::string}, {"time", vt::integer}});
    }
  }

protected:
  void handle(core::value* row, std::int64_t t, core::outputs& out) override {
    double x = 0;
    // An infinite value can cross a threshold, but stays out of the window (its sums could
    // not take it back out); a NaN or a null is passed over.
    const bool number = value_.eval(row, t, x) && !std::isnan(x);
    const bool have = number && std::isfinite(x);
    auto& st = state_of(row);
    if (!st.ready) {
      st.win.init(1, true);
      st.ready = true;
    }
    st.win.evict(rows_, range_, t);
    double mean = std::nan(""), sd = std::nan(""), z = std::nan("");
    const char* reason = nullptr;
    if (number) {
      auto n = have ? st.win.count(0) : 0;
      mean = st.win.mean(0);
      sd = st.win.stddev(0);
      // A flat window: its values are exactly equal (so say mean and stddev, whatever the
      // rounding of the running sums), and any other value is infinitely many standard
      // deviations away from it.
      const bool flat = n >= 2 && st.win.min(0) == st.win.max(0);
      if (flat) {
        mean = st.win.min(0);
        sd = 0;
      }
      if (have && n >= min_samples_ && n >= 2) {
        if (flat) z = x == mean ? 0.0 : std::copysign(std::numeric_limits<double>::infinity(), x - mean);
        else if (sd > 0) z = (x - mean) / sd;
        if (std::fabs(z) > k_) reason = "zscore";
      }
      if (has_above_ && x > above_) reason = "above";
      if (has_below_ && x < below_) reason = "below";
      if (reason && cooldown_ > 0 && st.last_alert != time_min && t - st.last_alert < cooldown_)
        reason = nullptr;
      if (reason) st.last_alert = t;
      if (have) st.win.push(&x, t);
    }
    auto num = [](double d) { return std::isnan(d) ? core::value{} : core::value{d}; };
    if (all_) {
      auto o = out.main.append(t);
      for (std::size_t c = 0; c < in_->size(); ++c) o[c] = std::move(row[c]);
      auto w = in_->size();
      o[w] = num(mean);
      o[w + 1] = num(sd);
      o[w + 2] = num(z);
      if (reason) o[w + 3] = std::string(reason);
    } else if (reason) {
      auto o = out.main.append(t);
      std::size_t c = 0;
      for (int k : key_) o[c++] = row[k];
      o[c++] = x;
      o[c++] = num(mean);
      o[c++] = num(sd);
      o[c++] = num(z);
      o[c++] = std::string(reason);
      o[c++] = epoch_ms(t);
    }
  }

  void expire(std::int64_t wm, core::outputs&) override {
    // A key whose newest record fell out of its time range holds nothing worth keeping.
    if (range_ <= 0 || wm == time_max) return;
    erase_keys_if([&](const zscore_key& s) {
      return s.win.empty() || s.win.newest_time() <= wm - range_ - cooldown_;
    });
  }

  void write_key(core::state_writer& w, const zscore_key& s) const override {
    w.put<std::int64_t>(s.last_alert);
    s.win.save(w);
  }
  zscore_key read_key(core::state_reader& r) const override {
    zscore_key s;
    s.last_alert = r.get<std::int64_t>();
    s.win.init(1, true);
    s.ready = true;
    s.win.load(r);
    return s;
  }

private:
  number_expr value_;
  std::size_t rows_ = 100;
  std::int64_t range_ = 0;
  double k_ = 3;
  std::int64_t min_samples_ = 30;
  bool all_ = false;
  bool has_above_ = false, has_below_ = false;
  double above_ = 0, below_ = 0;
  std::int64_t cooldown_ = 0;
};

} // namespace

spec::component_schema zscore_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "zscore";
  s.summary = "Per-key rolling z-score of a value; alerts on outliers and on fixed thresholds.";
  s.description =
      "For each record, the mean and sample standard deviation of `value` over the key's "
      "previous records (the last `rows` records, or those within `range` of event time) are "
      "computed before the record joins the window. When at least `min_samples` values are in "
      "the window and |value - mean| > k * stddev, the record is an outlier (`reason: zscore`). "
      "A window whose values are all equal (a flat baseline, stddev 0) makes any other value "
      "an outlier, with z +inf or -inf (a JSON sink writes null, as JSON has no infinity; CSV "
      "writes Infinity), and an equal value z 0. "
      "`above` / `below` add threshold alerts (`reason: above|below`) that need no history. "
      "A null or NaN value is passed over; an infinite one can cross a threshold but does not "
      "join the window.\n\n"
      "`mode: alerts` emits one record per alert with the key fields and `value, mean, stddev, "
      "z, reason, time` (time: the record's event time in epoch milliseconds, the unit of a "
      "window's `window_start`). `mode: all` passes every record on with "
      "`mean, stddev, z, alert` appended (names prefixed by `output_prefix`; `alert` is null "
      "when there is none). `cooldown` suppresses further alerts of a key for that long after "
      "one. Records are handled in event-time order (`order`).";
  s.params = {
      param::string_list("key").names_input_field(0).doc(
          "Fields that identify a series (empty: one series)."),
      param::expression("value").req().doc("The numeric value to watch, e.g. `price` or `temp * 1.8 + 32`."),
      param::integer("rows").min(2).max(10000000).def("100").doc("Window size in records."),
      param::duration("range").doc("Window span in event time; with `rows` unset, bounds by time only."),
      param::number("k").min(0).def("3").doc("Alert when |z| exceeds this."),
      param::integer("min_samples").min(2).def("30").doc("Values needed in the window before z-score alerts."),
      param::string("mode").one_of({"alerts", "all"}).def("alerts").doc("Emit alerts only, or every record annotated."),
      param::number("above").doc("Alert when the value is above this."),
      param::number("below").doc("Alert when the value is below this."),
      param::duration("cooldown").def("0s").doc("Quiet time per key after an alert."),
      param::string("output_prefix").def("").doc("Prefix of the fields added by `mode: all`."),
      order_param(),
  };
  s.example =
      "operators:\n"
      "  outliers:\n"
      "    type: zscore\n"
      "    input: ticks\n"
      "    key: symbol\n"
      "    value: price\n"
      "    rows: 200\n"
      "    k: 4\n"
      "    min_samples: 50\n";
  s.ports = {"late"};
  return s;
}

core::operator_ptr make_zscore(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  return std::make_unique<zscore_op>(cfg, inputs.at(0));
}

} // namespace pel::operators
