#pragma once
/// \file
/// What the MQTT source and sink share: the libmosquitto handle, `broker` parsing, the
/// connection parameters and topic templates. Internal to connectors/mqtt; tests include it.

#include "pel/spec/config.hpp"
#include "pel/spec/param.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

struct mosquitto;

namespace pel::connectors::mqtt_detail {

/// Calls mosquitto_lib_init once per process.
void init_library();

struct handle_deleter {
  void operator()(mosquitto* m) const noexcept;
};
using handle_ptr = std::unique_ptr<mosquitto, handle_deleter>;

/// `host:port` (port defaults to 1883). Fails the config at `broker` when malformed.
struct endpoint {
  std::string host;
  int port = 1883;
};
endpoint parse_broker(const spec::config& cfg);

/// The connection parameters both sides have: broker, client_id, username, password, keepalive,
/// reconnect_delay, reconnect_delay_max, tls.
std::vector<spec::param> connection_params(bool source);

/// Settings read from the connection parameters.
struct connection {
  endpoint broker;
  std::string client_id;  ///< empty: libmosquitto picks a random one
  std::string username;
  std::string password;
  int keepalive_s = 30;
  unsigned reconnect_min_s = 1;
  unsigned reconnect_max_s = 30;
  // TLS (`tls:`), on when `ca_file` is set.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool tls_insecure = false;
};
connection read_connection(const spec::config& cfg);

/// Creates the client, sets credentials and the reconnect back-off. `userdata` is passed to
/// the callbacks. Throws `std::runtime_error` when libmosquitto refuses.
handle_ptr make_client(const connection& c, bool clean_session, void* userdata,
                       const std::string& component);

/// The text of a libmosquitto error code.
std::string error_text(int rc);

/// A topic template: levels separated by `/`, each a literal or `{field}`; a last level `#`
/// matches any rest (source side).
struct topic_template {
  struct level {
    std::string text;    ///< the literal, or the field name
    bool field = false;  ///< `{name}`
  };
  std::vector<level> levels;
  bool rest = false;  ///< ends with `#`

  /// Parses `text`; false with `error` set when a level mixes braces and text or is empty
  /// braces.
  static bool parse(std::string_view text, topic_template& out, std::string& error);
  /// The field names, in order.
  std::vector<std::string> fields() const;
  /// Matches a concrete topic; fills `values` (one per field, in order). False when the
  /// topic has other levels or literals.
  bool match(std::string_view topic, std::vector<std::string_view>& values) const;
};

}  // namespace pel::connectors::mqtt_detail
