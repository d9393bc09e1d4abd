#include "pel/connectors/register.hpp"
#include "pel/connectors/generator.hpp"

namespace pel::connectors {

void register_generator_connectors(spec::registry& reg) {
  spec::component_schema s;
  s.type = "generator";
  s.kind = spec::component_kind::source;
  s.summary = "Synthetic market trades, quotes or sensor readings, reproducible from a seed.";
  s.description =
      "Generates records with realistic shapes for trying pipelines and for benchmarks. "
      "Prices follow a geometric random walk per symbol (annual volatility 15-60%, spreads of "
      "1-5 bps); the mid price of a symbol is a function of the seed, the symbol and the event "
      "time only, so a `trades` and a `quotes` generator with the same `seed`, `symbols` and "
      "`start_time` agree (a trade's price lies between the quote's bid and ask at the same "
      "millisecond). Sensor readings follow a daily cycle per device with drift and noise; "
      "`bad_records` injects null, NaN, \"ERR\" and absurd temperatures.\n\n"
      "`ts` is the event time in epoch milliseconds and each row's event time equals it, so "
      "`event_time: {field: ts, format: epoch_ms}` is optional. Event time advances by "
      "1/`event_rate` per record, in clusters when `burstiness` > 0; `out_of_order` moves a "
      "fraction of timestamps back by at most `max_delay`.\n\n"
      "Parallelism: instance i of p produces the records whose global index n has "
      "n mod p = i, so the same seed gives the same set of records at any parallelism and "
      "`trade_id` (n + 1) is unique. `rate` paces each instance on the wall clock without "
      "blocking. With `count` or `duration` the stream ends; otherwise it runs until the "
      "pipeline stops.\n\n"
      "Event time: each instance is one split; its watermark is the largest `ts` it produced "
      "less `event_time.max_out_of_orderness`, so with `out_of_order` set that bound must be at "
      "least `max_delay` for no record to be late.\n\n"
      "Checkpoints: replayable. A checkpoint records each instance's next global index; a job "
      "resumed from it produces exactly the records (values and event times) an uninterrupted "
      "run would have, and `rate` pacing starts again at the resume instead of catching up. "
      "Resuming needs the same parallelism, `seed` and `start_time`.";
  s.params = generator_params();
  s.example =
      "sources:\n"
      "  trades:\n"
      "    type: generator\n"
      "    profile: trades\n"
      "    symbols: 20\n"
      "    rate: 5000\n"
      "    out_of_order: 0.01\n"
      "    max_delay: 200ms\n"
      "    event_time: {field: ts, format: epoch_ms, max_out_of_orderness: 200ms}\n";
  reg.add_source(std::move(s), [](const spec::config& cfg) -> core::source_ptr {
    return make_generator(read_generator_options(cfg));
  });
}

}  // namespace pel::connectors
