# End-to-end MQTT tests (labels mqtt, e2e): the pel binary between a real mosquitto broker
# and mosquitto_pub / mosquitto_sub.
find_program(PEL_MOSQUITTO_E2E mosquitto PATHS /usr/sbin /usr/local/sbin)
find_program(PEL_MOSQUITTO_PUB_E2E mosquitto_pub)
find_program(PEL_MOSQUITTO_SUB_E2E mosquitto_sub)
if(TARGET pel_connectors_mqtt AND TARGET pel_e2e_support AND PEL_MOSQUITTO_E2E
   AND PEL_MOSQUITTO_PUB_E2E AND PEL_MOSQUITTO_SUB_E2E)
  pel_test(mqtt_e2e_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_e2e_tests.cpp
    DEPS pel_e2e_support
    LABELS "mqtt;e2e")
  target_include_directories(mqtt_e2e_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit/connectors)
  add_dependencies(mqtt_e2e_tests pel)
endif()
