#pragma once
/// \file
/// The keys the spec itself owns: the `pipeline:` block and the keys every component takes
/// besides its type's own (`type`, `description`, `parallelism`, `input`, `partition`,
/// `event_time`). One table each, used both to validate files and to write
/// docs/reference/pipeline.md.

#include "pel/spec/param.hpp"

#include <vector>

namespace pel::spec {

/// Parameters of the `pipeline:` block (fills `pipeline_settings`).
const std::vector<param>& pipeline_params();

/// The common keys a component of kind `k` takes, in documentation order.
const std::vector<param>& common_params(component_kind k);

} // namespace pel::spec
