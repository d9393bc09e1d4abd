#include "union.hpp"

#include <utility>

namespace pel::operators {

namespace {

/// Rows of input k are rewritten through table k (output position → input position, -1 for
/// a field that input lacks, left null). Inputs whose schema is the output's pass whole
/// batches through.
class union_operator final : public core::operator_base {
public:
  union_operator(core::schema_ptr out, std::vector<std::vector<int>> tables)
    : out_(std::move(out)), tables_(std::move(tables)) {
    for (const auto& t : tables_) {
      bool same = t.size() == out_->size();
      for (std::size_t j = 0; same && j < t.size(); ++j) same = t[j] == static_cast<int>(j);
      identity_.push_back(same);
    }
  }

  core::schema_ptr output_schema() const override { return out_; }
  /// No state: instances can come and go at any time.
  bool rescalable() const override { return true; }

  void process(core::batch& in, int input, core::outputs& out) override {
    const auto width = static_cast<std::uint32_t>(out_->size());
    if (out.main.width == 0) out.main.width = width;
    const std::size_t k = static_cast<std::size_t>(input);
    const std::size_t rows = in.size();
    if (identity_[k] && in.width == width) {
      if (out.main.empty()) {
        out.main.cells.swap(in.cells);
        out.main.times.swap(in.times);
      } else {
        out.main.reserve(out.main.size() + rows);
        for (std::size_t r = 0; r < rows; ++r) out.main.append_move(in.row(r), in.times[r]);
      }
      in.clear();
      return;
    }
    const auto& table = tables_[k];
    out.main.reserve(out.main.size() + rows);
    for (std::size_t r = 0; r < rows; ++r) {
      core::value* src = in.row(r);
      core::value* dst = out.main.append(in.times[r]);
      for (std::uint32_t j = 0; j < width; ++j)
        if (table[j] >= 0) dst[j] = std::move(src[table[j]]);
    }
    in.clear();
  }

private:
  core::schema_ptr out_;
  std::vector<std::vector<int>> tables_;
  std::vector<bool> identity_;
};

} // namespace

spec::component_schema union_schema() {
  spec::component_schema s;
  s.type = "union";
  s.kind = spec::component_kind::operator_;
  s.summary = "Merges two or more streams into one.";
  s.description =
      "The output schema is the union of the input fields by name, in the order they are first "
      "seen (first input's fields, then new fields of the second, ...). A field that an input "
      "lacks is null in its records. A field keeps its declared type when every input that has "
      "it declares the same type. Records keep their event time; the watermark is the minimum "
      "of the inputs'. Field positions are mapped when the pipeline is built, and values are "
      "moved, not copied.";
  s.params = {};
  s.example =
      "operators:\n"
      "  all_ticks:\n"
      "    type: union\n"
      "    input: [binance, coinbase]\n";
  s.min_inputs = 2;
  s.max_inputs = -1;
  return s;
}

core::operator_ptr make_union(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  if (inputs.size() < 2) cfg.fail("input", "union needs at least two inputs");
  std::vector<core::field> fields;
  std::vector<bool> type_conflict;
  for (const auto& in : inputs) {
    for (const auto& f : in->fields()) {
      std::size_t j = 0;
      while (j < fields.size() && fields[j].name != f.name) ++j;
      if (j == fields.size()) {
        fields.push_back(f);
        type_conflict.push_back(false);
      } else if (fields[j].type != f.type) {
        type_conflict[j] = true;
      }
    }
  }
  for (std::size_t j = 0; j < fields.size(); ++j)
    if (type_conflict[j]) fields[j].type = std::nullopt;
  auto out = std::make_shared<core::schema>(std::move(fields));
  std::vector<std::vector<int>> tables;
  for (const auto& in : inputs) {
    std::vector<int> t(out->size(), -1);
    for (std::size_t c = 0; c < in->size(); ++c)
      t[static_cast<std::size_t>(out->index_of((*in)[c].name))] = static_cast<int>(c);
    tables.push_back(std::move(t));
  }
  return std::make_unique<union_operator>(std::move(out), std::move(tables));
}

} // namespace pel::operators
