// `pel top`: a terminal view of a running `pel run --http` (docs/api.md), refreshed in place
// with plain ANSI sequences (no curses: the frame is redrawn whole, line by line, which is all
// a table needs). `--once` prints one frame without them, for scripts.

#include "api_client.hpp"
#include "commands.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pel::cli {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_invalid = 2;

using opt = std::optional<double>;

struct top_args {
  std::string url = "http://127.0.0.1:8080";
  std::string token;
  std::string interval = "1s";
  std::string pipeline;
  bool once = false;
};

// ---- what a frame shows ------------------------------------------------------------------

struct component_info {
  std::string name, kind;
  int parallelism = 0;
};

struct instance_info {
  std::string component;
  int instance = 0;
  opt in_s, out_s, busy, backpressured, queue_used, queue_capacity, watermark_ms, lag_s;
  opt dead_letters, late;
  bool ended = false;  ///< watermark "end"
};

struct split_info {
  std::string component, split;
  int instance = 0;
  opt position, end, lag;
  bool idle = false, paused = false;
};

struct snapshot {
  std::vector<std::string> pipelines;
  std::string name, file, state, error;
  opt uptime_s, records_in, records_out, in_s, out_s, dead_letters, late, restarts, checkpoints,
      instances;
  std::vector<component_info> components;
  std::vector<instance_info> instances_list;
  std::vector<split_info> splits;
  opt ckpt_completed, ckpt_abandoned, ckpt_duration_s, ckpt_bytes, ckpt_at_ms;
  std::string restart_latest;
  std::string scaling_policy, scaling_latest;
};

/// Why a frame could not be fetched: `unreachable` (retry), or a reply the user must act on.
struct fetch_problem {
  bool unreachable = false;
  int status = 0;
  std::string text;
};

// ---- formatting --------------------------------------------------------------------------

/// `s` cut to `w` columns (UTF-8 code points), marked with '~' when cut.
std::string fit(const std::string& s, std::size_t w) {
  std::size_t cols = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (cols == w) break;
    ++cols;
  }
  if (i >= s.size()) return s;
  // Cut: keep w-1 columns and a marker.
  std::size_t keep = 0;
  cols = 0;
  for (; keep < s.size(); ++keep) {
    if ((static_cast<unsigned char>(s[keep]) & 0xC0) == 0x80) continue;
    if (cols + 1 == w) break;
    ++cols;
  }
  return w == 0 ? std::string() : s.substr(0, keep) + "~";
}

std::size_t columns_of(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string pad_left(const std::string& s, std::size_t w) {
  auto t = fit(s, w);
  return std::string(w - columns_of(t), ' ') + t;
}

std::string pad_right(const std::string& s, std::size_t w) {
  auto t = fit(s, w);
  return t + std::string(w - columns_of(t), ' ');
}

/// 1234 -> "1234", 12345 -> "12.3k", 1.5e6 -> "1.50M"; "-" when unknown.
std::string compact(opt v) {
  if (!v) return "-";
  const double x = *v;
  char buf[32];
  const double a = std::fabs(x);
  if (a < 10 && x != std::floor(x))
    std::snprintf(buf, sizeof buf, "%.1f", x);
  else if (a < 10'000)
    std::snprintf(buf, sizeof buf, "%.0f", x);
  else if (a < 100'000)
    std::snprintf(buf, sizeof buf, "%.1fk", x / 1e3);
  else if (a < 1e6)
    std::snprintf(buf, sizeof buf, "%.0fk", x / 1e3);
  else if (a < 1e8)
    std::snprintf(buf, sizeof buf, "%.2fM", x / 1e6);
  else if (a < 1e9)
    std::snprintf(buf, sizeof buf, "%.0fM", x / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.2fG", x / 1e9);
  return buf;
}

std::string percent(opt f) {
  if (!f) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.0f%%", std::clamp(*f, 0.0, 1.0) * 100);
  return buf;
}

/// Seconds as "0.8s", "42s", "5m03s", "2h05m", "3d04h".
std::string duration(opt s) {
  if (!s) return "-";
  const double x = std::max(0.0, *s);
  char buf[32];
  const auto n = static_cast<long long>(x);
  if (x < 1)
    std::snprintf(buf, sizeof buf, "%.0fms", x * 1000);
  else if (x < 10)
    std::snprintf(buf, sizeof buf, "%.1fs", x);
  else if (x < 60)
    std::snprintf(buf, sizeof buf, "%llds", n);
  else if (x < 3600)
    std::snprintf(buf, sizeof buf, "%lldm%02llds", n / 60, n % 60);
  else if (x < 86400)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", n / 3600, n / 60 % 60);
  else
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", n / 86400, n / 3600 % 24);
  return buf;
}

/// Lag in at most 5 columns: "0.8s", "42s", "5m", "2h", "3d".
std::string short_duration(opt s) {
  if (!s) return "-";
  const double x = std::max(0.0, *s);
  char buf[32];
  if (x < 10)
    std::snprintf(buf, sizeof buf, "%.1fs", x);
  else if (x < 60)
    std::snprintf(buf, sizeof buf, "%.0fs", x);
  else if (x < 3600)
    std::snprintf(buf, sizeof buf, "%.0fm", x / 60);
  else if (x < 86400)
    std::snprintf(buf, sizeof buf, "%.0fh", x / 3600);
  else
    std::snprintf(buf, sizeof buf, "%.0fd", x / 86400);
  return buf;
}

std::string bytes(opt b) {
  if (!b) return "-";
  char buf[32];
  if (*b < 1024)
    std::snprintf(buf, sizeof buf, "%.0f B", *b);
  else if (*b < 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", *b / 1024);
  else
    std::snprintf(buf, sizeof buf, "%.1f MiB", *b / (1024 * 1024));
  return buf;
}

/// Milliseconds since the epoch as ISO-8601 UTC: the whole of it, or (`short_form`) the
/// time of day to the second ("14:30:00Z"), which is what fits an 80-column row.
std::string iso_time(double ms, bool short_form) {
  const auto whole = static_cast<long long>(std::floor(ms / 1000));
  const auto milli = static_cast<int>(ms - static_cast<double>(whole) * 1000);
  std::time_t t = static_cast<std::time_t>(whole);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  if (short_form)
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02dZ", tm.tm_hour, tm.tm_min, tm.tm_sec);
  else
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, milli);
  return buf;
}

double now_ms() {
  using namespace std::chrono;
  return static_cast<double>(
      duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

opt sum_of(const std::vector<const instance_info*>& xs, opt instance_info::*f) {
  opt out;
  for (auto* x : xs)
    if (x->*f) out = out.value_or(0) + *(x->*f);
  return out;
}

opt mean_of(const std::vector<const instance_info*>& xs, opt instance_info::*f) {
  double s = 0;
  int n = 0;
  for (auto* x : xs)
    if (x->*f) s += *(x->*f), ++n;
  return n > 0 ? opt(s / n) : std::nullopt;
}

// ---- fetching ----------------------------------------------------------------------------

/// GETs `path` and parses it; on failure fills `problem` and returns false.
bool fetch_json(api_client& client, const std::string& path, simdjson::dom::parser& parser,
                simdjson::dom::element& doc, fetch_problem& problem) {
  auto r = client.get(path);
  if (!r.reached()) {
    problem = {true, 0, r.transport_error};
    return false;
  }
  if (r.status != 200) {
    problem = {false, r.status, path + ": " + r.error_text()};
    return false;
  }
  if (parser.parse(r.body).get(doc)) {
    problem = {false, 0, path + ": the reply is not JSON"};
    return false;
  }
  return true;
}

/// Reads every figure of the frame. `chosen` is the pipeline to show (updated when empty or
/// gone: the first one).
bool fetch(api_client& client, const std::string& wanted, std::size_t& index, snapshot& s,
           fetch_problem& problem) {
  s = snapshot{};
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (!fetch_json(client, "/api/v1/pipelines", parser, doc, problem)) return false;
  auto list = json_array(doc, "pipelines");
  for (auto p : list) s.pipelines.push_back(json_string(p, "name"));
  if (s.pipelines.empty()) {
    problem = {false, 0, "the server runs no pipeline"};
    return false;
  }
  if (!wanted.empty()) {
    auto at = std::find(s.pipelines.begin(), s.pipelines.end(), wanted);
    if (at == s.pipelines.end()) {
      std::string all;
      for (const auto& n : s.pipelines) all += (all.empty() ? "" : ", ") + n;
      problem = {false, 404, "no pipeline '" + wanted + "' (pipelines: " + all + ")"};
      return false;
    }
    index = static_cast<std::size_t>(at - s.pipelines.begin());
  }
  index %= s.pipelines.size();
  auto p = list[index];
  s.name = json_string(p, "name");
  s.file = json_string(p, "file");
  s.state = json_string(p, "state");
  s.error = json_string(p, "error");
  s.uptime_s = json_number(p, "uptime_s");
  s.records_in = json_number(p, "records_in");
  s.records_out = json_number(p, "records_out");
  s.in_s = json_number(p, "records_in_per_s");
  s.out_s = json_number(p, "records_out_per_s");
  s.dead_letters = json_number(p, "dead_letters");
  s.late = json_number(p, "late");
  s.restarts = json_number(p, "restarts");
  s.checkpoints = json_number(p, "checkpoints");
  s.instances = json_number(p, "instances");

  const std::string base = "/api/v1/pipelines/" + url_encode(s.name);
  simdjson::dom::parser gp;
  if (!fetch_json(client, base, gp, doc, problem)) return false;
  for (auto c : json_array(doc, "components")) {
    component_info ci;
    ci.name = json_string(c, "name");
    ci.kind = json_string(c, "kind");
    ci.parallelism = static_cast<int>(json_number(c, "parallelism").value_or(0));
    s.components.push_back(std::move(ci));
  }
  simdjson::dom::parser ip;
  if (!fetch_json(client, base + "/instances", ip, doc, problem)) return false;
  for (auto x : json_array(doc, "instances")) {
    instance_info ii;
    ii.component = json_string(x, "component");
    ii.instance = static_cast<int>(json_number(x, "instance").value_or(0));
    ii.in_s = json_number(x, "records_in_per_s");
    ii.out_s = json_number(x, "records_out_per_s");
    ii.busy = json_number(x, "busy");
    ii.backpressured = json_number(x, "backpressured");
    ii.queue_used = json_number(x, "queue_used");
    ii.queue_capacity = json_number(x, "queue_capacity");
    ii.ended = json_string(x, "watermark") == "end";
    ii.watermark_ms = json_number(x, "watermark_ms");
    ii.lag_s = json_number(x, "watermark_lag_s");
    ii.dead_letters = json_number(x, "dead_letters");
    ii.late = json_number(x, "late");
    s.instances_list.push_back(std::move(ii));
  }
  simdjson::dom::parser sp;
  if (!fetch_json(client, base + "/sources", sp, doc, problem)) return false;
  for (auto x : json_array(doc, "splits")) {
    split_info si;
    si.component = json_string(x, "component");
    si.split = json_string(x, "split");
    si.instance = static_cast<int>(json_number(x, "instance").value_or(0));
    si.position = json_number(x, "position");
    si.end = json_number(x, "end");
    si.lag = json_number(x, "lag");
    si.idle = json_bool(x, "idle");
    si.paused = json_bool(x, "paused");
    s.splits.push_back(std::move(si));
  }
  simdjson::dom::parser cp;
  if (!fetch_json(client, base + "/checkpoints", cp, doc, problem)) return false;
  s.ckpt_completed = json_number(doc, "completed");
  s.ckpt_abandoned = json_number(doc, "abandoned");
  s.ckpt_duration_s = json_number(doc, "last_duration_s");
  s.ckpt_bytes = json_number(doc, "last_bytes");
  s.ckpt_at_ms = json_number(doc, "last_at_ms");
  simdjson::dom::parser rp;
  if (!fetch_json(client, base + "/restarts", rp, doc, problem)) return false;
  if (auto log = json_array(doc, "log"); !log.empty()) {
    std::string_view line;
    if (!log.back().get_string().get(line)) s.restart_latest = std::string(line);
  }
  simdjson::dom::parser scp;
  if (!fetch_json(client, base + "/scaling", scp, doc, problem)) return false;
  s.scaling_policy = json_string(doc, "policy");
  if (auto events = json_array(doc, "events"); !events.empty()) {
    auto e = events.back();
    std::string t = "at " + duration(json_number(e, "at_s")) + ": " + json_string(e, "component") +
                    " " + compact(json_number(e, "from")) + " -> " + compact(json_number(e, "to")) +
                    ", " + json_string(e, "reason");
    const std::string outcome = json_string(e, "outcome");
    if (!outcome.empty())
      t += "; " + outcome;
    else if (!json_bool(e, "done"))
      t += "; in progress";
    s.scaling_latest = t;
  }
  return true;
}

// ---- rendering ---------------------------------------------------------------------------

/// The table's columns for a terminal `width` wide: the name column takes what is left, and
/// the watermark shows whole once there is room.
struct layout {
  std::size_t name = 12;
  bool full_watermark = false;

  explicit layout(std::size_t width) {
    const std::size_t fixed = 65;  // every column but the name, with their separators
    full_watermark = width >= 100;
    const std::size_t rest = width - std::min(width, fixed + (full_watermark ? 15 : 0));
    name = std::clamp<std::size_t>(rest, 12, 32);
  }

  std::size_t watermark() const { return full_watermark ? 24 : 9; }

  std::string row(const std::string& name_text, const std::string& kind, const std::string& inst,
                  const std::string& in_s, const std::string& out_s, const std::string& busy,
                  const std::string& bp, const std::string& queue, const std::string& wm,
                  const std::string& lag, const std::string& dead, const std::string& late) const {
    return pad_right(name_text, name) + " " + pad_right(kind, 4) + " " + pad_left(inst, 3) + " " +
           pad_left(in_s, 6) + " " + pad_left(out_s, 6) + " " + pad_left(busy, 4) + " " +
           pad_left(bp, 4) + " " + pad_left(queue, 5) + " " + pad_right(wm, watermark()) + " " +
           pad_left(lag, 5) + " " + pad_left(dead, 4) + " " + pad_left(late, 4);
  }
};

std::string kind_short(const std::string& kind) {
  if (kind == "source") return "src";
  if (kind == "operator") return "op";
  return kind;
}

std::string queue_text(opt used, opt capacity) {
  if (!used || (capacity && *capacity == 0)) return "-";  // sources have no input queue
  std::string t = compact(used);
  if (capacity) {
    std::string with = t + "/" + compact(capacity);
    if (with.size() <= 5) return with;
  }
  return t;
}

std::string watermark_text(const std::vector<const instance_info*>& xs, bool full) {
  opt low;
  bool all_ended = !xs.empty();
  for (auto* x : xs) {
    if (x->ended) continue;
    all_ended = false;
    if (x->watermark_ms) low = low ? std::min(*low, *x->watermark_ms) : *x->watermark_ms;
  }
  if (all_ended) return "end";
  return low ? iso_time(*low, !full) : "-";
}

opt max_lag(const std::vector<const instance_info*>& xs) {
  opt out;
  for (auto* x : xs)
    if (x->lag_s) out = out ? std::max(*out, *x->lag_s) : *x->lag_s;
  return out;
}

/// The frame's lines, each at most `width` columns, at most `height` of them (0: no bound).
std::vector<std::string> render(const snapshot& s, const std::string& url, std::size_t width,
                                std::size_t height) {
  std::vector<std::string> head, table, tail;
  std::string title = "pel top  " + url + "  pipeline " + s.name;
  if (s.pipelines.size() > 1) {
    std::size_t i = 0;
    while (i < s.pipelines.size() && s.pipelines[i] != s.name) ++i;
    title +=
        " (" + std::to_string(i + 1) + " of " + std::to_string(s.pipelines.size()) + ", n: next)";
  }
  head.push_back(title);
  std::string state = "state " + s.state + "  up " + duration(s.uptime_s);
  if (!s.error.empty()) state += "  error: " + s.error;
  head.push_back(state);
  head.push_back("in " + compact(s.records_in) + " (" + compact(s.in_s) + "/s)  out " +
                 compact(s.records_out) + " (" + compact(s.out_s) + "/s)  dead letters " +
                 compact(s.dead_letters) + "  late " + compact(s.late));
  std::string ck = "checkpoints " + compact(s.ckpt_completed ? s.ckpt_completed : s.checkpoints);
  if (s.ckpt_abandoned && *s.ckpt_abandoned > 0)
    ck += " (" + compact(s.ckpt_abandoned) + " abandoned)";
  if (s.ckpt_at_ms)
    ck += ", last " + duration((now_ms() - *s.ckpt_at_ms) / 1000) + " ago, " + bytes(s.ckpt_bytes) +
          " in " + duration(s.ckpt_duration_s);
  ck += "  restarts " + compact(s.restarts) + "  instances " + compact(s.instances);
  head.push_back(ck);
  head.emplace_back();

  const layout cols(width);
  table.push_back(cols.row("COMPONENT", "KIND", "INS", "IN/S", "OUT/S", "BUSY", "BP", "QUEUE",
                           "WATERMARK", "LAG", "DEAD", "LATE"));
  std::vector<bool> is_instance_row{false};  // per row of `table`
  std::map<std::string, std::vector<const instance_info*>> by_component;
  for (const auto& x : s.instances_list) by_component[x.component].push_back(&x);
  // Components in graph order; any the graph did not name (a rescale in between) after them.
  std::vector<component_info> comps = s.components;
  for (const auto& [name, xs] : by_component)
    if (std::none_of(comps.begin(), comps.end(), [&](auto& c) { return c.name == name; }))
      comps.push_back({name, "", static_cast<int>(xs.size())});
  for (const auto& c : comps) {
    const auto& xs = by_component[c.name];
    const int n = xs.empty() ? c.parallelism : static_cast<int>(xs.size());
    table.push_back(cols.row(
        c.name, kind_short(c.kind), std::to_string(n), compact(sum_of(xs, &instance_info::in_s)),
        compact(sum_of(xs, &instance_info::out_s)), percent(mean_of(xs, &instance_info::busy)),
        percent(mean_of(xs, &instance_info::backpressured)),
        queue_text(sum_of(xs, &instance_info::queue_used),
                   sum_of(xs, &instance_info::queue_capacity)),
        watermark_text(xs, cols.full_watermark), short_duration(max_lag(xs)),
        compact(sum_of(xs, &instance_info::dead_letters)),
        compact(sum_of(xs, &instance_info::late))));
    is_instance_row.push_back(false);
    if (xs.size() < 2) continue;  // the component's row says it all
    for (auto* x : xs) {
      table.push_back(cols.row("  [" + std::to_string(x->instance) + "]", "", "", compact(x->in_s),
                               compact(x->out_s), percent(x->busy), percent(x->backpressured),
                               queue_text(x->queue_used, x->queue_capacity),
                               watermark_text({x}, cols.full_watermark), short_duration(x->lag_s),
                               compact(x->dead_letters), compact(x->late)));
      is_instance_row.push_back(true);
    }
  }

  std::vector<std::string> parts;
  if (!s.splits.empty()) {
    parts.push_back(pad_right("PARTITION", 24) + " " + pad_left("INST", 4) + " " +
                    pad_left("POSITION", 10) + " " + pad_left("END", 10) + " " +
                    pad_left("LAG", 8) + "  STATE");
    for (const auto& x : s.splits)
      parts.push_back(pad_right(x.split.empty() ? x.component : x.split, 24) + " " +
                      pad_left(std::to_string(x.instance), 4) + " " +
                      pad_left(compact(x.position), 10) + " " + pad_left(compact(x.end), 10) + " " +
                      pad_left(compact(x.lag), 8) + "  " +
                      (x.paused ? "paused"
                       : x.idle ? "idle"
                                : "reading"));
  }

  tail.emplace_back();
  tail.push_back("scaling" +
                 (s.scaling_policy.empty() ? std::string(": off") : " (" + s.scaling_policy + ")") +
                 (s.scaling_latest.empty()
                      ? std::string(s.scaling_policy.empty() ? "" : ": no decision yet")
                      : ": " + s.scaling_latest));
  tail.push_back("restarts: " +
                 (s.restart_latest.empty() ? std::string("none") : s.restart_latest));

  // Fit the height: drop partitions beyond what fits, then the instance rows, then cut.
  if (height > 0) {
    auto total = [&] {
      return head.size() + table.size() + (parts.empty() ? 0 : parts.size() + 1) + tail.size();
    };
    while (parts.size() > 2 && total() > height) parts.pop_back();
    if (total() > height) {
      std::vector<std::string> kept;
      for (std::size_t i = 0; i < table.size(); ++i)
        if (!is_instance_row[i]) kept.push_back(table[i]);
      table.swap(kept);
    }
    const std::size_t others = total() - table.size();
    if (total() > height && height > others + 2) {
      const std::size_t keep = height - others - 1;
      const std::size_t hidden = table.size() - keep;
      table.resize(keep);
      table.push_back("... " + std::to_string(hidden) + " more rows");
    }
  }

  std::vector<std::string> out;
  for (auto* part : {&head, &table}) out.insert(out.end(), part->begin(), part->end());
  if (!parts.empty()) {
    out.emplace_back();
    out.insert(out.end(), parts.begin(), parts.end());
  }
  out.insert(out.end(), tail.begin(), tail.end());
  for (auto& l : out) l = fit(l, width);
  if (height > 0 && out.size() > height) out.resize(height);
  return out;
}

// ---- the terminal ------------------------------------------------------------------------

/// Raw keyboard input (no echo, no line buffering, Ctrl-C as a key) and the alternate
/// screen while it lives; restores the terminal when destroyed.
class terminal {
public:
  terminal() {
    input_ = isatty(STDIN_FILENO) != 0 && tcgetattr(STDIN_FILENO, &saved_) == 0;
    if (input_) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG);
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    std::fputs("\x1b[?1049h\x1b[?25l", stdout);
    std::fflush(stdout);
  }
  ~terminal() {
    std::fputs("\x1b[?25h\x1b[?1049l", stdout);
    std::fflush(stdout);
    if (input_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  terminal(const terminal&) = delete;
  terminal& operator=(const terminal&) = delete;

  bool has_input() const noexcept { return input_; }

  /// Columns and rows of the terminal (80x24 when unknown).
  static std::pair<std::size_t, std::size_t> size() {
    winsize ws{};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0)
      return {ws.ws_col, ws.ws_row};
    return {80, 24};
  }

  /// Draws `lines` from the top left, each over what was there.
  static void draw(const std::vector<std::string>& lines) {
    std::string out = "\x1b[H";
    for (std::size_t i = 0; i < lines.size(); ++i) {
      out += lines[i];
      out += "\x1b[K";
      if (i + 1 < lines.size()) out += "\r\n";
    }
    out += "\x1b[J";
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }

private:
  bool input_ = false;
  termios saved_{};
};

enum class key_event { none, quit, next };

/// Waits up to `ms` for a key (when there is a keyboard) or SIGINT/SIGTERM.
key_event wait_for_key(bool keyboard, int ms, const sigset_t& stop_signals) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    timespec zero{0, 0};
    if (sigtimedwait(&stop_signals, nullptr, &zero) > 0) return key_event::quit;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) return key_event::none;
    const int slice = static_cast<int>(std::min<long long>(left, 50));
    if (!keyboard) {
      timespec wait{0, slice * 1'000'000L};
      if (sigtimedwait(&stop_signals, nullptr, &wait) > 0) return key_event::quit;
      continue;
    }
    pollfd pfd{STDIN_FILENO, POLLIN, 0};
    if (poll(&pfd, 1, slice) > 0) {
      char c = 0;
      if (read(STDIN_FILENO, &c, 1) != 1) return key_event::quit;  // the terminal went away
      if (c == 'q' || c == 'Q' || c == 3 /* Ctrl-C */ || c == 4 /* Ctrl-D */)
        return key_event::quit;
      if (c == 'n' || c == '\t') return key_event::next;
    }
  }
}

int run_top(const top_args& a) {
  auto interval = parse_seconds(a.interval);
  if (!interval) {
    std::cerr << "pel top: --interval: '" << a.interval
              << "' is not a duration such as 1s or 500ms\n";
    return exit_invalid;
  }
  std::unique_ptr<api_client> client;
  try {
    client = std::make_unique<api_client>(a.url, token_or_env(a.token));
  } catch (const std::exception& e) {
    std::cerr << "pel top: --url: " << e.what() << "\n";
    return exit_invalid;
  }
  std::size_t index = 0;
  snapshot s;
  fetch_problem problem;

  if (a.once) {
    if (!fetch(*client, a.pipeline, index, s, problem)) {
      std::cerr << "pel top: " << problem.text << "\n";
      return problem.unreachable ? exit_failure
             : (problem.status == 401 || problem.status == 404 || problem.status == 400)
                 ? exit_invalid
                 : exit_failure;
    }
    std::size_t width = 80;
    if (const char* c = std::getenv("COLUMNS"); c != nullptr && std::atoi(c) >= 40)
      width = static_cast<std::size_t>(std::atoi(c));
    for (const auto& l : render(s, client->url(), width, 0)) std::cout << l << "\n";
    return exit_ok;
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::string fatal;
  {
    terminal term;
    std::vector<std::string> last;
    std::string wanted = a.pipeline;
    for (;;) {
      const auto [width, height] = terminal::size();
      const bool ok = fetch(*client, wanted, index, s, problem);
      std::vector<std::string> lines;
      if (ok) {
        lines = render(s, client->url(), width, height);
        last = lines;
      } else if (problem.status == 401) {
        fatal = problem.text + " (give the server's token with --token or PEL_HTTP_TOKEN)";
        break;
      } else {
        lines.push_back(fit("pel top: " + problem.text, width));
        lines.push_back(
            fit((problem.unreachable ? "the server is gone; retrying every " : "retrying every ") +
                    a.interval + "; q quits",
                width));
        if (!last.empty()) {
          lines.emplace_back();
          lines.push_back("last seen:");
          for (const auto& l : last)
            if (height == 0 || lines.size() < height) lines.push_back(l);
        }
      }
      terminal::draw(lines);
      const auto ev =
          wait_for_key(term.has_input(), static_cast<int>(*interval * 1000), stop_signals);
      if (ev == key_event::quit) break;
      if (ev == key_event::next && !s.pipelines.empty()) {
        wanted.clear();
        ++index;
      }
    }
  }
  if (!fatal.empty()) {
    std::cerr << "pel top: " << fatal << "\n";
    return exit_invalid;
  }
  return exit_ok;
}

}  // namespace

command top_command() {
  auto args = std::make_shared<top_args>();
  command c;
  c.add = [args](CLI::App& app) {
    auto* sub = app.add_subcommand(
        "top",
        "A live terminal view of a running `pel run --http`: pipeline totals, each component's "
        "rates, busy and backpressure time, queues, watermark and lag, Kafka partitions, the "
        "latest scaling decision and restart (q quits; n shows the next pipeline)");
    sub->add_option("--url", args->url, "The server of `pel run --http` (http://host:port)")
        ->capture_default_str();
    sub->add_option("--token", args->token,
                    "Bearer token of the server (default: the environment variable "
                    "PEL_HTTP_TOKEN)");
    sub->add_option("--interval", args->interval, "Refresh every (e.g. 1s, 500ms)")
        ->capture_default_str();
    sub->add_option("--pipeline", args->pipeline, "The pipeline to show (default: the first)");
    sub->add_flag("--once", args->once,
                  "Print one frame without terminal control codes and exit (for scripts)");
    return sub;
  };
  c.run = [args] { return run_top(*args); };
  return c;
}

}  // namespace pel::cli
