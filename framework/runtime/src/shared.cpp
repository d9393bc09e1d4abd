#include "shared.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "pel/core/time.hpp"

#include <algorithm>
#include <charconv>
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
  std::vector<std::uint32_t> par;
  for (const auto& c : plan.chains) par.push_back(c.parallelism);
  build_topology(par);
  tapped = std::make_unique<std::atomic<std::uint32_t>[]>(plan.nodes.size());
  for (std::size_t n = 0; n < plan.nodes.size(); ++n) tapped[n].store(0);
  split_floor.resize(plan.nodes.size());
  for (std::size_t n = 0; n < plan.nodes.size(); ++n) {
    if (plan.nodes[n].kind != spec::component_kind::source) continue;
    // One entry per instance index the source can have (an autoscaled one up to its max).
    const auto slots = std::max(plan.nodes[n].parallelism, plan.nodes[n].parallelism_max);
    split_floor[n] = std::make_unique<std::atomic<std::int64_t>[]>(slots);
    for (std::uint32_t i = 0; i < slots; ++i) split_floor[n][i].store(std::numeric_limits<std::int64_t>::max());
  }
}

void job_state::build_topology(const std::vector<std::uint32_t>& par) {
  wiring.clear();
  chain_ids.assign(plan.chains.size(), {});
  parallelism.assign(plan.chains.size(), 0);
  chain_metrics.clear();
  node_metrics.clear();
  ended.clear();
  careful.clear();
  for (std::size_t c = 0; c < plan.chains.size(); ++c) {
    parallelism[c] = par[c];
    chain_ids[c] = add_instances(static_cast<int>(c), par[c]);
  }
  for (std::size_t ei = 0; ei < plan.edges.size(); ++ei) {
    const plan::edge& e = plan.edges[ei];
    if (e.fused) continue;
    connect(static_cast<int>(ei), chain_ids[static_cast<std::size_t>(plan.nodes[e.from].chain)],
            chain_ids[static_cast<std::size_t>(plan.nodes[e.to].chain)]);
  }
}

std::vector<std::uint32_t> job_state::add_instances(int chain, std::uint32_t n) {
  std::vector<std::uint32_t> ids;
  const auto& ch = plan.chains[static_cast<std::size_t>(chain)];
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto id = static_cast<std::uint32_t>(wiring.size());
    instance_wiring w;
    w.chain = chain;
    w.instance = i;
    wiring.push_back(std::move(w));
    chain_metrics.push_back(std::make_unique<chain_counters>());
    std::vector<std::unique_ptr<node_counters>> nodes;
    for (std::size_t k = 0; k < ch.nodes.size(); ++k) nodes.push_back(std::make_unique<node_counters>());
    node_metrics.push_back(std::move(nodes));
    ended.push_back(false);
    careful.emplace_back(false);
    ids.push_back(id);
  }
  return ids;
}

void job_state::connect(int ei, const std::vector<std::uint32_t>& ups, const std::vector<std::uint32_t>& downs) {
  const plan::edge& e = plan.edges[static_cast<std::size_t>(ei)];
  for (std::uint32_t j = 0; j < ups.size(); ++j) {
    std::uint32_t k_begin = 0, k_end = static_cast<std::uint32_t>(downs.size());
    if (e.part == plan::partitioning::forward) k_begin = j, k_end = j + 1;
    for (std::uint32_t k = k_begin; k < k_end && k < downs.size(); ++k) {
      const std::uint32_t s = ups[j], r = downs[k];
      auto t_idx = static_cast<std::uint32_t>(wiring[s].targets.size());
      auto s_idx = static_cast<std::uint32_t>(wiring[r].slots.size());
      wiring[s].targets.push_back({r, s_idx, ei, k, false});
      wiring[r].slots.push_back({s, t_idx, ei, e.input, false});
    }
  }
}

std::string job_state::topology_text() const {
  std::string t;
  for (auto p : parallelism) {
    if (!t.empty()) t += ' ';
    t += std::to_string(p);
  }
  return t;
}

std::vector<std::uint32_t> job_state::checkpoint_topology(std::uint64_t id) const {
  std::vector<std::uint32_t> par;
  const auto topo = store ? store->get(id, "topology") : std::nullopt;
  if (!topo) return par;
  std::size_t pos = 0;
  while (pos < topo->size()) {
    std::size_t end = topo->find(' ', pos);
    if (end == std::string::npos) end = topo->size();
    std::uint32_t p = 0;
    const auto [ptr, ec] = std::from_chars(topo->data() + pos, topo->data() + end, p);
    if (ec != std::errc{} || ptr != topo->data() + end || p == 0) return {};
    par.push_back(p);
    pos = end + 1;
  }
  if (par.size() != plan.chains.size()) return {};
  return par;
}

void job_state::rescale_handed(std::uint64_t rid, std::uint32_t k, std::string blob) {
  std::function<void(int, std::uint64_t)> fn;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (rescale.id != rid || k >= rescale.blobs.size() || rescale.handed[k]) return;
    rescale.state_bytes += blob.size();
    rescale.blobs[k] = std::move(blob);
    rescale.handed[k] = true;
    if (++rescale.handed_count < rescale.old_ids.size()) return;
    fn = on_rescale_progress;
  }
  if (fn) fn(0, rid);
}

void job_state::rescale_restored(std::uint64_t rid) {
  std::function<void(int, std::uint64_t)> fn;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (rescale.id != rid) return;
    if (++rescale.restored_count < rescale.new_ids.size()) return;
    fn = on_rescale_progress;
  }
  if (fn) fn(1, rid);
}

std::int64_t job_state::source_floor(int node) const {
  std::int64_t m = std::numeric_limits<std::int64_t>::max();
  const auto& f = split_floor[static_cast<std::size_t>(node)];
  if (!f) return m;
  const auto& n = plan.nodes[static_cast<std::size_t>(node)];
  for (std::uint32_t i = 0; i < std::max(n.parallelism, n.parallelism_max); ++i)
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
      restarting = false;
      failures_pending = 0;
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
  if (over()) cv.notify_all();
}

std::uint64_t job_state::begin_checkpoint(bool final, std::int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu);
  if (!final && !pending.empty()) return 0;  // one at a time; a slow one is not piled upon
  if (rescale.id != 0) return 0;  // the barrier would meet instances being replaced
  const std::uint64_t id = next_checkpoint++;
  if (store) store->put(id, "topology", topology_text());
  pending_checkpoint p;
  p.acked.assign(wiring.size(), false);
  p.started_ns = now_ns;
  p.final = final;
  pending.emplace(id, std::move(p));
  return id;
}

bool job_state::try_complete(std::uint64_t id, bool& final) {
  auto it = pending.find(id);
  if (it == pending.end()) return false;
  for (std::size_t i = 0; i < it->second.acked.size(); ++i)
    if (!it->second.acked[i] && !ended[i]) return false;
  final = it->second.final;
  const std::int64_t took = core::steady_ns() - it->second.started_ns;
  last_checkpoint_bytes.store(it->second.bytes);
  last_checkpoint_ns.store(took);
  last_checkpoint_at_ns.store(core::processing_time::now().ns);
  if (took > max_checkpoint_ns.load()) max_checkpoint_ns.store(took);
  pending.erase(it);
  // Older ones can no longer complete (an instance acknowledged a later one without them).
  for (auto o = pending.begin(); o != pending.end() && o->first < id;) {
    if (store) store->abandon(o->first);
    o = pending.erase(o);
  }
  return true;
}

void job_state::ack_checkpoint(std::uint64_t id, std::uint32_t instance, std::uint64_t bytes) {
  bool final = false;
  std::function<void(std::uint64_t, bool)> fn;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = pending.find(id);
    if (it == pending.end() || instance >= it->second.acked.size()) return;
    it->second.acked[instance] = true;
    it->second.bytes += bytes;
    if (!try_complete(id, final)) return;
    if (store) store->complete(id, core::processing_time::now().ns / 1'000'000);
    committed.store(id);
    checkpoints_done.fetch_add(1);
    fn = on_complete;
  }
  if (fn) fn(id, final);
}

void job_state::instance_ended(std::uint32_t instance, std::string blob) {
  std::vector<std::pair<std::uint64_t, bool>> done;
  std::function<void(std::uint64_t, bool)> fn;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (instance >= ended.size() || ended[instance]) return;
    ended[instance] = true;
    const std::string key = std::to_string(wiring[instance].chain) + "-" + std::to_string(wiring[instance].instance);
    std::vector<std::uint64_t> ids;
    for (const auto& [id, p] : pending) ids.push_back(id);
    for (auto id : ids) {
      // A checkpoint it did not take part in carries its state at the end.
      if (store && !pending[id].acked[instance]) store->put(id, key, blob);
      bool final = false;
      if (!try_complete(id, final)) continue;
      if (store) store->complete(id, core::processing_time::now().ns / 1'000'000);
      committed.store(id);
      checkpoints_done.fetch_add(1);
      done.emplace_back(id, final);
    }
    final_blobs[instance] = std::move(blob);
    if (store && store->durable() && !failed && !restarting &&
        std::all_of(ended.begin(), ended.end(), [](bool e) { return e; })) {
      // Everything ended: one last checkpoint of every instance's end state.
      const std::uint64_t id = next_checkpoint++;
      store->put(id, "topology", topology_text());
      for (const auto& [i, b] : final_blobs)
        store->put(id, std::to_string(wiring[i].chain) + "-" + std::to_string(wiring[i].instance), b);
      store->complete(id, core::processing_time::now().ns / 1'000'000);
      committed.store(id);
      checkpoints_done.fetch_add(1);
    }
    fn = on_complete;
  }
  if (fn)
    for (auto [id, final] : done) fn(id, final);
}

std::vector<std::uint64_t> job_state::abandon_checkpoints(std::int64_t older_than_ns) {
  std::vector<std::uint64_t> ids;
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = pending.begin(); it != pending.end();) {
    if (it->second.started_ns <= older_than_ns) {
      ids.push_back(it->first);
      if (store) store->abandon(it->first);
      checkpoints_abandoned.fetch_add(1);
      it = pending.erase(it);
    } else {
      ++it;
    }
  }
  return ids;
}

void job_state::sample_dead_letters(const std::string& component, const core::batch& b) {
  if (opts.dead_letter_samples == 0 || b.size() == 0) return;
  const auto& schema = *core::dead_letter_schema();
  const std::int64_t now = core::processing_time::now().ns;
  // Only the newest rows of the batch can stay.
  const std::size_t first = b.size() > opts.dead_letter_samples ? b.size() - opts.dead_letter_samples : 0;
  std::vector<dead_letter_sample> fresh;
  for (std::size_t r = first; r < b.size(); ++r) {
    dead_letter_sample d;
    d.at_ns = now;
    d.component = component;
    d.json = "{";
    const core::value* row = b.row(r);
    for (std::size_t c = 0; c < schema.size() && c < b.width; ++c) {
      if (c > 0) d.json += ',';
      core::append_json_string(d.json, schema[c].name);
      d.json += ':';
      core::append_json(d.json, row[c]);
    }
    d.json += '}';
    fresh.push_back(std::move(d));
  }
  std::lock_guard<std::mutex> lock(log_mu);
  for (auto& d : fresh) dead_samples.push_back(std::move(d));
  while (dead_samples.size() > opts.dead_letter_samples) dead_samples.pop_front();
}

void job_state::publish_splits(std::uint32_t id, std::vector<split_status> s) {
  std::lock_guard<std::mutex> lock(split_mu);
  split_status_of[id] = std::move(s);
}

void job_state::tap_rows(int node, std::uint32_t bit, const core::batch& b, const core::schema& schema) {
  // Under the lock throughout, so that `job::untap` returning means no call is running;
  // taps are a debugging aid and rare.
  std::lock_guard<std::mutex> lock(tap_mu);
  const std::int64_t now = core::steady_ns();
  for (auto& t : taps) {
    if (t.node != node || t.port_bit != bit || b.size() == 0) continue;
    // A token bucket holding at most one second of rows.
    t.tokens = std::min(std::max(1.0, t.rate), t.tokens + t.rate * static_cast<double>(now - t.refilled_ns) / 1e9);
    t.refilled_ns = now;
    const auto n = std::min<std::size_t>(b.size(), static_cast<std::size_t>(t.tokens));
    if (n == 0) continue;
    t.tokens -= static_cast<double>(n);
    // The rows are spread over the batch, not only its head.
    const std::size_t step = b.size() / n;
    for (std::size_t k = 0; k < n; ++k) {
      const core::value* row = b.row(k * step);
      std::string line = "{";
      for (std::size_t c = 0; c < schema.size() && c < b.width; ++c) {
        if (c > 0) line += ',';
        core::append_json_string(line, schema[c].name);
        line += ':';
        core::append_json(line, row[c]);
      }
      line += '}';
      t.fn(line);
    }
  }
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
