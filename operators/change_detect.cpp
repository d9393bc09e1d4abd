#include "change_detect.hpp"

#include "stateful_common.hpp"

#include <cmath>

namespace pel::operators {

namespace {

struct change_key {
  series_window win;
  bool ready = false;
};

class change_detect_op final : public per_record_operator<change_key> {
public:
  change_detect_op(const spec::config& cfg, const core::schema_ptr& in) {
    init_base(in, event_order(cfg));
    key_ = resolve_fields(cfg, "key", *in, false);
    value_ = number_expr::compile(cfg, "value", *in);
    within_ = cfg.get_duration_ns("within");
    if (within_ <= 0) cfg.fail("within", "must be a positive duration such as 1s");
    has_percent_ = cfg.has("percent");
    has_delta_ = cfg.has("delta");
    if (!has_percent_ && !has_delta_) cfg.fail("percent", "set `percent`, `delta` or both");
    percent_ = cfg.get_number("percent");
    delta_ = cfg.get_number("delta");
    using vt = core::value_type;
    out_ = pick_schema(*in, key_,
                       {{"value", vt::number}, {"reference", vt::number}, {"change", vt::number},
                        {"change_percent", vt::number}, {"direction", vt::string}, {"time", vt::integer}});
  }

protected:
  void handle(core::value* row, std::int64_t t, core::outputs& out) override {
    double x;
    if (!value_.eval(row, t, x) || !std::isfinite(x)) return;
    auto& st = state_of(row);
    if (!st.ready) {
      st.win.init(1, true);
      st.ready = true;
    }
    st.win.evict(0, within_ + 1, t);  // keep records with time >= t - within
    if (!st.win.empty()) {
      double lo = st.win.min(0), hi = st.win.max(0);
      double up = x - lo, down = hi - x;
      bool rising = up >= down;
      double ref = rising ? lo : hi;
      double change = x - ref;
      double pct = ref != 0 ? change / std::fabs(ref) * 100.0 : (change == 0 ? 0.0 : INFINITY);
      bool hit = (has_delta_ && std::fabs(change) > delta_) || (has_percent_ && std::fabs(pct) > percent_);
      if (hit) {
        auto o = out.main.append(t);
        std::size_t c = 0;
        for (int k : key_) o[c++] = row[k];
        o[c++] = x;
        o[c++] = ref;
        o[c++] = change;
        o[c++] = std::isfinite(pct) ? core::value{pct} : core::value{};
        o[c++] = std::string(change > 0 ? "up" : "down");
        o[c++] = epoch_ms(t);
        st.win.clear();  // the jump is reported once; later changes count from here
      }
    }
    st.win.push(&x, t);
  }

  void expire(std::int64_t wm, core::outputs&) override {
    if (wm == time_max) return;
    erase_keys_if(
        [&](const change_key& s) { return s.win.empty() || s.win.newest_time() < wm - within_; });
  }

  void write_key(core::state_writer& w, const change_key& s) const override { s.win.save(w); }
  change_key read_key(core::state_reader& r) const override {
    change_key s;
    s.win.init(1, true);
    s.ready = true;
    s.win.load(r);
    return s;
  }

private:
  number_expr value_;
  std::int64_t within_ = 0;
  bool has_percent_ = false, has_delta_ = false;
  double percent_ = 0, delta_ = 0;
};

} // namespace

spec::component_schema change_detect_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "change_detect";
  s.summary = "Alerts when a value moves by more than a percentage or an amount within a time span.";
  s.description =
      "Per key, each record's `value` is compared with the lowest and highest values of the "
      "key's records within `within` of event time before it. When the larger of the rise "
      "(from the lowest) and the fall (from the highest) exceeds `delta` (absolute) or "
      "`percent` (relative to that reference), an alert is emitted with the key fields and "
      "`value, reference, change, change_percent, direction (up|down), time` (time: the "
      "record's event time in epoch milliseconds, the unit of a window's `window_start`). "
      "A null, NaN or infinite value is passed over (it has no finite change to measure). "
      "After an alert the key's history restarts from that record, so one jump gives "
      "one alert. A price-jump alert for trading.";
  s.params = {
      param::string_list("key").names_input_field(0).doc(
          "Fields that identify a series (empty: one series)."),
      param::expression("value").req().doc("The numeric value to watch."),
      param::duration("within").req().doc("How far back in event time a change is measured."),
      param::number("percent").min(0).doc("Alert when the change exceeds this percentage of the reference."),
      param::number("delta").min(0).doc("Alert when the absolute change exceeds this."),
      order_param(),
  };
  s.example =
      "operators:\n"
      "  jumps:\n"
      "    type: change_detect\n"
      "    input: trades\n"
      "    key: symbol\n"
      "    value: price\n"
      "    within: 10s\n"
      "    percent: 0.5\n";
  s.ports = {"late"};
  return s;
}

core::operator_ptr make_change_detect(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  return std::make_unique<change_detect_op>(cfg, inputs.at(0));
}

} // namespace pel::operators
