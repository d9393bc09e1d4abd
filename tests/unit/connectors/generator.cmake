pel_test(generator_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/generator_tests.cpp
  DEPS pel_connectors_generator
  LABELS connectors)
