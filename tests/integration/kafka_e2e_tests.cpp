// End-to-end: the real `pel` binary with Kafka. `pel kafka-broker` starts and stops on a
// signal; `pel run` reads a topic that kcat filled, filters, and writes a topic kcat reads.
#include "e2e_support.hpp"
#include "process.hpp"
#include "pel/testing/poll.hpp"

#include "pel/connectors/kafka_broker.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

const std::string pel_binary = PEL_BINARY_DIR "/framework/cli/pel";



std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(l);
  return out;
}

template <class F>
bool poll_until(F&& f, std::chrono::milliseconds timeout) {
  return pel::testing::poll_until(std::forward<F>(f), timeout, 50ms);
}

}  // namespace

TEST_CASE("pel kafka-broker serves topics until SIGTERM", "[kafka][e2e]") {
  REQUIRE(std::filesystem::exists(pel_binary));
  pel::e2e::temp_dir dir;
  const auto file = (dir / "bootstrap");
  pel::e2e::process broker({pel_binary, "kafka-broker", "--brokers", "2", "--topics", "in:4,out:2",
                            "--bootstrap-file", file});
  REQUIRE(broker.wait_until([&] { return broker.out().find("bootstrap: ") != std::string::npos; },
                            30s));
  std::string boot;
  REQUIRE(poll_until(
      [&] {
        std::ifstream f(file);
        return static_cast<bool>(std::getline(f, boot)) && !boot.empty();
      },
      10s));
  REQUIRE(broker.out().find(boot) != std::string::npos);
  const auto meta = pel::e2e::shell_output("timeout 30 kcat -b " + boot + " -L 2>&1");
  CHECK(meta.find("2 brokers") != std::string::npos);
  CHECK(meta.find("topic \"in\" with 4 partitions") != std::string::npos);
  CHECK(meta.find("topic \"out\" with 2 partitions") != std::string::npos);
  broker.send_signal(SIGTERM);
  auto r = broker.wait(15s);
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == 0);
}

TEST_CASE("pel run: kafka source -> filter -> kafka sink, checked with kcat", "[kafka][e2e]") {
  REQUIRE(std::filesystem::exists(pel_binary));
  pel::connectors::kafka_broker broker({1, 0, {"ticks:4", "large:4"}, ""});
  const auto boot = broker.bootstraps();
  pel::e2e::temp_dir dir;

  // kcat fills the input: ids 0..999, keyed so they spread over the partitions.
  {
    std::ofstream f((dir / "in.txt"));
    for (int i = 0; i < 1000; ++i)
      f << "k" << i << "|{\"id\":" << i << ",\"sym\":\"S" << i % 7 << "\",\"qty\":" << i << "}\n";
  }
  REQUIRE(std::system(
              ("kcat -b " + boot + " -P -t ticks -K '|' -l " + (dir / "in.txt")).c_str()) == 0);

  {
    std::ofstream y((dir / "pipeline.yaml"));
    y << "pipeline:\n"
         "  name: kafka_e2e\n"
         "  checkpoint_interval: 200ms\n"
         "sources:\n"
         "  ticks:\n"
         "    type: kafka\n"
         "    bootstrap_servers: ${BOOT}\n"
         "    topics: [ticks]\n"
         "    group_id: e2e\n"
         "    rdkafka: {session.timeout.ms: 6000}\n"
         "    schema: {id: int, sym: string, qty: int}\n"
         "operators:\n"
         "  big:\n"
         "    type: filter\n"
         "    input: ticks\n"
         "    where: qty >= 600\n"
         "sinks:\n"
         "  out:\n"
         "    type: kafka\n"
         "    input: big\n"
         "    bootstrap_servers: ${BOOT}\n"
         "    topic: large\n"
         "    key: sym\n"
         "    format: json\n";
  }
  pel::e2e::process_options opt;
  opt.env.push_back("BOOT=" + boot);
  pel::e2e::process run({pel_binary, "run", (dir / "pipeline.yaml")}, opt);

  std::vector<std::string> got;
  const bool all = poll_until(
      [&] {
        run.wait_until([] { return false; }, 10ms);  // keep its pipes drained
        got = lines_of(pel::e2e::shell_output("timeout 30 kcat -b " + boot +
                             " -C -t large -o beginning -e -q -f '%s\\n' 2>/dev/null"));
        return got.size() >= 400 || run.exited();
      },
      90s);
  INFO("pel stderr: " << run.err());
  REQUIRE(all);
  REQUIRE_FALSE(run.exited());

  run.send_signal(SIGTERM);
  auto r = run.wait(30s);
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == 0);

  // Exactly ids 600..999, each once (a clean run has no replays).
  std::multiset<long> ids;
  for (const auto& l : got) {
    auto p = l.find("\"id\":");
    REQUIRE(p != std::string::npos);
    ids.insert(std::stol(l.substr(p + 5)));
  }
  REQUIRE(ids.size() == 400);
  REQUIRE(std::set<long>(ids.begin(), ids.end()).size() == 400);
  REQUIRE(*ids.begin() == 600);
  REQUIRE(*ids.rbegin() == 999);
}

TEST_CASE("the main job: feed, live analytics and viewer over the embedded broker", "[kafka][e2e]") {
  // What deployments/local/quickstart.sh runs, shortened.
  auto r = pel::e2e::run_pel({"run", "--duration", "6s", "--embedded-kafka",
                              "ticks:4,bars:4,alerts:1", "examples/trading/feed.yaml",
                              "examples/trading/live.yaml", "examples/trading/show.yaml"},
                             std::chrono::milliseconds(60000));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  // show.yaml prints the bars that live.yaml wrote to the `bars` topic as a table:
  // time symbol bar_open bar_high bar_low bar_close vwap bar_volume bar_trades, the time in
  // ISO 8601 (a window's start is an event time).
  std::set<std::string> symbols;
  int bars = 0;
  for (const auto& line : pel::e2e::lines_of(r.out)) {
    std::istringstream in(line);
    long long volume = 0, trades = 0;
    std::string time, symbol;
    double open, high, low, close, vwap;
    if (!(in >> time >> symbol >> open >> high >> low >> close >> vwap >> volume >> trades)) continue;
    ++bars;
    symbols.insert(symbol);
    // 1 s windows of the generator's day: 2024-01-02T14:29:59.000Z, 2024-01-02T14:30:00.000Z...
    CHECK(time.size() == 24);
    CHECK(time.rfind("2024-01-02T", 0) == 0);
    CHECK(time.substr(19) == ".000Z");
    CHECK(low <= open);
    CHECK(open <= high);
    CHECK(low <= close);
    CHECK(close <= high);
    CHECK(vwap >= low - 1e-9);
    CHECK(vwap <= high + 1e-9);
    CHECK(trades > 0);
    CHECK(volume >= trades);
  }
  // 8 symbols at 4,000 trades/s: every symbol has bars after a few seconds.
  CHECK(symbols.size() == 8);
  CHECK(bars >= 16);
}

TEST_CASE("a kafka source rescaled 1 to 3 to 2 while it reads keeps every record once and each symbol in order",
          "[kafka][e2e][scaling]") {
  REQUIRE(std::filesystem::exists(pel_binary));
  pel::connectors::kafka_broker broker({1, 0, {"ticks:6"}, ""});
  const auto boot = broker.bootstraps();
  pel::e2e::temp_dir dir;
  // The feed: 60,000 trades over 13 symbols (6 partitions of different sizes, as 13 keys
  // hash), 20,000 a second, so the reader below is still reading when it is rescaled.
  {
    std::ofstream y((dir / "feed.yaml"));
    y << "pipeline: {name: feed}\n"
         "sources:\n"
         "  trades: {type: generator, profile: trades, symbols: 13, rate: 20000, count: 60000}\n"
         "sinks:\n"
         "  ticks:\n"
         "    type: kafka\n"
         "    input: trades\n"
         "    bootstrap_servers: ${BOOT}\n"
         "    topic: ticks\n"
         "    key: symbol\n"
         "    format: json\n";
  }
  {
    std::ofstream y((dir / "read.yaml"));
    y << "pipeline:\n"
         "  name: read\n"
         "  checkpoints: {interval: 100ms}\n"
         "  scaling:\n"
         "    policy: schedule\n"
         "    schedule:\n"
         "      - {at: 800ms, component: ticks, parallelism: 3}\n"
         "      - {at: 1600ms, component: ticks, parallelism: 2}\n"
         "sources:\n"
         "  ticks:\n"
         "    type: kafka\n"
         "    bootstrap_servers: ${BOOT}\n"
         "    topics: [ticks]\n"
         "    group_id: rescale-e2e\n"
         "    assign: true\n"
         "    start_from: earliest\n"
         "    parallelism: {initial: 1, min: 1, max: 4}\n"
         "    schema: {ts: int, symbol: string, price: double, qty: int, side: string, trade_id: int}\n"
         "sinks:\n"
         "  out: {type: file, input: ticks, path: " << (dir / "out.jsonl") << ", format: json}\n";
  }
  pel::e2e::process_options opt;
  opt.env.push_back("BOOT=" + boot);
  pel::e2e::process read({pel_binary, "run", "--progress", "never", (dir / "read.yaml")}, opt);
  pel::e2e::process feed({pel_binary, "run", "--progress", "never", (dir / "feed.yaml")}, opt);
  std::vector<std::string> got;
  const bool all = poll_until(
      [&] {
        read.wait_until([] { return false; }, 10ms);
        feed.wait_until([] { return false; }, 10ms);
        got = lines_of(pel::e2e::read_file((dir / "out.jsonl")));
        return got.size() >= 60000 || read.exited();
      },
      120s);
  INFO("reader stderr: " << read.err());
  INFO("feed stderr: " << feed.err());
  INFO("lines: " << got.size());
  REQUIRE(all);
  REQUIRE_FALSE(read.exited());
  read.send_signal(SIGTERM);
  auto r = read.wait(30s);
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == 0);
  // Both rescales were carried out while it read.
  CHECK(r.err.find("ticks: 1 → 3 instances, rescaled") != std::string::npos);
  CHECK(r.err.find("ticks: 3 → 2 instances, rescaled") != std::string::npos);
  CHECK(r.err.find("ticks: parallelism 1 -> 3 -> 2") != std::string::npos);
  got = lines_of(pel::e2e::read_file((dir / "out.jsonl")));
  // Every trade once, and each symbol's trades in the order they were produced.
  std::set<long> ids;
  std::map<std::string, long> last;
  std::size_t out_of_order = 0;
  for (const auto& l : got) {
    auto p = l.find("\"trade_id\":");
    auto s = l.find("\"symbol\":\"");
    REQUIRE(p != std::string::npos);
    REQUIRE(s != std::string::npos);
    const long id = std::stol(l.substr(p + 11));
    const std::string sym = l.substr(s + 10, l.find('"', s + 10) - (s + 10));
    ids.insert(id);
    auto [it, fresh] = last.try_emplace(sym, id);
    if (!fresh) {
      if (id <= it->second) ++out_of_order;
      it->second = id;
    }
  }
  CHECK(got.size() == 60000);
  CHECK(ids.size() == 60000);
  CHECK(out_of_order == 0);
  CHECK(last.size() == 13);
}
