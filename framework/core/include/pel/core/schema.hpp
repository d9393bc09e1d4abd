#pragma once
/// \file
/// Field names and declared types of a stream. Every record of a stream shares one schema.

#include "pel/core/value.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pel::core {

/// One named field. `type` is what the producer declares; `std::nullopt` means "any"
/// (values are dynamically typed, so a declared type is a promise checked by lint, not a
/// storage format).
struct field {
  std::string name;
  std::optional<value_type> type;
  /// Non-zero: the field holds an event time counted from the Unix epoch in units of this
  /// many ns (1'000'000: epoch milliseconds, as `window_start`). Tables show it as ISO-8601.
  /// Not part of schema equality.
  std::int64_t time_unit_ns = 0;
};

/// The ordered fields of a stream. Immutable once built; shared by pointer.
class schema {
public:
  schema() = default;
  explicit schema(std::vector<field> fields) : fields_(std::move(fields)) {}

  const std::vector<field>& fields() const noexcept { return fields_; }
  std::size_t size() const noexcept { return fields_.size(); }
  const field& operator[](std::size_t i) const { return fields_[i]; }

  /// Position of the field called `name`, or -1.
  int index_of(std::string_view name) const noexcept;

  /// Appends a field and returns its position. Use only while building.
  int add(std::string name, std::optional<value_type> type = std::nullopt);
  /// Marks field `i` as an event time in epoch units of `unit_ns` (see `field::time_unit_ns`).
  /// Use only while building.
  void set_time_unit(std::size_t i, std::int64_t unit_ns) { fields_.at(i).time_unit_ns = unit_ns; }

  /// Field names joined by ", " (for error messages).
  std::string names() const;

  bool operator==(const schema& other) const noexcept;

private:
  std::vector<field> fields_;
};

using schema_ptr = std::shared_ptr<const schema>;

/// The schema of dead-letter records, the same for every operator and source:
/// `reason`, `operator`, `source`, `position`, `record` (the failed record as JSON text),
/// `time` (event time of the failed record, epoch milliseconds like every time field PEL writes).
const schema_ptr& dead_letter_schema();

/// A dead letter's `time` from the record's event time `ns`: epoch milliseconds, floored.
inline std::int64_t dead_letter_time(std::int64_t ns) {
  return ns >= 0 ? ns / 1'000'000 : -((-(ns + 1)) / 1'000'000) - 1;
}

} // namespace pel::core
