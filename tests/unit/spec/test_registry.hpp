#pragma once
/// \file
/// A small registry of made-up component types for the spec tests (no factories needed:
/// the spec never builds components).

#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"

#include <string>

namespace pel::spec::test {

/// Sources gen, lines; operators filter, map, union, window, join; sinks print, store.
const registry& test_registry();

/// Loads `text` as "p.yaml" with the test registry: "" when it loads clean, else every
/// diagnostic, one per line.
std::string errors_of(const std::string& text);

} // namespace pel::spec::test
