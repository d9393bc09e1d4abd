pel_test(file_connector_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/file_connector_tests.cpp
  DEPS pel_connectors_file
  LABELS connectors)
target_include_directories(file_connector_tests PRIVATE ${PROJECT_SOURCE_DIR}/connectors/file)
