#include "api_client.hpp"

#include <httplib.h>

#include <cctype>
#include <cstdlib>
#include <stdexcept>

namespace pel::cli {

std::string api_reply::error_text() const {
  if (!reached()) return transport_error;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (!parser.parse(body).get(doc)) {
    std::string e = json_string(doc, "error");
    if (!e.empty()) return e;
  }
  return "HTTP " + std::to_string(status);
}

api_client::api_client(std::string url, const std::string& token) {
  if (url.find("://") == std::string::npos) url = "http://" + url;
  const auto scheme_end = url.find("://") + 3;
  const auto path = url.find('/', scheme_end);
  if (path != std::string::npos) url.erase(path);  // the API's paths are absolute
  if (url.size() == scheme_end) throw std::invalid_argument("no host in the URL");
  url_ = url;
  http_ = std::make_unique<httplib::Client>(url_);
  if (!http_->is_valid()) throw std::invalid_argument("not an http://host:port URL: " + url_);
  http_->set_connection_timeout(2, 0);
  http_->set_read_timeout(5, 0);
  http_->set_keep_alive(true);
  if (!token.empty()) http_->set_bearer_token_auth(token);
}

api_client::~api_client() = default;

namespace {

api_reply transport_failure(const httplib::Result& r, const std::string& url) {
  api_reply out;
  std::string why;
  switch (r.error()) {
    case httplib::Error::Connection:
      why = "cannot connect (is `pel run --http` serving there?)";
      break;
    case httplib::Error::ConnectionTimeout:
      why = "the connection timed out";
      break;
    case httplib::Error::Read:
      why = "the connection closed or the reply timed out";
      break;
    case httplib::Error::Canceled:
      why = "cancelled";
      break;
    default:
      why = httplib::to_string(r.error());
  }
  out.transport_error = url + ": " + why;
  return out;
}

}  // namespace

api_reply api_client::get(const std::string& path) {
  auto r = http_->Get(path);
  if (!r) return transport_failure(r, url_);
  api_reply out;
  out.status = r->status;
  out.body = std::move(r->body);
  return out;
}

api_reply api_client::stream(const std::string& path,
                             const std::function<bool(std::string_view)>& on_data) {
  int status = 0;
  std::string error_body;
  http_->set_read_timeout(24 * 3600, 0);  // rows of a quiet component may be far apart
  auto r = http_->Get(
      path,
      [&](const httplib::Response& res) {
        status = res.status;
        return true;
      },
      [&](const char* data, std::size_t n) {
        if (status != 200) {
          if (error_body.size() < 64 * 1024) error_body.append(data, n);
          return true;
        }
        return on_data(std::string_view(data, n));
      });
  http_->set_read_timeout(5, 0);
  api_reply out;
  out.status = status;
  out.body = std::move(error_body);
  if (status == 0) return transport_failure(r, url_);
  return out;
}

void api_client::stop() {
  http_->stop();
}

std::string url_encode(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string token_or_env(const std::string& token) {
  if (!token.empty()) return token;
  const char* env = std::getenv("PEL_HTTP_TOKEN");
  return env != nullptr ? env : "";
}

std::optional<double> parse_seconds(const std::string& text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  const std::string unit(end);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1;
  else if (unit == "ms")
    scale = 1e-3;
  else if (unit == "m")
    scale = 60;
  if (end == text.c_str() || scale == 0 || !(v > 0)) return std::nullopt;
  return v * scale;
}

std::optional<double> json_number(simdjson::dom::element e, std::string_view key) {
  simdjson::dom::element v;
  double d = 0;
  if (e[key].get(v) || v.get_double().get(d)) return std::nullopt;
  return d;
}

std::string json_string(simdjson::dom::element e, std::string_view key) {
  std::string_view v;
  if (e[key].get_string().get(v)) return {};
  return std::string(v);
}

bool json_bool(simdjson::dom::element e, std::string_view key) {
  bool v = false;
  if (e[key].get_bool().get(v)) return false;
  return v;
}

std::vector<simdjson::dom::element> json_array(simdjson::dom::element e, std::string_view key) {
  std::vector<simdjson::dom::element> out;
  simdjson::dom::array a;
  if (e[key].get_array().get(a)) return out;
  for (auto x : a) out.push_back(x);
  return out;
}

}  // namespace pel::cli
