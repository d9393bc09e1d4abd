# End-to-end Kafka tests (labels kafka, e2e): the pel binary with the embedded broker and kcat;
# two `pel run` processes sharing a consumer group.
find_program(PEL_KCAT_E2E kcat)
if(TARGET pel_connectors_kafka AND TARGET pel_e2e_support AND PEL_KCAT_E2E)
  pel_test(kafka_e2e_tests
    SOURCES
      ${CMAKE_CURRENT_LIST_DIR}/kafka_e2e_tests.cpp
      ${CMAKE_CURRENT_LIST_DIR}/kafka_group_e2e_tests.cpp
      ${CMAKE_CURRENT_LIST_DIR}/kafka_event_time_e2e_tests.cpp
    DEPS pel_e2e_support pel_connectors_kafka
    LABELS "kafka;e2e")
  if(TARGET pel)
    add_dependencies(kafka_e2e_tests pel)
  endif()
  # Exactly-once under faults: --chaos crashes, kill -9 and SIGTERM loops.
  pel_test(exactly_once_e2e_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/exactly_once_e2e_tests.cpp
    DEPS pel_e2e_support
    LABELS "kafka;e2e;chaos")
  if(TARGET pel)
    add_dependencies(exactly_once_e2e_tests pel)
  endif()
endif()
