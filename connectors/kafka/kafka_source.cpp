#include "kafka_source.hpp"

#include "pel/core/time.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace pel::connectors {

using namespace kafka_detail;

namespace {

constexpr int metadata_timeout_ms = 10'000;

const char* meta_names[] = {"kafka_key", "kafka_partition", "kafka_offset", "kafka_timestamp",
                            "kafka_headers"};

/// The `event_time:` block of the component, if the YAML has one.
const spec::node* event_time_block(const spec::config& cfg) {
  if (!cfg.raw() || !cfg.raw()->is_map()) return nullptr;
  auto e = cfg.raw()->find("event_time");
  return (e != nullptr && e->value && e->value->is_map()) ? e->value.get() : nullptr;
}

bool parse_topic_partition(std::string_view text, std::string& topic, std::int32_t& partition) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) return false;
  auto digits = text.substr(colon + 1);
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), partition);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size() || partition < 0) return false;
  topic = std::string(text.substr(0, colon));
  return true;
}

}  // namespace

std::vector<spec::param> kafka_source_params() {
  using spec::param;
  std::vector<param> p = {
      param::string("bootstrap_servers")
          .req()
          .doc("Comma-separated `host:port` list of Kafka brokers (librdkafka "
               "`bootstrap.servers`)."),
      param::string_list("topics").doc(
          "Topics to read. Required with `group_id` and with `assign: true`."),
      param::string("group_id")
          .doc("Consumer group. Without `partitions`/`assign`, the source subscribes and the group "
               "splits the partitions among its members; offsets are committed to this group. With "
               "an explicit assignment it is only where offsets are committed."),
      param::string_list("partitions")
          .doc("Explicit assignment as `topic:partition` entries (e.g. `ticks:0`). Instance i of "
               "the source reads entries i, i+parallelism, ... No rebalancing."),
      param::boolean("assign").def("false").doc(
          "Assign every partition of `topics` explicitly (split among the instances) instead "
          "of joining a consumer group."),
      param::string("start_from")
          .def("committed")
          .one_of({"committed", "earliest", "latest", "timestamp"})
          .doc("Where to start a partition. `committed`: the group's committed offset, else "
               "earliest. In group mode `earliest`, `latest` and `timestamp` apply only to "
               "partitions the group has no committed offset for; with an explicit assignment "
               "they ignore committed offsets."),
      param::integer("start_timestamp")
          .min(0)
          .doc("With `start_from: timestamp`: epoch milliseconds; each partition starts at its "
               "first "
               "message at or after it."),
      param::string("key_field")
          .doc("Adds the message key as a string field with this name (null when the message has "
               "no key)."),
      param::string_list("include").doc(
          "Metadata appended to each row as extra fields: `key` (kafka_key), `partition` "
          "(kafka_partition), `offset` (kafka_offset), `timestamp` (kafka_timestamp, epoch ms), "
          "`headers` (kafka_headers, a JSON object of string values)."),
      param::bytes("max_message_bytes")
          .def("1MiB")
          .min(1)
          .doc("Messages larger than this go to the dead-letter output."),
      param::bytes("fetch_queue_bytes")
          .def("64MiB")
          .min(1024)
          .doc("Bound on messages fetched ahead and held by librdkafka while the pipeline is slow "
               "(librdkafka `queued.max.messages.kbytes`). Memory stays bounded under "
               "backpressure."),
      param::duration("poll_wait")
          .def("1ms")
          .doc("When nothing is fetched yet, a poll waits up to this long (rounded to whole "
               "milliseconds) for the next message, so a message is handed on as soon as "
               "librdkafka has it instead of at the runtime's next idle poll (which backs off "
               "up to 50 ms). The source then runs on a thread of its own. A source that has had "
               "no message for 100 ms (or `event_time.idle_timeout`, if shorter) reports itself "
               "idle and the runtime's back-off applies again. `0s`: never wait (the runtime's "
               "scheduler polls, with its back-off)."),
      param::string_map("rdkafka").doc(
          "librdkafka consumer properties passed through unchanged (they override the "
          "connector's own settings), e.g. `session.timeout.ms: 10000`. The connector sets "
          "`fetch.wait.max.ms: 1` for low latency (librdkafka's default is 500); raise it to send "
          "fewer empty fetch requests to an idle broker."),
  };
  for (auto& f : format_params(true)) p.push_back(std::move(f));
  return p;
}

// --- construction ------------------------------------------------------------------------

kafka_source::kafka_source(const spec::config& cfg) : cfg_(cfg), conf_(rd_kafka_conf_new()) {
  topics_ = cfg.get_string_list("topics");
  group_id_ = cfg.get_string("group_id");
  assign_all_ = cfg.get_bool("assign");
  for (const auto& entry : cfg.get_string_list("partitions")) {
    std::string topic;
    std::int32_t partition = 0;
    if (!parse_topic_partition(entry, topic, partition))
      cfg.fail("partitions", "'" + entry + "' is not topic:partition (e.g. ticks:0)");
    explicit_partitions_.emplace_back(std::move(topic), partition);
  }
  if (!explicit_partitions_.empty() && assign_all_)
    cfg.fail("assign", "set either `partitions` or `assign: true`, not both");
  const bool explicit_mode = !explicit_partitions_.empty() || assign_all_;
  if (!explicit_mode && group_id_.empty())
    cfg.fail("group_id",
             "a kafka source needs `group_id` (consumer group) or an explicit "
             "assignment (`partitions: [topic:0, ...]` or `assign: true`)");
  if ((!explicit_mode || assign_all_) && topics_.empty())
    cfg.fail("topics", "list the topics to read, e.g. topics: [ticks]");

  const auto start = cfg.get_string("start_from");
  if (start == "earliest")
    start_ = start_mode::earliest;
  else if (start == "latest")
    start_ = start_mode::latest;
  else if (start == "timestamp")
    start_ = start_mode::timestamp;
  else
    start_ = start_mode::committed;
  if (start_ == start_mode::committed && group_id_.empty()) {
    if (cfg.has("start_from"))
      cfg.fail("start_from", "`start_from: committed` needs a `group_id` to read offsets from");
    start_ = start_mode::earliest;
  }
  if (start_ == start_mode::timestamp) {
    if (!cfg.has("start_timestamp"))
      cfg.fail("start_timestamp", "`start_from: timestamp` needs `start_timestamp` (epoch ms)");
    start_timestamp_ms_ = cfg.get_int("start_timestamp");
  }
  max_message_bytes_ = cfg.get_bytes("max_message_bytes");
  const std::int64_t wait_ns = cfg.get_duration_ns("poll_wait");
  poll_wait_ms_ =
      wait_ns <= 0 ? 0
                   : static_cast<int>(std::max<std::int64_t>(1, (wait_ns + 500'000) / 1'000'000));

  if (auto et = event_time_block(cfg)) {
    if (auto it = et->find("idle_timeout"); it && it->value->is_scalar()) {
      std::int64_t ns = 0;
      if (spec::parse_duration(it->value->text, ns)) idle_timeout_ns_ = ns;
    }
    if (auto it = et->find("max_drift"); it && it->value->is_scalar()) {
      std::int64_t ns = 0;
      if (spec::parse_duration(it->value->text, ns) && ns > 0) aligned_ = true;
    }
  }
  if (idle_timeout_ns_ > 0) quiet_after_ns_ = std::min(quiet_after_ns_, idle_timeout_ns_);

  // Record schema: the decoder's fields, then the selected metadata.
  decoder_ = make_decoder(cfg, declared_schema(cfg));
  if (!decoder_ || !decoder_->schema() || decoder_->schema()->size() == 0)
    cfg.fail("schema",
             "a kafka source needs the record fields declared under `schema:` "
             "(or `format: raw` for one string field `value`)");
  auto schema = std::make_shared<core::schema>(*decoder_->schema());
  data_width_ = static_cast<std::uint32_t>(schema->size());
  auto add_meta = [&](meta_field f, std::string name, core::value_type type, const char* key) {
    if (schema->index_of(name) >= 0)
      cfg.fail(key, "field '" + name + "' already exists in the record schema; pick another name");
    meta_.emplace_back(f, static_cast<std::uint32_t>(schema->add(std::move(name), type)));
  };
  if (cfg.has("key_field"))
    add_meta(meta_key, cfg.get_string("key_field"), core::value_type::string, "key_field");
  for (const auto& inc : cfg.get_string_list("include")) {
    meta_field f;
    core::value_type type = core::value_type::integer;
    if (inc == "key")
      f = meta_key, type = core::value_type::string;
    else if (inc == "partition")
      f = meta_partition;
    else if (inc == "offset")
      f = meta_offset;
    else if (inc == "timestamp")
      f = meta_timestamp;
    else if (inc == "headers")
      f = meta_headers, type = core::value_type::string;
    else
      cfg.fail("include", "unknown metadata '" + inc +
                              "'; allowed: key, partition, offset, timestamp, headers");
    add_meta(f, meta_names[f], type, "include");
  }
  schema_ = std::move(schema);

  // librdkafka settings: the connector's defaults first, then the user's pass-through.
  auto* c = conf_.get();
  set_or_fail(c, cfg, "bootstrap_servers", "bootstrap.servers",
              cfg.get_string("bootstrap_servers"));
  // librdkafka 2.0.2 refuses assign() without a group.id even though nothing joins a group
  // then; an explicit assignment without `group_id` gets a private one and never commits.
  set_or_fail(c, cfg, "group_id", "group.id",
              group_id_.empty() ? "pel-assign-" + cfg.path() : group_id_);
  set_or_fail(c, cfg, "group_id", "enable.auto.commit", "false");
  set_or_fail(c, cfg, "group_id", "enable.auto.offset.store", "false");
  set_or_fail(c, cfg, "start_from", "auto.offset.reset",
              start_ == start_mode::latest ? "latest" : "earliest");
  set_or_fail(c, cfg, "group_id", "enable.partition.eof", "true");
  set_or_fail(c, cfg, "group_id", "partition.assignment.strategy", "cooperative-sticky");
  set_or_fail(c, cfg, "fetch_queue_bytes", "queued.max.messages.kbytes",
              std::to_string(std::max<std::int64_t>(1, cfg.get_bytes("fetch_queue_bytes") / 1024)));
  // queued.min.messages stays at librdkafka's default: in 2.0.2 it counts the whole consumer
  // queue, and going over it pauses fetching for a full second (measured: a bound of 10,000
  // cut throughput by 4x). The byte bound above is what keeps memory in check.
  set_or_fail(c, cfg, "max_message_bytes", "fetch.message.max.bytes",
              std::to_string(std::max<std::int64_t>(max_message_bytes_, 1024)));
  // Low latency (README.md, "Latency"): an empty fetch is answered after at most 1 ms
  // (librdkafka's default is 500 ms; a real broker answers at once when data arrives, the
  // embedded mock broker only after the full wait).
  set_or_fail(c, cfg, "bootstrap_servers", "fetch.wait.max.ms", "1");
  set_or_fail(c, cfg, "bootstrap_servers", "log_level", "3");
  apply_passthrough(c, cfg);
  rd_kafka_conf_set_rebalance_cb(c, &kafka_source::rebalance_cb);
  rd_kafka_conf_set_offset_commit_cb(c, &kafka_source::commit_cb);
  rd_kafka_conf_set_error_cb(c, &kafka_source::error_cb);
  // Library code does not print: librdkafka's log lines are dropped; errors are kept through
  // the error callback and shown by last_error().
  rd_kafka_conf_set_log_cb(c, [](const rd_kafka_t*, int, const char*, const char*) {});
}

kafka_source::~kafka_source() {
  close();
}

// --- lifecycle ---------------------------------------------------------------------------

void kafka_source::open(const core::operator_context& ctx) {
  name_ = ctx.name;
  rd_kafka_conf_set_opaque(conf_.get(), this);
  char errstr[512];
  rk_.reset(rd_kafka_new(RD_KAFKA_CONSUMER, conf_.get(), errstr, sizeof errstr));
  if (!rk_) throw std::runtime_error("kafka source '" + name_ + "': " + errstr);
  conf_.release();  // owned by the handle
  rd_kafka_poll_set_consumer(rk_.get());

  if (explicit_partitions_.empty() && !assign_all_) {
    auto list = new_tplist(static_cast<int>(topics_.size()));
    for (const auto& t : topics_)
      rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
    awaiting_assignment_ = true;  // until the group's first assignment
    if (auto err = rd_kafka_subscribe(rk_.get(), list.get()))
      throw std::runtime_error("kafka source '" + name_ +
                               "': cannot subscribe: " + rd_kafka_err2str(err));
  } else {
    assign_explicit(ctx);
  }
}

void kafka_source::assign_explicit(const core::operator_context& ctx) {
  auto all = explicit_partitions_;
  if (assign_all_) {
    for (const auto& t : topics_) {
      topic_ptr rkt(rd_kafka_topic_new(rk_.get(), t.c_str(), nullptr));
      const rd_kafka_metadata_t* md = nullptr;
      auto err = rd_kafka_metadata(rk_.get(), 0, rkt.get(), &md, metadata_timeout_ms);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw std::runtime_error("kafka source '" + name_ + "': no metadata for topic " + t + ": " +
                                 rd_kafka_err2str(err));
      std::unique_ptr<const rd_kafka_metadata_t, void (*)(const rd_kafka_metadata_t*)> guard(
          md, rd_kafka_metadata_destroy);
      if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw std::runtime_error(
            "kafka source '" + name_ + "': topic " + t + " is unknown: " +
            rd_kafka_err2str(md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
      std::vector<std::int32_t> ids;
      for (int i = 0; i < md->topics[0].partition_cnt; ++i)
        ids.push_back(md->topics[0].partitions[i].id);
      std::sort(ids.begin(), ids.end());
      for (auto id : ids) all.emplace_back(t, id);
    }
  }
  const std::uint32_t n = std::max<std::uint32_t>(1, ctx.parallelism);
  auto list = new_tplist(static_cast<int>(all.size()));
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (i % n != ctx.instance) continue;
    auto* tp = rd_kafka_topic_partition_list_add(list.get(), all[i].first.c_str(), all[i].second);
    switch (start_) {
      case start_mode::committed:
        tp->offset = RD_KAFKA_OFFSET_STORED;
        break;
      case start_mode::earliest:
        tp->offset = RD_KAFKA_OFFSET_BEGINNING;
        break;
      case start_mode::latest:
        tp->offset = RD_KAFKA_OFFSET_END;
        break;
      case start_mode::timestamp:
        tp->offset = start_timestamp_ms_;
        break;
    }
  }
  if (start_ == start_mode::timestamp) resolve_timestamps(list.get(), false);
  // Known (and, with alignment, given their own queues) before fetching starts.
  add_partitions(list.get());
  if (start_ == start_mode::committed) remember_committed(list.get());
  // Assigned at the first poll: a restore (after open, before the first poll) may still move
  // the start offsets, and librdkafka then fetches each partition once, from there.
  explicit_assignment_ = std::move(list);
  assigned_ = false;
}

void kafka_source::assign_now() {
  assigned_ = true;
  if (auto err = rd_kafka_assign(rk_.get(), explicit_assignment_.get()))
    throw std::runtime_error("kafka source '" + name_ +
                             "': cannot assign partitions: " + rd_kafka_err2str(err));
}

void kafka_source::close() {
  if (!rk_) return;
  // No new commit here: only completed checkpoints commit (on_committed). The last one is
  // made sure of (synchronously), then closing leaves the group cleanly so that the
  // partitions move at once, to be read right after it.
  if (last_commit_ && !group_id_.empty()) rd_kafka_commit(rk_.get(), last_commit_.get(), 0);
  last_commit_.reset();
  rd_kafka_consumer_close(rk_.get());
  forget_all();  // partition queues go before the handle
  rk_.reset();
}

// --- rebalancing -------------------------------------------------------------------------

void kafka_source::rebalance_cb(rd_kafka_t*, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t* parts, void* opaque) {
  static_cast<kafka_source*>(opaque)->on_rebalance(err, parts);
}

void kafka_source::on_rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  ++rebalances_;
  const bool cooperative = std::strcmp(rd_kafka_rebalance_protocol(rk_.get()), "COOPERATIVE") == 0;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    awaiting_assignment_ = false;  // even an empty assignment: the group has decided
    if (start_ == start_mode::timestamp) resolve_timestamps(parts, true);
    add_partitions(parts);  // before fetching starts (alignment: their own queues)
    apply_restored(parts);  // a checkpoint's offsets win over committed ones
    if (start_ == start_mode::committed) remember_committed(parts);
    resume_own(parts);  // never behind what this member's own checkpoints completed
    if (cooperative) {
      if (auto e = rd_kafka_incremental_assign(rk_.get(), parts)) {
        last_error_ = rd_kafka_error_string(e);
        rd_kafka_error_destroy(e);
      }
    } else {
      rd_kafka_assign(rk_.get(), parts);
    }
    return;
  }
  // Revoked or lost: positions of these partitions are no longer ours to commit.
  if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) last_error_ = rd_kafka_err2str(err);
  if (cooperative && err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    forget_partitions(parts);
    if (auto e = rd_kafka_incremental_unassign(rk_.get(), parts)) {
      last_error_ = rd_kafka_error_string(e);
      rd_kafka_error_destroy(e);
    }
    awaiting_assignment_ = states_.empty();
  } else {
    forget_all();
    rd_kafka_assign(rk_.get(), nullptr);
    awaiting_assignment_ = true;  // the next round assigns again
  }
}

void kafka_source::resolve_timestamps(rd_kafka_topic_partition_list_t* parts,
                                      bool only_uncommitted) {
  auto query = new_tplist(parts->cnt);
  if (only_uncommitted) {
    // Group mode: a committed offset wins; only partitions without one start at the time.
    auto copy = tplist_ptr(rd_kafka_topic_partition_list_copy(parts));
    rd_kafka_committed(rk_.get(), copy.get(), metadata_timeout_ms);
    for (int i = 0; i < copy->cnt; ++i) {
      parts->elems[i].offset =
          copy->elems[i].offset >= 0 ? copy->elems[i].offset : RD_KAFKA_OFFSET_INVALID;
      if (copy->elems[i].offset < 0)
        rd_kafka_topic_partition_list_add(query.get(), parts->elems[i].topic,
                                          parts->elems[i].partition)
            ->offset = start_timestamp_ms_;
    }
  } else {
    for (int i = 0; i < parts->cnt; ++i)
      rd_kafka_topic_partition_list_add(query.get(), parts->elems[i].topic,
                                        parts->elems[i].partition)
          ->offset = start_timestamp_ms_;
  }
  if (query->cnt == 0) return;
  auto err = rd_kafka_offsets_for_times(rk_.get(), query.get(), metadata_timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) last_error_ = rd_kafka_err2str(err);
  for (int i = 0; i < query->cnt; ++i) {
    auto* tp =
        rd_kafka_topic_partition_list_find(parts, query->elems[i].topic, query->elems[i].partition);
    if (tp == nullptr) continue;
    // -1 (no message at or after the time) means the end of the partition.
    tp->offset = (err == RD_KAFKA_RESP_ERR_NO_ERROR && query->elems[i].offset >= 0)
                     ? query->elems[i].offset
                     : RD_KAFKA_OFFSET_END;
  }
}

void kafka_source::add_partitions(const rd_kafka_topic_partition_list_t* parts) {
  for (int i = 0; i < parts->cnt; ++i) {
    const auto& tp = parts->elems[i];
    bool known = false;
    for (const auto& s : states_)
      if (s.partition == tp.partition && s.topic == tp.topic) known = true;
    if (known) continue;
    partition_state s;
    s.topic = tp.topic;
    s.partition = tp.partition;
    s.split = next_split_++;
    if (aligned_) {
      // The partition's messages stay in its own queue (not forwarded to the consumer's):
      // poll reads the queues of the partitions that are not paused.
      if (rd_kafka_queue_t* q = rd_kafka_queue_get_partition(rk_.get(), tp.topic, tp.partition)) {
        rd_kafka_queue_forward(q, nullptr);
        s.queue.reset(q);
      }
    }
    states_.push_back(std::move(s));
  }
}

void kafka_source::forget_partitions(const rd_kafka_topic_partition_list_t* parts) {
  auto revoked = [parts](const std::string& topic, std::int32_t partition) {
    return rd_kafka_topic_partition_list_find(parts, topic.c_str(), partition) != nullptr;
  };
  states_.erase(
      std::remove_if(states_.begin(), states_.end(),
                     [&](const partition_state& s) { return revoked(s.topic, s.partition); }),
      states_.end());
  last_state_ = 0;
  for (auto& p : pending_) {
    std::size_t w = 0;
    for (std::size_t r = 0; r < p.partitions.size(); ++r) {
      if (revoked(p.partitions[r].first, p.partitions[r].second)) continue;
      p.partitions[w] = std::move(p.partitions[r]);
      p.offsets[w] = p.offsets[r];
      ++w;
    }
    p.partitions.resize(w);
    p.offsets.resize(w);
  }
}

void kafka_source::forget_all() {
  states_.clear();
  last_state_ = 0;
  pending_.clear();
}

// --- polling -----------------------------------------------------------------------------

kafka_source::partition_state* kafka_source::state_for(const rd_kafka_message_t* m) {
  if (last_state_ < states_.size()) {
    auto& s = states_[last_state_];
    if (s.rkt == m->rkt && s.partition == m->partition) return &s;
  }
  for (std::size_t i = 0; i < states_.size(); ++i) {
    auto& s = states_[i];
    if (s.partition != m->partition) continue;
    if (s.rkt == nullptr) {
      if (s.topic != rd_kafka_topic_name(m->rkt)) continue;
      s.rkt = m->rkt;
    } else if (s.rkt != m->rkt) {
      continue;
    }
    last_state_ = i;
    return &s;
  }
  // A message of a partition we no longer own (revoked while in flight): not ours to emit.
  return nullptr;
}

core::poll_status kafka_source::poll(core::outputs& out, std::size_t max_rows) {
  if (!rk_) return core::poll_status::idle;
  if (explicit_assignment_ && !assigned_) assign_now();
  if (out.main.width == 0) out.main.width = static_cast<std::uint32_t>(schema_->size());
  row_offsets_.clear();
  std::size_t taken = 0;
  bool waited = poll_wait_ms_ == 0;  // wait at most once per poll, only when nothing is queued
  wait_ns_ = 0;
  // Bounded: at most max_rows messages plus as many events (end of partition, errors). With
  // alignment the consumer's queue carries events only (and messages fetched before a
  // partition's queue was split off); the partitions' queues follow.
  if (!aligned_) {
    for (std::size_t budget = 2 * max_rows + 16; budget > 0 && taken < max_rows; --budget) {
      message_ptr m(rd_kafka_consumer_poll(rk_.get(), 0));
      if (!m && !waited && taken == 0) {
        waited = true;
        const std::int64_t w0 = core::steady_ns();
        m.reset(rd_kafka_consumer_poll(rk_.get(), poll_wait_ms_));
        wait_ns_ = core::steady_ns() - w0;
      }
      if (!m) break;
      if (take(m.get(), out)) ++taken;
    }
  } else {
    // The shared queue is emptied every time (it holds events, and messages fetched before a
    // partition's queue was split off, which go to that partition's stash in order: read
    // through the shared queue they would get past a pause). Bounded by those fetches.
    for (std::size_t guard = 0; guard < 1'000'000; ++guard) {
      message_ptr m(rd_kafka_consumer_poll(rk_.get(), 0));
      if (!m) break;
      partition_state* s = m->rkt != nullptr ? state_for(m.get()) : nullptr;
      if (s != nullptr && s->queue) {
        s->stash.push_back(std::move(m));
        continue;
      }
      if (take(m.get(), out)) ++taken;
    }
    poll_partition_queues(out, max_rows, taken);
    if (taken == 0 && !waited) {
      // Nothing in any queue: wait a little (for events; a message is read next call).
      const std::int64_t w0 = core::steady_ns();
      message_ptr m(rd_kafka_consumer_poll(rk_.get(), poll_wait_ms_));
      wait_ns_ = core::steady_ns() - w0;
      if (m && take(m.get(), out)) ++taken;
    }
  }
  char fatal[256];
  if (rd_kafka_fatal_error(rk_.get(), fatal, sizeof fatal) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("kafka source '" + name_ + "': fatal client error: " + fatal);
  const std::int64_t now = poll_wait_ms_ > 0 ? core::steady_ns() : 0;
  if (taken > 0) {
    last_message_ns_ = now;
    return core::poll_status::data;
  }
  // Nothing now. While messages came recently the poll's own wait paces the calls ("call
  // again soon"); after a quiet spell the source is idle and the runtime backs off.
  if (poll_wait_ms_ > 0 && now - last_message_ns_ < quiet_after_ns_) return core::poll_status::data;
  return core::poll_status::idle;
}

bool kafka_source::take(rd_kafka_message_t* m, core::outputs& out) {
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    if (auto* s = state_for(m)) {
      s->caught_up_since = core::steady_ns();
      // At its end before any message: the end offset is the next one to read (what a
      // snapshot must say for an empty partition, or one started at `latest`).
      if (s->next_offset < 0 && m->offset >= 0) start_known(*s, m->offset);
    }
    return false;
  }
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    last_error_ = rd_kafka_message_errstr(m);
    return false;
  }
  handle_message(m, out);
  return true;
}

void kafka_source::poll_partition_queues(core::outputs& out, std::size_t max_rows,
                                         std::size_t& taken) {
  // One turn per poll, a few messages from each partition that is not paused: the runtime
  // decides the pauses after each poll, so what a partition can run ahead between two
  // decisions is this many of its messages.
  constexpr std::size_t chunk = 16;
  rd_kafka_message_t* msgs[chunk];
  const std::size_t n = states_.size();
  for (std::size_t k = 0; k < n && taken < max_rows; ++k) {
    partition_state& s = states_[(next_queue_ + k) % n];
    if (!s.queue) continue;
    // librdkafka's fetch start (asynchronous, after assign) forwards the partition's queue to
    // the consumer's again: undo it each time (cheap), so that the partition's messages stay
    // in its own queue.
    rd_kafka_queue_forward(s.queue.get(), nullptr);
    if (s.paused) continue;
    std::size_t turn = std::min(chunk, max_rows - taken);
    for (; turn > 0 && !s.stash.empty(); --turn) {
      if (take(s.stash.front().get(), out)) ++taken;
      s.stash.pop_front();
    }
    if (turn == 0) continue;
    const ssize_t got = rd_kafka_consume_batch_queue(s.queue.get(), 0, msgs, turn);
    for (ssize_t i = 0; i < got; ++i) {
      message_ptr m(msgs[i]);
      if (take(m.get(), out)) ++taken;
    }
  }
  ++next_queue_;
}

void kafka_source::handle_message(const rd_kafka_message_t* m, core::outputs& out) {
  partition_state* s = state_for(m);
  if (s == nullptr) return;
  rd_kafka_timestamp_type_t tstype;
  const std::int64_t ts_ms = rd_kafka_message_timestamp(m, &tstype);
  const std::int64_t t = ts_ms >= 0 ? ts_ms * 1'000'000 : core::processing_time::now().ns;
  // Already taken (fetched again around a pause and resume): never emitted twice.
  if (s->next_offset >= 0 && m->offset < s->next_offset) return;
  if (s->next_offset < 0)
    start_known(*s, m->offset);
  else if (m->offset > s->next_offset + 1)
    check_gap(*s, m->offset);
  s->next_offset = m->offset + 1;
  s->caught_up_since = 0;

  if (m->payload == nullptr || m->len == 0) return dead(out, m, t, "empty message");
  if (static_cast<std::int64_t>(m->len) > max_message_bytes_)
    return dead(out, m, t,
                "message of " + std::to_string(m->len) + " bytes is over max_message_bytes (" +
                    std::to_string(max_message_bytes_) + ")");

  auto& b = out.main;
  core::value* row = b.append(t);
  std::string_view payload(static_cast<const char*>(m->payload), m->len);
  if (!decoder_->decode(payload, row, scratch_)) {
    b.cells.resize(b.cells.size() - b.width);
    b.times.pop_back();
    return dead(out, m, t, scratch_.empty() ? std::string("malformed message") : scratch_);
  }
  out.splits.push_back(s->split);
  row_offsets_.emplace_back(s->split, m->offset);
  for (const auto& [field, col] : meta_) {
    auto& v = row[col];
    switch (field) {
      case meta_key:
        if (m->key != nullptr) v = std::string(static_cast<const char*>(m->key), m->key_len);
        break;
      case meta_partition:
        v = std::int64_t{m->partition};
        break;
      case meta_offset:
        v = std::int64_t{m->offset};
        break;
      case meta_timestamp:
        v = ts_ms;
        break;
      case meta_headers: {
        rd_kafka_headers_t* hdrs = nullptr;
        std::string json = "{";
        if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
          const char* name;
          const void* val;
          std::size_t size;
          for (std::size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == 0; ++i) {
            if (i > 0) json += ',';
            core::append_json(json, core::value{std::string(name)});
            json += ':';
            if (val == nullptr)
              json += "null";
            else
              core::append_json(json,
                                core::value{std::string(static_cast<const char*>(val), size)});
          }
        }
        json += '}';
        v = std::move(json);
        break;
      }
    }
  }
}

void kafka_source::dead(core::outputs& out, const rd_kafka_message_t* m, std::int64_t t,
                        std::string reason) {
  const std::string position = position_text(rd_kafka_topic_name(m->rkt), m->partition, m->offset);
  out.dead(name_, reason, nullptr, *schema_, t, name_, position);
  // The record is the raw message (cut at 4 KiB), since it did not decode into a row.
  constexpr std::size_t keep = 4096;
  std::size_t n = m->payload ? std::min<std::size_t>(m->len, keep) : 0;
  out.dead_letter.row(out.dead_letter.size() - 1)[4] =
      std::string(static_cast<const char*>(m->payload), n);
}

// --- splits ------------------------------------------------------------------------------

void kafka_source::splits(std::vector<core::split_report>& out) const {
  // Called after every poll: the reports are overwritten in place, so their names keep their
  // storage and nothing is allocated while the assignment stays the same.
  out.resize(states_.size());
  for (std::size_t i = 0; i < states_.size(); ++i) {
    const auto& s = states_[i];
    out[i].id = s.split;
    out[i].name.assign(s.topic).append("/").append(std::to_string(s.partition));
    out[i].at_end = s.caught_up_since != 0;
  }
}

void kafka_source::positions(std::vector<core::split_position>& out) const {
  out.clear();
  for (const auto& s : states_) {
    core::split_position p;
    p.name = s.topic + "/" + std::to_string(s.partition);
    std::int64_t low = -1, high = -1;
    // The offsets librdkafka cached from its last fetch: no request to the broker.
    if (rk_ && rd_kafka_get_watermark_offsets(rk_.get(), s.topic.c_str(), s.partition, &low, &high) ==
                   RD_KAFKA_RESP_ERR_NO_ERROR &&
        high >= 0)
      p.end = high;
    p.position = s.next_offset >= 0 ? s.next_offset : low >= 0 ? low : -1;
    out.push_back(std::move(p));
  }
}

void kafka_source::pause_split(std::uint32_t id, bool paused) {
  if (!rk_) return;
  for (auto& s : states_) {
    if (s.split != id || s.paused == paused) continue;
    if (s.queue) {
      // Its own queue is simply not read while paused: what was fetched waits there, and
      // librdkafka stops fetching once the queue holds fetch_queue_bytes.
      s.paused = paused;
      continue;
    }
    auto list = new_tplist(1);
    auto* tp = rd_kafka_topic_partition_list_add(list.get(), s.topic.c_str(), s.partition);
    // Resuming goes on right after the last message taken, whatever librdkafka had fetched
    // ahead: a seek there (messages fetched before it are dropped by librdkafka, and any
    // offset already taken is skipped in handle_message).
    auto err = paused ? rd_kafka_pause_partitions(rk_.get(), list.get())
                      : rd_kafka_resume_partitions(rk_.get(), list.get());
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR) err = tp->err;
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR && !paused && s.next_offset >= 0) {
      tp->offset = s.next_offset;
      if (auto* e = rd_kafka_seek_partitions(rk_.get(), list.get(), 0)) {
        last_error_ = rd_kafka_error_string(e);
        rd_kafka_error_destroy(e);
      }
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      last_error_ = std::string(paused ? "pause" : "resume") + " of " + s.topic + "/" +
                    std::to_string(s.partition) + " failed: " + rd_kafka_err2str(err);
      continue;
    }
    s.paused = paused;
  }
}

std::string kafka_source::row_position(std::size_t row) const {
  if (row >= row_offsets_.size()) return {};
  const auto [split, offset] = row_offsets_[row];
  for (const auto& s : states_)
    if (s.split == split) return position_text(s.topic.c_str(), s.partition, offset);
  return {};
}

void kafka_source::notice(core::source_notice::level l, std::string text, std::uint64_t lost) {
  core::source_notice n;
  n.severity = l;
  n.text = std::move(text);
  n.lost = lost;
  notices_.push_back(std::move(n));
}

void kafka_source::remember_committed(const rd_kafka_topic_partition_list_t* parts) {
  auto copy = tplist_ptr(rd_kafka_topic_partition_list_copy(parts));
  if (rd_kafka_committed(rk_.get(), copy.get(), metadata_timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return;  // unknown: the first message sets the position, as without a group
  for (int i = 0; i < copy->cnt; ++i)
    for (auto& s : states_)
      if (s.partition == copy->elems[i].partition && s.topic == copy->elems[i].topic &&
          s.next_offset < 0)
        s.committed = copy->elems[i].offset;
}

void kafka_source::start_known(partition_state& s, std::int64_t offset) {
  // The first position after the group's committed offset: a start past it is a gap too.
  if (s.committed >= 0 && offset > s.committed) {
    s.next_offset = s.committed;
    check_gap(s, offset);
  }
  s.next_offset = offset;
}

void kafka_source::check_gap(partition_state& s, std::int64_t offset) {
  const std::int64_t expected = s.next_offset;
  std::int64_t low = -1, high = -1;
  auto err = rd_kafka_query_watermark_offsets(rk_.get(), s.topic.c_str(), s.partition, &low,
                                              &high, 2000);
  const std::string where = s.topic + "/" + std::to_string(s.partition);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    notice(core::source_notice::level::warning,
           where + ": offsets " + std::to_string(expected) + ".." + std::to_string(offset - 1) +
               " were skipped and the partition's first offset could not be read (" +
               rd_kafka_err2str(err) + "): messages may have been lost to retention");
    return;
  }
  if (low <= expected) return;  // a hole in the log (compaction, transaction markers)
  const std::int64_t lost_to = std::min(low, offset);
  notice(core::source_notice::level::error,
         where + ": " + std::to_string(lost_to - expected) + " messages (offsets " +
             std::to_string(expected) + ".." + std::to_string(lost_to - 1) +
             ") were deleted by the broker's retention before they were read; going on at "
             "offset " + std::to_string(offset) +
             ". Read faster than retention deletes (more partitions or instances), or keep "
             "more (retention.bytes/retention.ms)",
         static_cast<std::uint64_t>(lost_to - expected));
}

void kafka_source::take_notices(std::vector<core::source_notice>& out) {
  if (last_error_ != reported_error_) {
    reported_error_ = last_error_;
    if (!last_error_.empty()) notice(core::source_notice::level::warning, "kafka: " + last_error_);
  }
  for (auto& n : notices_) out.push_back(std::move(n));
  notices_.clear();
}

// --- checkpoints ---------------------------------------------------------------------------

void kafka_source::on_barrier(std::uint64_t id) {
  pending_commit p;
  p.id = id;
  for (const auto& s : states_) {
    if (s.next_offset < 0) continue;
    p.partitions.emplace_back(s.topic, s.partition);
    p.offsets.push_back(s.next_offset);
  }
  pending_.push_back(std::move(p));
}

void kafka_source::on_committed(std::uint64_t id) {
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [id](const pending_commit& p) { return p.id == id; });
  if (it == pending_.end()) return;
  if (rk_ && !group_id_.empty() && !it->partitions.empty()) {
    auto list = new_tplist(static_cast<int>(it->partitions.size()));
    for (std::size_t i = 0; i < it->partitions.size(); ++i)
      rd_kafka_topic_partition_list_add(list.get(), it->partitions[i].first.c_str(),
                                        it->partitions[i].second)
          ->offset = it->offsets[i];
    // Asynchronous: the result arrives through commit_cb during a later poll.
    if (auto err = rd_kafka_commit(rk_.get(), list.get(), 1)) last_error_ = rd_kafka_err2str(err);
    for (std::size_t i = 0; i < it->partitions.size(); ++i) {
      const auto& [topic, partition] = it->partitions[i];
      auto own = std::find_if(
          own_completed_.begin(), own_completed_.end(),
          [&](const restored_offset& o) { return o.partition == partition && o.topic == topic; });
      if (own == own_completed_.end())
        own_completed_.push_back({topic, partition, it->offsets[i]});
      else
        own->offset = it->offsets[i];
    }
    last_commit_ = std::move(list);
  }
  // Checkpoints complete in order: older remembered positions are superseded.
  pending_.erase(pending_.begin(), it + 1);
}

core::source_base::load kafka_source::offered() const {
  load l;
  if (!rk_ || states_.empty()) return l;
  std::int64_t lag = 0, high_sum = 0;
  for (const auto& s : states_) {
    std::int64_t low = -1, high = -1;
    if (rd_kafka_get_watermark_offsets(rk_.get(), s.topic.c_str(), s.partition, &low, &high) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        high < 0)
      return l;  // not fetched yet: unknown
    high_sum += high;
    const std::int64_t pos = s.next_offset >= 0 ? s.next_offset : low;
    if (pos >= 0) lag += std::max<std::int64_t>(0, high - pos);
  }
  l.backlog = static_cast<double>(lag);
  const std::int64_t now = core::steady_ns();
  if (offered_high_ >= 0 && now > offered_ns_ && high_sum >= offered_high_) {
    const double r = static_cast<double>(high_sum - offered_high_) * 1e9 / static_cast<double>(now - offered_ns_);
    offered_rate_ = offered_rate_ < 0 ? r : 0.5 * offered_rate_ + 0.5 * r;
  }
  offered_high_ = high_sum;
  offered_ns_ = now;
  l.rate = offered_rate_;
  return l;
}

namespace {
constexpr std::uint32_t snapshot_version = 1;
}

void kafka_source::snapshot(core::state_writer& w) {
  std::vector<restored_offset> positions;
  for (const auto& s : states_)
    if (s.next_offset >= 0) positions.push_back({s.topic, s.partition, s.next_offset});
  // Restored offsets of partitions the group has not assigned yet still hold.
  for (const auto& r : restored_) positions.push_back(r);
  w.put<std::uint32_t>(snapshot_version);
  w.put<std::uint32_t>(static_cast<std::uint32_t>(positions.size()));
  for (const auto& p : positions) {
    w.put_string(p.topic);
    w.put<std::int32_t>(p.partition);
    w.put<std::int64_t>(p.offset);
  }
}

void kafka_source::restore(core::state_reader& r) {
  const auto version = r.get<std::uint32_t>();
  if (version != snapshot_version)
    throw std::runtime_error("kafka source '" + name_ + "': checkpoint has version " +
                             std::to_string(version) + ", this build reads version " +
                             std::to_string(snapshot_version));
  const auto n = r.get<std::uint32_t>();
  std::vector<restored_offset> positions;
  for (std::uint32_t i = 0; i < n; ++i) {
    restored_offset p;
    p.topic = r.get_string();
    p.partition = r.get<std::int32_t>();
    p.offset = r.get<std::int64_t>();
    if (p.offset < 0)
      throw std::runtime_error("kafka source '" + name_ + "': checkpoint has offset " +
                               std::to_string(p.offset) + " for " + p.topic + "/" +
                               std::to_string(p.partition));
    positions.push_back(std::move(p));
  }
  if (!explicit_assignment_) {
    // Group mode: applied when the group assigns the partition (on_rebalance).
    restored_ = std::move(positions);
    return;
  }
  // Explicit assignment: this instance's partitions that the checkpoint knows start there;
  // the others (not in the checkpoint) keep their start_from offsets. The position is set
  // now, so a message below it is skipped and a jump past it is checked as a gap.
  bool changed = false;
  for (const auto& p : positions) {
    auto* tp = rd_kafka_topic_partition_list_find(explicit_assignment_.get(), p.topic.c_str(),
                                                  p.partition);
    if (tp == nullptr) continue;  // another instance's partition
    tp->offset = p.offset;
    changed = true;
    for (auto& s : states_)
      if (s.partition == p.partition && s.topic == p.topic) {
        s.next_offset = p.offset;
        s.caught_up_since = 0;
      }
  }
  if (changed && assigned_) assign_now();  // restored after polling: fetch again from there
}

void kafka_source::apply_restored(rd_kafka_topic_partition_list_t* parts) {
  if (restored_.empty()) return;
  for (int i = 0; i < parts->cnt; ++i) {
    auto& tp = parts->elems[i];
    auto it = std::find_if(restored_.begin(), restored_.end(), [&](const restored_offset& r) {
      return r.partition == tp.partition && r.topic == tp.topic;
    });
    if (it == restored_.end()) continue;
    tp.offset = it->offset;
    for (auto& s : states_)
      if (s.partition == tp.partition && s.topic == tp.topic && s.next_offset < 0)
        s.next_offset = it->offset;
    restored_.erase(it);  // once: a later assignment starts at the group's newer commit
  }
}

void kafka_source::resume_own(rd_kafka_topic_partition_list_t* parts) {
  if (own_completed_.empty() || group_id_.empty()) return;
  auto query = new_tplist(parts->cnt);
  for (int i = 0; i < parts->cnt; ++i)
    for (const auto& o : own_completed_)
      if (o.partition == parts->elems[i].partition && o.topic == parts->elems[i].topic)
        rd_kafka_topic_partition_list_add(query.get(), o.topic.c_str(), o.partition);
  if (query->cnt == 0) return;
  // The group's offsets: unknown if they cannot be read (then this member's own is used).
  if (rd_kafka_committed(rk_.get(), query.get(), metadata_timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
    for (int i = 0; i < query->cnt; ++i) query->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
  for (int i = 0; i < query->cnt; ++i) {
    const auto& q = query->elems[i];
    auto* tp = rd_kafka_topic_partition_list_find(parts, q.topic, q.partition);
    auto own = std::find_if(
        own_completed_.begin(), own_completed_.end(),
        [&](const restored_offset& o) { return o.partition == q.partition && o.topic == q.topic; });
    if (tp == nullptr || own == own_completed_.end()) continue;
    // Where librdkafka would start: an offset set already (a restored checkpoint, a start
    // time), else the group's commit (none: auto.offset.reset, at most the end; taken as 0).
    const std::int64_t start = tp->offset >= 0 ? tp->offset : std::max<std::int64_t>(q.offset, 0);
    if (start >= own->offset) continue;
    tp->offset = own->offset;
    for (auto& s : states_)
      if (s.partition == q.partition && s.topic == q.topic) {
        s.next_offset = own->offset;
        s.caught_up_since = 0;
      }
  }
}

void kafka_source::commit_cb(rd_kafka_t*, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t*,
                             void* opaque) {
  auto* self = static_cast<kafka_source*>(opaque);
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
    self->commits_ok_.fetch_add(1);
  else if (err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    self->last_error_ = std::string("offset commit failed: ") + rd_kafka_err2str(err);
}

void kafka_source::error_cb(rd_kafka_t*, int err, const char* reason, void* opaque) {
  auto* self = static_cast<kafka_source*>(opaque);
  self->last_error_ =
      std::string(rd_kafka_err2name(static_cast<rd_kafka_resp_err_t>(err))) + ": " + reason;
}

std::vector<std::string> kafka_source::assignment() const {
  std::vector<std::string> out;
  for (const auto& s : states_) out.push_back(s.topic + "/" + std::to_string(s.partition));
  std::sort(out.begin(), out.end());
  return out;
}

std::string kafka_source::last_error() const {
  return last_error_;
}

}  // namespace pel::connectors
