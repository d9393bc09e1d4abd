#pragma once
/// \file
/// A supervisor actor on CAF 0.17 monitors: starts its children in order, watches every actor
/// of every child, and applies `policy` decisions (restart after a backoff, or escalate by
/// failing, so that a parent supervisor watching it decides in turn). Include it only where
/// CAF is already used (the runtime); `policy.hpp` is the CAF-free part.

#include "pel/supervision/policy.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace pel::supervision {

/// Errors of this module, as `caf::error`s of the category `supervise`.
enum class errc : std::uint8_t {
  escalated = 1,  ///< a child exceeded its restart intensity; the context holds the text
};

/// "escalated".
const char* to_string(errc e) noexcept;

/// The `caf::error` a supervisor quits with when it escalates; `text` is `decision::text()`.
caf::error make_error(errc e, std::string text);

/// Starts one child: the group of actors it is made of, spawned in `sys`. `restart` is false
/// for the first start and true for every restart (e.g. to restore from the last
/// checkpoint). Runs inside the supervisor; an exception counts as a failure of the child,
/// and an empty group as a child that ended at once.
using child_factory = std::function<std::vector<caf::actor>(caf::actor_system& sys, bool restart)>;

/// One child of a supervisor: its restart settings and how to start it.
struct supervised_child {
  child_spec spec;
  child_factory start;
};

/// Everything a supervisor needs. The callbacks run inside the supervisor actor, one at a
/// time; they must not block.
struct supervisor_config {
  supervision_strategy strategy = supervision_strategy::one_for_one;
  std::vector<supervised_child> children;  ///< in start order
  /// How long each child may take to stop when asked (orderly shutdown, escalation, stop
  /// for a restart) before its actors are killed.
  std::int64_t shutdown_timeout_ns = 10'000'000'000;
  std::uint64_t seed = 0;  ///< seeds the backoff jitter
  widen_fn widen;          ///< widens each restart set (see `policy`)

  /// Called when a restart is decided, before the set (child indices in start order) is
  /// stopped and started again after the backoff.
  std::function<void(const std::vector<std::size_t>& set)> before_restart;
  /// Called once when the supervisor gives up, before it stops its children and quits with
  /// `make_error(errc::escalated, ...)`.
  std::function<void(const std::string& reason, const std::vector<restart_record>& history)>
      on_escalate;
  /// Called when an orderly shutdown has stopped every child; the supervisor then quits with
  /// `exit_reason::user_shutdown`.
  std::function<void()> on_shutdown_done;
  /// Called when no child runs any more and no restart is pending (every child ended its
  /// stream or is not restarted); the supervisor then quits normally.
  std::function<void()> on_all_ended;
  /// Told of every child exit the supervisor acts on (logging, metrics, tests).
  std::function<void(std::size_t child, exit_kind kind, const std::string& reason)> on_child_exit;
};

/// Spawns a supervisor, which starts its children in order at once.
///
/// - A child's actors are all monitored. A down whose reason is `normal` ends an actor; the
///   child has ended (`exit_kind::normal`) when all of them have. `user_shutdown` is
///   `exit_kind::shutdown`, anything else `failure` (with the rendered reason); either stops
///   the rest of the child's actors.
/// - A restart stops the set's actors in reverse start order (demonitored first, with
///   `user_shutdown`, killed after `shutdown_timeout_ns`), waits the backoff (a delayed
///   message), then calls the factories in start order with `restart = true`.
/// - Shutdown: an exit message (other than normal or kill), e.g. from `request_shutdown` or a parent
///   supervisor, stops the children in reverse start order, one at a time, each with
///   `user_shutdown`, killed when not down within `shutdown_timeout_ns`.
/// - If the supervisor itself is killed, it kills the actors of its children on the way out.
caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_config cfg);

/// Asks `supervisor` for an orderly shutdown (an exit message with `user_shutdown`).
void request_shutdown(const caf::actor& supervisor);

/// How a down or exit reason maps to an `exit_kind`: none or `normal` → normal,
/// `user_shutdown` → shutdown, anything else → failure.
exit_kind kind_of(const caf::error& reason);

}  // namespace pel::supervision
