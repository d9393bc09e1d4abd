#pragma once
/// \file
/// Registration of the built-in operators.

#include "pel/spec/registry.hpp"

namespace pel::operators {

/// Adds every built-in operator type to `reg`.
void register_builtin_operators(spec::registry& reg);

/// filter, map, flat_map, union (operators/register_stateless.cpp).
void register_stateless_operators(spec::registry& reg);

/// Tumbling, sliding and session windows with aggregates (operators/register_windows.cpp).
void register_window_operators(spec::registry& reg);

/// Per-record stateful operators and joins: rolling, ema, dedupe, throttle, top_k, zscore,
/// change detection, window/interval/lookup joins (operators/register_stateful.cpp).
void register_stateful_operators(spec::registry& reg);

} // namespace pel::operators
