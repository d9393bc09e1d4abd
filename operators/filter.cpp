#include "filter.hpp"

#include "pel/expr/expression.hpp"

#include <utility>

namespace pel::operators {

namespace {

/// Evaluates `where` on each row and compacts the kept rows to the front of the batch by
/// moving them, then hands the batch's storage to the output when it is empty (no copies).
class filter_operator final : public core::operator_base {
public:
  filter_operator(core::schema_ptr in, expr::expression where)
    : in_(std::move(in)), where_(std::move(where)) {}

  core::schema_ptr output_schema() const override { return in_; }

  void open(const core::operator_context& ctx) override { name_ = ctx.name; }

  void process(core::batch& in, int, core::outputs& out) override {
    const std::size_t rows = in.size();
    const std::uint32_t w = in.width;
    std::size_t kept = 0;
    // The batch usually arrives from memory, not from the cache, and a row is several cache
    // lines: ask for the rows a few ahead so that their loads overlap with this row's work.
    constexpr std::size_t ahead = 8;
    const std::size_t row_bytes = std::size_t{w} * sizeof(core::value);
    for (std::size_t r = 0; r < rows; ++r) {
      if (r + ahead < rows) {
        const char* p = reinterpret_cast<const char*>(in.row(r + ahead));
        for (std::size_t o = 0; o < row_bytes; o += 64) __builtin_prefetch(p + o);
      }
      core::value* row = in.row(r);
      const std::int64_t t = in.times[r];
      bool keep = false;
      try {
        keep = where_.eval_bool(row, t);
      } catch (const expr::eval_error& e) {
        out.dead(name_, e.what(), row, *in_, t);
      }
      if (!keep) continue;
      if (kept != r) {
        core::value* dst = in.row(kept);
        for (std::uint32_t c = 0; c < w; ++c) dst[c] = std::move(row[c]);
        in.times[kept] = t;
      }
      ++kept;
    }
    in.cells.resize(kept * w);
    in.times.resize(kept);
    if (kept == 0) return;
    if (out.main.empty()) {
      out.main.width = w;
      out.main.cells.swap(in.cells);
      out.main.times.swap(in.times);
      in.clear();
      return;
    }
    out.main.reserve(out.main.size() + kept);
    for (std::size_t r = 0; r < kept; ++r) out.main.append_move(in.row(r), in.times[r]);
    in.clear();
  }

private:
  core::schema_ptr in_;
  expr::expression where_;
  std::string name_ = "filter";
};

} // namespace

spec::component_schema filter_schema() {
  spec::component_schema s;
  s.type = "filter";
  s.kind = spec::component_kind::operator_;
  s.summary = "Keeps the records for which a condition is true.";
  s.description =
      "Evaluates the `where` expression on every record. Records for which it is `true` go to "
      "the main output unchanged; records for which it is `false` or `null` are dropped. A record "
      "on which the expression fails (for example comparing a number with a string) goes to "
      "`<name>.dead_letter` with the error as its reason.\n\n"
      "The output schema is the input schema. Kept records are moved, never copied.";
  s.params = {
      spec::param::expression("where").req().doc(
          "The condition, in the expression language (see expressions.md). Must give a bool; "
          "null counts as false."),
  };
  s.example =
      "operators:\n"
      "  large_trades:\n"
      "    type: filter\n"
      "    input: ticks\n"
      "    where: qty >= 100 && symbol in ('BTC-USD', 'ETH-USD')\n";
  s.min_inputs = 1;
  s.max_inputs = 1;
  return s;
}

core::operator_ptr make_filter(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  const core::schema_ptr& in = inputs.at(0);
  auto where = expr::compile_config(cfg, "where", *in);
  if (auto t = where.result_type(); t && *t != core::value_type::boolean && *t != core::value_type::null)
    cfg.fail("where", "the condition '" + where.text() + "' gives " +
                          std::string(core::to_string(*t)) + ", not bool: compare it, e.g. `" +
                          where.text() + " > 0`");
  return std::make_unique<filter_operator>(in, std::move(where));
}

} // namespace pel::operators
