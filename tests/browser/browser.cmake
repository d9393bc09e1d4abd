# The live dashboard of `pel run --http` (framework/api/dashboard) in a real headless Chromium
# through puppeteer-core (label browser). run.sh installs puppeteer-core with npm into
# ${CMAKE_BINARY_DIR}/browser-test when it is missing, and skips (exit 77) when node, npm's
# package or Chromium are absent. Screenshots and pel's logs go to ${CMAKE_BINARY_DIR}/test-output.
#   trading: the main job (feed, live, show on the embedded Kafka broker);
#   large:   a generated 50-component pipeline, and the server going away and coming back;
#   firefox: that pipeline in Firefox (skipped unless the Debian package firefox-esr is there).
foreach(scenario trading large firefox)
  add_test(NAME dashboard_browser_${scenario}
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:pel> ${PROJECT_SOURCE_DIR}
            ${CMAKE_BINARY_DIR}/browser-test ${CMAKE_BINARY_DIR}/test-output ${scenario})
  set_tests_properties(dashboard_browser_${scenario} PROPERTIES
    LABELS browser SKIP_RETURN_CODE 77 TIMEOUT 300 RESOURCE_LOCK pel_browser)
endforeach()
