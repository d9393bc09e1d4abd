// End-to-end exactly-once: Kafka ticks (one partition, skewed symbols) -> keyed 1 s OHLC/VWAP
// windows at parallelism 2 -> a Kafka sink with `delivery: exactly_once`, read back with
// `isolation.level=read_committed` by kcat. A fault-free run gives the reference; then
// - `--chaos` crashes random instances again and again inside one `pel run`,
// - `pel run` is killed with SIGKILL and restarted on the same state directory,
// - `pel run` is stopped with SIGTERM and restarted on the same state directory,
// while the input arrives live. Every window must be in the committed output exactly once,
// with the reference's values (counts exact, floats within 1e-12 relative).
//
// PEL_CHAOS_LONG=1 runs the long version (more crashes and kills).
#include "e2e_support.hpp"
#include "json_line.hpp"
#include "process.hpp"
#include "pel/testing/random.hpp"

#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
namespace e2e = pel::e2e;

namespace {

const std::string pel_binary = PEL_BINARY_DIR "/framework/cli/pel";

bool long_version() {
  const char* v = std::getenv("PEL_CHAOS_LONG");
  return v != nullptr && std::string(v) == "1";
}

struct tick {
  std::int64_t ts;
  std::string symbol;
  double price;
  std::int64_t qty;
};

/// Ticks in event-time order over `seconds` of event time, symbols skewed (the first takes
/// about a third of the trades, the last few appear only now and then), prices a random walk.
std::vector<tick> make_ticks(int seconds, int per_second) {
  static const char* names[] = {"AAPL", "MSFT", "NVDA", "AMZN", "META", "TSLA", "GOOG", "NFLX", "AMD", "INTC", "ORCL", "IBM"};
  constexpr int n = 12;
  double weight[n], total = 0;
  for (int k = 0; k < n; ++k) total += weight[k] = 1.0 / (k + 1);
  pel::testing::xorshift rng(0x5eed1234abcdULL);
  double price[n];
  for (int k = 0; k < n; ++k) price[k] = 50.0 + 20.0 * k;
  std::vector<tick> out;
  const std::int64_t t0 = 1'767'225'600'000;  // 2026-01-01 00:00:00 UTC
  const std::int64_t count = std::int64_t{seconds} * per_second;
  for (std::int64_t i = 0; i < count; ++i) {
    double u = static_cast<double>(rng() % 1'000'000) / 1e6 * total;
    int k = 0;
    while (k < n - 1 && u > weight[k]) u -= weight[k++];
    price[k] *= 1.0 + (static_cast<double>(rng() % 2001) - 1000.0) * 1e-6;
    out.push_back({t0 + i * 1000 / per_second, names[k], price[k], 1 + static_cast<std::int64_t>(rng() % 500)});
  }
  return out;
}

/// The windows (symbol, window start) the ticks make, all closed by the sentinel.
std::set<std::pair<std::string, std::int64_t>> windows_of(const std::vector<tick>& ticks) {
  std::set<std::pair<std::string, std::int64_t>> w;
  for (const auto& t : ticks) w.emplace(t.symbol, t.ts - t.ts % 1000);
  return w;
}

/// A Kafka broker of its own (`pel kafka-broker`) and kcat as the independent client.
struct rig {
  e2e::temp_dir dir;
  std::unique_ptr<e2e::process> broker;
  std::string boot;

  rig() {
    const auto boot_file = dir / "bootstrap";
    broker = std::make_unique<e2e::process>(std::vector<std::string>{
        pel_binary, "kafka-broker", "--port", "0", "--bootstrap-file", boot_file, "--topics",
        "in_ref:1,in_live:1,ref:2,out:2"});
    REQUIRE(broker->wait_until(
        [&] {
          std::ifstream f(boot_file);
          return static_cast<bool>(std::getline(f, boot)) && !boot.empty();
        },
        30s));
  }

  void produce(const std::string& topic, const std::vector<tick>& ticks, std::size_t from, std::size_t to) {
    const std::string file = dir / "chunk.txt";
    {
      std::ofstream f(file);
      f.precision(17);
      for (std::size_t i = from; i < to && i < ticks.size(); ++i) {
        const auto& t = ticks[i];
        f << t.symbol << "|{\"ts\":" << t.ts << ",\"symbol\":\"" << t.symbol << "\",\"price\":" << t.price
          << ",\"qty\":" << t.qty << "}\n";
      }
    }
    REQUIRE(std::system(("timeout 30 kcat -b " + boot + " -P -t " + topic + " -K '|' -l " + file).c_str()) == 0);
  }

  /// The pipeline reading topic `in` from the start and writing bars to `out` exactly once.
  std::string pipeline(const std::string& in, const std::string& out) {
    const std::string path = dir / (out + ".yaml");
    std::ofstream y(path);
    y << "pipeline:\n"
         "  name: eo-"
      << out
      << "\n"
         "  parallelism: 2\n"
         "  checkpoints: {interval: 250ms}\n"
         "  supervision: {intensity: 10000, period: 60s, backoff: {initial: 10ms, max: 200ms}}\n"
         "sources:\n"
         "  ticks:\n"
         "    type: kafka\n"
         "    parallelism: 1\n"
         "    bootstrap_servers: "
      << boot
      << "\n"
         "    topics: ["
      << in
      << "]\n"
         "    group_id: eo-"
      << out
      << "\n"
         "    assign: true\n"
         "    start_from: earliest\n"
         "    schema: {ts: int, symbol: string, price: double, qty: int}\n"
         "    event_time: {field: ts, format: epoch_ms, idle_timeout: 0s}\n"
         "operators:\n"
         "  bars:\n"
         "    type: window\n"
         "    input: ticks\n"
         "    key: symbol\n"
         "    window: {type: tumbling, size: 1s}\n"
         "    aggregates:\n"
         "      bar: ohlc(price, qty)\n"
         "      vwap: vwap(price, qty)\n"
         "sinks:\n"
         "  out:\n"
         "    type: kafka\n"
         "    input: bars\n"
         "    bootstrap_servers: "
      << boot
      << "\n"
         "    topic: "
      << out
      << "\n"
         "    key: symbol\n"
         "    format: json\n"
         "    delivery: exactly_once\n";
    return path;
  }

  /// The committed bars of `topic`, every copy (read_committed).
  std::vector<e2e::json_object> committed(const std::string& topic) {
    const std::string text = e2e::shell_output("timeout 30 kcat -b " + boot +
                                               " -X isolation.level=read_committed -C -t " + topic +
                                               " -o beginning -e -q -f '%s\\n' 2>/dev/null");
    return e2e::parse_json_lines(text);
  }

  std::unique_ptr<e2e::process> run(const std::string& yaml, std::vector<std::string> extra = {}) {
    std::vector<std::string> args{pel_binary, "run", "--progress", "never", yaml};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<e2e::process>(args);
  }
};

using bar_key = std::pair<std::string, std::int64_t>;

std::map<bar_key, std::vector<e2e::json_object>> by_window(const std::vector<e2e::json_object>& rows) {
  std::map<bar_key, std::vector<e2e::json_object>> m;
  for (const auto& r : rows) m[{r.str("symbol"), r.integer("window_start")}].push_back(r);
  return m;
}

/// Waits until `topic` holds every expected window (or the deadline passes).
bool wait_complete(rig& r, const std::string& topic, std::size_t windows, e2e::process* p,
                   std::chrono::milliseconds timeout) {
  return e2e::eventually(
      [&] {
        if (p != nullptr) p->wait_until([] { return false; }, 20ms);
        return by_window(r.committed(topic)).size() >= windows;
      },
      timeout);
}

/// Every expected window exactly once, equal to the reference.
void check_against(const std::map<bar_key, std::vector<e2e::json_object>>& got,
                   const std::map<bar_key, std::vector<e2e::json_object>>& ref, const std::string& what) {
  std::size_t dup = 0, missing = 0, wrong = 0;
  for (const auto& [k, rows] : ref) {
    auto it = got.find(k);
    if (it == got.end()) {
      ++missing;
      continue;
    }
    if (it->second.size() != 1) ++dup;
    const auto& a = it->second.front();
    const auto& b = rows.front();
    bool same = a.integer("bar_trades") == b.integer("bar_trades") && a.integer("bar_volume") == b.integer("bar_volume");
    for (const char* f : {"bar_open", "bar_high", "bar_low", "bar_close", "vwap"})
      same = same && e2e::close_to(a.num(f), b.num(f), 1e-12);
    if (!same) ++wrong;
  }
  std::size_t extra = 0;
  for (const auto& [k, rows] : got)
    if (!ref.count(k)) ++extra;
  WARN(what << ": " << ref.size() << " windows compared with the fault-free run: " << missing << " missing, "
            << dup << " with more than one copy, " << wrong << " with other values, " << extra << " unexpected");
  CHECK(missing == 0);
  CHECK(dup == 0);
  CHECK(wrong == 0);
  CHECK(extra == 0);
}

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

/// The input of a scenario: skewed ticks, then a last tick 5 s later that closes every window
/// of the others (its own window stays open in every run).
struct scenario_input {
  std::vector<tick> ticks;
  std::size_t windows = 0;
};

scenario_input make_input(int seconds) {
  scenario_input in;
  in.ticks = make_ticks(seconds, 1000);
  in.windows = windows_of(in.ticks).size();
  in.ticks.push_back({in.ticks.back().ts + 5000, "ZZZZ", 1.0, 1});
  return in;
}

/// The fault-free run: all input in the topic first, one `pel run`, no fault.
std::map<bar_key, std::vector<e2e::json_object>> reference(rig& r, const scenario_input& in) {
  r.produce("in_ref", in.ticks, 0, in.ticks.size());
  // With a state directory a stop fires no window: the last tick's stays open, as in every run.
  e2e::temp_dir state;
  auto p = r.run(r.pipeline("in_ref", "ref"), {"--state-dir", state.path().string()});
  REQUIRE(wait_complete(r, "ref", in.windows, p.get(), 60s));
  p->send_signal(SIGTERM);
  auto res = p->wait(30s);
  INFO(res.err);
  REQUIRE(res.exit_code == 0);
  auto ref = by_window(r.committed("ref"));
  REQUIRE(ref.size() == in.windows);
  for (const auto& [k, rows] : ref) REQUIRE(rows.size() == 1);
  return ref;
}

} // namespace

TEST_CASE("exactly-once under chaos: 50 random instance crashes inside one pel run lose and repeat nothing",
          "[kafka][e2e][chaos]") {
  REQUIRE(std::filesystem::exists(pel_binary));
  const int crashes = long_version() ? 300 : 50;
  rig r;
  const auto in = make_input(long_version() ? 60 : 20);
  const auto ref = reference(r, in);

  e2e::temp_dir state;
  auto p = r.run(r.pipeline("in_live", "out"),
                 {"--state-dir", state.path().string(), "--chaos", "seed=42,rate=10,max=" + std::to_string(crashes + 5)});
  // The input arrives live, a chunk at a time, while instances crash.
  const std::size_t chunks = 40;
  const std::size_t per = (in.ticks.size() + chunks - 1) / chunks;
  for (std::size_t c = 0; c < chunks; ++c) {
    r.produce("in_live", in.ticks, c * per, (c + 1) * per);
    p->wait_until([] { return false; }, 100ms);
    REQUIRE_FALSE(p->exited());
  }
  // Complete output, and at least `crashes` restarts survived.
  const bool done = e2e::eventually(
      [&] {
        p->wait_until([] { return false; }, 20ms);
        if (p->exited()) return true;
        return count_of(p->err(), " instance(s) from checkpoint") >= crashes &&
               by_window(r.committed("out")).size() >= in.windows;
      },
      long_version() ? 600s : 180s);
  INFO(p->err().substr(p->err().size() > 4000 ? p->err().size() - 4000 : 0));
  REQUIRE(done);
  REQUIRE_FALSE(p->exited());
  p->send_signal(SIGTERM);
  auto res = p->wait(30s);
  REQUIRE(res.exit_code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(res.err, m, std::regex("restarts: ([0-9]+)")));
  const int restarts = std::stoi(m[1]);
  WARN("survived " << restarts << " instance crashes injected by --chaos");
  CHECK(restarts >= crashes);
  check_against(by_window(r.committed("out")), ref, "chaos");
}

namespace {

/// Runs `pel run` on one state directory `rounds` times, ending each run with `sig` at a
/// random point after it has taken a new checkpoint, while the input arrives; then one last
/// run until the output is complete. Returns the committed output.
std::map<bar_key, std::vector<e2e::json_object>> stop_loop(rig& r, const scenario_input& in, int sig, int rounds) {
  e2e::temp_dir state;
  const std::string yaml = r.pipeline("in_live", "out");
  pel::testing::xorshift rng(sig == SIGKILL ? 99 : 77);
  const std::size_t per = (in.ticks.size() + rounds) / (rounds + 1);
  std::size_t produced = 0;
  int stopped = 0;
  auto newest_checkpoint = [&] {
    std::string best;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(state.path(), ec))
      if (std::filesystem::exists(e.path() / "MANIFEST")) best = std::max(best, e.path().filename().string());
    return best;
  };
  for (int round = 0; round < rounds; ++round) {
    const std::string before = newest_checkpoint();
    auto p = r.run(yaml, {"--state-dir", state.path().string()});
    r.produce("in_live", in.ticks, produced, produced + per);
    produced += per;
    // A new checkpoint (the run got going), then a random moment up to 0.8 s later.
    REQUIRE(e2e::eventually(
        [&] {
          p->wait_until([] { return false; }, 10ms);
          return p->exited() || newest_checkpoint() > before;
        },
        60s));
    REQUIRE_FALSE(p->exited());
    p->wait_until([] { return false; }, std::chrono::milliseconds(rng() % 800));
    p->send_signal(sig);
    auto res = p->wait(30s);
    INFO(res.err);
    REQUIRE_FALSE(res.timed_out);
    if (sig == SIGTERM) {
      REQUIRE(res.exit_code == 0);
      REQUIRE(res.err.find("stopped with checkpoint") != std::string::npos);
    } else {
      REQUIRE(res.term_signal == SIGKILL);
    }
    ++stopped;
  }
  auto p = r.run(yaml, {"--state-dir", state.path().string()});
  if (produced < in.ticks.size()) r.produce("in_live", in.ticks, produced, in.ticks.size());
  const bool done = wait_complete(r, "out", in.windows, p.get(), 120s);
  INFO(p->err());
  REQUIRE(done);
  p->send_signal(SIGTERM);
  REQUIRE(p->wait(30s).exit_code == 0);
  WARN((sig == SIGKILL ? "kill -9" : "SIGTERM") << ": pel run was stopped " << stopped
                                                << " times and resumed from its state directory");
  return by_window(r.committed("out"));
}

} // namespace

TEST_CASE("exactly-once across kill -9: ten killed and restarted runs lose and repeat nothing", "[kafka][e2e][chaos]") {
  REQUIRE(std::filesystem::exists(pel_binary));
  rig r;
  const auto in = make_input(20);
  const auto ref = reference(r, in);
  check_against(stop_loop(r, in, SIGKILL, long_version() ? 30 : 10), ref, "kill -9");
}

TEST_CASE("SIGTERM stops with a final checkpoint: ten stops and restarts give no partial or repeated bar",
          "[kafka][e2e][chaos]") {
  REQUIRE(std::filesystem::exists(pel_binary));
  rig r;
  const auto in = make_input(20);
  const auto ref = reference(r, in);
  check_against(stop_loop(r, in, SIGTERM, long_version() ? 30 : 10), ref, "SIGTERM");
}
