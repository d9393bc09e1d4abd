#include "top_k.hpp"

#include "stateful_common.hpp"

#include "pel/operators/aggregates.hpp"

#include <cmath>
#include <stdexcept>

namespace pel::operators {

namespace {

/// The state of one key in one window: an accumulator block of the `by` aggregate (a
/// one-entry `aggregate_set`, the same functions and semantics as the window operator).
struct top_key {
  accumulator acc;
};

class top_k_op final : public core::operator_base {
public:
  top_k_op(const spec::config& cfg, const core::schema_ptr& in) : in_(in) {
    key_ = resolve_fields(cfg, "key", *in, true);
    k_ = static_cast<std::size_t>(cfg.get_int("k"));
    auto size = cfg.get_duration_ns("window");
    if (size <= 0) cfg.fail("window", "must be a positive duration");
    windows_.init(size);
    auto output = cfg.get_string("output");
    try {
      by_ = aggregate_set::compile_text({{output, cfg.get_string("by")}}, *in);
    } catch (const std::invalid_argument& e) {
      cfg.fail("by", e.what());
    }
    if (by_.outputs().size() != 1)
      cfg.fail("by", "rank by an aggregate with one result, e.g. `sum(price * qty)`");
    auto type = by_.outputs()[0].type;
    using vt = core::value_type;
    out_ = std::make_shared<core::schema>(std::vector<core::field>{
        {"window_start", vt::integer}, {"window_end", vt::integer}, {"rank", vt::integer}});
    auto s = std::const_pointer_cast<core::schema>(out_);
    s->set_time_unit(0, 1'000'000);
    s->set_time_unit(1, 1'000'000);
    for (int c : key_) s->add((*in)[c].name, (*in)[c].type);
    s->add(output, type);
  }

  core::schema_ptr output_schema() const override { return out_; }
  /// The K best of a window are chosen among all its keys at once, in one instance: the
  /// operator is not keyed (its input is not partitioned by key) and cannot be rescaled.
  bool rescalable() const override { return false; }
  void open(const core::operator_context& ctx) override {
    ctx_ = ctx;
    windows_.open(ctx);
  }

  void process(core::batch& in, int, core::outputs& out) override {
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto t = in.times[i];
      auto row = in.row(i);
      if (windows_.fired(t)) {
        out.late.append_move(row, t);
        continue;
      }
      if (!by_.prepare(row, t, error_)) {
        out.dead(ctx_.name, error_, row, *in_, t);
        continue;
      }
      auto& st = windows_.get(row, key_, t);
      if (!st.acc) st.acc = accumulator(by_);
      by_.add(st.acc.data(), t);
    }
  }

  void on_watermark(core::event_time wm, core::outputs& out) override {
    windows_.advance(wm.ns, [&](std::int64_t start, std::int64_t end, auto& map) {
      emit(start, end, map, out);
    });
  }

  void finish(core::outputs& out) override { on_watermark(core::event_time::max(), out); }

  void snapshot(core::state_writer& w) override {
    windows_.snapshot(
        w, [this](core::state_writer& w, const top_key& s) { by_.write(s.acc.data(), w); });
  }

  void restore(core::state_reader& r) override {
    windows_.restore(r, [this](core::state_reader& r) {
      top_key s{accumulator(by_)};
      by_.read(s.acc.data(), r);
      return s;
    });
  }

private:
  struct ranked {
    double score;
    core::value result;
    const state::key* key;
  };

  void emit(std::int64_t start, std::int64_t end, state::keyed_map<top_key>& map,
            core::outputs& out) {
    ranked_.clear();
    map.for_each([&](auto, const state::key& k, const top_key& s) {
      ranked r{0, {}, &k};
      by_.result(s.acc.data(), &r.result);
      // A key whose aggregate is null (only null values) or not a number is not ranked.
      if (core::as_number(r.result, r.score) && !std::isnan(r.score))
        ranked_.push_back(std::move(r));
    });
    auto better = [](const ranked& a, const ranked& b) {
      if (a.score != b.score) return a.score > b.score;
      for (std::size_t i = 0; i < a.key->size(); ++i)
        if (int c = core::compare((*a.key)[i], (*b.key)[i]); c != 0) return c < 0;
      return false;
    };
    auto n = std::min(k_, ranked_.size());
    std::partial_sort(ranked_.begin(), ranked_.begin() + static_cast<std::ptrdiff_t>(n), ranked_.end(), better);
    for (std::size_t r = 0; r < n; ++r) {
      auto o = out.main.append(end - 1);
      o[0] = epoch_ms(start);
      o[1] = epoch_ms(end);
      o[2] = static_cast<std::int64_t>(r + 1);
      ranked_[r].key->copy_to(o + 3);
      o[3 + ranked_[r].key->size()] = std::move(ranked_[r].result);
    }
  }

  core::schema_ptr in_, out_;
  std::vector<int> key_;
  std::size_t k_ = 10;
  aggregate_set by_;
  std::string error_;
  core::operator_context ctx_;
  tumbling_state<top_key> windows_;
  std::vector<ranked> ranked_;
};

} // namespace

spec::component_schema top_k_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "top_k";
  s.summary = "The top K keys by an aggregate per tumbling event-time window.";
  s.description =
      "Records are grouped by tumbling `window` of event time and by `key`; `by` aggregates "
      "each group with one of the window operator's aggregate functions and the same "
      "semantics (e.g. `sum(price * qty)`, `count()`, `avg(x)`, `max(x)`, `last(x)`, "
      "`percentile(x, 0.9)`; null values are skipped, a value that is not a number sends the "
      "record to the dead-letter port). When the watermark passes a window's end, its K best "
      "groups are emitted, highest first, as `window_start, window_end` (epoch ms, as the "
      "window operator writes them), `rank` (1 = best), the key fields and the aggregate "
      "(`output`); ties go to the smaller key, and groups whose aggregate is null are not "
      "ranked. Records of a window already emitted go to `late`. "
      "The ranking is over the keys one instance sees, so run it with `parallelism: 1` (or "
      "after a keyed pre-aggregation) for a global top K.";
  s.params = {
      param::string_list("key").req().names_input_field(0).doc(
          "Fields that identify what is ranked."),
      param::string("by").req().doc("`function(expression)` to rank by, e.g. `sum(price * qty)`: "
                                    "an aggregate of the window operator with one numeric result."),
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
