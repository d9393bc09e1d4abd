#pragma once
/// \file
/// Erlang/OTP supervisor decisions over an ordered list of children, free of CAF: what to do
/// when a child exits (restart which children, after which delay, or give up and escalate).
/// Deterministic: the caller passes the time of every event and seeds the jitter.

#include "pel/spec/pipeline.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace pel::supervision {

using spec::backoff_spec;
using spec::restart_type;
using spec::supervision_strategy;

/// How a child ended.
enum class exit_kind {
  normal,    ///< it ended its stream: never restarted
  shutdown,  ///< it was stopped on request: restarted only when permanent
  failure,   ///< an exception, a kill, a lost node: restarted when permanent or transient
};

/// "normal", "shutdown" or "failure".
const char* to_string(exit_kind k) noexcept;

/// "one_for_one", "permanent", ... as written in YAML.
const char* to_string(supervision_strategy s) noexcept;
const char* to_string(restart_type r) noexcept;

/// One supervised child: its name (for messages) and its restart settings.
struct child_spec {
  std::string name;
  restart_type restart = restart_type::permanent;
  /// At most this many restarts of this child within `period_ns`, else escalate; 0: any
  /// restart escalates.
  std::uint32_t intensity = 5;
  std::int64_t period_ns = 60'000'000'000;
  backoff_spec backoff;

  /// A child with the restart settings of a component's (or the pipeline's) supervision block.
  static child_spec from(std::string name, const spec::supervision_spec& s);
};

/// Where a child stands, as far as the policy knows.
enum class child_state {
  running,  ///< started (or about to be restarted)
  ended,    ///< ended its stream (exit_kind::normal)
  stopped,  ///< ended for good: not restarted (temporary, transient after a shutdown, ...)
};

/// One restart the policy ordered (or refused, for the last entry of an escalation).
struct restart_record {
  std::string child;  ///< the child whose exit caused it
  exit_kind kind = exit_kind::failure;
  std::string reason;                  ///< why the child ended
  std::int64_t at_ns = 0;              ///< when (the caller's clock)
  std::vector<std::string> restarted;  ///< the children restarted for it, in start order
};

/// What the supervisor does next.
enum class action {
  restart,   ///< stop `stop`, wait `delay_ns`, start `restart` again in start order
  leave,     ///< nothing (the child stays down)
  escalate,  ///< give up: stop every child and fail, so that the parent decides
};

/// "restart", "leave" or "escalate".
const char* to_string(action a) noexcept;

/// The answer to one exit.
struct decision {
  action what = action::leave;
  /// Children still running that must be stopped first (siblings in the restart set,
  /// temporary ones included, which are then not restarted), in start order. Stop them in
  /// reverse.
  std::vector<std::size_t> stop;
  /// Children to start again after `delay_ns`, in start order.
  std::vector<std::size_t> restart;
  /// Backoff before the restart, jitter included.
  std::int64_t delay_ns = 0;
  /// On escalate: one line saying which child exceeded its intensity and why it failed.
  std::string reason;
  /// On escalate: the restarts of that child within its period, oldest first, then the exit
  /// that was one too many.
  std::vector<restart_record> history;

  /// `reason` followed by the history, one restart per line ("  at 1.250s: 'parse' failed
  /// (boom); restarted parse, out").
  std::string text() const;
};

/// Widens a restart set (child indices in start order) before it is counted, e.g. to close
/// it over data dependencies. May add any children; the result is sorted and deduplicated.
using widen_fn = std::function<std::vector<std::size_t>(const std::vector<std::size_t>&)>;

/// Supervisor decisions for an ordered list of children (their start order).
///
/// - `exit_kind::normal` is never restarted; `shutdown` only for permanent children;
///   `failure` for permanent and transient ones; temporary children never.
/// - The restart set: one_for_one the child; one_for_all every running child; rest_for_one
///   the child and the running children started after it; then `widen`, if set. Temporary
///   children in the set are stopped but not restarted.
/// - Intensity (OTP's MaxR/MaxT, per child): when a child of the set would be restarted more
///   than its `intensity` times within its sliding `period`, the policy escalates instead.
/// - Backoff: the exiting child's `initial * multiplier^k`, capped at `max`, times a random
///   factor in [1 - jitter, 1 + jitter]; k counts its restarts in a row and starts again
///   after a `period` without an exit of that child.
///
/// Not thread-safe; one supervisor owns one policy.
class policy {
public:
  /// `children` in start order; `seed` drives the jitter.
  policy(supervision_strategy strategy, std::vector<child_spec> children, std::uint64_t seed = 0,
         widen_fn widen = {});

  /// Sets the hook that widens each restart set (empty: none).
  void set_widen(widen_fn widen);

  /// Child `child` (index in start order) exited at `now_ns`; `reason` says why (for
  /// messages). A restarted child counts as running again as soon as this returns.
  decision on_exit(std::size_t child, exit_kind kind, std::int64_t now_ns, std::string reason);

  /// Number of children.
  std::size_t size() const noexcept { return children_.size(); }
  /// Settings of child `i`.
  const child_spec& child(std::size_t i) const { return children_.at(i).spec; }
  /// Index of the child called `name`.
  std::optional<std::size_t> find(std::string_view name) const;
  /// Where child `i` stands.
  child_state state(std::size_t i) const { return children_.at(i).state; }
  /// True while any child is running.
  bool any_running() const noexcept;
  /// The restarts ordered within the longest period of any child (and the escalation, if
  /// any), oldest first.
  const std::vector<restart_record>& history() const noexcept { return history_; }
  /// The strategy.
  supervision_strategy strategy() const noexcept { return strategy_; }

private:
  struct child_entry {
    child_spec spec;
    child_state state = child_state::running;
    std::vector<std::int64_t> restarts;  ///< times of its restarts within its period
    std::uint32_t streak = 0;            ///< restarts in a row (backoff exponent)
    std::int64_t last_exit_ns = 0;
    bool exited_before = false;
  };

  bool restarts(const child_entry& c, exit_kind kind) const noexcept;
  std::vector<std::size_t> restart_set(std::size_t child) const;
  std::int64_t backoff(child_entry& c, std::int64_t now_ns);
  double jitter_factor(double jitter);

  supervision_strategy strategy_;
  std::vector<child_entry> children_;
  widen_fn widen_;
  std::mt19937_64 rng_;
  std::vector<restart_record> history_;
};

/// `ns` as seconds with millisecond precision: "1.250s".
std::string format_time(std::int64_t ns);

}  // namespace pel::supervision
