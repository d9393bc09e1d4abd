#include "lookup_join.hpp"

#include "stateful_common.hpp"

#include <cerrno>
#include <cstring>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pel::operators {

namespace {

/// A loaded table: its schema and rows (row-major).
struct table_data {
  core::schema_ptr schema;
  std::vector<core::value> cells;
  std::size_t rows = 0;
};

/// A CSV or JSON scalar as a value: empty/null → null, true/false, whole numbers, numbers,
/// otherwise text.
core::value infer(std::string_view s, bool quoted) {
  if (quoted) return std::string(s);
  if (s.empty() || s == "null") return {};
  if (s == "true") return true;
  if (s == "false") return false;
  std::int64_t i;
  auto r = std::from_chars(s.data(), s.data() + s.size(), i);
  if (r.ec == std::errc() && r.ptr == s.data() + s.size()) return i;
  std::string tmp(s);
  char* end = nullptr;
  double d = std::strtod(tmp.c_str(), &end);
  if (end == tmp.c_str() + tmp.size()) return d;
  return tmp;
}

/// Splits one CSV line (RFC 4180 quotes, no embedded newlines).
void split_csv(const std::string& line, std::vector<std::pair<std::string, bool>>& out) {
  out.clear();
  std::string cur;
  bool quoted = false, in_quotes = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
      else if (c == '"') in_quotes = false;
      else cur += c;
    } else if (c == '"') {
      in_quotes = quoted = true;
    } else if (c == ',') {
      out.emplace_back(std::move(cur), quoted);
      cur.clear();
      quoted = false;
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.emplace_back(std::move(cur), quoted);
}

bool load_csv(std::istream& in, table_data& t, std::string& error) {
  std::string line;
  std::vector<std::pair<std::string, bool>> cells;
  if (!std::getline(in, line)) {
    error = "the file is empty (a CSV table needs a header line)";
    return false;
  }
  split_csv(line, cells);
  auto s = std::make_shared<core::schema>();
  for (auto& [name, q] : cells) s->add(name);
  t.schema = s;
  std::size_t n = 1;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty() || line == "\r") continue;
    split_csv(line, cells);
    if (cells.size() != s->size()) {
      error = "line " + std::to_string(n) + " has " + std::to_string(cells.size()) + " fields, the header " +
              std::to_string(s->size());
      return false;
    }
    for (auto& [text, q] : cells) t.cells.push_back(infer(text, q));
    ++t.rows;
  }
  return true;
}

/// Parses a flat JSON object (scalar values only) into name/value pairs.
bool parse_json_object(std::string_view s, std::vector<std::pair<std::string, core::value>>& out) {
  out.clear();
  std::size_t i = 0;
  auto ws = [&] { while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i; };
  auto str = [&](std::string& o) {
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\' && i + 1 < s.size()) {
        ++i;
        char e = s[i];
        o += e == 'n' ? '\n' : e == 't' ? '\t' : e;
      } else {
        o += s[i];
      }
      ++i;
    }
    if (i >= s.size()) return false;
    ++i;
    return true;
  };
  ws();
  if (i >= s.size() || s[i] != '{') return false;
  ++i;
  ws();
  if (i < s.size() && s[i] == '}') return true;
  while (i < s.size()) {
    ws();
    std::string name;
    if (!str(name)) return false;
    ws();
    if (i >= s.size() || s[i] != ':') return false;
    ++i;
    ws();
    core::value v;
    if (i < s.size() && s[i] == '"') {
      std::string text;
      if (!str(text)) return false;
      v = std::move(text);
    } else {
      auto b = i;
      while (i < s.size() && s[i] != ',' && s[i] != '}' && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      if (b == i) return false;
      v = infer(s.substr(b, i - b), false);
    }
    out.emplace_back(std::move(name), std::move(v));
    ws();
    if (i < s.size() && s[i] == ',') {
      ++i;
      continue;
    }
    if (i < s.size() && s[i] == '}') return true;
    return false;
  }
  return false;
}

bool load_json(std::istream& in, table_data& t, std::string& error) {
  std::string line;
  std::vector<std::vector<std::pair<std::string, core::value>>> objs;
  auto s = std::make_shared<core::schema>();
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    objs.emplace_back();
    if (!parse_json_object(line, objs.back())) {
      error = "line " + std::to_string(n) + " is not a flat JSON object";
      return false;
    }
    for (auto& [name, v] : objs.back())
      if (s->index_of(name) < 0) s->add(name);
  }
  t.schema = s;
  for (auto& o : objs) {
    auto base = t.cells.size();
    t.cells.resize(base + s->size());
    for (auto& [name, v] : o) t.cells[base + static_cast<std::size_t>(s->index_of(name))] = std::move(v);
    ++t.rows;
  }
  return true;
}

bool load_table(const std::string& path, const std::string& format, table_data& t, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot open '" + path + "': " + std::strerror(errno);
    return false;
  }
  bool json = format == "json" || (format == "auto" && (path.size() > 5 && (path.rfind(".json") == path.size() - 5 ||
                                                                            path.rfind(".jsonl") == path.size() - 6)));
  return json ? load_json(in, t, error) : load_csv(in, t, error);
}

class lookup_join_op final : public core::operator_base {
public:
  lookup_join_op(const spec::config& cfg, const core::schema_ptr& in) : in_(in) {
    path_ = cfg.get_string("path");
    format_ = cfg.get_string("format");
    table_data t;
    std::string error;
    if (!load_table(path_, format_, t, error)) cfg.fail("path", error);
    table_schema_ = t.schema;
    const auto key_names = cfg.get_string_list("key");
    if (key_names.empty()) cfg.fail("key", "name at least one key field");
    const char* table_param = cfg.has("table_key") ? "table_key" : "key";
    const auto table_names = cfg.has("table_key") ? cfg.get_string_list("table_key") : key_names;
    if (table_names.size() != key_names.size())
      cfg.report("table_key", "needs as many fields as `key`");
    left_ = resolve_names(cfg, "key", key_names, *in);
    table_key_ = resolve_names(cfg, table_param, table_names, *t.schema, "of the table");
    // Unknown names were reported and left out; only a gathering config gets here with them.
    const auto paired = std::min(left_.size(), table_key_.size());
    left_.resize(paired);
    table_key_.resize(paired);
    left_outer_ = cfg.get_string("how") == "left";
    out_ = join_schema(*in, *t.schema, table_key_, cfg.get_string("prefix"), right_map_);
    reload_ns_ = cfg.get_duration_ns("reload_interval");
    install(t);
  }

  core::schema_ptr output_schema() const override { return out_; }
  /// Its only state is the table, which every instance loads whole from the file (it is not
  /// checkpointed): instances can come and go at any time.
  bool rescalable() const override { return true; }
  std::int64_t timer_interval_ns() const override { return reload_ns_; }

  void process(core::batch& in, int, core::outputs& out) override {
    auto lw = in_->size();
    for (std::size_t i = 0; i < in.size(); ++i) {
      auto row = in.row(i);
      auto idx = table_.find(row, left_.data(), left_.size(),
                             state::hash_key(row, left_.data(), left_.size()));
      const std::vector<core::value>* match = idx == table_.npos ? nullptr : &table_.at(idx);
      if (!match && !left_outer_) continue;
      auto o = out.main.append(in.times[i]);
      for (std::size_t c = 0; c < lw; ++c) o[c] = std::move(row[c]);
      if (match)
        for (std::size_t c = 0; c < right_map_.size(); ++c) o[lw + c] = (*match)[static_cast<std::size_t>(right_map_[c])];
    }
  }

  void on_timer(core::processing_time, core::outputs&) override {
    std::error_code ec;
    auto mtime = std::filesystem::last_write_time(path_, ec);
    if (ec || mtime == mtime_) return;
    table_data t;
    std::string error;
    // A table that no longer loads or changed its fields keeps the previous contents.
    if (!load_table(path_, format_, t, error) || !(*t.schema == *table_schema_)) {
      ++reload_failures_;
      mtime_ = mtime;
      return;
    }
    install(t);
    ++reloads_;
  }

  /// Successful reloads and rejected ones, for status and tests.
  std::uint64_t reloads() const noexcept { return reloads_; }
  std::uint64_t reload_failures() const noexcept { return reload_failures_; }

private:
  void install(table_data& t) {
    std::error_code ec;
    mtime_ = std::filesystem::last_write_time(path_, ec);
    table_.clear();
    auto w = t.schema->size();
    for (std::size_t r = 0; r < t.rows; ++r) {
      const core::value* row = t.cells.data() + r * w;
      std::uint64_t hash;
      bool inserted;
      table_.at(find_or_insert(table_, row, table_key_, hash, inserted))
          .assign(row, row + w);  // the last row of a key wins
    }
  }

  core::schema_ptr in_, out_, table_schema_;
  std::string path_, format_;
  std::vector<int> left_, table_key_, right_map_;
  bool left_outer_ = false;
  std::int64_t reload_ns_ = 0;
  std::filesystem::file_time_type mtime_{};
  std::uint64_t reloads_ = 0, reload_failures_ = 0;
  state::keyed_map<std::vector<core::value>>
      table_;  // table key → table row; not snapshotted (reloaded from the file)
};

} // namespace

spec::component_schema lookup_join_schema() {
  using spec::param;
  spec::component_schema s;
  s.type = "lookup_join";
  s.summary = "Enriches records with the row of a table (CSV or JSON lines file) that has their key.";
  s.description =
      "The table at `path` is loaded when the operator is built (a CSV file with a header "
      "line, or one flat JSON object per line; values are typed as numbers, booleans or text). "
      "Each record whose `key` fields equal a table row's `table_key` fields (default: the "
      "same names) is emitted with that row's other fields appended (names the record "
      "already has are prefixed with `prefix`). `how: left` also emits records without a "
      "match, with nulls. With `reload_interval` the file is checked that often and reloaded "
      "when it changed; a new version with other fields, or that does not parse, is ignored "
      "and the previous table stays. Every instance holds the whole table, so the input is "
      "not repartitioned.";
  s.params = {
      param::string("path").req().doc("The table file."),
      param::string("format").one_of({"auto", "csv", "json"}).def("auto").doc("`auto`: JSON lines for .json/.jsonl, else CSV."),
      param::string_list("key").req().names_input_field(0).doc("Key fields of the records."),
      param::string_list("table_key").doc("Key fields of the table, in the same order (default: `key`)."),
      param::string("how").one_of({"inner", "left"}).def("left").doc("`inner` drops records without a match."),
      param::string("prefix").def("table_").doc("Prefix of table fields whose names the records already have."),
      param::duration("reload_interval").def("0s").doc("How often to check the file for changes (0s: never)."),
  };
  s.example =
      "operators:\n"
      "  with_sector:\n"
      "    type: lookup_join\n"
      "    input: trades\n"
      "    path: examples/trading/data/symbols.csv\n"
      "    key: symbol\n";
  return s;
}

core::operator_ptr make_lookup_join(const spec::config& cfg, const std::vector<core::schema_ptr>& inputs) {
  return std::make_unique<lookup_join_op>(cfg, inputs.at(0));
}

} // namespace pel::operators
