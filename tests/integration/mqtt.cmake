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

# The edge node's guarantees end to end (labels mqtt, e2e): an uplink outage at 5,000
# messages/s, kill -9 with a full buffer, drop_oldest, a mosquitto restart under QoS 1 and 2,
# bad input. Also needs kcat and curl, and libmosquitto for the paced publisher.
find_program(PEL_KCAT_E2E kcat)
find_program(PEL_CURL_E2E curl)
find_package(PkgConfig REQUIRED)
pkg_check_modules(PEL_E2E_MOSQUITTO QUIET IMPORTED_TARGET libmosquitto)
if(TARGET pel_connectors_mqtt AND TARGET pel_connectors_kafka AND TARGET pel_e2e_support
   AND TARGET PkgConfig::PEL_E2E_MOSQUITTO AND PEL_MOSQUITTO_E2E AND PEL_MOSQUITTO_PUB_E2E
   AND PEL_MOSQUITTO_SUB_E2E AND PEL_KCAT_E2E AND PEL_CURL_E2E)
  pel_test(edge_e2e_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/edge_e2e_tests.cpp
    DEPS pel_e2e_support PkgConfig::PEL_E2E_MOSQUITTO Threads::Threads
    LABELS "mqtt;e2e")
  target_include_directories(edge_e2e_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit/connectors)
  add_dependencies(edge_e2e_tests pel)
endif()
