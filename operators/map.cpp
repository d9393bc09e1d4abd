#include "map.hpp"

#include "stateless_common.hpp"

#include "pel/expr/expression.hpp"

#include <algorithm>
#include <utility>

namespace pel::operators {

namespace {

std::string_view trim_view(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

/// One computed field: the expression and the position it writes in the working row.
struct computed_field {
  std::string name;
  expr::expression e;
  int pos;
};

/// Two ways to compute a row:
/// - direct (when no expression reads a field computed or replaced by an earlier one, the
///   common case): every expression is evaluated on the input row itself into its own result
///   slot, then the output row is built by moving the selected input cells and results;
///   input fields that are not selected are never touched;
/// - working row (otherwise): the input values are moved into a working row (input fields,
///   then the new fields), each expression writes its result into its slot in order, then the
///   output row is filled by moving the working row's cells through the projection table.
class map_operator final : public core::operator_base {
public:
  map_operator(core::schema_ptr in, core::schema_ptr work, core::schema_ptr out,
               std::vector<computed_field> fields, std::vector<int> projection)
    : in_(std::move(in)), work_schema_(std::move(work)), out_(std::move(out)),
      fields_(std::move(fields)), projection_(std::move(projection)),
      work_(work_schema_->size()), results_(fields_.size()) {
    pass_through_ = fields_.empty() && projection_.size() == in_->size();
    for (std::size_t j = 0; pass_through_ && j < projection_.size(); ++j)
      pass_through_ = projection_[j] == static_cast<int>(j);
    // Which computed field last wrote each working position (-1: the input value).
    const int in_width = static_cast<int>(in_->size());
    std::vector<int> writer(work_.size(), -1);
    direct_ = true;
    for (std::size_t k = 0; k < fields_.size(); ++k) {
      for (int u : fields_[k].e.fields_used())
        if (u >= in_width || writer[static_cast<std::size_t>(u)] >= 0) direct_ = false;
      writer[static_cast<std::size_t>(fields_[k].pos)] = static_cast<int>(k);
    }
    for (int p : projection_) source_.push_back(writer[static_cast<std::size_t>(p)]);
  }

  core::schema_ptr output_schema() const override { return out_; }
  /// No state: instances can come and go at any time.
  bool rescalable() const override { return true; }

  void open(const core::operator_context& ctx) override { name_ = ctx.name; }

  void process(core::batch& in, int, core::outputs& out) override {
    const auto out_width = static_cast<std::uint32_t>(out_->size());
    if (out.main.width == 0) out.main.width = out_width;
    if (pass_through_ && out.main.empty()) {  // only renames: hand the batch over as it is
      out.main.cells.swap(in.cells);
      out.main.times.swap(in.times);
      in.clear();
      return;
    }
    const std::size_t rows = in.size();
    out.main.reserve(out.main.size() + rows);
    if (direct_) process_direct(in, out);
    else process_working_row(in, out);
    in.clear();
  }

private:
  void process_direct(core::batch& in, core::outputs& out) {
    const std::size_t rows = in.size();
    const std::size_t nf = fields_.size(), out_width = projection_.size();
    auto& cells = out.main.cells;
    // Rows a few ahead are requested early (a batch straight from a source or a channel is
    // usually not in the cache; see filter).
    constexpr std::size_t ahead = 8;
    const std::size_t row_bytes = std::size_t{in.width} * sizeof(core::value);
    for (std::size_t r = 0; r < rows; ++r) {
      if (r + ahead < rows) {
        const char* p = reinterpret_cast<const char*>(in.row(r + ahead));
        for (std::size_t o = 0; o < row_bytes; o += 64) __builtin_prefetch(p + o);
      }
      core::value* src = in.row(r);
      const std::int64_t t = in.times[r];
      bool ok = true;
      for (std::size_t k = 0; k < nf; ++k) {
        try {
          // A reference to a row cell or a constant is copied now: the row's cells may be
          // moved into the output below.
          const core::value& v = fields_[k].e.eval_ref(src, t, results_[k]);
          if (&v != &results_[k]) results_[k] = v;
        } catch (const expr::eval_error& e) {
          out.dead(name_, "fields." + fields_[k].name + ": " + e.what(), src, *in_, t);
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      out.main.times.push_back(t);
      for (std::size_t j = 0; j < out_width; ++j) {
        const int k = source_[j];
        push_cell(cells, k < 0 ? src[projection_[j]] : results_[static_cast<std::size_t>(k)]);
      }
    }
  }

  void process_working_row(core::batch& in, core::outputs& out) {
    const std::size_t rows = in.size();
    const std::uint32_t in_width = in.width;
    const std::size_t out_width = projection_.size();
    auto& cells = out.main.cells;
    core::value scratch;
    for (std::size_t r = 0; r < rows; ++r) {
      core::value* src = in.row(r);
      const std::int64_t t = in.times[r];
      for (std::uint32_t c = 0; c < in_width; ++c) work_[c] = std::move(src[c]);
      if (!compute(t, scratch, out)) continue;
      out.main.times.push_back(t);
      for (std::size_t j = 0; j < out_width; ++j) push_cell(cells, work_[projection_[j]]);
    }
  }

  /// Evaluates every computed field into the working row; false (and a dead letter) on error.
  bool compute(std::int64_t t, core::value& scratch, core::outputs& out) {
    for (const auto& f : fields_) {
      try {
        const core::value& v = f.e.eval_ref(work_.data(), t, scratch);
        if (&v == &scratch) work_[f.pos] = std::move(scratch);
        else if (&v != &work_[f.pos]) work_[f.pos] = v;
      } catch (const expr::eval_error& e) {
        // The record as it stood: its input fields (earlier fields may have replaced some).
        out.dead(name_, "fields." + f.name + ": " + e.what(), work_.data(), *in_, t);
        return false;
      }
    }
    return true;
  }

  core::schema_ptr in_;
  core::schema_ptr work_schema_;
  core::schema_ptr out_;
  std::vector<computed_field> fields_;
  std::vector<int> projection_;  ///< output position → working-row position
  std::vector<core::value> work_;
  std::vector<core::value> results_;  ///< direct mode: one result per computed field
  std::vector<int> source_;  ///< direct mode, by output position: computed field, or -1 (input)
  bool direct_ = false;
  bool pass_through_ = false;
  std::string name_ = "map";
};

} // namespace

spec::component_schema map_schema() {
  spec::component_schema s;
  s.type = "map";
  s.kind = spec::component_kind::operator_;
  s.summary = "Computes, renames, drops and selects fields.";
  s.description =
      "Applies its settings in this order:\n\n"
      "1. `fields`: each `name: expression` is evaluated in the order written. A new name is "
      "appended to the record; an existing name is replaced in place. Later entries see the "
      "results of earlier ones (`notional: price * qty` then `notional_k: notional / 1000`).\n"
      "2. `rename`: `old: new` pairs.\n"
      "3. `drop`: fields to remove.\n"
      "4. `select`: the fields to keep, in this order (all others are removed).\n\n"
      "`rename`, `drop` and `select` name fields as they are after the previous steps; an unknown "
      "name is a lint error. The output schema is computed when the pipeline is built. A record "
      "on which an expression fails goes to `<name>.dead_letter` with the field name and the "
      "error as its reason. Unchanged values are moved, not copied.";
  s.params = {
      spec::param::expression_map("fields").doc(
          "Fields to compute: `name: expression`, evaluated in order; existing names are replaced "
          "in place, new names appended."),
      spec::param::string_map("rename").doc("Fields to rename: `old_name: new_name`."),
      spec::param::string_list("drop").doc("Fields to remove."),
      spec::param::string_list("select").doc(
          "Fields to keep, in this order; every other field is removed."),
  };
  s.example =
      "operators:\n"
      "  notional:\n"
      "    type: map\n"
      "    input: ticks\n"
      "    fields:\n"
      "      notional: price * qty\n"
      "      side: upper(side)\n"
      "    rename: {qty: quantity}\n"
      "    drop: [exchange]\n";
  s.min_inputs = 1;
  s.max_inputs = 1;
  return s;
}

core::operator_ptr make_map(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  const core::schema_ptr& in = inputs.at(0);
  if (!cfg.has("fields") && !cfg.has("rename") && !cfg.has("drop") && !cfg.has("select"))
    cfg.fail("fields", "map needs at least one of fields, rename, drop or select");

  // 1. computed fields, each compiled against the working schema so far.
  std::vector<core::field> work(in->fields());
  std::vector<computed_field> computed;
  for (const auto& entry : cfg.get_expression_map("fields")) {
    core::schema so_far(work);
    expr::expression e;
    int pos = so_far.index_of(entry.name);
    if (!cfg.gather([&] { e = expr::compile_named(entry, so_far); })) {
      // Reported; the name still exists for the entries after it, its type unknown, so
      // that they are checked without a second error about it.
      if (pos < 0) work.push_back({entry.name, std::nullopt});
      else work[static_cast<std::size_t>(pos)].type = std::nullopt;
      continue;
    }
    // A field copied as it is (`time: window_start`) stays an event time.
    std::int64_t unit = 0;
    if (const int src = so_far.index_of(trim_view(entry.text)); src >= 0)
      unit = so_far[static_cast<std::size_t>(src)].time_unit_ns;
    if (pos < 0) {
      pos = static_cast<int>(work.size());
      work.push_back({entry.name, e.result_type(), unit});
    } else {
      work[static_cast<std::size_t>(pos)].type = e.result_type();
      work[static_cast<std::size_t>(pos)].time_unit_ns = unit;
    }
    if (work[static_cast<std::size_t>(pos)].type == core::value_type::null)
      work[static_cast<std::size_t>(pos)].type = std::nullopt;
    computed.push_back({entry.name, std::move(e), pos});
  }
  auto work_schema = std::make_shared<core::schema>(work);

  // 2. rename: names only.
  std::vector<std::string> names;
  for (const auto& f : work) names.push_back(f.name);
  const auto renames = cfg.get_string_map("rename");
  for (std::size_t i = 0; i < renames.size(); ++i) {
    const auto& [from, to] = renames[i];
    const auto at = entry_key_mark(cfg, "rename", i);
    const auto path = cfg.path_of("rename") + "." + from;
    const int pos = position_of(names, from);
    if (pos < 0) {
      report_at(cfg, at, path, unknown_field_message(from, names));
    } else if (to.empty()) {
      report_at(cfg, at, path, "the new name is empty");
    } else if (to != from && position_of(names, to) >= 0) {
      report_at(cfg, at, path,
                "cannot rename '" + from + "' to '" + to +
                    "': a field with that name exists (drop it or rename it first)");
    } else {
      names[static_cast<std::size_t>(pos)] = to;
    }
  }

  // 3. drop, 4. select: positions into the working row.
  std::vector<int> projection;
  for (std::size_t i = 0; i < names.size(); ++i) projection.push_back(static_cast<int>(i));
  auto current_names = [&] {
    std::vector<std::string> v;
    for (int p : projection) v.push_back(names[static_cast<std::size_t>(p)]);
    return v;
  };
  // Each unknown name is reported at its item (the first throws unless gathering) and
  // skipped. These names are not checked by the planner: they may name fields made or
  // renamed by the steps before.
  const auto drops = cfg.get_string_list("drop");
  for (std::size_t i = 0; i < drops.size(); ++i) {
    auto current = current_names();
    const int at = position_of(current, drops[i]);
    if (at < 0) {
      report_at(cfg, item_mark(cfg, "drop", i), item_path(cfg, "drop", i),
                unknown_field_message(drops[i], current));
      continue;
    }
    projection.erase(projection.begin() + at);
  }
  if (cfg.has("select")) {
    const auto selects = cfg.get_string_list("select");
    const auto current = current_names();
    std::vector<int> chosen;
    for (std::size_t i = 0; i < selects.size(); ++i) {
      const int at = position_of(current, selects[i]);
      if (at < 0) {
        report_at(cfg, item_mark(cfg, "select", i), item_path(cfg, "select", i),
                  unknown_field_message(selects[i], current));
        continue;
      }
      const auto before = selects.begin() + static_cast<std::ptrdiff_t>(i);
      if (std::find(selects.begin(), before, selects[i]) != before) {
        report_at(cfg, item_mark(cfg, "select", i), item_path(cfg, "select", i),
                  "'" + selects[i] + "' is selected twice");
        continue;
      }
      chosen.push_back(projection[static_cast<std::size_t>(at)]);
    }
    projection = std::move(chosen);
  }

  std::vector<core::field> out_fields;
  for (int p : projection)
    out_fields.push_back({names[static_cast<std::size_t>(p)], work[static_cast<std::size_t>(p)].type,
                          work[static_cast<std::size_t>(p)].time_unit_ns});
  return std::make_unique<map_operator>(in, std::move(work_schema),
                                        std::make_shared<core::schema>(std::move(out_fields)),
                                        std::move(computed), std::move(projection));
}

} // namespace pel::operators
