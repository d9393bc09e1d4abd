# MQTT connector tests: the source and sink driven directly against a real mosquitto broker
# started by the test, with mosquitto_pub / mosquitto_sub (clients nobody here wrote).
find_program(PEL_MOSQUITTO mosquitto PATHS /usr/sbin /usr/local/sbin)
find_program(PEL_MOSQUITTO_PUB mosquitto_pub)
find_program(PEL_MOSQUITTO_SUB mosquitto_sub)
if(TARGET pel_connectors_mqtt AND PEL_MOSQUITTO AND PEL_MOSQUITTO_PUB AND PEL_MOSQUITTO_SUB)
  pel_test(connectors_mqtt_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/mqtt_connector_tests.cpp
    DEPS pel_connectors_mqtt
    LABELS mqtt)
  target_include_directories(connectors_mqtt_tests PRIVATE ${PROJECT_SOURCE_DIR}/connectors/mqtt)
  target_compile_definitions(connectors_mqtt_tests PRIVATE PEL_MOSQUITTO_BIN="${PEL_MOSQUITTO}")
endif()
