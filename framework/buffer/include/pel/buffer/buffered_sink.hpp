#pragma once
/// \file
/// A sink with a store-and-forward buffer in front (`buffer:` on any sink): rows are appended
/// to a `segment_queue` on disk, and a forwarder thread hands them to the wrapped sink in
/// order, removing them only once the sink's `flush` confirmed them.

#include "pel/core/sink.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace pel::buffer {

/// Settings of a buffered sink (the `buffer:` key).
struct sink_options {
  std::string dir;  ///< base directory; each instance uses `<dir>/<sink name>-<instance>`
  std::uint64_t max_size = 1ull << 30;
  bool drop_oldest = false;  ///< `when_full: drop_oldest`; else block
  bool fsync = true;
  std::uint32_t batch = 1000;  ///< most rows handed to the sink at a time
  std::chrono::milliseconds retry_min{100};
  std::chrono::milliseconds retry_max{10'000};
  std::chrono::milliseconds drain_timeout{30'000};
};

/// Wraps the sink `make_inner` builds. The wrapped sink is built, opened and used only on the
/// forwarder thread, and built again after it fails (its `abort` is called first).
///
/// Guarantee: at least once. A row goes to the sink after `write` appended it to disk (fsync
/// per `fsync`), and leaves the disk once a `flush` of the sink after it returned. A crash, a
/// `kill -9` or a failing sink re-sends what was not confirmed; nothing appended is lost,
/// unless `drop_oldest` drops it (counted and logged). `prepare` (a checkpoint barrier) is
/// acknowledged once the rows before it are on disk. The buffer is not rolled back by a
/// restore, so rows replayed from a checkpoint are appended again (duplicates).
///
/// Every failure of the wrapped sink (building, opening, writing, flushing) is retried with a
/// back-off from `retry_min` doubling to `retry_max`, and said in the log when it starts, every
/// 30 s while it lasts, and when it ends. `write` throws only when the forwarder met what
/// retrying cannot fix: records on disk that do not decode for the sink's schema.
core::sink_ptr make_buffered_sink(std::function<core::sink_ptr()> make_inner, sink_options opts);

} // namespace pel::buffer
