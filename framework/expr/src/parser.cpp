// Lexer and recursive-descent parser. Builds the node tree directly, resolving field names to
// positions and function names to table entries, and folds constant sub-expressions.

#include "parser.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>

namespace pel::expr {

using core::value;
using core::value_type;

namespace {

enum class tk { end, integer, number, string, ident, quoted_ident, sym };

struct token {
  tk kind = tk::end;
  std::size_t begin = 0;
  std::size_t end = 0;
  std::string text;  ///< symbol text, identifier, decoded string or number text
};

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
}

std::string lower_ascii(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

void append_utf8(std::string& out, unsigned cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::vector<token> lex(std::string_view s) {
  std::vector<token> out;
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (true) {
    while (i < n && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    token t;
    t.begin = i;
    if (i >= n) {
      t.kind = tk::end;
      t.end = n;
      out.push_back(std::move(t));
      return out;
    }
    const char c = s[i];
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && i + 1 < n && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      bool is_double = false;
      while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      if (i < n && s[i] == '.') {
        is_double = true;
        ++i;
        while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
      }
      if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        std::size_t j = i + 1;
        if (j < n && (s[j] == '+' || s[j] == '-')) ++j;
        if (j < n && std::isdigit(static_cast<unsigned char>(s[j]))) {
          is_double = true;
          i = j;
          while (i < n && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        }
      }
      if (i < n && (ident_char(s[i]))) {
        throw parse_error(t.begin, "invalid number '" + std::string(s.substr(t.begin, i + 1 - t.begin)) + "'");
      }
      t.kind = is_double ? tk::number : tk::integer;
      t.text = std::string(s.substr(t.begin, i - t.begin));
    } else if (ident_start(c)) {
      while (i < n && ident_char(s[i])) ++i;
      t.kind = tk::ident;
      t.text = std::string(s.substr(t.begin, i - t.begin));
    } else if (c == '`') {
      auto close = s.find('`', i + 1);
      if (close == std::string_view::npos) throw parse_error(i, "unterminated `name`: add the closing backtick");
      if (close == i + 1) throw parse_error(i, "empty `` name");
      t.kind = tk::quoted_ident;
      t.text = std::string(s.substr(i + 1, close - i - 1));
      i = close + 1;
    } else if (c == '\'' || c == '"') {
      ++i;
      std::string text;
      bool closed = false;
      while (i < n) {
        char ch = s[i];
        if (ch == c) {
          closed = true;
          ++i;
          break;
        }
        if (ch != '\\') {
          text += ch;
          ++i;
          continue;
        }
        if (i + 1 >= n) break;
        const char e = s[i + 1];
        switch (e) {
          case '\\': text += '\\'; break;
          case '\'': text += '\''; break;
          case '"': text += '"'; break;
          case '/': text += '/'; break;
          case 'n': text += '\n'; break;
          case 't': text += '\t'; break;
          case 'r': text += '\r'; break;
          case '0': text += '\0'; break;
          case 'u': {
            unsigned cp = 0;
            if (i + 6 > n) throw parse_error(i, "\\u needs four hex digits");
            auto r = std::from_chars(s.data() + i + 2, s.data() + i + 6, cp, 16);
            if (r.ec != std::errc() || r.ptr != s.data() + i + 6)
              throw parse_error(i, "\\u needs four hex digits");
            append_utf8(text, cp);
            i += 4;
            break;
          }
          default:
            throw parse_error(i, std::string("unknown escape '\\") + e +
                                     "' (use \\\\ \\' \\\" \\n \\t \\r \\0 or \\uXXXX)");
        }
        i += 2;
      }
      if (!closed) throw parse_error(t.begin, std::string("unterminated string: add the closing ") + c);
      t.kind = tk::string;
      t.text = std::move(text);
    } else {
      static const char* const two[] = {"==", "!=", "<=", ">=", "&&", "||", "<>"};
      t.kind = tk::sym;
      for (auto op : two) {
        if (i + 1 < n && s[i] == op[0] && s[i + 1] == op[1]) {
          t.text = op;
          break;
        }
      }
      if (t.text.empty()) {
        switch (c) {
          case '+': case '-': case '*': case '/': case '%': case '<': case '>': case '!':
          case '(': case ')': case ',': case '?': case ':':
            t.text = std::string(1, c);
            break;
          case '=': throw parse_error(i, "'=' is not an operator: use '==' to compare");
          case '&': throw parse_error(i, "'&' is not an operator: use '&&' or 'and'");
          case '|': throw parse_error(i, "'|' is not an operator: use '||' or 'or'");
          default: throw parse_error(i, std::string("unexpected character '") + c + "'");
        }
      }
      i += t.text.size();
    }
    t.end = i;
    out.push_back(std::move(t));
  }
}

class parser {
public:
  parser(std::string_view text, const core::schema& input, std::set<int>& used)
    : text_(text), toks_(lex(text)), input_(input), used_(used) {}

  node_ptr parse() {
    if (peek().kind == tk::end) throw parse_error(0, "expected an expression, found nothing");
    auto n = ternary();
    if (peek().kind != tk::end) {
      const auto& t = peek();
      throw parse_error(t.begin, "unexpected " + describe_tok(t) +
                                     " after a complete expression (missing operator?)");
    }
    return n;
  }

private:
  // --- tokens -----------------------------------------------------------------------------

  const token& peek(std::size_t k = 0) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  const token& next() {
    const token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }

  bool is_sym(const token& t, const char* s) const { return t.kind == tk::sym && t.text == s; }
  bool is_word(const token& t, const char* w) const {
    return t.kind == tk::ident && lower_ascii(t.text) == w;
  }
  bool accept_sym(const char* s) {
    if (!is_sym(peek(), s)) return false;
    next();
    return true;
  }
  bool accept_word(const char* w) {
    if (!is_word(peek(), w)) return false;
    next();
    return true;
  }

  std::string describe_tok(const token& t) const {
    if (t.kind == tk::end) return "end of expression";
    return "'" + std::string(text_.substr(t.begin, t.end - t.begin)) + "'";
  }

  const token& expect_sym(const char* s, const char* context) {
    if (!is_sym(peek(), s))
      throw parse_error(peek().begin, std::string("expected '") + s + "' " + context + ", found " +
                                          describe_tok(peek()));
    return next();
  }

  static bool is_keyword(const std::string& lowered) {
    static const char* const words[] = {"and", "or", "not", "is", "in", "null", "true", "false"};
    for (auto w : words)
      if (lowered == w) return true;
    return false;
  }

  /// Replaces a constant sub-tree by its value; keeps it when evaluating it fails, so that the
  /// error shows up per record as documented.
  static node_ptr fold(node_ptr n) {
    if (!n->constant) return n;
    try {
      value scratch;
      const value& v = n->eval(eval_ctx{}, scratch);
      auto k = make_const(v);
      k->begin = n->begin;
      k->end = n->end;
      if (core::is_null(v)) k->type = n->type ? n->type : value_type::null;
      return k;
    } catch (const eval_error&) {
      return n;
    }
  }

  /// `fold(n)`, refused when the tree it makes is taller than max_height (evaluating it
  /// would recurse that deep); `at` is the operator that made it too tall.
  static node_ptr finish(node_ptr n, std::size_t at) {
    n = fold(std::move(n));
    if (n->height > max_height)
      throw parse_error(at, "expression deeper than " + std::to_string(max_height) +
                                " operations applied one after another; split it into shorter "
                                "expressions (e.g. several map fields), and write a long list "
                                "of alternatives as x in (a, b, c)");
    return n;
  }

  /// One level of nesting written in the text, held while its inside is parsed: the parser
  /// recurses once per level, so more than max_nesting levels are refused at `at`, the token
  /// that opens the level.
  class nesting {
  public:
    nesting(parser& p, std::size_t at) : p_(p) {
      if (p_.depth_ >= max_nesting)
        throw parse_error(at, "expression nesting deeper than " + std::to_string(max_nesting) +
                                  " levels (parentheses, not, !, unary -, ?:, function "
                                  "arguments); flatten it, e.g. compute parts as separate "
                                  "fields in an earlier map");
      ++p_.depth_;
    }
    ~nesting() { --p_.depth_; }
    nesting(const nesting&) = delete;
    nesting& operator=(const nesting&) = delete;

  private:
    parser& p_;
  };

  static node_ptr located(node_ptr n, std::size_t b, std::size_t e) {
    n->begin = b;
    n->end = e;
    return n;
  }

  // --- grammar, lowest precedence first ----------------------------------------------------

  node_ptr ternary() {
    auto c = or_expr();
    if (!is_sym(peek(), "?")) return c;
    const auto at = next().begin;
    nesting level(*this, at);
    auto a = ternary();
    expect_sym(":", "in 'condition ? then : else'");
    auto b = ternary();
    return finish(make_cond(std::move(c), std::move(a), std::move(b)), at);
  }

  node_ptr or_expr() {
    auto a = and_expr();
    while (is_sym(peek(), "||") || is_word(peek(), "or")) {
      const auto at = next().begin;
      auto b = and_expr();
      a = finish(make_or(std::move(a), std::move(b)), at);
    }
    return a;
  }

  node_ptr and_expr() {
    auto a = not_expr();
    while (is_sym(peek(), "&&") || is_word(peek(), "and")) {
      const auto at = next().begin;
      auto b = not_expr();
      a = finish(make_and(std::move(a), std::move(b)), at);
    }
    return a;
  }

  node_ptr not_expr() {
    if (is_word(peek(), "not")) {
      auto b = next().begin;
      nesting level(*this, b);
      auto n = make_not(not_expr());
      n->begin = b;
      return finish(std::move(n), b);
    }
    return is_expr();
  }

  node_ptr is_expr() {
    auto a = equality();
    while (is_word(peek(), "is")) {
      const auto at = next().begin;
      bool negate = accept_word("not");
      if (!is_word(peek(), "null"))
        throw parse_error(peek().begin, "expected 'null' after 'is" + std::string(negate ? " not" : "") +
                                            "', found " + describe_tok(peek()));
      auto e = next().end;
      auto n = make_is_null(std::move(a), negate);
      n->end = e;
      a = finish(std::move(n), at);
    }
    return a;
  }

  node_ptr equality() {
    auto a = relational();
    while (true) {
      cmp_op op;
      if (is_sym(peek(), "==")) op = cmp_op::eq;
      else if (is_sym(peek(), "!=") || is_sym(peek(), "<>")) op = cmp_op::ne;
      else return a;
      const auto at = next().begin;
      auto b = relational();
      a = finish(make_cmp(op, std::move(a), std::move(b)), at);
    }
  }

  node_ptr relational() {
    auto a = in_expr();
    while (true) {
      cmp_op op;
      if (is_sym(peek(), "<")) op = cmp_op::lt;
      else if (is_sym(peek(), "<=")) op = cmp_op::le;
      else if (is_sym(peek(), ">")) op = cmp_op::gt;
      else if (is_sym(peek(), ">=")) op = cmp_op::ge;
      else return a;
      const auto at = next().begin;
      auto b = in_expr();
      a = finish(make_cmp(op, std::move(a), std::move(b)), at);
    }
  }

  node_ptr in_expr() {
    auto a = additive();
    bool negate = false;
    if (is_word(peek(), "not") && is_word(peek(1), "in")) {
      negate = true;
      next();
    }
    if (!is_word(peek(), "in")) return a;
    const auto at = next().begin;
    nesting level(*this, at);
    expect_sym("(", "after 'in' (write: x in (1, 2, 3))");
    std::vector<node_ptr> list;
    if (is_sym(peek(), ")")) throw parse_error(peek().begin, "the list after 'in' is empty");
    while (true) {
      list.push_back(ternary());
      if (accept_sym(",")) continue;
      break;
    }
    auto e = expect_sym(")", "to close the list after 'in'").end;
    auto n = make_in(std::move(a), std::move(list), negate);
    n->end = e;
    return finish(std::move(n), at);
  }

  node_ptr additive() {
    auto a = multiplicative();
    while (true) {
      arith_op op;
      if (is_sym(peek(), "+")) op = arith_op::add;
      else if (is_sym(peek(), "-")) op = arith_op::sub;
      else return a;
      const auto at = next().begin;
      auto b = multiplicative();
      a = finish(make_arith(op, std::move(a), std::move(b)), at);
    }
  }

  node_ptr multiplicative() {
    auto a = unary();
    while (true) {
      arith_op op;
      if (is_sym(peek(), "*")) op = arith_op::mul;
      else if (is_sym(peek(), "/")) op = arith_op::div;
      else if (is_sym(peek(), "%")) op = arith_op::mod;
      else return a;
      const auto at = next().begin;
      auto b = unary();
      a = finish(make_arith(op, std::move(a), std::move(b)), at);
    }
  }

  node_ptr unary() {
    const auto& t = peek();
    if (is_sym(t, "-")) {
      auto b = next().begin;
      // A literal right after '-' is read as one negative number, so that the smallest
      // int64 can be written.
      if (peek().kind == tk::integer || peek().kind == tk::number) {
        const auto& lit = next();
        return located(number_literal("-" + lit.text, lit.kind, b), b, lit.end);
      }
      nesting level(*this, b);
      auto n = make_neg(unary());
      n->begin = b;
      return finish(std::move(n), b);
    }
    if (is_sym(t, "+")) {
      nesting level(*this, next().begin);
      return unary();
    }
    if (is_sym(t, "!")) {
      auto b = next().begin;
      nesting level(*this, b);
      auto n = make_not(unary());
      n->begin = b;
      return finish(std::move(n), b);
    }
    return primary();
  }

  node_ptr number_literal(const std::string& text, tk kind, std::size_t at) {
    if (kind == tk::integer) {
      std::int64_t v = 0;
      auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      if (r.ec != std::errc() || r.ptr != text.data() + text.size())
        throw parse_error(at, "integer " + text + " is out of range (write it as a double, e.g. " + text + ".0)");
      return make_const(v);
    }
    char* end = nullptr;
    double d = std::strtod(text.c_str(), &end);
    if (!std::isfinite(d)) throw parse_error(at, "number " + text + " is out of range");
    return make_const(d);
  }

  node_ptr primary() {
    const token t = next();
    switch (t.kind) {
      case tk::end: throw parse_error(t.begin, "unexpected end of expression: an operand is missing");
      case tk::integer:
      case tk::number: return located(number_literal(t.text, t.kind, t.begin), t.begin, t.end);
      case tk::string: return located(make_const(t.text), t.begin, t.end);
      case tk::quoted_ident: return field(t);
      case tk::ident: {
        const auto w = lower_ascii(t.text);
        if (is_sym(peek(), "(")) return call(t);
        if (w == "true") return located(make_const(true), t.begin, t.end);
        if (w == "false") return located(make_const(false), t.begin, t.end);
        if (w == "null") return located(make_const(value{}), t.begin, t.end);
        if (is_keyword(w))
          throw parse_error(t.begin, "unexpected '" + t.text + "': an operand is missing before it" +
                                         " (a field with this name must be written `" + t.text + "`)");
        return field(t);
      }
      case tk::sym:
        if (t.text == "(") {
          nesting level(*this, t.begin);
          auto n = ternary();
          auto e = expect_sym(")", "to close '('").end;
          n->begin = t.begin;
          n->end = e;
          return n;
        }
        throw parse_error(t.begin, "unexpected " + describe_tok(t) + ": an operand is missing");
    }
    throw parse_error(t.begin, "unexpected token");
  }

  node_ptr field(const token& t) {
    int pos = input_.index_of(t.text);
    if (pos < 0) {
      std::vector<std::string> names;
      for (const auto& f : input_.fields()) names.push_back(f.name);
      std::string msg = "unknown field '" + t.text + "'";
      auto best = closest_name(t.text, names);
      if (!best.empty()) msg += "; did you mean '" + best + "'?";
      if (names.empty()) msg += " (the input has no fields)";
      else msg += " (fields: " + input_.names() + ")";
      throw parse_error(t.begin, msg);
    }
    used_.insert(pos);
    return located(make_field(pos, input_[static_cast<std::size_t>(pos)].type), t.begin, t.end);
  }

  node_ptr call(const token& name) {
    next();  // '('
    nesting level(*this, name.begin);
    std::vector<node_ptr> args;
    if (!is_sym(peek(), ")")) {
      while (true) {
        args.push_back(ternary());
        if (accept_sym(",")) continue;
        break;
      }
    }
    const auto e = expect_sym(")", ("to close the arguments of " + name.text + "(...)").c_str()).end;
    const auto w = lower_ascii(name.text);
    const auto n = static_cast<int>(args.size());
    auto arity = [&](int lo, int hi, const char* sig) {
      if (n < lo || (hi >= 0 && n > hi)) {
        std::string want = hi < 0 ? "at least " + std::to_string(lo)
                           : lo == hi ? std::to_string(lo)
                                      : std::to_string(lo) + " or " + std::to_string(hi);
        throw parse_error(name.begin, name.text + "() takes " + want + " argument" +
                                          (lo == 1 && hi == 1 ? "" : "s") + ", got " +
                                          std::to_string(n) + ": " + sig);
      }
    };
    node_ptr r;
    if (w == "coalesce") {
      arity(1, -1, "coalesce(x, ...)");
      r = make_coalesce(std::move(args));
    } else if (w == "if") {
      arity(3, 3, "if(condition, then, else)");
      r = make_cond(std::move(args[0]), std::move(args[1]), std::move(args[2]));
    } else if (w == "event_time") {
      arity(0, 0, "event_time()");
      r = make_event_time();
    } else if (w == "now_ns") {
      arity(0, 0, "now_ns()");
      r = make_now();
    } else {
      const function_def* def = nullptr;
      for (const auto& f : functions())
        if (w == f.name) def = &f;
      if (def == nullptr) {
        auto best = closest_name(name.text, function_names());
        std::string msg = "unknown function '" + name.text + "'";
        if (!best.empty()) msg += "; did you mean " + best + "()?";
        else msg += " (see the expression reference for the list)";
        throw parse_error(name.begin, msg);
      }
      arity(def->min_args, def->max_args, def->signature);
      r = make_call(*def, std::move(args));
    }
    return finish(located(std::move(r), name.begin, e), name.begin);
  }

  static const std::vector<std::string>& function_names() {
    static const std::vector<std::string> names = [] {
      std::vector<std::string> v = {"coalesce", "if", "event_time", "now_ns"};
      for (const auto& f : functions()) v.push_back(f.name);
      return v;
    }();
    return names;
  }

  std::string_view text_;
  std::vector<token> toks_;
  std::size_t pos_ = 0;
  int depth_ = 0;  ///< nesting levels open (see `nesting`)
  const core::schema& input_;
  std::set<int>& used_;
};

} // namespace

node_ptr parse(std::string_view text, const core::schema& input, std::vector<int>& fields_used) {
  std::set<int> used;
  parser p(text, input, used);
  auto root = p.parse();
  fields_used.assign(used.begin(), used.end());
  return root;
}

} // namespace pel::expr
