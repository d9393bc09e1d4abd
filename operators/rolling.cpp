#include "rolling.hpp"

#include "stateful_common.hpp"

#include <cmath>

namespace pel::operators {

namespace {

enum class agg_kind { count, count_all, sum, avg, min, max, stddev, var, first, last };

struct agg_spec {
  agg_kind kind;
  std::size_t arg = 0;  // index into the numbers kept per record
};

struct rolling_key {
  series_window win;
  bool ready = false;
};

class rolling_op final : public per_record_operator {
public:
  rolling_op(const spec::config& cfg, const core::schema_ptr& in) {
    init_base(in, event_order(cfg));
    key_ = resolve_fields(cfg, "key", *in, false);
    if (cfg.has("rows") == cfg.has("range")) cfg.fail("rows", "set exactly one of `rows` and `range`");
    rows_ = static_cast<std::size_t>(cfg.get_int("rows"));
    range_ = cfg.get_duration_ns("range");
    if (cfg.has("range") && range_ <= 0) cfg.fail("range", "must be a positive duration");
    std::vector<std::string> names;
    std::vector<std::string> arg_texts;
    bool extrema = false;
    auto list = cfg.get_expression_map("aggregates");
    if (list.empty()) cfg.fail("aggregates", "name at least one aggregate, e.g. `avg_price: avg(price)`");
    for (const auto& a : list) {
      auto fail = [&](const std::string& msg) { throw spec::config_error(a.at, a.path, msg); };
      auto open = a.text.find('(');
      auto close = a.text.rfind(')');
      if (open == std::string::npos || close == std::string::npos || close < open)
        fail("expected `function(argument)` such as `avg(price)`, found '" + a.text + "'");
      auto func = trim(a.text.substr(0, open));
      auto arg = trim(a.text.substr(open + 1, close - open - 1));
      agg_spec s{};
      if (func == "count") s.kind = (arg.empty() || arg == "*") ? agg_kind::count_all : agg_kind::count;
      else if (func == "sum") s.kind = agg_kind::sum;
      else if (func == "avg" || func == "mean") s.kind = agg_kind::avg;
      else if (func == "min") s.kind = agg_kind::min;
      else if (func == "max") s.kind = agg_kind::max;
      else if (func == "stddev") s.kind = agg_kind::stddev;
      else if (func == "var" || func == "variance") s.kind = agg_kind::var;
      else if (func == "first") s.kind = agg_kind::first;
      else if (func == "last") s.kind = agg_kind::last;
      else fail("unknown aggregate '" + func + "'; use count, sum, avg, min, max, stddev, var, first or last");
      if (s.kind == agg_kind::min || s.kind == agg_kind::max) extrema = true;
      if (s.kind != agg_kind::count_all) {
        if (arg.empty()) fail(func + " needs an argument");
        auto it = std::find(arg_texts.begin(), arg_texts.end(), arg);
        s.arg = static_cast<std::size_t>(it - arg_texts.begin());
        if (it == arg_texts.end()) {
          arg_texts.push_back(arg);
          try {
            args_.push_back(number_expr::compile(cfg, "aggregates", arg, *in));
          } catch (const spec::config_error& e) {
            throw spec::config_error(a.at, a.path, e.what());
          }
        }
      }
      aggs_.push_back(s);
      names.push_back(a.name);
    }
    if (args_.empty()) args_.push_back(number_expr::compile(cfg, "aggregates", "0", *in));
    extrema_ = extrema;
    xs_.resize(args_.size());
    out_ = extend_schema(cfg, "aggregates", *in, names);
  }

protected:
  void handle(core::value* row, std::int64_t t, core::outputs& out) override {
    for (std::size_t j = 0; j < args_.size(); ++j)
      if (!args_[j].eval(row, t, xs_[j]) || !std::isfinite(xs_[j])) xs_[j] = std::nan("");
    auto& st = keys_.get(row, key_);
    if (!st.ready) {
      st.win.init(args_.size(), extrema_);
      st.ready = true;
    }
    st.win.push(xs_.data(), t);
    st.win.evict(rows_, range_, t);
    auto o = out.main.append(t);
    for (std::size_t c = 0; c < in_->size(); ++c) o[c] = std::move(row[c]);
    auto w = in_->size();
    auto num = [](double d) { return std::isnan(d) ? core::value{} : core::value{d}; };
    for (std::size_t i = 0; i < aggs_.size(); ++i) {
      auto j = aggs_[i].arg;
      core::value& v = o[w + i];
      switch (aggs_[i].kind) {
        case agg_kind::count_all: v = static_cast<std::int64_t>(st.win.size()); break;
        case agg_kind::count: v = st.win.count(j); break;
        case agg_kind::sum: v = st.win.sum(j); break;
        case agg_kind::avg: v = num(st.win.mean(j)); break;
        case agg_kind::min: v = num(st.win.min(j)); break;
        case agg_kind::max: v = num(st.win.max(j)); break;
        case agg_kind::stddev: v = num(std::sqrt(st.win.variance(j))); break;
        case agg_kind::var: v = num(st.win.variance(j)); break;
        case agg_kind::first: v = num(st.win.first(j)); break;
        case agg_kind::last: v = num(st.win.last(j)); break;
      }
    }
  }

  void expire(std::int64_t wm, core::outputs&) override {
    if (range_ <= 0 || wm == time_max) return;
    keys_.erase_if([&](auto& e) { return e.state.win.empty() || e.state.win.newest_time() <= wm - range_; });
  }

  void save_state(core::state_writer& w) const override {
    keys_.snapshot(w, ctx_.max_parallelism, [](core::state_writer& w, const rolling_key& s) { s.win.save(w); });
  }
  void load_state(core::state_reader& r) override {
    keys_.restore(r, ctx_, [this](core::state_reader& r, rolling_key& s) {
      s.win.init(args_.size(), extrema_);
      s.ready = true;
      s.win.load(r);
    });
  }

private:
  static std::string trim(std::string s) {
    while (!s.empty() && s.front() == ' ') s.erase(s.begin());
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

  std::size_t rows_ = 0;
  std::int64_t range_ = 0;
  bool extrema_ = false;
  std::vector<number_expr> args_;
  std::vector<agg_spec> aggs_;
  std::vector<double> xs_;
  key_table<rolling_key> keys_;
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
      "are written `name: function(expression)` with the functions count (count() counts "
      "records, count(x) non-null values), sum, avg, min, max, stddev and var (sample), first "
      "and last. Sums are updated in O(1) per record and min/max with monotonic queues.";
  s.params = {
      param::string_list("key").doc("Fields that identify a series (empty: one series)."),
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
