# End-to-end tests of the examples (label e2e): `pel run` on examples/ and on variants of
# them, compared with independent computations in plain C++ (the generator is linked to
# produce the same input records).
pel_test(examples_e2e_tests
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/examples_trading_tests.cpp
    ${CMAKE_CURRENT_LIST_DIR}/examples_sensors_tests.cpp
  DEPS pel_e2e_support pel_connectors_generator
  LABELS e2e)
add_dependencies(examples_e2e_tests pel)
