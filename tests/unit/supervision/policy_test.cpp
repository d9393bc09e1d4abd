// The OTP policy alone: strategies, restart types against exit kinds, intensity over a
// sliding period, backoff, widening and the escalation text. Time is whatever the test says.
#include "pel/supervision/policy.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace pel::supervision;

namespace {

constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t s = 1'000 * ms;

using set = std::vector<std::size_t>;

/// A child with no jitter, so delays are exact.
child_spec child(std::string name, restart_type r = restart_type::permanent,
                 std::uint32_t intensity = 100, std::int64_t period = 10 * s) {
  child_spec c;
  c.name = std::move(name);
  c.restart = r;
  c.intensity = intensity;
  c.period_ns = period;
  c.backoff = backoff_spec{100 * ms, 1 * s, 2.0, 0.0};
  return c;
}

std::vector<child_spec> three(restart_type r = restart_type::permanent) {
  return {child("a", r), child("b", r), child("c", r)};
}

}  // namespace

TEST_CASE("one_for_one restarts only the child that failed", "[supervision][policy]") {
  policy p(supervision_strategy::one_for_one, three());
  const decision d = p.on_exit(1, exit_kind::failure, 0, "boom");
  CHECK(d.what == action::restart);
  CHECK(d.stop == set{});
  CHECK(d.restart == set{1});
  CHECK(d.delay_ns == 100 * ms);
  CHECK(p.state(1) == child_state::running);
}

TEST_CASE("one_for_all restarts every running child", "[supervision][policy]") {
  policy p(supervision_strategy::one_for_all, three());
  decision d = p.on_exit(1, exit_kind::failure, 0, "boom");
  CHECK(d.what == action::restart);
  CHECK(d.stop == set{0, 2});
  CHECK(d.restart == set{0, 1, 2});
  // A child that ended its stream is not running, so it is left out.
  CHECK(p.on_exit(0, exit_kind::normal, 1 * s, "").what == action::leave);
  CHECK(p.state(0) == child_state::ended);
  d = p.on_exit(2, exit_kind::failure, 2 * s, "boom");
  CHECK(d.stop == set{1});
  CHECK(d.restart == set{1, 2});
}

TEST_CASE("rest_for_one restarts the child and those started after it", "[supervision][policy]") {
  policy p(supervision_strategy::rest_for_one, three());
  decision d = p.on_exit(1, exit_kind::failure, 0, "boom");
  CHECK(d.stop == set{2});
  CHECK(d.restart == set{1, 2});
  d = p.on_exit(2, exit_kind::failure, 1 * s, "boom");
  CHECK(d.stop == set{});
  CHECK(d.restart == set{2});
  d = p.on_exit(0, exit_kind::failure, 2 * s, "boom");
  CHECK(d.stop == set{1, 2});
  CHECK(d.restart == set{0, 1, 2});
}

TEST_CASE("each restart type against each exit kind", "[supervision][policy]") {
  struct row {
    restart_type type;
    exit_kind kind;
    action expected;
    child_state after;
  };
  const row rows[] = {
      {restart_type::permanent, exit_kind::normal, action::leave, child_state::ended},
      {restart_type::permanent, exit_kind::shutdown, action::restart, child_state::running},
      {restart_type::permanent, exit_kind::failure, action::restart, child_state::running},
      {restart_type::transient, exit_kind::normal, action::leave, child_state::ended},
      {restart_type::transient, exit_kind::shutdown, action::leave, child_state::stopped},
      {restart_type::transient, exit_kind::failure, action::restart, child_state::running},
      {restart_type::temporary, exit_kind::normal, action::leave, child_state::ended},
      {restart_type::temporary, exit_kind::shutdown, action::leave, child_state::stopped},
      {restart_type::temporary, exit_kind::failure, action::leave, child_state::stopped},
  };
  for (const auto& r : rows) {
    INFO(to_string(r.type) << " child, " << to_string(r.kind) << " exit");
    policy p(supervision_strategy::one_for_all, three(r.type));
    const decision d = p.on_exit(0, r.kind, 0, "why");
    CHECK(d.what == r.expected);
    CHECK(p.state(0) == r.after);
    if (r.expected == action::leave) {
      // Nothing else is touched.
      CHECK(d.stop.empty());
      CHECK(d.restart.empty());
      CHECK(p.state(1) == child_state::running);
    }
  }
}

TEST_CASE("temporary siblings in a restart set are stopped, not restarted",
          "[supervision][policy]") {
  policy p(supervision_strategy::one_for_all,
           {child("a"), child("t", restart_type::temporary), child("c", restart_type::transient)});
  const decision d = p.on_exit(0, exit_kind::failure, 0, "boom");
  CHECK(d.stop == set{1, 2});
  CHECK(d.restart == set{0, 2});
  CHECK(p.state(1) == child_state::stopped);
  // It stays out of later sets.
  CHECK(p.on_exit(2, exit_kind::failure, 1 * s, "boom").stop == set{0});
}

TEST_CASE("restarts within the intensity go on, one more escalates", "[supervision][policy]") {
  policy p(supervision_strategy::one_for_one, {child("a", restart_type::permanent, 2, 10 * s)});
  CHECK(p.on_exit(0, exit_kind::failure, 0, "boom").what == action::restart);
  CHECK(p.on_exit(0, exit_kind::failure, 1 * s, "boom").what == action::restart);
  const decision d = p.on_exit(0, exit_kind::failure, 2 * s, "boom");
  CHECK(d.what == action::escalate);
  CHECK(d.restart.empty());
  CHECK(d.stop.empty());
  CHECK(p.state(0) == child_state::stopped);
  CHECK_FALSE(p.any_running());
  // After escalating, nothing more is decided.
  CHECK(p.on_exit(0, exit_kind::failure, 3 * s, "boom").what == action::leave);
}

TEST_CASE("the intensity counts over a sliding period", "[supervision][policy]") {
  policy p(supervision_strategy::one_for_one, {child("a", restart_type::permanent, 2, 10 * s)});
  CHECK(p.on_exit(0, exit_kind::failure, 0, "x").what == action::restart);
  CHECK(p.on_exit(0, exit_kind::failure, 5 * s, "x").what == action::restart);
  // The restart at 0 is out of (1s, 11s]: two in the window with this one.
  CHECK(p.on_exit(0, exit_kind::failure, 11 * s, "x").what == action::restart);
  // At 16s the one at 5s has left the window too.
  CHECK(p.on_exit(0, exit_kind::failure, 16 * s, "x").what == action::restart);
  // 11s, 16s and 17s are three within 10s.
  CHECK(p.on_exit(0, exit_kind::failure, 17 * s, "x").what == action::escalate);
}

TEST_CASE("intensity 0 escalates at the first restart", "[supervision][policy]") {
  policy p(supervision_strategy::one_for_one, {child("a", restart_type::permanent, 0, 10 * s)});
  const decision d = p.on_exit(0, exit_kind::shutdown, 4 * s, "");
  CHECK(d.what == action::escalate);
  CHECK(d.reason ==
        "child 'a' was stopped and would be restarted 1 time within 10s, more than its "
        "intensity (0) allows");
  // An exit that is not restarted is not counted.
  policy q(supervision_strategy::one_for_one, {child("a", restart_type::transient, 0, 10 * s)});
  CHECK(q.on_exit(0, exit_kind::shutdown, 0, "").what == action::leave);
}

TEST_CASE("the escalation names the child and lists the chain of restarts",
          "[supervision][policy]") {
  policy p(supervision_strategy::rest_for_one, {child("src", restart_type::permanent, 5, 10 * s),
                                                child("parse", restart_type::permanent, 2, 10 * s),
                                                child("out", restart_type::permanent, 5, 10 * s)});
  CHECK(p.on_exit(0, exit_kind::failure, 500 * ms, "lost").what == action::restart);
  CHECK(p.on_exit(1, exit_kind::failure, 1 * s, "boom").what == action::restart);
  CHECK(p.on_exit(2, exit_kind::failure, 1500 * ms, "disk full").what == action::restart);
  const decision d = p.on_exit(1, exit_kind::failure, 3250 * ms, "bang");
  REQUIRE(d.what == action::escalate);
  CHECK(d.reason ==
        "child 'parse' failed (bang) and would be restarted 3 times within 10s, more than "
        "its intensity (2) allows");
  REQUIRE(d.history.size() == 3);
  CHECK(d.history[0].child == "src");
  CHECK(d.history[2].restarted.empty());
  CHECK(d.text() ==
        "child 'parse' failed (bang) and would be restarted 3 times within 10s, more than its "
        "intensity (2) allows\n"
        "  at 0.500s: 'src' failed (lost); restarted src, parse, out\n"
        "  at 1.000s: 'parse' failed (boom); restarted parse, out\n"
        "  at 3.250s: 'parse' failed (bang); not restarted");
}

TEST_CASE("a sibling over its intensity escalates too", "[supervision][policy]") {
  policy p(supervision_strategy::one_for_all, {child("a", restart_type::permanent, 5, 10 * s),
                                               child("b", restart_type::permanent, 1, 10 * s)});
  CHECK(p.on_exit(0, exit_kind::failure, 0, "x").what == action::restart);
  const decision d = p.on_exit(0, exit_kind::failure, 1 * s, "y");
  CHECK(d.what == action::escalate);
  CHECK(d.reason ==
        "child 'a' failed (y), which would restart 'b' 2 times within 10s, more than its "
        "intensity (1) allows");
}

TEST_CASE("backoff doubles per restart in a row and stops at the maximum",
          "[supervision][policy]") {
  policy p(supervision_strategy::one_for_one, {child("a"), child("b")});
  std::vector<std::int64_t> delays;
  for (int i = 0; i < 6; ++i)
    delays.push_back(p.on_exit(0, exit_kind::failure, i * s, "x").delay_ns);
  CHECK(delays == std::vector<std::int64_t>{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1 * s, 1 * s});
  // Each child has its own count.
  CHECK(p.on_exit(1, exit_kind::failure, 6 * s, "x").delay_ns == 100 * ms);
}

TEST_CASE("backoff starts again after a period without failures", "[supervision][policy]") {
  policy p(supervision_strategy::one_for_one, {child("a", restart_type::permanent, 100, 10 * s)});
  CHECK(p.on_exit(0, exit_kind::failure, 0, "x").delay_ns == 100 * ms);
  CHECK(p.on_exit(0, exit_kind::failure, 5 * s, "x").delay_ns == 200 * ms);
  CHECK(p.on_exit(0, exit_kind::failure, 15 * s, "x").delay_ns ==
        400 * ms);  // exactly a period: not yet
  CHECK(p.on_exit(0, exit_kind::failure, 25 * s + 1, "x").delay_ns == 100 * ms);
}

TEST_CASE("jitter keeps each delay within its bounds and follows the seed",
          "[supervision][policy]") {
  auto delays = [](std::uint64_t seed) {
    child_spec c = child("a", restart_type::permanent, 1000, 1 * s);
    c.backoff = backoff_spec{1 * s, 1 * s, 2.0, 0.25};
    policy p(supervision_strategy::one_for_one, {c}, seed);
    std::vector<std::int64_t> out;
    for (int i = 0; i < 500; ++i)
      out.push_back(p.on_exit(0, exit_kind::failure, i * 10 * ms, "x").delay_ns);
    return out;
  };
  const auto a = delays(7);
  CHECK(*std::min_element(a.begin(), a.end()) >= 750 * ms);
  CHECK(*std::max_element(a.begin(), a.end()) <= 1250 * ms);
  // Spread over the range, not stuck at one value.
  CHECK(*std::min_element(a.begin(), a.end()) < 800 * ms);
  CHECK(*std::max_element(a.begin(), a.end()) > 1200 * ms);
  CHECK(delays(7) == a);
  CHECK(delays(8) != a);
}

TEST_CASE("the widen hook grows a restart set before it is counted", "[supervision][policy]") {
  // b depends on a: restarting a restarts b.
  policy p(supervision_strategy::one_for_one,
           {child("a", restart_type::permanent, 5, 10 * s),
            child("b", restart_type::permanent, 1, 10 * s), child("c")});
  p.set_widen([](const set& in) {
    set out = in;
    if (std::find(in.begin(), in.end(), 0) != in.end()) out.push_back(1);
    out.push_back(99);  // out of range: dropped
    return out;
  });
  decision d = p.on_exit(0, exit_kind::failure, 0, "x");
  CHECK(d.what == action::restart);
  CHECK(d.stop == set{1});
  CHECK(d.restart == set{0, 1});
  d = p.on_exit(2, exit_kind::failure, 1 * s, "x");
  CHECK(d.restart == set{2});
  // b's intensity is 1, and it was restarted once already.
  d = p.on_exit(0, exit_kind::failure, 2 * s, "x");
  CHECK(d.what == action::escalate);
  CHECK(d.reason.find("would restart 'b' 2 times") != std::string::npos);
}

TEST_CASE("exits of children already down are ignored", "[supervision][policy]") {
  policy p(supervision_strategy::one_for_one, three(restart_type::transient));
  CHECK(p.on_exit(0, exit_kind::normal, 0, "").what == action::leave);
  CHECK(p.on_exit(0, exit_kind::failure, 1, "late").what == action::leave);
  CHECK(p.history().empty());
  CHECK(p.find("c") == std::optional<std::size_t>(2));
  CHECK_FALSE(p.find("d").has_value());
}

TEST_CASE("child settings come from a supervision block", "[supervision][policy]") {
  pel::spec::supervision_spec s;
  s.restart = restart_type::transient;
  s.intensity = 9;
  s.period_ns = 3 * s.period_ns;
  s.backoff.jitter = 0.5;
  const child_spec c = child_spec::from("op", s);
  CHECK(c.name == "op");
  CHECK(c.restart == restart_type::transient);
  CHECK(c.intensity == 9);
  CHECK(c.period_ns == 180'000'000'000);
  CHECK(c.backoff.jitter == 0.5);
  CHECK(format_time(1'234'567'890) == "1.234s");
}
