// Observing a running `pel run --http` from outside, with the real clients:
//   - `pel top` in a real terminal (tmux): every component, live rates, redrawn in place,
//     "server gone" when `pel run` ends, `q` quits;
//   - `pel tap`: sampled rows of a component, dead letters with their reason, exit codes;
//   - Prometheus: promtool lints /metrics, and a real Prometheus server scrapes it (with and
//     without a bearer token) and answers queries on pel's series.
// A test whose external program (tmux, prometheus, promtool) is absent exits 77, which ctest
// reports as skipped (observe.cmake).
#include "e2e_support.hpp"
#include "json_line.hpp"
#include "pel/testing/poll.hpp"
#include "process.hpp"

#include <httplib.h>
#include <simdjson.h>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using namespace pel::e2e;

namespace {

constexpr int skip_code = 77;

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

/// Polls `done` every 100 ms (each poll starts a process or sends a query) until it holds or
/// `timeout` passes.
bool poll_every(const std::function<bool()>& done, milliseconds timeout) {
  return pel::testing::poll_until(done, timeout, milliseconds(100));
}

/// The full path of `name` on PATH, or "".
std::string find_program(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

/// `name`'s path; when it is absent, says so and ends this test process as skipped.
std::string require_program(const std::string& name) {
  auto p = find_program(name);
  if (p.empty()) {
    std::cout << "skipped: " << name << " is not installed\n";
    std::exit(skip_code);
  }
  return p;
}

/// A loopback port that was free a moment ago.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("no free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

/// A generator pipeline that runs until stopped: 4 components, the source at parallelism 2.
const std::string generator_yaml =
    "pipeline:\n  name: gen\n"
    "sources:\n"
    "  trades:\n    type: generator\n    profile: trades\n    symbols: 20\n"
    "    rate: 2000\n    parallelism: 2\n"
    "operators:\n"
    "  large:\n    type: filter\n    input: trades\n    where: qty >= 100\n"
    "  notional:\n    type: map\n    input: large\n    fields:\n      notional: price * qty\n"
    "sinks:\n  out:\n    type: discard\n    input: notional\n";

/// Sensor readings, a fifth of them bad: the window dead-letters the text "ERR" with a reason.
const std::string bad_records_yaml =
    "pipeline:\n  name: sensors\n  dead_letter: drop\n"
    "sources:\n"
    "  readings:\n    type: generator\n    profile: sensors\n    devices: 5\n    rate: 1000\n"
    "    bad_records: 0.2\n"
    "operators:\n"
    "  averages:\n    type: window\n    input: readings\n    key: device\n"
    "    window: {type: tumbling, size: 1s}\n"
    "    aggregates:\n      avg_temperature: avg(temperature)\n"
    "sinks:\n  out:\n    type: discard\n    input: averages\n";

/// `pel run --http 127.0.0.1:0` on a pipeline file; `url` once the server said where it is.
struct running_pel {
  temp_dir dir;
  std::unique_ptr<process> p;
  std::string url;

  explicit running_pel(const std::string& yaml, const std::vector<std::string>& extra = {}) {
    write_file(dir / "p.yaml", yaml);
    std::vector<std::string> args{pel_binary(), "run",    "--progress",
                                  "never",      "--http", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(dir / "p.yaml");
    p = std::make_unique<process>(args);
    const std::string marker = "HTTP API and dashboard at ";
    const bool up =
        p->wait_until_stderr([&] { return contains(p->err(), marker); }, milliseconds(20000));
    INFO(p->err());
    REQUIRE(up);
    auto at = p->err().find(marker) + marker.size();
    url = p->err().substr(at, p->err().find_first_of("\r\n", at) - at);
    while (!url.empty() && url.back() == '/') url.pop_back();
    REQUIRE(url.rfind("http://127.0.0.1:", 0) == 0);
  }
  ~running_pel() {
    if (p && !p->exited()) {
      p->send_signal(SIGTERM);
      p->wait(milliseconds(10000));
    }
  }
};

/// GET `url_path` on `base` (http://host:port), with a bearer token when one is given.
httplib::Result http_get(const std::string& base, const std::string& path,
                         const std::string& token = "") {
  httplib::Client c(base);
  c.set_connection_timeout(2, 0);
  c.set_read_timeout(5, 0);
  if (!token.empty()) c.set_bearer_token_auth(token);
  return c.Get(path);
}

// ---- tmux ------------------------------------------------------------------------------

/// A tmux server on a socket of its own (so that tests and users do not collide); killed
/// with everything in it when the object goes, whatever the outcome.
class tmux_server {
public:
  tmux_server() : tmux_(require_program("tmux")) {
    socket_ = "pel_top_test_" + std::to_string(::getpid());
  }
  ~tmux_server() { run({"kill-server"}); }
  tmux_server(const tmux_server&) = delete;
  tmux_server& operator=(const tmux_server&) = delete;

  process_result run(const std::vector<std::string>& args) const {
    std::vector<std::string> all{tmux_, "-L", socket_, "-f", "/dev/null"};
    all.insert(all.end(), args.begin(), args.end());
    return pel::e2e::run(all, milliseconds(10000), {{}, {"TERM=xterm-256color"}, {}});
  }
  std::string capture(const std::string& session) const {
    return run({"capture-pane", "-p", "-t", session}).out;
  }
  bool has_session(const std::string& session) const {
    return run({"has-session", "-t", session}).exit_code == 0;
  }

private:
  std::string tmux_, socket_;
};

/// The whitespace-separated words of `line`.
std::vector<std::string> words(const std::string& line) {
  std::vector<std::string> out;
  std::istringstream s(line);
  for (std::string w; s >> w;) out.push_back(w);
  return out;
}

/// The table row of `component` in a `pel top` screen (its words), or empty.
std::vector<std::string> component_row(const std::string& screen, const std::string& component) {
  for (const auto& line : lines_of(screen)) {
    auto w = words(line);
    if (!w.empty() && w[0] == component) return w;
  }
  return {};
}

/// The "in N (R/s)" total of a `pel top` header, as printed.
std::string total_in(const std::string& screen) {
  for (const auto& line : lines_of(screen))
    if (line.rfind("in ", 0) == 0) return words(line).size() > 1 ? words(line)[1] : "";
  return {};
}

std::size_t occurrences(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// ---- Prometheus --------------------------------------------------------------------------

/// One series of a Prometheus instant query: its labels and value.
struct series {
  std::map<std::string, std::string> labels;
  double value = 0;
};

/// Runs an instant query on the Prometheus at `base`; nullopt when it did not answer.
std::optional<std::vector<series>> prometheus_query(const std::string& base,
                                                    const std::string& query) {
  auto r = http_get(base, "/api/v1/query?query=" + httplib::detail::encode_query_param(query));
  if (!r || r->status != 200) return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(r->body).get(doc)) return std::nullopt;
  simdjson::dom::array result;
  if (doc["data"]["result"].get_array().get(result)) return std::nullopt;
  std::vector<series> out;
  for (auto item : result) {
    series s;
    simdjson::dom::object metric;
    if (!item["metric"].get_object().get(metric))
      for (auto field : metric) {
        std::string_view v;
        if (!field.value.get_string().get(v)) s.labels[std::string(field.key)] = std::string(v);
      }
    std::string_view text;
    if (item["value"].at(1).get_string().get(text)) continue;
    s.value = std::strtod(std::string(text).c_str(), nullptr);
    out.push_back(std::move(s));
  }
  return out;
}

std::string label(const series& s, const std::string& name) {
  auto it = s.labels.find(name);
  return it == s.labels.end() ? "" : it->second;
}

/// Lints /metrics with promtool, then scrapes the pel run with a real Prometheus every
/// second and checks the series it stores. `token` empty: no token anywhere. Without
/// `honor_labels`, Prometheus keeps pel's `instance` label as `exported_instance`.
void check_prometheus_scrape(const std::string& token, bool honor_labels) {
  const std::string prometheus = require_program("prometheus");
  const std::string promtool = require_program("promtool");

  std::vector<std::string> extra;
  if (!token.empty()) extra = {"--http-token", token};
  running_pel pel(generator_yaml, extra);
  const std::string host_port = pel.url.substr(std::string("http://").size());

  // promtool: the exposition parses and passes its lint (it prints nothing when clean).
  auto metrics = http_get(pel.url, "/metrics", token);
  REQUIRE(metrics);
  REQUIRE(metrics->status == 200);
  REQUIRE(contains(metrics->body, "pel_records_in_total{"));
  auto lint = run({promtool, "check", "metrics"}, milliseconds(20000), {{}, {}, metrics->body});
  INFO("promtool stdout: " << lint.out << "\npromtool stderr: " << lint.err);
  CHECK(lint.exit_code == 0);
  CHECK(lint.out.empty());
  CHECK(lint.err.empty());
  if (!token.empty()) {
    auto refused = http_get(pel.url, "/metrics");
    REQUIRE(refused);
    CHECK(refused->status == 401);
  }

  // A Prometheus of our own, scraping every second.
  temp_dir dir;
  std::string config =
      "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      "scrape_configs:\n"
      "  - job_name: pel\n    scrape_interval: 1s\n    scrape_timeout: 1s\n";
  if (honor_labels) config += "    honor_labels: true\n";
  const std::string instance_label = honor_labels ? "instance" : "exported_instance";
  if (!token.empty()) config += "    authorization:\n      credentials: " + token + "\n";
  config += "    static_configs:\n      - targets: ['" + host_port + "']\n";
  write_file(dir / "prometheus.yml", config);
  const int port = free_port();
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  process prom({prometheus, "--config.file=" + (dir / "prometheus.yml"),
                "--storage.tsdb.path=" + (dir / "data"),
                "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"});
  struct stopper {
    process& p;
    ~stopper() {
      if (!p.exited()) {
        p.send_signal(SIGTERM);
        p.wait(milliseconds(15000));
      }
    }
  } stop_prometheus{prom};

  // Every component's instances, with pel's labels, and rows counted by all but the source
  // (which is given none: it emits them).
  std::vector<series> in;
  const bool stored = poll_every(
      [&] {
        prom.wait_until([] { return false; }, milliseconds(0));  // keep its pipes drained
        auto r = prometheus_query(base, "pel_records_in_total");
        if (!r) return false;
        in = *r;
        int positive = 0, trades = 0;
        for (const auto& s : in) {
          if (label(s, "pipeline") != "gen" || label(s, instance_label).empty()) continue;
          if (label(s, "component") == "trades")
            ++trades;
          else if (s.value > 0)
            ++positive;
        }
        return trades == 2 && positive == 3;
      },
      milliseconds(60000));
  INFO("prometheus stderr: " << prom.err());
  REQUIRE(stored);
  std::map<std::string, int> instances;
  for (const auto& s : in) {
    CHECK(label(s, "job") == "pel");
    if (!honor_labels) CHECK(label(s, "instance") == host_port);  // Prometheus's own
    instances[label(s, "component")]++;
  }
  CHECK(instances ==
        std::map<std::string, int>{{"trades", 2}, {"large", 1}, {"notional", 1}, {"out", 1}});

  // The source's output rate over the last seconds: about 2 instances x 2000 rows/s.
  double rate = 0;
  const bool rated = poll_every(
      [&] {
        auto r =
            prometheus_query(base, "sum(rate(pel_records_out_total{component=\"trades\"}[5s]))");
        if (!r || r->empty()) return false;
        rate = r->front().value;
        return rate > 0;
      },
      milliseconds(30000));
  REQUIRE(rated);
  CHECK(rate > 1000);
  CHECK(rate < 10000);
}

}  // namespace

TEST_CASE(
    "pel top in a terminal shows every component with live rates, redraws in place, says when the "
    "server is gone and quits on q",
    "[e2e][http][top]") {
  tmux_server tmux;
  running_pel pel(generator_yaml);
  const std::string session = "top";
  auto started = tmux.run({"new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                           pel_binary() + " top --interval 300ms --url " + pel.url});
  INFO(started.err);
  REQUIRE(started.exit_code == 0);

  std::string screen;
  const bool shown = poll_every(
      [&] {
        screen = tmux.capture(session);
        for (const char* c : {"trades", "large", "notional", "out"})
          if (component_row(screen, c).empty()) return false;
        // The sink's IN/S column (4th word: name kind instances in/s) is a non-zero rate.
        auto row = component_row(screen, "out");
        return row.size() > 3 && row[3] != "0" && row[3] != "-";
      },
      milliseconds(20000));
  INFO(screen);
  REQUIRE(shown);
  CHECK(contains(screen, "pipeline gen"));
  CHECK(contains(screen, "state running"));
  CHECK(component_row(screen, "trades")[1] == "src");
  CHECK(component_row(screen, "trades")[2] == "2");
  CHECK(contains(screen, "  [1]"));        // the source's instances, indented under it
  CHECK(contains(screen, "2024-01-02T"));  // watermarks in ISO-8601 on a 120-column screen

  // Redrawn in place: the rows counted go up while the screen keeps one frame, at the top.
  const std::string first = total_in(screen);
  std::string later;
  const bool moved = poll_every(
      [&] {
        screen = tmux.capture(session);
        later = total_in(screen);
        return !later.empty() && later != first;
      },
      milliseconds(10000));
  INFO("first " << first << ", later " << later);
  CHECK(moved);
  CHECK(occurrences(screen, "COMPONENT") == 1);
  CHECK(lines_of(screen).front().rfind("pel top", 0) == 0);

  // The server goes away: pel top says so and keeps trying.
  pel.p->send_signal(SIGTERM);
  pel.p->wait(milliseconds(15000));
  const bool gone = poll_every(
      [&] {
        screen = tmux.capture(session);
        return contains(screen, "the server is gone");
      },
      milliseconds(10000));
  INFO(screen);
  CHECK(gone);
  CHECK(contains(screen, "last seen:"));

  // q quits: the program ends, and with it its window and session.
  REQUIRE(tmux.run({"send-keys", "-t", session, "q"}).exit_code == 0);
  const bool ended = poll_every([&] { return !tmux.has_session(session); }, milliseconds(10000));
  CHECK(ended);
}

TEST_CASE("pel top --once prints one plain frame of 80 columns and exits", "[e2e][http][top]") {
  running_pel pel(generator_yaml);
  process_result r;
  const bool rates = poll_every(
      [&] {
        r = run_pel({"top", "--once", "--url", pel.url}, milliseconds(10000));
        auto row = component_row(r.out, "out");
        return r.exit_code == 0 && row.size() > 3 && row[3] != "0" && row[3] != "-";
      },
      milliseconds(20000));
  INFO(r.out << r.err);
  REQUIRE(rates);
  CHECK(!contains(r.out, "\x1b"));
  for (const auto& line : lines_of(r.out)) CHECK(line.size() <= 80);
  for (const char* c : {"trades", "large", "notional", "out"})
    CHECK(!component_row(r.out, c).empty());

  auto missing = run_pel({"top", "--once", "--url", pel.url, "--pipeline", "nope"});
  CHECK(missing.exit_code == 2);
  CHECK(contains(missing.err, "no pipeline 'nope'"));
}

TEST_CASE("pel tap prints a component's sampled rows as JSON lines and stops at --limit",
          "[e2e][http][tap]") {
  running_pel pel(generator_yaml);
  auto r = run_pel({"tap", "notional", "--limit", "5", "--rate", "100", "--url", pel.url},
                   milliseconds(30000));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = parse_json_lines(r.out);
  REQUIRE(rows.size() == 5);
  for (const auto& row : rows) {
    // The map's output: the trade's fields and the computed one.
    CHECK(row.num("notional") == Approx(row.num("price") * row.num("qty")));
    CHECK(row.num("qty") >= 100);
    CHECK(!row.str("symbol").empty());
  }

  auto unknown = run_pel({"tap", "nope", "--limit", "1", "--url", pel.url});
  CHECK(unknown.exit_code == 2);
  CHECK(contains(unknown.err, "nope"));
  CHECK(unknown.out.empty());
  auto bad_port = run_pel({"tap", "notional.sideways", "--limit", "1", "--url", pel.url});
  CHECK(bad_port.exit_code == 2);
  CHECK(contains(bad_port.err, "sideways"));
  auto wrong_pipeline =
      run_pel({"tap", "notional", "--pipeline", "other", "--limit", "1", "--url", pel.url});
  CHECK(wrong_pipeline.exit_code == 2);
}

TEST_CASE("pel tap of a dead_letter port prints the dead letters with their reason",
          "[e2e][http][tap]") {
  running_pel pel(bad_records_yaml);
  auto r = run_pel({"tap", "averages.dead_letter", "--limit", "3", "--url", pel.url},
                   milliseconds(30000));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto rows = parse_json_lines(r.out);
  REQUIRE(rows.size() == 3);
  for (const auto& row : rows) {
    CHECK(contains(row.str("reason"), "expected a number for temperature"));
    CHECK(contains(row.str("record"), "\"ERR\""));
  }
}

TEST_CASE("pel tap and pel top exit 1 when no server answers", "[e2e][http][tap]") {
  const std::string url = "http://127.0.0.1:" + std::to_string(free_port());
  auto tap = run_pel({"tap", "x", "--url", url});
  CHECK(tap.exit_code == 1);
  CHECK(contains(tap.err, "cannot connect"));
  auto top = run_pel({"top", "--once", "--url", url});
  CHECK(top.exit_code == 1);
  CHECK(contains(top.err, "cannot connect"));
}

TEST_CASE(
    "Prometheus scrapes pel run --http: promtool accepts /metrics, queries return every instance's "
    "series and the source's rate",
    "[e2e][http][prometheus]") {
  check_prometheus_scrape("", true);
}

TEST_CASE(
    "Prometheus scrapes pel run --http with a bearer token, pel's instance label as "
    "exported_instance by default",
    "[e2e][http][prometheus]") {
  check_prometheus_scrape("s3cret-token", false);
}
