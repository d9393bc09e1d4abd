#include "mqtt_source.hpp"

#include "pel/core/time.hpp"

#include <mosquitto.h>

#include <algorithm>
#include <exception>
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
          "once between broker and client. When PEL acknowledges a QoS 1/2 message is `ack`."),
      param::string("ack")
          .one_of({"checkpoint", "receipt"})
          .def("checkpoint")
          .doc("When a QoS 1/2 message is acknowledged to the broker. `checkpoint`: once the "
               "checkpoint after it completes, that is once the sinks (or a sink's `buffer`) "
               "hold what it became; until then the broker keeps it and sends it again after a "
               "reconnect or a restart on the same session (`clean_session: false`), so a "
               "crash loses nothing. The broker must let that many messages be in flight "
               "(mosquitto: `max_inflight_messages 0`). `receipt`: on arrival, like most "
               "clients; a crash loses what was received and not yet checkpointed."),
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
  ack_on_checkpoint_ = cfg.get_string("ack") == "checkpoint";
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
  mqtt_detail::subscriber::settings s;
  s.conn = conn_;
  s.clean_session = clean_session_;
  s.topics = topics_;
  s.qos = qos_;
  s.queue_size = queue_size_;
  s.max_payload = max_message_bytes_;
  s.deferred_ack = ack_on_checkpoint_;
  s.component = name_;
  using lv = mqtt_detail::subscriber::level;
  sub_ = std::make_unique<mqtt_detail::subscriber>(std::move(s), [this](lv l, std::string text) {
    notice(l == lv::error     ? core::source_notice::level::error
           : l == lv::warning ? core::source_notice::level::warning
                              : core::source_notice::level::info,
           std::move(text));
  });
  try {
    sub_->start();  // connects in the background: a broker not up yet is retried
  } catch (const std::exception& e) {
    throw std::runtime_error("mqtt source '" + name_ + "': " + e.what());
  }
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

std::uint64_t mqtt_source::received() const { return sub_ ? sub_->received() : 0; }
std::uint64_t mqtt_source::connects() const { return sub_ ? sub_->connects() : 0; }
std::size_t mqtt_source::unacknowledged() const { return sub_ ? sub_->unacknowledged() : 0; }
std::uint64_t mqtt_source::redelivered() const { return sub_ ? sub_->redelivered() : 0; }

namespace {
constexpr std::uint32_t snapshot_version = 1;
}

bool mqtt_source::replayable() const { return ack_on_checkpoint_ && !clean_session_ && qos_ > 0; }

void mqtt_source::snapshot(core::state_writer& w) { w.put<std::uint32_t>(snapshot_version); }

void mqtt_source::restore(core::state_reader& r) {
  const auto version = r.get<std::uint32_t>();
  if (version != snapshot_version)
    throw std::runtime_error("mqtt source '" + name_ + "': checkpoint has version " +
                             std::to_string(version) + ", this build reads version " +
                             std::to_string(snapshot_version));
  // What was taken after this checkpoint was never acknowledged: the broker's session is to
  // send it again, and a session that is gone is a loss to say.
  if (sub_ && replayable()) sub_->expect_session();
}

void mqtt_source::on_barrier(std::uint64_t id) {
  if (ack_on_checkpoint_) marks_[id] = taken_seq_;
}

void mqtt_source::on_committed(std::uint64_t id) {
  // Everything polled before barrier `id` is in the sinks: the broker may let go of it.
  std::uint64_t upto = 0;
  for (auto it = marks_.begin(); it != marks_.end() && it->first <= id;) {
    upto = std::max(upto, it->second);
    it = marks_.erase(it);
  }
  if (upto > 0 && sub_) sub_->acknowledge(upto);
}

std::string mqtt_source::row_position(std::size_t row) const {
  return row < row_positions_.size() ? row_positions_[row] : std::string();
}

void mqtt_source::dead(core::outputs& out, const message& m, const std::string& reason) {
  const std::string position = m.topic + "@" + std::to_string(m.id);
  out.dead(name_, reason + " (topic " + m.topic + ", message id " + std::to_string(m.id) + ")",
           nullptr, *schema_, m.time, name_, position);
  constexpr std::size_t keep = 4096;
  out.dead_letter.row(out.dead_letter.size() - 1)[4] =
      m.payload.substr(0, std::min(keep, m.payload.size()));
}

core::poll_status mqtt_source::poll(core::outputs& out, std::size_t max_rows) {
  row_positions_.clear();
  taken_.clear();
  if (!sub_ || sub_->take(taken_, max_rows) == 0) return core::poll_status::idle;
  taken_seq_ = taken_.back().seq;

  auto& b = out.main;
  for (auto& m : taken_) {
    if (m.size > max_message_bytes_) {
      dead(out, m, "message of " + std::to_string(m.size) + " bytes is over max_message_bytes (" +
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
    row_positions_.push_back(m.topic + "@" + std::to_string(m.id));
  }
  return core::poll_status::data;
}

void mqtt_source::close() {
  if (sub_) sub_->stop();  // sends the acknowledgements asked for, then DISCONNECT
}

}  // namespace pel::connectors
