#pragma once
/// \file
/// A durable, bounded FIFO of records kept in a directory of checksummed segment files: the
/// store-and-forward buffer a sink keeps while its destination is unreachable.
///
/// Layout of `dir`:
/// - `seg-<first offset, 20 digits>.log`: append-only segments. Each record is framed as
///   `u32 length | u32 crc32(length bytes + payload) | payload` (little-endian, zlib's CRC-32).
///   A segment is closed (fsynced) once the next record would take it past `segment_size`.
/// - `position`: the acknowledged offset (`"PELQPOS1" | u64 offset | u32 crc32`), replaced
///   atomically (temporary file, fsync, rename, fsync of the directory).
///
/// Offsets number records from 0 over the queue's whole life. A consumer `peek`s from the
/// acknowledged offset and `ack`s what it has safely handed on: nothing leaves the queue
/// before that, so a crash re-delivers (at least once), never loses. Segments whose records
/// are all acknowledged are deleted.

#include "pel/core/value.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pel::buffer {

/// What `append` does when the records would take the queue past `max_size`.
enum class when_full {
  block,        ///< wait (up to the call's timeout) for acknowledgements to free space
  drop_oldest,  ///< delete the oldest segment(s), acknowledged or not, counting the records
};

/// When appended records reach the disk.
enum class sync_policy {
  /// `fdatasync` of the segment before each `append` returns (and of the position file at
  /// each `ack`): an appended record survives a power loss. Costs one disk flush per call,
  /// typically 0.1 to a few ms, so batch records into one `append`.
  every_append,
  /// Written with `write(2)` only: survives `kill -9` of the process (the kernel holds the
  /// data), not a power loss or kernel crash.
  none,
};

struct options {
  std::string dir;
  std::uint64_t max_size = 1ull << 30;      ///< bound on the segment bytes on disk
  std::uint64_t segment_size = 64ull << 20; ///< a segment is closed past this size; must be ≤ max_size / 2
  buffer::when_full when_full = when_full::block;
  sync_policy sync = sync_policy::every_append;
};

/// Thrown when the directory is locked by another open queue (`owner`: the pid written in the
/// lock file, 0 if unknown). An owner that is this process is an earlier queue on the same
/// directory not destroyed yet (e.g. a restarted sink instance whose predecessor is closing).
class locked_error : public std::runtime_error {
public:
  locked_error(const std::string& what, long owner) : std::runtime_error(what), owner_(owner) {}
  long owner() const noexcept { return owner_; }

private:
  long owner_;
};

/// Result of `append`. I/O failures (disk full) throw `std::system_error` instead; the
/// segment is cut back to its last whole record, though a batch that spans segments may
/// have had its first part appended.
enum class append_status {
  ok,
  full,       ///< `when_full::block` and no room came within the timeout: nothing appended
  too_large,  ///< a record is longer than a segment, or the batch is longer than `max_size`
};

/// Monotonic counters since `open` plus the current sizes. Read with `segment_queue::stats`.
struct counters {
  std::uint64_t appended = 0;         ///< records appended
  std::uint64_t delivered = 0;        ///< records acknowledged by the consumer
  std::uint64_t dropped = 0;          ///< unacknowledged records deleted by `drop_oldest`
  std::uint64_t full_events = 0;      ///< appends that found the queue full (block or drop)
  std::uint64_t bytes_on_disk = 0;    ///< segment bytes on disk (acknowledged ones included until their segment goes)
  std::uint64_t records_pending = 0;  ///< records not yet acknowledged
  std::uint64_t segments = 0;         ///< segment files
  std::uint64_t cut_bytes = 0;        ///< bytes cut from a torn tail at open
};

/// A record read back: its offset and its bytes.
struct record {
  std::uint64_t offset = 0;
  std::string data;
};

/// What `open` found and did: say it in the log.
struct recovery {
  std::uint64_t segments = 0;
  std::uint64_t records = 0;      ///< records pending after open
  std::uint64_t ack_offset = 0;
  std::uint64_t cut_bytes = 0;    ///< torn tail cut from the last segment (0: clean)
  std::vector<std::string> warnings;
};

/// Thread-safe: one producer and one consumer may use it from different threads. The
/// directory is locked (`dir/lock`, flock) while it is open: a second queue on it, in this
/// or another process, throws.
class segment_queue {
public:
  /// Opens (creating) the directory and recovers it: every segment is read and its checksums
  /// verified. A damaged frame in the last segment is a torn tail (a write cut by a crash):
  /// it and everything after it are cut (truncated) and counted in `recovery.cut_bytes`. A
  /// damaged frame in any earlier segment cannot come from a crash and is refused: throws
  /// std::runtime_error naming the file and byte, so nothing is skipped silently. Also throws
  /// on bad options or an unreadable position file.
  explicit segment_queue(options opts);
  ~segment_queue();
  segment_queue(const segment_queue&) = delete;
  segment_queue& operator=(const segment_queue&) = delete;

  const recovery& recovered() const noexcept { return recovery_; }

  /// Appends `records` in order, as one write (and one sync, per the policy). Under
  /// `when_full::block`, waits up to `timeout` for room.
  append_status append(const std::vector<std::string>& records,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(0));
  append_status append(std::string_view record,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

  /// Up to `max_records` unacknowledged records from the acknowledged offset, in order
  /// (stopping before `max_bytes` of payload unless it is the first). Removes nothing.
  std::vector<record> peek(std::size_t max_records, std::size_t max_bytes = SIZE_MAX);

  /// Acknowledges every record with an offset below `end` (clamped to what was appended),
  /// persists the position and deletes segments left with no unacknowledged record.
  void ack(std::uint64_t end);

  /// `peek` then `ack` of what it returned: for consumers that cannot fail.
  std::vector<record> pop(std::size_t max_records, std::size_t max_bytes = SIZE_MAX);

  /// Waits up to `timeout` until a record is pending (appended, not acknowledged) or `wake`
  /// is called; returns whether one is.
  bool wait_pending(std::chrono::milliseconds timeout);
  /// Wakes `wait_pending` (and a blocked `append`, which then re-checks its room) at once.
  void wake();

  std::uint64_t ack_offset() const;
  std::uint64_t end_offset() const;  ///< offset the next appended record gets
  counters stats() const;

private:
  struct segment {
    std::uint64_t first = 0;   ///< offset of its first record
    std::uint64_t records = 0;
    std::uint64_t bytes = 0;
    std::string path;
  };

  void recover();
  std::uint64_t scan(segment& s, bool last);
  void open_active();
  void roll();
  void drop_segment_front();
  void reclaim();
  void persist_position();
  bool make_room(std::uint64_t need, std::unique_lock<std::mutex>& lk, std::chrono::milliseconds timeout);
  std::string segment_path(std::uint64_t first) const;

  options opts_;
  recovery recovery_;
  mutable std::mutex mu_;
  std::condition_variable acked_;
  std::condition_variable appended_;
  bool woken_ = false;
  int lock_fd_ = -1;  ///< `dir/lock`, held with flock while open
  std::deque<segment> segments_;  ///< oldest first; the back one is written to
  int fd_ = -1;                   ///< the back segment, open for appending
  std::uint64_t ack_ = 0;
  std::uint64_t persisted_ack_ = 0;
  std::uint64_t bytes_ = 0;
  /// Read cursor: the acknowledged offset's frame (segment index into segments_, byte).
  std::size_t cur_seg_ = 0;
  std::uint64_t cur_pos_ = 0;
  counters stats_;
};

/// Encodes a row of `width` values and its event time into a record (state_writer layout).
std::string encode_row(const core::value* row, std::uint32_t width, std::int64_t time);
/// Decodes what the overload above wrote: the values into `out` (cleared), returns the time.
std::int64_t decode_row(std::string_view record, std::vector<core::value>& out);

/// Encodes a row of values into a record (pel::core::state_writer layout).
std::string encode_row(const std::vector<core::value>& row);
/// Decodes what `encode_row` wrote. Throws std::runtime_error on a malformed record.
std::vector<core::value> decode_row(std::string_view record);

} // namespace pel::buffer
