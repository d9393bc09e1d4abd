#pragma once
/// \file
/// Record formats shared by the file, stdio and Kafka connectors: JSON (one object per line
/// or message), CSV and raw bytes. Implemented in connectors/formats.

#include "pel/core/operator.hpp"
#include "pel/core/schema.hpp"
#include "pel/core/value.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pel::connectors {

/// Turns one message (a JSON object, a CSV line, raw bytes) into a row of its schema.
/// One decoder per source instance; not thread-safe.
class decoder {
public:
  virtual ~decoder() = default;
  virtual const core::schema_ptr& schema() const = 0;
  /// Fills `row` (schema-width values, all null on entry). False when the message is
  /// malformed: `error` then says why, for the dead-letter record.
  virtual bool decode(std::string_view message, core::value* row, std::string& error) = 0;
};

/// Turns one row into a message (without a trailing newline). Not thread-safe.
class encoder {
public:
  virtual ~encoder() = default;
  virtual void encode(const core::value* row, std::string& out) = 0;
  /// A header line to write first (CSV with header), empty if none.
  virtual std::string header() const { return {}; }
};

/// The format parameters a connector adds to its schema: `format`, `schema`, `csv`.
/// `for_source` adds the decoding options, otherwise the encoding ones.
std::vector<spec::param> format_params(bool for_source);

/// The schema declared under `schema:` (a map of field: type, in order), or nullptr.
core::schema_ptr declared_schema(const spec::config& cfg);

/// A decoder for the config's `format`. `schema` is the declared or inferred schema (raw
/// format ignores it and uses the single field `value`).
std::unique_ptr<decoder> make_decoder(const spec::config& cfg, core::schema_ptr schema);

/// An encoder for the config's `format` and the rows' schema.
std::unique_ptr<encoder> make_encoder(const spec::config& cfg, const core::schema_ptr& input);

// ---------------------------------------------------------------------------------------------
// Additions used by the connectors that read lines or sample messages.

/// How many rows (lines, messages) schema inference looks at.
constexpr std::size_t inference_sample_rows = 100;

/// The most fields schema inference gives a schema; input with more (a header of a million
/// columns, objects with ever new keys) needs a declared `schema:`.
constexpr std::size_t max_inferred_fields = 4096;

/// The schema of the raw format: one string field `value`.
const core::schema_ptr& raw_schema();

/// The config's `format` value: "json", "csv" or "raw".
std::string format_name(const spec::config& cfg);

/// The CSV dialect read from the config's `csv:` block.
struct csv_options {
  char delimiter = ',';
  char quote = '"';
  bool header = true;  ///< the first line names the columns (sources) / write one (sinks)
  std::vector<std::string> null_values{"", "NA", "null"};  ///< unquoted texts read as null
};

/// Reads the `csv:` block of `cfg` (defaults when absent). Throws `spec::config_error` on a
/// delimiter or quote that is not one character.
csv_options read_csv_options(const spec::config& cfg);

/// One field of a CSV record as split by `split_csv`.
struct csv_field {
  std::string_view text;  ///< unquoted and unescaped content
  bool quoted = false;    ///< the field was written between quotes
};

/// Splits one CSV record (RFC 4180: quoted fields may hold delimiters, doubled quotes and line
/// breaks). Views point into `record` or into `scratch`, which must outlive their use and is
/// reused between calls. False when a quoted field is not closed or text follows a closing
/// quote; `error` says which.
bool split_csv(std::string_view record, const csv_options& opt, std::vector<csv_field>& fields,
               std::string& scratch, std::string& error);

/// True when `text` ends inside a quoted field, i.e. the record continues on the next line.
/// `open`: `text` continues a record that was inside a quoted field. As RFC 4180 (and
/// `split_csv`) reads it, only a quote at the start of a field opens one; a quote inside an
/// unquoted field (`6" screen`) is text and does not join the next line.
bool csv_open_quote(std::string_view text, const csv_options& opt, bool open = false) noexcept;

/// Infers a schema from sample messages (at most `inference_sample_rows` are used).
/// CSV: names from the header line (the first sample when `csv.header` is true, otherwise
/// `c1`, `c2`, ...), types from the values: int when every non-null value is integral,
/// double when every one is a number, bool when every one is true/false, else string.
/// JSON: field names in first-seen order; int widened to double when mixed; fields whose
/// values have different types (or are always null) get no declared type.
/// Raw: `raw_schema()`. Returns nullptr when there is nothing to infer from (no samples, or
/// no JSON object among them). Throws `spec::config_error` (at `schema`) when the samples
/// have more than `max_inferred_fields` fields.
core::schema_ptr infer_schema(const spec::config& cfg, const std::vector<std::string>& samples);

/// Appends a dead-letter record whose `record` field is the undecodable message text itself
/// (rather than a row): used by sources for malformed input. `component` fills both the
/// `operator` and `source` fields; `position` says where the message was (`path:line`,
/// `topic/partition@offset`).
void dead_letter_message(core::outputs& out, std::string_view component, std::string_view reason,
                         std::string_view message, std::int64_t time, std::string_view position);

}  // namespace pel::connectors
