#include "pel/connectors/register.hpp"

namespace pel::connectors {

void register_builtin_connectors(spec::registry& reg) {
#ifdef PEL_HAVE_FILE
  register_file_connectors(reg);
#endif
#ifdef PEL_HAVE_STDIO
  register_stdio_connectors(reg);
#endif
#ifdef PEL_HAVE_GENERATOR
  register_generator_connectors(reg);
#endif
#ifdef PEL_HAVE_KAFKA
  register_kafka_connectors(reg);
#endif
#ifdef PEL_HAVE_MQTT
  register_mqtt_connectors(reg);
#endif
  (void)reg;
}

} // namespace pel::connectors
