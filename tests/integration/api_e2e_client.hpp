#pragma once
/// \file
/// What the HTTP API's end-to-end tests share: the port `pel run --http 127.0.0.1:0` logs,
/// GET requests, and a JSON document read with simdjson (apart from pel's own writer).

#include "process.hpp"

#include <httplib.h>
#include <simdjson.h>

#include <regex>
#include <stdexcept>
#include <string>

namespace pel::e2e {

/// Waits for the log line `HTTP API and dashboard at http://HOST:PORT/` on stderr (only
/// stderr is read: stdout may be left to fill) and returns the port; 0 when it did not come.
inline int http_port(process& p, milliseconds timeout = milliseconds(30000)) {
  static const std::regex line(R"(HTTP API and dashboard at http://[^ ]+:([0-9]+)/)");
  std::smatch m;
  const bool found =
      p.wait_until_stderr([&] { return std::regex_search(p.err(), m, line); }, timeout);
  return found ? std::stoi(m[1].str()) : 0;
}

/// GET `path` on 127.0.0.1:`port` (with `token` as a bearer token when not empty).
inline httplib::Result http_get(int port, const std::string& path, const std::string& token = "") {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(20, 0);
  httplib::Headers h;
  if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
  return cli.Get(path, h);
}

/// A parsed JSON document; fields are addressed by JSON pointer (`/pipelines/0/name`).
class json_doc {
public:
  explicit json_doc(const std::string& text) : text_(text) {
    ok_ = parser_.parse(text_).get(root_) == simdjson::SUCCESS;
  }
  json_doc(const json_doc&) = delete;
  json_doc& operator=(const json_doc&) = delete;

  bool ok() const { return ok_; }
  const std::string& text() const { return text_; }
  bool has(const std::string& pointer) const {
    simdjson::dom::element e;
    return ok_ && root_.at_pointer(pointer).get(e) == simdjson::SUCCESS;
  }
  simdjson::dom::element at(const std::string& pointer) const {
    simdjson::dom::element e;
    if (!ok_ || root_.at_pointer(pointer).get(e) != simdjson::SUCCESS)
      throw std::runtime_error("no " + pointer + " in " + text_);
    return e;
  }
  double num(const std::string& pointer) const {
    double d = 0;
    if (at(pointer).get_double().get(d) != simdjson::SUCCESS)
      throw std::runtime_error(pointer + " is not a number in " + text_);
    return d;
  }
  std::string str(const std::string& pointer) const {
    std::string_view s;
    if (at(pointer).get_string().get(s) != simdjson::SUCCESS)
      throw std::runtime_error(pointer + " is not a string in " + text_);
    return std::string(s);
  }
  bool is_null(const std::string& pointer) const { return at(pointer).is_null(); }
  std::size_t size(const std::string& pointer) const {
    simdjson::dom::array a;
    if (at(pointer).get_array().get(a) == simdjson::SUCCESS) return a.size();
    simdjson::dom::object o;
    if (at(pointer).get_object().get(o) == simdjson::SUCCESS) return o.size();
    throw std::runtime_error(pointer + " is not an array or object in " + text_);
  }

private:
  std::string text_;
  simdjson::dom::parser parser_;
  simdjson::dom::element root_;
  bool ok_ = false;
};

}  // namespace pel::e2e
