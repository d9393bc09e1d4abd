#include "mqtt_sink.hpp"

#include "pel/core/value.hpp"

#include <mosquitto.h>

#include <chrono>
#include <stdexcept>

namespace pel::connectors {

std::vector<spec::param> mqtt_sink_params() {
  using spec::param;
  std::vector<param> p = mqtt_detail::connection_params(false);
  std::vector<param> own = {
      param::string("topic").req().doc(
          "Topic template filled from each row's fields: `sensors/{device}/avg`. A field's "
          "text fills its level (null: empty); `+`, `#` and `/` in it become `_`, so that a "
          "value never adds levels or wildcards."),
      param::integer("qos").def("1").min(0).max(2).doc(
          "Quality of service of the published messages (0, 1 or 2)."),
      param::boolean("retain").def("false").doc(
          "Publish retained messages: the broker keeps the last one per topic for new "
          "subscribers."),
      param::integer("max_in_flight")
          .def("1000")
          .min(1)
          .doc("Messages published and not yet acknowledged at most; `write` waits for "
               "acknowledgements beyond it (backpressure)."),
      param::duration("flush_timeout")
          .def("30s")
          .doc("How long a flush (checkpoint, end of stream) and a wait for the broker may take "
               "before the sink fails."),
  };
  for (auto& q : own) p.push_back(std::move(q));
  for (auto& f : format_params(false)) p.push_back(std::move(f));
  return p;
}

mqtt_sink::mqtt_sink(const spec::config& cfg) : cfg_(cfg) {
  conn_ = mqtt_detail::read_connection(cfg);
  std::string error;
  if (!mqtt_detail::topic_template::parse(cfg.get_string("topic"), template_, error))
    cfg.fail("topic", error);
  if (template_.rest) cfg.fail("topic", "a topic to publish to cannot hold `#`");
  qos_ = static_cast<int>(cfg.get_int("qos"));
  retain_ = cfg.get_bool("retain");
  max_in_flight_ = static_cast<std::size_t>(cfg.get_int("max_in_flight"));
  flush_timeout_ns_ = cfg.get_duration_ns("flush_timeout");
}

mqtt_sink::~mqtt_sink() {
  try {
    close();
  } catch (...) {
  }
}

void mqtt_sink::open(const core::operator_context& ctx, const core::schema_ptr& input) {
  name_ = ctx.name;
  for (const auto& l : template_.levels) {
    if (!l.field) {
      field_columns_.push_back(-1);
      continue;
    }
    const int col = input->index_of(l.text);
    if (col < 0) cfg_.fail("topic", "the input has no field '" + l.text + "'");
    field_columns_.push_back(col);
  }
  enc_ = make_encoder(cfg_, input);
  if (!conn_.client_id.empty() && ctx.parallelism > 1)
    conn_.client_id += "-" + std::to_string(ctx.instance);
  client_ = mqtt_detail::make_client(conn_, true, this, name_);
  mosquitto_connect_callback_set(client_.get(), &mqtt_sink::on_connect);
  mosquitto_publish_callback_set(client_.get(), &mqtt_sink::on_publish);
  mosquitto_disconnect_callback_set(client_.get(), &mqtt_sink::on_disconnect);
  mosquitto_max_inflight_messages_set(client_.get(), static_cast<unsigned>(max_in_flight_));
  int rc = mosquitto_connect_async(client_.get(), conn_.broker.host.c_str(), conn_.broker.port,
                                   conn_.keepalive_s);
  if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ERRNO && rc != MOSQ_ERR_EAI)
    throw std::runtime_error("mqtt sink '" + name_ + "': connecting: " +
                             mqtt_detail::error_text(rc));
  rc = mosquitto_loop_start(client_.get());
  if (rc != MOSQ_ERR_SUCCESS)
    throw std::runtime_error("mqtt sink '" + name_ + "': cannot start the network thread: " +
                             mqtt_detail::error_text(rc));
  loop_running_ = true;
}

void mqtt_sink::on_connect(struct mosquitto*, void* self, int rc) {
  auto* s = static_cast<mqtt_sink*>(self);
  {
    std::lock_guard lock(s->mu_);
    if (rc == 0)
      s->connected_ = true;
    else
      s->refused_ = mosquitto_connack_string(rc);
  }
  s->cv_.notify_all();
}

void mqtt_sink::on_disconnect(struct mosquitto*, void* self, int) {
  auto* s = static_cast<mqtt_sink*>(self);
  std::lock_guard lock(s->mu_);
  s->connected_ = false;
}

void mqtt_sink::on_publish(struct mosquitto*, void* self, int) {
  auto* s = static_cast<mqtt_sink*>(self);
  {
    std::lock_guard lock(s->mu_);
    ++s->acked_;
  }
  s->cv_.notify_all();
}

void mqtt_sink::wait_connected() {
  std::unique_lock lock(mu_);
  if (connected_) return;
  if (!cv_.wait_for(lock, std::chrono::nanoseconds(flush_timeout_ns_),
                    [&] { return connected_ || !refused_.empty(); }) ||
      !connected_)
    throw std::runtime_error("mqtt sink '" + name_ + "': not connected to " + conn_.broker.host +
                             ":" + std::to_string(conn_.broker.port) + " within flush_timeout" +
                             (refused_.empty() ? std::string() : ": " + refused_));
}

std::string mqtt_sink::topic_for(const core::value* row) const {
  std::string topic;
  for (std::size_t i = 0; i < template_.levels.size(); ++i) {
    if (i > 0) topic += '/';
    if (field_columns_[i] < 0) {
      topic += template_.levels[i].text;
      continue;
    }
    const core::value& v = row[field_columns_[i]];
    if (core::is_null(v)) continue;
    std::string text = core::to_text(v);
    for (char& c : text)
      if (c == '+' || c == '#' || c == '/') c = '_';
    topic += text;
  }
  return topic;
}

void mqtt_sink::write(const core::batch& in) {
  if (!client_) throw std::logic_error("mqtt sink written before open()");
  wait_connected();
  for (std::size_t i = 0; i < in.size(); ++i) {
    const core::value* row = in.row(i);
    payload_.clear();
    enc_->encode(row, payload_);
    const std::string topic = topic_for(row);
    {
      // Backpressure: at most max_in_flight unacknowledged messages.
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, std::chrono::nanoseconds(flush_timeout_ns_),
                        [&] { return sent_ - acked_ < max_in_flight_; }))
        throw std::runtime_error("mqtt sink '" + name_ + "': " + std::to_string(sent_ - acked_) +
                                 " message(s) unacknowledged for flush_timeout");
      ++sent_;
    }
    auto publish = [&] {
      return mosquitto_publish(client_.get(), nullptr, topic.c_str(),
                               static_cast<int>(payload_.size()), payload_.data(), qos_, retain_);
    };
    int rc = publish();
    if (rc == MOSQ_ERR_NO_CONN) {
      // The connection was lost: the network thread reconnects with its back-off.
      wait_connected();
      rc = publish();
    }
    if (rc != MOSQ_ERR_SUCCESS) {
      {
        std::lock_guard lock(mu_);
        --sent_;
      }
      throw std::runtime_error("mqtt sink '" + name_ + "': publishing to '" + topic +
                               "': " + mqtt_detail::error_text(rc));
    }
  }
}

void mqtt_sink::flush() {
  if (!client_) return;
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, std::chrono::nanoseconds(flush_timeout_ns_),
                    [&] { return acked_ >= sent_; }))
    throw std::runtime_error("mqtt sink '" + name_ + "': " + std::to_string(sent_ - acked_) +
                             " message(s) still unacknowledged after flush_timeout");
}

void mqtt_sink::close() {
  if (!client_) return;
  flush();
  mosquitto_disconnect(client_.get());
  if (loop_running_) mosquitto_loop_stop(client_.get(), false);
  loop_running_ = false;
  client_.reset();
}

std::uint64_t mqtt_sink::delivered() const {
  std::lock_guard lock(mu_);
  return acked_;
}

}  // namespace pel::connectors
