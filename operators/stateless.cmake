# The stateless operator family: filter, map, flat_map, union.
pel_operator_family(stateless
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/register_stateless.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateless_common.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/filter.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/map.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/flat_map.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/union.cpp
  DEPS pel::expr
)
