#include "throttle.hpp"

#include "stateful_common.hpp"

#include <deque>

namespace pel::operators {

namespace {

struct throttle_key {
  std::deque<std::int64_t> accepted;  // rate mode: times of the records let through
  std::uint64_t seen = 0;             // sample mode: records of the key so far
};

/// SplitMix64 finaliser: a well-spread 64-bit hash.
std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class throttle_op final : public per_record_operator<throttle_key> {
public:
  throttle_op(const spec::config& cfg, const core::schema_ptr& in) {
    init_base(in, event_order(cfg));
    key_ = resolve_fields(cfg, "key", *in, false);
    sample_ = cfg.get_string("mode") == "sample";
    if (sample_) {
      if (cfg.has("every") == cfg.has("fraction")) cfg.fail("mode", "sample mode needs exactly one of `every` and `fraction`");
      every_ = static_cast<std::uint64_t>(cfg.get_int("every"));
      fraction_ = cfg.has("fraction") ? cfg.get_number("fraction") : -1;
      seed_ = mix(static_cast<std::uint64_t>(cfg.get_int("seed")));
    } else {
      if (!cfg.has("rate")) cfg.fail("rate", "rate mode needs `rate` (records per `per`)");
      rate_ = static_cast<std::size_t>(cfg.get_int("rate"));
      per_ = cfg.get_duration_ns("per");
      if (per_ <= 0) cfg.fail("per", "must be a positive duration");
    }
    dead_letter_ = cfg.get_string("dropped") == "dead_letter";
    out_ = in;
  }

  /// With a key, the limit or the sample is per key, kept by key group; without one, it is
  /// the instance's own (each instance limits what reaches it), so it cannot be rescaled.
  bool rescalable() const override { return !key_.empty(); }

  /// Records dropped so far.
  std::uint64_t dropped() const noexcept { return dropped_; }

protected:
  void handle(core::value* row, std::int64_t t, core::outputs& out) override {
    std::uint64_t key_hash;
    auto& st = state_of(row, key_hash);
    bool keep;
    if (sample_) {
      auto n = st.seen++;
      if (fraction_ >= 0) {
        auto h = mix(core::hash_combine(seed_ ^ key_hash, n));
        keep = static_cast<double>(h >> 11) * 0x1.0p-53 < fraction_;
      } else {
        keep = n % every_ == 0;
      }
    } else {
      while (!st.accepted.empty() && st.accepted.front() <= t - per_) st.accepted.pop_front();
      keep = st.accepted.size() < rate_;
      if (keep) st.accepted.push_back(t);
    }
    if (keep) {
      out.main.append_move(row, t);
      return;
    }
    ++dropped_;
    if (dead_letter_) out.dead(ctx_.name, sample_ ? "sampled out" : "rate limit exceeded", row, *in_, t);
  }

  void expire(std::int64_t wm, core::outputs&) override {
    if (sample_ || wm == time_max) return;
    erase_keys_if([&](const throttle_key& s) {
      return s.accepted.empty() || s.accepted.back() <= wm - per_;
    });
  }

  void write_key(core::state_writer& w, const throttle_key& s) const override {
    w.put<std::uint64_t>(s.seen);
    w.put<std::uint64_t>(s.accepted.size());
    for (auto t : s.accepted) w.put<std::int64_t>(t);
  }
  throttle_key read_key(core::state_reader& r) const override {
    throttle_key s;
    s.seen = r.get<std::uint64_t>();
    auto n = r.get<std::uint64_t>();
    for (std::uint64_t i = 0; i < n; ++i) s.accepted.push_back(r.get<std::int64_t>());
    return s;
  }

private:
  bool sample_ = false;
  std::size_t rate_ = 0;
  std::int64_t per_ = 0;
  std::uint64_t every_ = 1;
  double fraction_ = -1;
  std::uint64_t seed_ = 0;
  bool dead_letter_ = false;
  std::uint64_t dropped_ = 0;
};

} // namespace

spec::component_schema throttle_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "throttle";
  s.summary = "Rate-limits (at most `rate` records per `per`) or samples records, per key or globally.";
  s.description =
      "`mode: rate` lets through at most `rate` records of a key in any span of `per` of event "
      "time (a sliding window); `mode: sample` keeps every `every`-th record of a key, or a "
      "`fraction` of them chosen by a hash of the seed, the key and the record's rank within "
      "its key, so the choice is the same at any parallelism. Records that are not kept are "
      "counted, or with `dropped: dead_letter` sent to the dead-letter port with the reason. "
      "Without `key` the limit applies per instance.";
  s.params = {
      param::string_list("key").names_input_field(0).doc(
          "Fields that identify a stream to limit (empty: all records)."),
      param::string("mode").one_of({"rate", "sample"}).def("rate").doc("Rate limit or sampling."),
      param::integer("rate").min(1).doc("Records allowed per `per` (rate mode)."),
      param::duration("per").def("1s").doc("The span `rate` applies to (rate mode)."),
      param::integer("every").min(1).doc("Keep one record in this many (sample mode)."),
      param::number("fraction").min(0).max(1).doc("Keep this share of records (sample mode)."),
      param::integer("seed").def("42").doc("Seed of `fraction` sampling."),
      param::string("dropped").one_of({"count", "dead_letter"}).def("count").doc("What happens to records not kept."),
      order_param(),
  };
  s.example =
      "operators:\n"
      "  limited:\n"
      "    type: throttle\n"
      "    input: alerts\n"
      "    key: symbol\n"
      "    rate: 5\n"
      "    per: 1m\n";
  s.ports = {"late"};
  return s;
}

core::operator_ptr make_throttle(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  return std::make_unique<throttle_op>(cfg, inputs.at(0));
}

} // namespace pel::operators
