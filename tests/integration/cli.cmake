# End-to-end tests of the pel command line (label e2e): lint, run, exit codes, signals,
# dead letters and logging. They run the real binary, so they depend on the `pel` target.
add_library(pel_e2e_support STATIC
  ${CMAKE_CURRENT_LIST_DIR}/process.cpp
  ${CMAKE_CURRENT_LIST_DIR}/json_line.cpp)
target_include_directories(pel_e2e_support PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_include_directories(pel_e2e_support PUBLIC ${PROJECT_SOURCE_DIR}/tests/support)
target_compile_definitions(pel_e2e_support PRIVATE
  PEL_SOURCE_DIR="${PROJECT_SOURCE_DIR}" PEL_BINARY_DIR="${PROJECT_BINARY_DIR}")
target_compile_options(pel_e2e_support PRIVATE -Wall -Wextra)

pel_test(cli_e2e_tests
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/cli_lint_tests.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cli_run_tests.cpp
    ${CMAKE_CURRENT_LIST_DIR}/cli_checkpoint_tests.cpp
  DEPS pel_e2e_support
  LABELS e2e)
add_dependencies(cli_e2e_tests pel)
