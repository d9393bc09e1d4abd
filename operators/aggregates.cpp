#include "pel/operators/aggregates.hpp"

#include "pel/expr/expression.hpp"
#include "pel/spec/diagnostics.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

namespace pel::operators {

namespace {

using core::value;
using core::value_type;

// ------------------------------------------------------------------ arguments

/// One argument: a plain field read by position (the common case, no expression call), or a
/// compiled expression.
class argument {
public:
  argument() = default;
  argument(const std::string& text, const core::schema& input) : text_(text) {
    field_ = input.index_of(text);
    if (field_ < 0) expr_ = expr::compile(text, input);
  }

  /// 1: a number in `out`; 0: null; -1: not a number (reason in `error`).
  int number(const value* row, std::int64_t t, double& out, std::string& error) const {
    if (field_ >= 0) {
      const value& v = row[field_];
      if (core::as_number(v, out)) return 1;
      if (core::is_null(v)) return 0;
      error = "expected a number for " + text_ + ", got " +
              std::string(core::to_string(core::type_of(v))) + " " + describe(v);
      return -1;
    }
    try {
      return expr_.eval_number(row, t, out) ? 1 : 0;
    } catch (const std::exception& e) {
      error = std::string(e.what());
      return -1;
    }
  }

  /// The argument's value (a reference into the row, or into `scratch`); false with the
  /// reason when evaluation fails.
  bool get(const value* row, std::int64_t t, aggregate_input& in, std::string& error) const {
    if (field_ >= 0) {
      in.val = &row[field_];
      return true;
    }
    try {
      in.val = &expr_.eval_ref(row, t, in.scratch);
      return true;
    } catch (const std::exception& e) {
      error = e.what();
      return false;
    }
  }

  const std::string& text() const noexcept { return text_; }
  /// The field read by position, or -1 for a compiled expression.
  int field() const noexcept { return field_; }

private:
  static std::string describe(const value& v) {
    std::string s;
    core::append_json(s, v);
    if (s.size() > 40) s = s.substr(0, 37) + "...";
    return s;
  }

  std::string text_;
  int field_ = -1;
  expr::expression expr_;
};

template <class S>
S& st(void* s) noexcept {
  return *static_cast<S*>(s);
}
template <class S>
const S& st(const void* s) noexcept {
  return *static_cast<const S*>(s);
}

constexpr std::size_t round8(std::size_t n) { return (n + 7) & ~std::size_t(7); }

value number_or_null(bool present, double x) { return present ? value(x) : value(); }

/// The larger (`is_max`) or smaller of two numbers, NaN when either is NaN: as with sum, a
/// NaN input makes the result NaN whatever the order the inputs come in.
template <bool is_max>
inline double extreme(double a, double b) noexcept {
  if (is_max ? b > a : b < a) return b;
  return b == b ? a : b;
}

/// Base for aggregates whose state is a trivially copyable struct S.
template <class S>
class pod_aggregate : public aggregate {
public:
  std::size_t state_size() const override { return round8(sizeof(S)); }
  void init(void* s) const override { new (s) S{}; }
  void write(const void* s, core::state_writer& w) const override {
    w.put_string(std::string_view(static_cast<const char*>(s), sizeof(S)));
  }
  void read(void* s, core::state_reader& r) const override {
    std::string b = r.get_string();
    if (b.size() != sizeof(S)) throw std::runtime_error("aggregate snapshot: wrong state size");
    std::memcpy(s, b.data(), sizeof(S));
  }
};

// ------------------------------------------------------------------ fast forms

/// The aggregates `aggregate_set` can run without virtual calls (see its fast path). Each has
/// a static `step(state, a, a_null, b, b_null, t)` that its virtual `add` calls too, so both
/// paths share one definition of the update.
enum fast_kind : std::uint8_t {
  fk_none,
  fk_count_rows,
  fk_count_values,
  fk_sum,  // sum and avg share their state and update
  fk_min,
  fk_max,
  fk_welford,  // stddev and variance
  fk_vwap,
  fk_ohlc,
  fk_returns,
};

/// What the fast path needs of an aggregate: its kind and its arguments as plain fields.
struct fast_form {
  fast_kind kind = fk_none;
  std::size_t args = 0;
  int field[2] = {-1, -1};
  bool number[2] = {true, true};  ///< the argument must be a number (else: any value)
};

/// Implemented by aggregates that may have a fast form.
class fast_capable {
public:
  virtual ~fast_capable() = default;
  /// False when this instance has none (an argument is an expression, not a field).
  virtual bool fast(fast_form& f) const = 0;
};

/// Base for aggregates of one numeric argument.
template <class S>
class numeric1 : public pod_aggregate<S>, public fast_capable {
public:
  explicit numeric1(argument a) : arg_(std::move(a)) {}
  bool prepare(const value* row, std::int64_t t, aggregate_input& in,
               std::string& error) const override {
    int r = arg_.number(row, t, in.num[0], error);
    in.null[0] = r == 0;
    return r >= 0;
  }
  bool fast(fast_form& f) const override {
    f.kind = kind();
    f.args = 1;
    f.field[0] = arg_.field();
    return f.kind != fk_none && f.field[0] >= 0;
  }

protected:
  virtual fast_kind kind() const { return fk_none; }
  argument arg_;
};

/// Base for aggregates of two numeric arguments (price, qty).
template <class S>
class numeric2 : public pod_aggregate<S>, public fast_capable {
public:
  numeric2(argument a, argument b) : a_(std::move(a)), b_(std::move(b)) {}
  bool prepare(const value* row, std::int64_t t, aggregate_input& in,
               std::string& error) const override {
    int r0 = a_.number(row, t, in.num[0], error);
    if (r0 < 0) return false;
    int r1 = b_.number(row, t, in.num[1], error);
    if (r1 < 0) return false;
    in.null[0] = r0 == 0;
    in.null[1] = r1 == 0;
    return true;
  }
  bool fast(fast_form& f) const override {
    f.kind = kind();
    f.args = 2;
    f.field[0] = a_.field();
    f.field[1] = b_.field();
    return f.kind != fk_none && f.field[0] >= 0 && f.field[1] >= 0;
  }

protected:
  virtual fast_kind kind() const { return fk_none; }
  argument a_, b_;
};

/// The arguments of `add` in the form `step` takes them.
#define PEL_STEP_ARGS in.num[0], in.null[0], in.num[1], in.null[1], t

// ------------------------------------------------------------------ count, sum, min, max, avg

struct count_state {
  std::int64_t n;
};

class count_rows final : public pod_aggregate<count_state>, public fast_capable {
public:
  bool prepare(const value*, std::int64_t, aggregate_input&, std::string&) const override {
    return true;
  }
  static void step(void* s, double, bool, double, bool, std::int64_t) noexcept {
    ++st<count_state>(s).n;
  }
  void add(void* s, const aggregate_input& in, std::int64_t t) const override {
    step(s, PEL_STEP_ARGS);
  }
  bool fast(fast_form& f) const override {
    f.kind = fk_count_rows;
    f.args = 0;
    return true;
  }
  void merge(void* d, const void* s) const override { st<count_state>(d).n += st<count_state>(s).n; }
  void result(const void* s, value* out) const override { out[0] = st<count_state>(s).n; }
};

class count_values final : public pod_aggregate<count_state>, public fast_capable {
public:
  explicit count_values(argument a) : arg_(std::move(a)) {}
  bool prepare(const value* row, std::int64_t t, aggregate_input& in,
               std::string& error) const override {
    if (!arg_.get(row, t, in, error)) return false;
    in.null[0] = core::is_null(*in.val);
    return true;
  }
  static void step(void* s, double, bool na, double, bool, std::int64_t) noexcept {
    if (!na) ++st<count_state>(s).n;
  }
  void add(void* s, const aggregate_input& in, std::int64_t t) const override {
    step(s, PEL_STEP_ARGS);
  }
  bool fast(fast_form& f) const override {
    f.kind = fk_count_values;
    f.args = 1;
    f.field[0] = arg_.field();
    f.number[0] = false;  // counts values of any type
    return f.field[0] >= 0;
  }
  void merge(void* d, const void* s) const override { st<count_state>(d).n += st<count_state>(s).n; }
  void result(const void* s, value* out) const override { out[0] = st<count_state>(s).n; }

private:
  argument arg_;
};

struct sum_state {
  double sum;
  std::int64_t n;
};

/// The update of sum and avg.
inline void sum_step(void* s, double a, bool na, double, bool, std::int64_t) noexcept {
  if (na) return;
  auto& x = st<sum_state>(s);
  x.sum += a;
  ++x.n;
}

class sum_agg : public numeric1<sum_state> {
public:
  using numeric1::numeric1;
  void add(void* s, const aggregate_input& in, std::int64_t t) const override {
    sum_step(s, PEL_STEP_ARGS);
  }
  fast_kind kind() const override { return fk_sum; }
  void merge(void* d, const void* s) const override {
    st<sum_state>(d).sum += st<sum_state>(s).sum;
    st<sum_state>(d).n += st<sum_state>(s).n;
  }
  void result(const void* s, value* out) const override {
    out[0] = number_or_null(st<sum_state>(s).n > 0, st<sum_state>(s).sum);
  }
};

/// The sum's state, add and merge; only the result differs.
class avg_agg final : public sum_agg {
public:
  using sum_agg::sum_agg;
  void result(const void* s, value* out) const override {
    const auto& x = st<sum_state>(s);
    out[0] = number_or_null(x.n > 0, x.n > 0 ? x.sum / static_cast<double>(x.n) : 0.0);
  }
};

struct extreme_state {
  double m;
  bool has;
};

template <bool is_max>
class extreme_agg final : public numeric1<extreme_state> {
public:
  using numeric1<extreme_state>::numeric1;
  static void step(void* s, double a, bool na, double, bool, std::int64_t) noexcept {
    if (!na) take(st<extreme_state>(s), a);
  }
  void add(void* s, const aggregate_input& in, std::int64_t t) const override {
    step(s, PEL_STEP_ARGS);
  }
  fast_kind kind() const override { return is_max ? fk_max : fk_min; }
  void merge(void* d, const void* s) const override {
    if (st<extreme_state>(s).has) take(st<extreme_state>(d), st<extreme_state>(s).m);
  }
  void result(const void* s, value* out) const override {
    out[0] = number_or_null(st<extreme_state>(s).has, st<extreme_state>(s).m);
  }

private:
  static void take(extreme_state& x, double v) {
    x.m = x.has ? extreme<is_max>(x.m, v) : v;
    x.has = true;
  }
};

// ------------------------------------------------------------------ variance (Welford)

/// Welford's running mean with the population standard deviation `sigma` = sqrt(M2 / n) in
/// place of M2: sigma is at most half the range of the inputs, so it stays finite for any
/// finite inputs ({1e308, -1e308} has sigma 1e308, where M2 and the squares of the
/// differences overflow), and it is computed as a norm that neither overflows nor underflows
/// (the differences of tiny or denormal inputs keep their size). 24 bytes, so a window's
/// combiner can hold it. A NaN or infinite input makes mean and sigma NaN, and NaN stays.
struct welford_state {
  std::int64_t n;
  double mean;
  double sigma;
};

/// sqrt(a^2 + b^2) without overflow or underflow: the plain formula when the sum of squares
/// is a normal number well above the denormals (a square lost to underflow then does not
/// matter beside it), else std::hypot.
inline double norm2(double a, double b) noexcept {
  const double s = a * a + b * b;
  if (s > 0x1p-960 && s <= std::numeric_limits<double>::max()) return std::sqrt(s);
  return std::hypot(a, b);
}

/// The update of stddev and variance: sigma_n^2 = (n-1)/n sigma_{n-1}^2 + (n-1)/n^2 d^2,
/// d = x - mean_{n-1}.
inline void welford_step(void* s, double a, bool na, double, bool, std::int64_t) noexcept {
  if (na) return;
  auto& w = st<welford_state>(s);
  const std::int64_t k = ++w.n;
  if (!std::isfinite(a) || !std::isfinite(w.mean)) {
    w.mean = w.sigma = std::numeric_limits<double>::quiet_NaN();
    return;
  }
  if (k == 1) {
    w.mean = a;
    w.sigma = 0;
    return;
  }
  const double n = static_cast<double>(k);
  const double keep = std::sqrt((n - 1) / n);  // scales sigma_{n-1}
  const double d = a - w.mean;
  if (std::isfinite(d)) {
    w.mean += d / n;
    w.sigma = norm2(w.sigma * keep, d * (keep / std::sqrt(n)));
  } else {  // opposite signs near the largest double: halve first, 2 / n <= 1 brings it back
    const double h = 0.5 * a - 0.5 * w.mean;
    w.mean += h * (2 / n);
    w.sigma = norm2(w.sigma * keep, h * (2 * keep / std::sqrt(n)));
  }
}

template <bool is_stddev>
class variance_agg final : public numeric1<welford_state> {
public:
  using numeric1<welford_state>::numeric1;
  void add(void* s, const aggregate_input& in, std::int64_t t) const override {
    welford_step(s, PEL_STEP_ARGS);
  }
  fast_kind kind() const override { return fk_welford; }
  void merge(void* d, const void* s) const override {
    auto& a = st<welford_state>(d);
    const auto& b = st<welford_state>(s);
    if (b.n == 0) return;
    if (a.n == 0) {
      a = b;
      return;
    }
    // Chan et al. on (n, mean, sigma): sigma^2 = wa sigma_a^2 + wb sigma_b^2 + wa wb delta^2.
    const double n = static_cast<double>(a.n + b.n);
    const double wa = static_cast<double>(a.n) / n, wb = static_cast<double>(b.n) / n;
    a.n += b.n;
    if (!std::isfinite(a.mean) || !std::isfinite(b.mean)) {
      a.mean = a.sigma = std::numeric_limits<double>::quiet_NaN();
      return;
    }
    const double spread = norm2(a.sigma * std::sqrt(wa), b.sigma * std::sqrt(wb));
    const double delta = b.mean - a.mean;
    if (std::isfinite(delta)) {
      a.mean += delta * wb;
      a.sigma = norm2(spread, delta * std::sqrt(wa * wb));
    } else {  // as in welford_step: 2 sqrt(wa wb) <= 1
      const double h = 0.5 * b.mean - 0.5 * a.mean;
      a.mean = a.mean * wa + b.mean * wb;
      a.sigma = norm2(spread, h * (2 * std::sqrt(wa * wb)));
    }
  }
  void result(const void* s, value* out) const override {
    const auto& w = st<welford_state>(s);
    if (w.n < 2) {
      out[0] = value();
      return;
    }
    // The sample statistic: sigma * sqrt(n / (n - 1)); the variance of inputs near the
    // largest double is larger than any double, and is infinite then.
    const double n = static_cast<double>(w.n);
    const double sd = w.sigma * std::sqrt(n / (n - 1));
    out[0] = is_stddev ? sd : sd * sd;
  }
};

// ------------------------------------------------------------------ first, last

/// The value kept by first/last, on the heap so that the slot stays trivially relocatable.
struct timed_value {
  std::int64_t t;
  value* v;  // null until the first non-null input
};

template <bool is_last>
class pick_agg final : public aggregate {
public:
  explicit pick_agg(argument a) : arg_(std::move(a)) {}
  std::size_t state_size() const override { return round8(sizeof(timed_value)); }
  void init(void* s) const override { new (s) timed_value{0, nullptr}; }
  void destroy(void* s) const noexcept override { delete st<timed_value>(s).v; }
  bool prepare(const value* row, std::int64_t t, aggregate_input& in,
               std::string& error) const override {
    if (!arg_.get(row, t, in, error)) return false;
    in.null[0] = core::is_null(*in.val);
    return true;
  }
  void add(void* s, const aggregate_input& in, std::int64_t t) const override {
    if (in.null[0]) return;
    take(st<timed_value>(s), t, *in.val);
  }
  void merge(void* d, const void* s) const override {
    const auto& b = st<timed_value>(s);
    if (b.v) take(st<timed_value>(d), b.t, *b.v);
  }
  void result(const void* s, value* out) const override {
    const auto& x = st<timed_value>(s);
    out[0] = x.v ? *x.v : value();
  }
  void write(const void* s, core::state_writer& w) const override {
    const auto& x = st<timed_value>(s);
    w.put<std::int64_t>(x.t);
    w.put<std::uint8_t>(x.v != nullptr);
    if (x.v) w.put_value(*x.v);
  }
  void read(void* s, core::state_reader& r) const override {
    auto& x = st<timed_value>(s);
    x.t = r.get<std::int64_t>();
    if (r.get<std::uint8_t>() != 0) {
      delete x.v;
      x.v = new value(r.get_value());
    }
  }
  std::size_t heap_bytes(const void* s) const override {
    const auto& x = st<timed_value>(s);
    if (!x.v) return 0;
    std::size_t n = sizeof(value);
    if (auto p = std::get_if<std::string>(x.v)) n += p->capacity() > 15 ? p->capacity() + 1 : 0;
    return n;
  }

private:
  static void take(timed_value& x, std::int64_t t, const value& v) {
    if (!x.v) {
      x.v = new value(v);
      x.t = t;
    } else if (is_last ? t >= x.t : t < x.t) {
      *x.v = v;
      x.t = t;
    }
  }
  argument arg_;
};

// ------------------------------------------------------------------ vwap, ohlc, returns

struct vwap_state {
  double pq;
  double q;
};

class vwap_agg final : public numeric2<vwap_state> {
public:
  using numeric2::numeric2;
  static void step(void* s, double p, bool np, double q, bool nq, std::int64_t) noexcept {
    if (np || nq) return;
    auto& x = st<vwap_state>(s);
    x.pq += p * q;
    x.q += q;
  }
  void add(void* s, const aggregate_input& in, std::int64_t t) const override {
    step(s, PEL_STEP_ARGS);
  }
  fast_kind kind() const override { return fk_vwap; }
  void merge(void* d, const void* s) const override {
    st<vwap_state>(d).pq += st<vwap_state>(s).pq;
    st<vwap_state>(d).q += st<vwap_state>(s).q;
  }
  void result(const void* s, value* out) const override {
    const auto& x = st<vwap_state>(s);
    out[0] = number_or_null(x.q != 0, x.q != 0 ? x.pq / x.q : 0.0);
  }
};

struct ohlc_state {
  double open, high, low, close, volume;
  std::int64_t open_t, close_t, trades;
};

class ohlc_agg final : public numeric2<ohlc_state> {
public:
  using numeric2::numeric2;
  void add(void* s, const aggregate_input& in, std::int64_t t) const override {
    step(s, PEL_STEP_ARGS);
  }
  fast_kind kind() const override { return fk_ohlc; }
  static void step(void* s, double p, bool np, double q, bool nq, std::int64_t t) noexcept {
    if (np) return;
    auto& x = st<ohlc_state>(s);
    if (x.trades == 0) {
      x = ohlc_state{p, p, p, p, 0, t, t, 0};
    } else {
      if (t < x.open_t) x.open = p, x.open_t = t;
      if (t >= x.close_t) x.close = p, x.close_t = t;
      x.high = extreme<true>(x.high, p);
      x.low = extreme<false>(x.low, p);
    }
    if (!nq) x.volume += q;
    ++x.trades;
  }
  void merge(void* d, const void* s) const override {
    auto& a = st<ohlc_state>(d);
    const auto& b = st<ohlc_state>(s);
    if (b.trades == 0) return;
    if (a.trades == 0) {
      a = b;
      return;
    }
    if (b.open_t < a.open_t) a.open = b.open, a.open_t = b.open_t;
    if (b.close_t >= a.close_t) a.close = b.close, a.close_t = b.close_t;
    a.high = extreme<true>(a.high, b.high);
    a.low = extreme<false>(a.low, b.low);
    a.volume += b.volume;
    a.trades += b.trades;
  }
  void result(const void* s, value* out) const override {
    const auto& x = st<ohlc_state>(s);
    bool has = x.trades > 0;
    out[0] = number_or_null(has, x.open);
    out[1] = number_or_null(has, x.high);
    out[2] = number_or_null(has, x.low);
    out[3] = number_or_null(has, x.close);
    out[4] = x.volume;
    out[5] = x.trades;
  }
};

struct returns_state {
  std::int64_t first_t, last_t;
  double first, last;
  bool has;
};

class returns_agg final : public numeric1<returns_state> {
public:
  using numeric1::numeric1;
  void add(void* s, const aggregate_input& in, std::int64_t t) const override {
    step(s, PEL_STEP_ARGS);
  }
  fast_kind kind() const override { return fk_returns; }
  static void step(void* s, double p, bool np, double, bool, std::int64_t t) noexcept {
    if (np) return;
    auto& x = st<returns_state>(s);
    if (!x.has) {
      x = returns_state{t, t, p, p, true};
      return;
    }
    if (t < x.first_t) x.first = p, x.first_t = t;
    if (t >= x.last_t) x.last = p, x.last_t = t;
  }
  void merge(void* d, const void* s) const override {
    auto& a = st<returns_state>(d);
    const auto& b = st<returns_state>(s);
    if (!b.has) return;
    if (!a.has) {
      a = b;
      return;
    }
    if (b.first_t < a.first_t) a.first = b.first, a.first_t = b.first_t;
    if (b.last_t >= a.last_t) a.last = b.last, a.last_t = b.last_t;
  }
  void result(const void* s, value* out) const override {
    const auto& x = st<returns_state>(s);
    out[0] = number_or_null(x.has && x.first != 0, x.first != 0 ? x.last / x.first - 1 : 0.0);
  }
};

#undef PEL_STEP_ARGS

// ------------------------------------------------------------------ distinct_count

/// Exact set of value hashes up to `exact_limit`, then HyperLogLog with 2^12 registers.
struct distinct_sketch {
  static constexpr std::size_t exact_limit = 64;
  static constexpr unsigned p = 12;
  static constexpr std::size_t m = std::size_t(1) << p;

  std::vector<std::uint64_t> exact;  // used while registers is empty
  std::vector<std::uint8_t> registers;

  void add_hash(std::uint64_t h) {
    if (registers.empty()) {
      if (std::find(exact.begin(), exact.end(), h) != exact.end()) return;
      exact.push_back(h);
      if (exact.size() > exact_limit) to_hll();
      return;
    }
    hll_add(h);
  }
  void hll_add(std::uint64_t h) {
    std::size_t idx = static_cast<std::size_t>(h >> (64 - p));
    std::uint64_t w = (h << p) | (std::uint64_t(1) << (p - 1));  // guard bit bounds the rank
    auto rank = static_cast<std::uint8_t>(__builtin_clzll(w) + 1);
    if (rank > registers[idx]) registers[idx] = rank;
  }
  void to_hll() {
    registers.assign(m, 0);
    for (auto h : exact) hll_add(h);
    exact.clear();
    exact.shrink_to_fit();
  }
  void merge(const distinct_sketch& o) {
    if (o.registers.empty()) {
      for (auto h : o.exact) add_hash(h);
      return;
    }
    if (registers.empty()) to_hll();
    for (std::size_t i = 0; i < m; ++i) registers[i] = std::max(registers[i], o.registers[i]);
  }
  std::int64_t estimate() const {
    if (registers.empty()) return static_cast<std::int64_t>(exact.size());
    double sum = 0;
    std::size_t zeros = 0;
    for (auto r : registers) {
      sum += std::ldexp(1.0, -static_cast<int>(r));
      zeros += r == 0;
    }
    const double md = static_cast<double>(m);
    double alpha = 0.7213 / (1 + 1.079 / md);
    double e = alpha * md * md / sum;
    if (e <= 2.5 * md && zeros > 0) e = md * std::log(md / static_cast<double>(zeros));
    return static_cast<std::int64_t>(std::llround(e));
  }
};

class distinct_agg final : public aggregate {
public:
  explicit distinct_agg(argument a) : arg_(std::move(a)) {}
  std::size_t state_size() const override { return sizeof(distinct_sketch*); }
  void init(void* s) const override { st<distinct_sketch*>(s) = nullptr; }
  void destroy(void* s) const noexcept override { delete st<distinct_sketch*>(s); }
  bool prepare(const value* row, std::int64_t t, aggregate_input& in,
               std::string& error) const override {
    if (!arg_.get(row, t, in, error)) return false;
    in.null[0] = core::is_null(*in.val);
    return true;
  }
  void add(void* s, const aggregate_input& in, std::int64_t) const override {
    if (in.null[0]) return;
    sketch(s).add_hash(core::stable_hash(*in.val));
  }
  void merge(void* d, const void* s) const override {
    if (auto o = st<distinct_sketch*>(s)) sketch(d).merge(*o);
  }
  void result(const void* s, value* out) const override {
    auto p = st<distinct_sketch*>(s);
    out[0] = p ? p->estimate() : std::int64_t{0};
  }
  void write(const void* s, core::state_writer& w) const override {
    auto p = st<distinct_sketch*>(s);
    if (!p) {
      w.put<std::uint8_t>(0);
    } else if (p->registers.empty()) {
      w.put<std::uint8_t>(1);
      w.put<std::uint32_t>(static_cast<std::uint32_t>(p->exact.size()));
      for (auto h : p->exact) w.put(h);
    } else {
      w.put<std::uint8_t>(2);
      w.put_string(std::string_view(reinterpret_cast<const char*>(p->registers.data()),
                                    p->registers.size()));
    }
  }
  void read(void* s, core::state_reader& r) const override {
    auto mode = r.get<std::uint8_t>();
    if (mode == 0) return;
    auto& k = sketch(s);
    if (mode == 1) {
      auto n = r.get<std::uint32_t>();
      if (n > distinct_sketch::exact_limit) throw std::runtime_error("distinct_count snapshot: bad size");
      for (std::uint32_t i = 0; i < n; ++i) k.exact.push_back(r.get<std::uint64_t>());
    } else {
      std::string regs = r.get_string();
      if (regs.size() != distinct_sketch::m) throw std::runtime_error("distinct_count snapshot: bad size");
      k.registers.assign(regs.begin(), regs.end());
    }
  }
  std::size_t heap_bytes(const void* s) const override {
    auto p = st<distinct_sketch*>(s);
    return p ? sizeof(*p) + p->exact.capacity() * 8 + p->registers.capacity() : 0;
  }

private:
  static distinct_sketch& sketch(void* s) {
    auto& p = st<distinct_sketch*>(s);
    if (!p) p = new distinct_sketch();
    return *p;
  }
  argument arg_;
};

// ------------------------------------------------------------------ percentile (DDSketch)

/// DDSketch (Masson, Rim, Lee 2019) with relative accuracy alpha = 1 %: bucket i holds the
/// values in (gamma^(i-1), gamma^i], gamma = (1 + alpha) / (1 - alpha), and is reported as
/// 2 gamma^i / (gamma + 1), within alpha of every value in it. Negative values use a mirrored
/// store; |x| below 1e-9 counts as zero; +inf and -inf are counted apart, as the largest and
/// the smallest values; NaN is counted apart and makes every quantile NaN. The exact minimum
/// and maximum are kept, so ranks 0 and n - 1 are exact. Each store holds at most
/// `max_buckets` buckets (values over a ratio of about 1e17); a wider spread merges the
/// buckets at the low end of the values (the smallest positive, the most negative), so only
/// the lowest quantiles lose accuracy, and memory stays bounded whatever the values.
struct dd_sketch {
  static constexpr double alpha = 0.01;
  static constexpr double min_value = 1e-9;
  static constexpr std::int32_t max_buckets = 2048;

  struct store {
    std::vector<std::uint64_t> counts;
    std::int32_t offset = 0;     // bucket index of counts[0]
    bool merge_high = false;     // a wide spread merges the highest indexes, not the lowest

    std::int32_t top() const { return offset + static_cast<std::int32_t>(counts.size()) - 1; }

    void add(std::int32_t i, std::uint64_t n) {
      if (counts.empty()) {
        counts.assign(1, 0);
        offset = i;
      } else if (i < offset || i > top()) {
        std::int32_t lo = std::min(i, offset), hi = std::max(i, top());
        if (hi - lo >= max_buckets) {
          if (merge_high) hi = lo + max_buckets - 1;
          else lo = hi - max_buckets + 1;
          reshape(lo, hi);
          i = std::clamp(i, lo, hi);
        } else if (i < offset) {
          counts.insert(counts.begin(), static_cast<std::size_t>(offset - i), 0);
          offset = i;
        } else {
          counts.resize(static_cast<std::size_t>(i - offset + 1), 0);
        }
      }
      counts[static_cast<std::size_t>(i - offset)] += n;
    }
    /// Keeps the buckets lo..hi; those outside add to the nearest end.
    void reshape(std::int32_t lo, std::int32_t hi) {
      std::vector<std::uint64_t> c(static_cast<std::size_t>(hi - lo + 1), 0);
      for (std::size_t j = 0; j < counts.size(); ++j)
        c[static_cast<std::size_t>(std::clamp(offset + static_cast<std::int32_t>(j), lo, hi) - lo)] +=
            counts[j];
      counts.swap(c);
      offset = lo;
    }
    void merge(const store& o) {
      for (std::size_t j = 0; j < o.counts.size(); ++j)
        if (o.counts[j]) add(o.offset + static_cast<std::int32_t>(j), o.counts[j]);
    }
  };

  store pos, neg{{}, 0, true};
  std::uint64_t zeros = 0;
  std::uint64_t pos_inf = 0, neg_inf = 0, nans = 0;
  std::uint64_t n = 0;  // every value but NaN
  double lowest = std::numeric_limits<double>::infinity();
  double highest = -std::numeric_limits<double>::infinity();

  static double gamma() { return (1 + alpha) / (1 - alpha); }
  static double log_gamma() {
    static const double lg = std::log(gamma());
    return lg;
  }
  /// For finite x > min_value: between about -1040 and 35,500.
  static std::int32_t index_of(double x) {
    return static_cast<std::int32_t>(std::ceil(std::log(x) / log_gamma()));
  }
  static double value_of(std::int32_t i) {
    static const double log_half_width = std::log(2 / (gamma() + 1));
    const double v = std::exp(i * log_gamma() + log_half_width);
    return std::isfinite(v) ? v : std::numeric_limits<double>::max();  // the top bucket
  }

  void add(double x) {
    if (std::isnan(x)) {
      ++nans;
      return;
    }
    ++n;
    lowest = std::min(lowest, x);
    highest = std::max(highest, x);
    if (x > min_value) {
      if (x == std::numeric_limits<double>::infinity()) ++pos_inf;
      else pos.add(index_of(x), 1);
    } else if (x < -min_value) {
      if (x == -std::numeric_limits<double>::infinity()) ++neg_inf;
      else neg.add(index_of(-x), 1);
    } else {
      ++zeros;
    }
  }
  void merge(const dd_sketch& o) {
    pos.merge(o.pos);
    neg.merge(o.neg);
    zeros += o.zeros;
    pos_inf += o.pos_inf;
    neg_inf += o.neg_inf;
    nans += o.nans;
    n += o.n;
    lowest = std::min(lowest, o.lowest);
    highest = std::max(highest, o.highest);
  }
  /// The value of rank floor(q * (n - 1)), 0-based in ascending order; NaN once a NaN was
  /// added. Needs n > 0 or a NaN.
  double quantile(double q) const {
    if (nans > 0) return std::numeric_limits<double>::quiet_NaN();
    auto rank = static_cast<std::uint64_t>(std::floor(q * static_cast<double>(n - 1)));
    if (rank == 0) return lowest;
    if (rank >= n - 1) return highest;
    // A bucket's value lies within the values seen (a merged end bucket may not).
    auto seen_value = [&](double v) { return std::clamp(v, lowest, highest); };
    std::uint64_t seen = neg_inf;
    if (seen > rank) return -std::numeric_limits<double>::infinity();
    for (std::size_t j = neg.counts.size(); j-- > 0;) {
      seen += neg.counts[j];
      if (seen > rank) return seen_value(-value_of(neg.offset + static_cast<std::int32_t>(j)));
    }
    seen += zeros;
    if (seen > rank) return seen_value(0);
    for (std::size_t j = 0; j < pos.counts.size(); ++j) {
      seen += pos.counts[j];
      if (seen > rank) return seen_value(value_of(pos.offset + static_cast<std::int32_t>(j)));
    }
    return std::numeric_limits<double>::infinity();
  }
};

class percentile_agg final : public aggregate {
public:
  percentile_agg(argument a, double q) : arg_(std::move(a)), q_(q) {}
  std::size_t state_size() const override { return sizeof(dd_sketch*); }
  void init(void* s) const override { st<dd_sketch*>(s) = nullptr; }
  void destroy(void* s) const noexcept override { delete st<dd_sketch*>(s); }
  bool prepare(const value* row, std::int64_t t, aggregate_input& in,
               std::string& error) const override {
    int r = arg_.number(row, t, in.num[0], error);
    in.null[0] = r == 0;
    return r >= 0;
  }
  void add(void* s, const aggregate_input& in, std::int64_t) const override {
    if (in.null[0]) return;
    sketch(s).add(in.num[0]);
  }
  void merge(void* d, const void* s) const override {
    if (auto o = st<dd_sketch*>(s)) sketch(d).merge(*o);
  }
  void result(const void* s, value* out) const override {
    auto p = st<dd_sketch*>(s);
    out[0] = p && (p->n > 0 || p->nans > 0) ? value(p->quantile(q_)) : value();
  }
  void write(const void* s, core::state_writer& w) const override {
    auto p = st<dd_sketch*>(s);
    w.put<std::uint8_t>(p ? 1 : 0);
    if (!p) return;
    for (auto c : {p->zeros, p->n, p->pos_inf, p->neg_inf, p->nans}) w.put<std::uint64_t>(c);
    w.put<double>(p->lowest);
    w.put<double>(p->highest);
    for (const auto* store : {&p->pos, &p->neg}) {
      w.put<std::int32_t>(store->offset);
      w.put<std::uint32_t>(static_cast<std::uint32_t>(store->counts.size()));
      for (auto c : store->counts) w.put(c);
    }
  }
  void read(void* s, core::state_reader& r) const override {
    if (r.get<std::uint8_t>() == 0) return;
    auto& k = sketch(s);
    for (auto* c : {&k.zeros, &k.n, &k.pos_inf, &k.neg_inf, &k.nans}) *c = r.get<std::uint64_t>();
    k.lowest = r.get<double>();
    k.highest = r.get<double>();
    for (auto* store : {&k.pos, &k.neg}) {
      const auto offset = r.get<std::int32_t>();
      const auto n = r.get<std::uint32_t>();
      if (n > static_cast<std::uint32_t>(dd_sketch::max_buckets) || offset < -100'000 ||
          offset > 100'000)
        throw std::runtime_error("percentile snapshot: bad size");
      store->counts.resize(n);
      store->offset = offset;
      for (auto& c : store->counts) c = r.get<std::uint64_t>();
    }
  }
  std::size_t heap_bytes(const void* s) const override {
    auto p = st<dd_sketch*>(s);
    return p ? sizeof(*p) + (p->pos.counts.capacity() + p->neg.counts.capacity()) * 8 : 0;
  }

private:
  static dd_sketch& sketch(void* s) {
    auto& p = st<dd_sketch*>(s);
    if (!p) p = new dd_sketch();
    return *p;
  }
  argument arg_;
  double q_;
};

// ------------------------------------------------------------------ parsing

struct call {
  std::string func;
  std::vector<std::string> args;
  std::vector<std::size_t> arg_offsets;
};

bool is_ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

call parse_call(const std::string& text, std::size_t& err_at) {
  call c;
  std::size_t i = 0, n = text.size();
  auto skip_ws = [&] {
    while (i < n && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  skip_ws();
  std::size_t start = i;
  while (i < n && is_ident_char(text[i])) ++i;
  c.func = text.substr(start, i - start);
  err_at = start;
  if (c.func.empty())
    throw std::invalid_argument("expected an aggregate call such as sum(qty), got '" + text + "'");
  skip_ws();
  if (i >= n || text[i] != '(') {
    err_at = i;
    throw std::invalid_argument("expected '(' after " + c.func + ": write " + c.func + "(...)");
  }
  ++i;
  // Split at top-level commas; quotes and parentheses nest.
  int depth = 0;
  char quote = 0;
  std::size_t arg_start = i;
  bool closed = false;
  for (; i < n; ++i) {
    char ch = text[i];
    if (quote) {
      if (ch == '\\') ++i;
      else if (ch == quote) quote = 0;
      continue;
    }
    if (ch == '"' || ch == '\'') quote = ch;
    else if (ch == '(' || ch == '[') ++depth;
    else if ((ch == ')' || ch == ']') && depth > 0) --depth;
    else if (ch == ',' && depth == 0) {
      c.args.push_back(text.substr(arg_start, i - arg_start));
      c.arg_offsets.push_back(arg_start);
      arg_start = i + 1;
    } else if (ch == ')' && depth == 0) {
      c.args.push_back(text.substr(arg_start, i - arg_start));
      c.arg_offsets.push_back(arg_start);
      closed = true;
      ++i;
      break;
    }
  }
  if (!closed) {
    err_at = n;
    throw std::invalid_argument("missing ')' at the end of " + c.func + "(...)");
  }
  skip_ws();
  if (i != n) {
    err_at = i;
    throw std::invalid_argument("unexpected text after " + c.func + "(...): '" + text.substr(i) +
                                "'; an aggregate is one call such as " + c.func + "(x)");
  }
  // Trim arguments; "f()" has none.
  for (std::size_t a = 0; a < c.args.size(); ++a) {
    auto& s = c.args[a];
    std::size_t b = 0;
    while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    std::size_t e = s.size();
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    c.arg_offsets[a] += b;
    s = s.substr(b, e - b);
  }
  if (c.args.size() == 1 && c.args[0].empty()) {
    c.args.clear();
    c.arg_offsets.clear();
  }
  for (std::size_t a = 0; a < c.args.size(); ++a)
    if (c.args[a].empty()) {
      err_at = c.arg_offsets[a];
      throw std::invalid_argument("empty argument " + std::to_string(a + 1) + " of " + c.func);
    }
  return c;
}

/// "; did you mean ...?" for an unknown aggregate: a likely typo of one of ours, or our name
/// for what other systems call it (mean, median, stdev, count_distinct...); else "".
std::string aggregate_hint(const std::string& f) {
  static const std::pair<const char*, const char*> other_names[] = {
      {"mean", "avg"},
      {"average", "avg"},
      {"var", "variance"},
      {"var_samp", "variance"},
      {"std", "stddev"},
      {"stdev", "stddev"},
      {"stddev_samp", "stddev"},
      {"median", "percentile(x, 0.5)"},
      {"quantile", "percentile"},
      {"count_distinct", "distinct_count"},
      {"approx_count_distinct", "distinct_count"},
      {"first_value", "first"},
      {"last_value", "last"},
      {"total", "sum"},
  };
  std::string lower = f;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [other, ours] : other_names)
    if (lower == other) return std::string("; did you mean '") + ours + "'?";
  auto guess = expr::closest_name(f, aggregate_function_names());
  return guess.empty() ? std::string() : "; did you mean '" + guess + "'?";
}

} // namespace

const std::vector<std::string>& aggregate_function_names() {
  static const std::vector<std::string> names = {
      "avg",  "count", "distinct_count", "first",   "last",   "max",      "min",
      "ohlc", "percentile", "returns",   "stddev", "sum",   "variance", "vwap"};
  return names;
}

std::unique_ptr<aggregate> compile_aggregate(const std::string& name, const std::string& text,
                                             const core::schema& input,
                                             std::size_t* error_offset) {
  std::size_t err_at = 0;
  try {
    call c = parse_call(text, err_at);
    auto need = [&](std::size_t lo, std::size_t hi, const char* usage) {
      if (c.args.size() < lo || c.args.size() > hi) {
        err_at = c.arg_offsets.empty() ? text.find('(') : c.arg_offsets.front();
        throw std::invalid_argument(c.func + " takes " + usage + ", got " +
                                    std::to_string(c.args.size()) + " argument" +
                                    (c.args.size() == 1 ? "" : "s"));
      }
    };
    auto arg = [&](std::size_t a) {
      err_at = c.arg_offsets[a];
      try {
        return argument(c.args[a], input);
      } catch (const expr::parse_error& e) {
        err_at = c.arg_offsets[a] + e.offset;
        throw std::invalid_argument(e.what());
      }
    };
    std::unique_ptr<aggregate> a;
    auto out_type = std::optional<core::value_type>(core::value_type::number);
    const std::string& f = c.func;
    if (f == "count") {
      need(0, 1, "zero arguments (rows) or one (non-null values)");
      if (c.args.empty()) a = std::make_unique<count_rows>();
      else a = std::make_unique<count_values>(arg(0));
      out_type = core::value_type::integer;
    } else if (f == "sum") {
      need(1, 1, "one argument");
      a = std::make_unique<sum_agg>(arg(0));
    } else if (f == "avg") {
      need(1, 1, "one argument");
      a = std::make_unique<avg_agg>(arg(0));
    } else if (f == "min") {
      need(1, 1, "one argument");
      a = std::make_unique<extreme_agg<false>>(arg(0));
    } else if (f == "max") {
      need(1, 1, "one argument");
      a = std::make_unique<extreme_agg<true>>(arg(0));
    } else if (f == "stddev") {
      need(1, 1, "one argument");
      a = std::make_unique<variance_agg<true>>(arg(0));
    } else if (f == "variance") {
      need(1, 1, "one argument");
      a = std::make_unique<variance_agg<false>>(arg(0));
    } else if (f == "first" || f == "last") {
      need(1, 1, "one argument");
      if (f == "first") a = std::make_unique<pick_agg<false>>(arg(0));
      else a = std::make_unique<pick_agg<true>>(arg(0));
      out_type = std::nullopt;
    } else if (f == "distinct_count") {
      need(1, 1, "one argument");
      a = std::make_unique<distinct_agg>(arg(0));
      out_type = core::value_type::integer;
    } else if (f == "percentile") {
      need(2, 2, "two arguments: percentile(x, p) with p in [0, 1] or (1, 100]");
      auto x = arg(0);
      err_at = c.arg_offsets[1];
      expr::expression pe;
      try {
        pe = expr::compile(c.args[1], input);
      } catch (const expr::parse_error& e) {
        err_at = c.arg_offsets[1] + e.offset;
        throw std::invalid_argument(e.what());
      }
      double p = 0;
      if (!pe.is_constant() || !pe.eval_number(nullptr, 0, p))
        throw std::invalid_argument("the rank of percentile must be a constant number, e.g. "
                                    "percentile(" + c.args[0] + ", 0.99)");
      if (!(p >= 0 && p <= 100))
        throw std::invalid_argument("the rank of percentile must be in [0, 1] (a fraction) or "
                                    "(1, 100] (a percentage), got " + c.args[1]);
      a = std::make_unique<percentile_agg>(std::move(x), p > 1 ? p / 100 : p);
    } else if (f == "vwap") {
      need(2, 2, "two arguments: vwap(price, qty)");
      auto p = arg(0);
      a = std::make_unique<vwap_agg>(std::move(p), arg(1));
    } else if (f == "ohlc") {
      need(2, 2, "two arguments: ohlc(price, qty)");
      auto p = arg(0);
      a = std::make_unique<ohlc_agg>(std::move(p), arg(1));
      for (const char* part : {"open", "high", "low", "close", "volume"})
        a->outputs_mutable().push_back({name + "_" + part, core::value_type::number});
      a->outputs_mutable().push_back({name + "_trades", core::value_type::integer});
      return a;
    } else if (f == "returns") {
      need(1, 1, "one argument: returns(price)");
      a = std::make_unique<returns_agg>(arg(0));
    } else {
      err_at = text.find(f);
      std::string msg = "unknown aggregate function '" + f + "'" + aggregate_hint(f);
      msg += " Known: count, sum, min, max, avg, stddev, variance, first, last, "
             "distinct_count, percentile, vwap, ohlc, returns";
      throw std::invalid_argument(msg);
    }
    a->outputs_mutable().push_back({name, out_type});
    return a;
  } catch (...) {
    if (error_offset) *error_offset = err_at;
    throw;
  }
}

// ------------------------------------------------------------------ aggregate_set

void aggregate_set::append(std::unique_ptr<aggregate> a) {
  fast_form f;
  const auto* fc = dynamic_cast<const fast_capable*>(a.get());
  if (fast_ && fc && fc->fast(f) && size_ <= UINT32_MAX) {
    fast_step step{static_cast<std::uint8_t>(f.kind), 0, 0, static_cast<std::uint32_t>(size_)};
    std::uint8_t* pos[2] = {&step.a, &step.b};
    for (std::size_t i = 0; i < f.args && fast_; ++i) {
      auto it = std::find(fast_fields_.begin(), fast_fields_.end(), f.field[i]);
      if (it == fast_fields_.end()) {
        if (fast_fields_.size() == fast_max_fields) {
          fast_ = false;
          break;
        }
        fast_fields_.push_back(f.field[i]);
        fast_number_.push_back(0);
        it = fast_fields_.end() - 1;
      }
      const auto at = static_cast<std::size_t>(it - fast_fields_.begin());
      if (f.number[i]) fast_number_[at] = 1;
      *pos[i] = static_cast<std::uint8_t>(at);
    }
    fast_steps_.push_back(step);
  } else {
    fast_ = false;
  }
  offsets_.push_back(size_);
  size_ += a->state_size();
  for (const auto& f : a->outputs()) outputs_.push_back(f);
  aggs_.push_back(std::move(a));
  inputs_.resize(aggs_.size());
}

aggregate_set aggregate_set::compile(const spec::config& cfg,
                                     const std::vector<spec::config::named_text>& entries,
                                     const core::schema& input, std::vector<bool>* compiled) {
  aggregate_set set;
  if (compiled) compiled->assign(entries.size(), false);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    const bool ok = cfg.gather([&] {
      std::size_t off = 0;
      try {
        set.append(compile_aggregate(e.name, e.text, input, &off));
      } catch (const std::invalid_argument& ex) {
        spec::mark at = e.at;
        // Columns inside one-line plain scalars are exact; otherwise point at the scalar.
        if (e.text.find('\n') == std::string::npos)
          at.column += static_cast<int>(off) + (e.quoted ? 1 : 0);
        throw spec::config_error(at, e.path, "aggregate '" + e.name + "': " + ex.what());
      }
    });
    if (compiled) (*compiled)[i] = ok;
  }
  return set;
}

aggregate_set aggregate_set::compile_text(const std::vector<aggregate_spec>& entries,
                                          const core::schema& input) {
  aggregate_set set;
  for (const auto& e : entries) set.append(compile_aggregate(e.name, e.text, input));
  return set;
}

void aggregate_set::init(std::byte* s) const {
  for (std::size_t i = 0; i < aggs_.size(); ++i) aggs_[i]->init(s + offsets_[i]);
}

void aggregate_set::destroy(std::byte* s) const noexcept {
  for (std::size_t i = 0; i < aggs_.size(); ++i) aggs_[i]->destroy(s + offsets_[i]);
}

bool aggregate_set::prepare(const core::value* row, std::int64_t t, std::string& error) {
  if (fast_) {
    // Each field once, numbers as doubles; anything else where a number is needed takes the
    // general path below, which finds the first aggregate to reject the row and says why.
    bool numbers = true;
    for (std::size_t i = 0; i < fast_fields_.size(); ++i) {
      const value& v = row[fast_fields_[i]];
      if (const double* d = std::get_if<double>(&v)) {
        fast_num_[i] = *d;
        fast_null_[i] = false;
      } else if (const std::int64_t* n = std::get_if<std::int64_t>(&v)) {
        fast_num_[i] = static_cast<double>(*n);
        fast_null_[i] = false;
      } else if (core::is_null(v)) {
        fast_num_[i] = 0;
        fast_null_[i] = true;
      } else {
        fast_null_[i] = false;
        if (fast_number_[i]) numbers = false;
      }
    }
    prepared_fast_ = numbers;
    if (numbers) return true;
  }
  for (std::size_t i = 0; i < aggs_.size(); ++i) {
    if (!aggs_[i]->prepare(row, t, inputs_[i], error)) {
      error = aggs_[i]->outputs().front().name + ": " + error;
      return false;
    }
  }
  return true;
}

void aggregate_set::add(std::byte* s, std::int64_t t) const {
  if (prepared_fast_) {
    for (const fast_step& f : fast_steps_) {
      void* p = s + f.offset;
      const double a = fast_num_[f.a], b = fast_num_[f.b];
      const bool na = fast_null_[f.a], nb = fast_null_[f.b];
      switch (static_cast<fast_kind>(f.kind)) {
        case fk_count_rows: count_rows::step(p, a, na, b, nb, t); break;
        case fk_count_values: count_values::step(p, a, na, b, nb, t); break;
        case fk_sum: sum_step(p, a, na, b, nb, t); break;
        case fk_min: extreme_agg<false>::step(p, a, na, b, nb, t); break;
        case fk_max: extreme_agg<true>::step(p, a, na, b, nb, t); break;
        case fk_welford: welford_step(p, a, na, b, nb, t); break;
        case fk_vwap: vwap_agg::step(p, a, na, b, nb, t); break;
        case fk_ohlc: ohlc_agg::step(p, a, na, b, nb, t); break;
        case fk_returns: returns_agg::step(p, a, na, b, nb, t); break;
        case fk_none: break;
      }
    }
    return;
  }
  for (std::size_t i = 0; i < aggs_.size(); ++i) aggs_[i]->add(s + offsets_[i], inputs_[i], t);
}

namespace {

/// A fast field as the step functions take it: a number (integers converted), or null.
inline void plain_arg(const value& v, double& d, bool& null) noexcept {
  if (const double* x = std::get_if<double>(&v)) {
    d = *x;
    null = false;
  } else if (const std::int64_t* i = std::get_if<std::int64_t>(&v)) {
    d = static_cast<double>(*i);
    null = false;
  } else {
    d = 0;
    null = core::is_null(v);  // a value count counts non-numbers too
  }
}

using step_fn = void (*)(void*, double, bool, double, bool, std::int64_t) noexcept;

/// One step over a block of rows; `fa`/`fb` are the argument columns (-1: none).
template <step_fn Step>
void plain_rows(const value* const* rows, std::byte* const* states, const std::int64_t* times,
                std::size_t n, std::uint32_t offset, int fa, int fb) {
  for (std::size_t r = 0; r < n; ++r) {
    double a = 0, b = 0;
    bool na = true, nb = true;
    if (fa >= 0) plain_arg(rows[r][fa], a, na);
    if (fb >= 0) plain_arg(rows[r][fb], b, nb);
    Step(states[r] + offset, a, na, b, nb, times[r]);
  }
}

} // namespace

void aggregate_set::add_plain(const value* const* rows, std::byte* const* states,
                              const std::int64_t* times, std::size_t n) const {
  for (const fast_step& f : fast_steps_) {
    const std::size_t nf = fast_fields_.size();
    const int fa = f.a < nf ? fast_fields_[f.a] : -1, fb = f.b < nf ? fast_fields_[f.b] : -1;
    switch (static_cast<fast_kind>(f.kind)) {
      case fk_count_rows: plain_rows<count_rows::step>(rows, states, times, n, f.offset, -1, -1); break;
      case fk_count_values: plain_rows<count_values::step>(rows, states, times, n, f.offset, fa, -1); break;
      case fk_sum: plain_rows<sum_step>(rows, states, times, n, f.offset, fa, -1); break;
      case fk_min: plain_rows<extreme_agg<false>::step>(rows, states, times, n, f.offset, fa, -1); break;
      case fk_max: plain_rows<extreme_agg<true>::step>(rows, states, times, n, f.offset, fa, -1); break;
      case fk_welford: plain_rows<welford_step>(rows, states, times, n, f.offset, fa, -1); break;
      case fk_vwap: plain_rows<vwap_agg::step>(rows, states, times, n, f.offset, fa, fb); break;
      case fk_ohlc: plain_rows<ohlc_agg::step>(rows, states, times, n, f.offset, fa, fb); break;
      case fk_returns: plain_rows<returns_agg::step>(rows, states, times, n, f.offset, fa, -1); break;
      case fk_none: break;
    }
  }
}

void aggregate_set::merge(std::byte* dst, const std::byte* src) const {
  for (std::size_t i = 0; i < aggs_.size(); ++i)
    aggs_[i]->merge(dst + offsets_[i], src + offsets_[i]);
}

void aggregate_set::result(const std::byte* s, core::value* out) const {
  for (std::size_t i = 0; i < aggs_.size(); ++i) {
    aggs_[i]->result(s + offsets_[i], out);
    out += aggs_[i]->outputs().size();
  }
}

void aggregate_set::write(const std::byte* s, core::state_writer& w) const {
  for (std::size_t i = 0; i < aggs_.size(); ++i) aggs_[i]->write(s + offsets_[i], w);
}

void aggregate_set::read(std::byte* s, core::state_reader& r) const {
  for (std::size_t i = 0; i < aggs_.size(); ++i) aggs_[i]->read(s + offsets_[i], r);
}

std::size_t aggregate_set::heap_bytes(const std::byte* s) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < aggs_.size(); ++i) n += aggs_[i]->heap_bytes(s + offsets_[i]);
  return n;
}

// ------------------------------------------------------------------ accumulator

accumulator::accumulator(const aggregate_set& set)
  : set_(&set), data_(new std::byte[std::max<std::size_t>(set.state_size(), 8)]) {
  set_->init(data_.get());
}

accumulator& accumulator::operator=(accumulator&& o) noexcept {
  if (this != &o) {
    if (set_ && data_) set_->destroy(data_.get());
    set_ = o.set_;
    data_ = std::move(o.data_);
    o.set_ = nullptr;
  }
  return *this;
}

accumulator::~accumulator() {
  if (set_ && data_) set_->destroy(data_.get());
}

} // namespace pel::operators
