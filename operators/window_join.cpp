#include "window_join.hpp"

#include "stateful_common.hpp"

namespace pel::operators {

namespace {

class window_join_op final : public core::operator_base {
public:
  window_join_op(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
    keys_.init(cfg, *inputs[0], *inputs[1]);
    auto size = cfg.get_duration_ns("window");
    if (size <= 0) cfg.fail("window", "must be a positive duration");
    windows_.init(size);
  }

  core::schema_ptr output_schema() const override { return keys_.out; }
  std::vector<int> key_columns(int input) const override { return input == 0 ? keys_.left : keys_.right; }
  void open(const core::operator_context& ctx) override { windows_.open(ctx); }

  void process(core::batch& in, int input, core::outputs& out) override {
    const auto& cols = input == 0 ? keys_.left : keys_.right;
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto t = in.times[i];
      auto row = in.row(i);
      if (windows_.fired(t)) {
        if (input == 0) out.late.append_move(row, t);
        else ++late_right_;
        continue;
      }
      windows_.get(row, cols, t).add(keys_, input, row, t);
    }
  }

  void on_watermark(core::event_time wm, core::outputs& out) override {
    windows_.advance(wm.ns, [&](std::int64_t, std::int64_t end, auto& map) {
      map.for_each([&](auto, const state::key&, const join_sides& st) {
        for (std::size_t l = 0; l < st.left.size(); ++l) {
          for (std::size_t r = 0; r < st.right.size(); ++r)
            keys_.emit(out.main, st.left.row(l), st.right.row(r), end - 1);
          if (st.right.empty() && keys_.left_outer)
            keys_.emit(out.main, st.left.row(l), nullptr, end - 1);
        }
      });
    });
  }

  void finish(core::outputs& out) override { on_watermark(core::event_time::max(), out); }

  void snapshot(core::state_writer& w) override {
    windows_.snapshot(w, [](core::state_writer& w, const join_sides& s) { s.save(w); });
  }

  void restore(core::state_reader& r) override {
    windows_.restore(r, [this](core::state_reader& r) { return join_sides::load(r, keys_); });
  }

private:
  join_keys keys_;
  tumbling_state<join_sides> windows_;
  std::uint64_t late_right_ = 0;
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
  s.params.push_back(param::duration("window").req().doc("Tumbling window size."));
  s.example =
      "operators:\n"
      "  paired:\n"
      "    type: window_join\n"
      "    input: [trades, quotes]\n"
      "    key: symbol\n"
      "    window: 1s\n";
  add_join_schema(s);
  return s;
}

core::operator_ptr make_window_join(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  require_two_inputs(cfg, inputs, "window_join");
  return std::make_unique<window_join_op>(cfg, inputs);
}

} // namespace pel::operators
