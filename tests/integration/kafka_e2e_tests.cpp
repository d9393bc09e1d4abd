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
  // time symbol bar_open bar_high bar_low bar_close vwap bar_volume bar_trades
  std::set<std::string> symbols;
  int bars = 0;
  for (const auto& line : pel::e2e::lines_of(r.out)) {
    std::istringstream in(line);
    long long time = 0, volume = 0, trades = 0;
    std::string symbol;
    double open, high, low, close, vwap;
    if (!(in >> time >> symbol >> open >> high >> low >> close >> vwap >> volume >> trades)) continue;
    ++bars;
    symbols.insert(symbol);
    CHECK(time % 1000 == 0);  // 1 s windows
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
