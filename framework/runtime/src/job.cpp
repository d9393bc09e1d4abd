#include "pel/runtime/job.hpp"

#include "chain.hpp"
#include "shared.hpp"

#include "pel/scaling/policy.hpp"
#include "pel/supervision/policy.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <random>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(pel::core::batch)

namespace pel::runtime {

namespace {

using start_atom = caf::atom_constant<caf::atom("start")>;
using batch_atom = caf::atom_constant<caf::atom("batch")>;
using ctrl_atom = caf::atom_constant<caf::atom("ctrl")>;
using credit_atom = caf::atom_constant<caf::atom("credit")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using poll_atom = caf::atom_constant<caf::atom("poll")>;
using timer_atom = caf::atom_constant<caf::atom("timer")>;
using barrier_atom = caf::atom_constant<caf::atom("barrier")>;
using commit_atom = caf::atom_constant<caf::atom("commit")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using halt_atom = caf::atom_constant<caf::atom("halt")>;
using chaos_atom = caf::atom_constant<caf::atom("chaos")>;
using failed_atom = caf::atom_constant<caf::atom("failed")>;
using respawn_atom = caf::atom_constant<caf::atom("respawn")>;
using watch_atom = caf::atom_constant<caf::atom("watch")>;
using halted_atom = caf::atom_constant<caf::atom("halted")>;
using killall_atom = caf::atom_constant<caf::atom("killall")>;
using final_atom = caf::atom_constant<caf::atom("final")>;
using finaltmo_atom = caf::atom_constant<caf::atom("finaltmo")>;
using rescale_atom = caf::atom_constant<caf::atom("rescale")>;
using rstate_atom = caf::atom_constant<caf::atom("rstate")>;
using rdone_atom = caf::atom_constant<caf::atom("rdone")>;
using rtmo_atom = caf::atom_constant<caf::atom("rtmo")>;
using scale_atom = caf::atom_constant<caf::atom("scale")>;
using rnext_atom = caf::atom_constant<caf::atom("rnext")>;

using peer_list = std::vector<caf::actor>;

/// Where an instance actor finds the current actor list after a rescale added instances.
struct peer_box {
  std::mutex* mu = nullptr;
  std::shared_ptr<peer_list>* list = nullptr;
};

/// One instance of a fused chain. The actor only translates messages into calls on its
/// `chain_instance` and reports an exception to the job's supervisor (`job_state::on_failure`),
/// then ends.
class chain_actor : public caf::event_based_actor, public transport {
public:
  chain_actor(caf::actor_config& cfg, job_state* js, std::uint32_t id, std::uint32_t generation,
              std::shared_ptr<const peer_list> peers, peer_box box)
    : caf::event_based_actor(cfg), js_(js), id_(id), generation_(generation), peers_(std::move(peers)),
      box_(box), chain_(std::make_unique<chain_instance>(*js, id, *this)) {}

  caf::behavior make_behavior() override {
    set_exception_handler([this](caf::scheduled_actor*, std::exception_ptr& ep) -> caf::error {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        report(e.what());
      } catch (...) {
        report("unknown exception");
      }
      return caf::sec::runtime_error;
    });
    return {
        [this](start_atom) { guard([&] { chain_->start(); }); },
        [this](batch_atom, std::uint32_t slot, core::batch& b) {
          data_ = true;
          guard([&] { chain_->on_batch(slot, std::move(b)); });
          data_ = false;
        },
        [this](ctrl_atom, std::uint32_t slot, std::uint8_t k, std::int64_t v) {
          guard([&] { chain_->on_control(slot, static_cast<control_kind>(k), v); });
        },
        [this](credit_atom, std::uint32_t target, std::uint32_t n, core::batch& spare) {
          guard([&] { chain_->on_credit(target, n, std::move(spare)); });
        },
        [this](tick_atom) { guard([&] { chain_->on_tick(); }); },
        [this](poll_atom) {
          data_ = true;
          guard([&] { chain_->on_poll(); });
          data_ = false;
        },
        [this](timer_atom, std::int32_t pos) { guard([&] { chain_->on_timer(pos); }); },
        [this](barrier_atom, std::uint64_t id, bool final) { guard([&] { chain_->on_barrier(id, final); }); },
        [this](commit_atom, std::uint64_t id) { guard([&] { chain_->on_commit(id); }); },
        [this](stop_atom) { guard([&] { chain_->on_stop(); }); },
        [this](halt_atom) { guard([&] { chain_->on_halt(); }); },
        [this](chaos_atom, std::int32_t point) { if (chain_) chain_->arm_chaos(point); },
        [this](rescale_atom, std::uint64_t rid) { guard([&] { chain_->on_rescale(rid); }); },
        [this](rstate_atom, std::uint64_t rid) { guard([&] { chain_->on_rescale_state(rid); }); },
    };
  }

  void on_exit() override {
    // Components are destroyed in the actor's context, not when the last handle goes.
    try {
      chain_.reset();
    } catch (...) {
    }
    peers_.reset();  // the list holds this actor too: a cycle that would keep it alive
  }

  // -- transport ---------------------------------------------------------------------------
  void send_batch(std::uint32_t target, core::batch&& b) override {
    const auto& tw = chain_->wiring().targets[target];
    send((*peers_)[tw.receiver], batch_atom::value, tw.receiver_slot, std::move(b));
  }
  void send_control(std::uint32_t target, control_kind k, std::int64_t v) override {
    const auto& tw = chain_->wiring().targets[target];
    send((*peers_)[tw.receiver], ctrl_atom::value, tw.receiver_slot, static_cast<std::uint8_t>(k), v);
  }
  void send_credit(std::uint32_t slot, std::uint32_t n, core::batch&& spare) override {
    const auto& sw = chain_->wiring().slots[slot];
    send((*peers_)[sw.sender], credit_atom::value, sw.sender_target, n, std::move(spare));
  }
  void refresh_peers() override {
    std::lock_guard<std::mutex> lock(*box_.mu);
    peers_ = *box_.list;
  }
  void schedule_tick(std::int64_t ns) override {
    delayed_send(this, std::chrono::nanoseconds(ns), tick_atom::value);
  }
  void schedule_poll(std::int64_t ns) override {
    if (ns <= 0) send(this, poll_atom::value);
    else delayed_send(this, std::chrono::nanoseconds(ns), poll_atom::value);
  }
  void schedule_timer(int pos, std::int64_t ns) override {
    delayed_send(this, std::chrono::nanoseconds(ns), timer_atom::value, static_cast<std::int32_t>(pos));
  }
  void finished() override { quit(); }

private:
  template <class F>
  void guard(F&& f) {
    if (failed_ || !chain_) return;
    try {
      f();
    } catch (const std::exception& e) {
      report(e.what());
      quit(caf::sec::runtime_error);
    } catch (...) {
      report("unknown exception");
      quit(caf::sec::runtime_error);
    }
  }

  void report(const std::string& what) {
    failed_ = true;
    const std::string component = chain_ ? chain_->current_component() : std::string("runtime");
    if (js_->on_failure) js_->on_failure(id_, generation_, component, what, data_);
    else js_->fail(component, what);
  }

  job_state* js_;
  std::uint32_t id_;
  std::uint32_t generation_;
  std::shared_ptr<const peer_list> peers_;
  peer_box box_;
  std::unique_ptr<chain_instance> chain_;
  bool failed_ = false;
  bool data_ = false;  ///< handling a batch or a poll (a record may be what failed)
};

/// How a scheduler thread waits once it runs out of work (`options::idle_sleep`). CAF's
/// defaults poll the queues for about 25 ms after every job (500 more attempts, 50 us apart)
/// before sleeping: a job woken a few dozen times a second by its ticks never sleeps and
/// burns 10-20 % of a core. Here a thread makes the aggressive attempts (a few microseconds,
/// stealing from the other threads every 10th), skips the moderate phase and sleeps on its
/// condition variable. A message from outside the scheduler's threads (the timer thread, a
/// detached actor) wakes it at once; work another scheduler thread queued for itself is
/// stolen when the relaxed sleep times out. The aggressive and relaxed values are CAF's own,
/// set here so that they stay what the benchmarks measured.
void set_idle_polling(caf::actor_system_config& cfg) {
  cfg.set("work-stealing.aggressive-poll-attempts", std::size_t{100});
  cfg.set("work-stealing.aggressive-steal-interval", std::size_t{10});
  cfg.set("work-stealing.moderate-poll-attempts", std::size_t{0});
  cfg.set("work-stealing.relaxed-steal-interval", std::size_t{1});
  cfg.set("work-stealing.relaxed-sleep-duration", caf::timespan{std::chrono::milliseconds(10)});
}

/// The components of a chain, joined by '+'.
std::string chain_name(const plan::physical_plan& p, std::size_t c) {
  std::string names;
  for (int n : p.chains[c].nodes) {
    if (!names.empty()) names += '+';
    names += p.nodes[static_cast<std::size_t>(n)].name;
  }
  return names;
}

/// A text for the log: "component[instance]".
std::string instance_name(const job_state& js, std::uint32_t id) {
  const auto& w = js.wiring[id];
  return chain_name(js.plan, static_cast<std::size_t>(w.chain)) + "[" + std::to_string(w.instance) + "]";
}

std::string bytes_text(std::uint64_t b) {
  char buf[32];
  if (b >= 1'000'000) std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(b) / 1e6);
  else if (b >= 1'000) std::snprintf(buf, sizeof buf, "%.1f kB", static_cast<double>(b) / 1e3);
  else std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(b));
  return buf;
}

std::string seconds_text(std::int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g s", static_cast<double>(ns) / 1e9);
  return buf;
}

} // namespace

// -- job -----------------------------------------------------------------------------------

const component_stats* result::find(const std::string& name) const {
  for (const auto& c : components)
    if (c.name == name) return &c;
  return nullptr;
}

struct job::impl {
  std::unique_ptr<job_state> js;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::mutex amu;                      ///< guards `actors` and `alive`
  std::shared_ptr<peer_list> actors;   ///< the current instance actors, by global id
  std::vector<std::shared_ptr<std::atomic<bool>>> alive;  ///< by global id, of that actor
  /// The current instances of the source chains (a rescale of a source changes them).
  std::vector<std::uint32_t> source_actors() const {
    std::vector<std::uint32_t> out;
    std::lock_guard<std::mutex> lock(js->mu);
    for (std::size_t c = 0; c < js->plan.chains.size(); ++c)
      if (js->plan.nodes[static_cast<std::size_t>(js->plan.chains[c].nodes.front())].kind ==
          spec::component_kind::source)
        for (auto id : js->chain_ids[c]) out.push_back(id);
    return out;
  }
  std::vector<int> region_of;          ///< by chain: connected part of the graph
  caf::actor supervisor;
  bool started = false;
  bool durable = false;                ///< checkpoints go to a state directory
  std::uint64_t restored_from = 0;

  // Supervision (supervisor actor only).
  std::unique_ptr<supervision::policy> sup;  ///< the pipeline's supervisor: chains in start order
  std::int64_t started_ns = 0;
  std::vector<std::uint32_t> generation;  ///< by global id: bumped when an instance is replaced
  /// Monitored instance actors (supervisor only): global id and generation.
  std::map<caf::actor_addr, std::pair<std::uint32_t, std::uint32_t>> watched;
  std::vector<std::deque<std::int64_t>> failures;  ///< by global id: when it failed, within `period`
  std::mt19937_64 rng;
  std::uint64_t chaos_injected = 0;  ///< injected failures that happened (an armed point may never come)
  bool stopping = false;
  std::vector<std::string> restart_log;  ///< under js->mu
  std::atomic<bool> stop_asked{false};   ///< `job::stop` was called (for `status`)

  // Autoscaling (supervisor actor only, but `events` under `emu`).
  std::unique_ptr<scaling::policy> scaler;
  std::int64_t scale_interval_ns = 0;
  struct totals {
    double in = 0, out = 0, busy = 0, bp = 0;
  };
  std::vector<totals> last_totals;  ///< by chain, at the previous sample
  std::int64_t last_sample_ns = 0;
  std::deque<std::size_t> queued;   ///< indices into `events` waiting to be carried out
  std::size_t running = SIZE_MAX;   ///< the event being carried out
  mutable std::mutex emu;
  std::vector<scaling_event> events;
  std::vector<int> event_chain;        ///< by event: the chain it rescales (under `emu`)
  std::vector<std::uint32_t> max_par;  ///< by chain

  scaling::sample take_sample(std::int64_t now);
  void decide(caf::event_based_actor* self, std::int64_t now);
  void next_rescale(caf::event_based_actor* self);
  bool begin_rescale(caf::event_based_actor* self, std::size_t ev);
  void rescale_handed(std::uint64_t rid);
  void rescale_done(caf::event_based_actor* self, std::uint64_t rid);
  /// Ends the running rescale without carrying it out (`why` for the log and the event).
  void abandon_rescale(const std::string& why);

  std::shared_ptr<peer_list> current() {
    std::lock_guard<std::mutex> lock(amu);
    return actors;
  }

  void kill_all() {
    auto a = current();
    if (!a) return;
    for (auto& x : *a)
      if (x) caf::anon_send_exit(x, caf::exit_reason::kill);
  }

  /// Spawns the instances `ids` into a new actor list (the others stay), then starts them.
  void spawn(const std::vector<std::uint32_t>& ids) {
    job_state& j = *js;
    auto list = std::make_shared<peer_list>();
    {
      std::lock_guard<std::mutex> lock(amu);
      if (actors) *list = *actors;
      if (list->size() < j.wiring.size()) list->resize(j.wiring.size());
    }
    {
      std::lock_guard<std::mutex> lock(j.mu);
      j.live += ids.size();
    }
    std::vector<std::shared_ptr<std::atomic<bool>>> flags;
    for (auto id : ids) {
      const auto& ch = j.plan.chains[static_cast<std::size_t>(j.wiring[id].chain)];
      const auto& head = j.plan.nodes[static_cast<std::size_t>(ch.nodes.front())];
      // A blocking source (stdin) gets a thread of its own.
      const bool blocking = head.kind == spec::component_kind::source && head.blocking;
      std::shared_ptr<const peer_list> peers = list;
      if (generation.size() < j.wiring.size()) generation.resize(j.wiring.size(), 0);
      const std::uint32_t gen = generation[id];
      peer_box box{&amu, &actors};
      caf::actor a = blocking ? sys->spawn<chain_actor, caf::detached>(&j, id, gen, peers, box)
                              : sys->spawn<chain_actor>(&j, id, gen, peers, box);
      auto flag = std::make_shared<std::atomic<bool>>(true);
      job_state* jp = &j;
      a->attach_functor([jp, flag] {
        flag->store(false);
        jp->actor_done();
      });
      (*list)[id] = std::move(a);
      flags.push_back(std::move(flag));
    }
    {
      std::lock_guard<std::mutex> lock(amu);
      actors = list;
      if (alive.size() < j.wiring.size()) alive.resize(j.wiring.size());
      for (std::size_t k = 0; k < ids.size(); ++k) alive[ids[k]] = flags[k];
    }
    // Downstream first, so every actor has its start message before any data reaches it.
    for (auto it = ids.rbegin(); it != ids.rend(); ++it) caf::anon_send((*list)[*it], start_atom::value);
  }

  /// The generation of each of `ids` now (when they were spawned, if called right after).
  std::vector<std::uint32_t> generations_of(const std::vector<std::uint32_t>& ids) const {
    std::vector<std::uint32_t> gens;
    gens.reserve(ids.size());
    for (auto id : ids) gens.push_back(id < generation.size() ? generation[id] : 0);
    return gens;
  }

  /// Monitors the instances `ids` spawned at generations `gens`. One replaced since (a failure
  /// handled between its spawn and this call) is skipped: the actor in the list is still the
  /// old, killed one, and watching it under the new generation would take its end for a
  /// failure of the new instance.
  void watch(caf::event_based_actor* self, const std::vector<std::uint32_t>& ids,
             const std::vector<std::uint32_t>& gens) {
    auto list = current();
    for (std::size_t k = 0; k < ids.size() && k < gens.size(); ++k) {
      const auto id = ids[k];
      if (id >= generation.size() || gens[k] != generation[id]) continue;
      if (const auto& a = (*list)[id]) {
        watched[a.address()] = {id, gens[k]};
        self->monitor(a);
      }
    }
  }

  /// Every chain of the same connected parts of the graph as `chains`, in order.
  std::vector<std::size_t> widen(const std::vector<std::size_t>& chains) const {
    std::vector<bool> region(region_of.size() + 1, false);
    for (auto c : chains) region[static_cast<std::size_t>(region_of[c])] = true;
    std::vector<std::size_t> out;
    for (std::size_t c = 0; c < region_of.size(); ++c)
      if (region[static_cast<std::size_t>(region_of[c])]) out.push_back(c);
    return out;
  }

  const spec::supervision_spec& supervision_of(const std::string& component) const {
    for (const auto& n : js->plan.nodes)
      if (n.name == component) return n.spec.supervision;
    return js->plan.settings.supervision;
  }

  /// Checkpoint `id` is complete: every instance commits; a final one halts them all.
  void on_complete(std::uint64_t id, bool final) {
    if (final) js->stopped_at.store(id);
    auto list = current();
    for (auto& a : *list)
      if (a) caf::anon_send(a, commit_atom::value, id);
    if (final) {
      for (auto& a : *list)
        if (a) caf::anon_send(a, halt_atom::value);
      caf::anon_send(supervisor, halted_atom::value);
    }
  }


  /// Per component, over every instance it ever had (call with `js->mu` held).
  std::vector<component_stats> component_totals() const {
    const job_state& js = *this->js;
    std::vector<component_stats> out;
  for (std::size_t ni = 0; ni < js.plan.nodes.size(); ++ni) {
    const auto& node = js.plan.nodes[ni];
    component_stats c;
    c.name = node.name;
    const auto ch = static_cast<std::size_t>(node.chain);
    c.parallelism = js.parallelism[ch];
    c.max_parallelism = ch < max_par.size() ? max_par[ch] : c.parallelism;
    // Every instance it ever had (a rescale retires instances; their counts stay).
    for (std::uint32_t id = 0; id < js.wiring.size(); ++id) {
      if (static_cast<std::size_t>(js.wiring[id].chain) != ch) continue;
      const auto& m = *js.node_metrics[id][static_cast<std::size_t>(node.chain_position)];
      c.rows_in += m.rows_in.load();
      c.rows_out += m.rows_out.load();
      c.dead_letters += m.dead.load();
      c.late += m.late.load();
      c.lost += m.lost.load();
      c.max_split_lead_ns = std::max(c.max_split_lead_ns, m.max_split_lead_ns.load());
      const auto& cm = *js.chain_metrics[id];
      c.busy_ns += cm.busy_ns.load();
      c.backpressure_ns += cm.backpressure_ns.load();
    }
    out.push_back(std::move(c));
  }
    return out;
  }

  /// The counters of current instance `i` (global id `id`) of `node` (call with `js->mu` held).
  instance_metrics instance_of(const plan::node& node, std::uint32_t i, std::uint32_t id) const {
    const job_state& js = *this->js;
    const auto& m = *js.node_metrics[id][static_cast<std::size_t>(node.chain_position)];
    const auto& cm = *js.chain_metrics[id];
    instance_metrics x;
    x.component = node.name;
    x.instance = i;
    x.chain = node.chain;
    x.global_id = id;
    x.rows_in = m.rows_in.load();
    x.rows_out = m.rows_out.load();
    x.dead_letters = m.dead.load();
    x.late = m.late.load();
    x.lost = m.lost.load();
    x.max_split_lead_ns = m.max_split_lead_ns.load();
    x.batches_in = cm.batches_in.load();
    x.batches_out = cm.batches_out.load();
    x.busy_ns = cm.busy_ns.load();
    x.backpressure_ns = cm.backpressure_ns.load();
    x.queued_batches = cm.queued.load();
    x.max_queued_batches = cm.max_queued.load();
    x.max_outbound_batches = cm.max_outbound.load();
    const core::sink_buffer_gauges& g = m.buffer;
    if (g.present.load(std::memory_order_relaxed)) {
      buffer_metrics& b = x.buffer;
      b.present = true;
      b.forwarding = g.forwarding.load(std::memory_order_relaxed);
      b.appended = g.appended.load(std::memory_order_relaxed);
      b.forwarded = g.forwarded.load(std::memory_order_relaxed);
      b.dropped = g.dropped.load(std::memory_order_relaxed);
      b.full_events = g.full_events.load(std::memory_order_relaxed);
      b.failures = g.failures.load(std::memory_order_relaxed);
      b.pending = g.pending.load(std::memory_order_relaxed);
      b.bytes_on_disk = g.bytes_on_disk.load(std::memory_order_relaxed);
      b.max_size = g.max_size.load(std::memory_order_relaxed);
    }
    return x;
  }

  caf::behavior supervise(caf::event_based_actor* self);
  void on_failed(caf::event_based_actor* self, std::uint32_t id, std::uint32_t gen, const std::string& component,
                 const std::string& what, bool data);
};

caf::behavior job::impl::supervise(caf::event_based_actor* self) {
  job_state& j = *js;
  const std::int64_t interval = j.plan.settings.checkpoint_interval_ns;
  if (interval > 0) self->delayed_send(self, std::chrono::nanoseconds(interval), tick_atom::value);
  // Every instance actor is monitored: one that ends without having reported an exception
  // (killed from outside, an error inside CAF) is a failure too, never a silent hang.
  self->set_down_handler([=](caf::down_msg& m) {
    auto it = watched.find(m.source);
    if (it == watched.end()) return;
    const auto [id, gen] = it->second;
    watched.erase(it);
    if (m.reason == caf::exit_reason::normal || m.reason == caf::sec::runtime_error) return;  // ended, or reported
    if (id >= generation.size() || gen != generation[id]) return;  // replaced on purpose
    {
      std::lock_guard<std::mutex> lock(js->mu);
      ++js->failures_pending;
    }
    self->send(self, failed_atom::value, id, gen, std::string("runtime"),
               "instance ended unexpectedly: " + caf::to_string(m.reason), false);
  });
  if (scaler) {
    last_sample_ns = core::steady_ns();
    self->delayed_send(self, std::chrono::nanoseconds(scale_interval_ns), scale_atom::value);
  }
  if (j.opts.chaos.rate > 0) {
    std::exponential_distribution<double> d(j.opts.chaos.rate);
    self->delayed_send(self, std::chrono::nanoseconds(static_cast<std::int64_t>(d(rng) * 1e9)), chaos_atom::value);
  }
  return {
      [=](scale_atom) {
        const std::int64_t now = core::steady_ns();
        if (!stopping) decide(self, now);
        self->delayed_send(self, std::chrono::nanoseconds(scale_interval_ns), scale_atom::value);
      },
      [=](rnext_atom) { next_rescale(self); },
      [=](rdone_atom, std::int32_t what, std::uint64_t rid) {
        if (what == 0) rescale_handed(rid);
        else rescale_done(self, rid);
      },
      [=](rtmo_atom, std::uint64_t rid) {
        std::uint32_t victim = 0;
        {
          std::lock_guard<std::mutex> lock(js->mu);
          if (js->rescale.id != rid || js->rescale.new_ids.empty()) return;
          victim = js->rescale.new_ids.front();
          ++js->failures_pending;
        }
        // Recovery takes over: the region restarts from the latest checkpoint.
        self->send(self, failed_atom::value, victim, generation[victim], std::string("runtime"),
                   "rescale " + std::to_string(rid) + " did not complete within " +
                       seconds_text(js->plan.settings.checkpoints.timeout_ns),
                   false);
      },
      [=](halted_atom) {
        // Every instance was told to halt; one that does not within the shutdown timeout (a
        // source blocked in a read) is killed: a stop never hangs.
        self->delayed_send(self, std::chrono::nanoseconds(js->plan.settings.supervision.shutdown_timeout_ns),
                           killall_atom::value);
      },
      [=](killall_atom) {
        bool over = false;
        {
          std::lock_guard<std::mutex> lock(js->mu);
          over = js->live == 0;
        }
        if (over) return;
        js->log(1, "instances still running " + seconds_text(js->plan.settings.supervision.shutdown_timeout_ns) +
                       " after the stop: killed");
        auto list = current();
        for (auto& a : *list)
          if (a) caf::anon_send_exit(a, caf::exit_reason::kill);
      },
      [=](watch_atom, const std::vector<std::uint32_t>& ids, const std::vector<std::uint32_t>& gens) {
        watch(self, ids, gens);
      },
      [=](tick_atom) {
        const std::int64_t now = core::steady_ns();
        for (auto id : js->abandon_checkpoints(now - js->plan.settings.checkpoints.timeout_ns))
          js->log(1, "checkpoint " + std::to_string(id) + " did not complete within " +
                         seconds_text(js->plan.settings.checkpoints.timeout_ns) + " and is abandoned");
        bool restarting = false;
        {
          std::lock_guard<std::mutex> lock(js->mu);
          restarting = js->restarting;
        }
        // Not while instances are being replaced: the barrier would reach the old ones.
        if (!stopping && !restarting) {
          if (std::uint64_t id = js->begin_checkpoint(false, now)) {
            auto list = current();
            for (auto s : source_actors())
              if ((*list)[s]) caf::anon_send((*list)[s], barrier_atom::value, id, false);
          }
        }
        self->delayed_send(self, std::chrono::nanoseconds(interval), tick_atom::value);
      },
      [=](final_atom) {
        if (stopping) return;
        {
          std::lock_guard<std::mutex> lock(js->mu);
          if (js->restarting || js->rescale.id != 0) {
            // Instances are being replaced (a restart or a rescale): the barrier must reach
            // the new ones.
            self->delayed_send(self, std::chrono::milliseconds(20), final_atom::value);
            return;
          }
        }
        stopping = true;
        const std::uint64_t id = js->begin_checkpoint(true, core::steady_ns());
        js->log(0, "stopping with a final checkpoint (" + std::to_string(id) + ")");
        auto list = current();
        for (auto& a : *list)
          if (a) caf::anon_send(a, chaos_atom::value, std::int32_t{-1});  // no more injected failures
        for (auto s : source_actors())
          if ((*list)[s]) caf::anon_send((*list)[s], barrier_atom::value, id, true);
        self->delayed_send(self, std::chrono::nanoseconds(js->plan.settings.supervision.shutdown_timeout_ns),
                           finaltmo_atom::value, id);
      },
      [=](finaltmo_atom, std::uint64_t id) {
        if (js->committed.load() >= id) return;
        // Stop at the latest complete checkpoint instead: the next run replays what came after.
        js->log(1, "the final checkpoint " + std::to_string(id) + " did not complete within " +
                       seconds_text(js->plan.settings.supervision.shutdown_timeout_ns) +
                       ": stopping at checkpoint " + std::to_string(js->committed.load()));
        js->stopped_at.store(js->committed.load());
        auto list = current();
        for (auto& a : *list)
          if (a) caf::anon_send(a, halt_atom::value);
        self->send(self, halted_atom::value);
      },
      [=](failed_atom, std::uint32_t id, std::uint32_t gen, const std::string& component, const std::string& what,
          bool data) {
        on_failed(self, id, gen, component, what, data);
        std::lock_guard<std::mutex> lock(js->mu);
        if (js->failures_pending > 0) --js->failures_pending;
        if (js->over()) js->cv.notify_all();
      },
      [=](respawn_atom, std::vector<std::uint32_t>& ids, std::int32_t waited) {
        // The old instances must be gone first (their consumers closed, their files released).
        std::vector<std::shared_ptr<std::atomic<bool>>> old;
        {
          std::lock_guard<std::mutex> lock(amu);
          for (auto id : ids)
            if (id < alive.size() && alive[id]) old.push_back(alive[id]);
        }
        const bool gone = std::none_of(old.begin(), old.end(), [](const auto& f) { return f->load(); });
        if (!gone && waited < 500) {
          self->delayed_send(self, std::chrono::milliseconds(10), respawn_atom::value, std::move(ids), waited + 1);
          return;
        }
        std::uint64_t from = 0;
        js->abandon_checkpoints(INT64_MAX);
        {
          std::lock_guard<std::mutex> lock(js->mu);
          from = js->store ? js->store->latest() : 0;
          js->restore_id = from;
          for (auto id : ids) js->ended[id] = false;
        }
        js->log(0, "restarting " + std::to_string(ids.size()) + " instance(s) from checkpoint " +
                       (from ? std::to_string(from) : std::string("none (sources start over)")));
        spawn(ids);
        watch(self, ids, generations_of(ids));
        std::lock_guard<std::mutex> lock(js->mu);
        js->restarting = false;
        if (js->over()) js->cv.notify_all();
      },
      [=](chaos_atom) {
        const auto& c = js->opts.chaos;
        if (stopping || (c.max > 0 && chaos_injected >= c.max)) return;
        auto list = current();
        bool restarting = false;
        {
          std::lock_guard<std::mutex> lock(js->mu);
          restarting = js->restarting || js->failed;
        }
        if (!restarting) {
          std::vector<std::uint32_t> candidates;
          for (std::uint32_t id = 0; id < list->size(); ++id)
            if (!js->ended[id]) candidates.push_back(id);
          if (!candidates.empty()) {
            const auto id = candidates[rng() % candidates.size()];
            // Sources fail at a poll or a snapshot; the others also at a watermark.
            const auto point = static_cast<std::int32_t>(rng() % 3);
            if ((*list)[id]) caf::anon_send((*list)[id], chaos_atom::value, point);  // counted when it fires
          }
        }
        std::exponential_distribution<double> d(c.rate);
        self->delayed_send(self, std::chrono::nanoseconds(1'000'000 + static_cast<std::int64_t>(d(rng) * 1e9)),
                           chaos_atom::value);
      },
  };
}

void job::impl::on_failed(caf::event_based_actor* self, std::uint32_t id, std::uint32_t gen,
                          const std::string& component, const std::string& what, bool data) {
  job_state& j = *js;
  if (id < generation.size() && gen != generation[id]) return;  // an instance already replaced
  {
    std::lock_guard<std::mutex> lock(j.mu);
    if (j.failed) return;
    if (j.restarting) {
      // Another part of the graph is being restarted: take this one after it.
      ++j.failures_pending;
      self->delayed_send(self, std::chrono::milliseconds(20), failed_atom::value, id, gen, component, what, data);
      return;
    }
  }
  const std::int64_t now = core::steady_ns();
  const std::string who = instance_name(j, id);
  if (what.rfind("chaos: ", 0) == 0) ++chaos_injected;
  const std::string line = who + ": " + what;
  if (stopping) {
    // The final checkpoint cannot complete now; the latest complete one is where the next run
    // resumes, and everything after it is replayed then: stop there.
    j.log(1, "instance " + line + " while stopping: stopping at the latest complete checkpoint " +
                 std::to_string(j.committed.load()) + " instead");
    j.stopped_at.store(j.committed.load());
    auto list = current();
    for (auto& a : *list)
      if (a) caf::anon_send(a, halt_atom::value);
    self->send(self, halted_atom::value);
    return;
  }
  if (j.plan.settings.checkpoint_interval_ns <= 0) {
    j.fail(component, what + " (checkpoints are off: nothing to restart from)");
    return;
  }
  // The pipeline's supervisor: its children are the chains, in start order.
  const auto chain = static_cast<std::size_t>(j.wiring[id].chain);
  // Times in the supervisor's messages count from the start of the job.
  supervision::decision d = sup->on_exit(chain, supervision::exit_kind::failure, now - started_ns, line);
  if (d.what == supervision::action::escalate) {
    j.fail(component, what + "\n" + d.text());
    return;
  }
  // A temporary chain is not restarted; what it exchanged data with cannot go on without it.
  bool lost = d.what == supervision::action::leave;
  for (auto c : d.stop)
    if (std::find(d.restart.begin(), d.restart.end(), c) == d.restart.end()) lost = true;
  if (lost) {
    j.fail(component, what + " (restart: temporary: not restarted, and the pipeline cannot go on without it)");
    return;
  }
  // Quarantine: an instance that failed `quarantine_after` times within `period` replays
  // record by record until the next checkpoint completes; a record that fails it then goes to
  // the dead-letter output instead of failing it again.
  const auto& sv = supervision_of(component);
  if (failures.size() < j.wiring.size()) failures.resize(j.wiring.size());
  auto& times = failures[id];
  times.push_back(now);
  while (!times.empty() && now - times.front() > sv.period_ns) times.pop_front();
  if (data && sv.quarantine_after > 0 && times.size() >= sv.quarantine_after) {
    j.careful[id].store(true);
    j.log(1, who + " failed " + std::to_string(times.size()) + " times within " + seconds_text(sv.period_ns) +
                 ": it replays record by record, and a record that fails it goes to the dead-letter output");
  }
  j.restarts.fetch_add(1);
  std::vector<std::uint32_t> set, retiring;
  {
    std::lock_guard<std::mutex> lock(j.mu);
    for (auto c : d.restart)
      for (auto i : j.chain_ids[c]) set.push_back(i);
    if (j.rescale.id != 0 &&
        std::find(d.restart.begin(), d.restart.end(), static_cast<std::size_t>(j.rescale.chain)) != d.restart.end())
      retiring = j.rescale.old_ids;
  }
  std::sort(set.begin(), set.end());
  // A rescale of the region is abandoned: its old instances go, its new ones restart from
  // the checkpoint with the rest (restoring the key groups they own from every old blob).
  if (!retiring.empty()) abandon_rescale("instance " + line);
  {
    std::lock_guard<std::mutex> lock(j.mu);
    j.restarting = true;
    restart_log.push_back(line);
  }
  j.abandon_checkpoints(INT64_MAX);
  j.log(1, "instance " + line + "; restarting " + std::to_string(set.size()) + " instance(s) in " +
               seconds_text(d.delay_ns) + " (restart " + std::to_string(j.restarts.load()) + ")");
  {
    auto list = current();
    for (auto i : set) {
      std::lock_guard<std::mutex> lock(j.mu);
      j.ended[i] = true;  // no checkpoint waits for the old instance
    }
    for (auto i : set) {
      ++generation[i];  // what the old instance still reports is stale
      if ((*list)[i]) caf::anon_send_exit((*list)[i], caf::exit_reason::kill);
    }
    for (auto i : retiring) {
      ++generation[i];
      if (i < list->size() && (*list)[i]) caf::anon_send_exit((*list)[i], caf::exit_reason::kill);
    }
  }
  self->delayed_send(self, std::chrono::nanoseconds(d.delay_ns), respawn_atom::value, std::move(set),
                     std::int32_t{0});
}

// -- autoscaling ---------------------------------------------------------------------------

scaling::sample job::impl::take_sample(std::int64_t now) {
  job_state& j = *js;
  scaling::sample smp;
  smp.at_ns = now;
  smp.interval_s = static_cast<double>(now - last_sample_ns) / 1e9;
  const std::size_t chains = j.plan.chains.size();
  // Counters only grow, and the retired instances' stay: sums over every id are cumulative.
  std::vector<totals> cur(chains);
  for (std::uint32_t id = 0; id < j.wiring.size(); ++id) {
    const auto c = static_cast<std::size_t>(j.wiring[id].chain);
    const auto& nodes = j.node_metrics[id];
    const bool source = j.plan.nodes[static_cast<std::size_t>(j.plan.chains[c].nodes.front())].kind ==
                        spec::component_kind::source;
    cur[c].in += static_cast<double>(source ? nodes.front()->rows_out.load() : nodes.front()->rows_in.load());
    cur[c].out += static_cast<double>(nodes.back()->rows_out.load());
    cur[c].busy += static_cast<double>(j.chain_metrics[id]->busy_ns.load()) / 1e9;
    cur[c].bp += static_cast<double>(j.chain_metrics[id]->backpressure_ns.load()) / 1e9;
  }
  if (last_totals.size() != chains) last_totals.assign(chains, totals{});
  for (std::size_t c = 0; c < chains; ++c) {
    const auto& ch = j.plan.chains[c];
    scaling::unit_sample u;
    u.unit = static_cast<int>(c);
    u.name = chain_name(j.plan, c);
    u.parallelism = j.parallelism[c];
    u.min = ch.parallelism_min;
    u.max = ch.parallelism_max;
    u.source = j.plan.nodes[static_cast<std::size_t>(ch.nodes.front())].kind == spec::component_kind::source;
    u.records_in = cur[c].in - last_totals[c].in;
    u.records_out = cur[c].out - last_totals[c].out;
    u.busy_s = cur[c].busy - last_totals[c].busy;
    u.backpressure_s = cur[c].bp - last_totals[c].bp;
    u.idle_s = std::max(0.0, smp.interval_s * u.parallelism - u.busy_s - u.backpressure_s);
    if (u.source) {
      double rate = 0, backlog = 0;
      bool rate_known = true, backlog_known = true;
      for (auto id : j.chain_ids[c]) {
        const double r = j.chain_metrics[id]->offered_rate.load(), b = j.chain_metrics[id]->backlog.load();
        if (r < 0) rate_known = false;
        else rate += r;
        if (b < 0) backlog_known = false;
        else backlog += b;
      }
      u.offered_rate = rate_known ? rate : -1;
      u.backlog = backlog_known ? backlog : -1;
    }
    smp.units.push_back(std::move(u));
  }
  last_totals = std::move(cur);
  last_sample_ns = now;
  for (const auto& e : j.plan.edges) {
    if (e.fused || e.port != plan::port_kind::main) continue;
    std::pair<int, int> ed{j.plan.nodes[static_cast<std::size_t>(e.from)].chain,
                           j.plan.nodes[static_cast<std::size_t>(e.to)].chain};
    if (std::find(smp.edges.begin(), smp.edges.end(), ed) == smp.edges.end()) smp.edges.push_back(ed);
  }
  return smp;
}

void job::impl::decide(caf::event_based_actor* self, std::int64_t now) {
  const auto smp = take_sample(now);
  for (auto& d : scaler->decide(smp)) {
    scaling_event ev;
    ev.at_ns = now - started_ns;
    ev.component = d.name;
    ev.from = d.from;
    ev.to = d.to;
    ev.reason = d.reason;
    ev.inputs = d.inputs;
    js->log(0, "scaling " + d.name + " from " + std::to_string(d.from) + " to " + std::to_string(d.to) +
                   " instances: " + d.reason + " [" + d.inputs + "]");
    std::lock_guard<std::mutex> lock(emu);
    events.push_back(std::move(ev));
    event_chain.push_back(d.unit);
    queued.push_back(events.size() - 1);
  }
  next_rescale(self);
}

void job::impl::next_rescale(caf::event_based_actor* self) {
  while (running == SIZE_MAX) {
    std::size_t ev = 0;
    {
      std::lock_guard<std::mutex> lock(emu);
      if (queued.empty()) return;
      ev = queued.front();
    }
    bool busy = false;
    {
      std::lock_guard<std::mutex> lock(js->mu);
      busy = js->restarting || js->failures_pending > 0 || !js->pending.empty();
    }
    if (stopping) return;
    if (busy) {
      // A checkpoint or a restart is running: the rescale follows it.
      self->delayed_send(self, std::chrono::milliseconds(10), rnext_atom::value);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(emu);
      queued.pop_front();
    }
    if (begin_rescale(self, ev)) return;
  }
}

bool job::impl::begin_rescale(caf::event_based_actor* self, std::size_t ev) {
  job_state& j = *js;
  std::string comp;
  std::uint32_t to = 0;
  int c = -1;
  {
    std::lock_guard<std::mutex> lock(emu);
    comp = events[ev].component;
    to = events[ev].to;
    c = event_chain[ev];
  }
  auto refuse = [&](const std::string& why) {
    j.log(1, "not rescaling " + comp + ": " + why);
    std::lock_guard<std::mutex> lock(emu);
    events[ev].outcome = why;
    return false;
  };
  if (c < 0 || static_cast<std::size_t>(c) >= j.plan.chains.size()) return refuse("no such chain");
  const auto cc = static_cast<std::size_t>(c);
  std::vector<std::uint32_t> old_ids, new_ids, ups;
  std::uint64_t rid = 0;
  {
    std::lock_guard<std::mutex> lock(j.mu);
    if (j.failed) return false;
    const std::uint32_t from = j.parallelism[cc];
    if (from == to) {
      std::lock_guard<std::mutex> elock(emu);
      events[ev].outcome = "already at " + std::to_string(to);
      return false;
    }
    // Every instance that takes part must be running: an ended input has nothing to switch.
    std::vector<std::size_t> involved{cc};
    for (const auto& e : j.plan.edges) {
      if (e.fused) continue;
      const auto a = static_cast<std::size_t>(j.plan.nodes[static_cast<std::size_t>(e.from)].chain);
      const auto b = static_cast<std::size_t>(j.plan.nodes[static_cast<std::size_t>(e.to)].chain);
      if (b == cc) involved.push_back(a);
      if (a == cc) involved.push_back(b);
    }
    for (auto x : involved)
      for (auto id : j.chain_ids[x])
        if (j.ended[id]) {
          std::lock_guard<std::mutex> elock(emu);
          events[ev].outcome = "not carried out: part of its input or output has ended";
          j.log(1, "not rescaling " + comp + ": part of its input or output has ended");
          return false;
        }
    rid = j.next_rescale++;
    old_ids = j.chain_ids[cc];
    new_ids = j.add_instances(c, to);
    for (std::size_t ei = 0; ei < j.plan.edges.size(); ++ei) {
      const auto& e = j.plan.edges[ei];
      if (e.fused) continue;
      const auto a = static_cast<std::size_t>(j.plan.nodes[static_cast<std::size_t>(e.from)].chain);
      const auto b = static_cast<std::size_t>(j.plan.nodes[static_cast<std::size_t>(e.to)].chain);
      if (b == cc) {
        // Upstream: its channels to the old instances retire, new ones go to the new.
        for (auto u : j.chain_ids[a]) {
          for (auto& t : j.wiring[u].targets)
            if (t.edge == static_cast<int>(ei)) t.retired = true;
          ups.push_back(u);
        }
        for (auto o : old_ids)
          for (auto& sl : j.wiring[o].slots)
            if (sl.edge == static_cast<int>(ei)) sl.retired = true;
        j.connect(static_cast<int>(ei), j.chain_ids[a], new_ids);
      }
      if (a == cc) {
        for (auto d : j.chain_ids[b])
          for (auto& sl : j.wiring[d].slots)
            if (sl.edge == static_cast<int>(ei)) sl.retired = true;
        for (auto o : old_ids)
          for (auto& t : j.wiring[o].targets)
            if (t.edge == static_cast<int>(ei)) t.retired = true;
        j.connect(static_cast<int>(ei), new_ids, j.chain_ids[b]);
      }
    }
    j.chain_ids[cc] = new_ids;
    j.parallelism[cc] = to;
    j.rescale_sets[rid] = {old_ids, new_ids};
    auto& r = j.rescale;
    r = job_state::rescale_state{};
    r.id = rid;
    r.chain = c;
    r.from = from;
    r.to = to;
    r.old_ids = old_ids;
    r.new_ids = new_ids;
    r.blobs.assign(old_ids.size(), std::string());
    r.handed.assign(old_ids.size(), false);
    r.started_ns = core::steady_ns();
  }
  std::sort(ups.begin(), ups.end());
  ups.erase(std::unique(ups.begin(), ups.end()), ups.end());
  running = ev;
  if (generation.size() < j.wiring.size()) generation.resize(j.wiring.size(), 0);
  if (max_par.size() == j.plan.chains.size()) max_par[cc] = std::max(max_par[cc], to);
  // The new instances first (they wait for the state), then the upstream switches.
  spawn(new_ids);
  watch(self, new_ids, generations_of(new_ids));
  auto list = current();
  for (auto u : ups)
    if ((*list)[u]) caf::anon_send((*list)[u], rescale_atom::value, rid);
  // A source has no input to switch: its old instances hand their positions over when told.
  if (j.plan.nodes[static_cast<std::size_t>(j.plan.chains[cc].nodes.front())].kind == spec::component_kind::source)
    for (auto o : old_ids)
      if ((*list)[o]) caf::anon_send((*list)[o], rescale_atom::value, rid);
  self->delayed_send(self, std::chrono::nanoseconds(j.plan.settings.checkpoints.timeout_ns), rtmo_atom::value, rid);
  return true;
}

void job::impl::rescale_handed(std::uint64_t rid) {
  std::vector<std::uint32_t> ids;
  {
    std::lock_guard<std::mutex> lock(js->mu);
    if (js->rescale.id != rid) return;
    ids = js->rescale.new_ids;
  }
  auto list = current();
  for (auto id : ids)
    if ((*list)[id]) caf::anon_send((*list)[id], rstate_atom::value, rid);
}

void job::impl::rescale_done(caf::event_based_actor* self, std::uint64_t rid) {
  job_state::rescale_state r;
  {
    std::lock_guard<std::mutex> lock(js->mu);
    if (js->rescale.id != rid) return;
    r = std::move(js->rescale);
    js->rescale = job_state::rescale_state{};
  }
  const std::int64_t now = core::steady_ns();
  const std::int64_t took = now - r.started_ns;
  std::string comp = chain_name(js->plan, static_cast<std::size_t>(r.chain));
  char ms[32];
  std::snprintf(ms, sizeof ms, "%.1f", static_cast<double>(took) / 1e6);
  std::string outcome = std::string("rescaled in ") + ms + " ms, " + bytes_text(r.state_bytes) + " of state moved";
  js->log(0, comp + ": " + std::to_string(r.from) + " → " + std::to_string(r.to) + " instances, " + outcome);
  {
    std::lock_guard<std::mutex> lock(emu);
    if (running < events.size()) {
      events[running].done = true;
      events[running].outcome = outcome;
      events[running].took_ns = took;
      events[running].state_bytes = r.state_bytes;
    }
    running = SIZE_MAX;
  }
  if (scaler) scaler->applied(r.chain, r.to, now);
  next_rescale(self);
}

void job::impl::abandon_rescale(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(js->mu);
    for (auto id : js->rescale.old_ids) js->ended[id] = true;
    js->rescale = job_state::rescale_state{};
  }
  js->log(1, "rescale abandoned: " + why + "; the new instances restart from the latest checkpoint");
  std::lock_guard<std::mutex> lock(emu);
  if (running < events.size()) {
    events[running].outcome = "abandoned: " + why + " (the region restarted at the new parallelism)";
    // The new parallelism stands: the restart restores the old instances' checkpoint into it.
    if (scaler) scaler->applied(event_chain[running], events[running].to, core::steady_ns());
  }
  running = SIZE_MAX;
}

job::job(const plan::physical_plan& plan, options opts) : impl_(std::make_unique<impl>()) {
  impl_->js = std::make_unique<job_state>(plan, std::move(opts));
}

job::~job() {
  if (impl_->started) {
    {
      std::unique_lock<std::mutex> lock(impl_->js->mu);
      if (!impl_->js->over()) {
        impl_->js->restarting = false;
        impl_->js->failures_pending = 0;
        lock.unlock();
        if (impl_->supervisor) caf::anon_send_exit(impl_->supervisor, caf::exit_reason::kill);
        impl_->kill_all();
        lock.lock();
        impl_->js->cv.wait(lock, [&] { return impl_->js->live == 0; });
      }
    }
    // The supervisor may still be in a handler that reads the actor list: the list goes only
    // once it has ended, and before the actor system, which waits for detached instance
    // actors, and those end only when no handle to them is left.
    if (impl_->supervisor) {
      caf::anon_send_exit(impl_->supervisor, caf::exit_reason::kill);
      caf::scoped_actor self{*impl_->sys};
      self->wait_for(impl_->supervisor);
    }
    impl_->supervisor = nullptr;
    {
      std::lock_guard<std::mutex> lock(impl_->amu);
      impl_->actors.reset();
      impl_->alive.clear();
    }
    impl_->sys.reset();
  }
}

namespace {

/// Names the plan a checkpoint belongs to: its chains, their components and parallelism.
std::string plan_fingerprint(const plan::physical_plan& p) {
  std::string f;
  for (const auto& ch : p.chains) {
    if (!f.empty()) f += '|';
    for (std::size_t k = 0; k < ch.nodes.size(); ++k) {
      if (k > 0) f += '+';
      f += p.nodes[static_cast<std::size_t>(ch.nodes[k])].name;
    }
    // An autoscaled chain's parallelism changes while it runs: a checkpoint is restored at
    // any parallelism within its range.
    if (ch.parallelism_min < ch.parallelism_max)
      f += 'x' + std::to_string(ch.parallelism_min) + ".." + std::to_string(ch.parallelism_max);
    else
      f += 'x' + std::to_string(ch.parallelism);
  }
  return f;
}

} // namespace

void job::start() {
  auto& im = *impl_;
  if (im.started) return;
  job_state& js = *im.js;
  // The state directory first: a damaged or foreign one stops the job before anything runs.
  const auto& cp = js.plan.settings.checkpoints;
  const std::string dir = !js.opts.state_dir.empty() ? js.opts.state_dir : cp.dir;
  if (js.plan.settings.checkpoint_interval_ns > 0) {
    js.store = std::make_unique<checkpoint_store>(dir, js.plan.settings.name, plan_fingerprint(js.plan), cp.keep);
    auto rec = js.store->open();
    for (const auto& w : rec.warnings) js.log(1, w);
    im.durable = js.store->durable();
    im.restored_from = rec.id;
    js.restore_id = rec.id;
    js.next_checkpoint = std::max(rec.id, rec.highest) + 1;
    if (rec.id > 0) {
      js.committed.store(rec.id);
      js.log(0, "resuming from checkpoint " + std::to_string(rec.id) + " in " + dir);
      // Autoscaled chains resume at the parallelism the checkpoint was taken at.
      if (auto par = js.checkpoint_topology(rec.id); !par.empty()) {
        bool differs = false;
        for (std::size_t c = 0; c < par.size(); ++c) {
          const auto& ch = js.plan.chains[c];
          if (ch.parallelism_min < ch.parallelism_max && par[c] >= ch.parallelism_min &&
              par[c] <= ch.parallelism_max) {
            differs = differs || par[c] != js.parallelism[c];
          } else {
            par[c] = js.parallelism[c];
          }
        }
        if (differs) {
          js.build_topology(par);
          for (std::size_t c = 0; c < par.size(); ++c)
            if (par[c] != js.plan.chains[c].parallelism)
              js.log(0, chain_name(js.plan, c) + " resumes with " + std::to_string(par[c]) +
                            " instances, as at the checkpoint");
        }
      }
    } else if (im.durable) {
      js.log(0, "no checkpoint in " + dir + ": starting from the beginning");
    }
  }
  im.started = true;
  im.started_ns = core::steady_ns();
  im.rng.seed(js.opts.chaos.seed);
  im.cfg = std::make_unique<caf::actor_system_config>();
  im.cfg->set("scheduler.max-threads", static_cast<std::size_t>(std::max<std::size_t>(1, js.opts.threads)));
  if (js.opts.idle_sleep) set_idle_polling(*im.cfg);
  im.cfg->set("logger.verbosity", caf::atom("quiet"));
  im.cfg->set("logger.console", caf::atom("none"));
  im.sys = std::make_unique<caf::actor_system>(*im.cfg);
  const std::size_t n = js.wiring.size();
  im.max_par = js.parallelism;
  js.on_rescale_progress = [&im](int what, std::uint64_t rid) {
    caf::anon_send(im.supervisor, rdone_atom::value, static_cast<std::int32_t>(what), rid);
  };
  {
    // Autoscaling: on when a component has a parallelism range (or a schedule is given).
    const auto& sc = js.plan.settings.scaling;
    bool ranged = false;
    for (const auto& ch : js.plan.chains) ranged = ranged || ch.parallelism_min < ch.parallelism_max;
    if (js.opts.autoscale && ranged) {
      if (sc.policy == "schedule") {
        std::vector<scaling::scheduled_change> steps;
        for (const auto& st : sc.schedule) {
          const int node = js.plan.find(st.component);
          if (node < 0) continue;
          steps.push_back({st.at_ns, js.plan.nodes[static_cast<std::size_t>(node)].chain, st.parallelism});
        }
        im.scaler = scaling::make_schedule(std::move(steps), core::steady_ns());
        // Steps fall at given times: look often.
        im.scale_interval_ns = std::min<std::int64_t>(sc.interval_ns, 50'000'000);
      } else {
        scaling::ds2_settings ds;
        ds.target_utilisation = sc.target_utilisation;
        ds.stabilisation_ns = sc.stabilisation_ns;
        ds.scale_in_delay_ns = sc.scale_in_delay_ns;
        ds.max_scale_in = sc.max_scale_in;
        im.scaler = scaling::make_ds2(ds);
        im.scale_interval_ns = sc.interval_ns;
      }
    }
  }
  js.kill_all = [&im] {
    if (im.supervisor) caf::anon_send_exit(im.supervisor, caf::exit_reason::kill);
    im.kill_all();
  };
  js.on_complete = [&im](std::uint64_t id, bool final) { im.on_complete(id, final); };
  // Connected parts of the graph: what a restart must roll back together.
  {
    std::vector<int> parent(js.plan.chains.size());
    for (std::size_t c = 0; c < parent.size(); ++c) parent[c] = static_cast<int>(c);
    std::function<int(int)> root = [&](int c) { return parent[c] == c ? c : parent[c] = root(parent[c]); };
    for (const auto& e : js.plan.edges) {
      if (e.fused) continue;
      parent[root(js.plan.nodes[e.from].chain)] = root(js.plan.nodes[e.to].chain);
    }
    im.region_of.resize(js.plan.chains.size());
    for (std::size_t c = 0; c < im.region_of.size(); ++c) im.region_of[c] = root(static_cast<int>(c));
  }
  std::vector<std::uint32_t> all;
  for (std::uint32_t id = 0; id < n; ++id) all.push_back(id);
  // The list exists (empty handles) before the supervisor, whose first tick may come before
  // the instances are spawned.
  im.actors = std::make_shared<peer_list>(n);
  im.supervisor = im.sys->spawn([&im](caf::event_based_actor* self) { return im.supervise(self); });
  im.generation.assign(n, 0);
  {
    // One child per chain. A fused chain takes the strictest settings of its components
    // (the fewest restarts allowed; temporary before transient before permanent).
    std::vector<supervision::child_spec> children;
    for (const auto& ch : js.plan.chains) {
      const spec::supervision_spec* pick = nullptr;
      std::string name;
      for (int node : ch.nodes) {
        const auto& n = js.plan.nodes[static_cast<std::size_t>(node)];
        name += (name.empty() ? "" : "+") + n.name;
        const auto& sv = n.spec.supervision;
        if (pick == nullptr || sv.intensity < pick->intensity ||
            static_cast<int>(sv.restart) > static_cast<int>(pick->restart))
          pick = &sv;
      }
      children.push_back(supervision::child_spec::from(name, pick ? *pick : js.plan.settings.supervision));
    }
    im.sup = std::make_unique<supervision::policy>(js.plan.settings.supervision.strategy, std::move(children),
                                                   js.opts.chaos.seed);
    // A restarted chain rolls back to the checkpoint, and so must what it exchanges data with.
    im.sup->set_widen([&im](const std::vector<std::size_t>& chains) { return im.widen(chains); });
  }
  js.on_failure = [&im](std::uint32_t id, std::uint32_t gen, const std::string& component, const std::string& what,
                         bool data) {
    {
      std::lock_guard<std::mutex> lock(im.js->mu);
      if (im.js->failed) return;  // the job is failing already: nobody decides any more
      ++im.js->failures_pending;  // the job is not over before the supervisor has decided
    }
    caf::anon_send(im.supervisor, failed_atom::value, id, gen, component, what, data);
  };
  // Read before the instances run: once they do, the supervisor may bump a generation.
  auto gens = im.generations_of(all);
  im.spawn(all);
  caf::anon_send(im.supervisor, watch_atom::value, all, std::move(gens));
}

bool job::wait_for(std::chrono::nanoseconds timeout) {
  if (!impl_->started) return true;
  std::unique_lock<std::mutex> lock(impl_->js->mu);
  return impl_->js->cv.wait_for(lock, timeout,
                                [&] { return impl_->js->over(); });
}

result job::wait() {
  job_state& js = *impl_->js;
  if (impl_->started) {
    std::unique_lock<std::mutex> lock(js.mu);
    js.cv.wait(lock, [&] { return js.over(); });
  }
  if (impl_->supervisor) caf::anon_send_exit(impl_->supervisor, caf::exit_reason::kill);
  result r;
  {
    std::lock_guard<std::mutex> lock(js.mu);
    r.ok = !js.failed;
    r.error = js.error;
    r.restart_log = impl_->restart_log;
  }
  r.restored_from = impl_->restored_from;
  r.checkpoints = js.checkpoints_done.load();
  r.checkpoints_abandoned = js.checkpoints_abandoned.load();
  r.last_checkpoint = js.committed.load();
  r.last_checkpoint_bytes = js.last_checkpoint_bytes.load();
  r.last_checkpoint_ns = js.last_checkpoint_ns.load();
  r.max_checkpoint_ns = js.max_checkpoint_ns.load();
  r.restarts = js.restarts.load();
  r.quarantined = js.quarantined.load();
  r.chaos_injected = impl_->chaos_injected;
  r.stopped_at = js.stopped_at.load();
  {
    std::lock_guard<std::mutex> lock(impl_->emu);
    r.scaling = impl_->events;
  }
  if (impl_->scaler) r.scaling_policy = impl_->scaler->name();
  {
    std::lock_guard<std::mutex> lock(js.mu);
    r.components = impl_->component_totals();
  }
  r.dead_letters_logged = js.dead_logged.load();
  r.dead_letters_dropped = js.dead_dropped.load();
  return r;
}

void job::stop(bool drain) {
  auto& im = *impl_;
  if (!im.started) return;
  im.stop_asked.store(true);
  if (!drain && im.durable) {
    caf::anon_send(im.supervisor, final_atom::value);
    return;
  }
  auto list = im.current();
  for (auto i : im.source_actors())
    if ((*list)[i]) caf::anon_send((*list)[i], stop_atom::value);
}

std::uint64_t job::restored_from() const { return impl_->restored_from; }

std::vector<instance_metrics> job::metrics() const {
  job_state& js = *impl_->js;
  std::vector<instance_metrics> out;
  std::lock_guard<std::mutex> lock(js.mu);
  for (const auto& node : js.plan.nodes) {
    const auto& ids = js.chain_ids[static_cast<std::size_t>(node.chain)];
    for (std::uint32_t i = 0; i < ids.size(); ++i) out.push_back(impl_->instance_of(node, i, ids[i]));
  }
  return out;
}

void job::progress(std::uint64_t& done, std::uint64_t& total) const {
  done = total = 0;
  job_state& js = *impl_->js;
  std::lock_guard<std::mutex> lock(js.mu);
  for (std::size_t c = 0; c < js.plan.chains.size(); ++c) {
    if (js.plan.nodes[js.plan.chains[c].nodes.front()].kind != spec::component_kind::source) continue;
    for (auto id : js.chain_ids[c]) {
      const auto& cm = *js.chain_metrics[id];
      done += cm.progress_done.load();
      total += cm.progress_total.load();
    }
  }
}

std::uint64_t job::committed_checkpoint() const { return impl_->js->committed.load(); }

std::uint32_t job::parallelism(const std::string& name) const {
  job_state& js = *impl_->js;
  const int n = js.plan.find(name);
  if (n < 0) return 0;
  std::lock_guard<std::mutex> lock(js.mu);
  return js.parallelism[static_cast<std::size_t>(js.plan.nodes[static_cast<std::size_t>(n)].chain)];
}

std::vector<scaling_event> job::scaling_events() const {
  std::lock_guard<std::mutex> lock(impl_->emu);
  return impl_->events;
}

job_graph job::graph() const {
  const job_state& js = *impl_->js;
  job_graph g;
  g.name = js.plan.settings.name;
  g.file = js.plan.file;
  std::lock_guard<std::mutex> lock(impl_->js->mu);
  for (const auto& n : js.plan.nodes) {
    graph_component c;
    c.name = n.name;
    c.kind = spec::to_string(n.kind);
    c.type = n.type;
    c.chain = n.chain;
    c.parallelism = js.parallelism[static_cast<std::size_t>(n.chain)];
    c.parallelism_min = n.parallelism_min;
    c.parallelism_max = n.parallelism_max;
    for (const auto& in : n.spec.inputs) c.inputs.emplace_back(in.component, in.port.empty() ? "main" : in.port);
    g.components.push_back(std::move(c));
  }
  for (std::size_t ci = 0; ci < js.plan.chains.size(); ++ci) {
    graph_chain c;
    c.id = static_cast<int>(ci);
    for (int n : js.plan.chains[ci].nodes) c.components.push_back(js.plan.nodes[static_cast<std::size_t>(n)].name);
    c.instances = js.chain_ids[ci];
    g.chains.push_back(std::move(c));
  }
  for (const auto& e : js.plan.edges) {
    graph_channel ch;
    const auto& from = js.plan.nodes[static_cast<std::size_t>(e.from)];
    ch.from = from.name;
    ch.to = js.plan.nodes[static_cast<std::size_t>(e.to)].name;
    ch.port = e.port == plan::port_kind::main ? "main" : plan::to_string(e.port);
    ch.fused = e.fused;
    ch.partitioning = e.fused ? "fused" : plan::to_string(e.part);
    if (e.schema)
      for (int k : e.key_columns)
        if (k >= 0 && static_cast<std::size_t>(k) < e.schema->size())
          ch.keys.push_back((*e.schema)[static_cast<std::size_t>(k)].name);
    g.channels.push_back(std::move(ch));
  }
  return g;
}

job_status job::status() const {
  auto& im = *impl_;
  job_state& js = *im.js;
  job_status st;
  st.at_ns = core::processing_time::now().ns;
  const std::int64_t now = core::steady_ns();
  st.uptime_ns = im.started ? now - im.started_ns : 0;
  std::vector<std::uint32_t> current;
  {
    std::lock_guard<std::mutex> lock(js.mu);
    if (!im.started) st.state = "starting";
    else if (js.over()) st.state = js.failed ? "failed" : "finished";
    else if (js.failed) st.state = "failed";
    else st.state = im.stop_asked.load() ? "stopping" : "running";
    st.error = js.error;
    st.restart_log = im.restart_log;
    st.checkpoint_in_progress = js.pending.empty() ? 0 : js.pending.rbegin()->first;
    for (const auto& node : js.plan.nodes) {
      const auto& ids = js.chain_ids[static_cast<std::size_t>(node.chain)];
      for (std::uint32_t i = 0; i < ids.size(); ++i) {
        auto x = im.instance_of(node, i, ids[i]);
        const auto& cm = *js.chain_metrics[ids[i]];
        x.started_ns = cm.started_ns.load(std::memory_order_relaxed);
        // A stall still going on counts up to now (the counter grows when it ends).
        if (const std::int64_t since = cm.backpressure_since.load(std::memory_order_relaxed); since > 0 && since < now)
          x.backpressure_ns += now - since;
        x.idle_ns = x.started_ns > 0 ? std::max<std::int64_t>(0, now - x.started_ns - x.busy_ns - x.backpressure_ns) : 0;
        x.queue_capacity = cm.queue_capacity.load(std::memory_order_relaxed);
        x.outbound_batches = cm.outbound.load(std::memory_order_relaxed);
        x.credits = cm.credits.load(std::memory_order_relaxed);
        x.credit_capacity = cm.credit_capacity.load(std::memory_order_relaxed);
        x.watermark_ns = cm.watermark_ns.load(std::memory_order_relaxed);
        x.state_bytes = cm.state_bytes.load(std::memory_order_relaxed);
        st.instances.push_back(std::move(x));
      }
    }
    st.components = im.component_totals();
    for (const auto& ids : js.chain_ids) current.insert(current.end(), ids.begin(), ids.end());
    for (std::size_t c = 0; c < js.plan.chains.size(); ++c) {
      if (js.plan.nodes[static_cast<std::size_t>(js.plan.chains[c].nodes.front())].kind != spec::component_kind::source)
        continue;
      for (auto id : js.chain_ids[c]) {
        st.progress_done += js.chain_metrics[id]->progress_done.load();
        st.progress_total += js.chain_metrics[id]->progress_total.load();
      }
    }
  }
  {
    std::lock_guard<std::mutex> lock(js.split_mu);
    for (auto id : current)
      if (auto it = js.split_status_of.find(id); it != js.split_status_of.end())
        st.splits.insert(st.splits.end(), it->second.begin(), it->second.end());
  }
  {
    std::lock_guard<std::mutex> lock(js.log_mu);
    st.dead_letters.assign(js.dead_samples.begin(), js.dead_samples.end());
  }
  st.dead_letters_logged = js.dead_logged.load();
  st.dead_letters_dropped = js.dead_dropped.load();
  st.restored_from = im.restored_from;
  st.checkpoints = js.checkpoints_done.load();
  st.checkpoints_abandoned = js.checkpoints_abandoned.load();
  st.last_checkpoint = js.committed.load();
  st.last_checkpoint_bytes = js.last_checkpoint_bytes.load();
  st.last_checkpoint_ns = js.last_checkpoint_ns.load();
  st.max_checkpoint_ns = js.max_checkpoint_ns.load();
  st.last_checkpoint_at_ns = js.last_checkpoint_at_ns.load();
  st.restarts = js.restarts.load();
  st.quarantined = js.quarantined.load();
  {
    std::lock_guard<std::mutex> lock(im.emu);
    st.scaling = im.events;
  }
  if (im.scaler) st.scaling_policy = im.scaler->name();
  return st;
}

std::uint64_t job::tap(const std::string& component, const std::string& port, double rows_per_second,
                       std::function<void(const std::string& json)> on_row) {
  job_state& js = *impl_->js;
  const int n = js.plan.find(component);
  if (n < 0 || !on_row || !(rows_per_second > 0)) return 0;
  std::uint32_t bit = 0;
  if (port.empty() || port == "main") bit = 1;
  else if (port == "late") bit = 2;
  else if (port == "dead_letter") bit = 4;
  else return 0;
  const auto& node = js.plan.nodes[static_cast<std::size_t>(n)];
  if (bit == 1 && node.kind == spec::component_kind::sink) return 0;  // a sink has no output
  std::lock_guard<std::mutex> lock(js.tap_mu);
  job_state::tap_entry t;
  t.id = js.next_tap++;
  t.node = n;
  t.port_bit = bit;
  t.rate = rows_per_second;
  t.tokens = std::min(1.0, rows_per_second);
  t.refilled_ns = core::steady_ns();
  t.fn = std::move(on_row);
  js.taps.push_back(std::move(t));
  js.tapped[static_cast<std::size_t>(n)].fetch_or(bit);
  return js.taps.back().id;
}

void job::untap(std::uint64_t id) {
  job_state& js = *impl_->js;
  std::lock_guard<std::mutex> lock(js.tap_mu);
  js.taps.erase(std::remove_if(js.taps.begin(), js.taps.end(), [&](const auto& t) { return t.id == id; }),
                js.taps.end());
  // Recompute the flags from the taps left.
  std::vector<std::uint32_t> bits(js.plan.nodes.size(), 0);
  for (const auto& t : js.taps) bits[static_cast<std::size_t>(t.node)] |= t.port_bit;
  for (std::size_t i = 0; i < bits.size(); ++i) js.tapped[i].store(bits[i]);
}

} // namespace pel::runtime
