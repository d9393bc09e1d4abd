# `pel test`: its end-to-end tests (label e2e), and every example's unit tests written in YAML,
# each a ctest test running `pel test FILE` from the repository root (label examples).
pel_test(pel_test_e2e_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/pel_test_e2e_tests.cpp
  DEPS pel_e2e_support
  LABELS e2e)
add_dependencies(pel_test_e2e_tests pel)

# pel_test_yaml(FILE): ctest runs `pel test FILE` (relative to the repository root, where the
# examples' pipelines find their data) as the test `pel_test.<FILE without examples/ and
# .test.yaml>`, label examples. It passes when every case of the file passes.
function(pel_test_yaml file)
  string(REGEX REPLACE "^examples/" "" name "${file}")
  string(REGEX REPLACE "\\.test\\.yaml$" "" name "${name}")
  string(REPLACE "/" "." name "${name}")
  add_test(NAME pel_test.${name} COMMAND pel test ${file} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(pel_test.${name} PROPERTIES LABELS examples TIMEOUT 300)
endfunction()

foreach(file
    examples/trading/tests/live.test.yaml
    examples/sensors/tests/air_quality.test.yaml
    examples/sensors/tests/device_averages.test.yaml
    examples/sensors/tests/nab_anomalies.test.yaml
    examples/autoscaling/tests/load_steps.test.yaml)
  pel_test_yaml(${file})
endforeach()
# The edge example has mqtt and kafka components (mqtt is built only with libmosquitto).
if(TARGET pel_connectors_mqtt AND TARGET pel_connectors_kafka)
  pel_test_yaml(examples/edge/tests/edge.test.yaml)
  pel_test_yaml(examples/edge/tests/replay.test.yaml)
endif()
