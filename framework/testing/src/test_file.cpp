#include "pel/testing/test_file.hpp"

#include "pel/spec/suggest.hpp"
#include "pel/spec/yaml.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

namespace pel::testing {

namespace {

/// Reads the shape of one test file into a `test_file`, gathering every problem.
class reader {
public:
  explicit reader(std::string file, spec::diagnostics* gather = nullptr)
      : file_(std::move(file)), gather_(gather) {}

  test_file read(const spec::node_ptr& root) {
    test_file t;
    t.file = file_;
    if (!root || !root->is_map()) {
      error(root ? root->at : spec::mark{1, 1}, "",
            "a test file is a map with `pipeline:` and `cases:`");
      finish();
      return t;
    }
    check_keys(*root, "",
               {"pipeline", "description", "tolerance", "ordered", "contains", "timeout", "cases"});
    compare_options defaults;
    std::int64_t timeout = 60'000'000'000;
    read_compare(*root, "", defaults);
    read_timeout(*root, "", timeout);
    if (auto* e = root->find("pipeline")) {
      if (scalar(e->value, "pipeline", "the pipeline file to test, relative to this file")) {
        t.pipeline = e->value->text;
        t.pipeline_at = e->value->at;
      }
    } else {
      error(root->at, "pipeline",
            "missing: name the pipeline file to test (relative to this file)");
    }
    auto* cases = root->find("cases");
    if (cases == nullptr) {
      error(root->at, "cases",
            "missing: give a list of cases, each with `name:`, `inputs:` and `expect:`");
    } else if (!cases->value->is_sequence() || cases->value->items.empty()) {
      error(cases->value->at, "cases", "expected a non-empty list of cases");
    } else {
      std::set<std::string> names;
      for (std::size_t i = 0; i < cases->value->items.size(); ++i) {
        const auto& c = cases->value->items[i];
        std::string path = "cases[" + std::to_string(i) + "]";
        test_case tc;
        tc.timeout_ns = timeout;
        if (read_case(c, path, defaults, tc)) {
          if (!names.insert(tc.name).second)
            error(tc.at, path + ".name",
                  "case '" + tc.name + "' is named twice; give each case its own name");
          t.cases.push_back(std::move(tc));
        }
      }
    }
    finish();
    return t;
  }

private:
  void error(spec::mark at, std::string path, std::string message) {
    diags_.add(file_, at, std::move(path), std::move(message));
  }

  /// Hands the problems found over: into the gathering list, else thrown.
  void finish() {
    if (diags_.empty()) return;
    diags_.sort();
    if (gather_ != nullptr) {
      for (const auto& d : diags_.items()) gather_->add(d);
      diags_ = {};
      return;
    }
    throw spec::spec_error(std::move(diags_));
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  void check_keys(const spec::node& n, const std::string& path,
                  const std::vector<std::string>& allowed) {
    for (const auto& e : n.entries) {
      bool ok = false;
      for (const auto& a : allowed) ok = ok || a == e.key;
      if (!ok)
        error(e.key_mark, join(path, e.key),
              "unknown key '" + e.key + "'" + spec::did_you_mean(e.key, allowed) +
                  " (allowed: " + spec::join(allowed) + ")");
    }
  }

  bool scalar(const spec::node_ptr& n, const std::string& path, const std::string& what) {
    if (n && n->is_scalar()) return true;
    error(n ? n->at : spec::mark{}, path,
          "expected " + what + ", not a " + (n ? n->kind_name() : "null"));
    return false;
  }

  void read_bool(const spec::node& n, const std::string& path, const char* key, bool& out) {
    auto* e = n.find(key);
    if (e == nullptr) return;
    if (e->value->is_scalar() && !e->value->quoted &&
        (e->value->text == "true" || e->value->text == "false")) {
      out = e->value->text == "true";
      return;
    }
    error(e->value->at, join(path, key), "expected true or false");
  }

  void read_compare(const spec::node& n, const std::string& path, compare_options& o) {
    read_bool(n, path, "ordered", o.ordered);
    read_bool(n, path, "contains", o.contains);
    if (auto* e = n.find("tolerance")) {
      double v = -1;
      if (e->value->is_scalar() && !e->value->quoted) {
        errno = 0;
        char* end = nullptr;
        v = std::strtod(e->value->text.c_str(), &end);
        if (end == e->value->text.c_str() || *end != '\0' || errno != 0 || !std::isfinite(v))
          v = -1;
      }
      if (v < 0)
        error(e->value->at, join(path, "tolerance"),
              "expected a number >= 0, such as 1e-9 (relative, at least absolute below 1)");
      else
        o.tolerance = v;
    }
  }

  void read_timeout(const spec::node& n, const std::string& path, std::int64_t& out) {
    auto* e = n.find("timeout");
    if (e == nullptr) return;
    std::int64_t ns = 0;
    if (!e->value->is_scalar() || !spec::parse_duration(e->value->text, ns) || ns <= 0)
      error(e->value->at, join(path, "timeout"), "expected a duration such as 30s or 2m");
    else
      out = ns;
  }

  bool read_case(const spec::node_ptr& c, const std::string& path, compare_options defaults,
                 test_case& tc) {
    tc.at = c->at;
    tc.path = path;
    if (!c->is_map()) {
      error(c->at, path, "a case is a map with `name:`, `inputs:` and `expect:`");
      return false;
    }
    check_keys(*c, path,
               {"name", "description", "inputs", "expect", "dead_letters", "late", "tolerance",
                "ordered", "contains", "timeout"});
    read_compare(*c, path, defaults);
    read_timeout(*c, path, tc.timeout_ns);
    if (auto* e = c->find("name")) {
      if (scalar(e->value, path + ".name", "the case's name")) tc.name = e->value->text;
      if (tc.name.empty()) tc.name = "(unnamed)";
    } else {
      error(c->at, path + ".name",
            "missing: give the case a name (it is printed with PASS or FAIL)");
      tc.name = path;
    }
    if (auto* e = c->find("inputs")) {
      if (e->value->is_null()) {
      } else if (!e->value->is_map()) {
        error(e->value->at, path + ".inputs",
              "expected a map of source name: list of records (or {file: PATH})");
      } else {
        for (const auto& s : e->value->entries) read_input(s, path + ".inputs." + s.key, tc);
      }
    }
    if (auto* e = c->find("expect")) {
      if (e->value->is_null()) {
      } else if (!e->value->is_map()) {
        error(e->value->at, path + ".expect",
              "expected a map of sink or component name: list of records");
      } else {
        for (const auto& s : e->value->entries)
          read_expect(s, path + ".expect." + s.key, defaults, tc);
      }
    }
    read_counts(*c, path, "dead_letters", tc.dead_letters);
    read_counts(*c, path, "late", tc.late);
    if (tc.expect.empty() && tc.dead_letters.empty() && tc.late.empty())
      error(c->at, path,
            "case '" + tc.name + "' expects nothing: give `expect:`, `dead_letters:` or `late:`");
    return true;
  }

  void read_input(const spec::node::entry& s, const std::string& path, test_case& tc) {
    source_input in;
    in.source = s.key;
    in.at = s.key_mark;
    in.path = path;
    const auto& v = s.value;
    if (v->is_null()) {
    } else if (v->is_map()) {
      check_keys(*v, path, {"file"});
      if (auto* f = v->find("file")) {
        if (scalar(f->value, path + ".file",
                   "a file of JSON or CSV lines, relative to this file")) {
          in.file = f->value->text;
          in.file_at = f->value->at;
        }
      } else {
        error(v->at, path, "expected a list of records or {file: PATH}");
      }
    } else if (v->is_sequence()) {
      for (std::size_t i = 0; i < v->items.size(); ++i) {
        const auto& it = v->items[i];
        std::string ip = path + "[" + std::to_string(i) + "]";
        input_item item;
        item.at = it->at;
        item.path = ip;
        if (!it->is_map()) {
          error(it->at, ip, "expected a record (a map of field: value) or {watermark: TIME}");
          continue;
        }
        if (auto* w = it->find("watermark")) {
          if (it->entries.size() != 1) {
            error(it->at, ip,
                  "a watermark entry holds `watermark:` alone; put the record in an entry of its "
                  "own");
            continue;
          }
          if (!scalar(w->value, ip + ".watermark",
                      "an event time (a number in the source's format, or ISO 8601)"))
            continue;
          item.watermark = true;
          item.time = w->value;
        } else {
          auto rec = std::make_shared<spec::node>(*it);
          rec->entries.clear();
          for (const auto& f : it->entries) {
            if (f.key == "at") {
              if (scalar(f.value, ip + ".at",
                         "an event time (a number in the source's format, or ISO 8601)"))
                item.time = f.value;
            } else {
              rec->entries.push_back(f);
            }
          }
          item.record = rec;
        }
        in.items.push_back(std::move(item));
      }
    } else {
      error(v->at, path, "expected a list of records or {file: PATH}");
    }
    for (const auto& other : tc.inputs)
      if (other.source == in.source)
        error(in.at, path, "source '" + in.source + "' has two inputs");
    tc.inputs.push_back(std::move(in));
  }

  void read_records(const spec::node_ptr& list, const std::string& path, expectation& ex) {
    if (list->is_null()) return;
    if (!list->is_sequence()) {
      error(list->at, path, "expected a list of records (maps of field: value)");
      return;
    }
    for (std::size_t i = 0; i < list->items.size(); ++i) {
      const auto& r = list->items[i];
      if (!r->is_map()) {
        error(r->at, path + "[" + std::to_string(i) + "]",
              "expected a record (a map of field: value)");
        continue;
      }
      ex.records.push_back(r);
    }
  }

  void read_expect(const spec::node::entry& s, const std::string& path,
                   const compare_options& defaults, test_case& tc) {
    expectation ex;
    ex.target = s.key;
    ex.at = s.key_mark;
    ex.path = path;
    ex.options = defaults;
    if (s.value->is_map()) {
      check_keys(*s.value, path, {"records", "ordered", "contains", "tolerance"});
      read_compare(*s.value, path, ex.options);
      if (auto* r = s.value->find("records"))
        read_records(r->value, path + ".records", ex);
      else
        error(s.value->at, path + ".records",
              "missing: give the expected records (an empty list for none)");
    } else {
      read_records(s.value, path, ex);
    }
    tc.expect.push_back(std::move(ex));
  }

  void read_counts(const spec::node& c, const std::string& path, const char* key,
                   std::vector<count_expectation>& out) {
    auto* e = c.find(key);
    if (e == nullptr) return;
    const std::string p = join(path, key);
    if (!e->value->is_map()) {
      error(e->value->at, p, "expected a map of component name: count");
      return;
    }
    for (const auto& x : e->value->entries) {
      count_expectation ce;
      ce.component = x.key;
      ce.at = x.key_mark;
      ce.path = p + "." + x.key;
      const auto& t = x.value->text;
      bool ok = x.value->is_scalar() && !x.value->quoted && !t.empty() && t.size() < 19 &&
                t.find_first_not_of("0123456789") == std::string::npos;
      if (!ok) {
        error(x.value->at, ce.path, "expected a count (a whole number >= 0)");
        continue;
      }
      ce.count = std::stoull(t);
      out.push_back(std::move(ce));
    }
  }

  std::string file_;
  spec::diagnostics* gather_ = nullptr;
  spec::diagnostics diags_;
};

std::string folder_of(const std::string& file) {
  auto slash = file.find_last_of('/');
  return slash == std::string::npos ? std::string() : file.substr(0, slash + 1);
}

}  // namespace

std::string test_file::pipeline_path() const {
  return resolve(pipeline);
}

std::string test_file::resolve(const std::string& relative) const {
  if (!relative.empty() && relative.front() == '/') return relative;
  return folder_of(file) + relative;
}

test_file parse_test_file(const std::string& path) {
  return reader(path).read(spec::parse_yaml_file(path));
}

test_file parse_test_text(const std::string& text, const std::string& file) {
  return reader(file).read(spec::parse_yaml(text, file));
}

test_file check_test_file(const std::string& path, spec::diagnostics& diags) {
  spec::node_ptr root;
  try {
    root = spec::parse_yaml_file(path);
  } catch (const spec::spec_error& e) {
    for (const auto& d : e.diags().items()) diags.add(d);
    test_file t;
    t.file = path;
    return t;
  }
  return reader(path, &diags).read(root);
}

}  // namespace pel::testing
