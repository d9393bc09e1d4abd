pel_test(stdio_connector_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/stdio_connector_tests.cpp
  DEPS pel_connectors_stdio pel_connectors pel::plan
  LABELS connectors)
target_include_directories(stdio_connector_tests PRIVATE ${PROJECT_SOURCE_DIR}/connectors/stdio)
