// The supervisor actor: the policy's decisions carried out with monitors and delayed
// messages. Every wait (backoff, a child's shutdown) is a delayed message to itself, so a
// test clock drives it and nothing ever sleeps.
#include "pel/supervision/supervisor.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <chrono>
#include <unordered_map>

namespace pel::supervision {

namespace {

using restart_atom = caf::atom_constant<caf::atom("suprestart")>;
using kill_atom = caf::atom_constant<caf::atom("supkill")>;
using stop_timeout_atom = caf::atom_constant<caf::atom("suptimeout")>;

const caf::atom_value category = caf::atom("supervise");

std::chrono::nanoseconds ns(std::int64_t v) {
  return std::chrono::nanoseconds(std::max<std::int64_t>(0, v));
}

class supervisor_actor : public caf::event_based_actor {
public:
  supervisor_actor(caf::actor_config& ac, supervisor_config cfg)
      : caf::event_based_actor(ac),
        cfg_(std::move(cfg)),
        policy_(cfg_.strategy, specs(cfg_), cfg_.seed, cfg_.widen),
        groups_(cfg_.children.size()),
        pending_(cfg_.children.size(), 0) {}

  const char* name() const override { return "pel.supervisor"; }

  caf::behavior make_behavior() override {
    set_down_handler([this](caf::down_msg& m) { on_down(m); });
    set_exit_handler([this](caf::exit_msg& m) {
      // A normal exit message asks for nothing; any other is a request to stop.
      if (kind_of(m.reason) != exit_kind::normal) begin_stop(m.reason);
    });
    // Start every child in order, through the same path as a restart.
    const std::uint64_t token = ++next_token_;
    std::fill(pending_.begin(), pending_.end(), token);
    send(this, restart_atom::value, token, false);
    return {
        [this](restart_atom, std::uint64_t token, bool restart) { start_pending(token, restart); },
        [this](kill_atom, caf::actor& a) { send_exit(a, caf::exit_reason::kill); },
        [this](stop_timeout_atom, std::uint64_t epoch) {
          if (phase_ == phase::stopping && epoch == stop_epoch_) stop_timed_out();
        },
    };
  }

  void on_exit() override {
    // Killed, or quitting: nothing a child started may outlive its supervisor.
    for (auto& g : groups_)
      for (auto& a : g) anon_send_exit(a, caf::exit_reason::kill);
    groups_.clear();
  }

private:
  enum class phase { running, stopping, done };

  static std::vector<child_spec> specs(const supervisor_config& cfg) {
    std::vector<child_spec> out;
    for (const auto& c : cfg.children) out.push_back(c.spec);
    return out;
  }

  std::int64_t now_ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock().now().time_since_epoch())
        .count();
  }

  // -------------------------------------------------------------------------------------------
  // starting

  /// Starts, in start order, the children whose pending restart is `token`.
  void start_pending(std::uint64_t token, bool restart) {
    if (phase_ != phase::running) return;
    for (std::size_t i = 0; i < pending_.size(); ++i) {
      // A child whose start failed just now may have been given a newer token: checked per child.
      if (pending_[i] != token || phase_ != phase::running) continue;
      pending_[i] = 0;
      start_child(i, restart);
    }
    finish_if_idle();
  }

  void start_child(std::size_t i, bool restart) {
    std::vector<caf::actor> actors;
    try {
      actors = cfg_.children[i].start(system(), restart);
    } catch (const std::exception& e) {
      child_exit(i, exit_kind::failure, std::string("could not start: ") + e.what());
      return;
    } catch (...) {
      child_exit(i, exit_kind::failure, "could not start: unknown exception");
      return;
    }
    actors.erase(std::remove(actors.begin(), actors.end(), caf::actor{}), actors.end());
    if (actors.empty()) {
      child_exit(i, exit_kind::normal, "");
      return;
    }
    for (auto& a : actors) {
      monitor(a);
      owner_[a.address()] = i;
    }
    groups_[i] = std::move(actors);
  }

  // -------------------------------------------------------------------------------------------
  // downs

  void on_down(const caf::down_msg& m) {
    auto it = owner_.find(m.source);
    if (it == owner_.end()) return;  // demonitored, or not ours
    const std::size_t i = it->second;
    owner_.erase(it);
    auto& g = groups_[i];
    g.erase(std::remove_if(g.begin(), g.end(),
                           [&](const caf::actor& a) { return a.address() == m.source; }),
            g.end());
    if (phase_ == phase::stopping) {
      if (i == stopping_ && g.empty()) stop_next();
      return;
    }
    if (phase_ != phase::running) return;
    const exit_kind kind = kind_of(m.reason);
    if (kind == exit_kind::normal) {
      if (g.empty()) child_exit(i, exit_kind::normal, "");
      return;
    }
    // One actor of the child is gone: the child as a whole is.
    stop_group(i);
    child_exit(i, kind, system().render(m.reason));
  }

  /// Stops child `i`'s actors without waiting: demonitored, so their downs are not new
  /// exits; asked to stop, and killed after the shutdown timeout if they ignore it.
  void stop_group(std::size_t i) {
    auto& g = groups_[i];
    for (auto it = g.rbegin(); it != g.rend(); ++it) {
      demonitor(*it);
      owner_.erase(it->address());
      send_exit(*it, caf::exit_reason::user_shutdown);
      delayed_send(this, ns(cfg_.shutdown_timeout_ns), kill_atom::value, *it);
    }
    g.clear();
  }

  void child_exit(std::size_t i, exit_kind kind, const std::string& reason) {
    if (cfg_.on_child_exit) cfg_.on_child_exit(i, kind, reason);
    decision d = policy_.on_exit(i, kind, now_ns(), reason);
    switch (d.what) {
      case action::leave:
        finish_if_idle();
        return;
      case action::restart: {
        if (cfg_.before_restart) cfg_.before_restart(d.restart);
        for (auto it = d.stop.rbegin(); it != d.stop.rend(); ++it) stop_group(*it);
        const std::uint64_t token = ++next_token_;
        for (std::size_t r : d.restart) pending_[r] = token;
        // Children stopped and not restarted (temporary ones) have nothing pending.
        for (std::size_t s : d.stop)
          if (std::find(d.restart.begin(), d.restart.end(), s) == d.restart.end()) pending_[s] = 0;
        delayed_send(this, ns(d.delay_ns), restart_atom::value, token, true);
        return;
      }
      case action::escalate: {
        const std::string text = d.text();
        if (cfg_.on_escalate) cfg_.on_escalate(d.reason, d.history);
        begin_stop(make_error(errc::escalated, text));
        return;
      }
    }
  }

  /// Quits normally once nothing runs and nothing is pending.
  void finish_if_idle() {
    if (phase_ != phase::running || policy_.any_running()) return;
    if (std::any_of(pending_.begin(), pending_.end(), [](std::uint64_t t) { return t != 0; }))
      return;
    for (const auto& g : groups_)
      if (!g.empty()) return;
    phase_ = phase::done;
    if (cfg_.on_all_ended) cfg_.on_all_ended();
    quit(caf::exit_reason::normal);
  }

  // -------------------------------------------------------------------------------------------
  // orderly stop (shutdown request or escalation)

  void begin_stop(caf::error reason) {
    if (phase_ == phase::stopping || phase_ == phase::done) return;
    phase_ = phase::stopping;
    stop_reason_ = std::move(reason);
    std::fill(pending_.begin(), pending_.end(), 0);
    stopping_ = groups_.size();
    stop_next();
  }

  /// Asks the next child, in reverse start order, to stop; quits after the first.
  void stop_next() {
    while (stopping_ > 0) {
      const std::size_t i = --stopping_;
      if (groups_[i].empty()) continue;
      ++stop_epoch_;
      for (auto it = groups_[i].rbegin(); it != groups_[i].rend(); ++it)
        send_exit(*it, caf::exit_reason::user_shutdown);
      delayed_send(this, ns(cfg_.shutdown_timeout_ns), stop_timeout_atom::value, stop_epoch_);
      return;
    }
    phase_ = phase::done;
    const bool escalated = stop_reason_ && stop_reason_.category() == category;
    if (!escalated && cfg_.on_shutdown_done) cfg_.on_shutdown_done();
    if (!stop_reason_ || kind_of(stop_reason_) == exit_kind::normal)
      quit(caf::exit_reason::user_shutdown);
    else
      quit(stop_reason_);
  }

  /// The child being stopped did not go in time: kill what is left of it and go on.
  void stop_timed_out() {
    auto& g = groups_[stopping_];
    for (auto& a : g) {
      demonitor(a);
      owner_.erase(a.address());
      send_exit(a, caf::exit_reason::kill);
    }
    g.clear();
    stop_next();
  }

  supervisor_config cfg_;
  policy policy_;
  std::vector<std::vector<caf::actor>> groups_;  ///< live actors of each child
  std::unordered_map<caf::actor_addr, std::size_t> owner_;
  std::vector<std::uint64_t> pending_;  ///< restart token each child waits for; 0: none
  std::uint64_t next_token_ = 0;
  phase phase_ = phase::running;
  caf::error stop_reason_;
  std::size_t stopping_ = 0;  ///< the child being stopped (counts down)
  std::uint64_t stop_epoch_ = 0;
};

}  // namespace

const char* to_string(errc e) noexcept {
  switch (e) {
    case errc::escalated:
      return "escalated";
  }
  return "?";
}

caf::error make_error(errc e, std::string text) {
  return caf::error(static_cast<std::uint8_t>(e), category, caf::make_message(std::move(text)));
}

exit_kind kind_of(const caf::error& reason) {
  if (!reason || reason == caf::make_error(caf::exit_reason::normal)) return exit_kind::normal;
  if (reason == caf::make_error(caf::exit_reason::user_shutdown)) return exit_kind::shutdown;
  return exit_kind::failure;
}

caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_config cfg) {
  return sys.spawn<supervisor_actor>(std::move(cfg));
}

void request_shutdown(const caf::actor& supervisor) {
  caf::anon_send_exit(supervisor, caf::exit_reason::user_shutdown);
}

}  // namespace pel::supervision
