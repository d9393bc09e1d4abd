// The pel command line: run, lint, docs and kafka-broker.
//
// Exit codes: 0 ok, 1 runtime failure, 2 invalid input or usage. Only this file prints to
// the terminal or exits; the libraries report through return values and exceptions.

#include "commands.hpp"
#include "pel/api/server.hpp"
#include "pel/core/value.hpp"
#include "pel/connectors/register.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/diagnostics.hpp"
#include "pel/spec/node.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/reference.hpp"
#include "pel/spec/registry.hpp"

#ifdef PEL_HAVE_KAFKA
#include <librdkafka/rdkafka.h>
#endif
#ifdef PEL_HAVE_KAFKA_BROKER
#include "pel/connectors/kafka_broker.hpp"
#endif

#include <CLI/CLI.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <pthread.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_invalid = 2;

// ---- signals ---------------------------------------------------------------------------

/// Blocks SIGINT and SIGTERM in every thread started after this call, and watches them on a
/// thread of its own: the first signal calls `on_stop`, a second one exits at once.
class signal_watcher {
public:
  signal_watcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);  // used to wake the watcher when the command ends by itself
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }

  /// Starts watching; `on_stop` runs on the watcher thread.
  void start(std::function<void()> on_stop) {
    thread_ = std::thread([this, on_stop = std::move(on_stop)] {
      int count = 0;
      for (;;) {
        int sig = 0;
        if (sigwait(&set_, &sig) != 0) continue;
        if (sig == SIGUSR1 || done_.load()) return;
        if (++count == 1) {
          spdlog::info("stopping: finishing in-flight records (press Ctrl-C again to abort)");
          on_stop();
        } else {
          std::fprintf(stderr, "aborted\n");
          std::_Exit(130);
        }
      }
    });
  }

  ~signal_watcher() {
    done_ = true;
    if (thread_.joinable()) {
      pthread_kill(thread_.native_handle(), SIGUSR1);
      thread_.join();
    }
  }

private:
  sigset_t set_;
  std::thread thread_;
  std::atomic<bool> done_{false};
};

// ---- logging -----------------------------------------------------------------------------

/// `%*`: the message as the body of a JSON string (escaped as `core::append_json` does, bytes
/// that are not UTF-8 as U+FFFD), so that every JSON log line parses whatever the message holds.
class json_message_flag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string quoted;
    pel::core::append_json_string(quoted, std::string_view(msg.payload.data(), msg.payload.size()));
    // Without its quotes: the pattern has them.
    dest.append(quoted.data() + 1, quoted.data() + quoted.size() - 1);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

void setup_logging(const std::string& level, const std::string& format) {
  auto logger = spdlog::stderr_color_mt("pel");
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<json_message_flag>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","logger":"%n","thread":%t,"msg":"%*"})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ %v");
  }
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

// ---- registry and loading ----------------------------------------------------------------

pel::spec::registry builtin_registry() {
  pel::spec::registry reg;
  pel::operators::register_builtin_operators(reg);
  pel::connectors::register_builtin_connectors(reg);
  return reg;
}

/// The settings of the built-in components that name a file they read or write.
const std::vector<pel::plan::file_setting>& builtin_file_settings() {
  static const std::vector<pel::plan::file_setting> table{
      {pel::spec::component_kind::sink, "file", "path", true},
      {pel::spec::component_kind::source, "file", "path", false},
  };
  return table;
}

/// "N error(s), nothing started" after the diagnostics of `what` (a file, or `pel run`).
void print_errors(const std::string& what, const pel::spec::diagnostics& diags) {
  std::cerr << diags.format();
  std::cerr << pel::spec::one_line(what) << ": " << diags.size()
            << (diags.size() == 1 ? " error" : " errors") << ", nothing started\n";
}

/// Loads and plans one file. On errors prints every diagnostic of both passes and returns
/// nullopt. With `check_files`, a plan whose sinks write a file twice (or one its sources
/// read) is an error too; `pel run` checks that over all its files at once instead.
std::optional<pel::plan::physical_plan> load_and_plan(const std::string& file,
                                                      const pel::spec::registry& reg,
                                                      bool check_files) {
  try {
    auto checked = pel::plan::check_file(file, reg);
    if (checked.plan && check_files)
      checked.diags = pel::plan::check_shared_files({&*checked.plan}, builtin_file_settings());
    if (checked.plan && checked.diags.empty()) return std::move(checked.plan);
    print_errors(file, checked.diags);
  } catch (const std::exception& e) {
    std::cerr << pel::spec::one_line(file) << ":0:0: " << pel::spec::one_line(e.what()) << "\n";
  }
  return std::nullopt;
}

std::string summary(const pel::plan::physical_plan& plan) {
  std::size_t instances = 0, actors = 0;
  for (const auto& n : plan.nodes) instances += n.parallelism;
  for (const auto& c : plan.chains) actors += c.parallelism;
  return std::to_string(plan.nodes.size()) + " components, " + std::to_string(instances) +
         " instances in " + std::to_string(actors) + " actors";
}

// ---- pel lint ----------------------------------------------------------------------------

struct lint_args {
  std::vector<std::string> files;
  bool explain = false;
  bool quiet = false;
};

int cmd_lint(const lint_args& a) {
  auto reg = builtin_registry();
  int rc = exit_ok;
  for (const auto& f : a.files) {
    auto plan = load_and_plan(f, reg, true);
    if (!plan) {
      rc = exit_invalid;
      continue;
    }
    if (!a.quiet) std::cout << f << ": ok (" << summary(*plan) << ")\n";
    if (a.explain) std::cout << pel::plan::explain(*plan);
  }
  return rc;
}

// ---- pel run -----------------------------------------------------------------------------

struct run_args {
  std::vector<std::string> files;
  bool explain = false;
  std::size_t threads = 2;
  std::string progress = "auto";
  std::vector<std::string> embedded_kafka_topics;
  bool embedded_kafka = false;
  std::string duration;  ///< stop gracefully after this long; empty: run until the end
  std::string state_dir;  ///< checkpoints go here (a folder per pipeline when several run)
  bool drain = false;     ///< a stop fires windows and ends the streams (no final checkpoint)
  pel::runtime::options::chaos_settings chaos;
  bool no_autoscale = false;  ///< components keep their initial parallelism
  std::string http;        ///< `--http HOST:PORT`; empty: no HTTP API
  std::string http_token;  ///< `--http-token` (or PEL_HTTP_TOKEN)
};

/// Reads `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1; `[::1]:PORT` for IPv6); returns an
/// error text, empty when fine.
std::string parse_http_address(const std::string& text, std::string& host, int& port) {
  std::string h, p = text;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return "expected [IPv6]:PORT, found '" + text + "'";
    h = text.substr(0, close + 1);
    p = text.substr(close + 2);
  } else if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  int n = -1;
  const auto r = std::from_chars(p.data(), p.data() + p.size(), n);
  if (p.empty() || r.ec != std::errc() || r.ptr != p.data() + p.size() || n < 0 || n > 65535)
    return "expected HOST:PORT, :PORT or PORT with a port from 0 to 65535 (0: a free one), found '" + text +
           "'";
  host = h.empty() ? "127.0.0.1" : h;
  port = n;
  return {};
}

/// Reads `seed=S,rate=R[,max=N]`; returns an error text, empty when fine.
std::string parse_chaos(const std::string& text, pel::runtime::options::chaos_settings& c) {
  std::size_t start = 0;
  bool have_rate = false;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(start, comma - start);
    start = comma + 1;
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string::npos) return "'" + item + "' is not key=value";
    const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    try {
      std::size_t used = 0;
      if (k == "seed") c.seed = std::stoull(v, &used);
      else if (k == "rate") c.rate = std::stod(v, &used), have_rate = true;
      else if (k == "max") c.max = std::stoull(v, &used);
      else return "unknown key '" + k + "' (seed, rate, max)";
      if (used != v.size()) throw std::invalid_argument(v);
    } catch (const std::exception&) {
      return "'" + v + "' is not a number for " + k;
    }
  }
  if (!have_rate || !(c.rate > 0) || c.rate > 1000) return "rate=R is required, failures per second in (0, 1000]";
  return {};
}

std::string human_count(double x) {
  char buf[32];
  if (x >= 1e9) std::snprintf(buf, sizeof buf, "%.2fG", x / 1e9);
  else if (x >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", x / 1e6);
  else if (x >= 1e3) std::snprintf(buf, sizeof buf, "%.1fk", x / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", x);
  return buf;
}

/// Prints a one-line progress report on stderr while bounded sources are read.
class progress_line {
public:
  explicit progress_line(bool enabled) : enabled_(enabled) {}

  void update(const std::vector<std::unique_ptr<pel::runtime::job>>& jobs) {
    if (!enabled_) return;
    std::uint64_t done = 0, total = 0, rows = 0;
    for (const auto& j : jobs) {
      std::uint64_t d = 0, t = 0;
      j->progress(d, t);
      done += d;
      total += t;
      for (const auto& m : j->metrics())
        if (m.rows_in == 0) rows += m.rows_out;  // sources: rows they emitted
    }
    auto now = std::chrono::steady_clock::now();
    double secs = std::chrono::duration<double>(now - start_).count();
    std::string line = "  " + human_count(static_cast<double>(rows)) + " rows";
    if (secs > 0) line += ", " + human_count(rows / secs) + " rows/s";
    if (total > 0) {
      char pct[16];
      std::snprintf(pct, sizeof pct, "%5.1f%%", 100.0 * static_cast<double>(done) / total);
      line = std::string("  ") + pct + line;
    }
    std::fprintf(stderr, "\r%-60s", line.c_str());
    std::fflush(stderr);
    shown_ = true;
  }

  void clear() {
    if (shown_) std::fprintf(stderr, "\r%-60s\r", "");
  }

private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

/// One line of a pipeline's totals: records in (what its sources read) and out (what its
/// sinks took), dead letters and late records.
std::string pipeline_totals(const pel::plan::physical_plan& plan,
                            const std::vector<pel::runtime::component_stats>& components) {
  std::uint64_t in = 0, out = 0, dead = 0, late = 0;
  for (const auto& c : components) {
    dead += c.dead_letters;
    late += c.late;
    const int n = plan.find(c.name);
    if (n < 0) continue;
    const auto kind = plan.nodes[static_cast<std::size_t>(n)].kind;
    if (kind == pel::spec::component_kind::source) in += c.rows_out;
    if (kind == pel::spec::component_kind::sink) out += c.rows_in;
  }
  return std::to_string(in) + " records in, " + std::to_string(out) + " records out, " +
         std::to_string(dead) + " dead letters, " + std::to_string(late) + " late";
}

/// The run summary of one pipeline: records in and out, dead letters, late records and input
/// lost before it was read (sinks: dropped by a full buffer), per component; a warning line
/// when anything was lost.
void log_run_summary(const pel::plan::physical_plan& plan, const pel::runtime::result& r,
                     const pel::spec::registry& reg) {
  std::size_t width = 0;
  for (const auto& c : r.components) width = std::max(width, c.name.size());
  std::uint64_t dropped_late = 0, lost = 0, dead = 0, buffer_dropped = 0;
  for (const auto& c : r.components) {
    const pel::plan::node* n = nullptr;
    for (const auto& x : plan.nodes)
      if (x.name == c.name) n = &x;
    bool late_routed = false;
    if (n != nullptr)
      for (int e : n->out_edges)
        if (plan.edges[static_cast<std::size_t>(e)].port == pel::plan::port_kind::late) late_routed = true;
    std::string line = "  " + c.name + std::string(width - c.name.size(), ' ');
    if (n == nullptr || n->kind != pel::spec::component_kind::source)
      line += "  in " + std::to_string(c.rows_in);
    if (n == nullptr || n->kind != pel::spec::component_kind::sink)
      line += "  out " + std::to_string(c.rows_out);
    line += "  dead letters " + std::to_string(c.dead_letters);
    bool windowed = false;  // has a late port
    if (n != nullptr && n->kind == pel::spec::component_kind::operator_)
      if (const auto* e = reg.find_operator(n->type))
        windowed = std::find(e->schema.ports.begin(), e->schema.ports.end(), "late") !=
                   e->schema.ports.end();
    if (c.late > 0 || windowed)
      line += "  late " + std::to_string(c.late) +
              (late_routed ? " (to " + c.name + ".late)" : c.late > 0 ? " (dropped)" : "");
    const bool is_sink = n != nullptr && n->kind == pel::spec::component_kind::sink;
    if (c.lost > 0)
      line += (is_sink ? "  lost (dropped by its full buffer) " : "  lost before read ") +
              std::to_string(c.lost);
    if (c.max_split_lead_ns > 0) {
      char lead[64];
      std::snprintf(lead, sizeof lead, "  partition lead up to %.1fs", c.max_split_lead_ns / 1e9);
      line += lead;
    }
    spdlog::info("{}", line);
    if (!late_routed) dropped_late += c.late;
    (is_sink ? buffer_dropped : lost) += c.lost;
    dead += c.dead_letters;
  }
  if (dropped_late > 0 || lost > 0 || buffer_dropped > 0)
    spdlog::warn("{}: {} late records dropped, {} input records lost before they were read, {} "
                 "dead letters{}",
                 plan.file, dropped_late, lost, dead,
                 buffer_dropped > 0 ? ", " + std::to_string(buffer_dropped) +
                                          " records dropped by full sink buffers (when_full: drop_oldest)"
                                    : std::string());
  if (r.checkpoints > 0 || r.restored_from > 0) {
    char took[96];
    std::snprintf(took, sizeof took, "took %.1f ms, longest %.1f ms", r.last_checkpoint_ns / 1e6,
                  r.max_checkpoint_ns / 1e6);
    spdlog::info("  checkpoints: {} complete (last {}: {} bytes, {}), {} abandoned{}", r.checkpoints,
                 r.last_checkpoint, r.last_checkpoint_bytes, took, r.checkpoints_abandoned,
                 r.restored_from > 0 ? ", resumed from " + std::to_string(r.restored_from) : std::string());
  }
  if (r.restarts > 0 || r.chaos_injected > 0 || r.quarantined > 0) {
    spdlog::info("  restarts: {} (failures injected by --chaos: {}, records quarantined: {})", r.restarts,
                 r.chaos_injected, r.quarantined);
    for (const auto& l : r.restart_log) spdlog::info("    restarted after: {}", l);
  }
  if (!r.scaling_policy.empty()) {
    // Autoscaling: each scaled component's path, then every decision with its reason.
    std::size_t done = 0;
    for (const auto& e : r.scaling) done += e.done ? 1 : 0;
    spdlog::info("  scaling ({}): {} decision(s), {} carried out", r.scaling_policy, r.scaling.size(), done);
    for (const auto& n : plan.nodes) {
      if (n.parallelism_min >= n.parallelism_max) continue;
      std::string path = std::to_string(n.parallelism);
      for (const auto& e : r.scaling)
        if (e.done && (e.component == n.name || e.component.find(n.name + "+") == 0))
          path += " -> " + std::to_string(e.to);
      const auto* c = r.find(n.name);
      spdlog::info("    {}: parallelism {} (range {}..{}, at most {} at once)", n.name, path, n.parallelism_min,
                   n.parallelism_max, c ? c->max_parallelism : n.parallelism);
    }
    for (const auto& e : r.scaling) {
      char at[32];
      std::snprintf(at, sizeof at, "%.1f s", e.at_ns / 1e9);
      spdlog::info("    at {}: {} {} -> {}: {}; {}", at, e.component, e.from, e.to, e.reason,
                   e.outcome.empty() ? std::string("not carried out") : e.outcome);
    }
  }
  if (r.stopped_at > 0)
    spdlog::info("{}: stopped with checkpoint {}: nothing was drained; a run with the same state "
                 "directory continues from there",
                 plan.file, r.stopped_at);
}

/// Stops the jobs one after the other, in the order of the files, each after the previous one
/// has finished: a feed stops first, and the pipelines reading what it wrote still get the
/// end of it before they stop.
void stop_in_order(std::vector<std::unique_ptr<pel::runtime::job>>& jobs, bool drain) {
  for (auto& j : jobs) {
    j->stop(drain);
    j->wait_for(std::chrono::seconds(10));
  }
}

int cmd_run(const run_args& a, signal_watcher& signals) {
  auto reg = builtin_registry();

#ifdef PEL_HAVE_KAFKA_BROKER
  std::unique_ptr<pel::connectors::kafka_broker> broker;
  if (a.embedded_kafka) {
    pel::connectors::kafka_broker_options bo;
    bo.topics = a.embedded_kafka_topics;
    try {
      broker = std::make_unique<pel::connectors::kafka_broker>(bo);
    } catch (const std::exception& e) {
      spdlog::error("embedded Kafka broker: {}", e.what());
      return exit_failure;
    }
    setenv("PEL_KAFKA_BOOTSTRAP", broker->bootstraps().c_str(), 1);
    spdlog::info("embedded Kafka broker at {} (PEL_KAFKA_BOOTSTRAP)", broker->bootstraps());
    spdlog::info("embedded Kafka broker: {}", pel::connectors::kafka_broker_retention);
  }
#else
  if (a.embedded_kafka) {
    std::cerr << "this pel was built without the embedded Kafka broker (PEL_PROFILE=edge or "
                 "PEL_WITH_KAFKA=OFF)\n";
    return exit_invalid;
  }
#endif

  // Checked with the other options in main(); here it only converts.
  std::int64_t stop_after_ns = 0;
  if (!a.duration.empty()) pel::spec::parse_duration(a.duration, stop_after_ns);

  std::vector<pel::plan::physical_plan> plans;
  bool invalid = false;
  for (const auto& f : a.files) {
    auto plan = load_and_plan(f, reg, false);
    if (!plan) {
      invalid = true;
      continue;
    }
    if (a.explain) std::cerr << pel::plan::explain(*plan);
    plans.push_back(std::move(*plan));
  }
  if (invalid) return exit_invalid;
  // Pipelines side by side must not write one file twice, nor write what another reads.
  {
    std::vector<const pel::plan::physical_plan*> all;
    for (const auto& p : plans) all.push_back(&p);
    auto shared = pel::plan::check_shared_files(all, builtin_file_settings());
    if (!shared.empty()) {
      print_errors("pel run", shared);
      return exit_invalid;
    }
  }

  pel::runtime::options opts;
  opts.threads = a.threads;
  opts.chaos = a.chaos;
  opts.autoscale = !a.no_autoscale;
  std::vector<std::unique_ptr<pel::runtime::job>> jobs;
  for (const auto& p : plans) {
    spdlog::info("starting {} ({})", p.file, summary(p));
    pel::runtime::options o = opts;
    // One state directory per pipeline: the folder itself for one, a subfolder each for more.
    if (!a.state_dir.empty())
      o.state_dir = plans.size() == 1 ? a.state_dir : a.state_dir + "/" + p.settings.name;
    jobs.push_back(std::make_unique<pel::runtime::job>(p, o));
  }
  if (a.chaos.rate > 0)
    spdlog::warn("--chaos: about {} failures per second are injected into random instances (seed {})",
                 a.chaos.rate, a.chaos.seed);
  // The HTTP API: its settings are checked before anything starts; it serves once the jobs run.
  std::unique_ptr<pel::api::server> http;
  if (!a.http.empty()) {
    pel::api::settings hs;
    parse_http_address(a.http, hs.host, hs.port);  // checked in main()
    hs.token = a.http_token;
    http = std::make_unique<pel::api::server>(hs);
    for (std::size_t i = 0; i < jobs.size(); ++i) http->add(plans[i].settings.name, plans[i].file, *jobs[i]);
  }
  const bool drain = a.drain;
  std::atomic<bool> stop_asked{false};
  signals.start([&jobs, &plans, drain, &stop_asked] {
    stop_asked = true;
    for (std::size_t i = 0; i < jobs.size(); ++i)
      spdlog::info("{}: stopping after {}", plans[i].file, pipeline_totals(plans[i], jobs[i]->status().components));
    for (auto& j : jobs) j->stop(drain);
  });
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    try {
      jobs[i]->start();
    } catch (const std::exception& e) {
      spdlog::error("{}: {}", plans[i].file, e.what());
      for (auto& j : jobs) j->stop(true);
      return exit_failure;
    }
  }
  if (http) {
    try {
      const int port = http->start();
      std::string host;
      int asked = 0;
      parse_http_address(a.http, host, asked);
      spdlog::info("HTTP API and dashboard at http://{}:{}/", host, port);
    } catch (const std::exception& e) {
      spdlog::error("--http {}: {}", a.http, e.what());
      for (auto& j : jobs) j->stop(true);
      return exit_failure;
    }
  }

  bool show_progress = a.progress == "always" || (a.progress == "auto" && isatty(STDERR_FILENO));
  progress_line progress(show_progress);
  const auto started = std::chrono::steady_clock::now();
  bool stopping = false;
  for (;;) {
    if (stop_after_ns > 0 && !stopping &&
        std::chrono::steady_clock::now() - started >= std::chrono::nanoseconds(stop_after_ns)) {
      spdlog::info("--duration {} reached: stopping", a.duration);
      for (std::size_t i = 0; i < jobs.size(); ++i)
        spdlog::info("{}: stopping after {}", plans[i].file, pipeline_totals(plans[i], jobs[i]->status().components));
      stopping = true;
      stop_in_order(jobs, a.drain);
    }
    bool all_done = true;
    for (auto& j : jobs)
      if (!j->wait_for(std::chrono::milliseconds(j == jobs.front() ? 250 : 0))) all_done = false;
    if (all_done) break;
    progress.update(jobs);
  }
  progress.clear();

  int rc = exit_ok;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    auto r = jobs[i]->wait();
    const std::string totals = pipeline_totals(plans[i], r.components);
    if (!r.ok) {
      spdlog::error("{}: failed: {} ({})", plans[i].file, r.error, totals);
      rc = exit_failure;
    } else {
      spdlog::info("{}: {}: {}", plans[i].file, stopping || stop_asked.load() ? "stopped" : "finished", totals);
    }
    log_run_summary(plans[i], r, reg);
  }
  return rc;
}

// ---- pel docs ----------------------------------------------------------------------------

int cmd_docs(const std::string& out_dir) {
  auto reg = builtin_registry();
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    std::cerr << out_dir << ": " << ec.message() << "\n";
    return exit_failure;
  }
  for (const auto& page : pel::spec::reference_pages(reg)) {
    auto path = std::filesystem::path(out_dir) / page.file;
    std::ofstream f(path);
    f << page.markdown;
    if (!f) {
      std::cerr << path.string() << ": cannot write\n";
      return exit_failure;
    }
    std::cout << "wrote " << path.string() << "\n";
  }
  return exit_ok;
}

// ---- pel kafka-broker ----------------------------------------------------------------------

#ifdef PEL_HAVE_KAFKA_BROKER
int cmd_kafka_broker(const pel::connectors::kafka_broker_options& o, signal_watcher& signals) {
  static std::atomic<bool> stop{false};
  signals.start([] { stop = true; });
  return pel::connectors::run_kafka_broker(o, stop);
}
#endif

// ---- options checked after parsing --------------------------------------------------------

/// What is wrong with a `--duration` value, or "" when it is a positive duration.
std::string duration_problem(const std::string& text) {
  std::int64_t ns = 0;
  if (text.size() > 1 && text[0] == '-' && pel::spec::parse_duration(text.substr(1), ns))
    return "must not be negative, found '" + text + "'";
  if (!pel::spec::parse_duration(text, ns))
    return "expected a duration such as 30s or 2m, found '" + text + "'";
  if (ns == 0) return "must be more than 0s; leave it out to run until the inputs end";
  return {};
}

/// Most partitions a topic of the embedded broker may have (the mock keeps them in memory).
constexpr int max_topic_partitions = 10000;

/// What is wrong with a topic written `name:partitions`, or "" when it is well formed.
std::string topic_problem(const std::string& spec) {
  const std::string form = "; write name:partitions, e.g. ticks:16";
  const auto colon = spec.rfind(':');
  if (colon == std::string::npos) return "topic '" + spec + "' has no partition count" + form;
  const std::string name = spec.substr(0, colon);
  const std::string count = spec.substr(colon + 1);
  if (name.empty()) return "topic '" + spec + "' has no name" + form;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return "topic name '" + name + "' may hold only letters, digits, '.', '_' and '-'";
  if (name.size() > 249) return "topic name '" + name + "' is longer than 249 characters";
  int n = 0;
  const auto r = std::from_chars(count.data(), count.data() + count.size(), n);
  if (count.empty() || r.ec != std::errc() || r.ptr != count.data() + count.size() || n < 1 ||
      n > max_topic_partitions)
    return "topic '" + spec + "': the partition count must be a whole number from 1 to " +
           std::to_string(max_topic_partitions) + ", found '" + count + "'";
  return {};
}

/// Every problem of a list of topics, duplicates included.
std::vector<std::string> topic_problems(const std::vector<std::string>& topics) {
  std::vector<std::string> out, names;
  for (const auto& t : topics) {
    auto problem = topic_problem(t);
    if (!problem.empty()) {
      out.push_back(std::move(problem));
      continue;
    }
    const std::string name = t.substr(0, t.rfind(':'));
    if (std::find(names.begin(), names.end(), name) != names.end())
      out.push_back("topic '" + name + "' is given twice");
    names.push_back(name);
  }
  return out;
}

/// `pel --version`: this build's version and the libraries it was built with.
std::string version_text() {
  std::string out = "pel " PEL_VERSION "\n";
  out += "CAF " PEL_CAF_VERSION "\n";
#ifdef PEL_HAVE_KAFKA
  out += std::string("librdkafka ") + rd_kafka_version_str() + "\n";
#endif
  out += "yaml-cpp " PEL_YAML_CPP_VERSION;
  return out;
}

} // namespace

int main(int argc, char** argv) {
  signal_watcher signals;  // before any thread starts, so that all inherit the mask

  CLI::App app{
      "pel: YAML pipelines become actor graphs.\n\n"
      "  pel lint pipeline.yaml          check a pipeline, every error as file:line:column\n"
      "  pel lint --explain p.yaml       ...and print its physical plan\n"
      "  pel run pipeline.yaml           run it until its inputs end or Ctrl-C\n"
      "  pel docs --out docs/reference   write the YAML reference\n"
#ifdef PEL_HAVE_KAFKA_BROKER
      "  pel kafka-broker --topics t:4   host an embedded Kafka broker\n"
#endif
      "\n"
      "Exit codes: 0 ok, 1 runtime failure, 2 invalid input or usage.",
      "pel"};
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand
  app.set_version_flag("--version", version_text(),
                       "Print the version of pel and of the libraries it was built with");
  // A usage error quotes what was typed (a file name may hold a line break): one line each.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return pel::spec::one_line(e.what()) + "\nRun with --help for more information.\n";
  });
  std::string log_level = "info", log_format = "text";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_option("--log-format", log_format, "text or json (one JSON object per line)")
      ->check(CLI::IsMember({"text", "json"}));

  lint_args lint;
  auto* lint_cmd = app.add_subcommand("lint", "Validate pipeline files without running them");
  lint_cmd->add_option("files", lint.files, "Pipeline files")->required()->check(CLI::ExistingFile);
  lint_cmd->add_flag("--explain", lint.explain, "Print the physical plan: actors, instances, partitioning, schemas");
  lint_cmd->add_flag("-q,--quiet", lint.quiet, "Print only errors");

  run_args run;
  auto* run_cmd = app.add_subcommand(
      "run", "Run pipelines in this process until their inputs end (or SIGINT/SIGTERM)");
  run_cmd->add_option("files", run.files, "Pipeline files, run side by side")
      ->required()
      ->check(CLI::ExistingFile);
  run_cmd->add_flag("--explain", run.explain, "Print the physical plan before starting");
  run_cmd->add_option("--threads", run.threads, "Scheduler threads")->check(CLI::Range(1, 256));
  run_cmd->add_option("--state-dir", run.state_dir,
                      "Keep checkpoints in this folder (overrides pipeline.checkpoints.dir); a run "
                      "with the same folder resumes from the latest complete checkpoint, and a stop "
                      "(SIGINT/SIGTERM, --duration) takes a final one instead of draining");
  run_cmd->add_flag("--drain", run.drain,
                    "On stop, end the streams instead: windows fire, sinks flush and close "
                    "(the behaviour without a state directory)");
  run_cmd->add_flag("--no-autoscale", run.no_autoscale,
                    "Keep every component at its initial parallelism (pipeline.scaling is ignored)");
  run_cmd->add_option("--http", run.http,
                      "Serve the HTTP API, Prometheus /metrics and the dashboard at HOST:PORT while the "
                      "pipelines run (:PORT or PORT: 127.0.0.1; port 0: a free one, see the log); "
                      "read-only. See docs/api.md")
      ->type_name("HOST:PORT");
  run_cmd->add_option("--http-token", run.http_token,
                      "Bearer token every HTTP request must carry (default: $PEL_HTTP_TOKEN); "
                      "required to bind an address other than loopback")
      ->type_name("TOKEN");
  std::string chaos;
  run_cmd->add_option("--chaos", chaos,
                      "Fault injection for testing supervision: seed=S,rate=R[,max=N] makes about R "
                      "random instances per second fail (while processing, at a watermark or a "
                      "snapshot), at most N in all");
  run_cmd->add_option("--progress", run.progress, "Progress line on stderr: auto (on a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}));
  run_cmd->add_option("--duration", run.duration,
                      "Stop gracefully after this long (e.g. 30s); files are stopped in order");
  std::string embedded_kafka;
  run_cmd->add_option("--embedded-kafka", embedded_kafka,
                      "Start the embedded Kafka broker with these topics (name:partitions,...) "
                      "and export its address as PEL_KAFKA_BOOTSTRAP for ${PEL_KAFKA_BOOTSTRAP} "
                      "in the files. Each partition keeps only its newest 5 MiB or 100,000 "
                      "message sets (librdkafka's mock cluster cannot keep more)")
      ->type_name("TOPICS");

  std::string docs_out = "docs/reference";
  auto* docs_cmd = app.add_subcommand("docs", "Write the YAML reference generated from the component schemas");
  docs_cmd->add_option("--out", docs_out, "Output folder");

#ifdef PEL_HAVE_KAFKA_BROKER
  pel::connectors::kafka_broker_options broker;
  auto* broker_cmd = app.add_subcommand(
      "kafka-broker",
      "Host an embedded Kafka broker (librdkafka's mock cluster) until SIGINT/SIGTERM. Each "
      "partition keeps only its newest 5 MiB or 100,000 message sets and deletes older ones "
      "(the mock has no setting to keep more); a Kafka source that had not read them reports "
      "how many it lost");
  broker_cmd->add_option("--brokers", broker.brokers, "Number of brokers")->check(CLI::Range(1, 16));
  broker_cmd->add_option("--port", broker.port, "Bootstrap port on 127.0.0.1 (0: any free port)")
      ->check(CLI::Range(0, 65535));
  broker_cmd->add_option("--topics", broker.topics, "Topics to create, as name:partitions")->delimiter(',');
  broker_cmd->add_option("--bootstrap-file", broker.bootstrap_file, "Also write the bootstrap address to this file");
#else
  // Not in --help; named so that asking for it says why instead of "not expected".
  auto* broker_cmd =
      app.add_subcommand("kafka-broker", "")->group("")->allow_extras()->fallthrough(false);
#endif

  std::vector<pel::cli::command> extra{pel::cli::test_command(), pel::cli::top_command(),
                                      pel::cli::tap_command()};
  for (auto& c : extra) c.sub = c.add(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_invalid;
  }
  run.embedded_kafka = run_cmd->count("--embedded-kafka") > 0;
  if (!chaos.empty())
    if (auto err = parse_chaos(chaos, run.chaos); !err.empty()) {
      std::cerr << "pel run: --chaos: " << err << "\n";
      return exit_invalid;
    }
  for (std::size_t start = 0; run.embedded_kafka && start <= embedded_kafka.size();) {
    auto comma = embedded_kafka.find(',', start);
    if (comma == std::string::npos) comma = embedded_kafka.size();
    if (comma > start) run.embedded_kafka_topics.push_back(embedded_kafka.substr(start, comma - start));
    start = comma + 1;
  }
  // Values CLI11 cannot check by itself: usage errors like the others (exit 2, nothing
  // started), all of them at once.
  {
    std::vector<std::string> usage;
    if (*run_cmd && !run.duration.empty())
      if (auto p = duration_problem(run.duration); !p.empty()) usage.push_back("--duration: " + p);
    if (*run_cmd)
      for (const auto& p : topic_problems(run.embedded_kafka_topics))
        usage.push_back("--embedded-kafka: " + p);
    if (*run_cmd && run_cmd->count("--http-token") > 0 && run.http.empty())
      usage.push_back("--http-token: needs --http HOST:PORT");
    if (*run_cmd && run.http_token.empty())
      if (const char* t = std::getenv("PEL_HTTP_TOKEN")) run.http_token = t;
    if (*run_cmd && !run.http.empty()) {
      std::string host;
      int port = 0;
      if (auto p = parse_http_address(run.http, host, port); !p.empty()) usage.push_back("--http: " + p);
      else if (!pel::api::is_loopback(host) && run.http_token.empty())
        usage.push_back("--http: " + host +
                        " is not a loopback address: serving it needs a token (--http-token TOKEN or "
                        "PEL_HTTP_TOKEN), or bind 127.0.0.1");
    }
#ifdef PEL_HAVE_KAFKA_BROKER
    if (*broker_cmd)
      for (const auto& p : topic_problems(broker.topics)) usage.push_back("--topics: " + p);
#endif
    if (!usage.empty()) {
      for (const auto& u : usage) std::cerr << pel::spec::one_line(u) << "\n";
      std::cerr << "Run with --help for more information.\n";
      return exit_invalid;
    }
  }
  setup_logging(log_level, log_format);

  try {
    if (*lint_cmd) return cmd_lint(lint);
    if (*run_cmd) return cmd_run(run, signals);
    if (*docs_cmd) return cmd_docs(docs_out);
    for (auto& c : extra)
      if (*c.sub) return c.run();
#ifdef PEL_HAVE_KAFKA_BROKER
    if (*broker_cmd) return cmd_kafka_broker(broker, signals);
#else
    if (*broker_cmd) {
      std::cerr << "pel kafka-broker: this pel was built without the embedded Kafka broker "
                   "(PEL_PROFILE=edge or PEL_WITH_KAFKA=OFF); run it from a full build\n";
      return exit_invalid;
    }
#endif
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return exit_failure;
  }
  return exit_invalid;
}
