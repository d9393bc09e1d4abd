#include "filter.hpp"

#include "stateless_common.hpp"

#include "pel/expr/expression.hpp"

#include <utility>

namespace pel::operators {

namespace {

/// Evaluates `where` on each row and appends the kept rows to the output batch, whose storage
/// is reused from batch to batch (it stays in the cache). The input is only read (short
/// strings and numbers are copied, which costs no allocation) and then cleared, so its memory,
/// usually cold, is never written back.
class filter_operator final : public core::operator_base {
public:
  filter_operator(core::schema_ptr in, expr::expression where)
    : in_(std::move(in)), where_(std::move(where)) {}

  core::schema_ptr output_schema() const override { return in_; }
  /// No state: instances can come and go at any time.
  bool rescalable() const override { return true; }

  void open(const core::operator_context& ctx) override { name_ = ctx.name; }

  void process(core::batch& in, int, core::outputs& out) override {
    const std::size_t rows = in.size();
    const std::uint32_t w = in.width;
    out.main.width = w;
    out.main.reserve(out.main.size() + rows);
    auto& cells = out.main.cells;
    // A row is several cache lines and the batch usually comes from memory: ask for the rows
    // a few ahead so that their loads overlap with this row's work.
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
      out.main.times.push_back(t);
      for (std::uint32_t c = 0; c < w; ++c) push_cell_keep_source(cells, row[c]);
    }
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
      "The output schema is the input schema. Kept records are never deep-copied: a value is "
      "moved, or copied when that allocates nothing (numbers, short strings).";
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
