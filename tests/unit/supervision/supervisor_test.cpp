// The supervisor actor on CAF's deterministic scheduler: children that throw are restarted
// per strategy after their backoff, escalation fails the supervisor so that a parent sees it,
// and shutdown goes in reverse start order with a kill after the timeout. No sleeps: the
// test clock only moves when the test says so.
#include "pel/supervision/supervisor.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <stdexcept>

using namespace pel::supervision;
using namespace std::chrono_literals;

namespace {

using fail_atom = caf::atom_constant<caf::atom("fail")>;
using end_atom = caf::atom_constant<caf::atom("end")>;

constexpr std::int64_t ms = 1'000'000;

/// What the test children did, in order.
struct journal {
  std::map<std::string, int> starts;       ///< factory calls per child
  std::map<std::string, int> restarts;     ///< of them with restart = true
  std::map<std::string, caf::actor> live;  ///< the latest actor of each child
  std::vector<std::string> events;         ///< "start a", "down a", ...

  int count(const std::string& e) const {
    return static_cast<int>(std::count(events.begin(), events.end(), e));
  }
  std::size_t index(const std::string& e) const {
    return static_cast<std::size_t>(std::find(events.begin(), events.end(), e) - events.begin());
  }
};

/// A child actor: throws on `fail`, ends on `end`; with `stubborn` it ignores exit messages
/// (so only a kill stops it).
caf::behavior worker(caf::event_based_actor* self, std::shared_ptr<journal> j, std::string name,
                     bool stubborn) {
  if (stubborn) self->set_exit_handler([](caf::exit_msg&) {});
  self->attach_functor([j, name](const caf::error&) { j->events.push_back("down " + name); });
  return {
      [](fail_atom) { throw std::runtime_error("boom"); },
      [self](end_atom) { self->quit(); },
  };
}

child_spec spec(std::string name, std::uint32_t intensity = 10, std::int64_t initial = 100 * ms,
                restart_type r = restart_type::permanent) {
  child_spec c;
  c.name = std::move(name);
  c.restart = r;
  c.intensity = intensity;
  c.period_ns = 60'000 * ms;
  c.backoff = backoff_spec{initial, 10'000 * ms, 2.0, 0.0};
  return c;
}

supervised_child make_child(std::shared_ptr<journal> j, child_spec c, bool stubborn = false) {
  const std::string name = c.name;
  return {std::move(c), [j, name, stubborn](caf::actor_system& sys, bool restart) {
            ++j->starts[name];
            if (restart) ++j->restarts[name];
            j->events.push_back("start " + name);
            auto a = sys.spawn(worker, j, name, stubborn);
            j->live[name] = a;
            return std::vector<caf::actor>{a};
          }};
}

/// An actor system on the test coordinator.
struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<journal> j = std::make_shared<journal>();
  std::vector<caf::actor> supervisors;

  fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    cfg.set("logger.console", caf::atom("none"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    sched->clock().current_time += std::chrono::hours(1);
  }

  ~fixture() {
    for (auto& s : supervisors) caf::anon_send_exit(s, caf::exit_reason::kill);
    for (auto& [name, a] : j->live) caf::anon_send_exit(a, caf::exit_reason::kill);
    supervisors.clear();
    j->live.clear();
    sched->run();
    sched->clock().cancel_all();
    sched->run();
  }

  void run() { sched->run(); }

  /// Moves the clock by `d`, fires what is due, and runs what that sent.
  void advance(caf::timespan d) {
    sched->advance_time(d);
    sched->run();
  }

  caf::actor start(supervisor_config c) {
    auto s = spawn_supervisor(*sys, std::move(c));
    supervisors.push_back(s);
    run();
    return s;
  }

  void fail(const std::string& child) {
    caf::anon_send(j->live.at(child), fail_atom::value);
    run();
  }

  /// Records the reason `a` ends with into `out`.
  static void watch(const caf::actor& a, std::shared_ptr<std::vector<caf::error>> out) {
    caf::actor_cast<caf::abstract_actor*>(a)->attach_functor(
        [out](const caf::error& r) { out->push_back(r); });
  }
};

supervisor_config three(fixture& f, supervision_strategy s) {
  supervisor_config c;
  c.strategy = s;
  c.children = {make_child(f.j, spec("a")), make_child(f.j, spec("b")), make_child(f.j, spec("c"))};
  return c;
}

}  // namespace

TEST_CASE("a supervisor starts its children in order", "[supervision][supervisor]") {
  fixture f;
  f.start(three(f, supervision_strategy::one_for_one));
  CHECK(f.j->events == std::vector<std::string>{"start a", "start b", "start c"});
  CHECK(f.j->restarts.empty());
}

TEST_CASE("one_for_one restarts only the child that threw, after its backoff",
          "[supervision][supervisor]") {
  fixture f;
  auto c = three(f, supervision_strategy::one_for_one);
  std::vector<std::string> exits;
  c.on_child_exit = [&](std::size_t i, exit_kind k, const std::string& why) {
    exits.push_back(std::to_string(i) + " " + to_string(k) + " " + why);
  };
  f.start(std::move(c));
  f.fail("b");
  REQUIRE(exits.size() == 1);
  CHECK(exits[0].rfind("1 failure ", 0) == 0);
  CHECK(exits[0].find("runtime_error") != std::string::npos);
  CHECK(f.j->starts["b"] == 1);  // still waiting for the backoff
  f.advance(100ms);
  CHECK(f.j->starts == std::map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 1}});
  CHECK(f.j->restarts["b"] == 1);
  // The new b is watched like the first one.
  f.fail("b");
  f.advance(200ms);
  CHECK(f.j->starts["b"] == 3);
}

TEST_CASE("one_for_all stops the others in reverse and restarts all in order",
          "[supervision][supervisor]") {
  fixture f;
  f.start(three(f, supervision_strategy::one_for_all));
  f.j->events.clear();
  f.fail("b");
  // c and a were stopped for the restart (in reverse start order), not reported as failures.
  CHECK(f.j->count("down a") == 1);
  CHECK(f.j->count("down c") == 1);
  CHECK(f.j->index("down c") < f.j->index("down a"));
  f.advance(100ms);
  CHECK(f.j->starts == std::map<std::string, int>{{"a", 2}, {"b", 2}, {"c", 2}});
  const std::vector<std::string> tail(f.j->events.end() - 3, f.j->events.end());
  CHECK(tail == std::vector<std::string>{"start a", "start b", "start c"});
  // No further restarts come from the stopped actors' downs.
  f.advance(60s);
  CHECK(f.j->starts["a"] == 2);
}

TEST_CASE("the supervisor restarts the rest after a rest_for_one failure",
          "[supervision][supervisor]") {
  fixture f;
  f.start(three(f, supervision_strategy::rest_for_one));
  f.fail("b");
  f.advance(100ms);
  CHECK(f.j->starts == std::map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 2}});
  f.fail("c");
  f.advance(100ms);
  CHECK(f.j->starts == std::map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 3}});
}

TEST_CASE("nothing is restarted before its backoff has passed", "[supervision][supervisor]") {
  fixture f;
  supervisor_config c;
  c.children = {make_child(f.j, spec("a", 10, 1000 * ms))};
  f.start(std::move(c));
  f.fail("a");
  f.advance(999ms);
  CHECK(f.j->starts["a"] == 1);
  f.advance(1ms);
  CHECK(f.j->starts["a"] == 2);
  // The second restart in a row waits twice as long.
  f.fail("a");
  f.advance(1999ms);
  CHECK(f.j->starts["a"] == 2);
  f.advance(1ms);
  CHECK(f.j->starts["a"] == 3);
}

TEST_CASE("before_restart sees the set before it is started again", "[supervision][supervisor]") {
  fixture f;
  auto c = three(f, supervision_strategy::rest_for_one);
  std::vector<std::vector<std::size_t>> sets;
  c.before_restart = [&](const std::vector<std::size_t>& set) {
    sets.push_back(set);
    f.j->events.push_back("before restart");
  };
  f.start(std::move(c));
  f.fail("b");
  REQUIRE(sets.size() == 1);
  CHECK(sets[0] == std::vector<std::size_t>{1, 2});
  f.advance(100ms);
  CHECK(f.j->index("before restart") < f.j->index("down c"));
}

TEST_CASE("escalation calls back and a parent supervisor sees the child supervisor fail",
          "[supervision][supervisor]") {
  fixture f;
  std::vector<std::string> escalations;
  std::vector<std::size_t> history_sizes;
  int inner_starts = 0;
  auto inner_down = std::make_shared<std::vector<caf::error>>();

  supervisor_config parent;
  parent.strategy = supervision_strategy::one_for_one;
  std::vector<std::string> parent_exits;
  parent.on_child_exit = [&](std::size_t, exit_kind k, const std::string& why) {
    parent_exits.push_back(std::string(to_string(k)) + ": " + why);
  };
  child_spec pipeline = spec("pipeline", 5, 50 * ms);
  parent.children = {{pipeline, [&](caf::actor_system& sys, bool) {
                        ++inner_starts;
                        supervisor_config inner;
                        inner.children = {make_child(f.j, spec("w", 1, 100 * ms))};
                        inner.shutdown_timeout_ns = 1000 * ms;
                        inner.on_escalate = [&](const std::string& reason,
                                                const std::vector<restart_record>& h) {
                          escalations.push_back(reason);
                          history_sizes.push_back(h.size());
                        };
                        auto s = spawn_supervisor(sys, std::move(inner));
                        fixture::watch(s, inner_down);
                        return std::vector<caf::actor>{s};
                      }}};
  f.start(std::move(parent));
  REQUIRE(inner_starts == 1);
  REQUIRE(f.j->starts["w"] == 1);

  f.fail("w");  // within w's intensity of 1: restarted
  f.advance(100ms);
  CHECK(f.j->starts["w"] == 2);
  CHECK(escalations.empty());

  f.fail("w");  // one too many
  REQUIRE(escalations.size() == 1);
  CHECK_THAT(escalations[0],
             Catch::StartsWith("child 'w' failed (") && Catch::Contains("runtime_error") &&
                 Catch::EndsWith(") and would be restarted 2 times within 1m, more than its "
                                 "intensity (1) allows"));
  CHECK(history_sizes[0] == 2);
  REQUIRE(inner_down->size() == 1);
  CHECK(kind_of(inner_down->front()) == exit_kind::failure);
  CHECK(inner_down->front().category() == caf::atom("supervise"));
  REQUIRE(parent_exits.size() == 1);
  CHECK(parent_exits[0].rfind("failure: ", 0) == 0);

  // The parent restarts the whole child supervisor, which starts w afresh.
  f.advance(50ms);
  CHECK(inner_starts == 2);
  CHECK(f.j->starts["w"] == 3);
  CHECK(f.j->restarts["w"] == 1);  // the new supervisor's first start is not a restart
}

TEST_CASE("shutdown stops children in reverse order and kills one that ignores it",
          "[supervision][supervisor]") {
  fixture f;
  supervisor_config c;
  c.children = {make_child(f.j, spec("a")), make_child(f.j, spec("b"), true),
                make_child(f.j, spec("c"))};
  c.shutdown_timeout_ns = 2000 * ms;
  int done = 0;
  c.on_shutdown_done = [&] { ++done; };
  int restarts = 0;
  c.before_restart = [&](const std::vector<std::size_t>&) { ++restarts; };
  auto sup = f.start(std::move(c));
  auto down = std::make_shared<std::vector<caf::error>>();
  fixture::watch(sup, down);
  f.j->events.clear();

  request_shutdown(sup);
  f.run();
  // c went; b ignores the request, so a waits.
  CHECK(f.j->events == std::vector<std::string>{"down c"});
  f.advance(1999ms);
  CHECK(f.j->events == std::vector<std::string>{"down c"});
  CHECK(down->empty());
  f.advance(1ms);  // b's timeout: killed, then a is asked
  CHECK(f.j->events == std::vector<std::string>{"down c", "down b", "down a"});
  CHECK(done == 1);
  CHECK(restarts == 0);
  REQUIRE(down->size() == 1);
  CHECK(kind_of(down->front()) == exit_kind::shutdown);
}

TEST_CASE("children that end their streams are not restarted and the supervisor ends",
          "[supervision][supervisor]") {
  fixture f;
  int ended = 0;
  auto c = three(f, supervision_strategy::one_for_all);
  c.on_all_ended = [&] { ++ended; };
  auto sup = f.start(std::move(c));
  auto down = std::make_shared<std::vector<caf::error>>();
  fixture::watch(sup, down);
  for (const char* name : {"a", "b"}) caf::anon_send(f.j->live.at(name), end_atom::value);
  f.run();
  CHECK(ended == 0);
  caf::anon_send(f.j->live.at("c"), end_atom::value);
  f.advance(10s);
  CHECK(ended == 1);
  CHECK(f.j->starts == std::map<std::string, int>{{"a", 1}, {"b", 1}, {"c", 1}});
  REQUIRE(down->size() == 1);
  CHECK(kind_of(down->front()) == exit_kind::normal);
}

TEST_CASE("a transient child stopped on request stays down", "[supervision][supervisor]") {
  fixture f;
  supervisor_config c;
  c.children = {make_child(f.j, spec("t", 10, 100 * ms, restart_type::transient)),
                make_child(f.j, spec("p"))};
  f.start(std::move(c));
  caf::anon_send_exit(f.j->live.at("t"), caf::exit_reason::user_shutdown);
  caf::anon_send_exit(f.j->live.at("p"), caf::exit_reason::user_shutdown);
  f.run();
  f.advance(1s);
  CHECK(f.j->starts == std::map<std::string, int>{{"t", 1}, {"p", 2}});
}

TEST_CASE("a factory that throws counts as a failure of its child", "[supervision][supervisor]") {
  fixture f;
  int calls = 0;
  supervisor_config c;
  c.children = {make_child(f.j, spec("a")),
                {spec("flaky", 10, 100 * ms), [&](caf::actor_system& sys, bool) {
                   if (++calls == 1) throw std::runtime_error("no broker");
                   auto a = sys.spawn(worker, f.j, std::string("flaky"), false);
                   f.j->live["flaky"] = a;
                   return std::vector<caf::actor>{a};
                 }}};
  std::vector<std::string> exits;
  c.on_child_exit = [&](std::size_t, exit_kind, const std::string& why) { exits.push_back(why); };
  f.start(std::move(c));
  CHECK(exits == std::vector<std::string>{"could not start: no broker"});
  f.advance(100ms);
  CHECK(calls == 2);
  CHECK(f.j->starts["a"] == 1);
}
