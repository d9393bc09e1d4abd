#include "kafka_sink.hpp"

#include "pel/core/time.hpp"

#include <charconv>
#include <stdexcept>

namespace pel::connectors {

using namespace kafka_detail;

std::vector<spec::param> kafka_sink_params() {
  using spec::param;
  std::vector<param> p = {
      param::string("bootstrap_servers")
          .req()
          .doc("Comma-separated `host:port` list of Kafka brokers (librdkafka "
               "`bootstrap.servers`)."),
      param::string("topic").req().doc("Topic to write to."),
      param::string("key")
          .names_input_field()
          .doc("Field whose value is the message key; messages with the same key go to the same "
               "partition (librdkafka's default partitioner). Without it, messages have no key."),
      param::string_map("headers").doc("Static headers added to every message."),
      param::boolean("idempotence")
          .def("true")
          .doc("Idempotent producer (`enable.idempotence`): retries never duplicate or reorder."),
      param::string("timestamp")
          .def("event")
          .one_of({"event", "now"})
          .doc(
              "Message timestamp: `event` writes each row's event time (as Kafka Streams and Flink "
              "do), `now` lets the producer stamp the send time. Use `now` when replaying old "
              "data into topics with time-based retention, which would otherwise drop it early."),
      param::duration("flush_timeout")
          .def("60s")
          .doc("How long a flush (checkpoint, end of stream) waits for every delivery report "
               "before failing the pipeline."),
      param::duration("queue_full_timeout")
          .def("60s")
          .doc("How long a write waits for room in librdkafka's queue before failing."),
      param::string_map("rdkafka").doc(
          "librdkafka producer properties passed through unchanged (they override the "
          "connector's own settings), e.g. `linger.ms: 5`. The connector sets `linger.ms: 1` "
          "for low latency (librdkafka's default is 5)."),
  };
  for (auto& f : format_params(false)) p.push_back(std::move(f));
  return p;
}

kafka_sink::kafka_sink(const spec::config& cfg) : cfg_(cfg), conf_(rd_kafka_conf_new()) {
  // The settings do not depend on each other: each one that fails is gathered (when the
  // planner checks the sink) and the others are still read. `key` is checked against the
  // input schema by the planner (it names an input field) and again in open().
  topic_name_ = cfg.get_string("topic");
  if (topic_name_.empty()) cfg.report("topic", "name the topic to write to");
  key_name_ = cfg.get_string("key");
  cfg.gather([&] { headers_ = cfg.get_string_map("headers"); });
  cfg.gather([&] { flush_timeout_ms_ = cfg.get_duration_ns("flush_timeout") / 1'000'000; });
  cfg.gather([&] { event_timestamps_ = cfg.get_string("timestamp") != "now"; });
  cfg.gather(
      [&] { queue_full_timeout_ms_ = cfg.get_duration_ns("queue_full_timeout") / 1'000'000; });

  auto* c = conf_.get();
  cfg.gather([&] {
    set_or_fail(c, cfg, "bootstrap_servers", "bootstrap.servers",
                cfg.get_string("bootstrap_servers"));
  });
  cfg.gather([&] {
    set_or_fail(c, cfg, "idempotence", "enable.idempotence",
                cfg.get_bool("idempotence") ? "true" : "false");
  });
  // Low latency (README.md, "Latency"): a partition's messages wait at most 1 ms to be sent
  // together (librdkafka's default is 5 ms); a batch of rows is produced at once anyway.
  // socket.nagle.disable stays false: measured against the embedded broker, disabling Nagle
  // made every flush (each checkpoint) wait ~40 ms for the last acknowledgements.
  set_or_fail(c, cfg, "bootstrap_servers", "linger.ms", "1");
  set_or_fail(c, cfg, "bootstrap_servers", "log_level", "3");
  cfg.gather([&] { apply_passthrough(c, cfg); });
  // The encoder needs the input schema and is made in open(); its CSV options are checked
  // now, so that a bad delimiter is a lint error and not a failed run.
  cfg.gather([&] {
    if (format_name(cfg) == "csv") read_csv_options(cfg);
  });
  rd_kafka_conf_set_dr_msg_cb(c, &kafka_sink::delivery_cb);
  rd_kafka_conf_set_log_cb(c, [](const rd_kafka_t*, int, const char*, const char*) {});
}

kafka_sink::~kafka_sink() {
  // Best effort only: a sink destroyed without close() (a failing pipeline) must not block
  // for long nor throw.
  if (rk_) rd_kafka_flush(rk_.get(), 1000);
  topic_.reset();
  rk_.reset();
}

void kafka_sink::open(const core::operator_context& ctx, const core::schema_ptr& input) {
  name_ = ctx.name;
  if (!key_name_.empty()) {
    key_col_ = input->index_of(key_name_);
    // The planner reports this at lint time; a pipeline built in code meets it here.
    if (key_col_ < 0)
      cfg_.fail("key",
                "field '" + key_name_ + "' is not in the input; fields are: " + input->names());
  }
  encoder_ = make_encoder(cfg_, input);
  rd_kafka_conf_set_opaque(conf_.get(), this);
  char errstr[512];
  rk_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf_.get(), errstr, sizeof errstr));
  if (!rk_) throw std::runtime_error("kafka sink '" + name_ + "': " + errstr);
  conf_.release();
  topic_.reset(rd_kafka_topic_new(rk_.get(), topic_name_.c_str(), nullptr));
  if (!topic_)
    throw std::runtime_error("kafka sink '" + name_ + "': cannot use topic " + topic_name_ + ": " +
                             rd_kafka_err2str(rd_kafka_last_error()));
  if (!headers_.empty()) {
    header_proto_.reset(rd_kafka_headers_new(headers_.size()));
    for (const auto& [k, v] : headers_)
      rd_kafka_header_add(header_proto_.get(), k.data(), static_cast<ssize_t>(k.size()), v.data(),
                          static_cast<ssize_t>(v.size()));
  }
}

void kafka_sink::delivery_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<kafka_sink*>(opaque);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    self->delivered_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (self->failed_++ == 0)
    self->first_failure_ = std::string(rd_kafka_err2str(m->err)) + " (topic " + self->topic_name_ +
                           ", partition " + std::to_string(m->partition) + ")";
}

void kafka_sink::throw_if_failed() {
  char fatal[256];
  if (rk_ && rd_kafka_fatal_error(rk_.get(), fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("kafka sink '" + name_ + "': fatal producer error: " + fatal);
  if (failed_ > 0)
    throw std::runtime_error("kafka sink '" + name_ + "': " + std::to_string(failed_) +
                             " message(s) could not be delivered: " + first_failure_);
}

void kafka_sink::produce_row(const core::value* row, std::int64_t t) {
  payload_.clear();
  encoder_->encode(row, payload_);
  const char* key = nullptr;
  std::size_t key_len = 0;
  if (key_col_ >= 0) {
    const auto& k = row[key_col_];
    if (auto s = std::get_if<std::string>(&k)) {
      key = s->data();
      key_len = s->size();
    } else if (!core::is_null(k)) {
      key_buf_.resize(32);
      if (auto i = std::get_if<std::int64_t>(&k)) {
        auto r = std::to_chars(key_buf_.data(), key_buf_.data() + key_buf_.size(), *i);
        key_buf_.resize(static_cast<std::size_t>(r.ptr - key_buf_.data()));
      } else {
        key_buf_ = core::to_text(k);
      }
      key = key_buf_.data();
      key_len = key_buf_.size();
    }
  }
  const std::int64_t ts_ms = (event_timestamps_ && t > 0) ? t / 1'000'000 : 0;  // 0: send time
  const auto deadline = core::steady_ns() + queue_full_timeout_ms_ * 1'000'000;
  for (;;) {
    rd_kafka_headers_t* hdrs = header_proto_ ? rd_kafka_headers_copy(header_proto_.get()) : nullptr;
    auto err = rd_kafka_producev(
        rk_.get(), RD_KAFKA_V_RKT(topic_.get()), RD_KAFKA_V_PARTITION(RD_KAFKA_PARTITION_UA),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_VALUE(const_cast<char*>(payload_.data()), payload_.size()),
        RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(ts_ms), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++produced_;
      return;
    }
    if (hdrs != nullptr) rd_kafka_headers_destroy(hdrs);  // not taken over on failure
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      throw std::runtime_error("kafka sink '" + name_ + "': cannot produce to " + topic_name_ +
                               ": " + rd_kafka_err2str(err));
    // The local queue is full: serve delivery reports until there is room, within bounds.
    rd_kafka_poll(rk_.get(), 10);
    throw_if_failed();
    if (core::steady_ns() > deadline)
      throw std::runtime_error(
          "kafka sink '" + name_ + "': the producer queue stayed full for " +
          std::to_string(queue_full_timeout_ms_) +
          " ms (broker unreachable?); raise queue_full_timeout or check the brokers");
  }
}

void kafka_sink::write(const core::batch& in) {
  if (!rk_) throw std::logic_error("kafka sink written before open()");
  throw_if_failed();
  for (std::size_t i = 0; i < in.size(); ++i) produce_row(in.row(i), in.times[i]);
  rd_kafka_poll(rk_.get(), 0);  // serve delivery reports
  throw_if_failed();
}

void kafka_sink::flush() {
  if (!rk_) return;
  auto err = rd_kafka_flush(rk_.get(), static_cast<int>(flush_timeout_ms_));
  throw_if_failed();
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("kafka sink '" + name_ +
                             "': " + std::to_string(rd_kafka_outq_len(rk_.get())) +
                             " message(s) still undelivered after flush_timeout (" +
                             std::to_string(flush_timeout_ms_) + " ms): " + rd_kafka_err2str(err));
}

void kafka_sink::close() {
  if (!rk_) return;
  flush();
  topic_.reset();
  rk_.reset();
}

std::uint64_t kafka_sink::in_flight() const noexcept {
  const auto done = delivered_.load() + failed_;
  return produced_ > done ? produced_ - done : 0;
}

}  // namespace pel::connectors
