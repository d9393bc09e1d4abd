# The edge example end to end (labels mqtt, examples, e2e): examples/edge/edge.yaml between a
# real mosquitto and the embedded Kafka broker, fed by examples/edge/replay.yaml while the
# broker is down, checked with mosquitto_sub, kcat and curl (the buffer's /metrics).
find_program(PEL_MOSQUITTO_EDGE mosquitto PATHS /usr/sbin /usr/local/sbin)
find_program(PEL_MOSQUITTO_PUB_EDGE mosquitto_pub)
find_program(PEL_MOSQUITTO_SUB_EDGE mosquitto_sub)
find_program(PEL_KCAT_EDGE kcat)
find_program(PEL_CURL_EDGE curl)
# It runs `pel kafka-broker`, which a build without the embedded broker
# (PEL_WITH_KAFKA_BROKER OFF, as the edge profile has it) does not have.
if((NOT DEFINED PEL_WITH_KAFKA_BROKER OR PEL_WITH_KAFKA_BROKER)
   AND TARGET pel_connectors_mqtt AND TARGET pel_connectors_kafka AND TARGET pel_e2e_support
   AND PEL_MOSQUITTO_EDGE AND PEL_MOSQUITTO_PUB_EDGE AND PEL_MOSQUITTO_SUB_EDGE AND PEL_KCAT_EDGE
   AND PEL_CURL_EDGE)
  pel_test(examples_edge_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/examples_edge_tests.cpp
    DEPS pel_e2e_support
    LABELS "mqtt;examples;e2e")
  target_include_directories(examples_edge_tests PRIVATE ${PROJECT_SOURCE_DIR}/tests/unit/connectors)
  add_dependencies(examples_edge_tests pel)
endif()
