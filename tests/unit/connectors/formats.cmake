pel_test(formats_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/formats_tests.cpp
  DEPS pel_connectors_formats
  LABELS connectors)
