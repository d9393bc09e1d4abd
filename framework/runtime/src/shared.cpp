#include "shared.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "pel/core/time.hpp"

#include <algorithm>
#include <limits>

namespace pel::runtime {

namespace {

std::shared_ptr<spdlog::logger> dead_letter_logger() {
  static std::shared_ptr<spdlog::logger> log = [] {
    if (auto l = spdlog::get("pel")) return l;
    try {
      return spdlog::stderr_logger_mt("pel");
    } catch (const spdlog::spdlog_ex&) {
      return spdlog::get("pel");  // registered by another thread meanwhile
    }
  }();
  return log;
}

} // namespace

job_state::job_state(const plan::physical_plan& p, options o) : plan(p), opts(std::move(o)) {
  std::uint32_t total = 0;
  for (const auto& c : plan.chains) {
    chain_base.push_back(total);
    total += c.parallelism;
  }
  wiring.resize(total);
  for (std::size_t c = 0; c < plan.chains.size(); ++c)
    for (std::uint32_t i = 0; i < plan.chains[c].parallelism; ++i) {
      wiring[chain_base[c] + i].chain = static_cast<int>(c);
      wiring[chain_base[c] + i].instance = i;
    }
  for (std::size_t ei = 0; ei < plan.edges.size(); ++ei) {
    const plan::edge& e = plan.edges[ei];
    if (e.fused) continue;
    const plan::node& up = plan.nodes[e.from];
    const plan::node& down = plan.nodes[e.to];
    for (std::uint32_t j = 0; j < up.parallelism; ++j) {
      std::uint32_t k_begin = 0, k_end = down.parallelism;
      if (e.part == plan::partitioning::forward) k_begin = j, k_end = j + 1;
      for (std::uint32_t k = k_begin; k < k_end && k < down.parallelism; ++k) {
        std::uint32_t s = id_of(up.chain, j);
        std::uint32_t r = id_of(down.chain, k);
        auto t_idx = static_cast<std::uint32_t>(wiring[s].targets.size());
        auto s_idx = static_cast<std::uint32_t>(wiring[r].slots.size());
        wiring[s].targets.push_back({r, s_idx, static_cast<int>(ei), k});
        wiring[r].slots.push_back({s, t_idx, static_cast<int>(ei), e.input});
      }
    }
  }
  for (std::uint32_t i = 0; i < total; ++i) chain_metrics.push_back(std::make_unique<chain_counters>());
  node_metrics.resize(plan.nodes.size());
  sink_index_base.assign(plan.nodes.size(), 0);
  std::uint32_t sinks = 0;
  for (std::size_t n = 0; n < plan.nodes.size(); ++n) {
    for (std::uint32_t i = 0; i < plan.nodes[n].parallelism; ++i)
      node_metrics[n].push_back(std::make_unique<node_counters>());
    if (plan.nodes[n].kind == spec::component_kind::sink) {
      sink_index_base[n] = sinks;
      sinks += plan.nodes[n].parallelism;
    }
  }
  sink_barrier.assign(sinks, 0);
  sink_ended.assign(sinks, false);
  split_floor.resize(plan.nodes.size());
  for (std::size_t n = 0; n < plan.nodes.size(); ++n) {
    if (plan.nodes[n].kind != spec::component_kind::source) continue;
    split_floor[n] = std::make_unique<std::atomic<std::int64_t>[]>(plan.nodes[n].parallelism);
    for (std::uint32_t i = 0; i < plan.nodes[n].parallelism; ++i)
      split_floor[n][i].store(std::numeric_limits<std::int64_t>::max());
  }
}

std::int64_t job_state::source_floor(int node) const {
  std::int64_t m = std::numeric_limits<std::int64_t>::max();
  const auto& f = split_floor[static_cast<std::size_t>(node)];
  if (!f) return m;
  for (std::uint32_t i = 0; i < plan.nodes[static_cast<std::size_t>(node)].parallelism; ++i)
    m = std::min(m, f[i].load(std::memory_order_relaxed));
  return m;
}

void job_state::log(int level, const std::string& text) {
  auto l = dead_letter_logger();
  if (!l) return;
  switch (level) {
    case 0: l->info("{}", text); break;
    case 1: l->warn("{}", text); break;
    default: l->error("{}", text); break;
  }
}

void job_state::fail(const std::string& component, const std::string& what) {
  std::function<void()> kill;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!failed) {
      failed = true;
      error = component + ": " + what;
      kill = kill_all;
    }
  }
  if (kill) kill();
  cv.notify_all();
}

void job_state::actor_done() {
  std::lock_guard<std::mutex> lock(mu);
  if (live > 0) --live;
  if (live == 0) cv.notify_all();
}

void job_state::sink_flushed(int node, std::uint32_t instance, std::uint64_t id) {
  std::uint64_t commit = 0;
  std::function<void(std::uint64_t)> fn;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto idx = sink_index_base[node] + instance;
    sink_barrier[idx] = std::max(sink_barrier[idx], id);
    std::uint64_t m = std::numeric_limits<std::uint64_t>::max();
    bool any = false;
    for (std::size_t i = 0; i < sink_barrier.size(); ++i) {
      if (sink_ended[i]) continue;
      any = true;
      m = std::min(m, sink_barrier[i]);
    }
    if (any && m > committed.load()) {
      committed.store(m);
      commit = m;
      fn = commit_sources;
    }
  }
  if (commit != 0 && fn) fn(commit);
}

void job_state::sink_closed(int node, std::uint32_t instance) {
  std::lock_guard<std::mutex> lock(mu);
  sink_ended[sink_index_base[node] + instance] = true;
}

void job_state::log_dead_letters(const core::batch& b) {
  const auto& schema = *core::dead_letter_schema();
  std::lock_guard<std::mutex> lock(log_mu);
  auto log = dead_letter_logger();
  std::int64_t now = core::steady_ns();
  for (std::size_t r = 0; r < b.size(); ++r) {
    if (now - log_window_start >= 1'000'000'000) {
      if (log_suppressed > 0 && log)
        log->warn("{} more dead letters were not logged (rate limit)", log_suppressed);
      log_window_start = now;
      log_window_count = 0;
      log_suppressed = 0;
    }
    if (log_window_count >= opts.dead_letter_log_per_second || !log) {
      ++log_suppressed;
      dead_dropped.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    ++log_window_count;
    std::string line = "{";
    const core::value* row = b.row(r);
    for (std::size_t c = 0; c < schema.size() && c < b.width; ++c) {
      if (c > 0) line += ',';
      core::append_json(line, core::value{schema[c].name});
      line += ':';
      core::append_json(line, row[c]);
    }
    line += '}';
    log->warn("dead letter: {}", line);
    dead_logged.fetch_add(1, std::memory_order_relaxed);
  }
}

} // namespace pel::runtime
