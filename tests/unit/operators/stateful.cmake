# Tests of the stateful operator family (operators/stateful.cmake).
pel_test(stateful_operator_tests
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/stateful_per_record_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateful_join_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateful_parallel_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateful_examples_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateful_aggregates_test.cpp
  DEPS pel_operators_stateful pel::spec pel::expr
  LABELS operators)
target_include_directories(stateful_operator_tests PRIVATE ${PROJECT_SOURCE_DIR}/operators)
