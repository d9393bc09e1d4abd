#include "pel/core/schema.hpp"

#include "pel/core/operator.hpp"

namespace pel::core {

int schema::index_of(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < fields_.size(); ++i)
    if (fields_[i].name == name) return static_cast<int>(i);
  return -1;
}

int schema::add(std::string name, std::optional<value_type> type) {
  fields_.push_back({std::move(name), type});
  return static_cast<int>(fields_.size() - 1);
}

std::string schema::names() const {
  std::string out;
  for (const auto& f : fields_) {
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

bool schema::operator==(const schema& other) const noexcept {
  if (fields_.size() != other.fields_.size()) return false;
  for (std::size_t i = 0; i < fields_.size(); ++i)
    if (fields_[i].name != other.fields_[i].name || fields_[i].type != other.fields_[i].type)
      return false;
  return true;
}

const schema_ptr& dead_letter_schema() {
  static const schema_ptr s = std::make_shared<schema>(std::vector<field>{
      {"reason", value_type::string},
      {"operator", value_type::string},
      {"source", value_type::string},
      {"position", value_type::string},
      {"record", value_type::string},
      {"time", value_type::integer},
  });
  return s;
}

void outputs::dead(std::string_view op, std::string_view reason, const value* row,
                   const schema& in, std::int64_t t, std::string_view source,
                   std::string_view position) {
  if (dead_letter.width == 0) dead_letter.width = 6;
  std::string rec = "{";
  if (row != nullptr) {
    for (std::size_t c = 0; c < in.size(); ++c) {
      if (c > 0) rec += ',';
      append_json(rec, value{in[c].name});
      rec += ':';
      append_json(rec, row[c]);
    }
  }
  rec += '}';
  value* r = dead_letter.append(t);
  r[0] = std::string(reason);
  r[1] = std::string(op);
  r[2] = std::string(source);
  r[3] = std::string(position);
  r[4] = std::move(rec);
  // Epoch milliseconds, like every time an operator writes (window_start, an alert's time);
  // the row's own event time stays in ns.
  r[5] = dead_letter_time(t);
}

} // namespace pel::core
