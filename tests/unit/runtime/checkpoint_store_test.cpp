// The checkpoint store on its own: blobs round-trip through the directory, a checkpoint is
// complete only with its manifest, the newest `keep` are kept, and a damaged or truncated
// file makes `open` fall back to the previous complete checkpoint with a warning.
#include "checkpoint_store.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <random>

#include "pel/testing/temp_dir.hpp"

using pel::runtime::checkpoint_store;
namespace fs = std::filesystem;

namespace {

/// A scratch state directory (`path` as the store takes it).
struct temp_dir {
  pel::testing::temp_dir dir{"pel-chk-"};
  fs::path path{dir.path()};
};

std::string blob_of(std::size_t n, char seed) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + static_cast<char>(i * 31));
  return s;
}

/// Writes checkpoints 1..n with two instance blobs each (the second one empty, like a
/// stateless instance's).
void write_checkpoints(checkpoint_store& st, std::uint64_t n) {
  for (std::uint64_t id = 1; id <= n; ++id) {
    st.put(id, "0-0", blob_of(1000 + id, static_cast<char>(id)));
    st.put(id, "1-0", "");
    st.complete(id, 1000 * static_cast<std::int64_t>(id));
  }
}

void flip_byte(const fs::path& p, std::size_t at) {
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

} // namespace

TEST_CASE("checkpoint store: blobs round-trip through the directory and the newest are kept", "[checkpoint]") {
  temp_dir d;
  {
    checkpoint_store st(d.path.string(), "p", "a+bx2", 2);
    REQUIRE(st.open().id == 0);
    write_checkpoints(st, 4);
    REQUIRE(st.latest() == 4);
  }
  checkpoint_store again(d.path.string(), "p", "a+bx2", 2);
  auto rec = again.open();
  CHECK(rec.id == 4);
  CHECK(rec.time_ms == 4000);
  CHECK(rec.warnings.empty());
  CHECK(*again.get(4, "0-0") == blob_of(1004, 4));
  CHECK(again.get(4, "1-0")->empty());
  CHECK_FALSE(again.get(4, "2-0").has_value());
  // keep: 2 — checkpoints 1 and 2 are gone from the disk.
  CHECK_FALSE(fs::exists(d.path / "chk-00000000000000000001"));
  CHECK_FALSE(fs::exists(d.path / "chk-00000000000000000002"));
  CHECK(fs::exists(d.path / "chk-00000000000000000003" / "MANIFEST"));
}

TEST_CASE("checkpoint store: a checkpoint without its manifest is not used", "[checkpoint]") {
  temp_dir d;
  {
    checkpoint_store st(d.path.string(), "p", "f", 3);
    st.open();
    write_checkpoints(st, 2);
    st.put(3, "0-0", "begun, never completed");  // the process died here
  }
  checkpoint_store again(d.path.string(), "p", "f", 3);
  auto rec = again.open();
  CHECK(rec.id == 2);
  CHECK_FALSE(fs::exists(d.path / "chk-00000000000000000003"));
}

TEST_CASE("checkpoint store: a corrupt file falls back to the previous checkpoint with a warning", "[checkpoint]") {
  temp_dir d;
  {
    checkpoint_store st(d.path.string(), "p", "f", 3);
    st.open();
    write_checkpoints(st, 3);
  }
  // One flipped bit in the payload of the newest checkpoint's state file.
  flip_byte(d.path / "chk-00000000000000000003" / "0-0.state", 20 + 500);
  checkpoint_store again(d.path.string(), "p", "f", 3);
  auto rec = again.open();
  CHECK(rec.id == 2);
  REQUIRE(rec.warnings.size() == 1);
  CHECK_THAT(rec.warnings[0], Catch::Contains("checksum") && Catch::Contains("checkpoint 3"));
  CHECK(*again.get(2, "0-0") == blob_of(1002, 2));
  // The damaged one is kept aside, and its id is not reused.
  CHECK(fs::exists(d.path / "chk-00000000000000000003.damaged"));
  CHECK(rec.highest == 3);
}

TEST_CASE("checkpoint store: a truncated file falls back to the previous checkpoint", "[checkpoint]") {
  temp_dir d;
  {
    checkpoint_store st(d.path.string(), "p", "f", 3);
    st.open();
    write_checkpoints(st, 3);
  }
  const auto f = d.path / "chk-00000000000000000003" / "0-0.state";
  fs::resize_file(f, fs::file_size(f) - 7);
  checkpoint_store again(d.path.string(), "p", "f", 3);
  auto rec = again.open();
  CHECK(rec.id == 2);
  REQUIRE(rec.warnings.size() == 1);
  CHECK_THAT(rec.warnings[0], Catch::Contains("truncated"));
}

TEST_CASE("checkpoint store: a truncated manifest makes the checkpoint unusable", "[checkpoint]") {
  temp_dir d;
  {
    checkpoint_store st(d.path.string(), "p", "f", 3);
    st.open();
    write_checkpoints(st, 2);
  }
  const auto m = d.path / "chk-00000000000000000002" / "MANIFEST";
  fs::resize_file(m, fs::file_size(m) - 4);  // "end\n" gone
  checkpoint_store again(d.path.string(), "p", "f", 3);
  CHECK(again.open().id == 1);
}

TEST_CASE("checkpoint store: another pipeline's state directory is refused", "[checkpoint]") {
  temp_dir d;
  {
    checkpoint_store st(d.path.string(), "p", "ax1", 3);
    st.open();
    write_checkpoints(st, 1);
  }
  checkpoint_store other(d.path.string(), "p", "ax2", 3);
  CHECK_THROWS_WITH(other.open(), Catch::Contains("another pipeline or plan") && Catch::Contains("--state-dir"));
}

TEST_CASE("checkpoint store: in memory, abandoned checkpoints leave nothing and completed ones are readable", "[checkpoint]") {
  checkpoint_store st("", "p", "f", 2);
  REQUIRE(st.open().id == 0);
  st.put(1, "0-0", "one");
  st.complete(1, 1);
  st.put(2, "0-0", "two");
  st.abandon(2);
  CHECK(st.latest() == 1);
  CHECK(*st.get(1, "0-0") == "one");
  CHECK_FALSE(st.get(2, "0-0").has_value());
  CHECK_FALSE(st.durable());
}
