#include "pel/operators/register.hpp"

#include "field_names.hpp"
#include "pel/expr/expression.hpp"
#include "pel/spec/diagnostics.hpp"
#include "window.hpp"

#include <numeric>
#include <stdexcept>

namespace pel::operators {

namespace {

spec::component_schema window_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "window";
  s.summary = "Keyed event-time windows (tumbling, sliding, session) with aggregates.";
  s.description =
      "Groups records by `key` and by event-time window, and emits one row per key and window "
      "when the watermark passes the window's end: the key fields, `window_start` and "
      "`window_end` (epoch milliseconds), then the aggregates. The row's event time is "
      "`window_end` minus 1 ns. Windows are aligned to the epoch.\n\n"
      "- `tumbling`: fixed `size`, back to back.\n"
      "- `sliding`: `size` every `slide` (slide <= size); a record is added once to a pane of "
      "gcd(size, slide) and panes are merged when a window fires.\n"
      "- `session`: a window per burst of a key's records, closed after `gap` without records; "
      "a record less than `gap` after a session's last record joins it, and sessions it bridges merge.\n\n"
      "Aggregates are `name: function(args)`: count() (rows), count(x) (non-null x), sum, min, "
      "max, avg, stddev and variance (sample; Welford), first and last (by event time), "
      "distinct_count (exact to 64 values, then HyperLogLog, ~1.6 % standard error), "
      "percentile(x, p) (DDSketch, within 1 % relative of the exact rank-floor(p(n-1)) value; "
      "p a fraction or a percentage), vwap(price, qty), ohlc(price, qty) (outputs "
      "`<name>_open`, `_high`, `_low`, `_close`, `_volume`, `_trades`), and returns(price) "
      "(last/first - 1 by event time). Null arguments are skipped; a non-numeric argument "
      "sends the record to the dead-letter output with the reason. NaN is a number, not a "
      "null: one NaN makes sum, avg, min, max, stddev, variance, percentile, vwap and the "
      "high and low of ohlc NaN (JSON has no NaN: a JSON sink writes null); count(x) counts "
      "it. Infinities are numbers too (max of a set with +inf is +inf, and so is its 100th "
      "percentile); stddev and variance of a set with an infinity are NaN. stddev and "
      "variance do not overflow on huge values (stddev of 1e308 and -1e308 is 1.41e308; a "
      "variance beyond the largest double is +inf). percentile is exact at p = 0 and 1, "
      "counts |x| < 1e-9 as 0, and keeps at most 2048 buckets per sign: values spread over "
      "more than a ratio of ~1e17 merge the lowest ones.\n\n"
      "A record whose windows have all ended more than `allowed_lateness` before the watermark "
      "is late: `late: drop` counts and drops it, `late: route` sends it to the `<name>.late` "
      "port. Within the lateness, a late record updates its window, which is emitted again.\n\n"
      "`emit_every` adds early results for dashboards: every period (processing time) each "
      "open window is emitted with `final: false`; the result at the watermark has `final: "
      "true`. The `final` field exists only when `emit_every` is set.\n\n"
      "`key: []` (or no key) makes one global window per time window; run it with "
      "parallelism 1. At end of stream (watermark +infinity) every open window fires.\n\n"
      "A keyed tumbling or sliding window whose input is shuffled, and which is the only "
      "reader of its input's main output, runs in two phases, like "
      "the local/global aggregation of SQL engines (`pre_aggregate`, default `auto`): a "
      "local half fused with each upstream instance aggregates its rows per key and pane and "
      "emits each pane as one partial when its watermark passes the pane's end; the shuffle "
      "carries the partials to the window, which merges them and fires as usual. A partial "
      "costs more than a record at the window's end, where it is emitted, shuffled and merged "
      "with all the others, so with `auto` the local half starts by passing records "
      "through and pre-aggregates only while both hold: its input is backlogged (mostly full "
      "batches: the shuffle limits throughput) and keys repeat at least 32 times per pane "
      "(counted each pane; early in a pane, once its keys stop growing, from its records so "
      "far projected to the whole pane). A stream that keeps up is passed through, for the "
      "lowest latency "
      "at window ends. Results are the same either way (floating-point sums may "
      "differ in the last digits, as with any change of parallelism); lateness is judged by "
      "the window's watermark, per partial for pre-aggregated records.";
  s.params = {
      param::string_list("key").names_input_field(0).doc(
          "Fields that identify a series; empty: one global series."),
      param::object("window",
                    {
                        param::string("type").req().one_of({"tumbling", "sliding", "session"})
                            .doc("Window shape."),
                        param::duration("size").doc("Window length (tumbling, sliding)."),
                        param::duration("slide").doc("Distance between window starts (sliding)."),
                        param::duration("gap").doc("Inactivity that closes a session (session)."),
                    })
          .req()
          .doc("The window: `{type: tumbling, size: 1s}`, `{type: sliding, size: 1m, slide: "
               "10s}` or `{type: session, gap: 30s}`."),
      param::expression_map("aggregates").req().doc("Output field → `function(args)`."),
      param::duration("allowed_lateness").def("0s")
          .doc("How long after its end a window still accepts late records."),
      param::string("late").one_of({"drop", "route"}).def("drop")
          .doc("What to do with late records: count and drop them, or send them to the `late` "
               "port."),
      param::duration("emit_every")
          .doc("Emit running results of open windows this often (processing time), marked "
               "`final: false`."),
      param::string("pre_aggregate").one_of({"auto", "always", "never"}).def("auto")
          .doc("Two-phase aggregation of a keyed tumbling or sliding window whose input is "
               "shuffled (no `emit_every`, `late: drop`): `auto` aggregates each upstream "
               "instance's rows per key and pane before the shuffle while its input is "
               "backlogged and that cuts the records shuffled at least 32-fold, and passes "
               "records through otherwise; "
               "`always` always does; `never` shuffles every record. `pel lint --explain` "
               "shows the local half as `<name>/local`."),
  };
  s.example =
      "operators:\n"
      "  vwap:\n"
      "    type: window\n"
      "    input: trades\n"
      "    key: symbol\n"
      "    window: {type: tumbling, size: 1s}\n"
      "    aggregates:\n"
      "      vwap: vwap(price, qty)\n"
      "      volume: sum(qty)\n"
      "      trades: count()\n";
  s.ports = {"late"};
  return s;
}

core::operator_ptr make_window(const spec::config& cfg,
                               const std::vector<core::schema_ptr>& inputs) {
  const core::schema_ptr& in = inputs.at(0);
  window_options o;
  o.name = cfg.path();
  if (auto dot = o.name.rfind('.'); dot != std::string::npos) o.name = o.name.substr(dot + 1);
  // Unknown key fields are reported (each at its item) and left out, so a gathering config
  // goes on to the window and the aggregates.
  for (int c : find_fields(cfg, "key", cfg.get_string_list("key"), *in))
    o.key.push_back((*in)[c].name);

  spec::config w = cfg.child("window");
  std::string type = w.get_string("type");
  auto positive = [&](const char* k) {
    std::int64_t v = w.get_duration_ns(k);
    if (v <= 0) w.fail(k, std::string(k) + " must be positive");
    return v;
  };
  auto forbid = [&](const char* k) {
    if (w.has(k)) w.fail(k, std::string(k) + " does not apply to " + type + " windows");
  };
  if (type == "tumbling") {
    o.kind = window_kind::tumbling;
    if (!w.has("size")) w.fail("type", "a tumbling window needs `size`, e.g. {type: tumbling, size: 1s}");
    o.size_ns = positive("size");
    forbid("slide");
    forbid("gap");
  } else if (type == "sliding") {
    o.kind = window_kind::sliding;
    if (!w.has("size") || !w.has("slide"))
      w.fail("type", "a sliding window needs `size` and `slide`, e.g. {type: sliding, size: 1m, slide: 10s}");
    o.size_ns = positive("size");
    o.slide_ns = positive("slide");
    if (o.slide_ns > o.size_ns)
      w.fail("slide", "slide must not exceed size (records between windows would belong to none)");
    if (o.size_ns / std::gcd(o.size_ns, o.slide_ns) > 100000)
      w.fail("slide", "size / gcd(size, slide) is above 100000 panes; choose a slide that divides size");
    forbid("gap");
  } else {
    o.kind = window_kind::session;
    if (!w.has("gap")) w.fail("type", "a session window needs `gap`, e.g. {type: session, gap: 30s}");
    o.gap_ns = positive("gap");
    forbid("size");
    forbid("slide");
  }
  o.allowed_lateness_ns = cfg.get_duration_ns("allowed_lateness");
  if (o.allowed_lateness_ns < 0) cfg.fail("allowed_lateness", "allowed_lateness must not be negative");
  o.route_late = cfg.get_string("late") == "route";
  if (cfg.has("emit_every")) {
    o.emit_every_ns = cfg.get_duration_ns("emit_every");
    if (o.emit_every_ns <= 0) cfg.fail("emit_every", "emit_every must be positive");
  }
  const std::string pre = cfg.get_string("pre_aggregate");
  o.pre_aggregate = pre == "never"    ? pre_aggregation::never
                    : pre == "always" ? pre_aggregation::always
                                      : pre_aggregation::automatic;
  auto entries = cfg.get_expression_map("aggregates");
  if (entries.empty())
    cfg.fail("aggregates", "name at least one aggregate, e.g. `vwap: vwap(price, qty)`");
  aggregate_set aggs = aggregate_set::compile(cfg, entries, *in);
  try {
    return std::make_unique<window_operator>(std::move(o), std::move(aggs), in);
  } catch (const std::invalid_argument& e) {
    cfg.fail("aggregates", e.what());
  }
}

} // namespace

void register_window_operators(spec::registry& reg) { reg.add_operator(window_schema(), make_window); }

} // namespace pel::operators
