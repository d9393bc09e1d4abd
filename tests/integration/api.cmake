# End-to-end tests of the HTTP API (label http): `pel run --http` on a free loopback port,
# read with cpp-httplib's client (Debian's shared build, hence pkg-config) and simdjson.
pkg_check_modules(PEL_E2E_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
pel_test(api_e2e_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/api_e2e_tests.cpp
  DEPS pel_e2e_support PkgConfig::PEL_E2E_HTTPLIB simdjson::simdjson
  LABELS "http;e2e")
add_dependencies(api_e2e_tests pel)
# Kafka partitions in /sources: the embedded broker and the trading example's feed.
if(TARGET pel_connectors_kafka)
  pel_test(api_kafka_e2e_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/api_kafka_e2e_tests.cpp
    DEPS pel_e2e_support PkgConfig::PEL_E2E_HTTPLIB simdjson::simdjson
    LABELS "http;kafka;e2e")
  add_dependencies(api_kafka_e2e_tests pel)
endif()
