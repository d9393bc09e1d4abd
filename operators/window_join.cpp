#include "window_join.hpp"

#include "stateful_common.hpp"

#include <map>

namespace pel::operators {

namespace {

struct window_key {
  row_store left;
  row_store right;
};

class window_join_op final : public core::operator_base {
public:
  window_join_op(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs)
    : lw_(static_cast<std::uint32_t>(inputs.at(0)->size())),
      rw_(static_cast<std::uint32_t>(inputs.at(1)->size())) {
    keys_.init(cfg, *inputs[0], *inputs[1]);
    size_ = cfg.get_duration_ns("window");
    if (size_ <= 0) cfg.fail("window", "must be a positive duration");
  }

  core::schema_ptr output_schema() const override { return keys_.out; }
  std::vector<int> key_columns(int input) const override { return input == 0 ? keys_.left : keys_.right; }
  void open(const core::operator_context& ctx) override { ctx_ = ctx; }

  void process(core::batch& in, int input, core::outputs& out) override {
    const auto& cols = input == 0 ? keys_.left : keys_.right;
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto t = in.times[i];
      auto row = in.row(i);
      auto start = t - ((t % size_) + size_) % size_;
      if (start + size_ <= watermark_) {  // its window was already joined
        if (input == 0) out.late.append_move(row, t);
        else ++late_right_;
        continue;
      }
      auto& st = windows_[start].get(row, cols);
      if (st.left.width() == 0) {
        st.left.set_width(lw_);
        st.right.set_width(rw_);
      }
      (input == 0 ? st.left : st.right).insert_sorted(row, t);
    }
  }

  void on_watermark(core::event_time wm, core::outputs& out) override {
    watermark_ = std::max(watermark_, wm.ns);
    while (!windows_.empty()) {
      auto it = windows_.begin();
      auto end = it->first + size_;
      if (wm.ns != time_max && end > wm.ns) break;
      it->second.for_each([&](auto& e) {
        auto& st = e.state;
        for (std::size_t l = 0; l < st.left.size(); ++l) {
          for (std::size_t r = 0; r < st.right.size(); ++r)
            keys_.emit(out.main, st.left.row(l), st.right.row(r), end - 1);
          if (st.right.empty() && keys_.left_outer) keys_.emit(out.main, st.left.row(l), nullptr, end - 1);
        }
      });
      windows_.erase(it);
    }
  }

  void finish(core::outputs& out) override { on_watermark(core::event_time::max(), out); }

  void snapshot(core::state_writer& w) override {
    w.put<std::int64_t>(watermark_);
    w.put<std::uint64_t>(windows_.size());
    for (const auto& [start, table] : windows_) {
      w.put<std::int64_t>(start);
      table.snapshot(w, ctx_.max_parallelism, [](core::state_writer& w, const window_key& s) {
        s.left.save(w);
        s.right.save(w);
      });
    }
  }

  void restore(core::state_reader& r) override {
    watermark_ = std::max(watermark_, r.get<std::int64_t>());
    auto n = r.get<std::uint64_t>();
    for (std::uint64_t i = 0; i < n; ++i) {
      auto start = r.get<std::int64_t>();
      windows_[start].restore(r, ctx_, [this](core::state_reader& r, window_key& s) {
        s.left.set_width(lw_);
        s.right.set_width(rw_);
        s.left.load(r);
        s.right.load(r);
      });
    }
  }

private:
  std::uint32_t lw_, rw_;
  join_keys keys_;
  std::int64_t size_ = 0;
  core::operator_context ctx_;
  std::int64_t watermark_ = time_min;
  std::uint64_t late_right_ = 0;
  std::map<std::int64_t, key_table<window_key>> windows_;
};

} // namespace

spec::component_schema window_join_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "window_join";
  s.summary = "Joins the records of two inputs that share a key and a tumbling event-time window.";
  s.description =
      "Two inputs: left (first) and right (second), keyed by `key` (or `left_key` / "
      "`right_key`). Every left record is paired with every right record of the same key in "
      "the same tumbling `window`; the pairs are emitted when the watermark passes the "
      "window's end, at time end - 1 ns. Output: left fields, then right fields (right key "
      "fields dropped, names the left has prefixed with `prefix`). Records of a window already "
      "joined are late (left ones go to `late`).";
  s.params = join_params();
  s.params.push_back(param::duration("window").req().doc("Tumbling window size."));
  s.example =
      "operators:\n"
      "  paired:\n"
      "    type: window_join\n"
      "    input: [trades, quotes]\n"
      "    key: symbol\n"
      "    window: 1s\n";
  s.min_inputs = 2;
  s.max_inputs = 2;
  s.ports = {"late"};
  return s;
}

core::operator_ptr make_window_join(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  if (inputs.size() != 2) cfg.fail("input", "window_join takes two inputs: [left, right]");
  return std::make_unique<window_join_op>(cfg, inputs);
}

} // namespace pel::operators
