# Tests of the windows family: the aggregate library and the window operator.
pel_test(windows_operator_tests
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/windows_aggregate_tests.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/windows_aggregate_values_tests.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/windows_operator_tests.cpp
  DEPS pel_operators_windows pel::state
  LABELS unit
)
target_include_directories(windows_operator_tests PRIVATE ${PROJECT_SOURCE_DIR}/operators)
