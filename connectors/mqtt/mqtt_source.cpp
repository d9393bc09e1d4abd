#include "mqtt_source.hpp"

#include "pel/core/time.hpp"

#include <mosquitto.h>

#include <algorithm>
#include <stdexcept>

namespace pel::connectors {

std::vector<spec::param> mqtt_source_params() {
  using spec::param;
  std::vector<param> p = mqtt_detail::connection_params(true);
  std::vector<param> own = {
      param::string_list("topics").req().doc(
          "Topic filters to subscribe to; `+` matches one level, a last `#` any rest "
          "(`sensors/+/temperature`, `sensors/#`)."),
      param::integer("qos").def("1").min(0).max(2).doc(
          "Quality of service of the subscriptions: 0 at most once, 1 at least once, 2 exactly "
          "once between broker and client. libmosquitto acknowledges a message when it arrives, "
          "before PEL holds it safely: see the connector's README on delivery."),
      param::boolean("clean_session")
          .def("true")
          .doc("Start a new session on every connect. `false` keeps the subscriptions and the "
               "QoS 1/2 messages queued while the client is away on the broker (needs "
               "`client_id`)."),
      param::string("topic_fields").doc(
          "A template matched against each message's topic that turns levels into string "
          "fields: `sensors/{site}/{device}` gives `site` and `device`; a last `#` takes any "
          "rest. A message whose topic does not match goes to the dead-letter output."),
      param::string("topic_field").doc(
          "Adds the whole topic as a string field with this name."),
      param::integer("queue_size")
          .def("10000")
          .min(1)
          .doc("Messages held between the network thread and the pipeline. When it is full the "
               "network thread waits (reading from the socket stops) until the pipeline takes "
               "messages."),
      param::bytes("max_message_bytes")
          .def("1MiB")
          .min(1)
          .doc("Messages larger than this go to the dead-letter output (their first 4 KiB)."),
  };
  for (auto& q : own) p.push_back(std::move(q));
  for (auto& f : format_params(true)) p.push_back(std::move(f));
  return p;
}

mqtt_source::mqtt_source(const spec::config& cfg) {
  conn_ = mqtt_detail::read_connection(cfg);
  topics_ = cfg.get_string_list("topics");
  if (topics_.empty()) cfg.fail("topics", "give at least one topic filter");
  for (const auto& t : topics_)
    if (mosquitto_sub_topic_check(t.c_str()) != MOSQ_ERR_SUCCESS)
      cfg.fail("topics", "'" + t + "' is not a valid topic filter (`+` and `#` must fill a "
                                   "whole level, `#` only last)");
  qos_ = static_cast<int>(cfg.get_int("qos"));
  clean_session_ = cfg.get_bool("clean_session");
  if (!clean_session_ && conn_.client_id.empty())
    cfg.fail("clean_session", "`clean_session: false` needs a `client_id`, so that the broker "
                              "can find the session again");
  queue_size_ = static_cast<std::size_t>(cfg.get_int("queue_size"));
  max_message_bytes_ = static_cast<std::size_t>(cfg.get_bytes("max_message_bytes"));

  decoder_ = make_decoder(cfg, declared_schema(cfg));
  if (!decoder_ || !decoder_->schema() || decoder_->schema()->size() == 0)
    cfg.fail("schema",
             "an mqtt source needs the record fields declared under `schema:` "
             "(or `format: raw` for one string field `value`)");
  auto schema = std::make_shared<core::schema>(*decoder_->schema());
  auto add = [&](const std::string& name, const char* key) {
    if (schema->index_of(name) >= 0)
      cfg.fail(key, "field '" + name + "' already exists in the record schema; pick another name");
    return static_cast<std::uint32_t>(schema->add(name, core::value_type::string));
  };
  if (cfg.has("topic_fields")) {
    template_text_ = cfg.get_string("topic_fields");
    std::string error;
    if (!mqtt_detail::topic_template::parse(template_text_, template_, error))
      cfg.fail("topic_fields", error);
    for (const auto& f : template_.fields()) field_columns_.push_back(add(f, "topic_fields"));
  }
  if (cfg.has("topic_field")) {
    topic_column_ = add(cfg.get_string("topic_field"), "topic_field");
    has_topic_column_ = true;
  }
  schema_ = std::move(schema);
}

mqtt_source::~mqtt_source() { close(); }

void mqtt_source::open(const core::operator_context& ctx) {
  name_ = ctx.name;
  if (!conn_.client_id.empty() && ctx.parallelism > 1)
    conn_.client_id += "-" + std::to_string(ctx.instance);
  client_ = mqtt_detail::make_client(conn_, clean_session_, this, name_);
  mosquitto_connect_callback_set(client_.get(), &mqtt_source::on_connect);
  mosquitto_disconnect_callback_set(client_.get(), &mqtt_source::on_disconnect);
  mosquitto_message_callback_set(client_.get(), &mqtt_source::on_message);
  // Asynchronous: a broker that is not up yet is retried by the loop with the back-off.
  int rc = mosquitto_connect_async(client_.get(), conn_.broker.host.c_str(), conn_.broker.port,
                                   conn_.keepalive_s);
  if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ERRNO && rc != MOSQ_ERR_EAI)
    throw std::runtime_error("mqtt source '" + name_ + "': connecting to " + conn_.broker.host +
                             ":" + std::to_string(conn_.broker.port) + ": " +
                             mqtt_detail::error_text(rc));
  if (rc != MOSQ_ERR_SUCCESS)
    notice(core::source_notice::level::warning,
           "mqtt source '" + name_ + "': cannot reach " + conn_.broker.host + ":" +
               std::to_string(conn_.broker.port) + " (" + mqtt_detail::error_text(rc) +
               "); retrying");
  rc = mosquitto_loop_start(client_.get());
  if (rc != MOSQ_ERR_SUCCESS)
    throw std::runtime_error("mqtt source '" + name_ + "': cannot start the network thread: " +
                             mqtt_detail::error_text(rc));
  loop_running_ = true;
}

void mqtt_source::on_connect(struct mosquitto*, void* self, int rc) {
  static_cast<mqtt_source*>(self)->connected(rc);
}
void mqtt_source::on_disconnect(struct mosquitto*, void* self, int rc) {
  static_cast<mqtt_source*>(self)->disconnected(rc);
}
void mqtt_source::on_message(struct mosquitto*, void* self, const struct mosquitto_message* m) {
  static_cast<mqtt_source*>(self)->received(m);
}

void mqtt_source::connected(int rc) {
  if (rc != 0) {
    notice(core::source_notice::level::error,
           "mqtt source '" + name_ + "': the broker refused the connection: " +
               mosquitto_connack_string(rc));
    return;
  }
  std::vector<char*> subs;
  for (auto& t : topics_) subs.push_back(t.data());
  const int src = mosquitto_subscribe_multiple(client_.get(), nullptr, static_cast<int>(subs.size()),
                                               subs.data(), qos_, 0, nullptr);
  std::uint64_t n;
  {
    std::lock_guard lock(mu_);
    n = ++connects_;
  }
  if (src != MOSQ_ERR_SUCCESS)
    notice(core::source_notice::level::error,
           "mqtt source '" + name_ + "': subscribing failed: " + mqtt_detail::error_text(src));
  else if (n > 1)
    notice(core::source_notice::level::info,
           "mqtt source '" + name_ + "': reconnected to " + conn_.broker.host + ":" +
               std::to_string(conn_.broker.port));
}

void mqtt_source::disconnected(int rc) {
  if (rc == 0) return;  // asked for (close)
  notice(core::source_notice::level::warning,
         "mqtt source '" + name_ + "': connection to " + conn_.broker.host + ":" +
             std::to_string(conn_.broker.port) + " lost (" + mqtt_detail::error_text(rc) +
             "); reconnecting with back-off");
}

void mqtt_source::received(const struct mosquitto_message* m) {
  message msg;
  msg.topic = m->topic ? m->topic : "";
  msg.mid = m->mid;
  msg.time = core::processing_time::now().ns;
  const auto len = static_cast<std::size_t>(std::max(0, m->payloadlen));
  if (len > max_message_bytes_) {
    // Kept short: the dead letter holds the first 4 KiB and the size.
    msg.payload.assign(static_cast<const char*>(m->payload), std::min<std::size_t>(len, 4096));
    msg.oversize = len;
  } else {
    msg.payload.assign(static_cast<const char*>(m->payload), len);
  }
  std::unique_lock lock(mu_);
  space_.wait(lock, [&] { return stopping_ || queue_.size() < queue_size_; });
  if (stopping_) return;
  ++received_;
  queue_.push_back(std::move(msg));
}

void mqtt_source::notice(core::source_notice::level l, std::string text) {
  std::lock_guard lock(mu_);
  if (notices_.size() >= 64) return;  // nobody took them: keep memory bounded
  notices_.push_back({l, std::move(text), 0});
}

void mqtt_source::take_notices(std::vector<core::source_notice>& out) {
  std::lock_guard lock(mu_);
  for (auto& n : notices_) out.push_back(std::move(n));
  notices_.clear();
}

std::uint64_t mqtt_source::received() const {
  std::lock_guard lock(mu_);
  return received_;
}

std::uint64_t mqtt_source::connects() const {
  std::lock_guard lock(mu_);
  return connects_;
}

std::string mqtt_source::row_position(std::size_t row) const {
  return row < row_positions_.size() ? row_positions_[row] : std::string();
}

void mqtt_source::dead(core::outputs& out, const message& m, const std::string& reason) {
  const std::string position = m.topic + "@" + std::to_string(m.mid);
  out.dead(name_, reason + " (topic " + m.topic + ", message id " + std::to_string(m.mid) + ")",
           nullptr, *schema_, m.time, name_, position);
  constexpr std::size_t keep = 4096;
  out.dead_letter.row(out.dead_letter.size() - 1)[4] =
      m.payload.substr(0, std::min(keep, m.payload.size()));
}

core::poll_status mqtt_source::poll(core::outputs& out, std::size_t max_rows) {
  row_positions_.clear();
  taken_.clear();
  {
    std::lock_guard lock(mu_);
    const std::size_t n = std::min(max_rows, queue_.size());
    for (std::size_t i = 0; i < n; ++i) {
      taken_.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  if (taken_.empty()) return core::poll_status::idle;
  space_.notify_all();

  auto& b = out.main;
  for (auto& m : taken_) {
    if (m.oversize > 0) {
      dead(out, m, "message of " + std::to_string(m.oversize) + " bytes is over max_message_bytes (" +
                       std::to_string(max_message_bytes_) + ")");
      continue;
    }
    if (!template_.levels.empty() || template_.rest) {
      if (!template_.match(m.topic, values_)) {
        dead(out, m, "topic does not match topic_fields '" + template_text_ + "'");
        continue;
      }
    }
    core::value* row = b.append(m.time);
    if (!decoder_->decode(m.payload, row, scratch_)) {
      b.cells.resize(b.cells.size() - b.width);
      b.times.pop_back();
      dead(out, m, scratch_.empty() ? std::string("malformed message") : scratch_);
      continue;
    }
    for (std::size_t i = 0; i < field_columns_.size() && i < values_.size(); ++i)
      row[field_columns_[i]] = std::string(values_[i]);
    if (has_topic_column_) row[topic_column_] = m.topic;
    row_positions_.push_back(m.topic + "@" + std::to_string(m.mid));
  }
  return core::poll_status::data;
}

void mqtt_source::close() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  space_.notify_all();
  if (client_) {
    mosquitto_disconnect(client_.get());
    if (loop_running_) mosquitto_loop_stop(client_.get(), true);
    loop_running_ = false;
    client_.reset();
  }
}

}  // namespace pel::connectors
