// YAML text → spec::node, through yaml-cpp's event parser. No yaml-cpp tree is built: the
// handler below makes our nodes directly, which lets it count nesting and alias expansion as
// the parser goes and stop it before anything grows out of bounds.
#include "internal.hpp"
#include "pel/core/utf8.hpp"
#include "pel/spec/yaml.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>
#include <sys/stat.h>
#include <unordered_map>

namespace pel::spec::detail {

// ---------------------------------------------------------------------------------------------
// reporter

void reporter::error(mark at, std::string path, std::string message) {
  if (diags_.size() >= max_reported_errors) {
    if (dropped_++ == 0) first_dropped_ = at;
    return;
  }
  diags_.add(file_, at, std::move(path), std::move(message));
}

void reporter::throw_if_any() {
  if (diags_.empty()) return;
  throw spec_error(take());
}

diagnostics reporter::take() {
  diags_.sort();
  if (dropped_ > 0)
    diags_.add(file_, first_dropped_, "",
               "too many errors: " + std::to_string(dropped_) + " more not shown; fix these first");
  dropped_ = 0;
  return std::move(diags_);
}

// ---------------------------------------------------------------------------------------------
// text checks

namespace {

/// Where byte `offset` of `text` is, 1-based, counting columns in characters.
mark position_of(std::string_view text, std::size_t offset) {
  mark m{1, 1};
  for (std::size_t i = 0; i < offset && i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      ++m.line;
      m.column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++m.column;
    }
  }
  return m;
}

/// Length of the UTF-8 sequence starting at `i`, or 0 when it is not valid UTF-8.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  std::uint32_t cp = 0;
  return core::utf8_decode(s, i, cp);
}

/// Refuses text that is not UTF-8 or holds control characters (binary data).
bool check_text(std::string_view text, reporter& out) {
  if (text.size() > max_file_bytes) {
    out.error({1, 1}, "", "the file is " + std::to_string(text.size()) +
                              " bytes; pipeline files may be at most " +
                              std::to_string(max_file_bytes) + " bytes (8 MiB)");
    return false;
  }
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == 0) {
      out.error(position_of(text, i), "",
                "binary data: a NUL byte at byte " + std::to_string(i) +
                    "; a pipeline file must be UTF-8 text");
      return false;
    }
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      out.error(position_of(text, i), "",
                "binary data: control character " + std::to_string(c) + " at byte " +
                    std::to_string(i) + "; a pipeline file must be UTF-8 text");
      return false;
    }
    const std::size_t len = utf8_length(text, i);
    if (len == 0) {
      out.error(position_of(text, i), "",
                "invalid UTF-8 at byte " + std::to_string(i) +
                    "; save the file as UTF-8 text");
      return false;
    }
    i += len;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// event handler

mark to_mark(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return {};
  return {m.line + 1, m.column + 1};
}

/// Stops the parser: the document is beyond a limit or refers to what it cannot.
struct fatal {
  mark at;
  std::string message;
};

class builder final : public YAML::EventHandler {
public:
  builder(reporter& out) : out_(out) {}

  node_ptr root() const { return root_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& m, YAML::anchor_t anchor) override {
    auto n = std::make_shared<node>();
    n->type = node::kind::null;
    n->at = to_mark(m);
    // yaml-cpp places an empty value at the next token; its key is where a reader looks.
    if (!stack_.empty() && stack_.back().n->is_map() && stack_.back().have_key)
      n->at = stack_.back().key_mark;
    count(1, n->at);
    finish(std::move(n), 1, 0, anchor);
  }

  void OnAlias(const YAML::Mark& m, YAML::anchor_t anchor) override {
    auto i = anchors_.find(anchor);
    if (i == anchors_.end())
      throw fatal{to_mark(m), "an alias refers to an anchor that encloses it; aliases may only "
                              "repeat a node that is complete"};
    count(i->second.size, to_mark(m));
    if (static_cast<int>(stack_.size()) + i->second.height > max_nesting_depth)
      throw fatal{to_mark(m), "nesting deeper than " + std::to_string(max_nesting_depth) +
                                  " levels once this alias is expanded; flatten the file"};
    place(i->second.n, i->second.size, i->second.height, to_mark(m));
  }

  void OnScalar(const YAML::Mark& m, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    auto n = std::make_shared<node>();
    n->at = to_mark(m);
    // yaml-cpp tags quoted and block scalars "!"; an explicit tag (e.g. !!str) also makes a string.
    const bool plain = tag.empty() || tag == "?";
    if (plain && (value == "null" || value == "Null" || value == "NULL" || value == "~")) {
      n->type = node::kind::null;
    } else {
      n->type = node::kind::scalar;
      n->text = value.find("${") == std::string::npos ? value : expand_env(value, n->at);
      n->quoted = !plain;
    }
    count(1, n->at);
    finish(std::move(n), 1, 0, anchor);
  }

  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(node::kind::sequence, to_mark(m), anchor);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(node::kind::map, to_mark(m), anchor);
  }
  void OnMapEnd() override { close(); }

private:
  /// Replaces `${NAME}` and `${NAME:-default}` with the environment's values (`$${` stands
  /// for a literal `${`). An unset variable without a default is an error at the scalar.
  std::string expand_env(const std::string& value, mark at) {
    std::string out;
    out.reserve(value.size());
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (value.compare(i, 3, "$${") == 0) {
        out += "${";
        i += 2;
        continue;
      }
      if (value.compare(i, 2, "${") != 0) {
        out += value[i];
        continue;
      }
      auto close = value.find('}', i + 2);
      if (close == std::string::npos) {
        out_.error(at, "", "unterminated '${' in '" + value + "'; write ${NAME} or ${NAME:-default}");
        return value;
      }
      std::string inner = value.substr(i + 2, close - i - 2);
      std::string name = inner, fallback;
      bool has_default = false;
      if (auto d = inner.find(":-"); d != std::string::npos) {
        name = inner.substr(0, d);
        fallback = inner.substr(d + 2);
        has_default = true;
      }
      const char* env = name.empty() ? nullptr : std::getenv(name.c_str());
      if (env != nullptr && *env != '\0') out += env;
      else if (has_default) out += fallback;
      else out_.error(at, "", "environment variable '" + name + "' is not set; export it, or "
                              "give a default as ${" + name + ":-default}");
      i = close;
    }
    return out;
  }

  struct anchored {
    node_ptr n;
    std::size_t size;
    int height;
  };
  struct frame {
    std::shared_ptr<node> n;
    YAML::anchor_t anchor = 0;
    std::string path;
    std::size_t size = 1;  ///< expanded nodes in this subtree so far
    int height = 1;        ///< levels of maps/lists in this subtree
    // maps: the key waiting for its value
    bool have_key = false;
    bool key_ok = false;
    std::string key;
    mark key_mark;
    std::unordered_map<std::string, mark> seen;
  };

  void count(std::size_t n, mark at) {
    total_ += n;
    if (total_ > max_expanded_nodes)
      throw fatal{at, "more than " + std::to_string(max_expanded_nodes) +
                          " nodes once aliases are expanded; the file is too large or its "
                          "aliases multiply without bound"};
  }

  /// Path of the node that comes next in the innermost collection.
  std::string child_path() const {
    if (stack_.empty()) return {};
    const frame& f = stack_.back();
    if (f.n->is_sequence()) return f.path + "[" + std::to_string(f.n->items.size()) + "]";
    if (f.have_key) return f.path.empty() ? f.key : f.path + "." + f.key;
    return f.path;
  }

  void open(node::kind k, mark at, YAML::anchor_t anchor) {
    if (static_cast<int>(stack_.size()) >= max_nesting_depth)
      throw fatal{at, "nesting deeper than " + std::to_string(max_nesting_depth) +
                          " levels; flatten the file"};
    count(1, at);
    frame f;
    f.n = std::make_shared<node>();
    f.n->type = k;
    f.n->at = at;
    f.anchor = anchor;
    f.path = child_path();
    stack_.push_back(std::move(f));
  }

  void close() {
    frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.n->is_map() && f.have_key) {
      // A key without value cannot come from the parser, but keep the tree consistent.
      f.have_key = false;
    }
    finish(std::move(f.n), f.size, f.height, f.anchor);
  }

  /// A complete node: remember its anchor and put it in its parent.
  void finish(std::shared_ptr<node> n, std::size_t size, int height, YAML::anchor_t anchor) {
    const mark at = n->at;
    node_ptr done = std::move(n);
    if (anchor != 0) anchors_[anchor] = anchored{done, size, height};
    place(std::move(done), size, height, at);
  }

  void place(node_ptr n, std::size_t size, int height, mark at) {
    if (stack_.empty()) {
      if (!root_) root_ = std::move(n);
      return;
    }
    frame& f = stack_.back();
    f.size += size;
    f.height = std::max(f.height, height + 1);
    if (f.n->is_sequence()) {
      f.n->items.push_back(std::move(n));
      return;
    }
    if (!f.have_key) {
      f.have_key = true;
      f.key_mark = at;
      f.key_ok = true;
      f.key.clear();
      if (n->is_scalar()) {
        f.key = n->text;
      } else if (n->is_null()) {
        f.key_ok = false;
        out_.error(at, f.path, "a key is empty; write a name before the ':'");
      } else {
        f.key_ok = false;
        out_.error(at, f.path,
                   std::string("a key is a ") + n->kind_name() + "; keys must be plain names");
      }
      return;
    }
    f.have_key = false;
    if (!f.key_ok) return;
    auto [it, inserted] = f.seen.emplace(f.key, f.key_mark);
    if (!inserted) {
      out_.error(f.key_mark, f.path.empty() ? f.key : f.path + "." + f.key,
                 "duplicate key '" + f.key + "' (first at line " + std::to_string(it->second.line) +
                     ", column " + std::to_string(it->second.column) + "); remove one of them");
      return;
    }
    f.n->entries.push_back({f.key, f.key_mark, std::move(n)});
  }

  reporter& out_;
  std::vector<frame> stack_;
  std::unordered_map<YAML::anchor_t, anchored> anchors_;
  std::size_t total_ = 0;
  node_ptr root_;
};

/// The mark of the end of the text, for errors yaml-cpp reports without a position.
mark end_of(std::string_view text) { return position_of(text, text.size()); }

} // namespace

node_ptr read_yaml(const std::string& text, reporter& out) {
  if (!check_text(text, out)) return nullptr;
  std::istringstream in(text);
  builder b(out);
  try {
    YAML::Parser parser(in);
    if (!parser.HandleNextDocument(b) || !b.root() || b.root()->is_null()) {
      out.error({1, 1}, "", "the file is empty; a pipeline needs at least `sources:` and `sinks:`");
      return nullptr;
    }
    builder second(out);
    if (parser.HandleNextDocument(second)) {
      out.error(second.root() ? second.root()->at : end_of(text), "",
                "a second YAML document ('---'); a pipeline file holds exactly one");
      return nullptr;
    }
  } catch (const fatal& f) {
    out.error(f.at, "", f.message);
    return nullptr;
  } catch (const YAML::Exception& e) {
    mark at = to_mark(e.mark);
    if (at.line == 0) at = end_of(text);
    out.error(at, "", "YAML syntax error: " + e.msg);
    return nullptr;
  } catch (const std::bad_alloc&) {
    out.error({1, 1}, "", "out of memory while reading the file");
    return nullptr;
  } catch (const std::exception& e) {
    out.error({1, 1}, "", std::string("cannot read the file as YAML: ") + e.what());
    return nullptr;
  }
  return b.root();
}

bool read_file(const std::string& path, std::string& text, reporter& out) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    out.error({}, "", "cannot read the file: it does not exist or is not accessible");
    return false;
  }
  if (S_ISDIR(st.st_mode)) {
    out.error({}, "", "cannot read the file: it is a directory");
    return false;
  }
  if (S_ISREG(st.st_mode) && static_cast<std::uint64_t>(st.st_size) > max_file_bytes) {
    out.error({1, 1}, "", "the file is " + std::to_string(st.st_size) +
                              " bytes; pipeline files may be at most " +
                              std::to_string(max_file_bytes) + " bytes (8 MiB)");
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    out.error({}, "", "cannot open the file for reading");
    return false;
  }
  // Read in chunks up to one byte more than allowed, so that a file that grew (or a pipe) is
  // still caught without zero-filling 8 MiB for every small file.
  text.clear();
  char chunk[64 * 1024];
  while (in && text.size() <= max_file_bytes) {
    in.read(chunk, sizeof chunk);
    text.append(chunk, static_cast<std::size_t>(in.gcount()));
  }
  if (text.size() > max_file_bytes) {
    out.error({1, 1}, "", "the file is larger than " + std::to_string(max_file_bytes) +
                              " bytes (8 MiB), the most a pipeline file may be");
    return false;
  }
  return true;
}

} // namespace pel::spec::detail

namespace pel::spec {

node_ptr parse_yaml(const std::string& text, const std::string& file) {
  detail::reporter out(file);
  auto root = detail::read_yaml(text, out);
  out.throw_if_any();
  return root;
}

node_ptr parse_yaml_file(const std::string& path) {
  detail::reporter out(path);
  std::string text;
  if (detail::read_file(path, text, out)) {
    auto root = detail::read_yaml(text, out);
    out.throw_if_any();
    return root;
  }
  out.throw_if_any();
  return nullptr;
}

} // namespace pel::spec
