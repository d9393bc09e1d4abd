#include "pel/buffer/segment_queue.hpp"
#include "pel/testing/poll.hpp"

#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace pel::buffer;
using namespace std::chrono_literals;

namespace {

/// A fresh directory removed at the end of the test.
struct temp_dir {
  fs::path path;
  explicit temp_dir(const std::string& name) {
    path = fs::temp_directory_path() / ("pel_buffer_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

/// Record `i`: its number, then filler bytes derived from it, `size` bytes in all (≥ 8).
std::string make_record(std::uint64_t i, std::size_t size) {
  std::string s(std::max<std::size_t>(size, 8), '\0');
  std::memcpy(s.data(), &i, 8);
  for (std::size_t k = 8; k < s.size(); ++k) s[k] = static_cast<char>((i * 31 + k) & 0xff);
  return s;
}

std::uint64_t id_of(const std::string& r) {
  std::uint64_t i = 0;
  std::memcpy(&i, r.data(), 8);
  return i;
}

bool well_formed(const std::string& r) { return r == make_record(id_of(r), r.size()); }

std::vector<fs::path> segment_files(const std::string& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("seg-", 0) == 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

options small(const std::string& dir) {
  options o;
  o.dir = dir;
  o.segment_size = 4096;
  o.max_size = 1 << 20;
  o.sync = sync_policy::none;
  return o;
}

} // namespace

TEST_CASE("records come back in order across many segments", "[buffer]") {
  temp_dir d("order");
  segment_queue q(small(d.str()));
  std::mt19937 rng(7);
  const std::uint64_t n = 2000;
  for (std::uint64_t i = 0; i < n; ++i) REQUIRE(q.append(make_record(i, 8 + rng() % 200)) == append_status::ok);
  REQUIRE(q.stats().segments > 20);
  REQUIRE(q.stats().appended == n);
  std::uint64_t next = 0;
  for (int round = 0; round < 10000 && next < n; ++round) {
    for (const auto& r : q.pop(37)) {
      REQUIRE(r.offset == next);
      REQUIRE(id_of(r.data) == next);
      REQUIRE(well_formed(r.data));
      ++next;
    }
  }
  REQUIRE(next == n);
  const auto c = q.stats();
  CHECK(c.delivered == n);
  CHECK(c.records_pending == 0);
  // Acknowledged segments are deleted: only the one written to is left.
  CHECK(segment_files(d.str()).size() == 1);
  CHECK(c.segments == 1);
}

TEST_CASE("peek removes nothing until ack", "[buffer]") {
  temp_dir d("peek");
  segment_queue q(small(d.str()));
  q.append(std::vector<std::string>{"a", "b", "c"});
  REQUIRE(q.peek(10).size() == 3);
  REQUIRE(q.peek(10).size() == 3);
  q.ack(2);
  auto rest = q.peek(10);
  REQUIRE(rest.size() == 1);
  CHECK(rest[0].data == "c");
  CHECK(rest[0].offset == 2);
  CHECK(q.peek(10, 0).size() == 1);  // the first record always comes, whatever max_bytes
}

TEST_CASE("a restart keeps order and the acknowledged position", "[buffer]") {
  temp_dir d("restart");
  {
    segment_queue q(small(d.str()));
    for (std::uint64_t i = 0; i < 500; ++i) q.append(make_record(i, 100));
    REQUIRE(q.pop(123).size() == 123);
    REQUIRE(q.peek(50).size() == 50);  // delivered but not acknowledged: must come again
  }
  {
    segment_queue q(small(d.str()));
    CHECK(q.recovered().cut_bytes == 0);
    CHECK(q.recovered().ack_offset == 123);
    CHECK(q.recovered().records == 377);
    CHECK(q.ack_offset() == 123);
    for (std::uint64_t i = 500; i < 600; ++i) q.append(make_record(i, 100));
    std::uint64_t next = 123;
    for (int round = 0; round < 1000 && next < 600; ++round)
      for (const auto& r : q.pop(41)) {
        REQUIRE(id_of(r.data) == next);
        REQUIRE(r.offset == next);
        ++next;
      }
    REQUIRE(next == 600);
  }
  segment_queue q(small(d.str()));
  CHECK(q.recovered().records == 0);
  CHECK(q.end_offset() == 600);
  CHECK(q.peek(10).empty());
}

TEST_CASE("rows of values round trip", "[buffer]") {
  temp_dir d("rows");
  segment_queue q(small(d.str()));
  std::vector<pel::core::value> row{pel::core::value(std::int64_t{42}), pel::core::value(std::string("dev-1")),
                                    pel::core::value(2.5)};
  q.append(encode_row(row));
  auto back = decode_row(q.pop(1).at(0).data);
  REQUIRE(back.size() == 3);
  CHECK(back[0] == row[0]);
  CHECK(back[1] == row[1]);
  CHECK(back[2] == row[2]);
  CHECK_THROWS(decode_row("\x05"));
}

TEST_CASE("a torn tail is cut and counted and what precedes it is kept", "[buffer]") {
  temp_dir d("torn");
  {
    segment_queue q(small(d.str()));
    for (std::uint64_t i = 0; i < 300; ++i) q.append(make_record(i, 50));
  }
  auto segs = segment_files(d.str());
  REQUIRE(segs.size() > 2);
  const auto last = segs.back();
  const auto size = fs::file_size(last);
  REQUIRE(size > 100);
  // Cut the last record in the middle of its payload (each record is 8 + 50 bytes).
  fs::resize_file(last, size - 20);
  std::uint64_t expect_end = 0;
  {
    segment_queue q(small(d.str()));
    CHECK(q.recovered().cut_bytes == 58 - 20);
    CHECK(q.stats().cut_bytes == 58 - 20);
    REQUIRE(q.recovered().warnings.size() == 1);
    CHECK(q.recovered().warnings[0].find("torn tail") != std::string::npos);
    CHECK(q.end_offset() == 299);
    expect_end = q.end_offset();
    // Appends continue after the cut.
    q.append(make_record(299, 50));
  }
  // Garbage after the last record.
  const std::string garbage = "this is not a record at all, just bytes!";
  {
    std::ofstream f(last, std::ios::binary | std::ios::app);
    f << garbage;
  }
  segment_queue q(small(d.str()));
  CHECK(q.recovered().cut_bytes == garbage.size());
  CHECK(q.end_offset() == expect_end + 1);
  std::uint64_t next = 0;
  for (int round = 0; round < 100 && next < 300; ++round)
    for (const auto& r : q.pop(64)) {
      REQUIRE(id_of(r.data) == next);
      REQUIRE(well_formed(r.data));
      ++next;
    }
  CHECK(next == 300);
}

TEST_CASE("a corrupt record before the last segment is refused", "[buffer]") {
  temp_dir d("corrupt");
  {
    segment_queue q(small(d.str()));
    for (std::uint64_t i = 0; i < 300; ++i) q.append(make_record(i, 50));
  }
  auto segs = segment_files(d.str());
  REQUIRE(segs.size() > 2);
  {
    std::fstream f(segs[1], std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(8 + 58 * 3 + 20);
    f.put('X');
  }
  try {
    segment_queue q(small(d.str()));
    FAIL("open accepted a corrupt segment");
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    CHECK(what.find(segs[1].filename().string()) != std::string::npos);
    CHECK(what.find("corrupt at byte 174") != std::string::npos);
  }
}

TEST_CASE("records of uneven sizes from 1 byte to 1 MB", "[buffer]") {
  temp_dir d("uneven");
  options o;
  o.dir = d.str();
  o.segment_size = 4 << 20;
  o.max_size = 64 << 20;
  o.sync = sync_policy::none;
  std::vector<std::size_t> sizes{1, 2, 7, 8, 9, 1000, 1 << 20, 3, 65536, (1 << 20) - 8, 1, 500000, 1 << 20};
  for (int k = 0; k < 30; ++k) sizes.push_back((k * 7919u * 7919u) % (1 << 20) + 1);
  std::vector<std::string> recs;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::string r(sizes[i], '\0');
    for (std::size_t k = 0; k < r.size(); ++k) r[k] = static_cast<char>((i + k * 13) & 0xff);
    recs.push_back(std::move(r));
  }
  {
    segment_queue q(o);
    for (const auto& r : recs) REQUIRE(q.append(r) == append_status::ok);
    CHECK(q.append(std::string(o.segment_size, 'x')) == append_status::too_large);
    auto first = q.pop(5);
    REQUIRE(first.size() == 5);
    for (std::size_t i = 0; i < 5; ++i) REQUIRE(first[i].data == recs[i]);
  }
  segment_queue q(o);
  CHECK(q.stats().segments > 3);
  std::size_t i = 5;
  for (int round = 0; round < 100 && i < recs.size(); ++round)
    for (const auto& r : q.pop(4, 2 << 20)) {
      REQUIRE(r.data.size() == recs[i].size());
      REQUIRE(r.data == recs[i]);
      ++i;
    }
  CHECK(i == recs.size());
}

TEST_CASE("drop_oldest drops whole old segments and counts them", "[buffer]") {
  temp_dir d("drop");
  options o = small(d.str());
  o.max_size = 16384;  // four segments
  o.when_full = when_full::drop_oldest;
  segment_queue q(o);
  const std::uint64_t n = 1000;
  for (std::uint64_t i = 0; i < n; ++i) REQUIRE(q.append(make_record(i, 92)) == append_status::ok);
  auto c = q.stats();
  CHECK(c.bytes_on_disk <= o.max_size);
  CHECK(c.appended == n);
  CHECK(c.dropped > 0);
  CHECK(c.full_events > 0);
  CHECK(c.dropped + c.records_pending == n);
  // What is left is the newest records, in order, with no gap.
  std::uint64_t next = n - c.records_pending;
  CHECK(q.ack_offset() == next);
  for (int round = 0; round < 100 && next < n; ++round)
    for (const auto& r : q.pop(50)) REQUIRE(id_of(r.data) == next++);
  CHECK(next == n);
  CHECK(q.stats().delivered == n - c.dropped);
}

TEST_CASE("block waits for acknowledgements, then says full", "[buffer]") {
  temp_dir d("block");
  options o = small(d.str());
  o.max_size = 16384;
  o.when_full = when_full::block;
  segment_queue q(o);
  std::uint64_t i = 0;
  while (q.append(make_record(i, 92), 0ms) == append_status::ok) {
    ++i;
    REQUIRE(i < 1000);
  }
  const std::uint64_t fitted = i;
  CHECK(q.stats().bytes_on_disk <= o.max_size);
  CHECK(q.stats().bytes_on_disk + 100 > o.max_size - 4096);
  CHECK(q.stats().full_events == 1);
  CHECK(q.stats().dropped == 0);
  // A timed wait with no consumer gives up.
  const auto t0 = std::chrono::steady_clock::now();
  CHECK(q.append(make_record(fitted, 92), 50ms) == append_status::full);
  CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);
  // A consumer frees room: the blocked append goes through.
  std::thread consumer([&] {
    // Once the producer is waiting (its append counted a third full event), free room.
    pel::testing::poll_until([&] { return q.stats().full_events == 3; }, 10000ms);
    q.pop(100);
  });
  CHECK(q.append(make_record(fitted, 92), 10s) == append_status::ok);
  consumer.join();
  std::uint64_t next = q.ack_offset();
  CHECK(next == 100);
  for (int round = 0; round < 100 && next <= fitted; ++round)
    for (const auto& r : q.pop(50)) REQUIRE(id_of(r.data) == next++);
  CHECK(next == fitted + 1);
}

TEST_CASE("bad options are refused with the fix", "[buffer]") {
  temp_dir d("opts");
  options o = small(d.str());
  o.max_size = 6000;
  REQUIRE_THROWS_WITH(segment_queue(o), "segment queue: segment_size 4096 is more than half of max_size 6000: "
                                        "raise max_size or lower segment_size");
}

// A child appends (syncing each append) and acknowledges as it goes, telling the parent
// through a pipe what is durable and what it acknowledged; the parent kills it with SIGKILL
// at a random moment and checks the queue after recovery.
namespace {

/// `max_reports`: the kill comes after 1 to `max_reports` appends were reported; the child
/// stops appending (and waits to be killed) after twice as many, bounding the disk used.
void kill_rounds(int rounds, sync_policy sync, std::size_t max_record, std::uint64_t segment_size,
                 std::uint64_t max_reports) {
  temp_dir d("kill");
  std::mt19937 rng(12345);
  for (int round = 0; round < rounds; ++round) {
    fs::remove_all(d.path);
    options o;
    o.dir = d.str();
    o.segment_size = segment_size;
    o.max_size = 1ull << 30;
    o.sync = sync;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      std::mt19937 crng(round);
      segment_queue q(o);
      std::uint64_t iterations = 0;
      for (std::uint64_t i = 0; iterations < 2 * max_reports; ++i, ++iterations) {
        std::vector<std::string> batch;
        const std::size_t k = 1 + crng() % 4;
        for (std::size_t j = 0; j < k; ++j) batch.push_back(make_record(i + j, 8 + crng() % max_record));
        if (q.append(batch) != append_status::ok) ::_exit(3);
        i += k - 1;
        std::uint64_t msg[2] = {0, i};  // 0: durable up to and including i
        if (::write(fds[1], msg, sizeof(msg)) != sizeof(msg)) ::_exit(4);
        if (crng() % 3 == 0) {
          auto got = q.pop(1 + crng() % 8);
          if (!got.empty()) {
            std::uint64_t m2[2] = {1, got.back().offset + 1};  // 1: acknowledged below this
            if (::write(fds[1], m2, sizeof(m2)) != sizeof(m2)) ::_exit(4);
          }
        }
      }
      for (;;) ::pause();
    }
    ::close(fds[1]);
    const std::uint64_t kill_after = 1 + rng() % max_reports;  // durable reports before the kill
    std::uint64_t durable = 0, reports = 0, acked = 0;
    bool any = false;
    auto read_msg = [&](bool& eof) {
      std::uint64_t msg[2];
      const ssize_t r = ::read(fds[0], msg, sizeof(msg));
      if (r <= 0) {
        eof = true;
        return;
      }
      REQUIRE(r == sizeof(msg));
      if (msg[0] == 0) {
        durable = msg[1];
        any = true;
        ++reports;
      } else {
        acked = msg[1];
      }
    };
    bool eof = false;
    while (!eof && reports < kill_after) read_msg(eof);
    // A random moment inside the next few appends (a random kill point, not a wait).
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    ::kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFSIGNALED(status));
    while (!eof) read_msg(eof);  // what the child reported before it died
    ::close(fds[0]);
    REQUIRE(any);

    segment_queue q(o);
    INFO("round " << round << ": durable " << durable << ", acknowledged " << acked << ", cut "
                  << q.recovered().cut_bytes);
    // Acknowledged is at least what was reported; never beyond what could have been appended.
    CHECK(q.ack_offset() >= acked);
    CHECK(q.ack_offset() <= durable + 1);
    // Every durable record is there once, in order, intact.
    std::uint64_t next = q.ack_offset();
    for (int r = 0; r < 100000; ++r) {
      auto got = q.pop(256);
      if (got.empty()) break;
      for (const auto& rec : got) {
        REQUIRE(rec.offset == next);
        REQUIRE(id_of(rec.data) == next);
        REQUIRE(well_formed(rec.data));
        ++next;
      }
    }
    CHECK(next >= durable + 1);
    CHECK(next <= durable + 1 + 4);  // at most the one batch appended but not yet reported
    WARN("kill round " << round << ": " << reports << " appends reported, durable through " << durable
                       << ", acknowledged below " << acked << ", recovered " << q.recovered().records
                       << " pending, torn tail cut " << q.recovered().cut_bytes << " bytes");
  }
}

} // namespace

TEST_CASE("kill -9 loses no durable record and corrupts nothing", "[buffer]") {
  kill_rounds(6, sync_policy::every_append, 3000, 16384, 400);
}

// Without fsync, and with large batches, so that the kill often lands inside a write: the
// torn tail is cut and every record whose append returned is still there.
TEST_CASE("kill -9 during large unsynced writes", "[buffer]") {
  kill_rounds(4, sync_policy::none, 1 << 20, 8 << 20, 30);
}

TEST_CASE("a producer and a consumer on two threads", "[buffer]") {
  temp_dir d("threads");
  options o = small(d.str());
  o.max_size = 32768;
  o.when_full = when_full::block;
  segment_queue q(o);
  const std::uint64_t n = 20000;
  std::thread producer([&] {
    std::mt19937 rng(3);
    for (std::uint64_t i = 0; i < n;) {
      std::vector<std::string> batch;
      for (std::uint64_t j = 0; j < 1 + rng() % 10 && i < n; ++j) batch.push_back(make_record(i++, 8 + rng() % 300));
      if (q.append(batch, 10s) != append_status::ok) return;
    }
  });
  std::uint64_t next = 0;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  bool ordered = true;
  while (next < n && std::chrono::steady_clock::now() < deadline) {
    for (const auto& r : q.pop(64)) {
      ordered = ordered && id_of(r.data) == next && r.offset == next && well_formed(r.data);
      ++next;
    }
  }
  producer.join();
  CHECK(ordered);
  CHECK(next == n);
  const auto c = q.stats();
  CHECK(c.appended == n);
  CHECK(c.delivered == n);
  CHECK(c.dropped == 0);
  CHECK(c.bytes_on_disk <= o.max_size);
}

// A write that fails half way (here the file size limit, as a full disk would) leaves no
// partial frame behind: later appends stay readable and nothing is cut at the next open.
TEST_CASE("a failed write is cut back to the last whole record", "[buffer]") {
  temp_dir d("efbig");
  options o;
  o.dir = d.str();
  o.segment_size = 1 << 20;
  o.max_size = 4 << 20;
  o.sync = sync_policy::none;
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim{100000, 100000};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(10);
    segment_queue q(o);
    std::uint64_t i = 0;
    try {
      for (; i < 1000; ++i) q.append(make_record(i, 3000));
      ::_exit(11);  // the limit never struck
    } catch (const std::system_error&) {
    }
    // The next small record fits under the limit once the partial frame is gone.
    if (q.append(make_record(i, 100)) != append_status::ok) ::_exit(12);
    ::_exit(static_cast<int>(i));  // records appended before the failure (< 256 here)
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  const auto appended = static_cast<std::uint64_t>(WEXITSTATUS(status));
  REQUIRE(appended > 10);
  REQUIRE(appended < 40);
  segment_queue q(o);
  CHECK(q.recovered().cut_bytes == 0);
  CHECK(q.end_offset() == appended + 1);
  auto all = q.pop(1000);
  REQUIRE(all.size() == appended + 1);
  for (std::uint64_t k = 0; k <= appended; ++k) {
    REQUIRE(id_of(all[k].data) == k);
    REQUIRE(well_formed(all[k].data));
  }
  CHECK(all.back().data.size() == 100);
}
