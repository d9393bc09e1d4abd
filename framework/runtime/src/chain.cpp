#include "chain.hpp"

#include "pel/buffer/buffered_sink.hpp"

#include <algorithm>
#include <iterator>
#include <limits>
#include <stdexcept>

namespace pel::runtime {

namespace {
constexpr std::int64_t wm_min = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t wm_max = std::numeric_limits<std::int64_t>::max();
constexpr std::uint32_t dead_letter_width = 6;
} // namespace

// -- internal types ------------------------------------------------------------------------

struct chain_instance::node_rt {
  const plan::node* n = nullptr;
  int index = -1;
  core::operator_ptr op;
  core::source_ptr src;
  core::sink_ptr sink;
  core::outputs out;
  std::uint32_t main_width = 0;
  std::uint32_t late_width = 0;
  std::vector<int> main_edges, dead_edges, late_edges;  // indices into edges_
  node_counters* counters = nullptr;
  std::int64_t timer_ns = 0;
  bool closed = false;
};

struct chain_instance::edge_rt {
  int plan_edge = -1;
  plan::partitioning part = plan::partitioning::forward;
  std::vector<int> keys;
  std::vector<std::uint32_t> targets;  // by downstream instance (one for forward)
  std::uint32_t rr = 0;
  std::uint32_t max_parallelism = 128;
};

struct out_item {
  bool is_batch = false;
  core::batch b;
  control_kind k = control_kind::watermark;
  std::int64_t v = 0;
};

struct chain_instance::target_rt {
  bool retired = false;  ///< replaced by a rescale: nothing more goes there
  std::uint32_t credits = 0;
  std::uint32_t width = 0;
  core::batch pending;
  std::int64_t since = 0;
  std::deque<out_item> queue;
};

struct chain_instance::in_item {
  std::uint32_t slot = 0;
  bool is_batch = false;
  core::batch b;
  control_kind k = control_kind::watermark;
  std::int64_t v = 0;
};

struct chain_instance::slot_rt {
  int input = 0;
  bool ended = false;
  bool idle = false;
  std::int64_t wm = wm_min;
  std::uint64_t barrier = 0;
  /// Delivered the barrier being aligned: what comes after it waits in `held`.
  bool blocked = false;
  std::uint64_t rescale = 0;  ///< the last rescale marker it delivered
  bool rblocked = false;      ///< delivered the rescale marker being aligned: holds too
  std::deque<in_item> held;
};

// -- construction --------------------------------------------------------------------------

chain_instance::chain_instance(job_state& js, std::uint32_t global_id, transport& t)
  : js_(js), tr_(t), id_(global_id), w_(), chain_(js.plan.chains[js.wiring[global_id].chain]),
    batch_size_(std::max<std::uint32_t>(1, js.plan.settings.batch_size)),
    linger_ns_(js.plan.settings.batch_linger_ns), cm_(*js.chain_metrics[global_id]) {
  const auto& plan = js_.plan;
  std::vector<node_counters*> counters;
  {
    std::lock_guard<std::mutex> lock(js_.mu);
    w_ = js_.wiring[global_id];
    par_ = js_.parallelism[static_cast<std::size_t>(w_.chain)];
    careful_ = &js_.careful[global_id];
    for (auto& c : js_.node_metrics[global_id]) counters.push_back(c.get());
    if (js_.rescale.id != 0 &&
        std::find(js_.rescale.new_ids.begin(), js_.rescale.new_ids.end(), id_) != js_.rescale.new_ids.end())
      rescale_wait_ = js_.rescale.id;
  }
  nodes_.resize(chain_.nodes.size());
  current_ = &plan.nodes[chain_.nodes.front()].name;
  processing_time_ = plan.settings.time == "processing";
  for (std::size_t pos = 0; pos < chain_.nodes.size(); ++pos) {
    node_rt& nr = nodes_[pos];
    nr.index = chain_.nodes[pos];
    nr.n = &plan.nodes[nr.index];
    nr.counters = counters[pos];
    if (nr.n->output_schema) nr.main_width = static_cast<std::uint32_t>(nr.n->output_schema->size());
    if (auto ls = nr.n->port_schema(plan::port_kind::late)) nr.late_width = static_cast<std::uint32_t>(ls->size());
    nr.out.main.width = nr.main_width;
    nr.out.late.width = nr.late_width;
    nr.out.dead_letter.width = dead_letter_width;
    for (int ei : nr.n->out_edges) {
      const plan::edge& pe = plan.edges[ei];
      if (pe.fused) continue;
      edge_rt er;
      er.plan_edge = ei;
      er.part = pe.part;
      er.keys = pe.key_columns;
      er.max_parallelism = std::max<std::uint32_t>(1, plan.settings.max_parallelism);
      int idx = static_cast<int>(edges_.size());
      edges_.push_back(std::move(er));
      switch (pe.port) {
        case plan::port_kind::main: nr.main_edges.push_back(idx); break;
        case plan::port_kind::dead_letter: nr.dead_edges.push_back(idx); break;
        case plan::port_kind::late: nr.late_edges.push_back(idx); break;
      }
    }
  }
  sync_wiring_tables();
  for (std::size_t t = 0; t < targets_.size(); ++t) targets_[t].retired = w_.targets[t].retired;
  for (std::size_t s = 0; s < slots_.size(); ++s) slots_[s].ended = w_.slots[s].retired;
  rebuild_edges();
}

void chain_instance::sync_wiring_tables() {
  const auto& plan = js_.plan;
  for (std::size_t t = targets_.size(); t < w_.targets.size(); ++t) {
    target_rt tg;
    tg.credits = std::max<std::uint32_t>(1, plan.settings.channel_credits);
    const auto& pe = plan.edges[static_cast<std::size_t>(w_.targets[t].edge)];
    tg.width = pe.schema ? static_cast<std::uint32_t>(pe.schema->size()) : 0;
    tg.pending.width = tg.width;
    targets_.push_back(std::move(tg));
  }
  for (std::size_t s = slots_.size(); s < w_.slots.size(); ++s) {
    slot_rt sl;
    sl.input = w_.slots[s].input;
    slots_.push_back(std::move(sl));
  }
  // Enough spares for every batch that can be in flight on our channels, plus the one being
  // filled per target.
  max_spares_ = targets_.size() * (std::max<std::uint32_t>(1, plan.settings.channel_credits) + 1);
  // For `job::status`: what the queues and credits can hold over the live channels.
  const std::uint32_t per = std::max<std::uint32_t>(1, plan.settings.channel_credits);
  std::uint32_t live_targets = 0, live_slots = 0, in_hand = 0;
  for (std::size_t t = 0; t < w_.targets.size(); ++t)
    if (!w_.targets[t].retired) {
      ++live_targets;
      in_hand += targets_[t].credits;
    }
  for (const auto& sl : w_.slots) live_slots += sl.retired ? 0 : 1;
  cm_.queue_capacity.store(per * live_slots, std::memory_order_relaxed);
  cm_.credit_capacity.store(per * live_targets, std::memory_order_relaxed);
  cm_.credits.store(in_hand, std::memory_order_relaxed);
}

void chain_instance::sync_wiring() {
  {
    std::lock_guard<std::mutex> lock(js_.mu);
    w_ = js_.wiring[id_];
  }
  tr_.refresh_peers();
  sync_wiring_tables();
}

void chain_instance::rebuild_edges() {
  for (auto& e : edges_) {
    // By downstream instance: the live targets of this channel edge.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> live;
    for (std::uint32_t t = 0; t < w_.targets.size(); ++t)
      if (w_.targets[t].edge == e.plan_edge && !targets_[t].retired) live.emplace_back(w_.targets[t].down_instance, t);
    std::sort(live.begin(), live.end());
    e.targets.clear();
    for (const auto& [k, t] : live) e.targets.push_back(t);
    e.rr = 0;
  }
}

chain_instance::~chain_instance() = default;

core::sink_ptr chain_instance::make_sink(node_rt& nr) {
  const plan::node* n = nr.n;
  core::sink_ptr sink;
  if (n->spec.buffer) {
    const spec::buffer_spec& b = *n->spec.buffer;
    buffer::sink_options o;
    o.dir = b.dir;
    o.max_size = b.max_size;
    o.drop_oldest = b.drop_oldest;
    o.fsync = b.fsync;
    o.batch = b.batch;
    o.retry_max = std::chrono::milliseconds(std::max<std::int64_t>(1, b.retry_max_ns / 1'000'000));
    o.retry_min = std::min(o.retry_min, o.retry_max);
    o.drain_timeout = std::chrono::milliseconds(b.drain_timeout_ns / 1'000'000);
    sink = buffer::make_buffered_sink([n] { return n->make_sink(n->spec.settings); }, o);
  } else {
    sink = n->make_sink(n->spec.settings);
  }
  core::sink_binding bind;
  node_counters* counters = nr.counters;
  // The sink's lines name it; `lost` (rows a full buffer dropped) counts with the sink's
  // other losses in the run summary.
  bind.notify = [js = &js_, counters](const core::source_notice& nt) {
    if (nt.lost > 0) counters->lost.fetch_add(nt.lost, std::memory_order_relaxed);
    js->log(static_cast<int>(nt.severity), nt.text);
  };
  bind.gauges = &counters->buffer;
  sink->bind(bind);
  return sink;
}

bool chain_instance::is_blocking_source() const noexcept {
  return source_ != nullptr && source_->blocking();
}

void chain_instance::start() {
  const auto& plan = js_.plan;
  cm_.started_ns.store(core::steady_ns(), std::memory_order_relaxed);
  const std::uint32_t maxp = std::max<std::uint32_t>(1, plan.settings.max_parallelism);
  for (auto& nr : nodes_) {
    current_ = &nr.n->name;
    core::operator_context ctx;
    ctx.name = nr.n->name;
    ctx.instance = w_.instance;
    ctx.parallelism = par_;
    ctx.max_parallelism = maxp;
    ctx.batch_size = batch_size_;
    // Flink's key-group ranges: instance i owns [ceil(i*m/p), ceil((i+1)*m/p)), which is
    // exactly the set of key groups kg with kg * p / m == i.
    ctx.key_group_begin = static_cast<std::uint32_t>(
        (std::uint64_t{w_.instance} * maxp + ctx.parallelism - 1) / ctx.parallelism);
    ctx.key_group_end = static_cast<std::uint32_t>(
        (std::uint64_t{w_.instance + 1} * maxp + ctx.parallelism - 1) / ctx.parallelism);
    const auto& settings = nr.n->spec.settings;
    switch (nr.n->kind) {
      case spec::component_kind::source:
        nr.src = nr.n->make_source(settings);
        nr.src->open(ctx);
        source_ = nr.src.get();
        break;
      case spec::component_kind::operator_:
        nr.op = nr.n->make_operator(settings, nr.n->input_schemas);
        nr.op->open(ctx);
        nr.timer_ns = nr.op->timer_interval_ns();
        break;
      case spec::component_kind::sink:
        nr.sink = make_sink(nr);
        nr.sink->open(ctx, nr.n->input_schemas.empty() ? core::schema_ptr{} : nr.n->input_schemas.front());
        break;
    }
  }
  if (rescale_wait_ != 0) {
    // A new instance of a rescale: the first item on each channel says so, and input waits
    // until the old instances' state is here.
    push_control(control_kind::rescale, static_cast<std::int64_t>(rescale_wait_));
  } else {
    restore_state();
  }
  current_ = &nodes_.front().n->name;
  started_ = true;
  for (std::size_t pos = 0; pos < nodes_.size(); ++pos)
    if (nodes_[pos].timer_ns > 0) tr_.schedule_timer(static_cast<int>(pos), nodes_[pos].timer_ns);
  if (source_ != nullptr) {
    const plan::node& n = *nodes_.front().n;
    idle_timeout_ns_ = source_->default_idle_timeout_ns();
    std::int64_t max_drift_ns = 0;
    if (n.spec.event_time) {
      const auto& et = *n.spec.event_time;
      ooo_ns_ = et.max_out_of_orderness_ns;
      if (et.idle_timeout_ns >= 0) idle_timeout_ns_ = et.idle_timeout_ns;
      max_drift_ns = et.max_drift_ns;
      core::parse_time_format(et.format, time_parser_.format);
      core::parse_utc_offset(et.timezone, time_parser_.tz_offset_ns);
    }
    who_ = "source '" + n.name + "' instance " + std::to_string(w_.instance);
    if (!source_->replayable() && plan.settings.checkpoint_interval_ns > 0 && w_.instance == 0 &&
        restored_from_ == 0)
      js_.log(1, "source '" + n.name + "' cannot go back to a checkpoint's position: after a restart, what it "
                 "read since the last checkpoint is not read again");
    last_row_ns_ = core::steady_ns();
    if (source_->has_splits() && !processing_time_) {
      split_watermarks::settings ss;
      ss.out_of_orderness_ns = ooo_ns_;
      ss.idle_timeout_ns = idle_timeout_ns_;
      ss.max_drift_ns = max_drift_ns;
      ss.warn_after_ns = js_.opts.split_warn_after_ns;
      split_wm_ = std::make_unique<split_watermarks>(ss, unblocked_clock(last_row_ns_));
    }
    // A new instance of a rescale reads nothing before it has the old instances' positions.
    if (rescale_wait_ == 0) {
      poll_scheduled_ = true;
      tr_.schedule_poll(0);
    }
  }
  if (early_barrier_ != 0) on_barrier(early_barrier_, early_final_);
  pump();
  // A chain without inputs that is not a source (cannot happen in a valid plan) ends at once.
  if (source_ == nullptr && slots_.empty()) end_chain(0);
}

// -- inputs --------------------------------------------------------------------------------

void chain_instance::on_batch(std::uint32_t slot, core::batch&& b) {
  if (slot >= slots_.size()) sync_wiring();  // a channel a rescale added
  if (slot >= slots_.size()) throw std::logic_error("a batch on an unknown input channel");
  in_item it;
  it.slot = slot;
  it.is_batch = true;
  it.b = std::move(b);
  in_queue_.push_back(std::move(it));
  ++queued_batches_;
  cm_.queued.store(queued_batches_, std::memory_order_relaxed);
  if (queued_batches_ > cm_.max_queued.load(std::memory_order_relaxed))
    cm_.max_queued.store(queued_batches_, std::memory_order_relaxed);
  pump();
}

void chain_instance::on_control(std::uint32_t slot, control_kind k, std::int64_t v) {
  if (slot >= slots_.size()) sync_wiring();  // a channel a rescale added
  if (slot >= slots_.size()) throw std::logic_error("a control event on an unknown input channel");
  in_item it;
  it.slot = slot;
  it.k = k;
  it.v = v;
  in_queue_.push_back(std::move(it));
  pump();
}

void chain_instance::on_credit(std::uint32_t target, std::uint32_t n, core::batch&& spare) {
  if (target >= targets_.size()) return;
  if (spare.cells.capacity() >= std::size_t{batch_size_} * targets_[target].width &&
      spares_.size() < max_spares_) {
    spare.clear();
    spares_.push_back(std::move(spare));
  }
  targets_[target].credits += n;
  cm_.credits.fetch_add(n, std::memory_order_relaxed);
  drain(target);
  pump();
  check_finished();
}

bool chain_instance::blocked() const noexcept { return outbound_ > 0; }

void chain_instance::pump() {
  if (!started_ || in_pump_ || rescale_wait_ != 0) return;
  in_pump_ = true;
  while (!in_queue_.empty() && !blocked() && !finished_) {
    in_item it = std::move(in_queue_.front());
    in_queue_.pop_front();
    slot_rt& s = slots_[it.slot];
    if (s.blocked || s.rblocked) {  // after the marker being aligned: waits (and keeps its credit)
      s.held.push_back(std::move(it));
      continue;
    }
    if (it.is_batch) --queued_batches_;
    handle(it);
  }
  in_pump_ = false;
  cm_.queued.store(queued_batches_, std::memory_order_relaxed);
  if (source_ != nullptr && poll_wanted_ && !blocked() && !source_done_ && !poll_scheduled_) {
    poll_wanted_ = false;
    poll_scheduled_ = true;
    tr_.schedule_poll(0);
  }
  note_blocked();
}

void chain_instance::note_blocked() {
  bool waiting = blocked() && (!in_queue_.empty() || poll_wanted_);
  if (waiting) {
    if (bp_since_ == 0) {
      bp_since_ = core::steady_ns();
      cm_.backpressure_since.store(bp_since_, std::memory_order_relaxed);
    }
  } else if (bp_since_ != 0) {
    cm_.backpressure_ns.fetch_add(core::steady_ns() - bp_since_, std::memory_order_relaxed);
    cm_.backpressure_since.store(0, std::memory_order_relaxed);
    bp_since_ = 0;
  }
}

void chain_instance::handle(in_item& it) {
  slot_rt& s = slots_[it.slot];
  if (it.is_batch) {
    std::int64_t t0 = core::steady_ns();
    cm_.batches_in.fetch_add(1, std::memory_order_relaxed);
    if (!ended_) {
      chaos(0);
      if (careful_->load(std::memory_order_relaxed)) run_careful(0, it.b, s.input);
      else run_node(0, it.b, s.input);
    }
    // The batch's storage goes back with the credit, so that the sender refills it instead of
    // allocating (the cells are destroyed here, where they were consumed).
    it.b.clear();
    tr_.send_credit(it.slot, 1, std::move(it.b));
    cm_.busy_ns.fetch_add(core::steady_ns() - t0, std::memory_order_relaxed);
    return;
  }
  switch (it.k) {
    case control_kind::watermark:
      s.wm = std::max(s.wm, it.v);
      s.idle = false;
      recompute_watermark();
      break;
    case control_kind::idle:
      s.idle = true;
      recompute_watermark();
      break;
    case control_kind::barrier: {
      const auto id = static_cast<std::uint64_t>(it.v);
      if (id <= forwarded_barrier_) break;  // already taken (cannot happen in order)
      s.barrier = id;
      s.blocked = true;
      check_alignment();
      break;
    }
    case control_kind::rescale: {
      if (s.ended) break;
      sync_wiring();  // the channels of the new instances, before counting who delivered it
      slot_rt& rs = slots_[it.slot];  // `s` may have moved: the sync can add slots
      rs.rescale = static_cast<std::uint64_t>(it.v);
      rs.rblocked = true;
      check_rescale();
      break;
    }
    case control_kind::end_of_stream: {
      if (s.ended) break;  // a channel closed by a rescale, closed again by its sender
      s.ended = true;
      bool all = std::all_of(slots_.begin(), slots_.end(), [](const slot_rt& x) { return x.ended; });
      if (all) {
        end_chain(0);
      } else {
        recompute_watermark();
        check_alignment();
        check_rescale();
      }
      break;
    }
  }
}

// -- data path -----------------------------------------------------------------------------

void chain_instance::run_node(std::size_t pos, core::batch& in, int input) {
  node_rt& n = nodes_[pos];
  current_ = &n.n->name;
  n.counters->rows_in.fetch_add(in.size(), std::memory_order_relaxed);
  if (n.sink) {
    n.sink->write(in);
    return;
  }
  n.op->process(in, input, n.out);
  drain_node(pos);
}

void chain_instance::drain_node(std::size_t pos) {
  node_rt& n = nodes_[pos];
  core::outputs& o = n.out;
  if (!o.dead_letter.empty()) {
    n.counters->dead.fetch_add(o.dead_letter.size(), std::memory_order_relaxed);
    route_dead(n, o.dead_letter);
    o.dead_letter.clear();
    o.dead_letter.width = dead_letter_width;
  }
  if (o.late_dropped != 0) {
    n.counters->late.fetch_add(o.late_dropped, std::memory_order_relaxed);
    o.late_dropped = 0;
  }
  if (!o.late.empty()) {
    n.counters->late.fetch_add(o.late.size(), std::memory_order_relaxed);
    if (js_.tapped[static_cast<std::size_t>(n.index)].load(std::memory_order_relaxed) & 2u)
      js_.tap_rows(n.index, 2u, o.late, *n.n->port_schema(plan::port_kind::late));
    if (!n.late_edges.empty()) emit(n.late_edges, o.late, n.late_width);
    o.late.clear();
    o.late.width = n.late_width;
  }
  if (!o.main.empty()) {
    n.counters->rows_out.fetch_add(o.main.size(), std::memory_order_relaxed);
    if (js_.tapped[static_cast<std::size_t>(n.index)].load(std::memory_order_relaxed) & 1u)
      js_.tap_rows(n.index, 1u, o.main, *n.n->port_schema(plan::port_kind::main));
    if (pos + 1 < nodes_.size()) {
      run_node(pos + 1, o.main, 0);
      current_ = &n.n->name;
      o.main.clear();
      o.main.width = n.main_width;
    } else {
      emit(n.main_edges, o.main, n.main_width);
    }
  }
}

void chain_instance::route_dead(node_rt& n, core::batch& b) {
  // A dead letter says where its record came from: an operator's (which knows no source
  // position) names its inputs and the instance that refused it.
  for (std::size_t r = 0; r < b.size(); ++r) {
    core::value* row = b.row(r);
    auto* source = std::get_if<std::string>(&row[2]);
    if (source != nullptr && source->empty() && !n.n->spec.inputs.empty()) {
      for (const auto& in : n.n->spec.inputs) {
        if (!source->empty()) *source += ',';
        *source += in.component;
        if (!in.port.empty()) *source += "." + in.port;
      }
    }
    auto* position = std::get_if<std::string>(&row[3]);
    if (position != nullptr && position->empty())
      *position = n.n->name + "[" + std::to_string(w_.instance) + "]";
  }
  js_.sample_dead_letters(n.n->name, b);
  if (js_.tapped[static_cast<std::size_t>(n.index)].load(std::memory_order_relaxed) & 4u)
    js_.tap_rows(n.index, 4u, b, *core::dead_letter_schema());
  if (!n.dead_edges.empty()) emit(n.dead_edges, b, dead_letter_width);
  else if (js_.plan.dead_letters == plan::dead_letter_mode::log) js_.log_dead_letters(b);
  else js_.dead_dropped.fetch_add(b.size(), std::memory_order_relaxed);
}

void chain_instance::emit(const std::vector<int>& edges, core::batch& b, std::uint32_t width) {
  now_ = core::steady_ns();
  for (std::size_t i = 0; i < edges.size(); ++i) emit_edge(edges_[edges[i]], b, i + 1 == edges.size());
  b.clear();
  b.width = width;
  if (b.cells.capacity() == 0) b = fresh_batch(width);
}

core::batch chain_instance::fresh_batch(std::uint32_t width) {
  if (!spares_.empty()) {
    core::batch b = std::move(spares_.back());
    spares_.pop_back();
    b.width = width;
    if (b.cells.capacity() < std::size_t{batch_size_} * width) b.reserve(batch_size_);
    return b;
  }
  core::batch b(width);
  b.reserve(batch_size_);
  return b;
}

void chain_instance::emit_edge(edge_rt& e, core::batch& b, bool consume) {
  switch (e.part) {
    case plan::partitioning::forward: push_rows(e.targets[0], b, consume); break;
    case plan::partitioning::rebalance: {
      std::uint32_t t = e.targets[e.rr];
      e.rr = e.rr + 1 == e.targets.size() ? 0 : e.rr + 1;
      push_rows(t, b, consume);
      break;
    }
    case plan::partitioning::broadcast:
      for (std::size_t k = 0; k < e.targets.size(); ++k)
        push_rows(e.targets[k], b, consume && k + 1 == e.targets.size());
      break;
    case plan::partitioning::hash: {
      const std::uint64_t n = e.targets.size();
      const std::uint64_t m = e.max_parallelism;
      const std::size_t rows = b.size();
      for (std::size_t r = 0; r < rows; ++r) {
        core::value* row = b.row(r);
        std::uint64_t h = core::stable_hash(row[e.keys[0]]);
        for (std::size_t k = 1; k < e.keys.size(); ++k)
          h = core::hash_combine(h, core::stable_hash(row[e.keys[k]]));
        std::uint64_t owner = (h % m) * n / m;
        push_row(e.targets[owner], row, b.times[r], consume);
      }
      break;
    }
  }
}

void chain_instance::push_rows(std::uint32_t t, core::batch& b, bool consume) {
  target_rt& tg = targets_[t];
  const std::size_t rows = b.size();
  if (rows == 0) return;
  if (consume && tg.pending.empty() && rows * 4 >= batch_size_) {
    // Big enough to travel as it is: no copy. (A quarter of batch.size: a filter that keeps
    // half of the rows must not make every batch be copied into the buffer.)
    out_item it;
    it.is_batch = true;
    it.b = std::move(b);
    b = core::batch(tg.width);
    tg.queue.push_back(std::move(it));
    ++outbound_;
    cm_.outbound.store(outbound_, std::memory_order_relaxed);
    drain(t);
    return;
  }
  const std::uint32_t w = tg.width;
  std::size_t r = 0;
  while (r < rows) {
    if (tg.pending.empty()) {
      tg.since = now_;
      if (tg.pending.cells.capacity() == 0) tg.pending = fresh_batch(tg.width);
    }
    std::size_t n = std::min<std::size_t>(rows - r, batch_size_ - tg.pending.size());
    auto cb = b.cells.begin() + static_cast<std::ptrdiff_t>(r * w);
    auto ce = cb + static_cast<std::ptrdiff_t>(n * w);
    if (consume) tg.pending.cells.insert(tg.pending.cells.end(), std::make_move_iterator(cb), std::make_move_iterator(ce));
    else tg.pending.cells.insert(tg.pending.cells.end(), cb, ce);
    tg.pending.times.insert(tg.pending.times.end(), b.times.begin() + static_cast<std::ptrdiff_t>(r),
                            b.times.begin() + static_cast<std::ptrdiff_t>(r + n));
    r += n;
    if (tg.pending.size() >= batch_size_) seal(t);
  }
  if (!tg.pending.empty()) {
    if (linger_ns_ <= 0) seal(t);
    else arm_tick();
  }
}

void chain_instance::push_row(std::uint32_t t, core::value* row, std::int64_t time, bool consume) {
  target_rt& tg = targets_[t];
  if (tg.pending.empty()) {
    tg.since = now_;
    if (tg.pending.cells.capacity() == 0) tg.pending = fresh_batch(tg.width);
    if (linger_ns_ > 0) arm_tick();
  }
  if (consume) tg.pending.append_move(row, time);
  else tg.pending.append_copy(row, time);
  if (tg.pending.size() >= batch_size_ || linger_ns_ <= 0) seal(t);
}

void chain_instance::seal(std::uint32_t t) {
  target_rt& tg = targets_[t];
  if (tg.pending.empty()) return;
  out_item it;
  it.is_batch = true;
  it.b = std::move(tg.pending);
  tg.pending = core::batch(tg.width);
  tg.queue.push_back(std::move(it));
  ++outbound_;
  cm_.outbound.store(outbound_, std::memory_order_relaxed);
  if (outbound_ > cm_.max_outbound.load(std::memory_order_relaxed))
    cm_.max_outbound.store(outbound_, std::memory_order_relaxed);
  drain(t);
}

void chain_instance::drain(std::uint32_t t) {
  target_rt& tg = targets_[t];
  while (!tg.queue.empty()) {
    out_item& f = tg.queue.front();
    if (f.is_batch) {
      if (tg.credits == 0) break;
      --tg.credits;
      --outbound_;
      cm_.outbound.store(outbound_, std::memory_order_relaxed);
      cm_.credits.fetch_sub(1, std::memory_order_relaxed);
      cm_.batches_out.fetch_add(1, std::memory_order_relaxed);
      tr_.send_batch(t, std::move(f.b));
    } else {
      tr_.send_control(t, f.k, f.v);
    }
    tg.queue.pop_front();
  }
}

void chain_instance::push_control(control_kind k, std::int64_t v) {
  for (std::uint32_t t = 0; t < targets_.size(); ++t)
    if (!targets_[t].retired) queue_control(t, k, v);
}

void chain_instance::queue_control(std::uint32_t t, control_kind k, std::int64_t v) {
  seal(t);  // the rows before it go first
  target_rt& tg = targets_[t];
  out_item c;
  c.k = k;
  c.v = v;
  tg.queue.push_back(std::move(c));
  drain(t);
}

void chain_instance::arm_tick() {
  if (tick_armed_) return;
  tick_armed_ = true;
  tr_.schedule_tick(linger_ns_);
}

void chain_instance::on_tick() {
  tick_armed_ = false;
  std::int64_t now = core::steady_ns();
  std::int64_t next = wm_max;
  for (std::uint32_t t = 0; t < targets_.size(); ++t) {
    target_rt& tg = targets_[t];
    if (tg.pending.empty()) continue;
    std::int64_t age = now - tg.since;
    if (age >= linger_ns_) seal(t);
    else next = std::min(next, linger_ns_ - age);
  }
  if (next != wm_max) {
    tick_armed_ = true;
    tr_.schedule_tick(next);
  }
  pump();
}

// -- sources -------------------------------------------------------------------------------

void chain_instance::assign_event_times(core::outputs& out) {
  core::batch& b = out.main;
  const std::size_t rows = b.size();
  const plan::node& n = *nodes_.front().n;
  if (processing_time_) {
    std::int64_t now = core::processing_time::now().ns;
    std::fill(b.times.begin(), b.times.end(), now);
    max_seen_ = std::max(max_seen_, now);
    return;
  }
  const int col = n.event_time_column;
  const expr::expression& time_expr = n.event_time_expression;
  if (col < 0 && !time_expr.valid()) {
    // The source's own times; a local maximum, so the loop does not store to the member.
    std::int64_t m = max_seen_;
    const std::int64_t* t = b.times.data();
    for (std::size_t r = 0; r < rows; ++r) {
      if ((r & 7) == 0) __builtin_prefetch(t + r + 128);  // 1 KB ahead: the start of each batch
      m = std::max(m, t[r]);
    }
    max_seen_ = m;
    return;
  }
  std::size_t keep = 0;
  const std::uint32_t w = b.width;
  core::value scratch;
  const bool tagged = out.splits.size() == rows;
  for (std::size_t r = 0; r < rows; ++r) {
    core::value* row = b.row(r);
    std::int64_t t = 0;
    // The time is a field, or the value of `event_time.expression` (compiled by the plan).
    const core::value* v = col >= 0 ? &row[col] : nullptr;
    std::string eval_failed;
    if (v == nullptr) {
      try {
        v = &time_expr.eval_ref(row, b.times[r], scratch);
      } catch (const expr::eval_error& e) {
        eval_failed = e.what();
      }
    }
    if (v != nullptr && time_parser_(*v, t)) {
      max_seen_ = std::max(max_seen_, t);
      if (keep != r) {
        core::value* dst = b.row(keep);
        for (std::uint32_t c = 0; c < w; ++c) dst[c] = std::move(row[c]);
      }
      b.times[keep] = t;
      if (tagged) out.splits[keep] = out.splits[r];
      ++keep;
    } else {
      const auto& et = *n.spec.event_time;
      std::string reason;
      if (v == nullptr)
        reason = "event time expression '" + et.expression + "' failed: " + eval_failed;
      else
        reason = "cannot read event time " +
                 (col >= 0 ? "field '" + et.field + "'" : "expression '" + et.expression + "'") +
                 " as " + et.format + ": " + (core::is_null(*v) ? std::string("null") : core::to_text(*v));
      out.dead(n.name, reason, row, *n.output_schema, b.times[r], n.name, source_->row_position(r));
    }
  }
  if (keep != rows) {
    b.cells.resize(keep * w);
    b.times.resize(keep);
    if (tagged) out.splits.resize(keep);
  }
}

void chain_instance::on_poll() {
  poll_scheduled_ = false;
  if (source_done_ || finished_ || !started_) return;
  if (blocked()) {
    poll_wanted_ = true;
    note_blocked();
    return;
  }
  node_rt& n = nodes_.front();
  current_ = &n.n->name;
  std::int64_t t0 = core::steady_ns();
  core::poll_status st = source_->poll(n.out, batch_size_);
  std::uint64_t done = 0, total = 0;
  source_->progress(done, total);
  if (t0 - last_offer_ns_ >= 200'000'000) {
    last_offer_ns_ = t0;
    const auto load = source_->offered();
    cm_.offered_rate.store(load.rate, std::memory_order_relaxed);
    cm_.backlog.store(load.backlog, std::memory_order_relaxed);
  }
  cm_.progress_done.store(done, std::memory_order_relaxed);
  cm_.progress_total.store(total, std::memory_order_relaxed);
  bool had_rows = !n.out.main.empty();
  if (had_rows) {
    assign_event_times(n.out);
    last_row_ns_ = t0;
    if (split_wm_) {
      const auto& b = n.out.main;
      if (n.out.splits.size() == b.size())
        split_wm_->observe(n.out.splits.data(), b.times.data(), b.size(), unblocked_clock(t0));
    }
    // Rows after idleness: downstream must count this input again before the rows reach it,
    // even when it has no watermark yet (a partition just assigned), or it would take them
    // for late.
    if (source_idle_) {
      source_idle_ = false;
      push_control(control_kind::watermark, wm_);
    }
  }
  n.out.splits.clear();
  take_source_notices();
  if (had_rows) chaos(0);
  if (had_rows && nodes_.size() > 1 && careful_->load(std::memory_order_relaxed)) {
    core::batch rows = std::move(n.out.main);
    n.out.main = core::batch(n.main_width);
    n.counters->rows_out.fetch_add(rows.size(), std::memory_order_relaxed);
    drain_node(0);  // dead letters and the like
    run_careful(1, rows, 0);
  } else {
    drain_node(0);
  }
  std::int64_t now = core::steady_ns();
  if (split_wm_)
    split_time(now, st != core::poll_status::data);
  else
    source_watermark(now, st != core::poll_status::data);
  // Waiting inside the poll for input to arrive is idle time, not work.
  cm_.busy_ns.fetch_add(std::max<std::int64_t>(0, now - t0 - source_->last_wait_ns()), std::memory_order_relaxed);
  switch (st) {
    case core::poll_status::data:
      backoff_ns_ = 0;
      poll_scheduled_ = true;
      tr_.schedule_poll(0);
      break;
    case core::poll_status::idle: {
      if (!split_wm_ && idle_timeout_ns_ > 0 && !source_idle_ &&
          now - last_row_ns_ >= idle_timeout_ns_) {
        source_idle_ = true;
        go_idle(1);
      }
      std::int64_t cap = js_.opts.idle_backoff_max_ns;
      // A paused split is resumed from here: back off little, so that alignment does not
      // slow the catch-up of the splits it holds.
      if (split_wm_ && split_wm_->any_paused()) cap = std::min<std::int64_t>(cap, 2'000'000);
      backoff_ns_ = backoff_ns_ == 0 ? js_.opts.idle_backoff_min_ns : std::min(backoff_ns_ * 2, cap);
      backoff_ns_ = std::min(backoff_ns_, cap);
      poll_scheduled_ = true;
      tr_.schedule_poll(backoff_ns_);
      break;
    }
    case core::poll_status::end:
      source_done_ = true;
      end_chain(1);
      break;
  }
}

std::int64_t chain_instance::unblocked_clock(std::int64_t now) const {
  std::int64_t bp = cm_.backpressure_ns.load(std::memory_order_relaxed);
  if (bp_since_ != 0) bp += now - bp_since_;
  return now - bp;
}

void chain_instance::split_time(std::int64_t now, bool force) {
  source_->splits(split_reports_);
  const std::int64_t clock = unblocked_clock(now);
  split_wm_->sync(split_reports_, clock, source_->assignment_pending());
  // Alignment: publish this instance's floor, then pause what runs too far ahead of the
  // source's slowest split (over all its instances).
  const int node = nodes_.front().index;
  if (js_.split_floor[static_cast<std::size_t>(node)]) {
    js_.split_floor[static_cast<std::size_t>(node)][w_.instance].store(
        split_wm_->alignment_floor(), std::memory_order_relaxed);
    split_changes_.clear();
    split_wm_->align(js_.source_floor(node), split_changes_);
    for (const auto& d : split_changes_) source_->pause_split(d.id, d.pause);
  }
  for (auto& nt : split_wm_->take_notes()) js_.log(nt.warning ? 1 : 0, who_ + ": " + nt.text);
  if (now - splits_published_ns_ >= 500'000'000) {
    // For `job::status`: every split's watermark and state with the source's positions.
    splits_published_ns_ = now;
    std::vector<split_status> st;
    split_wm_->describe(st);
    source_->positions(positions_);
    for (auto& x : st) {
      x.component = nodes_.front().n->name;
      x.instance = w_.instance;
      for (const auto& p : positions_)
        if (p.name == x.split) {
          x.position = p.position;
          x.end = p.end;
          if (p.position >= 0 && p.end >= 0) x.lag = std::max<std::int64_t>(0, p.end - p.position);
        }
    }
    js_.publish_splits(id_, std::move(st));
  }
  auto& lead = nodes_.front().counters->max_split_lead_ns;
  if (const std::int64_t l = split_wm_->lead(); l > lead.load(std::memory_order_relaxed))
    lead.store(l, std::memory_order_relaxed);
  const bool idle = split_wm_->all_idle();
  if (!idle && source_idle_) {
    source_idle_ = false;
    push_control(control_kind::watermark, wm_);  // active again, even without a time yet
  }
  // The time the splits reached goes out before the instance says it is idle.
  const std::int64_t cand = split_wm_->watermark();
  if (cand != wm_min && cand > wm_ &&
      (force || idle || now - last_wm_emit_ns_ >= js_.opts.watermark_interval_ns)) {
    last_wm_emit_ns_ = now;
    advance_watermark(cand, 1);
  }
  if (idle && !source_idle_) {
    source_idle_ = true;
    go_idle(1);
  }
}

void chain_instance::take_source_notices() {
  source_->take_notices(notices_);
  if (notices_.empty()) return;
  node_rt& n = nodes_.front();
  for (const auto& nt : notices_) {
    if (nt.lost > 0) n.counters->lost.fetch_add(nt.lost, std::memory_order_relaxed);
    js_.log(static_cast<int>(nt.severity), who_ + ": " + nt.text);
  }
  notices_.clear();
}

void chain_instance::go_idle(std::size_t from) {
  for (std::size_t pos = from; pos < nodes_.size(); ++pos) {
    node_rt& n = nodes_[pos];
    if (!n.op) continue;
    current_ = &n.n->name;
    n.op->on_idle(n.out);
    drain_node(pos);
  }
  push_control(control_kind::idle, 0);
}

void chain_instance::source_watermark(std::int64_t now, bool force) {
  std::int64_t cand = source_->watermark().ns;
  if (cand == wm_min && max_seen_ != wm_min)
    cand = max_seen_ >= wm_min + ooo_ns_ ? max_seen_ - ooo_ns_ : wm_min;
  if (cand > wm_ && (force || now - last_wm_emit_ns_ >= js_.opts.watermark_interval_ns)) {
    last_wm_emit_ns_ = now;
    advance_watermark(cand, 1);
  }
}

void chain_instance::on_stop() {
  if (source_ == nullptr || source_done_ || !started_) return;
  source_done_ = true;
  end_chain(1);
}

void chain_instance::on_commit(std::uint64_t id) {
  if (!started_ || halted_) return;
  // Rows that failed an instance again and again were quarantined before this checkpoint:
  // back to whole batches.
  careful_->store(false, std::memory_order_relaxed);
  for (auto& n : nodes_) {
    current_ = &n.n->name;
    if (n.src && !ended_) n.src->on_committed(id);  // also after a stop's final barrier
    if (n.sink && !n.closed) n.sink->commit(id);
  }
}

void chain_instance::on_halt() {
  if (halted_ || finished_) return;
  halted_ = true;
  source_done_ = true;
  ended_ = true;
  for (auto& n : nodes_) {
    current_ = &n.n->name;
    if (n.src) n.src->close();
    if (n.sink && !n.closed) {
      n.sink->abort();
      n.closed = true;
    }
  }
  // Nothing more goes out: what is still queued is after the final checkpoint.
  for (auto& t : targets_) {
    t.queue.clear();
    t.pending.clear();
  }
  outbound_ = 0;
  finished_ = true;
  note_blocked();
  tr_.finished();
}

void chain_instance::chaos(int point) {
  if (chaos_point_ != point) return;
  chaos_point_ = -1;
  static const char* const where[] = {"processing", "a watermark", "a snapshot"};
  throw std::runtime_error(std::string("chaos: injected failure at ") + where[point]);
}

void chain_instance::run_careful(std::size_t pos, core::batch& b, int input) {
  node_rt& n = nodes_[pos];
  const std::uint32_t w = b.width;
  core::batch one(w);
  std::vector<core::value> copy(w);
  for (std::size_t r = 0; r < b.size(); ++r) {
    core::value* row = b.row(r);
    std::copy(row, row + w, copy.begin());
    one.clear();
    one.width = w;
    one.append_move(row, b.times[r]);
    try {
      run_node(pos, one, input);
    } catch (const std::exception& e) {
      // The record is quarantined: it made this instance fail again and again. What the
      // failing component and those after it made of it so far is dropped with it.
      std::size_t at = pos;
      for (std::size_t k = pos; k < nodes_.size(); ++k)
        if (&nodes_[k].n->name == current_) at = k;
      for (std::size_t k = at; k < nodes_.size(); ++k) {
        nodes_[k].out.main.clear();
        nodes_[k].out.main.width = nodes_[k].main_width;
      }
      js_.quarantined.fetch_add(1, std::memory_order_relaxed);
      const plan::node& first = *n.n;
      const core::schema_ptr& sch = first.input_schemas.empty() ? first.output_schema
                                    : first.input_schemas[static_cast<std::size_t>(input)];
      nodes_[at].out.dead(nodes_[at].n->name, std::string("quarantined after repeated failures: ") + e.what(),
                          copy.data(), *sch, b.times[r]);
      drain_node(at);
    }
  }
  b.clear();
  b.width = w;
}

void chain_instance::on_timer(int position) {
  if (ended_ || !started_) return;
  node_rt& n = nodes_[static_cast<std::size_t>(position)];
  if (rescale_wait_ != 0) {  // a new instance without its state yet: nothing to time
    tr_.schedule_timer(position, n.timer_ns);
    return;
  }
  current_ = &n.n->name;
  n.op->on_timer(core::processing_time::now(), n.out);
  drain_node(static_cast<std::size_t>(position));
  tr_.schedule_timer(position, n.timer_ns);
}

// -- watermarks, barriers, end of stream ---------------------------------------------------

void chain_instance::advance_watermark(std::int64_t wm, std::size_t from) {
  if (wm != wm_max) chaos(1);
  wm_ = wm;
  cm_.watermark_ns.store(wm, std::memory_order_relaxed);
  for (std::size_t pos = from; pos < nodes_.size(); ++pos) {
    node_rt& n = nodes_[pos];
    if (!n.op) continue;
    current_ = &n.n->name;
    n.op->on_watermark(core::event_time{wm}, n.out);
    drain_node(pos);
  }
  push_control(control_kind::watermark, wm);
}

void chain_instance::recompute_watermark() {
  bool any_open = false, any_active = false;
  std::int64_t m = wm_max;
  for (const auto& s : slots_) {
    if (s.ended) continue;
    any_open = true;
    if (s.idle) continue;
    any_active = true;
    m = std::min(m, s.wm);
  }
  if (!any_open) return;
  if (!any_active) {
    // Every input is idle: time goes on to the highest of their watermarks (as Flink's
    // watermark valve does), else windows that only the input which went idle last holds
    // back would stay open until new data comes, whichever order the inputs went idle in.
    std::int64_t hi = wm_min;
    for (const auto& s : slots_)
      if (!s.ended) hi = std::max(hi, s.wm);
    if (hi > wm_) advance_watermark(hi, 0);
    if (!idle_out_) {
      idle_out_ = true;
      go_idle(0);
    }
    return;
  }
  bool resend = idle_out_;
  idle_out_ = false;
  if (m > wm_) advance_watermark(m, 0);
  else if (resend) push_control(control_kind::watermark, wm_);  // active again
}

void chain_instance::check_alignment() {
  std::uint64_t target = 0;
  for (const auto& s : slots_)
    if (s.blocked) target = target == 0 ? s.barrier : std::min(target, s.barrier);
  if (target == 0) return;
  for (const auto& s : slots_)
    if (!s.ended && s.barrier < target) return;  // still waiting for it there
  take_snapshot(target);
  forward_barrier(target);
  // Release what waited behind the barrier, in its order per input.
  for (auto s = slots_.rbegin(); s != slots_.rend(); ++s) {
    s->blocked = false;
    in_queue_.insert(in_queue_.begin(), std::make_move_iterator(s->held.begin()),
                     std::make_move_iterator(s->held.end()));
    s->held.clear();
  }
}

void chain_instance::on_barrier(std::uint64_t id, bool final) {
  if (!started_) {
    // The coordinator's message can come before the start message: take it right after it.
    early_barrier_ = std::max(early_barrier_, id);
    early_final_ = early_final_ || final;
    return;
  }
  if (source_ == nullptr || source_done_ || ended_ || id <= forwarded_barrier_) return;
  current_ = &nodes_.front().n->name;
  source_->on_barrier(id);
  take_snapshot(id);
  forward_barrier(id);
  if (final) source_done_ = true;  // a stop: read nothing after the final checkpoint
}

void chain_instance::take_snapshot(std::uint64_t id) {
  chaos(2);
  std::string blob = snapshot_blob(id);
  std::uint64_t bytes = 0;
  cm_.state_bytes.store(static_cast<std::int64_t>(blob.size()), std::memory_order_relaxed);
  if (js_.store) bytes = js_.store->put(id, std::to_string(w_.chain) + "-" + std::to_string(w_.instance), std::move(blob));
  js_.ack_checkpoint(id, id_, bytes);
}

std::string chain_instance::snapshot_blob(std::uint64_t id) {
  core::state_writer w;
  w.put<std::uint32_t>(1);  // layout version
  w.put<std::uint32_t>(static_cast<std::uint32_t>(nodes_.size()));
  for (auto& n : nodes_) {
    current_ = &n.n->name;
    core::state_writer nw;
    if (n.src) n.src->snapshot(nw);
    if (n.op) n.op->snapshot(nw);
    if (n.sink) {
      if (!n.closed) n.sink->prepare(id);
      n.sink->snapshot(nw);  // also once closed at the end: where a resumed run goes on
    }
    w.put_string(n.n->name);
    w.put_string(nw.bytes());
  }
  return w.take();
}

void chain_instance::restore_state() {
  std::uint64_t from = 0;
  {
    std::lock_guard<std::mutex> lock(js_.mu);
    from = js_.restore_id;
  }
  restored_from_ = from;
  if (from == 0 || !js_.store) return;
  const std::string what = "checkpoint " + std::to_string(from);
  // The checkpoint's parallelism of this chain: an autoscaled chain may have had another.
  std::uint32_t then = par_;
  if (auto par = js_.checkpoint_topology(from); !par.empty()) then = par[static_cast<std::size_t>(w_.chain)];
  const std::string prefix = std::to_string(w_.chain) + "-";
  if (then != par_) {
    std::vector<std::string> blobs;
    for (std::uint32_t k = 0; k < then; ++k)
      if (auto b = js_.store->get(from, prefix + std::to_string(k))) blobs.push_back(std::move(*b));
    restore_blobs(blobs, what);
    forwarded_barrier_ = from;
    return;
  }
  auto blob = js_.store->get(from, prefix + std::to_string(w_.instance));
  if (!blob) return;
  core::state_reader r(*blob);
  if (r.get<std::uint32_t>() != 1) throw std::runtime_error(what + ": unknown layout");
  const auto count = r.get<std::uint32_t>();
  if (count != nodes_.size()) throw std::runtime_error(what + " does not match this chain");
  for (auto& n : nodes_) {
    current_ = &n.n->name;
    const std::string name = r.get_string();
    if (name != n.n->name)
      throw std::runtime_error(what + " holds '" + name + "' where '" + n.n->name + "' is");
    const std::string bytes = r.get_string();
    core::state_reader nr(bytes);
    if (bytes.empty()) continue;  // nothing was saved for it (a sink closed at the end)
    if (n.src) n.src->restore(nr);
    if (n.op) n.op->restore(nr);
    if (n.sink) n.sink->restore(from, nr);
  }
  forwarded_barrier_ = from;
}

void chain_instance::restore_blobs(const std::vector<std::string>& blobs, const std::string& what) {
  for (const auto& blob : blobs) {
    if (blob.empty()) continue;  // an old instance that had ended: nothing to hand over
    core::state_reader r(blob);
    if (r.get<std::uint32_t>() != 1) throw std::runtime_error(what + ": unknown layout");
    if (r.get<std::uint32_t>() != nodes_.size()) throw std::runtime_error(what + " does not match this chain");
    for (auto& n : nodes_) {
      current_ = &n.n->name;
      const std::string name = r.get_string();
      if (name != n.n->name)
        throw std::runtime_error(what + " holds '" + name + "' where '" + n.n->name + "' is");
      const std::string bytes = r.get_string();
      if (bytes.empty()) continue;
      core::state_reader nr(bytes);
      // Only operators are rescaled (the planner refuses ranges on sources and sinks); each
      // keeps the key groups of its own range.
      if (n.op) n.op->restore(nr);
      else if (n.src && n.src->rescalable()) n.src->restore(nr);  // keeps its own splits
      else throw std::runtime_error(what + ": the state of '" + n.n->name + "' cannot move to another instance");
    }
  }
}

// -- rescaling -----------------------------------------------------------------------------

void chain_instance::on_rescale(std::uint64_t rid) {
  if (source_ != nullptr) {
    // An old instance of a rescaled source: it hands its splits' positions over at once (a
    // source has no input to align).
    bool old = false;
    std::uint32_t k = 0;
    {
      std::lock_guard<std::mutex> lock(js_.mu);
      const auto& o = js_.rescale.old_ids;
      auto it = std::find(o.begin(), o.end(), id_);
      old = js_.rescale.id == rid && it != o.end();
      k = static_cast<std::uint32_t>(it - o.begin());
    }
    if (old) {
      hand_over_source(rid, k);
      return;
    }
  }
  sync_wiring();
  {
    std::lock_guard<std::mutex> lock(js_.mu);
    if (js_.rescale.id != rid) return;  // aborted meanwhile (a restart replaces everyone)
    js_.rescale.switched.push_back(id_);
  }
  std::vector<std::uint32_t> fresh;
  for (std::uint32_t t = 0; t < targets_.size(); ++t) {
    target_rt& tg = targets_[t];
    if (w_.targets[t].retired && !tg.retired) {
      // An old instance: the marker is the last item it gets from here (after what is pending).
      if (!ended_) queue_control(t, control_kind::rescale, static_cast<std::int64_t>(rid));
      tg.retired = true;
    } else if (!w_.targets[t].retired && !tg.retired && tg.queue.empty() && tg.pending.empty() &&
               std::none_of(edges_.begin(), edges_.end(), [&](const edge_rt& e) {
                 return std::find(e.targets.begin(), e.targets.end(), t) != e.targets.end();
               })) {
      fresh.push_back(t);  // a new instance: not yet in any edge
    }
  }
  rebuild_edges();
  // A new instance learns where this input stands before any row: its time, or that it is
  // idle or has ended.
  const bool idle = source_ != nullptr ? source_idle_ : idle_out_;
  for (auto t : fresh) {
    if (ended_) {
      queue_control(t, control_kind::end_of_stream, 0);
    } else {
      if (wm_ != wm_min) queue_control(t, control_kind::watermark, wm_);
      if (idle) queue_control(t, control_kind::idle, 0);
    }
  }
  pump();
}

void chain_instance::check_rescale() {
  for (;;) {
    // Rescales are aligned in the order they happened: a slot may deliver the marker of the
    // next one (a new instance's first item) while an older one still waits for an old
    // instance's last.
    std::uint64_t rid = 0;
    for (const auto& s : slots_)
      if (s.rblocked && (rid == 0 || s.rescale < rid)) rid = s.rescale;
    if (rid == 0) return;
    bool known = false, old = false;
    std::uint32_t k = 0;
    std::vector<std::uint32_t> old_ids, new_ids;
    {
      std::lock_guard<std::mutex> lock(js_.mu);
      if (auto it = js_.rescale_sets.find(rid); it != js_.rescale_sets.end()) {
        known = true;
        old_ids = it->second.first;
        new_ids = it->second.second;
        auto o = std::find(old_ids.begin(), old_ids.end(), id_);
        old = o != old_ids.end() && js_.rescale.id == rid;
        k = static_cast<std::uint32_t>(o - old_ids.begin());
      }
    }
    auto release = [&] {
      for (auto s = slots_.rbegin(); s != slots_.rend(); ++s) {
        if (!s->rblocked || s->rescale != rid) continue;
        s->rblocked = false;
        in_queue_.insert(in_queue_.begin(), std::make_move_iterator(s->held.begin()),
                         std::make_move_iterator(s->held.end()));
        s->held.clear();
      }
    };
    if (!known) {  // cannot happen: every rescale is recorded before its markers exist
      release();
      continue;
    }
    auto is_in = [](const std::vector<std::uint32_t>& v, std::uint32_t x) {
      return std::find(v.begin(), v.end(), x) != v.end();
    };
    if (old) {
      // An old instance: every open input must have switched.
      for (const auto& s : slots_)
        if (!s.ended && !(s.rblocked && s.rescale == rid)) return;
      chaos(2);
      std::string blob = snapshot_blob(0);
      // The last item to every downstream instance: after it come the new instances' rows.
      push_control(control_kind::rescale, static_cast<std::int64_t>(rid));
      ended_ = true;
      source_done_ = true;
      for (auto& s : slots_) {
        s.rblocked = false;
        s.held.clear();  // nothing comes after the marker
      }
      {
        std::lock_guard<std::mutex> lock(js_.mu);
        js_.ended[id_] = true;  // retired: no checkpoint waits for it
      }
      js_.rescale_handed(rid, k, std::move(blob));
      check_finished();
      return;
    }
    // Downstream of the rescaled chain: the new instances' channels wait until every old one
    // delivered its last item.
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
      const auto sender = w_.slots[i].sender;
      if (!is_in(old_ids, sender) && !is_in(new_ids, sender)) continue;
      const auto& s = slots_[i];
      if (!s.ended && !(s.rblocked && s.rescale == rid)) return;
    }
    for (std::uint32_t i = 0; i < slots_.size(); ++i)
      if (is_in(old_ids, w_.slots[i].sender)) slots_[i].ended = true;  // retired
    release();
    if (std::all_of(slots_.begin(), slots_.end(), [](const slot_rt& x) { return x.ended; })) {
      end_chain(0);
      return;
    }
    recompute_watermark();
    check_alignment();
  }
}

void chain_instance::on_rescale_state(std::uint64_t rid) {
  if (rescale_wait_ != rid) return;
  std::vector<std::string> blobs;
  std::vector<std::uint32_t> switched;
  {
    std::lock_guard<std::mutex> lock(js_.mu);
    if (js_.rescale.id != rid) return;
    blobs = js_.rescale.blobs;
    switched = js_.rescale.switched;
  }
  restore_blobs(blobs, "rescale " + std::to_string(rid));
  rescale_wait_ = 0;
  // An upstream instance that ended before it switched sends nothing here: closed.
  for (std::uint32_t i = 0; i < slots_.size(); ++i)
    if (std::find(switched.begin(), switched.end(), w_.slots[i].sender) == switched.end()) slots_[i].ended = true;
  js_.rescale_restored(rid);
  if (source_ != nullptr) {
    last_row_ns_ = core::steady_ns();
    if (!poll_scheduled_ && !source_done_) {
      poll_scheduled_ = true;
      tr_.schedule_poll(0);
    }
    return;
  }
  if (std::all_of(slots_.begin(), slots_.end(), [](const slot_rt& x) { return x.ended; })) end_chain(0);
  pump();
}

void chain_instance::hand_over_source(std::uint64_t rid, std::uint32_t k) {
  if (ended_ || !started_) {
    // Ended before the rescale reached it: its end state is where a new instance would go on.
    js_.rescale_handed(rid, k, js_.store ? snapshot_blob(0) : std::string());
    return;
  }
  current_ = &nodes_.front().n->name;
  chaos(2);
  std::string blob = snapshot_blob(0);
  // The last item downstream: after it come the new instances' rows of these splits.
  push_control(control_kind::rescale, static_cast<std::int64_t>(rid));
  ended_ = true;
  source_done_ = true;
  if (split_wm_ && js_.split_floor[static_cast<std::size_t>(nodes_.front().index)])
    js_.split_floor[static_cast<std::size_t>(nodes_.front().index)][w_.instance].store(
        wm_max, std::memory_order_relaxed);
  source_->close();  // its splits go to the new instances
  {
    std::lock_guard<std::mutex> lock(js_.mu);
    js_.ended[id_] = true;  // retired: no checkpoint waits for it
  }
  js_.rescale_handed(rid, k, std::move(blob));
  check_finished();
}

void chain_instance::forward_barrier(std::uint64_t id) {
  forwarded_barrier_ = id;
  push_control(control_kind::barrier, static_cast<std::int64_t>(id));
}

void chain_instance::end_chain(std::size_t from) {
  if (ended_) return;
  ended_ = true;
  // An ended source instance no longer holds its source's alignment back.
  if (split_wm_ && js_.split_floor[static_cast<std::size_t>(nodes_.front().index)])
    js_.split_floor[static_cast<std::size_t>(nodes_.front().index)][w_.instance].store(
        wm_max, std::memory_order_relaxed);
  if (source_ != nullptr && from == 1) {
    current_ = &nodes_.front().n->name;
    source_->close();
  }
  if (wm_ != wm_max) advance_watermark(wm_max, from);
  for (std::size_t pos = from; pos < nodes_.size(); ++pos) {
    node_rt& n = nodes_[pos];
    current_ = &n.n->name;
    if (n.op) {
      n.op->finish(n.out);
      drain_node(pos);
    } else if (n.sink && !n.closed) {
      n.sink->flush();
      n.sink->close();
      n.closed = true;
    }
  }
  // Partial batches go out now, before end of stream.
  push_control(control_kind::end_of_stream, 0);
  js_.instance_ended(id_, js_.store ? snapshot_blob(0) : std::string());
  // An old instance of a rescale whose input ended before the marker: its windows fired, it
  // has no state left to hand over.
  std::uint64_t rid = 0;
  std::uint32_t k = 0;
  {
    std::lock_guard<std::mutex> lock(js_.mu);
    const auto& o = js_.rescale.old_ids;
    if (auto it = std::find(o.begin(), o.end(), id_); js_.rescale.id != 0 && it != o.end()) {
      rid = js_.rescale.id;
      k = static_cast<std::uint32_t>(it - o.begin());
    }
  }
  if (rid != 0) js_.rescale_handed(rid, k, std::string());
  check_finished();
}

void chain_instance::check_finished() {
  if (ended_ && !finished_ && outbound_ == 0) {
    finished_ = true;
    note_blocked();
    tr_.finished();
  }
}

} // namespace pel::runtime
