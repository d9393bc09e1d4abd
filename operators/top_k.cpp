#include "top_k.hpp"

#include "stateful_common.hpp"

#include <cmath>
#include <map>

namespace pel::operators {

namespace {

enum class rank_by { sum, count, avg, min, max, last };

struct top_key {
  double sum = 0, min = INFINITY, max = -INFINITY, last = 0;
  std::int64_t count = 0, last_t = time_min;
};

class top_k_op final : public core::operator_base {
public:
  top_k_op(const spec::config& cfg, const core::schema_ptr& in) : in_(in) {
    key_ = resolve_fields(cfg, "key", *in, true);
    k_ = static_cast<std::size_t>(cfg.get_int("k"));
    size_ = cfg.get_duration_ns("window");
    if (size_ <= 0) cfg.fail("window", "must be a positive duration");
    auto text = cfg.get_string("by");
    auto open = text.find('('), close = text.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close < open)
      cfg.fail("by", "expected `function(expression)` such as `sum(price * qty)`, found '" + text + "'");
    auto func = text.substr(0, open);
    while (!func.empty() && func.back() == ' ') func.pop_back();
    auto arg = text.substr(open + 1, close - open - 1);
    if (func == "sum") by_ = rank_by::sum;
    else if (func == "count") by_ = rank_by::count;
    else if (func == "avg") by_ = rank_by::avg;
    else if (func == "min") by_ = rank_by::min;
    else if (func == "max") by_ = rank_by::max;
    else if (func == "last") by_ = rank_by::last;
    else cfg.fail("by", "unknown function '" + func + "'; use sum, count, avg, min, max or last");
    if (by_ == rank_by::count && (arg.empty() || arg == "*")) arg = "1";
    value_ = number_expr::compile(cfg, "by", arg, *in);
    using vt = core::value_type;
    out_ = std::make_shared<core::schema>(std::vector<core::field>{
        {"window_start", vt::integer}, {"window_end", vt::integer}, {"rank", vt::integer}});
    auto s = std::const_pointer_cast<core::schema>(out_);
    for (int c : key_) s->add((*in)[c].name, (*in)[c].type);
    s->add(cfg.get_string("output"), vt::number);
  }

  core::schema_ptr output_schema() const override { return out_; }
  void open(const core::operator_context& ctx) override { ctx_ = ctx; }

  void process(core::batch& in, int, core::outputs& out) override {
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto t = in.times[i];
      auto row = in.row(i);
      if (t < watermark_) {
        out.late.append_move(row, t);
        continue;
      }
      double x;
      if (!value_.eval(row, t, x) || !std::isfinite(x)) continue;
      auto start = t - ((t % size_) + size_) % size_;
      auto& s = windows_[start].get(row, key_);
      s.sum += x;
      ++s.count;
      s.min = std::min(s.min, x);
      s.max = std::max(s.max, x);
      if (t >= s.last_t) {
        s.last = x;
        s.last_t = t;
      }
    }
  }

  void on_watermark(core::event_time wm, core::outputs& out) override {
    watermark_ = std::max(watermark_, wm.ns);
    while (!windows_.empty()) {
      auto it = windows_.begin();
      auto end = it->first + size_;
      if (wm.ns != time_max && end > wm.ns) break;
      emit(it->first, it->second, out);
      windows_.erase(it);
    }
  }

  void finish(core::outputs& out) override { on_watermark(core::event_time::max(), out); }

  void snapshot(core::state_writer& w) override {
    w.put<std::int64_t>(watermark_);
    w.put<std::uint64_t>(windows_.size());
    for (const auto& [start, table] : windows_) {
      w.put<std::int64_t>(start);
      table.snapshot(w, ctx_.max_parallelism, [](core::state_writer& w, const top_key& s) {
        w.put<double>(s.sum);
        w.put<double>(s.min);
        w.put<double>(s.max);
        w.put<double>(s.last);
        w.put<std::int64_t>(s.count);
        w.put<std::int64_t>(s.last_t);
      });
    }
  }

  void restore(core::state_reader& r) override {
    watermark_ = std::max(watermark_, r.get<std::int64_t>());
    auto n = r.get<std::uint64_t>();
    for (std::uint64_t i = 0; i < n; ++i) {
      auto start = r.get<std::int64_t>();
      windows_[start].restore(r, ctx_, [](core::state_reader& r, top_key& s) {
        s.sum = r.get<double>();
        s.min = r.get<double>();
        s.max = r.get<double>();
        s.last = r.get<double>();
        s.count = r.get<std::int64_t>();
        s.last_t = r.get<std::int64_t>();
      });
    }
  }

private:
  double score(const top_key& s) const {
    switch (by_) {
      case rank_by::sum: return s.sum;
      case rank_by::count: return static_cast<double>(s.count);
      case rank_by::avg: return s.sum / static_cast<double>(s.count);
      case rank_by::min: return s.min;
      case rank_by::max: return s.max;
      case rank_by::last: return s.last;
    }
    return 0;
  }

  void emit(std::int64_t start, key_table<top_key>& table, core::outputs& out) {
    ranked_.clear();
    table.for_each([&](auto& e) { ranked_.emplace_back(score(e.state), &e.key); });
    auto better = [](const auto& a, const auto& b) {
      if (a.first != b.first) return a.first > b.first;
      const auto& ka = *a.second;
      const auto& kb = *b.second;
      for (std::size_t i = 0; i < ka.size(); ++i)
        if (int c = core::compare(ka[i], kb[i]); c != 0) return c < 0;
      return false;
    };
    auto n = std::min(k_, ranked_.size());
    std::partial_sort(ranked_.begin(), ranked_.begin() + static_cast<std::ptrdiff_t>(n), ranked_.end(), better);
    for (std::size_t r = 0; r < n; ++r) {
      auto o = out.main.append(start + size_ - 1);
      o[0] = start;
      o[1] = start + size_;
      o[2] = static_cast<std::int64_t>(r + 1);
      std::size_t c = 3;
      for (const auto& v : *ranked_[r].second) o[c++] = v;
      o[c] = ranked_[r].first;
    }
  }

  core::schema_ptr in_, out_;
  std::vector<int> key_;
  std::size_t k_ = 10;
  std::int64_t size_ = 0;
  rank_by by_ = rank_by::sum;
  number_expr value_;
  core::operator_context ctx_;
  std::int64_t watermark_ = time_min;
  std::map<std::int64_t, key_table<top_key>> windows_;
  std::vector<std::pair<double, const std::vector<core::value>*>> ranked_;
};

} // namespace

spec::component_schema top_k_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "top_k";
  s.summary = "The top K keys by an aggregate per tumbling event-time window.";
  s.description =
      "Records are grouped by tumbling `window` of event time and by `key`; `by` aggregates "
      "each group (sum, count, avg, min, max or last of an expression). When the watermark "
      "passes a window's end, its K best groups are emitted, highest first, as `window_start, "
      "window_end, rank` (1 = best), the key fields and the aggregate (`output`); ties go to "
      "the smaller key. Records older than the watermark go to `late`. The ranking is over "
      "the keys one instance sees, so run it with `parallelism: 1` (or after a keyed "
      "pre-aggregation) for a global top K.";
  s.params = {
      param::string_list("key").req().doc("Fields that identify what is ranked."),
      param::string("by").req().doc("`function(expression)` to rank by, e.g. `sum(price * qty)`."),
      param::integer("k").min(1).max(100000).def("10").doc("How many keys per window."),
      param::duration("window").req().doc("Tumbling window size."),
      param::string("output").def("value").doc("Name of the aggregate field."),
  };
  s.example =
      "operators:\n"
      "  most_traded:\n"
      "    type: top_k\n"
      "    input: trades\n"
      "    parallelism: 1\n"
      "    key: symbol\n"
      "    by: sum(price * qty)\n"
      "    k: 3\n"
      "    window: 1m\n";
  s.ports = {"late"};
  return s;
}

core::operator_ptr make_top_k(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  return std::make_unique<top_k_op>(cfg, inputs.at(0));
}

} // namespace pel::operators
