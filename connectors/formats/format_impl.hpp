#pragma once
/// \file
/// Internals shared by the format implementations (not part of the public interface).

#include "pel/connectors/format.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pel::connectors::detail {

/// What schema inference has seen of one field so far.
enum class type_guess { unseen, boolean, integer, number, string, mixed };

/// Combines two observations: int with double gives double, other differences give mixed.
type_guess merge(type_guess a, type_guess b) noexcept;

/// Whole-text number and bool parsers (surrounding blanks and a leading '+' allowed).
bool parse_int(std::string_view t, std::int64_t& out) noexcept;
bool parse_double(std::string_view t, double& out) noexcept;
/// Like `parse_double`, but only for texts written as numbers (with a digit): `nan`, `inf`
/// and `infinity` are words here. For values without a declared type and for inference, so
/// that a name such as "Nan" stays a string; a declared double still reads `NaN` and `inf`,
/// which the CSV encoder writes.
bool parse_number_text(std::string_view t, double& out) noexcept;
/// `true` / `false`, any case.
bool parse_bool(std::string_view t, bool& out) noexcept;

/// Appends `v` as plain text (null: nothing; doubles shortest round-trip; NaN as `NaN`).
void append_text(std::string& out, const core::value& v);

/// `"text"` shortened to 40 characters, for error messages.
std::string describe(std::string_view text);

std::unique_ptr<decoder> make_json_decoder(core::schema_ptr schema);
std::unique_ptr<encoder> make_json_encoder(const core::schema_ptr& schema);
std::unique_ptr<decoder> make_csv_decoder(csv_options opt, core::schema_ptr schema);
std::unique_ptr<encoder> make_csv_encoder(csv_options opt, const core::schema_ptr& schema);

/// JSON part of `infer_schema`; sets `too_many` (and returns nullptr) past
/// `max_inferred_fields` fields.
core::schema_ptr infer_json(const std::vector<std::string>& samples, bool& too_many);

}  // namespace pel::connectors::detail
