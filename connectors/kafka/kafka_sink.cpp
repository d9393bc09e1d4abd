#include "kafka_sink.hpp"

#include "pel/core/time.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <iterator>
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
      param::string("key").names_input_field().doc(
          "Field whose value is the message key; messages with the same key go to the same "
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
      param::string("delivery")
          .def("at_least_once")
          .one_of({"at_least_once", "exactly_once"})
          .doc("`at_least_once`: each row is produced at once and every checkpoint waits until "
               "all are acknowledged; nothing is lost, but a restart from a checkpoint may write "
               "again what was written after it (duplicates). `exactly_once`: rows are held in "
               "memory and made visible when their checkpoint completes, each checkpoint's rows in "
               "one Kafka transaction together with a marker record in `marker_topic`; after a "
               "restart from a checkpoint every row appears exactly once to consumers with "
               "`isolation.level=read_committed` (a `read_uncommitted` consumer may also see rows "
               "of aborted transactions). Output is delayed by up to one checkpoint interval and "
               "memory holds one interval of output."),
      param::string("transactional_id")
          .doc("With `exactly_once`: prefix of the producers' `transactional.id`; instance i "
               "uses `<prefix>-<i>`, so a restarted instance fences the one it replaces. Must be "
               "unique per sink over all pipelines using the cluster. Default: `pel-<sink "
               "name>-<topic>`."),
      param::string("marker_topic")
          .def("pel-transactions")
          .doc("With `exactly_once`: the topic (partition 0 is used) where each transaction "
               "also writes which checkpoint it made visible (key: the transactional id, value: "
               "the checkpoint id); a restart reads it back to commit each checkpoint once. Create "
               "it with one partition and `cleanup.policy=compact` (brokers that create topics "
               "on first use, as the embedded one does, make it with their defaults)."),
      param::duration("flush_timeout")
          .def("60s")
          .doc("How long a flush (checkpoint, end of stream) waits for every delivery report "
               "before failing the pipeline; with `exactly_once`, how long a commit (retries "
               "after abortable errors included) or the marker read may take."),
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
  cfg.gather([&] { exactly_once_ = cfg.get_string("delivery") == "exactly_once"; });
  transactional_prefix_ = cfg.get_string("transactional_id");
  marker_topic_ = cfg.get_string("marker_topic");
  if (exactly_once_) {
    cfg.gather([&] {
      if (!cfg.get_bool("idempotence"))
        cfg.fail("idempotence",
                 "exactly_once needs the idempotent producer; remove "
                 "`idempotence: false` or use delivery: at_least_once");
    });
    if (passthrough_sets(cfg, "transactional.id"))
      cfg.report("rdkafka",
                 "set transactional_id instead of rdkafka transactional.id (each "
                 "instance needs an id of its own)");
    if (marker_topic_.empty()) cfg.report("marker_topic", "name the marker topic");
  } else if (cfg.has("transactional_id")) {
    cfg.report("transactional_id", "only used with delivery: exactly_once");
  }

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
  if (exactly_once_) {
    const std::string prefix =
        transactional_prefix_.empty() ? "pel-" + name_ + "-" + topic_name_ : transactional_prefix_;
    transactional_id_ = prefix + "-" + std::to_string(ctx.instance);
    std::string error;
    if (!try_set(conf_.get(), "transactional.id", transactional_id_, error))
      cfg_.fail("transactional_id", error);
  }
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
  if (!exactly_once_) return;

  marker_.reset(rd_kafka_topic_new(rk_.get(), marker_topic_.c_str(), nullptr));
  const rd_kafka_metadata_t* md = nullptr;
  auto err =
      rd_kafka_metadata(rk_.get(), 0, marker_.get(), &md, static_cast<int>(flush_timeout_ms_));
  std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> guard(
      md, rd_kafka_metadata_destroy);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR && (md->topic_cnt != 1 || md->topics[0].partition_cnt < 1))
    err = md->topic_cnt == 1 && md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR
              ? md->topics[0].err
              : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("kafka sink '" + name_ + "': marker topic " + marker_topic_ +
                             " is not usable (" + rd_kafka_err2str(err) +
                             "): create it with one partition and cleanup.policy=compact, or "
                             "name another with marker_topic");
  // Fences every earlier producer with this id and aborts its open transaction.
  if (auto* e = rd_kafka_init_transactions(rk_.get(), static_cast<int>(flush_timeout_ms_)))
    fail_txn("init_transactions", e);
}

void kafka_sink::delivery_cb(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  auto* self = static_cast<kafka_sink*>(opaque);
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    // exactly_once counts a transaction's messages when it commits (an aborted attempt's
    // acknowledged messages were never visible).
    if (!self->exactly_once_) self->delivered_.fetch_add(1, std::memory_order_relaxed);
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

std::int64_t kafka_sink::encode_row(const core::value* row, std::int64_t t, const char*& key,
                                    std::size_t& key_len) {
  payload_.clear();
  encoder_->encode(row, payload_);
  key = nullptr;
  key_len = 0;
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
  return (event_timestamps_ && t > 0) ? t / 1'000'000 : 0;  // 0: send time
}

void kafka_sink::produce_message(rd_kafka_topic_t* topic, std::int32_t partition, const void* value,
                                 std::size_t value_len, const void* key, std::size_t key_len,
                                 std::int64_t timestamp_ms, bool with_headers) {
  const auto deadline = core::steady_ns() + queue_full_timeout_ms_ * 1'000'000;
  for (;;) {
    rd_kafka_headers_t* hdrs =
        with_headers && header_proto_ ? rd_kafka_headers_copy(header_proto_.get()) : nullptr;
    auto err = rd_kafka_producev(rk_.get(), RD_KAFKA_V_RKT(topic), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                 RD_KAFKA_V_VALUE(const_cast<void*>(value), value_len),
                                 RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_TIMESTAMP(timestamp_ms),
                                 RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      ++produced_;
      return;
    }
    if (hdrs != nullptr) rd_kafka_headers_destroy(hdrs);  // not taken over on failure
    if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      throw std::runtime_error("kafka sink '" + name_ + "': cannot produce to " +
                               rd_kafka_topic_name(topic) + ": " + rd_kafka_err2str(err));
    // The local queue is full: serve delivery reports until there is room, within bounds.
    rd_kafka_poll(rk_.get(), 10);
    if (!exactly_once_) throw_if_failed();
    if (core::steady_ns() > deadline)
      throw std::runtime_error(
          "kafka sink '" + name_ + "': the producer queue stayed full for " +
          std::to_string(queue_full_timeout_ms_) +
          " ms (broker unreachable?); raise queue_full_timeout or check the brokers");
  }
}

void kafka_sink::produce_row(const core::value* row, std::int64_t t) {
  const char* key = nullptr;
  std::size_t key_len = 0;
  const std::int64_t ts_ms = encode_row(row, t, key, key_len);
  produce_message(topic_.get(), RD_KAFKA_PARTITION_UA, payload_.data(), payload_.size(), key,
                  key_len, ts_ms, true);
}

void kafka_sink::write(const core::batch& in) {
  if (!rk_) throw std::logic_error("kafka sink written before open()");
  if (exactly_once_) {
    // Held until the epoch's commit; encoded now, exactly as it will be produced.
    for (std::size_t i = 0; i < in.size(); ++i) {
      held_message h;
      const char* key = nullptr;
      std::size_t key_len = 0;
      h.timestamp_ms = encode_row(in.row(i), in.times[i], key, key_len);
      h.value = payload_;
      if (key != nullptr) {
        h.key.assign(key, key_len);
        h.has_key = true;
      }
      open_epoch_.push_back(std::move(h));
    }
    return;
  }
  throw_if_failed();
  for (std::size_t i = 0; i < in.size(); ++i) produce_row(in.row(i), in.times[i]);
  rd_kafka_poll(rk_.get(), 0);  // serve delivery reports
  throw_if_failed();
}

void kafka_sink::flush() {
  if (!rk_ || exactly_once_) return;  // exactly_once: nothing is produced outside commit()
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
  if (exactly_once_) {
    // End of stream: everything written is final, whatever checkpoint it belongs to.
    const std::uint64_t last =
        std::max<std::uint64_t>(last_sealed_, last_committed_ < 0 ? 0 : last_committed_);
    seal(last + 1);
    commit_through(UINT64_MAX);
  } else {
    flush();
  }
  marker_.reset();
  topic_.reset();
  rk_.reset();
}

// --- exactly once ------------------------------------------------------------------------

namespace {
constexpr std::uint32_t snapshot_version = 1;
}

void kafka_sink::prepare(std::uint64_t id) {
  if (!exactly_once_) return flush();
  seal(id);
}

void kafka_sink::seal(std::uint64_t id) {
  last_sealed_ = std::max(last_sealed_, id);
  if (open_epoch_.empty()) return;  // nothing to make visible for this checkpoint
  if (!sealed_.empty() && sealed_.back().id >= id) {
    // The same id again (or an older one): its rows join the newest sealed epoch.
    auto& m = sealed_.back().messages;
    m.insert(m.end(), std::make_move_iterator(open_epoch_.begin()),
             std::make_move_iterator(open_epoch_.end()));
  } else {
    sealed_.push_back({id, std::move(open_epoch_)});
  }
  open_epoch_.clear();
}

void kafka_sink::snapshot(core::state_writer& w) {
  w.put<std::uint32_t>(snapshot_version);
  w.put<std::uint32_t>(exactly_once_ ? static_cast<std::uint32_t>(sealed_.size()) : 0);
  if (!exactly_once_) return;
  for (const auto& e : sealed_) {
    w.put<std::uint64_t>(e.id);
    w.put<std::uint64_t>(e.messages.size());
    for (const auto& m : e.messages) {
      w.put<std::uint8_t>(m.has_key ? 1 : 0);
      w.put_string(m.key);
      w.put_string(m.value);
      w.put<std::int64_t>(m.timestamp_ms);
    }
  }
}

void kafka_sink::commit(std::uint64_t id) {
  if (!exactly_once_ || !rk_) return;
  commit_through(id);
}

void kafka_sink::commit_through(std::uint64_t id) {
  std::size_t done = 0;
  for (; done < sealed_.size() && sealed_[done].id <= id; ++done) {
    // Already visible (the marker said so at restore): never again.
    if (last_committed_ >= 0 && sealed_[done].id <= static_cast<std::uint64_t>(last_committed_))
      continue;
    commit_epoch(sealed_[done]);
  }
  sealed_.erase(sealed_.begin(), sealed_.begin() + static_cast<std::ptrdiff_t>(done));
}

void kafka_sink::commit_epoch(const epoch& e) {
  const std::int64_t deadline = core::steady_ns() + flush_timeout_ms_ * 1'000'000;
  auto left_ms = [&] {
    return static_cast<int>(std::max<std::int64_t>(1, (deadline - core::steady_ns()) / 1'000'000));
  };
  const std::string marker_value = std::to_string(e.id);
  for (;;) {
    failed_ = 0;
    first_failure_.clear();
    if (auto* err = rd_kafka_begin_transaction(rk_.get())) fail_txn("begin_transaction", err);
    try {
      for (const auto& m : e.messages)
        produce_message(topic_.get(), RD_KAFKA_PARTITION_UA, m.value.data(), m.value.size(),
                        m.has_key ? m.key.data() : nullptr, m.has_key ? m.key.size() : 0,
                        m.timestamp_ms, true);
      // The marker, in the same transaction: visible exactly when the epoch's data is.
      produce_message(marker_.get(), 0, marker_value.data(), marker_value.size(),
                      transactional_id_.data(), transactional_id_.size(), 0, false);
    } catch (const std::runtime_error&) {
      // A produce refused because the transaction must be aborted: abort and try again.
      char fatal[256];
      if (rd_kafka_fatal_error(rk_.get(), fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR ||
          core::steady_ns() >= deadline)
        throw;
      if (auto* a = rd_kafka_abort_transaction(rk_.get(), left_ms()))
        fail_txn("abort_transaction", a);
      continue;
    }
    rd_kafka_error_t* err = rd_kafka_commit_transaction(rk_.get(), left_ms());
    while (err != nullptr && rd_kafka_error_is_retriable(err) && core::steady_ns() < deadline) {
      rd_kafka_error_destroy(err);  // e.g. timed out: the same commit may be called again
      err = rd_kafka_commit_transaction(rk_.get(), left_ms());
    }
    if (err == nullptr) {
      delivered_.fetch_add(e.messages.size(), std::memory_order_relaxed);
      last_committed_ = static_cast<std::int64_t>(e.id);
      return;
    }
    if (rd_kafka_error_is_fatal(err) || !rd_kafka_error_txn_requires_abort(err) ||
        core::steady_ns() >= deadline)
      fail_txn("commit_transaction", err);
    rd_kafka_error_destroy(err);
    // Abortable (a delivery failed, a broker went away): abort, then the whole epoch again.
    if (auto* a = rd_kafka_abort_transaction(rk_.get(), left_ms()))
      fail_txn("abort_transaction", a);
  }
}

void kafka_sink::fail_txn(const char* what, rd_kafka_error_t* err) {
  std::string text = std::string("kafka sink '") + name_ + "': " + what + " failed (" +
                     rd_kafka_error_string(err) + ")";
  if (rd_kafka_error_is_fatal(err))
    text += ": the producer is fenced or broken (another instance with transactional id " +
            transactional_id_ + " started?); the job must restart from its last checkpoint";
  else
    text += " within flush_timeout (" + std::to_string(flush_timeout_ms_) +
            " ms); check the brokers or raise flush_timeout";
  rd_kafka_error_destroy(err);
  throw std::runtime_error(text);
}

std::int64_t kafka_sink::read_marker() {
  const std::int64_t deadline = core::steady_ns() + flush_timeout_ms_ * 1'000'000;
  auto left_ms = [&] {
    return static_cast<int>(std::max<std::int64_t>(1, (deadline - core::steady_ns()) / 1'000'000));
  };
  conf_ptr conf(rd_kafka_conf_new());
  std::string error;
  // The user's settings too (security), ignoring producer-only ones a consumer refuses.
  for (const auto& [k, v] : cfg_.get_string_map("rdkafka")) try_set(conf.get(), k, v, error);
  const bool ok =
      try_set(conf.get(), "bootstrap.servers", cfg_.get_string("bootstrap_servers"), error) &&
      try_set(conf.get(), "group.id", transactional_id_ + "-marker-reader", error) &&
      try_set(conf.get(), "isolation.level", "read_committed", error) &&
      try_set(conf.get(), "enable.partition.eof", "true", error) &&
      try_set(conf.get(), "enable.auto.commit", "false", error);
  if (!ok) throw std::runtime_error("kafka sink '" + name_ + "': marker reader: " + error);
  rd_kafka_conf_set_log_cb(conf.get(), [](const rd_kafka_t*, int, const char*, const char*) {});
  char errstr[512];
  handle_ptr rk(rd_kafka_new(RD_KAFKA_CONSUMER, conf.get(), errstr, sizeof errstr));
  if (!rk) throw std::runtime_error("kafka sink '" + name_ + "': marker reader: " + errstr);
  conf.release();

  std::int64_t low = -1, high = -1;
  auto err =
      rd_kafka_query_watermark_offsets(rk.get(), marker_topic_.c_str(), 0, &low, &high, left_ms());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("kafka sink '" + name_ + "': cannot read marker topic " +
                             marker_topic_ + ": " + rd_kafka_err2str(err));
  std::int64_t last = -1;
  if (high <= low) return last;
  auto list = new_tplist(1);
  rd_kafka_topic_partition_list_add(list.get(), marker_topic_.c_str(), 0)->offset =
      RD_KAFKA_OFFSET_BEGINNING;
  if (auto e = rd_kafka_assign(rk.get(), list.get()))
    throw std::runtime_error("kafka sink '" + name_ + "': cannot read marker topic " +
                             marker_topic_ + ": " + rd_kafka_err2str(e));
  // To the end as it was after init_transactions: with read_committed the end moves past
  // another producer's open transaction only when it finishes, so wait for that too.
  for (;;) {
    if (core::steady_ns() >= deadline)
      throw std::runtime_error(
          "kafka sink '" + name_ + "': marker topic " + marker_topic_ +
          " could not be read to offset " + std::to_string(high) + " within flush_timeout (" +
          std::to_string(flush_timeout_ms_) +
          " ms): an open transaction of another producer holds it back, or the broker is down");
    message_ptr m(rd_kafka_consumer_poll(rk.get(), std::min(100, left_ms())));
    if (!m) continue;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      if (m->offset >= high) break;
      continue;
    }
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;  // transient; the deadline bounds it
    if (m->key != nullptr && m->key_len == transactional_id_.size() &&
        std::memcmp(m->key, transactional_id_.data(), m->key_len) == 0 && m->payload != nullptr) {
      std::int64_t v = -1;
      const char* p = static_cast<const char*>(m->payload);
      auto r = std::from_chars(p, p + m->len, v);
      if (r.ec == std::errc() && r.ptr == p + m->len) last = v;  // the newest record wins
    }
    if (m->offset + 1 >= high) break;
  }
  rd_kafka_consumer_close(rk.get());
  return last;
}

void kafka_sink::restore(std::uint64_t id, core::state_reader& r) {
  const auto version = r.get<std::uint32_t>();
  if (version != snapshot_version)
    throw std::runtime_error("kafka sink '" + name_ + "': checkpoint has version " +
                             std::to_string(version) + ", this build reads version " +
                             std::to_string(snapshot_version));
  const auto count = r.get<std::uint32_t>();
  std::vector<epoch> restored;
  for (std::uint32_t i = 0; i < count; ++i) {
    epoch e;
    e.id = r.get<std::uint64_t>();
    const auto n = r.get<std::uint64_t>();
    for (std::uint64_t k = 0; k < n; ++k) {
      held_message m;
      m.has_key = r.get<std::uint8_t>() != 0;
      m.key = r.get_string();
      m.value = r.get_string();
      m.timestamp_ms = r.get<std::int64_t>();
      e.messages.push_back(std::move(m));
    }
    restored.push_back(std::move(e));
  }
  if (!exactly_once_ || !rk_) return;  // at_least_once: nothing was held back
  // open() fenced the previous run's producer (its open transaction is aborted); the marker
  // says which epoch it made visible last.
  last_committed_ = read_marker();
  std::vector<epoch> redo;
  for (auto& e : restored)
    if (e.id <= id && (last_committed_ < 0 || e.id > static_cast<std::uint64_t>(last_committed_)))
      redo.push_back(std::move(e));
  std::sort(redo.begin(), redo.end(), [](const epoch& a, const epoch& b) { return a.id < b.id; });
  for (auto& e : sealed_) redo.push_back(std::move(e));
  sealed_ = std::move(redo);
  last_sealed_ = std::max(last_sealed_, id);
  commit_through(id);
}

void kafka_sink::abort() {
  if (!exactly_once_) return close();
  // What is not sealed belongs to no checkpoint; sealed epochs are in the last snapshot and
  // a restart commits them. No transaction is open between commits.
  open_epoch_.clear();
  sealed_.clear();
  marker_.reset();
  topic_.reset();
  rk_.reset();
}

std::vector<std::uint64_t> kafka_sink::pending_epochs() const {
  std::vector<std::uint64_t> out;
  for (const auto& e : sealed_) out.push_back(e.id);
  return out;
}

std::uint64_t kafka_sink::in_flight() const noexcept {
  const auto done = delivered_.load() + failed_;
  return produced_ > done ? produced_ - done : 0;
}

}  // namespace pel::connectors
