#pragma once
/// \file
/// The reference documentation (docs/reference/), generated from the same schemas that
/// validate pipeline files. `pel docs --out docs/reference` writes these pages.

#include <string>
#include <vector>

namespace pel::spec {

class registry;

/// One generated markdown page.
struct reference_page {
  std::string file;      ///< file name, e.g. "operators.md"
  std::string markdown;  ///< the whole page
};

/// The reference for a registry: pipeline.md (the `pipeline:` block and the keys every
/// component takes), sources.md, operators.md and sinks.md (one section per type: summary,
/// description, parameter table with nested fields, inputs and ports, example). The output
/// depends only on the registry's contents, so it can be committed and diffed.
std::vector<reference_page> reference_pages(const registry& reg);

} // namespace pel::spec
