#pragma once
/// \file
/// Internal: where checkpoints are kept. Free of CAF; unit-tested on its own.
///
/// A checkpoint is one blob per chain instance (the snapshots of its components, in chain
/// order) plus a manifest written last, which makes it complete. Two backends:
/// - memory (no state directory): the last `keep` complete checkpoints, for recovery inside
///   the process;
/// - directory: `<dir>/chk-<id>/<chain>-<instance>.state`, each file written to a temporary
///   name, fsynced and renamed, with a CRC-32 over its payload; then `<dir>/chk-<id>/MANIFEST`
///   lists every file with its size and CRC and is renamed into place last. A checkpoint
///   directory without a manifest was never completed and is ignored (and removed).

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pel::runtime {

/// CRC-32 (zlib's polynomial) of `data`.
std::uint32_t checkpoint_crc32(std::string_view data);

/// Checkpoint storage for one job. Thread-safe.
class checkpoint_store {
public:
  /// `dir` empty: in memory. `fingerprint` names the plan (chains, components, parallelism);
  /// a directory holding checkpoints of another plan is refused at `open`.
  checkpoint_store(std::string dir, std::string pipeline, std::string fingerprint, std::uint32_t keep);

  /// What `open` found.
  struct recovered {
    std::uint64_t id = 0;            ///< latest complete, readable checkpoint (0: none)
    std::int64_t time_ms = 0;        ///< when it completed (epoch ms)
    std::uint64_t highest = 0;       ///< highest id in the directory, damaged ones included
    std::vector<std::string> warnings;  ///< damaged checkpoints skipped, leftovers removed
  };

  /// Directory backend: creates the directory, finds the latest complete checkpoint whose
  /// files all match their manifest (checksum and size), removes incomplete ones. Throws
  /// std::runtime_error when the directory cannot be used or holds another plan's state.
  recovered open();

  /// Stores instance `key`'s blob for checkpoint `id` (durably for the directory backend).
  /// Returns the bytes written.
  std::uint64_t put(std::uint64_t id, const std::string& key, std::string blob);

  /// Completes checkpoint `id` with the blobs put for it (all instances acknowledged):
  /// writes the manifest, then drops all but the newest `keep` complete checkpoints and any
  /// incomplete older one. Throws std::runtime_error when it cannot be written.
  void complete(std::uint64_t id, std::int64_t time_ms);

  /// Forgets the blobs of checkpoint `id`, which will never complete.
  void abandon(std::uint64_t id);

  /// The blob of `key` in complete checkpoint `id`, or nullopt when it has none (the
  /// instance had no state then). Throws std::runtime_error when the file is damaged.
  std::optional<std::string> get(std::uint64_t id, const std::string& key) const;

  /// The newest complete checkpoint (0: none).
  std::uint64_t latest() const;

  bool durable() const noexcept { return !dir_.empty(); }
  const std::string& dir() const noexcept { return dir_; }

private:
  std::string path_of(std::uint64_t id) const;
  void prune(std::uint64_t newest);

  std::string dir_;
  std::string pipeline_;
  std::string fingerprint_;
  std::uint32_t keep_;
  mutable std::mutex mu_;
  /// Blobs of checkpoints in progress (memory) or their file sizes and CRCs (directory).
  struct entry {
    std::string blob;  ///< memory backend only
    std::uint64_t size = 0;
    std::uint32_t crc = 0;
  };
  std::map<std::uint64_t, std::map<std::string, entry>> pending_;
  std::map<std::uint64_t, std::map<std::string, entry>> complete_;
};

} // namespace pel::runtime
