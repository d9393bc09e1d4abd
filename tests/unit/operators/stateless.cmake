# Tests of the stateless operator family (operators/stateless.cmake).
pel_test(stateless_operator_tests
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/stateless_filter_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateless_map_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateless_flat_map_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateless_union_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateless_examples_test.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateless_rescalable_test.cpp
  DEPS pel_operators_stateless pel::spec pel::expr
  LABELS operators)
target_include_directories(stateless_operator_tests PRIVATE ${PROJECT_SOURCE_DIR}/operators)
