#include "pel/runtime/job.hpp"

#include "chain.hpp"
#include "shared.hpp"

#include <caf/all.hpp>

#include <chrono>
#include <exception>

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

/// One instance of a fused chain. The actor only translates messages into calls on its
/// `chain_instance` and turns every exception into a job failure named after the component.
class chain_actor : public caf::event_based_actor, public transport {
public:
  chain_actor(caf::actor_config& cfg, job_state* js, std::uint32_t id,
              const std::vector<caf::actor>* peers)
    : caf::event_based_actor(cfg), js_(js), id_(id), peers_(peers),
      chain_(std::make_unique<chain_instance>(*js, id, *this)) {}

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
          guard([&] { chain_->on_batch(slot, std::move(b)); });
        },
        [this](ctrl_atom, std::uint32_t slot, std::uint8_t k, std::int64_t v) {
          guard([&] { chain_->on_control(slot, static_cast<control_kind>(k), v); });
        },
        [this](credit_atom, std::uint32_t target, std::uint32_t n, core::batch& spare) {
          guard([&] { chain_->on_credit(target, n, std::move(spare)); });
        },
        [this](tick_atom) { guard([&] { chain_->on_tick(); }); },
        [this](poll_atom) { guard([&] { chain_->on_poll(); }); },
        [this](timer_atom, std::int32_t pos) { guard([&] { chain_->on_timer(pos); }); },
        [this](barrier_atom) { guard([&] { chain_->on_barrier_tick(); }); },
        [this](commit_atom, std::uint64_t id) { guard([&] { chain_->on_commit(id); }); },
        [this](stop_atom) { guard([&] { chain_->on_stop(); }); },
    };
  }

  void on_exit() override {
    // Components are destroyed in the actor's context, not when the last handle goes.
    try {
      chain_.reset();
    } catch (...) {
    }
  }

  // -- transport ---------------------------------------------------------------------------
  void send_batch(std::uint32_t target, core::batch&& b) override {
    const auto& tw = js_->wiring[id_].targets[target];
    send((*peers_)[tw.receiver], batch_atom::value, tw.receiver_slot, std::move(b));
  }
  void send_control(std::uint32_t target, control_kind k, std::int64_t v) override {
    const auto& tw = js_->wiring[id_].targets[target];
    send((*peers_)[tw.receiver], ctrl_atom::value, tw.receiver_slot, static_cast<std::uint8_t>(k), v);
  }
  void send_credit(std::uint32_t slot, std::uint32_t n, core::batch&& spare) override {
    const auto& sw = js_->wiring[id_].slots[slot];
    send((*peers_)[sw.sender], credit_atom::value, sw.sender_target, n, std::move(spare));
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
  void schedule_barrier(std::int64_t ns) override {
    delayed_send(this, std::chrono::nanoseconds(ns), barrier_atom::value);
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
    js_->fail(chain_ ? chain_->current_component() : std::string("runtime"), what);
  }

  job_state* js_;
  std::uint32_t id_;
  const std::vector<caf::actor>* peers_;
  std::unique_ptr<chain_instance> chain_;
  bool failed_ = false;
};

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
  std::vector<caf::actor> actors;
  std::vector<std::uint32_t> source_actors;
  bool started = false;

  void kill_all() {
    for (auto& a : actors) caf::anon_send_exit(a, caf::exit_reason::kill);
  }
};

job::job(const plan::physical_plan& plan, options opts) : impl_(std::make_unique<impl>()) {
  impl_->js = std::make_unique<job_state>(plan, std::move(opts));
}

job::~job() {
  if (impl_->started) {
    {
      std::unique_lock<std::mutex> lock(impl_->js->mu);
      if (impl_->js->live > 0) {
        lock.unlock();
        impl_->kill_all();
        lock.lock();
        impl_->js->cv.wait(lock, [&] { return impl_->js->live == 0; });
      }
    }
    impl_->actors.clear();
    impl_->sys.reset();
  }
}

void job::start() {
  auto& im = *impl_;
  if (im.started) return;
  im.started = true;
  job_state& js = *im.js;
  im.cfg = std::make_unique<caf::actor_system_config>();
  im.cfg->set("scheduler.max-threads", static_cast<std::size_t>(std::max<std::size_t>(1, js.opts.threads)));
  im.cfg->set("logger.verbosity", caf::atom("quiet"));
  im.cfg->set("logger.console", caf::atom("none"));
  im.sys = std::make_unique<caf::actor_system>(*im.cfg);
  const std::size_t n = js.wiring.size();
  js.live = n;
  js.kill_all = [&im] { im.kill_all(); };
  js.commit_sources = [&im](std::uint64_t id) {
    for (auto i : im.source_actors) caf::anon_send(im.actors[i], commit_atom::value, id);
  };
  im.actors.reserve(n);
  for (std::uint32_t id = 0; id < n; ++id) {
    const auto& ch = js.plan.chains[js.wiring[id].chain];
    const auto& head = js.plan.nodes[ch.nodes.front()];
    bool is_source = head.kind == spec::component_kind::source;
    // A blocking source (stdin) gets a thread of its own.
    bool blocking = is_source && head.blocking;
    if (is_source) im.source_actors.push_back(id);
    caf::actor a = blocking ? im.sys->spawn<chain_actor, caf::detached>(&js, id, &im.actors)
                            : im.sys->spawn<chain_actor>(&js, id, &im.actors);
    a->attach_functor([&js] { js.actor_done(); });
    im.actors.push_back(std::move(a));
  }
  // Downstream first, so every actor has its start message before any data reaches it.
  for (std::size_t i = n; i-- > 0;) caf::anon_send(im.actors[i], start_atom::value);
}

bool job::wait_for(std::chrono::nanoseconds timeout) {
  if (!impl_->started) return true;
  std::unique_lock<std::mutex> lock(impl_->js->mu);
  return impl_->js->cv.wait_for(lock, timeout, [&] { return impl_->js->live == 0; });
}

result job::wait() {
  job_state& js = *impl_->js;
  if (impl_->started) {
    std::unique_lock<std::mutex> lock(js.mu);
    js.cv.wait(lock, [&] { return js.live == 0; });
  }
  result r;
  {
    std::lock_guard<std::mutex> lock(js.mu);
    r.ok = !js.failed;
    r.error = js.error;
  }
  for (std::size_t ni = 0; ni < js.plan.nodes.size(); ++ni) {
    const auto& node = js.plan.nodes[ni];
    component_stats c;
    c.name = node.name;
    for (std::uint32_t i = 0; i < node.parallelism; ++i) {
      const auto& m = *js.node_metrics[ni][i];
      c.rows_in += m.rows_in.load();
      c.rows_out += m.rows_out.load();
      c.dead_letters += m.dead.load();
      c.late += m.late.load();
      c.lost += m.lost.load();
      c.max_split_lead_ns = std::max(c.max_split_lead_ns, m.max_split_lead_ns.load());
      const auto& cm = *js.chain_metrics[js.id_of(node.chain, i)];
      c.busy_ns += cm.busy_ns.load();
      c.backpressure_ns += cm.backpressure_ns.load();
    }
    r.components.push_back(std::move(c));
  }
  r.dead_letters_logged = js.dead_logged.load();
  r.dead_letters_dropped = js.dead_dropped.load();
  return r;
}

void job::stop() {
  auto& im = *impl_;
  if (!im.started) return;
  for (auto i : im.source_actors) caf::anon_send(im.actors[i], stop_atom::value);
}

std::vector<instance_metrics> job::metrics() const {
  const job_state& js = *impl_->js;
  std::vector<instance_metrics> out;
  for (std::size_t ni = 0; ni < js.plan.nodes.size(); ++ni) {
    const auto& node = js.plan.nodes[ni];
    for (std::uint32_t i = 0; i < node.parallelism; ++i) {
      const auto& m = *js.node_metrics[ni][i];
      const auto& cm = *js.chain_metrics[js.id_of(node.chain, i)];
      instance_metrics x;
      x.component = node.name;
      x.instance = i;
      x.chain = node.chain;
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
      out.push_back(std::move(x));
    }
  }
  return out;
}

void job::progress(std::uint64_t& done, std::uint64_t& total) const {
  done = total = 0;
  const job_state& js = *impl_->js;
  for (std::size_t c = 0; c < js.plan.chains.size(); ++c) {
    if (js.plan.nodes[js.plan.chains[c].nodes.front()].kind != spec::component_kind::source) continue;
    for (std::uint32_t i = 0; i < js.plan.chains[c].parallelism; ++i) {
      const auto& cm = *js.chain_metrics[js.id_of(static_cast<int>(c), i)];
      done += cm.progress_done.load();
      total += cm.progress_total.load();
    }
  }
}

std::uint64_t job::committed_checkpoint() const { return impl_->js->committed.load(); }

} // namespace pel::runtime
