// The DS2 policy: per unit, the true rate (records per busy second of one instance) and the
// rate it must sustain (sources' offered rates and backlogs carried downstream by each unit's
// selectivity) give the parallelism at the target utilisation. Scale-out is one step on a
// persistent overload; scale-in waits until the lower need has held for the scale-in delay
// and is bounded per step. The rule and its constants are described in the README.
#include "format.hpp"
#include "pel/scaling/policy.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <utility>

namespace pel::scaling {
namespace {

/// Samples averaged for the smoothed figures (need, true rate, utilisation).
constexpr std::size_t smoothing_samples = 5;
/// Consecutive overloaded samples before a scale-out (the smoothed figure must be overloaded
/// too): a few noisy samples are not a trend.
constexpr std::size_t overload_samples = 3;
/// Busy fraction from which a true rate is trusted: below it, the fixed overheads in the busy
/// time (polls, timers, batching) make records per busy second too low.
constexpr double trust_busy = 0.1;
/// Less busy time than this over the window is too little data for any rate.
constexpr double min_busy_s = 1e-3;

/// One sample of one unit, with the need the pipeline puts on it at that sample.
struct observation {
  std::int64_t at_ns = 0;
  double interval_s = 1;
  std::uint32_t parallelism = 1;
  double records_in = 0;
  double records_out = 0;
  double busy_s = 0;
  double idle_s = 0;
  double backpressure_s = 0;
  double offered_rate = -1;
  double backlog = -1;
  double need = -1;  ///< records per second it must take in; negative when unknown
};

/// The figures of a unit over its smoothing window.
struct window_figures {
  double need = -1;         ///< mean need, records per second
  double observed = 0;      ///< records_in per second
  double true_rate = -1;    ///< records per busy second of one instance, as used
  double measured = -1;     ///< the same, as measured over the window
  double busy = 0;          ///< busy fraction of the instances' time
  double backpressure = 0;  ///< backpressured fraction
  double selectivity = -1;
  bool trusted = false;  ///< measured at a busy fraction where it can be believed
};

struct unit_state {
  bool changed = false;
  std::int64_t changed_at_ns = 0;  ///< last decision or applied()
  std::uint32_t parallelism = 0;   ///< as in the last sample
  std::deque<observation> window;  ///< since the last change, newest last
  double trusted_rate = -1;        ///< last true rate measured at busy >= trust_busy
  double selectivity = -1;         ///< last known records_out / records_in
  double previous_backlog = -1;
  std::int64_t low_since_ns = -1;  ///< first sample of the current run of lower needs
  double low_peak_need = 0;        ///< highest smoothed need during that run
};

class ds2_policy final : public policy {
public:
  explicit ds2_policy(const ds2_settings& s) : settings_(s) {}

  std::string name() const override { return "ds2"; }

  std::vector<decision> decide(const sample& s) override {
    std::map<int, std::size_t> index;  // unit id -> position in s.units
    for (std::size_t i = 0; i < s.units.size(); ++i) index.emplace(s.units[i].unit, i);

    for (const unit_sample& u : s.units) observe(s, u);
    carry_needs(s, index);

    std::vector<decision> out;
    for (const unit_sample& u : s.units) {
      decision d;
      if (decide_unit(s, u, d)) {
        forget_until(units_[u.unit], s.at_ns);
        out.push_back(std::move(d));
      }
    }
    return out;
  }

  void applied(int unit, std::uint32_t parallelism, std::int64_t at_ns) override {
    unit_state& st = units_[unit];
    forget_until(st, at_ns);
    st.parallelism = parallelism;
  }

private:
  // ---- bookkeeping --------------------------------------------------------------------

  /// A change at `at_ns`: the stabilisation window starts there, and what was measured
  /// before no longer describes the unit.
  static void forget_until(unit_state& st, std::int64_t at_ns) {
    if (!st.changed || at_ns > st.changed_at_ns) st.changed_at_ns = at_ns;
    st.changed = true;
    st.window.clear();
    st.low_since_ns = -1;
    st.low_peak_need = 0;
  }

  void observe(const sample& s, const unit_sample& u) {
    unit_state& st = units_[u.unit];
    if (st.parallelism != u.parallelism) {
      // Changed, by us or otherwise: the old samples describe another configuration.
      st.window.clear();
      st.low_since_ns = -1;
      st.parallelism = u.parallelism;
    }
    if (s.interval_s <= 0) return;
    observation o;
    o.at_ns = s.at_ns;
    o.interval_s = s.interval_s;
    o.parallelism = u.parallelism;
    o.records_in = std::max(0.0, u.records_in);
    o.records_out = std::max(0.0, u.records_out);
    o.busy_s = std::max(0.0, u.busy_s);
    o.idle_s = std::max(0.0, u.idle_s);
    o.backpressure_s = std::max(0.0, u.backpressure_s);
    o.offered_rate = u.offered_rate;
    o.backlog = u.backlog;
    st.window.push_back(o);
    while (st.window.size() > std::max(smoothing_samples, overload_samples)) {
      st.window.pop_front();
    }
  }

  /// The need of every unit at this sample: a source's offered rate (or what it read plus
  /// the backlog's growth when that is unknown) plus its backlog beyond one interval's worth
  /// spread over the catch-up time; every other unit the sum of its upstreams' needs times
  /// their selectivity, in a topological walk over the edges.
  void carry_needs(const sample& s, const std::map<int, std::size_t>& index) {
    const std::size_t n = s.units.size();
    std::vector<std::vector<std::size_t>> down(n), up(n);
    std::vector<std::size_t> pending(n, 0);
    for (const auto& [from, to] : s.edges) {
      const auto f = index.find(from);
      const auto t = index.find(to);
      if (f == index.end() || t == index.end() || f->second == t->second) continue;
      down[f->second].push_back(t->second);
      up[t->second].push_back(f->second);
      ++pending[t->second];
    }
    std::vector<double> need(n, -1);
    std::deque<std::size_t> ready;
    for (std::size_t i = 0; i < n; ++i) {
      if (pending[i] == 0) ready.push_back(i);
    }
    // Units on a cycle are never ready: their need stays unknown.
    while (!ready.empty()) {
      const std::size_t i = ready.front();
      ready.pop_front();
      need[i] = own_need(s, s.units[i], up[i], need);
      for (std::size_t d : down[i]) {
        if (--pending[d] == 0) ready.push_back(d);
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      unit_state& st = units_[s.units[i].unit];
      if (!st.window.empty() && st.window.back().at_ns == s.at_ns) st.window.back().need = need[i];
    }
  }

  double own_need(const sample& s, const unit_sample& u, const std::vector<std::size_t>& ups,
                  const std::vector<double>& need) {
    unit_state& st = units_[u.unit];
    const double interval = s.interval_s > 0 ? s.interval_s : 1;
    double total = 0;
    bool known = false;
    if (u.source) {
      double rate = u.offered_rate;
      if (rate < 0) {
        rate = std::max(0.0, u.records_in) / interval;
        // Unknown offer: a growing backlog is offered rate that was not read.
        if (u.backlog >= 0 && st.previous_backlog >= 0) {
          rate += std::max(0.0, u.backlog - st.previous_backlog) / interval;
        }
      }
      total += rate;
      if (u.backlog >= 0) {
        // A backlog of up to one interval of the offer is what polling leaves behind; only
        // what lies beyond it is to be worked off.
        const double excess = u.backlog - rate * interval;
        const double catch_up_s = std::max(1e-9, settings_.backlog_catch_up_ns * 1e-9);
        if (excess > 0) total += excess / catch_up_s;
      }
      st.previous_backlog = u.backlog;
      known = true;
    }
    for (std::size_t j : ups) {
      const unit_sample& upstream = s.units[j];
      const double sel = selectivity_of(units_[upstream.unit]);
      if (need[j] < 0 || sel < 0) return -1;
      total += need[j] * sel;
      known = true;
    }
    if (!known) total = std::max(0.0, u.records_in) / interval;  // an unconnected unit
    return total;
  }

  /// records_out / records_in over the window, else the last known.
  static double selectivity_of(unit_state& st) {
    double in = 0, out = 0;
    for (const observation& o : st.window) {
      in += o.records_in;
      out += o.records_out;
    }
    if (in > 0) st.selectivity = out / in;
    return st.selectivity;
  }

  // ---- the rule -----------------------------------------------------------------------

  /// The window's figures. The true rate is taken from the samples in which the unit was
  /// busy enough to believe it (at least `trust_busy`); when none was, the last such rate;
  /// when there never was one, what the window measured.
  window_figures figures(unit_state& st) {
    window_figures f;
    const std::size_t first =
        st.window.size() > smoothing_samples ? st.window.size() - smoothing_samples : 0;
    double in = 0, busy = 0, bp = 0, time = 0, seconds = 0, need = 0;
    double trusted_in = 0, trusted_busy = 0;
    std::size_t needs = 0;
    for (std::size_t i = first; i < st.window.size(); ++i) {
      const observation& o = st.window[i];
      const double accounted = o.busy_s + o.idle_s + o.backpressure_s;
      const double own_time = accounted > 0 ? accounted : o.parallelism * o.interval_s;
      in += o.records_in;
      busy += o.busy_s;
      bp += o.backpressure_s;
      time += own_time;
      seconds += o.interval_s;
      if (own_time > 0 && o.busy_s / own_time >= trust_busy) {
        trusted_in += o.records_in;
        trusted_busy += o.busy_s;
      }
      if (o.need >= 0) {
        need += o.need;
        ++needs;
      }
    }
    if (needs > 0) f.need = need / static_cast<double>(needs);
    f.observed = seconds > 0 ? in / seconds : 0;
    f.busy = time > 0 ? busy / time : 0;
    f.backpressure = time > 0 ? bp / time : 0;
    f.selectivity = selectivity_of(st);
    if (in > 0 && busy >= min_busy_s) f.measured = in / busy;
    if (trusted_in > 0 && trusted_busy >= min_busy_s) {
      f.trusted = true;
      st.trusted_rate = trusted_in / trusted_busy;
    }
    f.true_rate = f.trusted || st.trusted_rate > 0 ? st.trusted_rate : f.measured;
    return f;
  }

  std::uint32_t clamp(double wanted, const unit_sample& u) const {
    const double lo = std::max<std::uint32_t>(1, u.min);
    const double hi = std::max<double>(lo, u.max);
    return static_cast<std::uint32_t>(std::clamp(std::ceil(wanted), lo, hi));
  }

  bool decide_unit(const sample& s, const unit_sample& u, decision& d) {
    unit_state& st = units_[u.unit];
    if (st.window.empty() || st.window.back().at_ns != s.at_ns) return false;
    const window_figures f = figures(st);  // also remembers a trusted true rate
    if (u.min == u.max) return false;
    if (st.changed && s.at_ns - st.changed_at_ns < settings_.stabilisation_ns) return false;
    if (f.need < 0 || f.true_rate <= 0 || f.observed <= 0) return false;

    const double p = u.parallelism;
    const double target = settings_.target_utilisation > 0 ? settings_.target_utilisation : 0.7;
    const double high = target + settings_.utilisation_band;
    const double low = target - settings_.utilisation_band;
    const double utilisation = f.need / (p * f.true_rate);

    // Scale-out: the smoothed need and each of the last samples overloaded, to the
    // parallelism the last samples' mean need wants.
    if (st.window.size() >= overload_samples && utilisation > high) {
      double recent = 0;
      bool overloaded = true;
      for (std::size_t i = st.window.size() - overload_samples; i < st.window.size(); ++i) {
        const double need = st.window[i].need;
        overloaded = overloaded && need >= 0 && need / (p * f.true_rate) > high;
        recent += need;
      }
      recent /= static_cast<double>(overload_samples);
      if (overloaded) {
        st.low_since_ns = -1;
        const double wanted = recent / (f.true_rate * target);
        const std::uint32_t to = clamp(wanted, u);
        if (to <= u.parallelism) return false;
        fill(d, u, f, recent / (p * f.true_rate), recent, to);
        d.reason = "overloaded (utilisation " + fixed(recent / (p * f.true_rate), 2) + " > " +
                   fixed(high, 2) + " for " + std::to_string(overload_samples) +
                   " samples): " + arithmetic(recent, f.true_rate, target, wanted, to, u);
        return true;
      }
    }

    // Scale-in: the smoothed need below the band, every sample, for the scale-in delay.
    const std::uint32_t optimum = clamp(f.need / (f.true_rate * target), u);
    if (utilisation >= low || optimum >= u.parallelism) {
      st.low_since_ns = -1;
      return false;
    }
    if (st.low_since_ns < 0) {
      st.low_since_ns = s.at_ns;
      st.low_peak_need = f.need;
    }
    st.low_peak_need = std::max(st.low_peak_need, f.need);
    if (s.at_ns - st.low_since_ns < settings_.scale_in_delay_ns) return false;

    const double wanted = st.low_peak_need / (f.true_rate * target);
    std::uint32_t to = clamp(wanted, u);
    const double keep_fraction = std::clamp(settings_.max_scale_in, 0.0, 1.0);
    const auto keep = static_cast<std::uint32_t>(std::ceil(p * keep_fraction));
    const bool bounded = keep > to;
    to = std::max(to, keep);
    if (to >= u.parallelism) return false;
    fill(d, u, f, utilisation, st.low_peak_need, to);
    d.reason = "underused (utilisation " + fixed(utilisation, 2) + " < " + fixed(low, 2) + " for " +
               fixed((s.at_ns - st.low_since_ns) * 1e-9, 0) +
               " s): " + arithmetic(st.low_peak_need, f.true_rate, target, wanted, to, u) +
               (bounded ? ", one step keeps " + std::to_string(keep) + " of " +
                              std::to_string(u.parallelism)
                        : "");
    return true;
  }

  /// "needs 41,200 rec/s; one instance handles 12,900 rec/s busy; 41,200 / (12,900 × 0.70)
  /// = 4.6 → 5, clamped to max 4"
  static std::string arithmetic(double need, double true_rate, double target, double wanted,
                                std::uint32_t to, const unit_sample& u) {
    std::string r = "needs " + grouped(need) + " rec/s; one instance handles " +
                    grouped(true_rate) + " rec/s busy; " + grouped(need) + " / (" +
                    grouped(true_rate) + " \u00d7 " + fixed(target, 2) + ") = " + fixed(wanted, 1) +
                    " \u2192 " + fixed(std::max(1.0, std::ceil(wanted)), 0);
    if (std::ceil(wanted) > u.max && to == std::max<std::uint32_t>(u.max, 1)) {
      r += ", clamped to max " + std::to_string(u.max);
    } else if (std::ceil(wanted) < u.min && to == u.min) {
      r += ", clamped to min " + std::to_string(u.min);
    }
    return r;
  }

  static void fill(decision& d, const unit_sample& u, const window_figures& f, double utilisation,
                   double need, std::uint32_t to) {
    d.unit = u.unit;
    d.name = u.name;
    d.from = u.parallelism;
    d.to = to;
    d.inputs = "rate=" + plain(need) + " observed=" + plain(f.observed) +
               " true_rate=" + plain(f.true_rate) + " measured_true_rate=" + plain(f.measured) +
               " trusted=" + (f.trusted ? "yes" : "no") + " utilisation=" + fixed(utilisation, 2) +
               " busy=" + fixed(f.busy, 2) + " backpressure=" + fixed(f.backpressure, 2) +
               " selectivity=" + plain(f.selectivity) +
               " parallelism=" + std::to_string(u.parallelism) + " min=" + std::to_string(u.min) +
               " max=" + std::to_string(u.max);
    if (u.source) {
      d.inputs += " offered=" + plain(u.offered_rate) + " backlog=" + plain(u.backlog);
    }
  }

  ds2_settings settings_;
  std::map<int, unit_state> units_;
};

}  // namespace

std::unique_ptr<policy> make_ds2(const ds2_settings& s) {
  return std::make_unique<ds2_policy>(s);
}

}  // namespace pel::scaling
