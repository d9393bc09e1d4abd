# The stateful operator family: per-record keyed operators and joins.
pel_operator_family(stateful
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/register_stateful.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/stateful_common.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/rolling.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/ema.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/dedupe.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/throttle.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/top_k.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/zscore.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/change_detect.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/window_join.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/interval_join.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/lookup_join.cpp
  DEPS pel::expr pel::state pel_operators_windows
)
