# The windows operator family: keyed event-time windows and the aggregate library.
pel_operator_family(windows
  SOURCES
    ${CMAKE_CURRENT_SOURCE_DIR}/register_windows.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/aggregates.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/window.cpp
  DEPS pel::expr pel::state
)
