#include "mqtt_common.hpp"

#include <mosquitto.h>

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace pel::connectors::mqtt_detail {

void init_library() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

void handle_deleter::operator()(mosquitto* m) const noexcept { mosquitto_destroy(m); }

endpoint parse_broker(const spec::config& cfg) {
  const std::string text = cfg.get_string("broker");
  endpoint e;
  const auto colon = text.rfind(':');
  e.host = colon == std::string::npos ? text : text.substr(0, colon);
  if (colon != std::string::npos) {
    const char* b = text.data() + colon + 1;
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(b, end, e.port);
    if (ec != std::errc() || p != end || b == end || e.port <= 0 || e.port > 65535)
      cfg.fail("broker", "'" + text + "' is not host:port (port 1 to 65535)");
  }
  if (e.host.empty()) cfg.fail("broker", "'" + text + "' has no host; write host:port");
  return e;
}

std::vector<spec::param> connection_params(bool source) {
  using spec::param;
  return {
      param::string("broker").req().doc(
          "The MQTT broker as `host:port` (port 1883 when left out). MQTT 3.1.1 over TCP."),
      param::string("client_id").doc(
          source ? "Client identifier. Needed with `clean_session: false`, so that the broker "
                   "finds the session again after a reconnect or restart; with parallelism > 1, "
                   "instance i uses `client_id-i`. Default: a random one (`pel-` and 16 hex "
                   "digits)."
                 : "Client identifier; with parallelism > 1, instance i uses `client_id-i`. "
                   "Default: a random one from libmosquitto."),
      param::string("username").doc("User name to authenticate with."),
      param::string("password").doc("Password to authenticate with (with `username`)."),
      param::duration("keepalive").def("30s").doc(
          "MQTT keep-alive interval: the client pings the broker when idle this long, whole "
          "seconds, at least 5s."),
      param::duration("reconnect_delay")
          .def("1s")
          .doc("First wait before reconnecting after the connection is lost; it doubles on each "
               "failed attempt up to `reconnect_delay_max` (exponential back-off)."),
      param::duration("reconnect_delay_max")
          .def("30s")
          .doc("Longest wait between reconnection attempts."),
      param::object(
          "tls",
          {
              param::string("ca_file").req().doc(
                  "PEM file of the certificate authorities the broker's certificate is checked "
                  "against."),
              param::string("cert_file").doc(
                  "PEM client certificate, for brokers that require one (with `key_file`)."),
              param::string("key_file").doc("PEM private key of `cert_file` (not encrypted)."),
              param::boolean("insecure").def("false").doc(
                  "Do not check that the broker's certificate names the `broker` host (the "
                  "chain is still checked). For tests only."),
          })
          .doc("Connect with TLS. Without it the connection is plain TCP."),
  };
}

namespace {
unsigned whole_seconds(const spec::config& cfg, const char* key, unsigned least) {
  const std::int64_t ns = cfg.get_duration_ns(key);
  const std::int64_t s = (ns + 999'999'999) / 1'000'000'000;
  if (s < least) cfg.fail(key, "must be at least " + std::to_string(least) + "s");
  if (s > 65535) cfg.fail(key, "must be at most 65535s");
  return static_cast<unsigned>(s);
}
}  // namespace

connection read_connection(const spec::config& cfg) {
  connection c;
  c.broker = parse_broker(cfg);
  if (cfg.has("client_id")) c.client_id = cfg.get_string("client_id");
  if (cfg.has("username")) c.username = cfg.get_string("username");
  if (cfg.has("password")) {
    if (!cfg.has("username")) cfg.fail("password", "a password needs a `username`");
    c.password = cfg.get_string("password");
  }
  if (cfg.has("tls")) {
    const spec::config tls = cfg.child("tls");
    auto readable = [&](const char* key) {
      std::string path = tls.get_string(key);
      if (::access(path.c_str(), R_OK) != 0)
        tls.fail(key, "cannot read '" + path + "': " + std::strerror(errno));
      return path;
    };
    c.ca_file = readable("ca_file");
    if (tls.has("cert_file") != tls.has("key_file"))
      tls.fail(tls.has("cert_file") ? "cert_file" : "key_file",
               "`cert_file` and `key_file` go together");
    if (tls.has("cert_file")) {
      c.cert_file = readable("cert_file");
      c.key_file = readable("key_file");
    }
    c.tls_insecure = tls.get_bool("insecure");
  }
  c.keepalive_s = static_cast<int>(whole_seconds(cfg, "keepalive", 5));
  c.reconnect_min_s = whole_seconds(cfg, "reconnect_delay", 1);
  c.reconnect_max_s = whole_seconds(cfg, "reconnect_delay_max", 1);
  if (c.reconnect_max_s < c.reconnect_min_s)
    cfg.fail("reconnect_delay_max", "must not be shorter than `reconnect_delay`");
  return c;
}

std::string error_text(int rc) {
  if (rc == MOSQ_ERR_ERRNO) return mosquitto_strerror(rc) + std::string(" (see errno)");
  return mosquitto_strerror(rc);
}

handle_ptr make_client(const connection& c, bool clean_session, void* userdata,
                       const std::string& component) {
  init_library();
  handle_ptr h(mosquitto_new(c.client_id.empty() ? nullptr : c.client_id.c_str(), clean_session,
                             userdata));
  if (!h)
    throw std::runtime_error("mqtt '" + component + "': cannot create a client (" +
                             (clean_session || !c.client_id.empty()
                                  ? std::string("out of memory")
                                  : std::string("clean_session: false needs a client_id")) +
                             ")");
  if (!c.username.empty()) {
    const int rc = mosquitto_username_pw_set(h.get(), c.username.c_str(),
                                             c.password.empty() ? nullptr : c.password.c_str());
    if (rc != MOSQ_ERR_SUCCESS)
      throw std::runtime_error("mqtt '" + component + "': username/password: " + error_text(rc));
  }
  if (!c.ca_file.empty()) {
    const int rc = mosquitto_tls_set(h.get(), c.ca_file.c_str(), nullptr,
                                     c.cert_file.empty() ? nullptr : c.cert_file.c_str(),
                                     c.key_file.empty() ? nullptr : c.key_file.c_str(), nullptr);
    if (rc != MOSQ_ERR_SUCCESS)
      throw std::runtime_error("mqtt '" + component + "': tls: " + error_text(rc));
    if (c.tls_insecure) mosquitto_tls_insecure_set(h.get(), true);
  }
  mosquitto_reconnect_delay_set(h.get(), c.reconnect_min_s, c.reconnect_max_s, true);
  return h;
}

bool topic_template::parse(std::string_view text, topic_template& out, std::string& error) {
  out = {};
  std::size_t start = 0;
  while (true) {
    const auto slash = text.find('/', start);
    std::string_view lv =
        text.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (out.rest) {
      error = "`#` must be the last level";
      return false;
    }
    if (lv == "#") {
      out.rest = true;
    } else if (!lv.empty() && lv.front() == '{' && lv.back() == '}' && lv.size() > 2 &&
               lv.find_first_of("{}", 1) == lv.size() - 1) {
      out.levels.push_back({std::string(lv.substr(1, lv.size() - 2)), true});
    } else if (lv.find_first_of("{}+#") != std::string_view::npos) {
      error = "level '" + std::string(lv) +
              "' must be a literal, `{field}` or a last `#`, not a mix";
      return false;
    } else {
      out.levels.push_back({std::string(lv), false});
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return true;
}

std::vector<std::string> topic_template::fields() const {
  std::vector<std::string> f;
  for (const auto& l : levels)
    if (l.field) f.push_back(l.text);
  return f;
}

bool topic_template::match(std::string_view topic, std::vector<std::string_view>& values) const {
  values.clear();
  std::size_t start = 0;
  for (std::size_t i = 0; i < levels.size(); ++i) {
    if (start > topic.size()) return false;  // fewer levels
    const auto slash = topic.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? topic.size() : slash;
    std::string_view lv = topic.substr(start, end - start);
    if (levels[i].field)
      values.push_back(lv);
    else if (lv != levels[i].text)
      return false;
    start = end + 1;
  }
  // All levels used: the topic must end here unless `#` takes the rest.
  return rest || start == topic.size() + 1;
}

}  // namespace pel::connectors::mqtt_detail
