#pragma once
/// \file
/// The HTTP client shared by `pel top` and `pel tap`: GETs on a running `pel run --http`
/// (docs/api.md), with the bearer token, bounded timeouts, and small helpers to read the
/// server's JSON (simdjson's DOM) and to report its `{"error": "..."}` replies.

#include <simdjson.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace httplib {
class Client;
}

namespace pel::cli {

/// The outcome of one request: `status` 0 when the server could not be reached (then
/// `transport_error` says why), else the HTTP status and the body.
struct api_reply {
  int status = 0;
  std::string body;
  std::string transport_error;

  bool reached() const noexcept { return status != 0; }
  /// The server's `error` text, or "HTTP <status>" when the body holds none.
  std::string error_text() const;
};

/// A client of one server. Not thread-safe, except `stop()`, which may be called from
/// another thread to cancel a request in progress (a streaming one included).
class api_client {
public:
  /// `url` is `http://host:port` (a path after it is ignored; `host:port` alone means http).
  /// Throws std::invalid_argument when it is not such a URL.
  api_client(std::string url, const std::string& token);
  ~api_client();
  api_client(const api_client&) = delete;
  api_client& operator=(const api_client&) = delete;

  /// GETs `path` whole.
  api_reply get(const std::string& path);

  /// GETs `path` and hands the body to `on_data` as it arrives (no read timeout: a stream
  /// may be quiet). `on_data` returns false to end the request. The reply's body holds the
  /// body only when the status is not 200 (the server's error).
  api_reply stream(const std::string& path, const std::function<bool(std::string_view)>& on_data);

  /// Cancels a request in progress (from any thread).
  void stop();

  const std::string& url() const noexcept { return url_; }

private:
  std::string url_;
  std::unique_ptr<httplib::Client> http_;
};

/// Percent-encodes `s` for a path segment or a query value.
std::string url_encode(std::string_view s);

/// The token of `--token`, else the environment variable PEL_HTTP_TOKEN, else "".
std::string token_or_env(const std::string& token);

/// Parses a duration such as `1s`, `500ms`, `2m` or `1.5` (seconds); nullopt when invalid
/// or not positive.
std::optional<double> parse_seconds(const std::string& text);

// ---- reading the server's JSON ---------------------------------------------------------

/// A number field (integers included); nullopt when missing, null or not a number.
std::optional<double> json_number(simdjson::dom::element e, std::string_view key);
/// A string field; "" when missing or not a string.
std::string json_string(simdjson::dom::element e, std::string_view key);
/// A boolean field; false when missing or not a boolean.
bool json_bool(simdjson::dom::element e, std::string_view key);
/// An array field; an empty array when missing or not an array.
std::vector<simdjson::dom::element> json_array(simdjson::dom::element e, std::string_view key);

}  // namespace pel::cli
