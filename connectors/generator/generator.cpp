// The synthetic market / sensor source. Every record is a pure function of (seed, options,
// global index n): counter-based hashing instead of a sequential random generator, so any
// instance can produce its share directly and the output does not depend on parallelism.
#include "pel/connectors/generator.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <stdexcept>
#include <string>

namespace pel::connectors {

namespace {

// ---------------------------------------------------------------------------------------------
// Counter-based randomness

constexpr std::uint64_t salt_symbol_trades = 0x51a7e5c0ffee0001ULL;
constexpr std::uint64_t salt_symbol_quotes = 0x51a7e5c0ffee0002ULL;
constexpr std::uint64_t salt_burst = 0x51a7e5c0ffee0003ULL;
constexpr std::uint64_t salt_ooo = 0x51a7e5c0ffee0004ULL;
constexpr std::uint64_t salt_delay = 0x51a7e5c0ffee0005ULL;
constexpr std::uint64_t salt_value = 0x51a7e5c0ffee0006ULL;
constexpr std::uint64_t salt_bad = 0x51a7e5c0ffee0007ULL;
constexpr std::uint64_t salt_price_walk = 0x51a7e5c0ffee0008ULL;
constexpr std::uint64_t salt_sensor_walk = 0x51a7e5c0ffee0009ULL;
constexpr std::uint64_t salt_key_params = 0x51a7e5c0ffee000aULL;

inline std::uint64_t mix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline std::uint64_t hash3(std::uint64_t seed, std::uint64_t salt, std::uint64_t n) noexcept {
  return mix64(mix64(seed ^ salt) + n * 0xd1b54a32d192ed03ULL);
}

/// Uniform in [0, 1).
inline double u01(std::uint64_t h) noexcept {
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

/// An integer, roughly normal step: the sum of four 16-bit uniforms, centred. Integers keep
/// random walks exact whatever path (forwards, backwards, in jumps) computes them.
inline std::int64_t step_noise(std::uint64_t h) noexcept {
  std::int64_t s =
      static_cast<std::int64_t>(h & 0xffff) + static_cast<std::int64_t>((h >> 16) & 0xffff) +
      static_cast<std::int64_t>((h >> 32) & 0xffff) + static_cast<std::int64_t>(h >> 48);
  return 2 * s - 262140;  // 2 × (sum − mean), so it is symmetric around 0
}
constexpr double step_noise_std = 75674.4;  // sqrt(4 × (65536² − 1) / 12) × 2

/// A standard-normal-ish double.
inline double gauss(std::uint64_t h) noexcept {
  return static_cast<double>(step_noise(h)) / step_noise_std;
}

inline std::int64_t floor_div(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

/// A random walk W(k) = Σ_{j<k} z(j) (negative k: −Σ_{k≤j<0} z(j)) with a cached position,
/// moved step by step to the asked k. Exact in integers.
struct walk {
  std::uint64_t key_seed = 0;
  std::int64_t k = 0;
  std::int64_t w = 0;
  // Cache of the mid prices at the ends of step `mid_k` (prices only).
  std::int64_t mid_k = INT64_MIN;
  double mid_lo = 0;
  double mid_hi = 0;

  std::int64_t z(std::int64_t j) const noexcept {
    return step_noise(mix64(key_seed + static_cast<std::uint64_t>(j) * 0x9e3779b97f4a7c15ULL));
  }
  std::int64_t at(std::int64_t target) noexcept {
    while (k < target) w += z(k++);
    while (k > target) w -= z(--k);
    return w;
  }
};

std::uint64_t walk_seed(std::uint64_t seed, std::uint64_t salt, std::uint32_t key) noexcept {
  return mix64(mix64(seed ^ salt) ^ mix64(key + 1));
}

// ---------------------------------------------------------------------------------------------
// Symbols and their price processes

struct known_symbol {
  const char* name;
  double price;
};

constexpr known_symbol known_symbols[] = {
    {"AAPL", 185.0}, {"MSFT", 370.0}, {"AMZN", 150.0},  {"GOOGL", 140.0}, {"META", 350.0},
    {"NVDA", 480.0}, {"TSLA", 240.0}, {"BRK.B", 360.0}, {"JPM", 170.0},   {"V", 260.0},
    {"JNJ", 160.0},  {"WMT", 160.0},  {"PG", 148.0},    {"MA", 425.0},    {"UNH", 530.0},
    {"HD", 350.0},   {"XOM", 100.0},  {"BAC", 33.0},    {"KO", 60.0},     {"PEP", 170.0},
    {"ABBV", 155.0}, {"CVX", 150.0},  {"MRK", 108.0},   {"COST", 660.0},  {"AVGO", 1100.0},
    {"ADBE", 590.0}, {"CRM", 260.0},  {"NFLX", 470.0},  {"AMD", 140.0},   {"INTC", 48.0},
    {"CSCO", 50.0},  {"ORCL", 105.0}, {"DIS", 90.0},    {"NKE", 105.0},   {"MCD", 290.0},
    {"T", 17.0},     {"VZ", 38.0},    {"PFE", 29.0},    {"CMCSA", 44.0},  {"QCOM", 145.0},
    {"TXN", 170.0},  {"IBM", 160.0},  {"GS", 385.0},    {"MS", 93.0},     {"BA", 250.0},
    {"CAT", 290.0},  {"GE", 125.0},   {"SBUX", 94.0},   {"PYPL", 61.0},   {"UBER", 62.0},
};
constexpr std::uint32_t known_count = sizeof(known_symbols) / sizeof(known_symbols[0]);

/// Seconds in a trading year (252 days of 6.5 hours): scales annual volatility to one step.
constexpr double trading_seconds_per_year = 252.0 * 6.5 * 3600.0;

struct symbol_model {
  double base = 100;       ///< price at the start time
  double sigma = 0;        ///< log-return per unit of the integer walk
  double half_spread = 0;  ///< relative half spread
};

symbol_model model_of(std::uint64_t seed, std::uint32_t s) {
  std::uint64_t h = hash3(seed, salt_key_params, s);
  symbol_model m;
  if (s < known_count) {
    m.base = known_symbols[s].price;
  } else {
    m.base = std::round(std::exp(std::log(5.0) + u01(h) * std::log(100.0)) * 100.0) / 100.0;
  }
  double annual_vol = 0.15 + 0.45 * u01(mix64(h));
  m.sigma = annual_vol / std::sqrt(trading_seconds_per_year) / step_noise_std;
  m.half_spread = (1.0 + 4.0 * u01(mix64(h + 1))) * 0.5e-4;  // 1 to 5 bps wide
  return m;
}

/// The mid price from a walk positioned anywhere (the walk is moved): the walk's prices at
/// the two whole seconds around `ts_ms`, interpolated linearly. Cached per second, so most
/// records cost no exp().
double mid_from(const symbol_model& m, walk& w, std::int64_t start_ms, std::int64_t ts_ms) {
  std::int64_t off = ts_ms - start_ms;
  std::int64_t k = floor_div(off, 1000);
  if (w.mid_k != k) {
    std::int64_t wk = w.at(k);
    w.mid_lo = m.base * std::exp(m.sigma * static_cast<double>(wk));
    w.mid_hi = m.base * std::exp(m.sigma * static_cast<double>(wk + w.z(k)));
    w.mid_k = k;
  }
  double frac = static_cast<double>(off - k * 1000) / 1000.0;
  return w.mid_lo + frac * (w.mid_hi - w.mid_lo);
}

// ---------------------------------------------------------------------------------------------
// The source

/// A rate schedule as a piecewise-linear map between the global record index and schedule
/// time: step k starts at record `first[k]` and second `start[k]` and runs at `per_second[k]`.
/// A function of the options only, so every instance and every run agree on it.
class rate_map {
public:
  explicit rate_map(const std::vector<generator_rate_step>& steps) {
    double n = 0, s = 0;
    for (const auto& st : steps) {
      first_.push_back(n);
      start_.push_back(s);
      per_second_.push_back(st.per_second);
      const double secs = static_cast<double>(st.for_ns) / 1e9;
      n += secs * st.per_second;
      s += secs;
    }
  }
  bool empty() const noexcept { return per_second_.empty(); }
  /// Schedule time (s) at which the record at position `n` (fractional) is due.
  double seconds_at(double n) const noexcept {
    const std::size_t k = step(first_, n);
    return start_[k] + (n - first_[k]) / per_second_[k];
  }
  /// Records due (fractional) by schedule time `s`.
  double records_at(double s) const noexcept {
    const std::size_t k = step(start_, s);
    return first_[k] + (s - start_[k]) * per_second_[k];
  }
  /// Records per second over all instances at schedule time `s`.
  double rate_at(double s) const noexcept { return per_second_[step(start_, s)]; }

private:
  /// The last step whose start (in `starts`) is at or before `x`.
  static std::size_t step(const std::vector<double>& starts, double x) noexcept {
    auto it = std::upper_bound(starts.begin(), starts.end(), x);
    return it == starts.begin() ? 0 : static_cast<std::size_t>(it - starts.begin()) - 1;
  }
  std::vector<double> first_, start_, per_second_;
};

class generator_source final : public core::source_base {
public:
  explicit generator_source(generator_options o)
    : opt_(o), schema_(generator_schema(o.profile)), schedule_(opt_.rate_schedule) {
    width_ = static_cast<std::uint32_t>(schema_->size());
    const bool sensors = opt_.profile == generator_profile::sensors;
    const std::uint32_t keys = sensors ? opt_.devices : opt_.symbols;
    names_.reserve(keys);
    models_.reserve(keys);
    walks_.resize(keys);
    char buf[32];
    for (std::uint32_t i = 0; i < keys; ++i) {
      if (sensors) {
        std::snprintf(buf, sizeof buf, "sensor-%04u", i);
        names_.emplace_back(buf);
      } else {
        names_.push_back(generator_symbol_name(i));
      }
      models_.push_back(model_of(opt_.seed, i));
      walks_[i].key_seed = walk_seed(opt_.seed, sensors ? salt_sensor_walk : salt_price_walk, i);
    }
    symbol_salt_ =
        opt_.profile == generator_profile::quotes ? salt_symbol_quotes : salt_symbol_trades;
    configure(0, 1);
  }

  core::schema_ptr output_schema() const override { return schema_; }

  void open(const core::operator_context& ctx) override {
    configure(ctx.instance, std::max<std::uint32_t>(1, ctx.parallelism));
    if (opt_.preload) {
      preloaded_ = core::batch(width_);
      if (opt_.count > 0) preloaded_.reserve(opt_.count / parallelism_ + 1);
      std::uint64_t n;
      std::int64_t base;
      while (next(n, base)) {
        core::value* row = preloaded_.append(0);
        preloaded_.times.back() = fill(n, base, row);
      }
      replay_ = 0;
      done_ = false;
    }
  }

  core::poll_status poll(core::outputs& out, std::size_t max_rows) override {
    if (done_) return core::poll_status::end;
    if (out.main.width == 0) out.main.width = width_;
    std::size_t budget = max_rows;
    if (!schedule_.empty()) {
      // Pace on the wall clock by the schedule: from the first poll (or the restore), the
      // schedule runs on from the step of this instance's next index.
      const std::int64_t now = core::steady_ns();
      if (t0_ < 0) start_pacing(now);
      const double allowed = due(now) - static_cast<double>(paced_);
      if (allowed < 1.0) return core::poll_status::idle;
      budget = std::min<double>(static_cast<double>(budget), allowed);
    } else if (opt_.rate > 0) {
      // Pace on the wall clock: record k (0-based) may go out (k / rate) s after the first
      // poll. Ahead of schedule means idle, never a sleep.
      std::int64_t now = core::steady_ns();
      if (t0_ < 0) t0_ = now;
      double due = std::floor(static_cast<double>(now - t0_) * opt_.rate / 1e9) + 1.0;
      double allowed = due - static_cast<double>(paced_);
      if (allowed < 1.0) return core::poll_status::idle;
      budget = std::min<double>(static_cast<double>(budget), allowed);
    }
    std::size_t made = 0;
    if (opt_.preload && budget > 0) {
      // Replay a whole range at once.
      std::size_t n = std::min(budget, preloaded_.size() - replay_);
      auto first = preloaded_.cells.begin() + static_cast<std::ptrdiff_t>(replay_ * width_);
      out.main.cells.insert(
          out.main.cells.end(), std::make_move_iterator(first),
          std::make_move_iterator(first + static_cast<std::ptrdiff_t>(n * width_)));
      out.main.times.insert(out.main.times.end(),
                            preloaded_.times.begin() + static_cast<std::ptrdiff_t>(replay_),
                            preloaded_.times.begin() + static_cast<std::ptrdiff_t>(replay_ + n));
      replay_ += n;
      made = n;
      emitted_ += n;
      paced_ += n;
      if (replay_ >= preloaded_.size()) done_ = true;
    }
    while (made < budget) {
      if (opt_.preload) break;  // replayed above
      std::uint64_t n;
      std::int64_t base;
      if (!next(n, base)) {
        done_ = true;
        break;
      }
      core::value* row = out.main.append(0);
      out.main.times.back() = fill(n, base, row);
      ++made;
      ++emitted_;
      ++paced_;
    }
    if (made == 0 && done_) {
      preloaded_ = core::batch(width_);  // free the replay memory
      return core::poll_status::end;
    }
    return core::poll_status::data;
  }

  /// This instance's paced rate now (the current step of a schedule, else `rate`) and the
  /// records due by the clock but not emitted yet; both -1 when unpaced.
  load offered() const override {
    load l;
    if (schedule_.empty() && opt_.rate <= 0) return l;
    const std::int64_t now = core::steady_ns();
    if (schedule_.empty()) {
      l.rate = opt_.rate;
      const double due =
          t0_ < 0 ? 0.0 : std::floor(static_cast<double>(now - t0_) * opt_.rate / 1e9) + 1.0;
      l.backlog = done_ ? 0.0 : std::max(0.0, due - static_cast<double>(paced_));
      return l;
    }
    const double s = t0_ < 0 ? schedule_.seconds_at(static_cast<double>(position()))
                             : s0_ + static_cast<double>(now - t0_) / 1e9;
    l.rate = schedule_.rate_at(s) / parallelism_;
    l.backlog =
        t0_ < 0 || done_ ? 0.0 : std::max(0.0, due(now, true) - static_cast<double>(paced_));
    return l;
  }

  void progress(std::uint64_t& done, std::uint64_t& total) const override {
    done = emitted_;
    total = opt_.count > 0
                ? (opt_.count - std::min<std::uint64_t>(opt_.count, instance_) + parallelism_ - 1) /
                      parallelism_
                : 0;
  }

  // -- checkpoints ---------------------------------------------------------------------------

  /// Every record is a function of its global index, so the position is the next index.
  bool replayable() const override { return true; }

  /// Version, then the instance and parallelism it was taken at, the next global index, the
  /// records emitted so far and the event-time origin (a check: the options must not change).
  void snapshot(core::state_writer& w) override {
    w.put<std::uint32_t>(snapshot_version);
    w.put<std::uint32_t>(instance_);
    w.put<std::uint32_t>(parallelism_);
    // Preloading ran the index to the end at open: the position is the replay's.
    w.put<std::uint64_t>(opt_.preload ? instance_ + std::uint64_t{replay_} * parallelism_
                                      : next_n_);
    w.put<std::uint64_t>(emitted_);
    w.put<std::int64_t>(opt_.start_ms);
    w.put<std::uint64_t>(opt_.seed);
  }

  /// Goes on at the snapshot's next index: the rows after a restore are those an
  /// uninterrupted run gives (same values, same event times). Pacing (`rate`) starts again
  /// from now, so a restored generator does not burst to catch up on the time it was down.
  void restore(core::state_reader& r) override {
    auto version = r.get<std::uint32_t>();
    if (version != snapshot_version)
      throw std::runtime_error("generator: cannot restore a snapshot of version " +
                               std::to_string(version) + " (this build reads version " +
                               std::to_string(snapshot_version) + ")");
    auto instance = r.get<std::uint32_t>();
    auto parallelism = r.get<std::uint32_t>();
    auto next_n = r.get<std::uint64_t>();
    auto emitted = r.get<std::uint64_t>();
    auto start_ms = r.get<std::int64_t>();
    auto seed = r.get<std::uint64_t>();
    if (instance != instance_ || parallelism != parallelism_)
      throw std::runtime_error(
          "generator: the checkpoint was taken by instance " + std::to_string(instance) + " of " +
          std::to_string(parallelism) + ", not " + std::to_string(instance_) + " of " +
          std::to_string(parallelism_) + "; restore with the parallelism it was taken at");
    if (start_ms != opt_.start_ms || seed != opt_.seed)
      throw std::runtime_error(
          "generator: `seed` or `start_time` changed since the checkpoint, so its position "
          "would continue other records; put them back or start without the checkpoint");
    if (next_n % parallelism_ != instance_ % parallelism_)
      throw std::runtime_error("generator: the snapshot's next index " + std::to_string(next_n) +
                               " does not belong to instance " + std::to_string(instance_));
    next_n_ = next_n;
    emitted_ = emitted;
    paced_ = 0;
    t0_ = -1;
    done_ = false;
    if (opt_.preload) {
      // The preloaded rows are this instance's indices in order.
      replay_ = static_cast<std::size_t>(
          std::min<std::uint64_t>((next_n - instance_) / parallelism_, preloaded_.size()));
      done_ = replay_ >= preloaded_.size();
    }
  }

private:
  static constexpr std::uint32_t snapshot_version = 1;

  /// The global index of this instance's next record (during a replay, the replay's).
  std::uint64_t position() const noexcept {
    return opt_.preload ? instance_ + std::uint64_t{replay_} * parallelism_ : next_n_;
  }

  /// Starts pacing by the schedule at `now` from this instance's next index.
  void start_pacing(std::int64_t now) {
    t0_ = now;
    s0_ = schedule_.seconds_at(static_cast<double>(position()));
    // Counted from the schedule's own value at the start, so that the first record is due
    // at once whatever the rounding of the way there and back.
    g0_ = schedule_.records_at(s0_);
  }

  /// This instance's records due by `now` since pacing started (schedule): its share of the
  /// records the schedule has reached since then. With `bounded`, none past `count` (for
  /// the backlog; pacing itself must go on to find the end).
  double due(std::int64_t now, bool bounded = false) const noexcept {
    double global = schedule_.records_at(s0_ + static_cast<double>(now - t0_) / 1e9);
    double due = std::max(0.0, std::floor((global - g0_) / parallelism_ + 1e-9) + 1.0);
    if (bounded && opt_.count > 0) {
      const std::uint64_t pos = position();
      const double left = pos >= opt_.count ? 0.0
                                            : std::ceil(static_cast<double>(opt_.count - pos) /
                                                        parallelism_);
      due = std::min(due, static_cast<double>(paced_) + left);
    }
    return due;
  }

  void configure(std::uint32_t instance, std::uint32_t parallelism) {
    instance_ = instance;
    parallelism_ = parallelism;
    next_n_ = instance;
    double event_rate =
        opt_.event_rate > 0 ? opt_.event_rate : (opt_.rate > 0 ? opt_.rate * parallelism : 1000.0);
    dt_ns_ = 1e9 / event_rate;
    // A schedule sets the pace of event time too (unless `event_rate` is given).
    event_by_schedule_ = !schedule_.empty() && opt_.event_rate <= 0;
    // Offsets from the start up to here keep the event time within int64 nanoseconds.
    max_off_ns_ = static_cast<double>(INT64_MAX) - static_cast<double>(opt_.start_ms) * 1e6 - 1e9;
  }

  /// The next global index of this instance and its base event time (ns), or false when the
  /// instance has produced its share.
  bool next(std::uint64_t& n, std::int64_t& base_ns) {
    n = next_n_;
    if (opt_.count > 0 && n >= opt_.count) return false;
    // Arrivals come in cycles of 64 records; within a cycle they bunch towards its start
    // (x ↦ x / (A − (A−1)·x), convex for a random A ≥ 1 per cycle), more so with higher
    // burstiness. The time is non-decreasing in n and the mean rate is unchanged.
    constexpr std::uint64_t cycle = 64;
    std::uint64_t c = n / cycle, j = n % cycle;
    if (c != burst_cycle_) {
      burst_cycle_ = c;
      burst_a_ = 1.0 + 15.0 * opt_.burstiness * u01(hash3(opt_.seed, salt_burst, c));
    }
    double x = static_cast<double>(j) / cycle;
    double pos = static_cast<double>(c * cycle) +
                 static_cast<double>(cycle) * (x / (burst_a_ - (burst_a_ - 1.0) * x));
    double off = event_by_schedule_ ? schedule_.seconds_at(pos) * 1e9 : dt_ns_ * pos;
    if (opt_.duration_ns > 0 && off >= static_cast<double>(opt_.duration_ns)) return false;
    if (off >= max_off_ns_) return false;  // past 2262: no later event time can be written
    base_ns = opt_.start_ms * 1'000'000 + static_cast<std::int64_t>(off);
    next_n_ += parallelism_;
    return true;
  }

  /// Fills the row of record `n`; returns its event time (ns) = ts (ms) × 1e6.
  std::int64_t fill(std::uint64_t n, std::int64_t base_ns, core::value* row) {
    std::int64_t ts = floor_div(base_ns, 1'000'000);
    if (opt_.out_of_order > 0 && u01(hash3(opt_.seed, salt_ooo, n)) < opt_.out_of_order) {
      auto max_ms = static_cast<double>(opt_.max_delay_ns / 1'000'000);
      ts -= static_cast<std::int64_t>(u01(hash3(opt_.seed, salt_delay, n)) * max_ms);
    }
    row[0] = ts;
    const std::uint64_t r = hash3(opt_.seed, salt_value, n);
    switch (opt_.profile) {
      case generator_profile::trades:
        fill_trade(n, ts, r, row);
        break;
      case generator_profile::quotes:
        fill_quote(n, ts, r, row);
        break;
      case generator_profile::sensors:
        fill_sensor(n, ts, r, row);
        break;
    }
    return ts * 1'000'000;
  }

  std::uint32_t symbol_of(std::uint64_t n) const noexcept {
    return static_cast<std::uint32_t>(hash3(opt_.seed, symbol_salt_, n) % opt_.symbols);
  }

  void fill_trade(std::uint64_t n, std::int64_t ts, std::uint64_t r, core::value* row) {
    std::uint32_t s = symbol_of(n);
    const auto& m = models_[s];
    double mid = mid_from(m, walks_[s], opt_.start_ms, ts);
    double half = std::max(mid * m.half_spread, 0.005);
    double u = u01(r);
    std::int64_t cents = std::llround((mid + half * (2.0 * u - 1.0)) * 100.0);
    std::uint64_t r2 = mix64(r);
    std::int64_t qty;
    if (u01(r2) < 0.25)
      qty = 100 * static_cast<std::int64_t>(1 + (r2 >> 20) % 10);  // round lots
    else
      qty = 1 + static_cast<std::int64_t>(std::pow(u01(mix64(r2)), 3.0) * 299.0);  // odd lots
    row[1] = names_[s];
    row[2] = static_cast<double>(cents) / 100.0;
    row[3] = qty;
    row[4] = u >= 0.5 ? buy_ : sell_;
    row[5] = static_cast<std::int64_t>(n + 1);
  }

  void fill_quote(std::uint64_t n, std::int64_t ts, std::uint64_t r, core::value* row) {
    std::uint32_t s = symbol_of(n);
    const auto& m = models_[s];
    double mid = mid_from(m, walks_[s], opt_.start_ms, ts);
    double half = std::max(mid * m.half_spread, 0.005);
    auto bid = static_cast<std::int64_t>(std::floor((mid - half) * 100.0));
    auto ask = static_cast<std::int64_t>(std::ceil((mid + half) * 100.0));
    if (ask <= bid) ask = bid + 1;
    row[1] = names_[s];
    row[2] = static_cast<double>(bid) / 100.0;
    row[3] = static_cast<double>(ask) / 100.0;
    row[4] = static_cast<std::int64_t>(100 * (1 + r % 20));
    row[5] = static_cast<std::int64_t>(100 * (1 + (r >> 8) % 20));
  }

  void fill_sensor(std::uint64_t n, std::int64_t ts, std::uint64_t r, core::value* row) {
    auto d = static_cast<std::uint32_t>(n % opt_.devices);
    std::uint64_t dh = hash3(opt_.seed, salt_key_params, d);
    double base_t = 18.0 + 8.0 * u01(dh);
    double base_h = 35.0 + 25.0 * u01(mix64(dh));
    double phase = 6.283185307179586 * u01(mix64(dh + 7));
    std::int64_t off = ts - opt_.start_ms;
    double drift = 0.02 * static_cast<double>(walks_[d].at(floor_div(off, 1000))) / step_noise_std;
    double day = 6.283185307179586 *
                 static_cast<double>(((ts % 86'400'000) + 86'400'000) % 86'400'000) / 86'400'000.0;
    double temp = base_t + 4.0 * std::sin(day + phase) + drift + 0.2 * gauss(r);
    double hum = base_h - 1.2 * (temp - base_t) + gauss(mix64(r));
    hum = std::clamp(hum, 5.0, 100.0);
    row[1] = names_[d];
    row[2] = std::round(temp * 100.0) / 100.0;
    row[3] = std::round(hum * 10.0) / 10.0;
    row[4] = std::string(temp > base_t + 5.0 ? "warn" : "ok");
    std::uint64_t b = hash3(opt_.seed, salt_bad, n);
    if (opt_.bad_records > 0 && u01(b) < opt_.bad_records) {
      switch ((b >> 8) % 4) {
        case 0:
          row[2] = core::value{};
          break;
        case 1:
          row[2] = std::nan("");
          break;
        case 2:
          row[2] = std::string("ERR");
          break;
        default:
          row[2] = ((b >> 16) & 1) ? -(100.0 + std::round(u01(mix64(b)) * 17315.0) / 100.0)
                                   : 200.0 + std::round(u01(mix64(b)) * 80000.0) / 100.0;
          break;
      }
    }
  }

  generator_options opt_;
  core::schema_ptr schema_;
  std::uint32_t width_ = 0;
  std::vector<std::string> names_;
  std::vector<symbol_model> models_;
  std::vector<walk> walks_;
  std::uint64_t symbol_salt_ = 0;
  const core::value buy_{std::string("buy")};
  const core::value sell_{std::string("sell")};

  std::uint32_t instance_ = 0;
  std::uint32_t parallelism_ = 1;
  std::uint64_t next_n_ = 0;
  double dt_ns_ = 1e6;
  double max_off_ns_ = 9e18;
  std::uint64_t burst_cycle_ = UINT64_MAX;
  double burst_a_ = 1.0;

  std::uint64_t emitted_ = 0;
  std::uint64_t paced_ = 0;  ///< records emitted since `t0_` (pacing restarts on restore)
  std::int64_t t0_ = -1;
  const rate_map schedule_;
  bool event_by_schedule_ = false;
  double s0_ = 0;  ///< schedule: the schedule time (s) of the index pacing started at
  double g0_ = 0;  ///< schedule: the records due by then (the schedule's count at `s0_`)
  bool done_ = false;
  core::batch preloaded_;
  std::size_t replay_ = 0;
};

}  // namespace

std::string generator_symbol_name(std::uint32_t i) {
  if (i < known_count) return known_symbols[i].name;
  char buf[16];
  std::snprintf(buf, sizeof buf, "SYM%04u", i);
  return buf;
}

double generator_mid_price(std::uint64_t seed, std::uint32_t symbol, std::int64_t start_ms,
                           std::int64_t ts_ms) {
  walk w;
  w.key_seed = walk_seed(seed, salt_price_walk, symbol);
  return mid_from(model_of(seed, symbol), w, start_ms, ts_ms);
}

core::schema_ptr generator_schema(generator_profile p) {
  using core::value_type;
  std::vector<core::field> f;
  switch (p) {
    case generator_profile::trades:
      f = {{"ts", value_type::integer},   {"symbol", value_type::string},
           {"price", value_type::number}, {"qty", value_type::integer},
           {"side", value_type::string},  {"trade_id", value_type::integer}};
      break;
    case generator_profile::quotes:
      f = {{"ts", value_type::integer},       {"symbol", value_type::string},
           {"bid", value_type::number},       {"ask", value_type::number},
           {"bid_size", value_type::integer}, {"ask_size", value_type::integer}};
      break;
    case generator_profile::sensors:
      f = {{"ts", value_type::integer},
           {"device", value_type::string},
           {"temperature", value_type::number},
           {"humidity", value_type::number},
           {"status", value_type::string}};
      break;
  }
  return std::make_shared<core::schema>(std::move(f));
}

core::source_ptr make_generator(const generator_options& opt) {
  return std::make_unique<generator_source>(opt);
}

// ---------------------------------------------------------------------------------------------
// ISO-8601

namespace {

std::int64_t days_from_civil(std::int64_t y, int m, int d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<std::int64_t>(y - era * 400);
  const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

bool digits(std::string_view t, std::size_t pos, std::size_t n, int& out) noexcept {
  if (pos + n > t.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (t[i] < '0' || t[i] > '9') return false;
    out = out * 10 + (t[i] - '0');
  }
  return true;
}

}  // namespace

bool parse_iso8601_ms(std::string_view t, std::int64_t& ms) noexcept {
  int y, mo, d, h = 0, mi = 0, s = 0, frac_ms = 0;
  if (!digits(t, 0, 4, y) || t.size() < 10 || t[4] != '-' || !digits(t, 5, 2, mo) || t[7] != '-' ||
      !digits(t, 8, 2, d))
    return false;
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return false;
  std::size_t p = 10;
  std::int64_t tz_min = 0;
  if (p < t.size()) {
    if (t[p] != 'T' && t[p] != ' ') return false;
    if (!digits(t, p + 1, 2, h) || p + 3 >= t.size() || t[p + 3] != ':' || !digits(t, p + 4, 2, mi))
      return false;
    p += 6;
    if (p < t.size() && t[p] == ':') {
      if (!digits(t, p + 1, 2, s)) return false;
      p += 3;
      if (p < t.size() && t[p] == '.') {
        ++p;
        int scale = 100, nd = 0;
        while (p < t.size() && t[p] >= '0' && t[p] <= '9') {
          frac_ms += (t[p] - '0') * scale;
          scale /= 10;
          ++p;
          ++nd;
        }
        if (nd == 0) return false;
      }
    }
    if (h > 23 || mi > 59 || s > 60) return false;
    if (p < t.size()) {
      if (t[p] == 'Z' && p + 1 == t.size()) {
        ++p;
      } else if (t[p] == '+' || t[p] == '-') {
        int th, tm;
        if (!digits(t, p + 1, 2, th) || p + 3 >= t.size() || t[p + 3] != ':' ||
            !digits(t, p + 4, 2, tm) || p + 6 != t.size())
          return false;
        tz_min = (t[p] == '+' ? 1 : -1) * (th * 60 + tm);
        p += 6;
      } else {
        return false;
      }
    }
  }
  if (p != t.size()) return false;
  std::int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - tz_min * 60;
  ms = secs * 1000 + frac_ms;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Parameters

std::vector<spec::param> generator_params() {
  using spec::param;
  return {
      param::string("profile")
          .one_of({"trades", "quotes", "sensors"})
          .def("trades")
          .doc("What to generate. `trades`: ts, symbol, price, qty, side, trade_id. `quotes`: ts, "
               "symbol, bid, ask, bid_size, ask_size. `sensors`: ts, device, temperature, "
               "humidity, status."),
      param::integer("symbols").min(1).max(1000000).def("100").doc(
          "Distinct symbols (trades, quotes): real tickers first (AAPL, MSFT, ...; 50 of "
          "them), then SYM0050, SYM0051, ..."),
      param::integer("devices").min(1).max(1000000).def("100").doc(
          "Distinct devices (sensors), named sensor-0000, sensor-0001, ...; they report in "
          "turn."),
      param::number("rate").min(0).def("0").or_list({
          param::duration("for").doc(
              "How long the step lasts at its rate: it covers the next `for` × `per_second` "
              "records. Required except on the last step, which holds until `count` (or "
              "forever)."),
          param::number("per_second").req().min(0.001).doc(
              "Records per second over all instances (each instance paces `per_second` / its "
              "parallelism)."),
      }).doc(
          "Records per second per instance on the wall clock; 0 generates as fast as the "
          "pipeline takes them. Or a schedule of steps over all instances, e.g. "
          "`[{for: 20s, per_second: 200000}, {per_second: 50000}]`: which step a record falls "
          "in follows from its index, so rows and event times do not depend on the clock, and "
          "event time advances at the schedule's rate (unless `event_rate` is set)."),
      param::number("event_rate")
          .min(0)
          .def("0")
          .doc("Records per second of event time over all instances. 0: the schedule's rate when "
               "`rate` is a schedule, `rate` × parallelism when it is a number (event time keeps "
               "pace with the clock), else 1000."),
      param::integer("count").min(0).def("0").doc(
          "Records to generate over all instances; 0 is unbounded. A bounded generator ends "
          "its stream."),
      param::duration("duration").doc("Stop after this much event time (from `start_time`)."),
      param::integer("seed").min(0).def("42").doc(
          "Random seed. The same seed and settings give the same records at any parallelism."),
      param::string("start_time")
          .def("2024-01-02T14:30:00Z")
          .doc("Event time of the first record, ISO-8601 (`2024-01-02T14:30:00Z`)."),
      param::number("out_of_order")
          .min(0)
          .max(1)
          .def("0")
          .doc("Fraction of records whose timestamp is moved back by up to `max_delay`."),
      param::duration("max_delay")
          .def("500ms")
          .doc("How far back an out-of-order record's timestamp may be (use it for "
               "`event_time.max_out_of_orderness`)."),
      param::number("burstiness")
          .min(0)
          .max(1)
          .def("0.3")
          .doc("0 spaces records evenly in event time; towards 1 they arrive in clusters (the "
               "mean rate stays the same)."),
      param::number("bad_records")
          .min(0)
          .max(1)
          .def("0")
          .doc("Sensors: fraction of readings whose temperature is bad: null, NaN, the string "
               "\"ERR\", or an absurd spike (below -100 or above 200)."),
      param::boolean("preload").def("false").doc(
          "Generate this instance's `count` records into memory at start and replay them, so "
          "a benchmark measures the pipeline, not the random generator. Needs `count`."),
  };
}

namespace {

/// The event times a 64-bit nanosecond count holds, in ms (about 1677-09-22 to 2262-04-11).
constexpr std::int64_t min_event_ms = INT64_MIN / 1'000'000 + 1;
constexpr std::int64_t max_event_ms = INT64_MAX / 1'000'000 - 1;
/// The least positive `rate` / `event_rate`.
constexpr double min_rate = 0.001;

}  // namespace

generator_options read_generator_options(const spec::config& cfg) {
  generator_options o;
  auto profile = cfg.get_string("profile");
  if (profile.empty() || profile == "trades")
    o.profile = generator_profile::trades;
  else if (profile == "quotes")
    o.profile = generator_profile::quotes;
  else if (profile == "sensors")
    o.profile = generator_profile::sensors;
  else
    cfg.fail("profile", "unknown profile '" + profile + "'; use trades, quotes or sensors");
  auto bounded_int = [&](std::string_view key, std::int64_t lo, std::int64_t hi, std::int64_t def) {
    if (!cfg.has(key)) return def;
    auto v = cfg.get_int(key);
    if (v < lo || v > hi)
      cfg.fail(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return v;
  };
  auto bounded_number = [&](std::string_view key, double lo, double hi, double def) {
    if (!cfg.has(key)) return def;
    auto v = cfg.get_number(key);
    if (v < lo || v > hi)
      cfg.fail(key, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return v;
  };
  o.symbols = static_cast<std::uint32_t>(bounded_int("symbols", 1, 1000000, 100));
  o.devices = static_cast<std::uint32_t>(bounded_int("devices", 1, 1000000, 100));
  const spec::node* rate_node = nullptr;
  if (const auto& raw = cfg.raw(); raw && raw->is_map())
    if (const auto* e = raw->find("rate")) rate_node = e->value.get();
  if (rate_node != nullptr && rate_node->is_sequence()) {
    const auto steps = cfg.children("rate");
    if (steps.empty()) cfg.fail("rate", "the schedule has no steps; add `- {per_second: 1000}`");
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const auto& st = steps[i];
      generator_rate_step s;
      s.per_second = st.get_number("per_second");
      if (s.per_second < min_rate || s.per_second > 1e12)
        st.fail("per_second", "must be between 0.001 and 1000000000000");
      const bool last = i + 1 == steps.size();
      if (st.has("for")) {
        s.for_ns = st.get_duration_ns("for");
        if (s.for_ns <= 0) st.fail("for", "must be a positive duration");
      } else if (!last) {
        st.fail("for", "missing `for`: every step but the last says how long it lasts, e.g. "
                       "`for: 20s`");
      }
      if (last) s.for_ns = 0;  // the last step holds
      o.rate_schedule.push_back(s);
    }
  } else {
    o.rate = bounded_number("rate", 0, 1e12, 0);
  }
  o.event_rate = bounded_number("event_rate", 0, 1e12, 0);
  // A rate near zero puts records centuries apart: event times leave the 64-bit nanosecond
  // range and each record walks its price path through every second in between.
  for (auto [key, v] : {std::pair<std::string_view, double>{"rate", o.rate},
                        std::pair<std::string_view, double>{"event_rate", o.event_rate}})
    if (v > 0 && v < min_rate)
      cfg.fail(key, "must be 0 (the default) or at least 0.001 (one record per 1000 s)");
  o.count = static_cast<std::uint64_t>(bounded_int("count", 0, INT64_MAX, 0));
  if (cfg.has("duration")) {
    o.duration_ns = cfg.get_duration_ns("duration");
    if (o.duration_ns <= 0) cfg.fail("duration", "must be positive");
  }
  o.seed = static_cast<std::uint64_t>(bounded_int("seed", 0, INT64_MAX, 42));
  if (cfg.has("start_time")) {
    auto text = cfg.get_string("start_time");
    if (!parse_iso8601_ms(text, o.start_ms))
      cfg.fail("start_time",
               "expected an ISO-8601 time such as 2024-01-02T14:30:00Z, found '" + text + "'");
    if (o.start_ms < min_event_ms || o.start_ms > max_event_ms)
      cfg.fail("start_time",
               "must lie between 1677-09-22 and 2262-04-11: event times are nanoseconds since "
               "1970 in 64 bits; found '" +
                   text + "'");
  }
  o.out_of_order = bounded_number("out_of_order", 0, 1, 0);
  if (cfg.has("max_delay")) {
    o.max_delay_ns = cfg.get_duration_ns("max_delay");
    if (o.max_delay_ns < 0) cfg.fail("max_delay", "must not be negative");
    if (o.start_ms - o.max_delay_ns / 1'000'000 < min_event_ms)
      cfg.fail("max_delay",
               "reaches before 1677-09-22 from `start_time`, where event times "
               "(64-bit nanoseconds) end; make it shorter");
  }
  o.burstiness = bounded_number("burstiness", 0, 1, 0.3);
  o.bad_records = bounded_number("bad_records", 0, 1, 0);
  o.preload = cfg.has("preload") && cfg.get_bool("preload");
  if (o.preload && o.count == 0)
    cfg.fail("preload", "preload needs a bounded generator: set `count`");
  if (o.preload && o.count > 500'000'000)
    cfg.fail("count", "too many records to preload (at most 500000000)");
  return o;
}

}  // namespace pel::connectors
