// The store-and-forward buffer in front of a sink: order, a failing destination, full-buffer
// policies, restarts and refusals. The destination here is a recording sink that can be told
// to fail; the buffer and its files are the real ones.
#include "pel/buffer/buffered_sink.hpp"
#include "pel/buffer/segment_queue.hpp"
#include "pel/testing/poll.hpp"
#include "pel/testing/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using namespace pel;
using namespace std::chrono_literals;

namespace {

/// A fresh directory, removed at the end of the test.
struct temp_dir {
  testing::temp_dir d;
  explicit temp_dir(const std::string& name) : d("pel_bsink_" + name + "-") {}
  std::string str() const { return d.path().string(); }
};

/// The destination: rows become visible in `seen` at `flush` (like a Kafka delivery report);
/// while `down` is set, `flush` throws and the rows written since the last flush are gone.
struct destination {
  std::mutex mu;
  std::vector<std::pair<std::string, std::int64_t>> seen;  // (device, seq)
  std::atomic<bool> down{false};
  std::atomic<int> built{0}, failures{0};
  std::vector<std::string> notices;
  std::uint64_t lost = 0;

  std::size_t size() {
    std::lock_guard<std::mutex> lk(mu);
    return seen.size();
  }
};

class recording_sink final : public core::sink_base {
public:
  explicit recording_sink(destination& d) : d_(d) { d_.built.fetch_add(1); }
  void open(const core::operator_context&, const core::schema_ptr&) override {}
  void write(const core::batch& in) override {
    for (std::size_t r = 0; r < in.size(); ++r)
      pending_.emplace_back(std::get<std::string>(in.row(r)[0]), std::get<std::int64_t>(in.row(r)[1]));
  }
  void flush() override {
    if (d_.down.load()) {
      d_.failures.fetch_add(1);
      pending_.clear();
      throw std::runtime_error("destination unreachable");
    }
    std::lock_guard<std::mutex> lk(d_.mu);
    d_.seen.insert(d_.seen.end(), pending_.begin(), pending_.end());
    pending_.clear();
  }

private:
  destination& d_;
  std::vector<std::pair<std::string, std::int64_t>> pending_;
};

core::schema_ptr row_schema() {
  auto s = std::make_shared<core::schema>();
  s->add("device", core::value_type::string);
  s->add("seq", core::value_type::integer);
  return s;
}

/// `n` rows from `first` on, over devices with skewed shares (device-0 gets about half).
core::batch rows(std::int64_t first, std::int64_t n) {
  core::batch b(2);
  for (std::int64_t i = first; i < first + n; ++i) {
    core::value* r = b.append(i * 1000);
    const std::int64_t dev = (i % 2 == 0) ? 0 : (i % 7);
    r[0] = std::string("device-") + std::to_string(dev);
    r[1] = i;
  }
  return b;
}

struct harness {
  destination dest;
  core::sink_buffer_gauges gauges;
  std::mutex log_mu;
  core::sink_ptr sink;

  harness(const std::string& dir, buffer::sink_options o = {}) {
    o.dir = dir;
    o.retry_min = 5ms;
    o.retry_max = 50ms;
    if (o.max_size == (1ull << 30)) o.max_size = 64ull << 20;
    sink = buffer::make_buffered_sink([this] { return std::make_unique<recording_sink>(dest); }, o);
    core::sink_binding b;
    b.gauges = &gauges;
    b.notify = [this](const core::source_notice& n) {
      std::lock_guard<std::mutex> lk(log_mu);
      dest.notices.push_back(n.text);
      dest.lost += n.lost;
    };
    sink->bind(b);
    core::operator_context ctx;
    ctx.name = "uplink";
    sink->open(ctx, row_schema());
  }

  bool said(const std::string& part) {
    std::lock_guard<std::mutex> lk(log_mu);
    for (const auto& n : dest.notices)
      if (n.find(part) != std::string::npos) return true;
    return false;
  }
};

/// Every seq in [0, n) arrived at least once, each device's in increasing order of first
/// arrival; returns the number of duplicates.
std::size_t check_complete_in_order(destination& d, std::int64_t n) {
  std::lock_guard<std::mutex> lk(d.mu);
  std::vector<int> count(static_cast<std::size_t>(n), 0);
  std::map<std::string, std::int64_t> last;
  std::size_t dups = 0;
  for (const auto& [dev, seq] : d.seen) {
    REQUIRE(seq >= 0);
    REQUIRE(seq < n);
    if (count[static_cast<std::size_t>(seq)]++ > 0) {
      ++dups;
      continue;
    }
    auto it = last.find(dev);
    if (it != last.end()) REQUIRE(seq > it->second);
    last[dev] = seq;
  }
  for (std::int64_t i = 0; i < n; ++i) REQUIRE(count[static_cast<std::size_t>(i)] >= 1);
  return dups;
}

} // namespace

TEST_CASE("a buffered sink hands every row to the sink in order and empties its buffer", "[buffer]") {
  temp_dir dir("order");
  harness h(dir.str());
  for (std::int64_t i = 0; i < 20; ++i) h.sink->write(rows(i * 500, 500));
  h.sink->close();
  CHECK(h.dest.size() == 10000);
  CHECK(check_complete_in_order(h.dest, 10000) == 0);
  CHECK(h.gauges.present.load());
  CHECK(h.gauges.appended.load() == 10000);
  CHECK(h.gauges.forwarded.load() == 10000);
  CHECK(h.gauges.pending.load() == 0);
  CHECK(h.sink->delivered() == 10000);
}

TEST_CASE("while the sink fails rows wait on disk and drain in order when it is back", "[buffer]") {
  temp_dir dir("outage");
  harness h(dir.str());
  h.sink->write(rows(0, 1000));
  REQUIRE(testing::poll_until([&] { return h.dest.size() == 1000; }, 10s));
  h.dest.down = true;
  // The writer never waits for the destination: 30,000 rows go to disk while it is down.
  for (std::int64_t i = 1; i <= 30; ++i) h.sink->write(rows(i * 1000, 1000));
  REQUIRE(testing::poll_until([&] { return h.dest.failures.load() >= 3; }, 10s));
  CHECK_FALSE(h.gauges.forwarding.load());
  CHECK(h.gauges.pending.load() >= 29000);
  CHECK(h.gauges.bytes_on_disk.load() > 0);
  CHECK(h.said("fails (destination unreachable); keeping records in its buffer"));
  CHECK(h.dest.size() == 1000);
  h.dest.down = false;
  REQUIRE(testing::poll_until([&] { return h.gauges.pending.load() == 0; }, 20s));
  // Live rows follow the backlog.
  h.sink->write(rows(31000, 1000));
  h.sink->close();
  CHECK(check_complete_in_order(h.dest, 32000) == 0);  // a failed flush loses its rows here
  CHECK(h.gauges.forwarding.load());
  CHECK(h.gauges.failures.load() >= 3);
  CHECK(h.said("takes records again after"));
  CHECK(h.dest.built.load() >= 2);  // the failed sink was aborted and built again
}

TEST_CASE("rows left in the buffer by a stopped run go first in the next run", "[buffer]") {
  temp_dir dir("restart");
  {
    harness h(dir.str());
    h.dest.down = true;
    for (std::int64_t i = 0; i < 5; ++i) h.sink->write(rows(i * 1000, 1000));
    h.sink->abort();
    CHECK(h.dest.size() == 0);
    CHECK(h.gauges.pending.load() == 5000);
    CHECK(h.said("5000 records stay in its buffer"));
  }
  harness h2(dir.str());
  CHECK(h2.said("5000 records left in its buffer"));
  h2.sink->write(rows(5000, 1000));
  h2.sink->close();
  CHECK(check_complete_in_order(h2.dest, 6000) == 0);
}

TEST_CASE("a full buffer with drop_oldest drops the oldest rows, counts and says it", "[buffer]") {
  temp_dir dir("drop");
  buffer::sink_options o;
  o.max_size = 2ull << 20;
  o.drop_oldest = true;
  harness h(dir.str(), o);
  h.dest.down = true;
  // About 40 bytes a row: 200,000 rows are several times the 2 MiB bound.
  for (std::int64_t i = 0; i < 200; ++i) h.sink->write(rows(i * 1000, 1000));
  const std::uint64_t dropped = h.gauges.dropped.load();
  CHECK(dropped > 100000);
  CHECK(h.gauges.full_events.load() > 0);
  CHECK(h.gauges.pending.load() + dropped == 200000);
  CHECK(h.gauges.bytes_on_disk.load() <= (2ull << 20));
  CHECK(h.said("dropped the oldest"));
  h.dest.down = false;
  h.sink->close();
  CHECK(h.dest.lost == dropped);  // every dropped row was said, as lost
  // What is left is the newest rows, all of them, in order.
  std::lock_guard<std::mutex> lk(h.dest.mu);
  REQUIRE(!h.dest.seen.empty());
  CHECK(h.dest.seen.back().second == 199999);
  CHECK(h.dest.seen.size() == 200000 - dropped);
}

TEST_CASE("a full buffer with block holds the writer until the sink takes rows again", "[buffer]") {
  temp_dir dir("block");
  buffer::sink_options o;
  o.max_size = 2ull << 20;
  harness h(dir.str(), o);
  h.dest.down = true;
  std::atomic<std::int64_t> written{0};
  std::thread writer([&] {
    for (std::int64_t i = 0; i < 200; ++i) {
      h.sink->write(rows(i * 1000, 1000));
      written = (i + 1) * 1000;
    }
  });
  REQUIRE(testing::poll_until([&] { return h.said("is full"); }, 20s));
  const std::int64_t at_full = written.load();
  CHECK(at_full < 200000);
  CHECK(h.gauges.full_events.load() > 0);
  CHECK(h.gauges.dropped.load() == 0);
  h.dest.down = false;
  writer.join();
  h.sink->close();
  CHECK(h.said("has room again"));
  CHECK(check_complete_in_order(h.dest, 200000) == 0);
  CHECK(h.dest.lost == 0);
}

TEST_CASE("a buffer holding rows of another schema is refused, and one directory has one user",
          "[buffer]") {
  temp_dir dir("refuse");
  {
    harness h(dir.str());
    h.dest.down = true;
    h.sink->write(rows(0, 10));
    h.sink->abort();
  }
  {
    auto other = std::make_shared<core::schema>();
    other->add("device", core::value_type::string);
    other->add("reading", core::value_type::number);
    buffer::sink_options o;
    o.dir = dir.str();
    destination d;
    auto s = buffer::make_buffered_sink([&] { return std::make_unique<recording_sink>(d); }, o);
    core::operator_context ctx;
    ctx.name = "uplink";
    CHECK_THROWS_WITH(s->open(ctx, other), Catch::Contains("10 records of another schema") &&
                                                Catch::Contains("device:string seq:int"));
  }
  harness h(dir.str());
  buffer::options qo;
  qo.dir = dir.str() + "/uplink-0";
  CHECK_THROWS_WITH(buffer::segment_queue(qo), Catch::Contains("is in use by another process (pid " +
                                                                std::to_string(::getpid())));
  h.sink->close();
  CHECK(h.dest.size() == 10);
}
