#pragma once
/// \file
/// "Did you mean ...?" for misspelt keys, types, names and values. Used by the spec's own
/// validation; other components may use it for their own located errors.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pel::spec {

/// Damerau-Levenshtein distance (optimal string alignment: insertions, deletions,
/// substitutions and transpositions of adjacent characters), comparing ASCII letters without
/// regard to case.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` when it is close enough to be a likely typo (at most 1 edit
/// for words of up to 4 characters, 2 up to 8, 3 beyond), or nothing. Ties go to the earlier
/// candidate. Words or candidates longer than 64 characters are never suggested.
std::optional<std::string> suggest(std::string_view word, const std::vector<std::string>& candidates);

/// "; did you mean 'X'?" when `suggest` finds one, else "". Ready to append to a message.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

/// The items joined with `separator`, e.g. "a, b, c".
std::string join(const std::vector<std::string>& items, std::string_view separator = ", ");

} // namespace pel::spec
