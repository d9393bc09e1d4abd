#include "nodes.hpp"

#include "pel/core/time.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <type_traits>

namespace pel::expr {

using core::value;
using core::value_type;

std::string describe(const value& v) {
  switch (core::type_of(v)) {
    case value_type::null: return "null";
    case value_type::boolean: return std::get<bool>(v) ? "bool true" : "bool false";
    case value_type::integer: return "int " + std::to_string(std::get<std::int64_t>(v));
    case value_type::number: return "double " + core::to_text(v);
    case value_type::string: {
      const auto& s = std::get<std::string>(v);
      std::string out = "string ";
      if (s.size() > 32) core::append_json(out, value{s.substr(0, 32) + "..."});
      else core::append_json(out, v);
      return out;
    }
  }
  return "?";
}

void check_string_size(std::size_t bytes) {
  if (bytes > max_string_bytes)
    throw eval_error("the result would be a string of " + std::to_string(bytes) +
                     " bytes, more than the " + std::to_string(max_string_bytes >> 20) +
                     " MiB a value may hold");
}

int node::test(const eval_ctx& c) const {
  value s;
  const value& v = eval(c, s);
  if (auto b = std::get_if<bool>(&v)) return *b ? 1 : 0;
  if (core::is_null(v)) return -1;
  fail("needs a bool, got " + describe(v));
}

namespace {

bool all_constant(const std::vector<const node*>& children) {
  for (auto c : children)
    if (!c->constant) return false;
  return true;
}

void span(node& n, const node& a, const node& b) {
  n.begin = a.begin;
  n.end = b.end;
}

/// One more than the tallest child.
int above(std::initializer_list<const node*> children) {
  int h = 0;
  for (auto c : children) h = std::max(h, c->height);
  return h + 1;
}

int above(const std::vector<node_ptr>& children, int at_least = 0) {
  int h = at_least;
  for (const auto& c : children) h = std::max(h, c->height);
  return h + 1;
}

// --- leaves -------------------------------------------------------------------------------

struct const_node final : node {
  value v;
  explicit const_node(value x) : v(std::move(x)) {
    constant = true;
    type = core::type_of(v);
    const_value = &v;
  }
  const value& eval(const eval_ctx&, value&) const override { return v; }
};

struct field_node final : node {
  int pos;
  explicit field_node(int p) : pos(p) { field_pos = p; }
  const value& eval(const eval_ctx& c, value&) const override { return c.row[pos]; }
};

struct event_time_node final : node {
  event_time_node() { type = value_type::integer; }
  const value& eval(const eval_ctx& c, value& s) const override {
    s = c.time;
    return s;
  }
};

struct now_node final : node {
  now_node() { type = value_type::integer; }
  const value& eval(const eval_ctx&, value& s) const override {
    s = core::processing_time::now().ns;
    return s;
  }
};

// --- arithmetic ---------------------------------------------------------------------------

const char* op_text(arith_op op) {
  switch (op) {
    case arith_op::add: return "+";
    case arith_op::sub: return "-";
    case arith_op::mul: return "*";
    case arith_op::div: return "/";
    case arith_op::mod: return "%";
  }
  return "?";
}

/// Stores a double result, or null when it is not finite.
inline const value& put_double(double d, value& s) {
  if (std::isfinite(d)) s = d;
  else s = std::monostate{};
  return s;
}

struct neg_node final : node {
  node_ptr a;
  const value& eval(const eval_ctx& c, value& s) const override {
    const value& x = a->eval(c, s);
    switch (core::type_of(x)) {
      case value_type::null: return x;
      case value_type::integer: {
        auto i = std::get<std::int64_t>(x);
        if (i == std::numeric_limits<std::int64_t>::min()) s = std::monostate{};
        else s = -i;
        return s;
      }
      case value_type::number: s = -std::get<double>(x); return s;
      default: fail("unary '-' needs a number, got " + describe(x));
    }
  }
};

struct arith_node : node {
  arith_op op;
  node_ptr a, b;
  const value& eval(const eval_ctx& c, value& s) const override {
    const value* x = a->leaf(c);
    if (x == nullptr) x = &a->eval(c, s);
    if (core::is_null(*x)) return *x;
    if (const value* y = b->leaf(c)) return apply(*x, *y, s);
    value sb;
    const value& y = b->eval(c, sb);
    return apply(*x, y, s);
  }

  /// `x op y` into `s`; `x` may be `s` itself, `y` is never `s`.
  const value& apply(const value& x, const value& y, value& s) const {
    if (core::is_null(y)) {
      s = std::monostate{};
      return s;
    }
    const auto tx = core::type_of(x), ty = core::type_of(y);
    if (tx == value_type::integer && ty == value_type::integer) {
      const auto i = std::get<std::int64_t>(x), j = std::get<std::int64_t>(y);
      std::int64_t r = 0;
      bool bad = false;
      switch (op) {
        case arith_op::add: bad = __builtin_add_overflow(i, j, &r); break;
        case arith_op::sub: bad = __builtin_sub_overflow(i, j, &r); break;
        case arith_op::mul: bad = __builtin_mul_overflow(i, j, &r); break;
        case arith_op::div:
        case arith_op::mod:
          if (j == 0 || (j == -1 && i == std::numeric_limits<std::int64_t>::min())) bad = true;
          else r = op == arith_op::div ? i / j : i % j;
          break;
      }
      if (bad) s = std::monostate{};
      else s = r;
      return s;
    }
    double dx, dy;
    if (core::as_number(x, dx) && core::as_number(y, dy)) {
      switch (op) {
        case arith_op::add: return put_double(dx + dy, s);
        case arith_op::sub: return put_double(dx - dy, s);
        case arith_op::mul: return put_double(dx * dy, s);
        case arith_op::div: return dy == 0 ? (s = std::monostate{}, s) : put_double(dx / dy, s);
        case arith_op::mod: return dy == 0 ? (s = std::monostate{}, s) : put_double(std::fmod(dx, dy), s);
      }
    }
    if (op == arith_op::add && tx == value_type::string && ty == value_type::string) {
      try {
        check_string_size(std::get<std::string>(x).size() + std::get<std::string>(y).size());
      } catch (const eval_error& e) {
        fail(std::string("'+': ") + e.what());
      }
      if (&x == &s) {  // our scratch already holds the left string: append in place
        std::get<std::string>(s) += std::get<std::string>(y);
      } else {
        std::string r;
        r.reserve(std::get<std::string>(x).size() + std::get<std::string>(y).size());
        r += std::get<std::string>(x);
        r += std::get<std::string>(y);
        s = std::move(r);
      }
      return s;
    }
    fail(std::string("cannot apply '") + op_text(op) + "' to " + describe(x) + " and " +
         describe(y) + (op == arith_op::add ? " (use concat() to join text with numbers)" : ""));
  }
};

/// `a op b` where both sides are fields or constants: two ints, or two numbers of which one
/// is a double, are computed inline (with the same overflow, zero and non-finite rules as
/// arith_node); every other case (nulls, strings, errors) takes arith_node's path.
template <arith_op OP>
struct arith_leaves_node final : arith_node {
  arith_leaves_node() { op = OP; }
  const value& eval(const eval_ctx& c, value& s) const override {
    const value& x = *a->leaf(c);
    const value& y = *b->leaf(c);
    if (x.index() == 2 && y.index() == 2) {
      const std::int64_t i = *std::get_if<std::int64_t>(&x), j = *std::get_if<std::int64_t>(&y);
      std::int64_t r = 0;
      bool bad = false;
      switch (OP) {
        case arith_op::add: bad = __builtin_add_overflow(i, j, &r); break;
        case arith_op::sub: bad = __builtin_sub_overflow(i, j, &r); break;
        case arith_op::mul: bad = __builtin_mul_overflow(i, j, &r); break;
        case arith_op::div:
        case arith_op::mod:
          if (j == 0 || (j == -1 && i == std::numeric_limits<std::int64_t>::min())) bad = true;
          else r = OP == arith_op::div ? i / j : i % j;
          break;
      }
      if (bad) s = std::monostate{};
      else s = r;
      return s;
    }
    double dx, dy;
    if ((x.index() == 3 || y.index() == 3) && core::as_number(x, dx) && core::as_number(y, dy)) {
      switch (OP) {
        case arith_op::add: return put_double(dx + dy, s);
        case arith_op::sub: return put_double(dx - dy, s);
        case arith_op::mul: return put_double(dx * dy, s);
        case arith_op::div: return dy == 0 ? (s = std::monostate{}, s) : put_double(dx / dy, s);
        case arith_op::mod:
          return dy == 0 ? (s = std::monostate{}, s) : put_double(std::fmod(dx, dy), s);
      }
    }
    if (core::is_null(x)) return x;
    return apply(x, y, s);
  }
};

// --- comparison ---------------------------------------------------------------------------

const char* op_text(cmp_op op) {
  switch (op) {
    case cmp_op::eq: return "==";
    case cmp_op::ne: return "!=";
    case cmp_op::lt: return "<";
    case cmp_op::le: return "<=";
    case cmp_op::gt: return ">";
    case cmp_op::ge: return ">=";
  }
  return "?";
}

/// Three-way comparison of two non-null values of comparable types; false when the types
/// cannot be compared.
inline bool compare3(const value& x, const value& y, int& out) {
  const auto tx = core::type_of(x), ty = core::type_of(y);
  if (tx == value_type::integer && ty == value_type::integer) {
    auto i = std::get<std::int64_t>(x), j = std::get<std::int64_t>(y);
    out = i < j ? -1 : (i > j ? 1 : 0);
    return true;
  }
  double dx, dy;
  if (core::as_number(x, dx) && core::as_number(y, dy)) {
    out = dx < dy ? -1 : (dx > dy ? 1 : 0);
    return true;
  }
  if (tx != ty) return false;
  if (tx == value_type::string) {
    int r = std::get<std::string>(x).compare(std::get<std::string>(y));
    out = r < 0 ? -1 : (r > 0 ? 1 : 0);
    return true;
  }
  if (tx == value_type::boolean) {
    out = static_cast<int>(std::get<bool>(x)) - static_cast<int>(std::get<bool>(y));
    return true;
  }
  return false;
}

inline const value& put_truth(int t, value& s) {
  if (t < 0) s = std::monostate{};
  else s = t == 1;
  return s;
}

struct cmp_node : node {
  cmp_op op;
  node_ptr a, b;
  cmp_node() {
    type = value_type::boolean;
    has_test = true;
  }
  const value& eval(const eval_ctx& c, value& s) const override { return put_truth(test(c), s); }

  int test(const eval_ctx& c) const override {
    const value* x = a->leaf(c);
    const value* y = b->leaf(c);
    if (x != nullptr && y != nullptr) return compare(*x, *y);  // no scratch values needed
    value sa, sb;
    if (x == nullptr) x = &a->eval(c, sa);
    if (core::is_null(*x)) return -1;
    if (y == nullptr) y = &b->eval(c, sb);
    return compare(*x, *y);
  }

protected:
  template <class T>
  int apply(T i, T j) const {
    switch (op) {
      case cmp_op::eq: return i == j;
      case cmp_op::ne: return i != j;
      case cmp_op::lt: return i < j;
      case cmp_op::le: return i <= j;
      case cmp_op::gt: return i > j;
      case cmp_op::ge: return i >= j;
    }
    return 0;
  }

  /// 1, 0, or -1 when either side is null.
  int compare(const value& x, const value& y) const {
    if (core::is_null(x) || core::is_null(y)) return -1;
    if (x.index() == y.index()) {  // the common cases, without the general three-way compare
      if (auto i = std::get_if<std::int64_t>(&x)) return apply(*i, *std::get_if<std::int64_t>(&y));
      if (auto d = std::get_if<double>(&x)) {
        const double dx = *d, dy = *std::get_if<double>(&y);
        if (dx == dx && dy == dy) return apply(dx, dy);  // NaN: the general path orders it
      }
    }
    int r;
    if (!compare3(x, y, r))
      fail(std::string("cannot compare ") + describe(x) + " with " + describe(y) + " using '" +
           op_text(op) + "'");
    return apply(r, 0);
  }
};

template <cmp_op OP, class T>
inline int relate(T i, T j) {
  switch (OP) {
    case cmp_op::eq: return i == j;
    case cmp_op::ne: return i != j;
    case cmp_op::lt: return i < j;
    case cmp_op::le: return i <= j;
    case cmp_op::gt: return i > j;
    case cmp_op::ge: return i >= j;
  }
  return 0;
}

/// `field op constant` with an int or double constant (`qty >= 100`): a field of the
/// constant's type is compared inline; anything else takes cmp_node's path.
template <class T>
struct cmp_field_const_base : cmp_node {
  int pos = 0;
  T k{};
};

template <cmp_op OP, class T>
struct cmp_field_const_node final : cmp_field_const_base<T> {
  cmp_field_const_node() { this->op = OP; }
  int test(const eval_ctx& c) const override {
    const T k = this->k;
    const value& x = c.row[this->pos];
    if (auto v = std::get_if<T>(&x)) {
      if constexpr (std::is_same_v<T, double>) {
        if (*v == *v && k == k) return relate<OP>(*v, k);
      } else {
        return relate<OP>(*v, k);
      }
    }
    return this->compare(x, *this->b->const_value);
  }
};

/// `expression op constant` with an int or double constant (`w % 2 == 0`): the left side is
/// evaluated, and a result of the constant's type is compared inline.
template <cmp_op OP, class T>
struct cmp_expr_const_node final : cmp_field_const_base<T> {
  cmp_expr_const_node() { this->op = OP; }
  int test(const eval_ctx& c) const override {
    value sa;
    const value& x = this->a->eval(c, sa);
    if (auto v = std::get_if<T>(&x)) {
      if constexpr (std::is_same_v<T, double>) {
        if (*v == *v && this->k == this->k) return relate<OP>(*v, this->k);
      } else {
        return relate<OP>(*v, this->k);
      }
    }
    return this->compare(x, *this->b->const_value);
  }
};

template <class T>
std::unique_ptr<cmp_node> make_cmp_expr_const(cmp_op op, T k) {
  std::unique_ptr<cmp_field_const_base<T>> n;
  switch (op) {
    case cmp_op::eq: n = std::make_unique<cmp_expr_const_node<cmp_op::eq, T>>(); break;
    case cmp_op::ne: n = std::make_unique<cmp_expr_const_node<cmp_op::ne, T>>(); break;
    case cmp_op::lt: n = std::make_unique<cmp_expr_const_node<cmp_op::lt, T>>(); break;
    case cmp_op::le: n = std::make_unique<cmp_expr_const_node<cmp_op::le, T>>(); break;
    case cmp_op::gt: n = std::make_unique<cmp_expr_const_node<cmp_op::gt, T>>(); break;
    case cmp_op::ge: n = std::make_unique<cmp_expr_const_node<cmp_op::ge, T>>(); break;
  }
  n->k = k;
  return n;
}

template <class T>
std::unique_ptr<cmp_node> make_cmp_field_const(cmp_op op, int pos, T k) {
  std::unique_ptr<cmp_field_const_base<T>> n;
  switch (op) {
    case cmp_op::eq: n = std::make_unique<cmp_field_const_node<cmp_op::eq, T>>(); break;
    case cmp_op::ne: n = std::make_unique<cmp_field_const_node<cmp_op::ne, T>>(); break;
    case cmp_op::lt: n = std::make_unique<cmp_field_const_node<cmp_op::lt, T>>(); break;
    case cmp_op::le: n = std::make_unique<cmp_field_const_node<cmp_op::le, T>>(); break;
    case cmp_op::gt: n = std::make_unique<cmp_field_const_node<cmp_op::gt, T>>(); break;
    case cmp_op::ge: n = std::make_unique<cmp_field_const_node<cmp_op::ge, T>>(); break;
  }
  n->pos = pos;
  n->k = k;
  return n;
}

// --- logic --------------------------------------------------------------------------------

/// -1 null, 0 false, 1 true; a non-bool fails at `n`.
inline int truth(const node& n, const value& v, const char* what) {
  if (auto b = std::get_if<bool>(&v)) return *b ? 1 : 0;
  if (core::is_null(v)) return -1;
  n.fail(std::string(what) + " needs a bool, got " + describe(v));
}

/// `truth` of `n`'s result, through `test` when `n` has it.
inline int truth_of(const node& n, const eval_ctx& c, const char* what) {
  if (n.has_test) return n.test(c);
  value s;
  return truth(n, n.eval(c, s), what);
}

struct not_node final : node {
  node_ptr a;
  not_node() {
    type = value_type::boolean;
    has_test = true;
  }
  const value& eval(const eval_ctx& c, value& s) const override { return put_truth(test(c), s); }
  int test(const eval_ctx& c) const override {
    int t = truth_of(*a, c, "'not'");
    return t < 0 ? -1 : 1 - t;
  }
};

struct and_node final : node {
  node_ptr a, b;
  and_node() {
    type = value_type::boolean;
    has_test = true;
  }
  const value& eval(const eval_ctx& c, value& s) const override { return put_truth(test(c), s); }
  int test(const eval_ctx& c) const override {
    int x = truth_of(*a, c, "'and'");
    if (x == 0) return 0;
    int y = truth_of(*b, c, "'and'");
    if (y == 0) return 0;
    return x < 0 || y < 0 ? -1 : 1;
  }
};

struct or_node final : node {
  node_ptr a, b;
  or_node() {
    type = value_type::boolean;
    has_test = true;
  }
  const value& eval(const eval_ctx& c, value& s) const override { return put_truth(test(c), s); }
  int test(const eval_ctx& c) const override {
    int x = truth_of(*a, c, "'or'");
    if (x == 1) return 1;
    int y = truth_of(*b, c, "'or'");
    if (y == 1) return 1;
    return x < 0 || y < 0 ? -1 : 0;
  }
};

struct is_null_node final : node {
  node_ptr a;
  bool negate = false;
  is_null_node() {
    type = value_type::boolean;
    has_test = true;
  }
  const value& eval(const eval_ctx& c, value& s) const override { return put_truth(test(c), s); }
  int test(const eval_ctx& c) const override {
    bool n;
    if (const value* x = a->leaf(c)) {
      n = core::is_null(*x);
    } else {
      value s;
      n = core::is_null(a->eval(c, s));
    }
    return negate ? !n : n;
  }
};

struct in_node final : node {
  node_ptr a;
  std::vector<node_ptr> list;
  bool negate = false;
  in_node() {
    type = value_type::boolean;
    has_test = true;
  }
  const value& eval(const eval_ctx& c, value& s) const override { return put_truth(test(c), s); }
  int test(const eval_ctx& c) const override {
    value sa, si;
    const value& x = a->eval(c, sa);
    if (core::is_null(x)) return -1;
    bool saw_null = false;
    for (const auto& item : list) {
      const value& y = item->eval(c, si);
      if (core::is_null(y)) {
        saw_null = true;
        continue;
      }
      int r;
      if (!compare3(x, y, r))
        item->fail("cannot compare " + describe(x) + " with " + describe(y) + " in 'in'");
      if (r == 0) return negate ? 0 : 1;
    }
    if (saw_null) return -1;
    return negate ? 1 : 0;
  }
};

struct cond_node final : node {
  node_ptr c, a, b;
  const value& eval(const eval_ctx& cx, value& s) const override {
    int t = truth_of(*c, cx, "the condition");
    return t == 1 ? a->eval(cx, s) : b->eval(cx, s);
  }
};

struct coalesce_node final : node {
  std::vector<node_ptr> args;
  const value& eval(const eval_ctx& c, value& s) const override {
    for (const auto& a : args) {
      const value& v = a->eval(c, s);
      if (!core::is_null(v)) return v;
    }
    s = std::monostate{};
    return s;
  }
};

struct call_node final : node {
  const function_def* def;
  std::vector<node_ptr> args;
  const value& eval(const eval_ctx& c, value& s) const override {
    constexpr std::size_t inline_args = 4;
    const std::size_t n = args.size();
    if (n <= inline_args) {
      value scratch[inline_args];
      const value* argv[inline_args];
      return run(c, s, scratch, argv);
    }
    std::vector<value> scratch(n);
    std::vector<const value*> argv(n);
    return run(c, s, scratch.data(), argv.data());
  }

  const value& run(const eval_ctx& c, value& s, value* scratch, const value** argv) const {
    const std::size_t n = args.size();
    for (std::size_t i = 0; i < n; ++i) {
      argv[i] = &args[i]->eval(c, scratch[i]);
      if (def->null_in_null_out && core::is_null(*argv[i])) {
        s = std::monostate{};
        return s;
      }
    }
    try {
      def->fn(argv, n, s);
    } catch (const located_error&) {
      throw;
    } catch (const eval_error& e) {
      fail(std::string(def->name) + ": " + e.what());
    }
    return s;
  }
};

std::optional<value_type> unify(const node& a, const node& b) {
  if (a.type == value_type::null) return b.type;
  if (b.type == value_type::null) return a.type;
  if (a.type == b.type) return a.type;
  return std::nullopt;
}

} // namespace

// --- makers -------------------------------------------------------------------------------

node_ptr make_const(value v) { return std::make_unique<const_node>(std::move(v)); }

node_ptr make_field(int pos, std::optional<value_type> t) {
  auto n = std::make_unique<field_node>(pos);
  n->type = t;
  return n;
}

node_ptr make_event_time() { return std::make_unique<event_time_node>(); }
node_ptr make_now() { return std::make_unique<now_node>(); }

node_ptr make_neg(node_ptr a) {
  auto n = std::make_unique<neg_node>();
  n->type = a->type;
  n->end = a->end;
  n->constant = a->constant;
  n->height = above({a.get()});
  n->a = std::move(a);
  return n;
}

node_ptr make_not(node_ptr a) {
  auto n = std::make_unique<not_node>();
  n->end = a->end;
  n->constant = a->constant;
  n->height = above({a.get()});
  n->a = std::move(a);
  return n;
}

node_ptr make_arith(arith_op op, node_ptr a, node_ptr b) {
  std::unique_ptr<arith_node> n;
  if (a->field_pos >= 0 || a->const_value != nullptr) {
    if (b->field_pos >= 0 || b->const_value != nullptr) {
      switch (op) {
        case arith_op::add: n = std::make_unique<arith_leaves_node<arith_op::add>>(); break;
        case arith_op::sub: n = std::make_unique<arith_leaves_node<arith_op::sub>>(); break;
        case arith_op::mul: n = std::make_unique<arith_leaves_node<arith_op::mul>>(); break;
        case arith_op::div: n = std::make_unique<arith_leaves_node<arith_op::div>>(); break;
        case arith_op::mod: n = std::make_unique<arith_leaves_node<arith_op::mod>>(); break;
      }
    }
  }
  if (!n) n = std::make_unique<arith_node>();
  span(*n, *a, *b);
  n->op = op;
  n->constant = all_constant({a.get(), b.get()});
  n->height = above({a.get(), b.get()});
  const auto ta = a->type, tb = b->type;
  auto numeric = [](std::optional<value_type> t) {
    return t == value_type::integer || t == value_type::number;
  };
  if (ta == value_type::integer && tb == value_type::integer) n->type = value_type::integer;
  else if (numeric(ta) && numeric(tb)) n->type = value_type::number;
  else if (op == arith_op::add && ta == value_type::string && tb == value_type::string)
    n->type = value_type::string;
  n->a = std::move(a);
  n->b = std::move(b);
  return n;
}

node_ptr make_cmp(cmp_op op, node_ptr a, node_ptr b) {
  std::unique_ptr<cmp_node> n;
  if (a->field_pos >= 0 && b->const_value != nullptr) {
    if (auto i = std::get_if<std::int64_t>(b->const_value))
      n = make_cmp_field_const(op, a->field_pos, *i);
    else if (auto d = std::get_if<double>(b->const_value))
      n = make_cmp_field_const(op, a->field_pos, *d);
  } else if (b->const_value != nullptr && a->const_value == nullptr) {
    if (auto i = std::get_if<std::int64_t>(b->const_value))
      n = make_cmp_expr_const(op, *i);
    else if (auto d = std::get_if<double>(b->const_value))
      n = make_cmp_expr_const(op, *d);
  }
  if (!n) n = std::make_unique<cmp_node>();
  span(*n, *a, *b);
  n->op = op;
  n->constant = all_constant({a.get(), b.get()});
  n->height = above({a.get(), b.get()});
  n->a = std::move(a);
  n->b = std::move(b);
  return n;
}

node_ptr make_and(node_ptr a, node_ptr b) {
  auto n = std::make_unique<and_node>();
  span(*n, *a, *b);
  n->constant = all_constant({a.get(), b.get()});
  n->height = above({a.get(), b.get()});
  n->a = std::move(a);
  n->b = std::move(b);
  return n;
}

node_ptr make_or(node_ptr a, node_ptr b) {
  auto n = std::make_unique<or_node>();
  span(*n, *a, *b);
  n->constant = all_constant({a.get(), b.get()});
  n->height = above({a.get(), b.get()});
  n->a = std::move(a);
  n->b = std::move(b);
  return n;
}

node_ptr make_is_null(node_ptr a, bool negate) {
  auto n = std::make_unique<is_null_node>();
  n->begin = a->begin;
  n->constant = a->constant;
  n->height = above({a.get()});
  n->negate = negate;
  n->a = std::move(a);
  return n;
}

node_ptr make_in(node_ptr a, std::vector<node_ptr> list, bool negate) {
  auto n = std::make_unique<in_node>();
  n->begin = a->begin;
  bool k = a->constant;
  for (const auto& i : list) k = k && i->constant;
  n->constant = k;
  n->height = above(list, a->height);
  n->negate = negate;
  n->a = std::move(a);
  n->list = std::move(list);
  return n;
}

node_ptr make_cond(node_ptr c, node_ptr a, node_ptr b) {
  auto n = std::make_unique<cond_node>();
  span(*n, *c, *b);
  n->constant = all_constant({c.get(), a.get(), b.get()});
  n->height = above({c.get(), a.get(), b.get()});
  n->type = unify(*a, *b);
  n->c = std::move(c);
  n->a = std::move(a);
  n->b = std::move(b);
  return n;
}

node_ptr make_coalesce(std::vector<node_ptr> args) {
  auto n = std::make_unique<coalesce_node>();
  bool k = true;
  std::optional<value_type> t = value_type::null;
  for (const auto& a : args) {
    k = k && a->constant;
    if (t == value_type::null) t = a->type;
    else if (a->type != value_type::null && a->type != t) t = std::nullopt;
  }
  n->constant = k;
  n->type = t;
  n->height = above(args);
  n->args = std::move(args);
  return n;
}

node_ptr make_call(const function_def& def, std::vector<node_ptr> args) {
  auto n = std::make_unique<call_node>();
  bool k = true;
  for (const auto& a : args) k = k && a->constant;
  n->constant = k;
  n->height = above(args);
  n->def = &def;
  n->type = def.result ? def.result(args) : std::nullopt;
  n->args = std::move(args);
  return n;
}

} // namespace pel::expr
