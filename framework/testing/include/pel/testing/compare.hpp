#pragma once
/// \file
/// Expected records (YAML maps from a test file) against the records a run produced, and a
/// readable diff: which record (its index in the test file, its key fields and place), which
/// field, expected against actual, and the records missing or not expected.

#include "pel/core/schema.hpp"
#include "pel/core/value.hpp"
#include "pel/spec/node.hpp"
#include "pel/testing/test_file.hpp"

#include <string>
#include <vector>

namespace pel::testing {

/// Records captured from a sink, a component's output or one of its ports, in arrival order.
struct captured {
  core::schema_ptr schema;
  std::vector<std::vector<core::value>> rows;
};

/// True when the expected scalar `expected` matches `actual`:
/// - null (`null`, `~`, empty) matches null only;
/// - a plain number matches an int or double within `tolerance` (|a - b| <= tolerance *
///   max(1, |a|, |b|));
/// - plain `true`/`false` match a bool;
/// - a string matches a string of the same text, and a plain scalar matches a string holding
///   its text (`AAPL`, `007`);
/// - on a time field (`field::time_unit_ns`, such as `window_start`), an ISO 8601 text
///   matches the epoch number it stands for (`2024-01-02T14:30:00Z`).
bool value_matches(const spec::node& expected, const core::value& actual, std::int64_t time_unit_ns,
                   double tolerance);

/// The expected value as written (quoted when it was), for messages.
std::string show_expected(const spec::node& expected);
/// An expected record as a one-line flow map (`{symbol: AAPL, vwap: 185.1}`).
std::string show_expected_record(const spec::node& record);
/// An actual record as a JSON object.
std::string show_actual_record(const core::schema& schema, const std::vector<core::value>& row);

/// Compares the expected records of `ex` with `actual`. Each expected record checks the fields
/// it names (others are not compared). `key_fields` name the fields that identify a record in
/// messages and pair an expected record with the actual one it is closest to. Returns one
/// line per difference (empty when they match), each starting with `ex.target`; `file` names
/// the test file in the places it gives.
std::vector<std::string> compare(const expectation& ex, const captured& actual,
                                 const std::vector<std::string>& key_fields,
                                 const std::string& file);

}  // namespace pel::testing
