# Observing a running `pel run --http` with the real clients (label http, e2e): `pel top` in
# tmux, `pel tap`, and a real Prometheus server scraping /metrics (promtool lints it). A test
# whose program (tmux, prometheus, promtool) is not installed exits 77: skipped.
if(TARGET pel_e2e_support)
  pkg_check_modules(PEL_OBSERVE_HTTPLIB REQUIRED IMPORTED_TARGET cpp-httplib)
  pel_test(observe_e2e_tests
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/observe_e2e_tests.cpp
    DEPS pel_e2e_support PkgConfig::PEL_OBSERVE_HTTPLIB simdjson::simdjson
    LABELS "http;e2e")
  add_dependencies(observe_e2e_tests pel)
  # Set once the tests are discovered, like their labels (see pel_test).
  file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/observe_e2e_tests_skip.cmake
       "foreach(t IN LISTS observe_e2e_tests_TESTS)\n"
       "  set_tests_properties(\"\${t}\" PROPERTIES SKIP_RETURN_CODE 77)\n"
       "endforeach()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES
               ${CMAKE_CURRENT_BINARY_DIR}/observe_e2e_tests_skip.cmake)
endif()
