#include "interval_join.hpp"

#include "stateful_common.hpp"

namespace pel::operators {

namespace {

class interval_join_op final : public core::operator_base {
public:
  interval_join_op(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
    keys_.init(cfg, *inputs[0], *inputs[1]);
    latest_ = cfg.get_bool("latest");
    has_lower_ = cfg.has("lower");
    lower_ = signed_duration(cfg, "lower");
    upper_ = signed_duration(cfg, "upper");
    if (latest_) {
      if (cfg.has("upper")) cfg.fail("upper", "`latest: true` joins right records at or before the left one; drop `upper`");
      upper_ = 0;
      if (has_lower_ && lower_ > 0) cfg.fail("lower", "with `latest: true`, `lower` is how old a match may be, e.g. -5s");
    } else if (lower_ > upper_) {
      cfg.fail("lower", "must not be after `upper`");
    }
  }

  core::schema_ptr output_schema() const override { return keys_.out; }
  std::vector<int> key_columns(int input) const override { return input == 0 ? keys_.left : keys_.right; }
  void open(const core::operator_context& ctx) override {
    ctx_ = ctx;
    table_.set_max_parallelism(ctx.max_parallelism);
  }

  void process(core::batch& in, int input, core::outputs& out) override {
    const auto& cols = input == 0 ? keys_.left : keys_.right;
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto t = in.times[i];
      auto row = in.row(i);
      if (t < watermark_) {
        // A late left record can no longer be joined in order; a late right record can
        // still match left records that wait (interval joins), so keep it.
        if (input == 0) {
          out.late.append_move(row, t);
          continue;
        }
        ++late_right_;
      }
      std::uint64_t hash;
      bool inserted;
      table_.at(find_or_insert(table_, row, cols, hash, inserted)).add(keys_, input, row, t);
    }
  }

  void on_watermark(core::event_time wm_time, core::outputs& out) override {
    auto wm = wm_time.ns;
    if (wm <= watermark_) return;
    watermark_ = wm;
    table_.erase_if([&](auto, const state::key&, join_sides& st) {
      // Left records whose whole match range is before the watermark are complete.
      std::size_t done = 0;
      while (done < st.left.size()) {
        auto t = st.left.time(done);
        if (!(wm == time_max || sat_add(t, upper_) < wm)) break;
        join_one(st, st.left.row(done), t, out);
        ++done;
      }
      st.left.pop_front(done);
      // Right records no future left record can match.
      auto next_left = st.left.empty() ? wm : std::min(wm, st.left.time(0));
      std::size_t drop = 0;
      if (wm == time_max) {
        drop = st.right.size();
      } else if (latest_) {
        // Keep the newest record at or before next_left, and all after it.
        while (drop + 1 < st.right.size() && st.right.time(drop + 1) <= next_left) ++drop;
        if (has_lower_ && drop < st.right.size() && st.right.time(drop) < sat_add(next_left, lower_))
          ++drop;
      } else {
        auto bound = sat_add(next_left, lower_);
        while (drop < st.right.size() && st.right.time(drop) < bound) ++drop;
      }
      st.right.pop_front(drop);
      return st.left.empty() && st.right.empty();
    });
  }

  void finish(core::outputs& out) override { on_watermark(core::event_time::max(), out); }

  void snapshot(core::state_writer& w) override {
    w.put<std::int64_t>(watermark_);
    table_.snapshot(w, all_groups(ctx_),
                    [](core::state_writer& w, const join_sides& s) { s.save(w); });
  }

  void restore(core::state_reader& r) override {
    watermark_ = std::max(watermark_, r.get<std::int64_t>());
    table_.restore(r, owned_groups(ctx_),
                   [this](core::state_reader& r) { return join_sides::load(r, keys_); });
  }

  /// Right records that arrived behind the watermark (kept, but possibly too late).
  std::uint64_t late_right() const noexcept { return late_right_; }

private:
  static std::int64_t sat_add(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? time_max : time_min;
    return r;
  }

  void join_one(const join_sides& st, const core::value* left, std::int64_t t, core::outputs& out) {
    const auto& right = st.right;
    bool matched = false;
    if (latest_) {
      // The newest right record at or before t (and not older than t + lower).
      std::size_t lo = 0, hi = right.size();
      while (lo < hi) {
        auto mid = (lo + hi) / 2;
        if (right.time(mid) <= t) lo = mid + 1;
        else hi = mid;
      }
      if (lo > 0 && (!has_lower_ || right.time(lo - 1) >= sat_add(t, lower_))) {
        keys_.emit(out.main, left, right.row(lo - 1), t);
        matched = true;
      }
    } else {
      auto from = sat_add(t, lower_), to = sat_add(t, upper_);
      std::size_t lo = 0, hi = right.size();
      while (lo < hi) {
        auto mid = (lo + hi) / 2;
        if (right.time(mid) < from) lo = mid + 1;
        else hi = mid;
      }
      for (auto i = lo; i < right.size() && right.time(i) <= to; ++i) {
        keys_.emit(out.main, left, right.row(i), t);
        matched = true;
      }
    }
    if (!matched && keys_.left_outer) keys_.emit(out.main, left, nullptr, t);
  }

  join_keys keys_;
  bool latest_ = false;
  bool has_lower_ = false;
  std::int64_t lower_ = 0, upper_ = 0;
  core::operator_context ctx_;
  std::int64_t watermark_ = time_min;
  std::uint64_t late_right_ = 0;
  state::keyed_map<join_sides> table_;
};

} // namespace

spec::component_schema interval_join_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "interval_join";
  s.summary = "Joins each left record with the right records of its key within a time interval, or with the latest one (as-of).";
  s.description =
      "Two inputs: left (first) and right (second), keyed by `key` (or `left_key` / "
      "`right_key`). A left record at time t joins every right record of its key whose time "
      "is in [t + lower, t + upper] (`lower`/`upper` are signed durations such as `-5s`). "
      "With `latest: true` it joins only the newest right record at or before t (an as-of "
      "join: each trade with the quote in force when it happened); `lower` then bounds how old "
      "that record may be. Output: left fields, then right fields (right key fields dropped, "
      "names the left has prefixed with `prefix`), at the left record's time. A left record is "
      "joined once the watermark passes t + upper, so results do not depend on arrival "
      "order; state older than any possible match is dropped as the watermark advances. Late "
      "left records go to `late`.";
  s.params.push_back(param::string("lower").def("0s").doc("Start of the interval relative to the left time (signed, e.g. -5s)."));
  s.params.push_back(param::string("upper").def("0s").doc("End of the interval relative to the left time (signed)."));
  s.params.push_back(param::boolean("latest").def("false").doc("Join only the newest right record at or before the left time."));
  s.example =
      "operators:\n"
      "  with_quote:\n"
      "    type: interval_join\n"
      "    input: [trades, quotes]\n"
      "    key: symbol\n"
      "    latest: true\n"
      "    lower: -5s\n";
  add_join_schema(s);
  return s;
}

core::operator_ptr make_interval_join(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  require_two_inputs(cfg, inputs, "interval_join");
  return std::make_unique<interval_join_op>(cfg, inputs);
}

} // namespace pel::operators
