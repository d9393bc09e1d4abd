// Event time on real Kafka partitions, through `pel run`: a trading topic keyed by symbol,
// so one partition holds most of the volume, one a little, one almost nothing and one
// nothing at all. Each partition is in event-time order; the backlog is read unevenly (the
// big partition comes in large fetches). No record may be late, and every 1 s bar must equal
// a plain computation done here, at parallelism 1, 2 and 4, with the time taken from a field
// and from the Kafka message timestamp.
#include "e2e_support.hpp"
#include "json_line.hpp"
#include "process.hpp"
#include "pel/testing/poll.hpp"
#include "pel/testing/random.hpp"

#include "pel/connectors/kafka_broker.hpp"

#include <librdkafka/rdkafka.h>

#include <catch2/catch.hpp>

#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

using namespace std::chrono_literals;
using namespace pel::e2e;

namespace {


constexpr std::int64_t t0_ms = 1'704'205'800'000;  // 2024-01-02 14:30 UTC

struct trade {
  std::int64_t ts;
  std::string symbol;
  double price;
  std::int64_t qty;
};

/// One partition's trades: `n` over `span_ms`, in time order, prices in quarters.
std::vector<trade> partition_trades(std::size_t n, std::vector<std::string> symbols, std::int64_t span_ms,
                                    std::uint64_t seed) {
  pel::testing::xorshift rnd(seed);
  std::vector<trade> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back({t0_ms + static_cast<std::int64_t>(i) * span_ms / static_cast<std::int64_t>(n),
                   symbols[rnd() % symbols.size()], static_cast<double>(400 + rnd() % 800) / 4.0,
                   static_cast<std::int64_t>(1 + rnd() % 300)});
  return out;
}

/// Produces each partition's trades to it with an independent librdkafka producer, message
/// timestamp = trade time. True when all were delivered.
bool produce(const std::string& boot, const std::string& topic,
             const std::vector<std::vector<trade>>& parts) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", boot.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "compression.type", "lz4", err, sizeof err) != RD_KAFKA_CONF_OK ||
      rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err) != RD_KAFKA_CONF_OK)
    return false;
  std::unique_ptr<rd_kafka_t, void (*)(rd_kafka_t*)> rk(
      rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err), rd_kafka_destroy);
  if (!rk) return false;
  for (std::size_t p = 0; p < parts.size(); ++p)
    for (const auto& t : parts[p]) {
      char v[160];
      const int len = std::snprintf(v, sizeof v, R"({"ts":%lld,"symbol":"%s","price":%.2f,"qty":%lld})",
                                    static_cast<long long>(t.ts), t.symbol.c_str(), t.price,
                                    static_cast<long long>(t.qty));
      rd_kafka_resp_err_t e;
      while ((e = rd_kafka_producev(rk.get(), RD_KAFKA_V_TOPIC(topic.c_str()),
                                    RD_KAFKA_V_PARTITION(static_cast<std::int32_t>(p)),
                                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                    RD_KAFKA_V_KEY(t.symbol.data(), t.symbol.size()),
                                    RD_KAFKA_V_VALUE(v, static_cast<std::size_t>(len)),
                                    RD_KAFKA_V_TIMESTAMP(t.ts), RD_KAFKA_V_END)) ==
             RD_KAFKA_RESP_ERR__QUEUE_FULL)
        rd_kafka_poll(rk.get(), 10);
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return false;
    }
  return rd_kafka_flush(rk.get(), 60'000) == RD_KAFKA_RESP_ERR_NO_ERROR;
}

struct bar {
  std::int64_t trades = 0;
  std::int64_t volume = 0;
  double vwap = 0;
};
using bars = std::map<std::pair<std::string, std::int64_t>, bar>;  // (symbol, window_start)

bars reference(const std::vector<std::vector<trade>>& parts) {
  std::map<std::pair<std::string, std::int64_t>, std::tuple<std::int64_t, std::int64_t, double>> acc;
  for (const auto& p : parts)
    for (const auto& t : p) {
      auto& [n, q, pq] = acc[{t.symbol, t.ts / 1000 * 1000}];
      ++n;
      q += t.qty;
      pq += t.price * static_cast<double>(t.qty);
    }
  bars out;
  for (const auto& [k, v] : acc)
    out[k] = {std::get<0>(v), std::get<1>(v), std::get<2>(v) / static_cast<double>(std::get<1>(v))};
  return out;
}

bars read_bars(const std::string& path) {
  bars out;
  for (const auto& o : parse_json_lines(read_file(path))) {
    bar b{o.integer("trades"), o.integer("volume"), o.num("vwap")};
    auto [it, fresh] = out.emplace(std::make_pair(o.str("symbol"), o.integer("window_start")), b);
    if (!fresh) it->second.trades = -1;  // written twice: never equal to the reference
  }
  return out;
}

/// Keys and counts exactly; VWAP (merged in varying order at parallelism > 1) within 1e-12.
std::string compare(const bars& got, const bars& want) {
  std::string diff;
  for (const auto& [k, w] : want) {
    auto it = got.find(k);
    const std::string name = k.first + "@" + std::to_string(k.second - t0_ms);
    if (it == got.end()) diff += "missing " + name + "\n";
    else if (it->second.trades != w.trades || it->second.volume != w.volume ||
             std::abs(it->second.vwap - w.vwap) > 1e-12 * w.vwap)
      diff += "differs " + name + ": " + std::to_string(it->second.trades) + " trades, want " +
              std::to_string(w.trades) + "\n";
  }
  for (const auto& [k, g] : got)
    if (!want.count(k)) diff += "extra " + k.first + "@" + std::to_string(k.second - t0_ms) + "\n";
  return diff.substr(0, 2000);
}

/// The pipeline both tests run: trades from `topic` (every partition, from the start) → 1 s
/// bars per symbol → a JSON file.
std::string bars_yaml(const std::string& boot, const std::string& topic, int parallelism,
                      const std::string& event_time, const std::string& pre_aggregate,
                      const std::string& out, const std::string& group = "") {
  // Without a group every instance is assigned its share of the partitions; with one the
  // instances join it and the group splits the partitions (rebalance callbacks).
  const std::string reading = group.empty() ? "    assign: true\n"
                                            : "    group_id: " + group + "\n"
                                              "    rdkafka: {session.timeout.ms: 6000}\n";
  return "pipeline: {name: bars, parallelism: " + std::to_string(parallelism) + "}\n"
         "sources:\n"
         "  trades:\n"
         "    type: kafka\n"
         "    bootstrap_servers: " + boot + "\n"
         "    topics: [" + topic + "]\n" + reading +
         "    start_from: earliest\n"
         "    schema: {ts: int, symbol: string, price: double, qty: int}\n"
         "    event_time: " + event_time + "\n"
         "operators:\n"
         "  bars:\n"
         "    type: window\n"
         "    input: trades\n"
         "    key: symbol\n"
         "    window: {type: tumbling, size: 1s}\n"
         "    pre_aggregate: " + pre_aggregate + "\n"
         "    aggregates: {trades: count(), volume: sum(qty), vwap: \"vwap(price, qty)\"}\n"
         "sinks:\n"
         "  out: {type: file, input: bars, path: " + out + ", parallelism: 1}\n";
}

/// `text` with every run of spaces made one (the run summary pads names into columns).
std::string squeeze(const std::string& text) {
  std::string out;
  for (char c : text)
    if (c != ' ' || out.empty() || out.back() != ' ') out += c;
  return out;
}

/// The late counts the run summary gives, summed.
std::int64_t late_in_summary(const std::string& err) {
  std::int64_t sum = 0;
  const std::string s = squeeze(err);
  for (auto at = s.find(" late "); at != std::string::npos; at = s.find(" late ", at + 1))
    sum += std::stoll(s.substr(at + 6));
  return sum;
}

/// Runs `pel run` on `dir/p.yaml` until every bar but `open_at_end` of `want` has closed by
/// the watermark (the last ones need the stop), then stops it with SIGTERM; requires exit 0
/// and the output equal to `want`. Returns the run's result (its summary is in `err`).
process_result run_until_closed_then_stop(const temp_dir& dir, const bars& want,
                                          std::size_t open_at_end) {
  process run({pel_binary(), "run", "--progress", "never", dir / "p.yaml"});
  const bool closed = run.wait_until(
      [&] { return read_bars(dir / "bars.json").size() >= want.size() - open_at_end; }, 90s);
  INFO(run.err());
  INFO(compare(read_bars(dir / "bars.json"), want));
  REQUIRE(closed);
  run.send_signal(SIGTERM);
  auto r = run.wait(60s);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const auto diff = compare(read_bars(dir / "bars.json"), want);
  INFO(diff);
  CHECK(diff.empty());
  return r;
}

}  // namespace

TEST_CASE("kafka event time on skewed partitions with an empty one: no late record and every "
          "bar exact, by field and by message timestamp, at parallelism 1, 2 and 4",
          "[kafka][e2e][event_time]") {
  REQUIRE(std::filesystem::exists(pel_binary()));
  pel::connectors::kafka_broker broker({1, 0, {"trades:4"}, ""});
  const auto boot = broker.bootstraps();
  // 60 s of a trading minute: partition 0 holds AAPL and MSFT (most of the volume), 1 NVDA,
  // 2 nothing, 3 a few TSLA trades.
  const std::vector<std::vector<trade>> parts = {
      partition_trades(40'000, {"AAPL", "MSFT"}, 60'000, 11), partition_trades(6'000, {"NVDA"}, 60'000, 12),
      {}, partition_trades(240, {"TSLA"}, 60'000, 13)};
  REQUIRE(produce(boot, "trades", parts));
  const auto want = reference(parts);
  std::size_t total = 0;
  for (const auto& p : parts) total += p.size();

  struct variant {
    int parallelism;
    bool by_field;
    const char* idle;  // event_time.idle_timeout, empty: the Kafka default (5 s)
    bool aligned;      // max_drift: 2s
    bool group = false;  // a consumer group instead of an explicit assignment
  };
  for (const auto& v : {variant{1, true, "1s", false}, variant{2, true, "1s", false},
                        variant{4, true, "1s", false}, variant{1, false, "1s", false},
                        variant{2, false, "1s", false}, variant{4, false, "", false},
                        variant{1, true, "1s", true}, variant{2, false, "1s", true},
                        variant{2, true, "1s", false, true}, variant{2, true, "1s", true, true}}) {
    INFO("parallelism " << v.parallelism << (v.by_field ? ", time from field ts" : ", message timestamps")
                        << ", idle_timeout " << (*v.idle ? v.idle : "default")
                        << (v.aligned ? ", max_drift 2s" : "") << (v.group ? ", consumer group" : ""));
    temp_dir dir;
    std::string et = v.by_field ? "{field: ts, format: epoch_ms" : "{max_out_of_orderness: 0ms";
    if (*v.idle) et += std::string(", idle_timeout: ") + v.idle;
    if (v.aligned) et += ", max_drift: 2s";
    et += "}";
    static int groups = 0;
    write_file(dir / "p.yaml", bars_yaml(boot, "trades", v.parallelism, et, "auto", dir / "bars.json",
                                         v.group ? "bars" + std::to_string(++groups) : ""));
    // Every bar but each symbol's last closes by the watermark while the job runs (the
    // empty partition goes idle); the stop closes the last ones.
    const auto r = run_until_closed_then_stop(dir, want, 4);
    INFO(r.err);
    const auto summary = squeeze(r.err);
    CHECK(summary.find(" trades out " + std::to_string(total) + " dead letters 0") != std::string::npos);
    // With every partition on one instance, the big partition's backlog ran ahead of the
    // others (no alignment here), and the summary says how far.
    const auto lead_at = summary.find(" partition lead up to ");
    if (v.parallelism == 1 && !v.aligned) CHECK(lead_at != std::string::npos);
    if (v.aligned && lead_at != std::string::npos) {
      // Alignment keeps the big partition within 2 s of the others, plus what one poll of a
      // partition's queue (16 messages) adds before the next pause applies.
      const double lead_s = std::stod(summary.substr(lead_at + 22));
      CHECK(lead_s < 10.0);
    }
    CHECK((summary.find(" bars in " + std::to_string(total)) != std::string::npos ||
           summary.find(" bars/local in " + std::to_string(total)) != std::string::npos));
    CHECK(summary.find(" late 0") != std::string::npos);
    CHECK(late_in_summary(r.err) == 0);
    CHECK(r.err.find("late records dropped") == std::string::npos);
    if (v.parallelism == 4) {
      // The instance reading the empty partition named it when it went idle.
      CHECK(r.err.find("partition trades/2 has had no data for " + std::string(*v.idle ? v.idle : "5s")) !=
            std::string::npos);
    }
  }
}

TEST_CASE("kafka and two-phase windows at parallelism 4: after a stop every symbol's last bar "
          "is there exactly once, run after run",
          "[kafka][e2e][event_time][two_phase]") {
  REQUIRE(std::filesystem::exists(pel_binary()));
  pel::connectors::kafka_broker broker({1, 0, {"day:4"}, ""});
  const auto boot = broker.bootstraps();
  // Partitions of very different sizes; partition 2 ends 20 s before the others.
  const std::vector<std::vector<trade>> parts = {
      partition_trades(20'000, {"AAPL", "MSFT", "AMZN"}, 40'000, 21), partition_trades(2'000, {"NVDA"}, 40'000, 22),
      partition_trades(500, {"TSLA"}, 20'000, 23), partition_trades(3'000, {"META", "GOOG"}, 40'000, 24)};
  REQUIRE(produce(boot, "day", parts));
  const auto want = reference(parts);
  for (int round = 0; round < 4; ++round) {
    INFO("round " << round);
    temp_dir dir;
    write_file(dir / "p.yaml",
               bars_yaml(boot, "day", 4, "{field: ts, format: epoch_ms, idle_timeout: 1s}",
                         round % 2 == 0 ? "always" : "auto", dir / "bars.json"));
    // Everything is read and idle: every bar but those of the last second of the partitions
    // that reach 40 s (six symbols) is out.
    const auto r = run_until_closed_then_stop(dir, want, 6);
    INFO(r.err);
    CHECK(late_in_summary(r.err) == 0);
  }
}
