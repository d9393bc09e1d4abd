#pragma once
/// \file
/// Internal: the compiled form of an expression, a tree of small nodes. Each node returns a
/// reference to its result: a row cell, a constant it holds, or the caller's scratch value,
/// so reading a field or a literal never copies it.

#include "pel/expr/expression.hpp"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace pel::expr {

/// What every node sees while evaluating one row.
struct eval_ctx {
  const core::value* row = nullptr;
  std::int64_t time = 0;
};

/// An eval_error that knows which part of the text failed; expression::eval adds the text.
struct located_error : eval_error {
  std::size_t begin, end;
  located_error(const std::string& msg, std::size_t b, std::size_t e)
    : eval_error(msg), begin(b), end(e) {}
};

/// One compiled operation.
class node {
public:
  virtual ~node() = default;
  /// The result, by reference (see the file comment). Throws located_error.
  virtual const core::value& eval(const eval_ctx& c, core::value& scratch) const = 0;

  /// For nodes whose result is always bool or null (`has_test`): the result as 1 (true),
  /// 0 (false) or -1 (null), without building a value. Throws located_error.
  virtual int test(const eval_ctx& c) const;

  /// A leaf's value without a virtual call: the row cell of a field node, the value of a
  /// constant node, nullptr for any other node.
  const core::value* leaf(const eval_ctx& c) const noexcept {
    if (field_pos >= 0) return c.row + field_pos;
    return const_value;
  }

  std::optional<core::value_type> type;  ///< type of a non-null result, when known
  std::size_t begin = 0;                 ///< span in the expression text
  std::size_t end = 0;
  bool constant = false;                 ///< no fields, no time: may be folded
  bool has_test = false;                 ///< `test` is implemented (a bool-or-null result)
  int field_pos = -1;                    ///< position read by a field node, else -1
  int height = 1;                        ///< nodes on the longest path down to a leaf
  const core::value* const_value = nullptr;  ///< value of a constant node, else nullptr

  /// Throws a located_error spanning this node.
  [[noreturn]] void fail(const std::string& msg) const { throw located_error(msg, begin, end); }
};

using node_ptr = std::unique_ptr<node>;

/// Evaluating, folding and destroying a tree recurse once per level, so the parser refuses
/// trees taller than this (a long chain such as `a or b or ...`), and nesting written in the
/// text (parentheses, `not`, `!`, unary `-`/`+`, `?:` branches, function arguments, `in`
/// lists) deeper than max_nesting, before either can exhaust the stack.
constexpr int max_height = 1024;
constexpr int max_nesting = 256;

/// The longest string an operation may make (`+`, concat, replace). Records are bounded by
/// their sources, but `replace(s, 'a', s)` multiplies sizes: a longer result is an eval_error
/// for that record rather than an allocation the values choose.
constexpr std::size_t max_string_bytes = std::size_t(64) << 20;

/// Throws eval_error when a string of `bytes` would be longer than max_string_bytes.
void check_string_size(std::size_t bytes);

/// Short description of a value for error messages: `string "abc"`, `int 2`.
std::string describe(const core::value& v);

// --- node makers (nodes.cpp) ---------------------------------------------------------------

enum class arith_op { add, sub, mul, div, mod };
enum class cmp_op { eq, ne, lt, le, gt, ge };

node_ptr make_const(core::value v);
node_ptr make_field(int pos, std::optional<core::value_type> t);
node_ptr make_event_time();
node_ptr make_now();
node_ptr make_neg(node_ptr a);
node_ptr make_not(node_ptr a);
node_ptr make_arith(arith_op op, node_ptr a, node_ptr b);
node_ptr make_cmp(cmp_op op, node_ptr a, node_ptr b);
node_ptr make_and(node_ptr a, node_ptr b);
node_ptr make_or(node_ptr a, node_ptr b);
node_ptr make_is_null(node_ptr a, bool negate);
node_ptr make_in(node_ptr a, std::vector<node_ptr> list, bool negate);
node_ptr make_cond(node_ptr c, node_ptr a, node_ptr b);
node_ptr make_coalesce(std::vector<node_ptr> args);

// --- functions (functions.cpp) -------------------------------------------------------------

/// One built-in function. `fn` computes `out` from already-evaluated arguments; when
/// `null_in_null_out` is set the call node returns null as soon as an argument is null.
struct function_def {
  const char* name;
  int min_args;
  int max_args;  ///< -1: any number
  const char* signature;  ///< for messages and docs, e.g. "round(x[, digits])"
  bool null_in_null_out;
  void (*fn)(const core::value* const* args, std::size_t n, core::value& out);
  /// Result type from argument types (nullopt when unknown).
  std::optional<core::value_type> (*result)(const std::vector<node_ptr>& args);
};

/// The table of functions other than the special forms (coalesce, if, event_time, now_ns).
const std::vector<function_def>& functions();

/// A call of `def` with `args`.
node_ptr make_call(const function_def& def, std::vector<node_ptr> args);

} // namespace pel::expr
