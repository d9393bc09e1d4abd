#pragma once
/// \file
/// The dashboard's files, built into the binary: the table is generated at build time from
/// `framework/api/dashboard/` by `cmake/embed_files.cmake`.

#include <cstddef>

namespace pel::api::detail {

/// One embedded file: its path under the dashboard folder (`index.html`, `js/app.js`) and bytes.
struct embedded_file {
  const char* name;
  const unsigned char* data;
  std::size_t size;
};

extern const embedded_file dashboard_files[];
extern const std::size_t dashboard_file_count;

}  // namespace pel::api::detail
