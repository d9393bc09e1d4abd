#include "dedupe.hpp"

#include "stateful_common.hpp"

namespace pel::operators {

namespace {

struct dedupe_key {
  std::int64_t first = time_min;
};

class dedupe_op final : public per_record_operator<dedupe_key> {
public:
  dedupe_op(const spec::config& cfg, const core::schema_ptr& in) {
    init_base(in, event_order(cfg));
    if (cfg.has("key")) {
      key_ = resolve_fields(cfg, "key", *in, true);
    } else {
      for (std::size_t i = 0; i < in->size(); ++i) key_.push_back(static_cast<int>(i));
    }
    horizon_ = cfg.get_duration_ns("horizon");
    if (horizon_ <= 0) cfg.fail("horizon", "must be a positive duration such as 10m");
    out_ = in;
  }

  /// Records dropped as duplicates so far.
  std::uint64_t dropped() const noexcept { return dropped_; }

protected:
  void handle(core::value* row, std::int64_t t, core::outputs& out) override {
    auto& st = state_of(row);
    if (st.first != time_min && t - st.first <= horizon_) {
      ++dropped_;
      return;
    }
    st.first = t;
    out.main.append_move(row, t);
  }

  void expire(std::int64_t wm, core::outputs&) override {
    if (wm == time_max) return;
    erase_keys_if([&](const dedupe_key& s) { return s.first < wm - horizon_; });
  }

  void write_key(core::state_writer& w, const dedupe_key& s) const override {
    w.put<std::int64_t>(s.first);
  }
  dedupe_key read_key(core::state_reader& r) const override { return {r.get<std::int64_t>()}; }

private:
  std::int64_t horizon_ = 0;
  std::uint64_t dropped_ = 0;
};

} // namespace

spec::component_schema dedupe_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "dedupe";
  s.summary = "Drops records whose key was already seen within a horizon of event time.";
  s.description =
      "The first record of a key passes; any record with the same key whose event time is at "
      "most `horizon` after that first one is dropped. A record beyond the horizon passes and "
      "starts a new horizon. State of a key is freed once the watermark is a horizon past it, "
      "so memory is bounded by the keys seen within one horizon. Without `key` the whole "
      "record is the key.";
  s.params = {
      param::string_list("key").names_input_field(0).doc(
          "Fields that identify a record (default: all fields)."),
      param::duration("horizon").req().doc("How long after a key's first record duplicates are dropped."),
      order_param(),
  };
  s.example =
      "operators:\n"
      "  unique:\n"
      "    type: dedupe\n"
      "    input: trades\n"
      "    key: trade_id\n"
      "    horizon: 10m\n";
  s.ports = {"late"};
  return s;
}

core::operator_ptr make_dedupe(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  return std::make_unique<dedupe_op>(cfg, inputs.at(0));
}

} // namespace pel::operators
