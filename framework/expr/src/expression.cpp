#include "pel/expr/expression.hpp"

#include "parser.hpp"

#include "pel/spec/suggest.hpp"

#include <algorithm>
#include <cctype>

namespace pel::expr {

using core::value;

struct expression::impl {
  std::string text;
  node_ptr root;
  std::vector<int> fields;
};

namespace {

const std::vector<int> no_fields;
const std::string no_text;

[[noreturn]] void rethrow_with_text(const located_error& e, const std::string& text) {
  std::string where = text.substr(e.begin, e.end > e.begin ? e.end - e.begin : std::string::npos);
  if (where.size() > 80) where = where.substr(0, 77) + "...";
  throw eval_error(std::string(e.what()) + " in '" + where + "'");
}

/// expression::eval_bool for a root without `test`: evaluate, then read the bool (kept out of
/// line so that the common path stays small).
[[gnu::noinline]] bool bool_of_value(const expression& e, const value* row, std::int64_t t) {
  value scratch;
  const value& r = e.eval_ref(row, t, scratch);
  if (auto b = std::get_if<bool>(&r)) return *b;
  if (core::is_null(r)) return false;
  throw eval_error("'" + e.text() + "' must give true or false, got " + describe(r));
}

} // namespace

const value& expression::eval_ref(const value* row, std::int64_t t, value& scratch) const {
  if (!impl_) {
    scratch = std::monostate{};
    return scratch;
  }
  try {
    return impl_->root->eval(eval_ctx{row, t}, scratch);
  } catch (const located_error& e) {
    rethrow_with_text(e, impl_->text);
  }
}

value expression::eval(const value* row, std::int64_t t) const {
  value scratch;
  const value& r = eval_ref(row, t, scratch);
  if (&r == &scratch) return scratch;
  return r;
}

bool expression::eval_bool(const value* row, std::int64_t t) const {
  const impl* p = impl_.get();
  if (p != nullptr && p->root->has_test) {  // comparisons and logic: no value is built
    try {
      return p->root->test(eval_ctx{row, t}) == 1;
    } catch (const located_error& e) {
      rethrow_with_text(e, p->text);
    }
  }
  return bool_of_value(*this, row, t);
}

bool expression::eval_number(const value* row, std::int64_t t, double& out) const {
  value scratch;
  const value& r = eval_ref(row, t, scratch);
  if (core::as_number(r, out)) return true;
  if (core::is_null(r)) return false;
  throw eval_error("'" + impl_->text + "' must give a number, got " + describe(r));
}

const std::vector<int>& expression::fields_used() const { return impl_ ? impl_->fields : no_fields; }

const std::string& expression::text() const { return impl_ ? impl_->text : no_text; }

std::optional<core::value_type> expression::result_type() const {
  if (!impl_) return core::value_type::null;
  return impl_->root->type;
}

bool expression::is_constant() const { return !impl_ || impl_->root->constant; }

expression compile(std::string_view text, const core::schema& input) {
  auto p = std::make_shared<expression::impl>();
  p->text = std::string(text);
  p->root = parse(p->text, input, p->fields);
  expression e;
  e.impl_ = std::move(p);
  return e;
}

namespace {

/// Turns an offset inside a scalar into a file position: exact for one-line scalars. For
/// multi-line (folded or block) scalars the file layout is not known from the text, so the
/// position of the value itself is given.
spec::mark locate(spec::mark at, bool quoted, std::string_view text, std::size_t offset) {
  if (at.line == 0 || text.find('\n') != std::string_view::npos) return at;
  at.column += static_cast<int>(std::min(offset, text.size())) + (quoted ? 1 : 0);
  return at;
}

expression compile_located(std::string_view text, const core::schema& input, spec::mark at,
                           bool quoted, const std::string& path) {
  try {
    return compile(text, input);
  } catch (const parse_error& e) {
    throw spec::config_error(locate(at, quoted, text, e.offset), path, e.what());
  }
}

} // namespace

expression compile_config(const spec::config& cfg, std::string_view key, const core::schema& input) {
  const std::string text = cfg.get_string(key);
  bool quoted = false;
  if (const auto& n = cfg.raw(); n && n->is_map())
    if (auto e = n->find(key); e && e->value) quoted = e->value->quoted;
  return compile_located(text, input, cfg.mark_of(key), quoted, cfg.path_of(key));
}

expression compile_named(const spec::config::named_text& e, const core::schema& input) {
  return compile_located(e.text, input, e.at, e.quoted, e.path);
}

std::string closest_name(std::string_view word, const std::vector<std::string>& candidates) {
  // The spec's typo distance (with transpositions: `agv` finds `avg`), so that operators and
  // expressions suggest the same names the YAML validation would.
  if (auto best = spec::suggest(word, candidates)) return *best;
  // The start of a name (`sym` for `symbol`, `distinct` for `distinct_count`) is worth
  // suggesting too, the shortest such name first.
  if (word.size() < 3) return {};
  auto lower = [](std::string_view s) {
    std::string r(s);
    for (auto& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return r;
  };
  const std::string w = lower(word);
  const std::string* best = nullptr;
  for (const auto& cand : candidates)
    if (lower(cand).rfind(w, 0) == 0 && (!best || cand.size() < best->size())) best = &cand;
  return best ? *best : std::string();
}

} // namespace pel::expr
