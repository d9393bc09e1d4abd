# pel_library(NAME SOURCES ... DEPS ...)
# Makes the static library target pel_<NAME> with the alias pel::<NAME>. Its public headers
# are in include/ beside the CMakeLists.txt that calls it (include/pel/<NAME>/...).
function(pel_library name)
  cmake_parse_arguments(arg "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(pel_${name} STATIC ${arg_SOURCES})
  add_library(pel::${name} ALIAS pel_${name})
  target_include_directories(pel_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(pel_${name} PUBLIC ${arg_DEPS} PRIVATE ${arg_PRIVATE_DEPS})
  target_compile_options(pel_${name} PRIVATE -Wall -Wextra)
endfunction()

# pel_test(NAME SOURCES ... DEPS ... [LABELS ...])
# One Catch2 executable; every TEST_CASE becomes a ctest test. A test whose name matches no
# TEST_CASE when run fails (`--warn NoTests`) instead of passing with nothing run: CTest
# splits a name at ';', so TEST_CASE names must not contain one.
function(pel_test name)
  cmake_parse_arguments(arg "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${arg_SOURCES})
  target_link_libraries(${name} PRIVATE pel_test_main ${arg_DEPS})
  target_compile_definitions(${name} PRIVATE
    PEL_SOURCE_DIR="${PROJECT_SOURCE_DIR}" PEL_BINARY_DIR="${PROJECT_BINARY_DIR}")
  catch_discover_tests(${name} EXTRA_ARGS --warn NoTests PROPERTIES TIMEOUT 300)
  if(arg_LABELS)
    # Set once the tests are discovered: catch_discover_tests' PROPERTIES would join several
    # labels into one.
    string(JOIN ";" labels ${arg_LABELS})
    file(WRITE ${CMAKE_CURRENT_BINARY_DIR}/${name}_labels.cmake
         "foreach(t IN LISTS ${name}_TESTS)\n"
         "  set_tests_properties(\"\${t}\" PROPERTIES LABELS \"${labels}\")\n"
         "endforeach()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${CMAKE_CURRENT_BINARY_DIR}/${name}_labels.cmake)
  endif()
endfunction()
