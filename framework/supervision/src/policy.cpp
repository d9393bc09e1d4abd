#include "pel/supervision/policy.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace pel::supervision {

const char* to_string(exit_kind k) noexcept {
  switch (k) {
    case exit_kind::normal:
      return "normal";
    case exit_kind::shutdown:
      return "shutdown";
    case exit_kind::failure:
      return "failure";
  }
  return "?";
}

const char* to_string(supervision_strategy s) noexcept {
  switch (s) {
    case supervision_strategy::one_for_one:
      return "one_for_one";
    case supervision_strategy::one_for_all:
      return "one_for_all";
    case supervision_strategy::rest_for_one:
      return "rest_for_one";
  }
  return "?";
}

const char* to_string(restart_type r) noexcept {
  switch (r) {
    case restart_type::permanent:
      return "permanent";
    case restart_type::transient:
      return "transient";
    case restart_type::temporary:
      return "temporary";
  }
  return "?";
}

const char* to_string(action a) noexcept {
  switch (a) {
    case action::restart:
      return "restart";
    case action::leave:
      return "leave";
    case action::escalate:
      return "escalate";
  }
  return "?";
}

child_spec child_spec::from(std::string name, const spec::supervision_spec& s) {
  child_spec c;
  c.name = std::move(name);
  c.restart = s.restart;
  c.intensity = s.intensity;
  c.period_ns = s.period_ns;
  c.backoff = s.backoff;
  return c;
}

std::string format_time(std::int64_t ns) {
  const bool negative = ns < 0;
  const std::uint64_t abs =
      negative ? 0 - static_cast<std::uint64_t>(ns) : static_cast<std::uint64_t>(ns);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%s%llu.%03llus", negative ? "-" : "",
                static_cast<unsigned long long>(abs / 1'000'000'000),
                static_cast<unsigned long long>(abs % 1'000'000'000 / 1'000'000));
  return buf;
}

namespace {

std::string duration_text(std::int64_t ns) {
  static const struct {
    std::int64_t scale;
    const char* name;
  } units[] = {{3600'000'000'000, "h"},
               {60'000'000'000, "m"},
               {1'000'000'000, "s"},
               {1'000'000, "ms"},
               {1'000, "us"}};
  if (ns == 0) return "0s";
  for (const auto& u : units)
    if (ns % u.scale == 0) return std::to_string(ns / u.scale) + u.name;
  return std::to_string(ns) + "ns";
}

const char* verb(exit_kind k) {
  return k == exit_kind::failure ? "failed" : k == exit_kind::shutdown ? "was stopped" : "ended";
}

std::string record_line(const restart_record& r) {
  std::string line = "  at " + format_time(r.at_ns) + ": '" + r.child + "' " + verb(r.kind);
  if (!r.reason.empty()) line += " (" + r.reason + ")";
  if (r.restarted.empty()) return line + "; not restarted";
  line += "; restarted ";
  for (std::size_t i = 0; i < r.restarted.size(); ++i) line += (i ? ", " : "") + r.restarted[i];
  return line;
}

}  // namespace

std::string decision::text() const {
  std::string out = reason;
  for (const auto& r : history) out += "\n" + record_line(r);
  return out;
}

policy::policy(supervision_strategy strategy, std::vector<child_spec> children, std::uint64_t seed,
               widen_fn widen)
    : strategy_(strategy), widen_(std::move(widen)), rng_(seed) {
  children_.reserve(children.size());
  for (auto& c : children)
    children_.push_back(child_entry{std::move(c), child_state::running, {}, 0, 0, false});
}

void policy::set_widen(widen_fn widen) {
  widen_ = std::move(widen);
}

std::optional<std::size_t> policy::find(std::string_view name) const {
  for (std::size_t i = 0; i < children_.size(); ++i)
    if (children_[i].spec.name == name) return i;
  return std::nullopt;
}

bool policy::any_running() const noexcept {
  return std::any_of(children_.begin(), children_.end(),
                     [](const child_entry& c) { return c.state == child_state::running; });
}

bool policy::restarts(const child_entry& c, exit_kind kind) const noexcept {
  switch (kind) {
    case exit_kind::normal:
      return false;
    case exit_kind::shutdown:
      return c.spec.restart == restart_type::permanent;
    case exit_kind::failure:
      return c.spec.restart != restart_type::temporary;
  }
  return false;
}

std::vector<std::size_t> policy::restart_set(std::size_t child) const {
  std::vector<std::size_t> set;
  for (std::size_t i = 0; i < children_.size(); ++i) {
    const bool running = children_[i].state == child_state::running;
    const bool in =
        i == child || (running && (strategy_ == supervision_strategy::one_for_all ||
                                   (strategy_ == supervision_strategy::rest_for_one && i > child)));
    if (in) set.push_back(i);
  }
  return set;
}

double policy::jitter_factor(double jitter) {
  if (!(jitter > 0)) return 1.0;
  jitter = std::min(jitter, 1.0);
  // 53 random bits as a double in [0, 1): the same sequence on every platform for a seed.
  const double u = static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
  return 1.0 - jitter + 2.0 * jitter * u;
}

std::int64_t policy::backoff(child_entry& c, std::int64_t now_ns) {
  (void)now_ns;
  const backoff_spec& b = c.spec.backoff;
  const double multiplier = std::max(1.0, b.multiplier);
  double delay = static_cast<double>(std::max<std::int64_t>(0, b.initial_ns)) *
                 std::pow(multiplier, static_cast<double>(c.streak));
  delay = std::min(delay, static_cast<double>(std::max<std::int64_t>(0, b.max_ns)));
  delay *= jitter_factor(b.jitter);
  ++c.streak;
  return static_cast<std::int64_t>(std::llround(delay));
}

decision policy::on_exit(std::size_t child, exit_kind kind, std::int64_t now_ns,
                         std::string reason) {
  decision d;
  child_entry& c = children_.at(child);
  if (c.state != child_state::running) return d;  // already down: a late or repeated report

  // Backoff starts again after a whole period without an exit of this child.
  if (c.exited_before && now_ns - c.last_exit_ns > c.spec.period_ns) c.streak = 0;
  c.last_exit_ns = now_ns;
  c.exited_before = true;

  if (!restarts(c, kind)) {
    c.state = kind == exit_kind::normal ? child_state::ended : child_state::stopped;
    return d;
  }

  std::vector<std::size_t> set = restart_set(child);
  if (widen_) {
    set = widen_(set);
    set.push_back(child);
    set.erase(std::remove_if(set.begin(), set.end(),
                             [&](std::size_t i) { return i >= children_.size(); }),
              set.end());
    std::sort(set.begin(), set.end());
    set.erase(std::unique(set.begin(), set.end()), set.end());
  }

  for (std::size_t i : set) {
    if (i != child && children_[i].state == child_state::running) d.stop.push_back(i);
    if (i == child || children_[i].spec.restart != restart_type::temporary) d.restart.push_back(i);
  }

  restart_record record{c.spec.name, kind, reason, now_ns, {}};

  // Intensity: the exiting child is looked at first, then the others in start order.
  std::vector<std::size_t> order{child};
  for (std::size_t i : d.restart)
    if (i != child) order.push_back(i);
  for (std::size_t i : order) {
    child_entry& e = children_[i];
    const std::int64_t since = now_ns - e.spec.period_ns;
    e.restarts.erase(std::remove_if(e.restarts.begin(), e.restarts.end(),
                                    [&](std::int64_t t) { return t <= since; }),
                     e.restarts.end());
    const std::size_t would = e.restarts.size() + 1;
    if (would <= e.spec.intensity) continue;

    d.what = action::escalate;
    d.stop.clear();
    d.restart.clear();
    const std::string times = std::to_string(would) + (would == 1 ? " time" : " times");
    d.reason = "child '" + c.spec.name + "' " + verb(kind) +
               (reason.empty() ? "" : " (" + reason + ")") +
               (i == child ? std::string(" and would be restarted ")
                           : ", which would restart '" + e.spec.name + "' ") +
               times + " within " + duration_text(e.spec.period_ns) +
               ", more than its intensity (" + std::to_string(e.spec.intensity) + ") allows";
    for (const auto& r : history_)
      if (r.at_ns > since &&
          std::find(r.restarted.begin(), r.restarted.end(), e.spec.name) != r.restarted.end())
        d.history.push_back(r);
    d.history.push_back(record);
    history_.push_back(std::move(record));
    for (auto& x : children_)
      if (x.state == child_state::running) x.state = child_state::stopped;
    return d;
  }

  d.what = action::restart;
  for (std::size_t i : d.stop)
    if (children_[i].spec.restart == restart_type::temporary)
      children_[i].state = child_state::stopped;
  for (std::size_t i : d.restart) {
    children_[i].restarts.push_back(now_ns);
    children_[i].state = child_state::running;
    record.restarted.push_back(children_[i].spec.name);
  }
  d.delay_ns = backoff(c, now_ns);
  history_.push_back(std::move(record));
  // Only restarts within the longest period can ever be part of an escalation.
  std::int64_t longest = 0;
  for (const auto& x : children_) longest = std::max(longest, x.spec.period_ns);
  const auto old = std::find_if(history_.begin(), history_.end(), [&](const restart_record& r) {
    return r.at_ns > now_ns - longest;
  });
  history_.erase(history_.begin(), old);
  return d;
}

}  // namespace pel::supervision
