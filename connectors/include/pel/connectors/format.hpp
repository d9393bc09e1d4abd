#pragma once
/// \file
/// Record formats shared by the file, stdio and Kafka connectors: JSON (one object per line
/// or message), CSV and raw bytes. Implemented in connectors/formats.

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

} // namespace pel::connectors
