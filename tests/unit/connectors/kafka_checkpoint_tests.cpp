// Checkpoints of the Kafka connectors against the mock cluster: the source's snapshot and
// restore of its offsets, and the sink's exactly-once delivery (epochs held until commit, one
// transaction each, a marker record saying which epoch is visible), with kcat reading
// read_committed as the independent consumer.
#include "kafka_test_util.hpp"

#include "pel/spec/diagnostics.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

using namespace pel;
using namespace pel::kafka_test;

namespace {

core::operator_context source_ctx() {
  core::operator_context c;
  c.name = "in";
  return c;
}

core::operator_context sink_ctx(std::uint32_t instance = 0) {
  core::operator_context c;
  c.name = "out";
  c.instance = instance;
  c.parallelism = 2;
  return c;
}



std::vector<std::int64_t> iota_ids(int from, int to) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(to - from));
  std::iota(v.begin(), v.end(), from);
  return v;
}

/// What a read_committed kcat consumer sees of `topic`, from the beginning to the end.
std::vector<std::string> committed_lines(const std::string& boot, const std::string& topic,
                                         const std::string& format = "%s\\n") {
  return split_lines(run("timeout 60 kcat -b " + boot +
                         " -X isolation.level=read_committed -C -t " + topic +
                         " -o beginning -e -q -f '" + format + "' 2>/dev/null"));
}

/// The `id` of each JSON line, sorted.
std::vector<std::int64_t> ids_of(const std::vector<std::string>& lines) {
  std::vector<std::int64_t> out;
  for (const auto& l : lines) {
    auto at = l.find("\"id\":");
    REQUIRE(at != std::string::npos);
    out.push_back(std::stoll(l.substr(at + 5)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

owned_config exactly_once_config(const std::string& boot, const std::string& extra_key = "",
                                 const std::string& extra_value = "") {
  std::vector<std::pair<std::string, spec::node_ptr>> e = {{"bootstrap_servers", scalar(boot)},
                                                           {"topic", scalar("out")},
                                                           {"key", scalar("sym")},
                                                           {"delivery", scalar("exactly_once")},
                                                           {"flush_timeout", scalar("20s")}};
  if (!extra_key.empty()) e.emplace_back(extra_key, scalar(extra_value));
  return sink_config(std::move(e));
}

/// JSON rows for one partition: ids [from, to).
std::vector<std::string> partition_rows(int from, int to) {
  return json_lines(from, to);
}

}  // namespace

// --- source ---------------------------------------------------------------------------------

TEST_CASE("kafka source restored from a snapshot resumes at each partition's next offset",
          "[kafka][source][checkpoint]") {
  // With alignment (max_drift) each partition is read from its own queue and a stash.
  const bool aligned = GENERATE(false, true);
  INFO((aligned ? "max_drift set" : "shared queue"));
  auto with_alignment = [&](std::vector<std::pair<std::string, spec::node_ptr>> e) {
    if (aligned) e.emplace_back("event_time", map({{"max_drift", scalar("1s")}}));
    return source_config(std::move(e));
  };
  // Skewed: partition 0 big, partition 1 small, partition 2 empty at the snapshot.
  connectors::kafka_broker broker({1, 0, {"s:3"}, ""});
  const auto boot = broker.bootstraps();
  REQUIRE(produce_raw(boot, "s", 0, partition_rows(0, 20000)));
  REQUIRE(produce_raw(boot, "s", 1, partition_rows(20000, 20020)));

  auto first_cfg = with_alignment({{"bootstrap_servers", scalar(boot)},
                                   {"topics", list({"s"})},
                                   {"assign", scalar("true")},
                                   {"start_from", scalar("earliest")},
                                   {"schema", test_schema()},
                                   {"include", list({"partition", "offset"})}});
  core::outputs first_out;
  std::string snap;
  {
    connectors::kafka_source a(first_cfg.cfg);
    REQUIRE(a.replayable());
    a.open(source_ctx());
    // Part of the big partition, and every partition seen at least to its first position
    // (the small one read, the empty one at its end).
    std::vector<core::split_report> reports;
    REQUIRE(poll_until([&] {
      a.poll(first_out, 40);
      a.splits(reports);
      std::set<std::int64_t> parts;
      for (std::size_t i = 0; i < first_out.main.size(); ++i)
        parts.insert(std::get<std::int64_t>(first_out.main.row(i)[3]));
      const bool empty_at_end = std::any_of(reports.begin(), reports.end(),
                                            [](auto& r) { return r.name == "s/2" && r.at_end; });
      return first_out.main.size() >= 300 && parts.count(1) && empty_at_end;
    }));
    a.on_barrier(7);
    core::state_writer w;
    a.snapshot(w);
    snap = w.take();
    a.close();
  }
  const std::size_t before = first_out.main.size();
  REQUIRE(before < 20000);  // the big partition was read only in part
  // More data everywhere after the snapshot, the empty partition included.
  REQUIRE(produce_raw(boot, "s", 0, partition_rows(20020, 20100)));
  REQUIRE(produce_raw(boot, "s", 1, partition_rows(20100, 20110)));
  REQUIRE(produce_raw(boot, "s", 2, partition_rows(20110, 20115)));

  // `latest`: without the restore this instance would skip everything produced so far.
  auto second_cfg = with_alignment({{"bootstrap_servers", scalar(boot)},
                                    {"topics", list({"s"})},
                                    {"assign", scalar("true")},
                                    {"start_from", scalar("latest")},
                                    {"schema", test_schema()},
                                    {"include", list({"partition", "offset"})}});
  connectors::kafka_source b(second_cfg.cfg);
  b.open(source_ctx());
  core::state_reader r(snap);
  b.restore(r);
  REQUIRE(r.at_end());
  core::outputs out;
  REQUIRE(read_rows(b, out, 20115 - before));
  poll_until(
      [&] {
        b.poll(out, 512);
        return out.main.size() > 20115 - before;
      },
      std::chrono::milliseconds(500));
  REQUIRE(out.main.size() == 20115 - before);

  // Together exactly once each, and each partition continues at the offset after the last
  // one read before the snapshot.
  auto all = ints(first_out.main, 0);
  auto rest = ints(out.main, 0);
  all.insert(all.end(), rest.begin(), rest.end());
  std::sort(all.begin(), all.end());
  REQUIRE(all == iota_ids(0, 20115));
  std::map<std::int64_t, std::int64_t> last_before, first_after;
  for (std::size_t i = 0; i < first_out.main.size(); ++i) {
    const auto* row = first_out.main.row(i);
    auto& v = last_before[std::get<std::int64_t>(row[3])];
    v = std::max(v, std::get<std::int64_t>(row[4]));
  }
  for (std::size_t i = 0; i < out.main.size(); ++i) {
    const auto* row = out.main.row(i);
    const auto p = std::get<std::int64_t>(row[3]);
    if (!first_after.count(p)) first_after[p] = std::get<std::int64_t>(row[4]);
  }
  REQUIRE(first_after[0] == last_before[0] + 1);
  REQUIRE(first_after[1] == last_before[1] + 1);
  REQUIRE(first_after[2] == 0);
  // A restored start is no loss.
  std::vector<core::source_notice> notices;
  b.take_notices(notices);
  for (const auto& n : notices) CHECK(n.lost == 0);
  b.close();
}

TEST_CASE("kafka source in a group starts a restored partition at the checkpoint, not the commit",
          "[kafka][source][checkpoint][group]") {
  connectors::kafka_broker broker({1, 0, {"gs:2"}, ""});
  const auto boot = broker.bootstraps();
  REQUIRE(produce_raw(boot, "gs", 0, partition_rows(0, 100)));
  REQUIRE(produce_raw(boot, "gs", 1, partition_rows(100, 200)));
  auto c = source_config({{"bootstrap_servers", scalar(boot)},
                          {"topics", list({"gs"})},
                          {"group_id", scalar("g-restore")},
                          {"rdkafka", map({{"session.timeout.ms", scalar("6000")},
                                           {"heartbeat.interval.ms", scalar("500")}})},
                          {"schema", test_schema()}});
  std::string snap;
  {
    // Reads everything and snapshots, but its checkpoint never completes: nothing committed.
    connectors::kafka_source a(c.cfg);
    a.open(source_ctx());
    core::outputs out;
    REQUIRE(read_rows(a, out, 200, std::chrono::seconds(60)));
    a.on_barrier(1);
    core::state_writer w;
    a.snapshot(w);
    snap = w.take();
    a.close();
  }
  REQUIRE(produce_raw(boot, "gs", 0, partition_rows(200, 210)));
  REQUIRE(produce_raw(boot, "gs", 1, partition_rows(210, 220)));
  connectors::kafka_source b(c.cfg);
  b.open(source_ctx());
  core::state_reader r(snap);
  b.restore(r);
  core::outputs out;
  // Without the restore the group (no committed offset) would start at the earliest.
  REQUIRE(read_rows(b, out, 20, std::chrono::seconds(60)));
  poll_until(
      [&] {
        b.poll(out, 512);
        return out.main.size() > 20;
      },
      std::chrono::seconds(1));
  auto ids = ints(out.main, 0);
  std::sort(ids.begin(), ids.end());
  REQUIRE(ids == iota_ids(200, 220));
  b.close();
}

TEST_CASE("kafka source refuses a snapshot of another version", "[kafka][source][checkpoint]") {
  auto c = source_config({{"bootstrap_servers", scalar("127.0.0.1:1")},
                          {"topics", list({"t"})},
                          {"assign", scalar("true")},
                          {"schema", test_schema()}});
  connectors::kafka_source s(c.cfg);
  core::state_writer w;
  w.put<std::uint32_t>(99);
  core::state_reader r(w.bytes());
  REQUIRE_THROWS_WITH(s.restore(r), Catch::Contains("version 99"));
}

// --- sink -----------------------------------------------------------------------------------

TEST_CASE("kafka exactly_once sink output is visible only once its checkpoint commits",
          "[kafka][sink][checkpoint]") {
  connectors::kafka_broker broker({1, 0, {"out:3", "pel-transactions:1"}, ""});
  const auto boot = broker.bootstraps();
  auto c = exactly_once_config(boot);
  connectors::kafka_sink sink(c.cfg);
  REQUIRE(sink.exactly_once());
  sink.open(sink_ctx(), row_schema());
  sink.write(rows(0, 100));
  sink.prepare(1);
  core::state_writer w;
  sink.snapshot(w);
  sink.write(rows(100, 150));  // after barrier 1: belongs to checkpoint 2
  sink.flush();                // holds, does not deliver
  REQUIRE(committed_lines(boot, "out").empty());
  REQUIRE(sink.pending_epochs() == std::vector<std::uint64_t>{1});

  sink.commit(1);
  REQUIRE(ids_of(committed_lines(boot, "out")) == iota_ids(0, 100));
  REQUIRE(sink.delivered() == 100);
  REQUIRE(sink.last_committed_epoch() == 1);

  sink.prepare(2);
  sink.commit(2);
  REQUIRE(ids_of(committed_lines(boot, "out")) == iota_ids(0, 150));
  // Same encoding and keys as at-least-once: key = sym.
  auto keyed_lines = committed_lines(boot, "out", "%k %s\\n");
  for (const auto& l : keyed_lines) {
    const auto id = std::stoll(l.substr(l.find("\"id\":") + 5));
    REQUIRE(l.substr(0, l.find(' ')) == "S" + std::to_string(id % 7));
  }
  // The marker says which checkpoint is visible, under the instance's transactional id.
  auto markers = committed_lines(boot, "pel-transactions", "%k=%s\\n");
  REQUIRE(markers == std::vector<std::string>{"pel-out-out-0=1", "pel-out-out-0=2"});

  // End of stream: the rest is one final epoch.
  sink.write(rows(150, 160));
  sink.close();
  REQUIRE(ids_of(committed_lines(boot, "out")) == iota_ids(0, 160));
}

TEST_CASE("kafka exactly_once sink restored after a crash makes the prepared epoch visible once",
          "[kafka][sink][checkpoint]") {
  const bool aborted = GENERATE(true, false);  // abort() or just destroyed
  INFO((aborted ? "crash by abort()" : "crash by destruction"));
  connectors::kafka_broker broker({1, 0, {"out:3", "pel-transactions:1"}, ""});
  const auto boot = broker.bootstraps();
  auto c = exactly_once_config(boot);
  std::string snap2;
  {
    connectors::kafka_sink a(c.cfg);
    a.open(sink_ctx(), row_schema());
    a.write(rows(0, 50));
    a.prepare(1);
    core::state_writer w1;
    a.snapshot(w1);
    a.commit(1);
    a.write(rows(50, 120));
    a.prepare(2);
    core::state_writer w2;
    a.snapshot(w2);
    snap2 = w2.take();
    a.write(rows(120, 130));  // after barrier 2: belongs to no complete checkpoint
    if (aborted) a.abort();
  }
  REQUIRE(ids_of(committed_lines(boot, "out")) == iota_ids(0, 50));

  // Checkpoint 2 completed (the manifest was written) but its commit never ran.
  connectors::kafka_sink b(c.cfg);
  b.open(sink_ctx(), row_schema());
  core::state_reader r(snap2);
  b.restore(2, r);
  REQUIRE(r.at_end());
  REQUIRE(b.last_committed_epoch() == 2);
  REQUIRE(b.pending_epochs().empty());
  REQUIRE(ids_of(committed_lines(boot, "out")) == iota_ids(0, 120));
  // The replayed input after checkpoint 2 goes on normally.
  b.write(rows(120, 130));
  b.prepare(3);
  b.commit(3);
  REQUIRE(ids_of(committed_lines(boot, "out")) == iota_ids(0, 130));
  b.close();
}

TEST_CASE("kafka exactly_once sink restore does not repeat an epoch already committed",
          "[kafka][sink][checkpoint]") {
  connectors::kafka_broker broker({1, 0, {"out:3", "pel-transactions:1"}, ""});
  const auto boot = broker.bootstraps();
  auto c = exactly_once_config(boot);
  // Another instance's markers in the same topic must not count.
  auto other = exactly_once_config(boot);
  connectors::kafka_sink neighbour(other.cfg);
  neighbour.open(sink_ctx(1), row_schema());
  neighbour.write(rows(1000, 1001));
  neighbour.prepare(9);
  neighbour.commit(9);

  std::string snap;
  {
    connectors::kafka_sink a(c.cfg);
    a.open(sink_ctx(), row_schema());
    a.write(rows(0, 40));
    a.prepare(1);
    core::state_writer w;
    a.snapshot(w);
    snap = w.take();
    a.commit(1);  // made visible, then the job died before anything else
  }
  REQUIRE(ids_of(committed_lines(boot, "out")).size() == 41);
  connectors::kafka_sink b(c.cfg);
  b.open(sink_ctx(), row_schema());
  core::state_reader r(snap);
  b.restore(1, r);
  REQUIRE(b.last_committed_epoch() == 1);
  REQUIRE(b.pending_epochs().empty());
  auto ids = ids_of(committed_lines(boot, "out"));
  auto expected = iota_ids(0, 40);
  expected.push_back(1000);
  REQUIRE(ids == expected);
  REQUIRE(b.delivered() == 0);
  b.close();
  neighbour.close();
}

TEST_CASE("kafka exactly_once sink instances keep their transactional id and fence the old one",
          "[kafka][sink][checkpoint]") {
  connectors::kafka_broker broker({1, 0, {"out:3", "pel-transactions:1"}, ""});
  const auto boot = broker.bootstraps();
  auto c = exactly_once_config(boot, "transactional_id", "trades-out");
  connectors::kafka_sink old_sink(c.cfg);
  old_sink.open(sink_ctx(0), row_schema());
  REQUIRE(old_sink.transactional_id() == "trades-out-0");
  old_sink.write(rows(0, 10));
  old_sink.prepare(1);

  connectors::kafka_sink other(c.cfg);
  other.open(sink_ctx(1), row_schema());
  REQUIRE(other.transactional_id() == "trades-out-1");

  // The restarted instance 0: same id, and init_transactions fences the old producer.
  connectors::kafka_sink fresh(c.cfg);
  fresh.open(sink_ctx(0), row_schema());
  REQUIRE(fresh.transactional_id() == old_sink.transactional_id());
  bool old_failed = false;
  try {
    old_sink.commit(1);
  } catch (const std::runtime_error& e) {
    old_failed = true;
    CHECK_THAT(e.what(), Catch::Contains("kafka sink 'out'"));
  }
  if (!old_failed) {
    // librdkafka 2.0.2's mock cluster does not fence producers (its transaction coordinator
    // accepts the old epoch); a real broker answers PRODUCER_FENCED.
    WARN("the mock cluster did not fence the old producer (expected with librdkafka 2.0.2)");
  }
  fresh.write(rows(10, 20));
  fresh.prepare(2);
  fresh.commit(2);
  auto ids = ids_of(committed_lines(boot, "out"));
  REQUIRE(std::count(ids.begin(), ids.end(), 15) == 1);
  fresh.close();
  other.close();
}

TEST_CASE("kafka at_least_once sink is unchanged by checkpoint hooks",
          "[kafka][sink][checkpoint]") {
  connectors::kafka_broker broker({1, 0, {"out:2"}, ""});
  const auto boot = broker.bootstraps();
  auto c = sink_config({{"bootstrap_servers", scalar(boot)}, {"topic", scalar("out")}});
  connectors::kafka_sink sink(c.cfg);
  REQUIRE_FALSE(sink.exactly_once());
  sink.open(sink_ctx(), row_schema());
  REQUIRE(sink.transactional_id().empty());
  sink.write(rows(0, 30));
  sink.prepare(1);  // delivers everything written so far
  REQUIRE(sink.delivered() == 30);
  REQUIRE(ids_of(committed_lines(boot, "out")) == iota_ids(0, 30));
  sink.abort();  // = close()
}

TEST_CASE("kafka exactly_once sink config errors are located",
          "[kafka][sink][checkpoint][config]") {
  auto no_idem = sink_config({{"bootstrap_servers", scalar("127.0.0.1:1")},
                              {"topic", scalar("t")},
                              {"delivery", scalar("exactly_once")},
                              {"idempotence", scalar("false")}});
  try {
    connectors::kafka_sink s(no_idem.cfg);
    FAIL("no error");
  } catch (const spec::config_error& e) {
    REQUIRE(e.path() == "sinks.out.idempotence");
  }
  auto stray = sink_config({{"bootstrap_servers", scalar("127.0.0.1:1")},
                            {"topic", scalar("t")},
                            {"transactional_id", scalar("x")}});
  try {
    connectors::kafka_sink s(stray.cfg);
    FAIL("no error");
  } catch (const spec::config_error& e) {
    REQUIRE(e.path() == "sinks.out.transactional_id");
  }
}

TEST_CASE("kafka exactly_once sink aborts and retries a transaction that failed",
          "[kafka][sink][checkpoint][fault]") {
  connectors::kafka_broker broker({1, 0, {"out:3", "pel-transactions:1"}, ""});
  const auto boot = broker.bootstraps();
  auto c = exactly_once_config(boot);
  connectors::kafka_sink sink(c.cfg);
  sink.open(sink_ctx(), row_schema());
  sink.write(rows(0, 20));
  sink.prepare(1);
  // The epoch's produce request is refused for good: the transaction must be aborted.
  broker.push_request_errors(connectors::kafka_api::produce,
                             {connectors::kafka_errc::topic_authorization_failed});
  sink.commit(1);
  REQUIRE(sink.last_committed_epoch() == 1);
  REQUIRE(sink.delivered() == 20);
  // Every row is there. The mock cluster (librdkafka 2.0.2) also shows read_committed
  // consumers the rows of the aborted attempt (it keeps no last stable offset); a real broker
  // hides them, so only the distinct ids are compared here.
  auto ids = ids_of(committed_lines(boot, "out"));
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  REQUIRE(ids == iota_ids(0, 20));
  sink.close();
}
