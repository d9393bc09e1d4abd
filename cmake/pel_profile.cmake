# PEL_PROFILE chooses what is built (docs/edge.md has the figures):
#   full (default)  everything: every command, the embedded Kafka broker, tests, benchmarks.
#   edge            a `pel` for a small node next to the devices: every connector (mqtt, kafka
#                   client, file, stdio, generator), every operator, checkpoints and the HTTP
#                   API, but not the embedded Kafka broker (`pel kafka-broker`,
#                   `pel run --embedded-kafka`); no tests and no benchmarks unless asked for
#                   (-DPEL_BUILD_TESTS=ON); Release built for size (-Os, sections the linker
#                   drops when nothing uses them).
# Included before the options, whose defaults it changes: a value given with -D wins. Changing
# the profile of an existing build folder keeps the options already in its cache.
set(PEL_PROFILE full CACHE STRING "What to build: full or edge (see docs/edge.md)")
set_property(CACHE PEL_PROFILE PROPERTY STRINGS full edge)
if(NOT PEL_PROFILE MATCHES "^(full|edge)$")
  message(FATAL_ERROR "PEL_PROFILE must be full or edge, found '${PEL_PROFILE}'")
endif()

if(PEL_PROFILE STREQUAL "edge")
  if(NOT CMAKE_BUILD_TYPE)
    set(CMAKE_BUILD_TYPE MinSizeRel CACHE STRING "Build type" FORCE)
  endif()
  set(PEL_BUILD_TESTS OFF CACHE BOOL "Build the test suite")
  set(PEL_BUILD_BENCH OFF CACHE BOOL "Build the benchmarks")
  set(PEL_WITH_KAFKA_BROKER OFF CACHE BOOL "Build the embedded Kafka broker into pel")
  # Each function and object in a section of its own, so that the linker can leave out what
  # nothing calls (most of a static library's unused code).
  add_compile_options(-ffunction-sections -fdata-sections)
  add_link_options(-Wl,--gc-sections)
else()
  set(PEL_WITH_KAFKA_BROKER ON CACHE BOOL "Build the embedded Kafka broker into pel")
endif()
message(STATUS "PEL_PROFILE ${PEL_PROFILE}")
