// Edge footprint benchmark: the `pel` of the edge profile (-DPEL_PROFILE=edge, docs/edge.md)
// against the full build's `pel` (the baseline) on the same work, each a child process:
//   a real mosquitto on a free loopback port; an embedded Kafka broker (`pel kafka-broker` of
//   the full build, a process of its own, not measured); the pipeline: mqtt source (QoS 1,
//   JSON, device from the topic) → per-device 1-minute tumbling window (count, avg, max) →
//   kafka sink through a store-and-forward buffer (as examples/edge/edge.yaml), checkpoints
//   every 5 s to a state directory.
// For each binary and setting: idle (subscribed, nothing arriving) for `idle-seconds`, then
// one libmosquitto publisher at `rate` messages/s for `seconds` (200 devices, skewed: 5 % of
// the devices send 80 % of the messages). Sampled from /proc every 250 ms: VmRSS, VmHWM,
// threads, user + system CPU. CPU % of one core is taken over the load phase after its first
// 5 s. Every message must be counted by pel's stop summary. Also the binaries' sizes, as built
// and stripped (`strip` of a copy). Writes bench/results/edge.json and edge.md.
//   usage: edge_bench --edge-pel=<edge build>/framework/cli/pel [--full-pel=...] [--rate=10000]
//          [--seconds=20] [--idle-seconds=10]     (--edge-pel defaults to $PEL_EDGE_PEL)

#include "bench_support.hpp"
#include "mqtt_workload.hpp"

#include "pel/core/time.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fs = std::filesystem;

namespace {

struct setting {
  std::string label;
  std::string binary;
  std::vector<std::string> env;   ///< NAME=VALUE added to the child's environment
  std::vector<std::string> args;  ///< added to `pel run`
  bool baseline = false;
};

struct measured {
  std::string label;
  double idle_rss_mb = 0, idle_cpu_pct = 0;
  double load_rss_mb = 0, load_hwm_mb = 0, load_cpu_pct = 0, load_user_pct = 0, load_sys_pct = 0;
  double switches_per_s = 0;
  int threads = 0;
  std::uint64_t published = 0, received = 0;
  double published_rate = 0;  ///< what the publisher achieved, messages/s
  bool ok = false;
};

pid_t spawn_env(const std::vector<std::string>& args, const std::vector<std::string>& extra_env,
                const std::string& log) {
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) env_store.emplace_back(*e);
  for (const auto& e : extra_env) env_store.push_back(e);
  std::vector<char*> envp, argv;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
  return pid;
}

/// SIGTERM, then waits up to 30 s (SIGKILL after that).
void stop_child(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  int status = 0;
  const bool gone = pel::testing::poll_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; },
                                             std::chrono::seconds(30), std::chrono::milliseconds(10));
  if (!gone) pel::testing::kill_and_reap(pid);
  pid = -1;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Samples `pid` every 250 ms for `seconds`; returns the first and last samples and the
/// largest RSS seen.
struct window_stats {
  bench::proc_sample first, last;
  long max_rss_kib = 0;
};
window_stats sample_for(pid_t pid, double seconds) {
  window_stats w;
  w.first = bench::read_proc(pid);
  w.max_rss_kib = w.first.rss_kib;
  const std::int64_t end = pel::core::steady_ns() + static_cast<std::int64_t>(seconds * 1e9);
  const std::int64_t t0 = pel::core::steady_ns();
  w.last = w.first;
  while (pel::core::steady_ns() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    auto s = bench::read_proc(pid);
    if (!s.ok) break;
    w.last = s;
    w.max_rss_kib = std::max(w.max_rss_kib, s.rss_kib);
  }
  (void)t0;
  return w;
}

/// Publishes at `rate` messages/s for `seconds`, in 1 ms steps, readings stamped now.
std::uint64_t publish_paced(int port, const std::vector<bench::mqtt_message>& msgs, double rate,
                            double seconds, int qos) {
  bench::mqtt_client pub("edge-bench-pub", port);
  const std::int64_t t0 = pel::core::steady_ns();
  const std::int64_t end = t0 + static_cast<std::int64_t>(seconds * 1e9);
  std::uint64_t sent = 0;
  while (true) {
    const std::int64_t now = pel::core::steady_ns();
    if (now >= end) break;
    const auto due = static_cast<std::uint64_t>((now - t0) / 1e9 * rate);
    const std::int64_t ts = bench::wall_ms();
    for (; sent < due; ++sent) {
      const auto& m = msgs[sent % msgs.size()];
      pub.publish(m.topic, bench::sensor_payload(m.device, ts, sent), qos);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  pub.wait_acknowledged(std::chrono::seconds(10));
  return sent;
}

measured run_setting(const setting& s, const pel::testing::mosquitto_broker& broker,
                     const std::string& kafka, const fs::path& dir, int k,
                     const std::vector<bench::mqtt_message>& msgs, double rate, double seconds,
                     double idle_seconds, int qos, bool buffer) {
  measured m;
  m.label = s.label;
  const std::string client = "edge-bench-pel-" + std::to_string(k);
  const fs::path yaml = dir / ("edge-" + std::to_string(k) + ".yaml");
  const fs::path state = dir / ("state-" + std::to_string(k));
  const fs::path log = dir / ("pel-" + std::to_string(k) + ".log");
  std::ofstream(yaml)
      << "pipeline:\n  name: edge_footprint\n"
      << "  checkpoints: {interval: 5s, dir: " << state.string() << "}\n"
      << "sources:\n  readings:\n    type: mqtt\n    broker: " << broker.address()
      << "\n    client_id: " << client << "\n    topics: ['sensors/#']\n    qos: " << qos
      << "\n    topic_fields: sensors/{site}/{device}\n    format: json\n"
      << "    schema: {ts: int, temperature: double, humidity: double, battery: double}\n"
      << "    event_time: {field: ts, format: epoch_ms, max_out_of_orderness: 1s}\n"
      << "operators:\n  per_device:\n    type: window\n    input: readings\n    key: device\n"
      << "    window: {type: tumbling, size: 1m}\n"
      << "    aggregates:\n      readings: count()\n      avg_temperature: avg(temperature)\n"
      << "      max_temperature: max(temperature)\n      avg_humidity: avg(humidity)\n"
      << "sinks:\n  uplink:\n    type: kafka\n    input: per_device\n"
      << "    bootstrap_servers: " << kafka << "\n    topic: device-minutes\n    key: device\n";
  if (buffer)
    std::ofstream(yaml, std::ios::app) << "    buffer: {dir: " << (dir / ("buffer-" + std::to_string(k))).string()
                                       << ", max_size: 64MiB, when_full: block}\n";
  std::vector<std::string> argv{s.binary, "--log-level", "info", "run", "--progress", "never"};
  argv.insert(argv.end(), s.args.begin(), s.args.end());
  argv.push_back(yaml.string());
  pid_t pid = spawn_env(argv, s.env, log.string());
  if (!pel::testing::poll_until(
          [&] { return bench::broker_saw_subscription(broker, client, "sensors/#"); },
          std::chrono::seconds(30), std::chrono::milliseconds(20))) {
    std::fprintf(stderr, "%s: pel did not subscribe within 30 s:\n%s\n", s.label.c_str(),
                 read_all(log).c_str());
    stop_child(pid);
    return m;
  }
  // Idle: subscribed, nothing arriving.
  auto idle = sample_for(pid, idle_seconds);
  m.idle_rss_mb = idle.max_rss_kib / 1024.0;
  m.idle_cpu_pct = 100 * (idle.last.cpu_s - idle.first.cpu_s) / idle_seconds;

  // Load: the publisher in its own thread, sampled here.
  std::atomic<std::uint64_t> published{0};
  std::thread pub([&] { published = publish_paced(broker.port(), msgs, rate, seconds, qos); });
  const double warm = std::min(5.0, seconds / 4);
  auto w1 = sample_for(pid, warm);
  auto w2 = sample_for(pid, seconds - warm);
  pub.join();
  const double steady = seconds - warm;
  m.load_rss_mb = std::max(w1.max_rss_kib, w2.max_rss_kib) / 1024.0;
  m.load_hwm_mb = w2.last.hwm_kib / 1024.0;
  m.load_cpu_pct = 100 * (w2.last.cpu_s - w2.first.cpu_s) / steady;
  m.load_user_pct = 100 * (w2.last.user_s - w2.first.user_s) / steady;
  m.load_sys_pct = 100 * (w2.last.sys_s - w2.first.sys_s) / steady;
  m.switches_per_s = ((w2.last.voluntary_switches + w2.last.involuntary_switches) -
                      (w2.first.voluntary_switches + w2.first.involuntary_switches)) / steady;
  m.threads = w2.last.threads;
  m.published = published;
  m.published_rate = published / seconds;
  // The last messages published are still on their way through mosquitto when the publisher
  // returns; a stop at once would find some not yet taken by the source (unacknowledged, so a
  // persistent session would get them again, but the run's count would miss them). One
  // second is thousands of times their transit on loopback. Then stop; the stop line counts.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  stop_child(pid);
  const std::string text = read_all(log);
  std::smatch match;
  if (std::regex_search(text, match, std::regex(R"(stopped: (\d+) records in)")))
    m.received = std::strtoull(match[1].str().c_str(), nullptr, 10);
  m.ok = m.received == m.published;
  std::printf("%-40s idle %.1f MB %.2f%% | load RSS %.1f MB (HWM %.1f) CPU %.1f%% (user %.1f, sys %.1f), "
              "%d threads, %.0f switches/s, %llu/%llu messages (%.0f/s)\n",
              s.label.c_str(), m.idle_rss_mb, m.idle_cpu_pct, m.load_rss_mb, m.load_hwm_mb,
              m.load_cpu_pct, m.load_user_pct, m.load_sys_pct, m.threads, m.switches_per_s,
              static_cast<unsigned long long>(m.received), static_cast<unsigned long long>(m.published),
              m.published_rate);
  if (!m.ok) std::fprintf(stderr, "%s: pel counted %llu of %llu messages; its log:\n%s\n", s.label.c_str(),
                          static_cast<unsigned long long>(m.received),
                          static_cast<unsigned long long>(m.published), text.c_str());
  return m;
}

double file_mb(const std::string& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n / 1e6;
}

/// Size of a stripped copy of `binary`, in MB.
double stripped_mb(const std::string& binary, const fs::path& dir) {
  const auto copy = dir / "stripped";
  std::error_code ec;
  fs::copy_file(binary, copy, fs::copy_options::overwrite_existing, ec);
  if (ec) return 0;
  const std::string cmd = "strip '" + copy.string() + "'";
  if (std::system(cmd.c_str()) != 0) return 0;
  const double mb = file_mb(copy.string());
  fs::remove(copy, ec);
  return mb;
}

}  // namespace

int main(int argc, char** argv) {
  bench::args args(argc, argv);
  const char* env_edge = std::getenv("PEL_EDGE_PEL");
  const std::string edge = args.get_string("edge-pel", env_edge ? env_edge : "");
  const std::string full = args.get_string("full-pel", PEL_BINARY_DIR "/framework/cli/pel");
  const double rate = args.get_double("rate", 10'000);
  const double seconds = args.get_double("seconds", 20);
  const double idle_seconds = args.get_double("idle-seconds", 10);
  const int qos = static_cast<int>(args.get_size("qos", 1));
  const int devices = static_cast<int>(args.get_size("devices", 200));
  const int runs = std::max(1, static_cast<int>(args.get_size("runs", 3)));
  const bool buffer = args.get_size("buffer", 1) != 0;  // --buffer=0: the sink without one
  const bool only_first = args.get_size("only-default", 0) != 0;  // just the edge default and the baseline
  if (edge.empty() || !fs::exists(edge) || !fs::exists(full)) {
    std::fprintf(stderr, "usage: edge_bench --edge-pel=<edge profile pel> [--full-pel=<pel>] "
                         "(edge: '%s', full: '%s')\n", edge.c_str(), full.c_str());
    return 2;
  }

  const auto dir = fs::temp_directory_path() / ("pel-edge-bench-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  pel::testing::mosquitto_broker broker(dir, bench::mqtt_bench_broker_conf);
  // The Kafka side: the full build's embedded broker, a process of its own.
  const auto bootstrap_file = dir / "bootstrap";
  pid_t kafka = spawn_env({full, "kafka-broker", "--port", "0", "--topics", "device-minutes:1",
                           "--bootstrap-file", bootstrap_file.string()},
                          {}, (dir / "kafka.log").string());
  std::string bootstrap;
  pel::testing::poll_until(
      [&] {
        bootstrap = read_all(bootstrap_file);
        while (!bootstrap.empty() && (bootstrap.back() == '\n' || bootstrap.back() == ' '))
          bootstrap.pop_back();
        return !bootstrap.empty();
      },
      std::chrono::seconds(30), std::chrono::milliseconds(20));
  if (bootstrap.empty()) {
    std::fprintf(stderr, "the Kafka broker did not start:\n%s\n", read_all(dir / "kafka.log").c_str());
    stop_child(kafka);
    return 1;
  }
  std::printf("mosquitto %s, Kafka %s\n", broker.address().c_str(), bootstrap.c_str());

  const auto msgs = bench::prepare_mqtt_messages(100'000, devices, true);
  std::vector<setting> settings{
      {"edge `pel run` (2 scheduler threads, the default)", edge, {}, {}, false},
      {"edge, MALLOC_ARENA_MAX=2", edge, {"MALLOC_ARENA_MAX=2"}, {}, false},
      {"edge, --threads 1", edge, {}, {"--threads", "1"}, false},
      {"edge, --threads 1, MALLOC_ARENA_MAX=2", edge, {"MALLOC_ARENA_MAX=2"}, {"--threads", "1"}, false},
      {"edge, --http 127.0.0.1:0 (HTTP API on)", edge, {}, {"--http", "127.0.0.1:0"}, false},
      {"full build `pel run` (baseline)", full, {}, {}, true},
  };
  // Every setting once, then `runs` - 1 more rounds of the edge default and the baseline
  // (alternating): those two are reported as the median of their runs.
  std::vector<std::vector<measured>> per(settings.size());
  int k = 0;
  bool ok = true;
  auto run_one = [&](std::size_t i) {
    auto m = run_setting(settings[i], broker, bootstrap, dir, ++k, msgs, rate, seconds,
                         idle_seconds, qos, buffer);
    ok = ok && m.ok;
    per[i].push_back(m);
  };
  for (std::size_t i = 0; i < settings.size(); ++i)
    if (!only_first || i == 0 || settings[i].baseline) run_one(i);
  for (int r = 1; r < runs; ++r)
    for (std::size_t i = 0; i < settings.size(); ++i)
      if (i == 0 || settings[i].baseline) run_one(i);
  stop_child(kafka);
  std::vector<measured> results;
  std::vector<std::string> cpu_runs;  // each run's CPU %, for the label
  for (const auto& v : per) {
    if (v.empty()) continue;
    auto med = [&](double measured::*f) {
      std::vector<double> x;
      for (const auto& m : v) x.push_back(m.*f);
      return bench::stats::of(x).median;
    };
    measured m = v.front();
    for (auto f : {&measured::idle_rss_mb, &measured::idle_cpu_pct, &measured::load_rss_mb,
                   &measured::load_hwm_mb, &measured::load_cpu_pct, &measured::load_user_pct,
                   &measured::load_sys_pct, &measured::switches_per_s, &measured::published_rate})
      m.*f = med(f);
    for (const auto& x : v) m.ok = m.ok && x.ok;
    std::string runs_text;
    if (v.size() > 1) {
      runs_text = "median of " + std::to_string(v.size()) + ":";
      for (const auto& x : v) runs_text += " " + bench::fmt(x.load_cpu_pct, "%.1f");
      runs_text += "; ";
    }
    cpu_runs.push_back(runs_text);
    results.push_back(m);
  }

  const double edge_mb = file_mb(edge), full_mb = file_mb(full);
  const double edge_stripped = stripped_mb(edge, dir), full_stripped = stripped_mb(full, dir);
  std::printf("binary: edge %.2f MB (stripped %.2f), full %.2f MB (stripped %.2f)\n", edge_mb,
              edge_stripped, full_mb, full_stripped);

  bench::report rep("edge", "Edge footprint: the edge profile's pel vs the full build's");
  rep.condition("pipeline", "mqtt (QoS " + std::to_string(qos) +
                                ", JSON, device from the topic) → per-device 1-minute tumbling window "
                                "(count, 2 avg, max) → kafka" +
                                (buffer ? " through a store-and-forward buffer" : "") +
                                " (embedded broker in another process); checkpoints every 5 s to disk");
  rep.condition("load", bench::fmt(rate, "%.0f") + " messages/s for " + bench::fmt(seconds, "%.0f") +
                            " s from " + std::to_string(devices) +
                            " devices (5 % of them send 80 %); CPU over the last " +
                            bench::fmt(seconds - std::min(5.0, seconds / 4), "%.0f") + " s; idle " +
                            bench::fmt(idle_seconds, "%.0f") + " s, subscribed, nothing arriving");
  rep.condition("runs", "every setting once; the edge default and the baseline " +
                            std::to_string(runs) + " times, alternating (median)");
  rep.condition("sampling", "/proc/PID/status VmRSS (largest seen) and VmHWM, /proc/PID/stat utime+stime, every 250 ms");
  rep.condition("edge build", bench::shell(("grep -E '^(PEL_PROFILE|CMAKE_BUILD_TYPE|CMAKE_CXX_FLAGS_MINSIZEREL):' '" +
                                            fs::path(edge).parent_path().parent_path().parent_path().string() +
                                            "/CMakeCache.txt' 2>/dev/null | cut -d= -f2 | paste -sd' '")
                                               .c_str()));
  rep.condition("machine load before", bench::shell("cut -d' ' -f1-3 /proc/loadavg"));
  const measured* base = nullptr;
  for (const auto& m : results)
    if (m.label.find("baseline") != std::string::npos) base = &m;
  auto ratio = [&](double v, double b) { return b > 0 ? v / b : 0; };
  rep.value("binary size, edge (as built)", edge_mb, "MB");
  rep.value("binary size, edge (stripped)", edge_stripped, "MB");
  rep.value("binary size, full (as built)", full_mb, "MB");
  rep.value("binary size, full (stripped)", full_stripped, "MB");
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto& m = results[i];
    const bool target = m.label.rfind("edge `pel run`", 0) == 0;
    rep.value(m.label + ": idle RSS", m.idle_rss_mb, "MB", target ? 20 : 0, true);
    rep.value(m.label + ": idle CPU", m.idle_cpu_pct, "% of a core", target ? 1 : 0, true);
    rep.value(m.label + ": RSS at " + bench::fmt_rate(rate) + " msgs/s", m.load_rss_mb, "MB",
              target ? 50 : 0, true);
    rep.value(m.label + ": CPU at " + bench::fmt_rate(rate) + " msgs/s (" + cpu_runs[i] + "user " +
                  bench::fmt(m.load_user_pct, "%.1f") + " + system " + bench::fmt(m.load_sys_pct, "%.1f") +
                  "; " + std::to_string(m.threads) + " threads; " +
                  bench::fmt(m.switches_per_s, "%.0f") + " context switches/s)",
              m.load_cpu_pct, "% of a core", target ? 25 : 0, true);
    rep.value(m.label + ": messages published a second (every one counted by pel: " +
                  (m.ok ? "yes" : "NO") + ")",
              m.published_rate / 1000, "k msgs/s");
    if (base != nullptr && &m != base)
      std::printf("%s vs baseline: idle RSS %.2fx, load RSS %.2fx, CPU %.2fx\n", m.label.c_str(),
                  ratio(m.idle_rss_mb, base->idle_rss_mb), ratio(m.load_rss_mb, base->load_rss_mb),
                  ratio(m.load_cpu_pct, base->load_cpu_pct));
  }
  if (base != nullptr) {
    const auto& e = results.front();
    rep.value("edge / full: idle RSS", ratio(e.idle_rss_mb, base->idle_rss_mb), "×");
    rep.value("edge / full: RSS under load", ratio(e.load_rss_mb, base->load_rss_mb), "×");
    rep.value("edge / full: CPU under load", ratio(e.load_cpu_pct, base->load_cpu_pct), "×");
  }
  rep.write(PEL_SOURCE_DIR "/bench/results");
  fs::remove_all(dir);
  return ok ? 0 : 1;
}
