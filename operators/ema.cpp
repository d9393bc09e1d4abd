#include "ema.hpp"

#include "stateful_common.hpp"

#include <cmath>

namespace pel::operators {

namespace {

struct ema_key {
  double ema = 0;
  std::int64_t last = time_min;
  bool has = false;
};

class ema_op final : public per_record_operator<ema_key> {
public:
  ema_op(const spec::config& cfg, const core::schema_ptr& in) {
    init_base(in, event_order(cfg));
    key_ = resolve_fields(cfg, "key", *in, false);
    value_ = number_expr::compile(cfg, "value", *in);
    if (cfg.has("alpha") == cfg.has("half_life")) cfg.fail("alpha", "set exactly one of `alpha` and `half_life`");
    if (cfg.has("alpha")) {
      alpha_ = cfg.get_number("alpha");
      if (!(alpha_ > 0 && alpha_ <= 1)) cfg.fail("alpha", "must be in (0, 1]");
    } else {
      half_life_ = cfg.get_duration_ns("half_life");
      if (half_life_ <= 0) cfg.fail("half_life", "must be a positive duration");
    }
    out_ =
        extend_schema(cfg, "output", *in, {{cfg.get_string("output"), core::value_type::number}});
  }

protected:
  void handle(core::value* row, std::int64_t t, core::outputs& out) override {
    double x;
    bool have = value_.eval(row, t, x) && std::isfinite(x);
    auto& st = state_of(row);
    if (have) {
      if (!st.has) {
        st.ema = x;
        st.has = true;
      } else {
        double a = alpha_;
        if (half_life_ > 0) {
          double dt = static_cast<double>(std::max<std::int64_t>(t - st.last, 0));
          a = 1.0 - std::exp(-std::log(2.0) * dt / static_cast<double>(half_life_));
        }
        const double d = x - st.ema;
        // Values of opposite signs near the largest double: the difference overflows, the
        // weighted mean of the two does not (and an inf would stay in the average for good).
        if (std::isfinite(d)) st.ema += a * d;
        else st.ema = (1 - a) * st.ema + a * x;
      }
      st.last = t;
    }
    auto o = out.main.append(t);
    for (std::size_t c = 0; c < in_->size(); ++c) o[c] = std::move(row[c]);
    if (st.has) o[in_->size()] = st.ema;
  }

  void write_key(core::state_writer& w, const ema_key& s) const override {
    w.put<double>(s.ema);
    w.put<std::int64_t>(s.last);
    w.put<std::uint8_t>(s.has);
  }
  ema_key read_key(core::state_reader& r) const override {
    ema_key s;
    s.ema = r.get<double>();
    s.last = r.get<std::int64_t>();
    s.has = r.get<std::uint8_t>() != 0;
    return s;
  }

private:
  number_expr value_;
  double alpha_ = 0;
  std::int64_t half_life_ = 0;
};

} // namespace

spec::component_schema ema_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "ema";
  s.summary = "Per-key exponential moving average of a value, appended to each record.";
  s.description =
      "`ema = ema + a * (value - ema)`, starting at the key's first value. With `alpha` the "
      "weight `a` is fixed per record; with `half_life` it depends on the event time elapsed "
      "since the key's previous value, `a = 1 - 2^(-dt / half_life)`, so irregular ticks are "
      "weighted by time. Records whose value is null, NaN or infinite keep the previous "
      "average (one infinity would stay in it for good).";
  s.params = {
      param::string_list("key").names_input_field(0).doc(
          "Fields that identify a series (empty: one series)."),
      param::expression("value").req().doc("The numeric value to average."),
      param::number("alpha").min(0).max(1).doc("Weight of each new value, in (0, 1]."),
      param::duration("half_life").doc("Event time after which a value's weight halves."),
      param::string("output").def("ema").doc("Name of the field added."),
      order_param(),
  };
  s.example =
      "operators:\n"
      "  smooth:\n"
      "    type: ema\n"
      "    input: trades\n"
      "    key: symbol\n"
      "    value: price\n"
      "    half_life: 30s\n"
      "    output: price_ema\n";
  s.ports = {"late"};
  return s;
}

core::operator_ptr make_ema(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  return std::make_unique<ema_op>(cfg, inputs.at(0));
}

} // namespace pel::operators
