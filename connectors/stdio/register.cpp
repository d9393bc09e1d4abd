#include "pel/connectors/register.hpp"
#include "stdio_connectors.hpp"

namespace pel::connectors {

void register_stdio_connectors(spec::registry& reg) {
  spec::component_schema in;
  in.type = "stdin";
  in.kind = spec::component_kind::source;
  in.summary = "Reads JSON lines, CSV or raw lines from standard input.";
  in.description =
      "Reads standard input until it closes, then ends the stream. Lines are handed on as "
      "soon as they arrive, so it works for typed-in or piped live data. JSON and CSV need a "
      "declared `schema:`. Malformed lines, and lines longer than `max_record_bytes` (with their "
      "first 1 KiB), go to the dead-letter output with the position `stdin:line`. It blocks while waiting for input, so it gets a thread of its own; with "
      "parallelism > 1 only instance 0 reads.\n\n"
      "Event time: one split; the watermark is the largest time read less "
      "`event_time.max_out_of_orderness`. With `event_time.idle_timeout` set, input that "
      "pauses for that long stops holding the watermark back until lines come again.\n\n"
      "Checkpoints: standard input cannot be read again, so after a restart the lines read "
      "since the last checkpoint are not replayed (the run says so when it starts).";
  in.params = stdin_params();
  in.example =
      "sources:\n"
      "  lines:\n"
      "    type: stdin\n"
      "    format: json\n"
      "    schema: {symbol: string, price: double, qty: int}\n";
  reg.add_source(std::move(in), [](const spec::config& cfg) -> core::source_ptr {
    return std::make_unique<stdin_source>(cfg);
  });

  spec::component_schema out;
  out.type = "stdout";
  out.kind = spec::component_kind::sink;
  out.summary = "Prints records to standard output: JSON lines, CSV, raw or an aligned table.";
  out.description =
      "Writes every batch as it arrives and flushes it, so results show live. `pretty: true` "
      "prints an aligned table for people. At-least-once: after a restart from a checkpoint, "
      "the records printed since that checkpoint are printed again. Meant for trying "
      "pipelines and for piping into other tools.";
  out.params = stdout_params();
  out.example =
      "sources:\n"
      "  ticks:\n"
      "    type: generator\n"
      "    count: 20\n"
      "sinks:\n"
      "  show:\n"
      "    type: stdout\n"
      "    input: ticks\n"
      "    pretty: true\n";
  reg.add_sink(std::move(out), [](const spec::config& cfg) -> core::sink_ptr {
    return std::make_unique<stdout_sink>(cfg);
  });

  spec::component_schema dis;
  dis.type = "discard";
  dis.kind = spec::component_kind::sink;
  dis.summary = "Drops every record, counting them (benchmarks, dry runs).";
  dis.description = "Accepts any input and keeps nothing but the count of rows it received.";
  dis.example =
      "sources:\n"
      "  ticks:\n"
      "    type: generator\n"
      "    count: 1000000\n"
      "    preload: true\n"
      "sinks:\n"
      "  sink:\n"
      "    type: discard\n"
      "    input: ticks\n";
  reg.add_sink(std::move(dis), [](const spec::config&) -> core::sink_ptr {
    return std::make_unique<discard_sink>();
  });
}

}  // namespace pel::connectors
