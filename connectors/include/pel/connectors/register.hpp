#pragma once
/// \file
/// Registration of the built-in connectors.

#include "pel/spec/registry.hpp"

namespace pel::connectors {

/// Adds every connector compiled in to `reg`.
void register_builtin_connectors(spec::registry& reg);

void register_file_connectors(spec::registry& reg);       ///< connectors/file
void register_stdio_connectors(spec::registry& reg);      ///< connectors/stdio
void register_generator_connectors(spec::registry& reg);  ///< connectors/generator
void register_kafka_connectors(spec::registry& reg);      ///< connectors/kafka
void register_mqtt_connectors(spec::registry& reg);       ///< connectors/mqtt

} // namespace pel::connectors
