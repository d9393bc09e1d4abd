# Kafka connector tests: the source and sink driven directly against the embedded mock
# cluster, with kcat (a client nobody here wrote) on the other side.
find_program(PEL_KCAT kcat)
if(TARGET pel_connectors_kafka AND PEL_KCAT)
  pel_test(connectors_kafka_tests
    SOURCES
      ${CMAKE_CURRENT_LIST_DIR}/kafka_broker_tests.cpp
      ${CMAKE_CURRENT_LIST_DIR}/kafka_source_tests.cpp
      ${CMAKE_CURRENT_LIST_DIR}/kafka_sink_tests.cpp
      ${CMAKE_CURRENT_LIST_DIR}/kafka_fault_tests.cpp
      ${CMAKE_CURRENT_LIST_DIR}/kafka_checkpoint_tests.cpp
    DEPS pel_connectors_kafka
    LABELS kafka)
  target_include_directories(connectors_kafka_tests PRIVATE ${PROJECT_SOURCE_DIR}/connectors/kafka)
endif()
