#include "pel/api/render.hpp"

#include "pel/core/value.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <type_traits>
#include <unordered_map>

namespace pel::api {

namespace {

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

// ---- JSON writing ----------------------------------------------------------------------

/// Shortest text that reads back to `x`; "null" when JSON cannot express it.
void put(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  out.append(buf, r.ptr);
  // Keep doubles recognisable as such ("4000.0", not "4000") for readers that care.
  if (std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)).find_first_of(".e") ==
      std::string_view::npos)
    out += ".0";
}

template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
void put(std::string& out, T x) {
  out += std::to_string(x);
}

void put(std::string& out, bool b) {
  out += b ? "true" : "false";
}
void put(std::string& out, std::string_view s) {
  core::append_json_string(out, s);
}
void put(std::string& out, const std::string& s) {
  core::append_json_string(out, s);
}
void put(std::string& out, const char* s) {
  core::append_json_string(out, s);
}
void put(std::string& out, std::nullptr_t) {
  out += "null";
}

/// Writes the members of one JSON object: `o.field("name", value)`.
class object {
public:
  explicit object(std::string& out) : out_(out) { out_ += '{'; }
  ~object() { out_ += '}'; }
  object(const object&) = delete;
  object& operator=(const object&) = delete;

  /// Starts member `k` and returns the buffer to write its value into.
  std::string& key(std::string_view k) {
    if (!first_) out_ += ", ";
    first_ = false;
    core::append_json_string(out_, k);
    out_ += ": ";
    return out_;
  }
  template <class T>
  void field(std::string_view k, const T& v) {
    put(key(k), v);
  }
  /// `k` as an ISO time and `k_ms` as milliseconds since the epoch; both null when unknown.
  void time(std::string_view k, std::int64_t ns, bool known = true) {
    if (!known) {
      field(k, nullptr);
      field(std::string(k) + "_ms", nullptr);
      return;
    }
    field(k, iso_time(ns));
    field(std::string(k) + "_ms", ns / 1'000'000);
  }

private:
  std::string& out_;
  bool first_ = true;
};

/// Writes the elements of a JSON array: `a.next()` before each.
class array {
public:
  explicit array(std::string& out) : out_(out) { out_ += '['; }
  ~array() { out_ += ']'; }
  array(const array&) = delete;
  array& operator=(const array&) = delete;
  std::string& next() {
    if (!first_) out_ += ", ";
    first_ = false;
    return out_;
  }

private:
  std::string& out_;
  bool first_ = true;
};

// ---- figures over an interval -------------------------------------------------------------

double interval_s(const sample& prev, const sample& cur) {
  return static_cast<double>(cur.status.at_ns - prev.status.at_ns) / 1e9;
}

/// Per second between two readings of a counter; null (NaN) without an interval. A counter
/// that went down (an instance restarted) counts from zero.
double rate(std::uint64_t before, std::uint64_t now, double seconds) {
  if (!(seconds > 0)) return nan;
  return static_cast<double>(now >= before ? now - before : now) / seconds;
}

/// The fraction of the interval that a time counter grew by, within [0, 1].
double fraction(std::int64_t before, std::int64_t now, double seconds) {
  if (!(seconds > 0)) return nan;
  const double d = static_cast<double>(now >= before ? now - before : now) / 1e9 / seconds;
  return std::clamp(d, 0.0, 1.0);
}

std::string instance_key(const std::string& component, std::uint32_t global_id) {
  return component + '\x1f' + std::to_string(global_id);
}

/// The previous reading of each current instance, by component and global id.
std::unordered_map<std::string, const runtime::instance_metrics*> index_instances(const sample& s) {
  std::unordered_map<std::string, const runtime::instance_metrics*> out;
  for (const auto& m : s.status.instances) out[instance_key(m.component, m.global_id)] = &m;
  return out;
}

const runtime::component_stats* find_component(const runtime::job_status& s,
                                               const std::string& name) {
  for (const auto& c : s.components)
    if (c.name == name) return &c;
  return nullptr;
}

/// The component's kind in the graph ("" when unknown).
std::string kind_of(const runtime::job_graph& g, const std::string& name) {
  for (const auto& c : g.components)
    if (c.name == name) return c.kind;
  return {};
}

/// Rows that the sources emitted and that the sinks received.
void totals(const sample& s, std::uint64_t& in, std::uint64_t& out) {
  in = out = 0;
  for (const auto& c : s.status.components) {
    const auto kind = kind_of(s.graph, c.name);
    if (kind == "source") in += c.rows_out;
    if (kind == "sink") out += c.rows_in;
  }
}

/// Fractions of one instance over the interval (null without a previous reading).
struct instance_fractions {
  double busy = nan, idle = nan, backpressured = nan;
  double in_per_s = nan, out_per_s = nan;
};

instance_fractions fractions_of(const runtime::instance_metrics* before,
                                const runtime::instance_metrics& now, double seconds) {
  instance_fractions f;
  if (before == nullptr) return f;
  f.busy = fraction(before->busy_ns, now.busy_ns, seconds);
  f.idle = fraction(before->idle_ns, now.idle_ns, seconds);
  f.backpressured = fraction(before->backpressure_ns, now.backpressure_ns, seconds);
  // The runtime's snapshot counts a stall still going on up to the moment it is taken. As a
  // guard (a stall that began and was not yet noted between the two readings): an instance
  // that held sealed output at both readings and sent no batch in between was held back for
  // the whole interval, everything but its busy time.
  if (before->outbound_batches > 0 && now.outbound_batches > 0 &&
      now.batches_out == before->batches_out && std::isfinite(f.busy)) {
    f.backpressured = std::max(f.backpressured, 1.0 - f.busy);
    f.idle = std::max(0.0, 1.0 - f.busy - f.backpressured);
  }
  f.in_per_s = rate(before->rows_in, now.rows_in, seconds);
  f.out_per_s = rate(before->rows_out, now.rows_out, seconds);
  return f;
}

void put_watermark(object& o, std::int64_t wm_ns, std::int64_t at_ns, bool with_lag) {
  if (wm_ns == INT64_MAX) {
    o.field("watermark", "end");
    o.field("watermark_ms", nullptr);
    if (with_lag) o.field("watermark_lag_s", nullptr);
    return;
  }
  const bool known = wm_ns != INT64_MIN;
  o.time("watermark", wm_ns, known);
  if (with_lag) {
    if (known)
      o.field("watermark_lag_s", static_cast<double>(at_ns - wm_ns) / 1e9);
    else
      o.field("watermark_lag_s", nullptr);
  }
}

}  // namespace

// ---- times ------------------------------------------------------------------------------

std::string iso_time(std::int64_t ns) {
  std::int64_t ms = ns / 1'000'000;
  if (ns < 0 && ns % 1'000'000 != 0) --ms;  // floor
  std::int64_t secs = ms / 1000;
  int milli = static_cast<int>(ms % 1000);
  if (milli < 0) milli += 1000, --secs;
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
  return buf;
}

std::string render_error(std::string_view text) {
  std::string out;
  {
    object o(out);
    o.field("error", text);
  }
  return out;
}

// ---- pipelines ---------------------------------------------------------------------------

std::string render_pipelines(const std::vector<pipeline_view>& pipelines) {
  std::string out;
  {
    object root(out);
    array list(root.key("pipelines"));
    for (const auto& p : pipelines) {
      const auto& s = p.cur->status;
      const double secs = interval_s(*p.prev, *p.cur);
      std::uint64_t in = 0, outs = 0, in0 = 0, out0 = 0;
      totals(*p.cur, in, outs);
      totals(*p.prev, in0, out0);
      std::uint64_t dead = 0, late = 0;
      for (const auto& c : s.components) dead += c.dead_letters, late += c.late;
      std::uint64_t instances = 0;
      for (const auto& c : p.cur->graph.components) instances += c.parallelism;
      object o(list.next());
      o.field("name", p.name);
      o.field("file", p.file);
      o.field("state", s.state);
      if (s.state == "failed") o.field("error", s.error);
      o.field("uptime_s", static_cast<double>(s.uptime_ns) / 1e9);
      o.field("records_in", in);
      o.field("records_out", outs);
      o.field("records_in_per_s", rate(in0, in, secs));
      o.field("records_out_per_s", rate(out0, outs, secs));
      o.field("dead_letters", dead);
      o.field("late", late);
      o.field("restarts", s.restarts);
      o.field("checkpoints", s.checkpoints);
      o.field("components", p.cur->graph.components.size());
      o.field("instances", instances);
    }
  }
  return out;
}

std::string render_pipeline(const pipeline_view& p) {
  const auto& g = p.cur->graph;
  const auto& s = p.cur->status;
  std::string out;
  {
    object root(out);
    root.field("name", p.name);
    root.field("file", p.file);
    root.field("state", s.state);
    if (s.state == "failed") root.field("error", s.error);
    {
      array list(root.key("components"));
      for (const auto& c : g.components) {
        object o(list.next());
        o.field("name", c.name);
        o.field("kind", c.kind);
        o.field("type", c.type);
        o.field("chain", c.chain);
        o.field("parallelism", c.parallelism);
        o.field("parallelism_min", c.parallelism_min);
        o.field("parallelism_max", c.parallelism_max);
        array inputs(o.key("inputs"));
        for (const auto& [from, port] : c.inputs) {
          object i(inputs.next());
          i.field("component", from);
          i.field("port", port.empty() ? std::string("main") : port);
        }
      }
    }
    {
      array list(root.key("chains"));
      for (const auto& c : g.chains) {
        object o(list.next());
        o.field("id", c.id);
        {
          array names(o.key("components"));
          for (const auto& n : c.components) put(names.next(), n);
        }
        array ids(o.key("instances"));
        for (auto id : c.instances) put(ids.next(), id);
      }
    }
    array list(root.key("channels"));
    for (const auto& c : g.channels) {
      object o(list.next());
      o.field("from", c.from);
      o.field("port", c.port.empty() ? std::string("main") : c.port);
      o.field("to", c.to);
      o.field("partitioning", c.partitioning);
      {
        array keys(o.key("keys"));
        for (const auto& k : c.keys) put(keys.next(), k);
      }
      o.field("fused", c.fused);
    }
  }
  return out;
}

// ---- instances and sources -----------------------------------------------------------------

std::string render_instances(const sample& prev, const sample& cur) {
  const double secs = interval_s(prev, cur);
  const auto before = index_instances(prev);
  std::string out;
  {
    object root(out);
    root.time("at", cur.status.at_ns);
    if (secs > 0)
      root.field("interval_s", secs);
    else
      root.field("interval_s", nullptr);
    array list(root.key("instances"));
    for (const auto& m : cur.status.instances) {
      auto it = before.find(instance_key(m.component, m.global_id));
      const auto f = fractions_of(it == before.end() ? nullptr : it->second, m, secs);
      object o(list.next());
      o.field("component", m.component);
      o.field("instance", m.instance);
      o.field("chain", m.chain);
      o.field("id", m.global_id);
      o.field("records_in", m.rows_in);
      o.field("records_out", m.rows_out);
      o.field("records_in_per_s", f.in_per_s);
      o.field("records_out_per_s", f.out_per_s);
      o.field("busy", f.busy);
      o.field("idle", f.idle);
      o.field("backpressured", f.backpressured);
      o.field("queue_used", m.queued_batches);
      o.field("queue_capacity", m.queue_capacity);
      o.field("outbound", m.outbound_batches);
      o.field("credits_used", m.credit_capacity >= m.credits ? m.credit_capacity - m.credits : 0u);
      o.field("credit_capacity", m.credit_capacity);
      put_watermark(o, m.watermark_ns, cur.status.at_ns, true);
      if (m.state_bytes >= 0)
        o.field("state_bytes", m.state_bytes);
      else
        o.field("state_bytes", nullptr);
      o.field("dead_letters", m.dead_letters);
      o.field("late", m.late);
      if (m.buffer.present) {
        object b(o.key("buffer"));
        b.field("forwarding", m.buffer.forwarding);
        b.field("pending", m.buffer.pending);
        b.field("bytes_on_disk", m.buffer.bytes_on_disk);
        b.field("max_size", m.buffer.max_size);
        b.field("appended", m.buffer.appended);
        b.field("forwarded", m.buffer.forwarded);
        b.field("dropped", m.buffer.dropped);
        b.field("full_events", m.buffer.full_events);
        b.field("failures", m.buffer.failures);
      } else {
        o.field("buffer", nullptr);
      }
    }
  }
  return out;
}

std::string render_sources(const sample& prev, const sample& cur) {
  const auto& s = cur.status;
  const double secs = interval_s(prev, cur);
  std::string out;
  {
    object root(out);
    {
      array list(root.key("splits"));
      for (const auto& sp : s.splits) {
        object o(list.next());
        o.field("component", sp.component);
        o.field("instance", sp.instance);
        o.field("split", sp.split);
        if (sp.position >= 0)
          o.field("position", sp.position);
        else
          o.field("position", nullptr);
        if (sp.end >= 0)
          o.field("end", sp.end);
        else
          o.field("end", nullptr);
        if (sp.lag >= 0)
          o.field("lag", sp.lag);
        else
          o.field("lag", nullptr);
        put_watermark(o, sp.watermark_ns, s.at_ns, false);
        o.field("idle", sp.idle);
        o.field("paused", sp.paused);
      }
    }
    array list(root.key("sources"));
    for (const auto& gc : cur.graph.components) {
      if (gc.kind != "source") continue;
      const auto* c = find_component(s, gc.name);
      const auto* c0 = find_component(prev.status, gc.name);
      object o(list.next());
      o.field("component", gc.name);
      std::int64_t lag = 0;
      bool have_lag = false;
      for (const auto& sp : s.splits)
        if (sp.component == gc.name && sp.lag >= 0) lag += sp.lag, have_lag = true;
      if (have_lag)
        o.field("lag", lag);
      else
        o.field("lag", nullptr);
      const std::uint64_t rows = c ? c->rows_out : 0;
      o.field("records_out", rows);
      o.field("records_out_per_s", c0 ? rate(c0->rows_out, rows, secs) : nan);
      o.field("lost", c ? c->lost : 0);
      if (s.progress_total > 0) {
        object p(o.key("progress"));
        p.field("done", s.progress_done);
        p.field("total", s.progress_total);
      } else {
        o.field("progress", nullptr);
      }
    }
  }
  return out;
}

// ---- dead letters, late, checkpoints, restarts, scaling -----------------------------------

std::string render_dead_letters(const runtime::job_status& s) {
  std::uint64_t total = 0;
  for (const auto& c : s.components) total += c.dead_letters;
  std::string out;
  {
    object root(out);
    root.field("total", total);
    root.field("logged", s.dead_letters_logged);
    root.field("dropped", s.dead_letters_dropped);
    {
      object by(root.key("by_component"));
      for (const auto& c : s.components)
        if (c.dead_letters > 0) by.field(c.name, c.dead_letters);
    }
    array list(root.key("latest"));
    const std::size_t first = s.dead_letters.size() > 20 ? s.dead_letters.size() - 20 : 0;
    for (std::size_t i = first; i < s.dead_letters.size(); ++i) {
      const auto& d = s.dead_letters[i];
      object o(list.next());
      o.time("at", d.at_ns);
      o.field("component", d.component);
      // The row is a JSON object already (the runtime wrote it).
      o.key("record") += d.json.empty() ? std::string("null") : d.json;
    }
  }
  return out;
}

std::string render_late(const runtime::job_status& s) {
  std::uint64_t total = 0;
  for (const auto& c : s.components) total += c.late;
  std::string out;
  {
    object root(out);
    root.field("total", total);
    object by(root.key("by_component"));
    for (const auto& c : s.components)
      if (c.late > 0) by.field(c.name, c.late);
  }
  return out;
}

std::string render_checkpoints(const runtime::job_status& s) {
  std::string out;
  {
    object o(out);
    o.field("completed", s.checkpoints);
    o.field("abandoned", s.checkpoints_abandoned);
    if (s.checkpoint_in_progress > 0)
      o.field("in_progress", s.checkpoint_in_progress);
    else
      o.field("in_progress", nullptr);
    const bool any = s.checkpoints > 0;
    if (any) {
      o.field("last_id", s.last_checkpoint);
      o.field("last_bytes", s.last_checkpoint_bytes);
      o.field("last_duration_s", static_cast<double>(s.last_checkpoint_ns) / 1e9);
      o.field("max_duration_s", static_cast<double>(s.max_checkpoint_ns) / 1e9);
    } else {
      for (auto k : {"last_id", "last_bytes", "last_duration_s", "max_duration_s"})
        o.field(k, nullptr);
    }
    o.time("last_at", s.last_checkpoint_at_ns, s.last_checkpoint_at_ns > 0);
    if (s.restored_from > 0)
      o.field("restored_from", s.restored_from);
    else
      o.field("restored_from", nullptr);
  }
  return out;
}

std::string render_restarts(const runtime::job_status& s) {
  std::string out;
  {
    object o(out);
    o.field("count", s.restarts);
    o.field("quarantined", s.quarantined);
    array log(o.key("log"));
    for (const auto& l : s.restart_log) put(log.next(), l);
  }
  return out;
}

std::string render_scaling(const runtime::job_status& s) {
  std::string out;
  {
    object root(out);
    if (s.scaling_policy.empty())
      root.field("policy", nullptr);
    else
      root.field("policy", s.scaling_policy);
    array list(root.key("events"));
    for (const auto& e : s.scaling) {
      object o(list.next());
      o.field("at_s", static_cast<double>(e.at_ns) / 1e9);
      o.field("component", e.component);
      o.field("from", e.from);
      o.field("to", e.to);
      o.field("reason", e.reason);
      o.field("inputs", e.inputs);
      o.field("done", e.done);
      o.field("outcome", e.outcome);
      o.field("took_s", static_cast<double>(e.took_ns) / 1e9);
      o.field("state_bytes", e.state_bytes);
    }
  }
  return out;
}

// ---- history -------------------------------------------------------------------------------

history_point make_history_point(const sample& prev, const sample& cur) {
  const double secs = interval_s(prev, cur);
  history_point h;
  h.at_ms = cur.status.at_ns / 1'000'000;
  std::uint64_t in = 0, out = 0, in0 = 0, out0 = 0;
  totals(cur, in, out);
  totals(prev, in0, out0);
  h.records_in_per_s = rate(in0, in, secs);
  h.records_out_per_s = rate(out0, out, secs);
  const auto before = index_instances(prev);
  for (const auto& gc : cur.graph.components) {
    history_point::component c;
    c.name = gc.name;
    const auto* now = find_component(cur.status, gc.name);
    const auto* then = find_component(prev.status, gc.name);
    if (now && then) {
      c.in = rate(then->rows_in, now->rows_in, secs);
      c.out = rate(then->rows_out, now->rows_out, secs);
    } else {
      c.in = c.out = nan;
    }
    // The mean over the component's instances that have a previous reading.
    double busy = 0, bp = 0;
    int n = 0;
    for (const auto& m : cur.status.instances) {
      if (m.component != gc.name) continue;
      auto it = before.find(instance_key(m.component, m.global_id));
      if (it == before.end()) continue;
      const auto f = fractions_of(it->second, m, secs);
      if (!std::isfinite(f.busy)) continue;
      busy += f.busy;
      bp += f.backpressured;
      ++n;
    }
    c.busy = n > 0 ? busy / n : nan;
    c.backpressured = n > 0 ? bp / n : nan;
    h.components.push_back(std::move(c));
  }
  return h;
}

std::string render_history(const std::deque<history_point>& points, double interval_s) {
  std::string out;
  {
    object root(out);
    root.field("interval_s", interval_s);
    array list(root.key("points"));
    for (const auto& h : points) {
      object o(list.next());
      o.field("at_ms", h.at_ms);
      o.field("records_in_per_s", h.records_in_per_s);
      o.field("records_out_per_s", h.records_out_per_s);
      object cs(o.key("components"));
      for (const auto& c : h.components) {
        object x(cs.key(c.name));
        x.field("in", c.in);
        x.field("out", c.out);
        x.field("busy", c.busy);
        x.field("backpressured", c.backpressured);
      }
    }
  }
  return out;
}

std::string render_tap_line(std::string_view component, std::string_view port, std::int64_t at_ms,
                            std::string_view row_json) {
  std::string out;
  {
    object o(out);
    o.field("component", component);
    o.field("port", port);
    o.field("at_ms", at_ms);
    o.key("record").append(row_json.empty() ? std::string_view("null") : row_json);
  }
  return out;
}

// ---- Prometheus ------------------------------------------------------------------------------

std::string escape_label(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

namespace {

/// A sample value: integers as such, others in the shortest form, infinities as Prometheus
/// spells them.
std::string prom_value(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "+Inf" : "-Inf";
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

/// One metric family: HELP and TYPE once, then its samples.
class family {
public:
  family(std::string& out, const char* name, const char* type, const char* help)
      : out_(out), name_(name) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  /// A sample with labels given as name/value pairs.
  void add(std::initializer_list<std::pair<const char*, std::string_view>> labels, double value,
           const char* suffix = "") {
    out_ += name_;
    out_ += suffix;
    if (labels.size() > 0) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += escape_label(v);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += prom_value(value);
    out_ += '\n';
  }

private:
  std::string& out_;
  const char* name_;
};

/// A per-instance family: one sample per instance of every pipeline, `value` of the metrics
/// (skipped when it returns NaN).
template <class F>
void per_instance(std::string& out, const std::vector<metrics_input>& ps, const char* name,
                  const char* type, const char* help, F value) {
  family f(out, name, type, help);
  for (const auto& p : ps)
    for (const auto& m : p.status->instances) {
      const double v = value(m, *p.status);
      if (std::isnan(v)) continue;
      const std::string inst = std::to_string(m.instance);
      f.add({{"pipeline", p.name}, {"component", m.component}, {"instance", inst}}, v);
    }
}

/// A per-pipeline family.
template <class F>
void per_pipeline(std::string& out, const std::vector<metrics_input>& ps, const char* name,
                  const char* type, const char* help, F value) {
  family f(out, name, type, help);
  for (const auto& p : ps) f.add({{"pipeline", p.name}}, value(*p.status));
}

}  // namespace

const std::vector<double>& request_histograms::bounds() {
  static const std::vector<double> b{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,   0.25,   0.5,   1,    2.5};
  return b;
}

void request_histograms::observe(const std::string& path, double seconds) {
  auto& h = by_path_[path];
  const auto& b = bounds();
  if (h.counts.empty()) h.counts.assign(b.size() + 1, 0);
  std::size_t i = 0;
  while (i < b.size() && seconds > b[i]) ++i;
  ++h.counts[i];
  ++h.count;
  h.sum += seconds;
}

void request_histograms::render(std::string& out) const {
  family f(out, "pel_http_request_duration_seconds", "histogram",
           "Time to answer a request of the HTTP API (a tap stream: until it starts streaming).");
  const auto& b = bounds();
  for (const auto& [path, h] : by_path_) {
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= b.size(); ++i) {
      cumulative += h.counts[i];
      char le[32] = "+Inf";
      if (i < b.size()) std::snprintf(le, sizeof le, "%g", b[i]);
      f.add({{"path", path}, {"le", le}}, static_cast<double>(cumulative), "_bucket");
    }
    f.add({{"path", path}}, h.sum, "_sum");
    f.add({{"path", path}}, static_cast<double>(h.count), "_count");
  }
}

std::string render_metrics(const std::vector<metrics_input>& ps,
                           const request_histograms& requests) {
  using im = runtime::instance_metrics;
  using js = runtime::job_status;
  std::string out;
  out.reserve(4096 + 2048 * ps.size());
  per_instance(out, ps, "pel_records_in_total", "counter", "Rows given to the instance.",
               [](const im& m, const js&) { return static_cast<double>(m.rows_in); });
  per_instance(out, ps, "pel_records_out_total", "counter", "Rows on the instance's main output.",
               [](const im& m, const js&) { return static_cast<double>(m.rows_out); });
  per_instance(out, ps, "pel_dead_letters_total", "counter", "Rows sent to the dead-letter port.",
               [](const im& m, const js&) { return static_cast<double>(m.dead_letters); });
  per_instance(out, ps, "pel_late_records_total", "counter", "Rows that came after the watermark.",
               [](const im& m, const js&) { return static_cast<double>(m.late); });
  per_instance(out, ps, "pel_lost_records_total", "counter",
               "Sources: input lost before it was read.",
               [](const im& m, const js&) { return static_cast<double>(m.lost); });
  per_instance(out, ps, "pel_busy_seconds_total", "counter", "Time the instance spent processing.",
               [](const im& m, const js&) { return static_cast<double>(m.busy_ns) / 1e9; });
  per_instance(out, ps, "pel_backpressure_seconds_total", "counter",
               "Time the instance spent holding output without credit.",
               [](const im& m, const js&) { return static_cast<double>(m.backpressure_ns) / 1e9; });
  per_instance(out, ps, "pel_queue_batches", "gauge", "Input batches waiting.",
               [](const im& m, const js&) { return static_cast<double>(m.queued_batches); });
  per_instance(out, ps, "pel_queue_capacity_batches", "gauge", "Input batches that may wait.",
               [](const im& m, const js&) { return static_cast<double>(m.queue_capacity); });
  per_instance(out, ps, "pel_watermark_seconds", "gauge",
               "The instance's watermark (seconds since the epoch).", [](const im& m, const js&) {
                 if (m.watermark_ns == INT64_MIN || m.watermark_ns == INT64_MAX) return nan;
                 return static_cast<double>(m.watermark_ns) / 1e9;
               });
  per_instance(out, ps, "pel_watermark_lag_seconds", "gauge",
               "Processing time minus the watermark.", [](const im& m, const js& s) {
                 if (m.watermark_ns == INT64_MIN || m.watermark_ns == INT64_MAX) return nan;
                 return static_cast<double>(s.at_ns - m.watermark_ns) / 1e9;
               });
  per_instance(out, ps, "pel_state_bytes", "gauge",
               "The instance's state in the last checkpoint or rescale.",
               [](const im& m, const js&) {
                 return m.state_bytes < 0 ? nan : static_cast<double>(m.state_bytes);
               });
  // Sinks with a store-and-forward buffer only (the others have no series).
  auto buffered = [](auto get) {
    return [get](const im& m, const js&) { return m.buffer.present ? get(m.buffer) : nan; };
  };
  using bm = runtime::buffer_metrics;
  per_instance(out, ps, "pel_buffer_pending_records", "gauge",
               "Records in the sink's buffer waiting to be forwarded.",
               buffered([](const bm& b) { return static_cast<double>(b.pending); }));
  per_instance(out, ps, "pel_buffer_bytes", "gauge", "Bytes of the sink's buffer on disk.",
               buffered([](const bm& b) { return static_cast<double>(b.bytes_on_disk); }));
  per_instance(out, ps, "pel_buffer_max_bytes", "gauge", "The bound of the sink's buffer.",
               buffered([](const bm& b) { return static_cast<double>(b.max_size); }));
  per_instance(out, ps, "pel_buffer_forwarding", "gauge",
               "1 while the sink takes the buffer's records, 0 while forwarding fails.",
               buffered([](const bm& b) { return b.forwarding ? 1.0 : 0.0; }));
  per_instance(out, ps, "pel_buffer_appended_total", "counter", "Records appended to the buffer.",
               buffered([](const bm& b) { return static_cast<double>(b.appended); }));
  per_instance(out, ps, "pel_buffer_forwarded_total", "counter",
               "Records the sink confirmed from the buffer.",
               buffered([](const bm& b) { return static_cast<double>(b.forwarded); }));
  per_instance(out, ps, "pel_buffer_dropped_total", "counter",
               "Records deleted unsent by when_full: drop_oldest.",
               buffered([](const bm& b) { return static_cast<double>(b.dropped); }));
  per_instance(out, ps, "pel_buffer_full_total", "counter", "Appends that found the buffer full.",
               buffered([](const bm& b) { return static_cast<double>(b.full_events); }));
  per_instance(out, ps, "pel_buffer_forward_failures_total", "counter",
               "Failed attempts to hand records to the sink (each retried).",
               buffered([](const bm& b) { return static_cast<double>(b.failures); }));
  {
    family f(out, "pel_instances", "gauge", "Current parallelism of the component.");
    for (const auto& p : ps)
      for (const auto& c : p.graph->components)
        f.add({{"pipeline", p.name}, {"component", c.name}}, c.parallelism);
  }
  {
    family f(out, "pel_kafka_lag_records", "gauge", "Records of the partition not read yet.");
    for (const auto& p : ps)
      for (const auto& sp : p.status->splits) {
        if (sp.lag < 0) continue;
        const std::string inst = std::to_string(sp.instance);
        f.add({{"pipeline", p.name},
               {"component", sp.component},
               {"instance", inst},
               {"split", sp.split}},
              static_cast<double>(sp.lag));
      }
  }
  per_pipeline(out, ps, "pel_checkpoints_total", "counter", "Completed checkpoints.",
               [](const js& s) { return static_cast<double>(s.checkpoints); });
  per_pipeline(out, ps, "pel_checkpoints_abandoned_total", "counter", "Abandoned checkpoints.",
               [](const js& s) { return static_cast<double>(s.checkpoints_abandoned); });
  per_pipeline(out, ps, "pel_checkpoint_duration_seconds", "gauge",
               "How long the last checkpoint took.",
               [](const js& s) { return static_cast<double>(s.last_checkpoint_ns) / 1e9; });
  per_pipeline(out, ps, "pel_restarts_total", "counter", "Recoveries inside the process.",
               [](const js& s) { return static_cast<double>(s.restarts); });
  per_pipeline(out, ps, "pel_scaling_decisions_total", "counter", "Autoscaling decisions.",
               [](const js& s) { return static_cast<double>(s.scaling.size()); });
  per_pipeline(out, ps, "pel_up", "gauge", "1 while the pipeline runs.", [](const js& s) {
    return s.state == "running" || s.state == "starting" ? 1.0 : 0.0;
  });
  requests.render(out);
  return out;
}

}  // namespace pel::api
