#include "pel/connectors/register.hpp"
#include "file_connectors.hpp"

namespace pel::connectors {

void register_file_connectors(spec::registry& reg) {
  spec::component_schema src;
  src.type = "file";
  src.kind = spec::component_kind::source;
  src.summary = "Reads a file of JSON lines, CSV or raw lines; optionally follows it as it grows.";
  src.description =
      "Reads with large buffered reads and decodes one record per line (CSV records may span "
      "lines inside quotes). Without `schema:` the schema is inferred from the first 100 "
      "lines when the pipeline is built: CSV column names from the header and types from the "
      "values, JSON field names in first-seen order. Lines that do not decode go to the "
      "dead-letter output with the reason and their position `path:line`; so does a record "
      "longer than `max_record_bytes`, with its first 1 KiB.\n\n"
      "The file must exist, be readable and not be a directory when the pipeline is built "
      "(`pel lint` checks it), unless `follow: true`, which waits for a missing file.\n\n"
      "Bounded by default: the stream ends at end of file, and progress is bytes read over "
      "the file size. With `follow: true` it never ends and behaves like `tail -F`.\n\n"
      "Parallelism: a file has one reader; with parallelism > 1 only instance 0 reads and "
      "the others end at once. Rows carry the processing time at read unless `event_time` "
      "names a field.\n\n"
      "Event time: one split (the file); the watermark is the largest time read less "
      "`event_time.max_out_of_orderness`, so rows further out of order than that are late. "
      "The watermark is sent at most every millisecond, after a poll's rows: rows read in the "
      "same poll are never late to one another. At end of file every window closes.\n\n"
      "Checkpoints: replayable (a regular file). A checkpoint records the byte offset and line "
      "number after the last row handed on; a job resumed from it reads on from exactly the "
      "next row (a CSV record spanning lines is read again from its first line). Resuming "
      "fails, saying so, when the file is now shorter than that offset (truncated or "
      "replaced) or gone.";
  src.params = file_source_params();
  src.example =
      "sources:\n"
      "  readings:\n"
      "    type: file\n"
      "    path: examples/sensors/data/machine_temperature_system_failure.csv\n"
      "    format: csv\n"
      "    schema: {timestamp: string, value: double}\n"
      "    event_time: {field: timestamp, format: datetime}\n";
  reg.add_source(std::move(src), [](const spec::config& cfg) -> core::source_ptr {
    return std::make_unique<file_source>(cfg);
  });

  spec::component_schema snk;
  snk.type = "file";
  snk.kind = spec::component_kind::sink;
  snk.summary = "Writes one JSON object, CSV row or raw line per record to a file.";
  snk.description =
      "Encodes rows into a buffer that is written in large writes; each flush (checkpoint, "
      "end of stream) writes the buffer and calls fdatasync. With parallelism > 1, instance "
      "i writes its own file, `path` with `-i` before the extension. Missing directories are "
      "created.\n\n"
      "Delivery: `at_least_once` (the default) writes `path` directly; after a failure, rows "
      "since the last checkpoint may be written again. `exactly_once` writes each checkpoint "
      "interval to a hidden part file and renames it into view when the checkpoint is "
      "complete (two-phase commit), as numbered files `<stem>.<n><ext>` beside `path` "
      "(`out/ticks.0000000001.csv`, ...; read them in name order); a job resumed from a "
      "checkpoint then shows every row exactly once.";
  snk.params = file_sink_params();
  snk.example =
      "sources:\n"
      "  ticks:\n"
      "    type: generator\n"
      "    count: 1000\n"
      "sinks:\n"
      "  archive:\n"
      "    type: file\n"
      "    input: ticks\n"
      "    path: out/ticks.csv\n"
      "    format: csv\n"
      "    mode: overwrite\n";
  reg.add_sink(std::move(snk), [](const spec::config& cfg) -> core::sink_ptr {
    return std::make_unique<file_sink>(cfg);
  });
}

}  // namespace pel::connectors
