#include "json_line.hpp"

#include <cstdlib>
#include <stdexcept>

namespace pel::e2e {

namespace {

/// A recursive-descent reader over one line.
class reader {
public:
  explicit reader(std::string_view s) : s_(s) {}

  bool object(json_object& out) {
    ws();
    if (!eat('{')) return fail("expected '{'");
    ws();
    if (eat('}')) return end();
    for (int guard = 0; guard < 100000; ++guard) {
      ws();
      std::string key;
      if (!string(key)) return false;
      ws();
      if (!eat(':')) return fail("expected ':'");
      ws();
      json_value v;
      if (!value(v, 0)) return false;
      if (out.fields.count(key)) return fail("duplicate key '" + key + "'");
      out.order.push_back(key);
      out.fields.emplace(std::move(key), std::move(v));
      ws();
      if (eat(',')) continue;
      if (eat('}')) return end();
      return fail("expected ',' or '}'");
    }
    return fail("too many fields");
  }

  std::string error;

private:
  bool end() {
    ws();
    if (i_ != s_.size()) return fail("text after the object");
    return true;
  }

  bool fail(std::string why) {
    if (error.empty()) error = std::move(why) + " at byte " + std::to_string(i_);
    return false;
  }

  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n'))
      ++i_;
  }

  bool eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }

  bool literal(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }

  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  bool hex4(unsigned& cp) {
    if (i_ + 4 > s_.size()) return fail("short \\u escape");
    cp = 0;
    for (int k = 0; k < 4; ++k) {
      char c = s_[i_++];
      cp <<= 4;
      if (c >= '0' && c <= '9')
        cp |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        cp |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        cp |= static_cast<unsigned>(c - 'A' + 10);
      else
        return fail("bad \\u escape");
    }
    return true;
  }

  bool string(std::string& out) {
    if (!eat('"')) return fail("expected a string");
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          unsigned cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && literal("\\u")) {
            unsigned lo = 0;
            if (!hex4(lo)) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default:
          return fail("bad escape");
      }
    }
    return fail("unterminated string");
  }

  bool number(json_value& v) {
    std::size_t start = i_;
    bool is_double = false;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c >= '0' && c <= '9') {
        ++i_;
      } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
        is_double = true;
        ++i_;
      } else {
        break;
      }
    }
    std::string text(s_.substr(start, i_ - start));
    if (text.empty() || text == "-") return fail("expected a value");
    char* endp = nullptr;
    if (is_double) {
      v = std::strtod(text.c_str(), &endp);
    } else {
      v = static_cast<std::int64_t>(std::strtoll(text.c_str(), &endp, 10));
    }
    if (endp != text.c_str() + text.size()) return fail("bad number '" + text + "'");
    return true;
  }

  // Skips a nested object or array, keeping its text.
  bool nested(json_value& v, int depth) {
    std::size_t start = i_;
    char open = s_[i_++];
    char close = open == '{' ? '}' : ']';
    ws();
    if (eat(close)) {
      v = raw_json{std::string(s_.substr(start, i_ - start))};
      return true;
    }
    for (int guard = 0; guard < 100000; ++guard) {
      ws();
      if (open == '{') {
        std::string k;
        if (!string(k)) return false;
        ws();
        if (!eat(':')) return fail("expected ':'");
        ws();
      }
      json_value inner;
      if (!value(inner, depth + 1)) return false;
      ws();
      if (eat(',')) continue;
      if (eat(close)) {
        v = raw_json{std::string(s_.substr(start, i_ - start))};
        return true;
      }
      return fail("expected ',' or the end of a nested value");
    }
    return fail("nested value too long");
  }

  bool value(json_value& v, int depth) {
    if (depth > 64) return fail("nested too deep");
    if (i_ >= s_.size()) return fail("expected a value");
    char c = s_[i_];
    if (c == '"') {
      std::string s;
      if (!string(s)) return false;
      v = std::move(s);
      return true;
    }
    if (c == '{' || c == '[') return nested(v, depth);
    if (literal("null")) {
      v = std::monostate{};
      return true;
    }
    if (literal("true")) {
      v = true;
      return true;
    }
    if (literal("false")) {
      v = false;
      return true;
    }
    return number(v);
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

const json_value& field(const json_object& o, const std::string& k) {
  auto it = o.fields.find(k);
  if (it == o.fields.end()) throw std::runtime_error("no field '" + k + "'");
  return it->second;
}

}  // namespace

double json_object::num(const std::string& k) const {
  const auto& v = field(*this, k);
  if (auto i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (auto d = std::get_if<double>(&v)) return *d;
  throw std::runtime_error("field '" + k + "' is not a number");
}

std::int64_t json_object::integer(const std::string& k) const {
  const auto& v = field(*this, k);
  if (auto i = std::get_if<std::int64_t>(&v)) return *i;
  throw std::runtime_error("field '" + k + "' is not an integer");
}

const std::string& json_object::str(const std::string& k) const {
  const auto& v = field(*this, k);
  if (auto s = std::get_if<std::string>(&v)) return *s;
  throw std::runtime_error("field '" + k + "' is not a string");
}

bool json_object::boolean(const std::string& k) const {
  const auto& v = field(*this, k);
  if (auto b = std::get_if<bool>(&v)) return *b;
  throw std::runtime_error("field '" + k + "' is not a bool");
}

std::optional<json_object> parse_json_object(std::string_view line, std::string* error) {
  reader r(line);
  json_object o;
  if (!r.object(o)) {
    if (error) *error = r.error;
    return std::nullopt;
  }
  return o;
}

std::vector<json_object> parse_json_lines(const std::string& text) {
  std::vector<json_object> out;
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    ++line_no;
    if (line.empty()) continue;
    std::string err;
    auto o = parse_json_object(line, &err);
    if (!o)
      throw std::runtime_error("line " + std::to_string(line_no) + " is not a JSON object (" + err +
                               "): " + std::string(line.substr(0, 200)));
    out.push_back(std::move(*o));
  }
  return out;
}

}  // namespace pel::e2e
