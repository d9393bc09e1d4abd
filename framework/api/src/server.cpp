#include "pel/api/server.hpp"

#include "dashboard_files.hpp"
#include "pel/api/render.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace pel::api {

namespace {

using wall = std::chrono::system_clock;

const char* const json_type = "application/json";

/// Compares in time that depends only on the lengths, not on where the texts differ.
bool same_secret(std::string_view a, std::string_view b) {
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string content_type_of(const std::string& name) {
  const auto dot = name.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : name.substr(dot + 1);
  if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "json") return "application/json";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "woff2") return "font/woff2";
  if (ext == "txt" || ext == "md") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

/// The value of cookie `name` in a Cookie header, or "".
std::string cookie_value(const std::string& header, const std::string& name) {
  std::size_t pos = 0;
  while (pos < header.size()) {
    auto end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    std::string item = header.substr(pos, end - pos);
    const auto first = item.find_first_not_of(' ');
    item = first == std::string::npos ? "" : item.substr(first);
    if (item.compare(0, name.size() + 1, name + "=") == 0) return item.substr(name.size() + 1);
    pos = end + 1;
  }
  return {};
}

/// The host of a Host header value (`127.0.0.1:8080` -> `127.0.0.1`, `[::1]:80` -> `::1`).
std::string host_of(const std::string& header) {
  if (!header.empty() && header.front() == '[') {
    const auto close = header.find(']');
    return close == std::string::npos ? header : header.substr(1, close - 1);
  }
  return header.substr(0, header.find(':'));
}

/// Rows of one tap stream, handed from the instances' threads to the HTTP thread. Bounded:
/// when the client reads slower than the rows come, the newest are dropped and counted.
struct tap_queue {
  static constexpr std::size_t capacity = 1000;
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::pair<std::int64_t, std::string>> rows;  ///< (at_ms, row JSON)
  std::uint64_t dropped = 0;
  bool closing = false;  ///< the server is stopping

  void push(const std::string& json) {
    const auto at_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(wall::now().time_since_epoch())
            .count();
    {
      std::lock_guard<std::mutex> lock(m);
      if (rows.size() >= capacity) {
        ++dropped;
        return;
      }
      rows.emplace_back(at_ms, json);
    }
    cv.notify_one();
  }
};

}  // namespace

bool is_loopback(const std::string& host) {
  if (host == "localhost" || host == "::1" || host == "[::1]") return true;
  in_addr a{};
  if (inet_pton(AF_INET, host.c_str(), &a) == 1) return (ntohl(a.s_addr) >> 24) == 127;
  return false;
}

// ---- the server's state ---------------------------------------------------------------------

struct server::impl {
  /// One served pipeline: its job and the sampler's view of it.
  struct pipeline {
    std::string name, file;
    runtime::job* job = nullptr;
    std::shared_ptr<const sample> prev, cur;  ///< guarded by `m`
    std::deque<history_point> history;        ///< guarded by `m`
  };

  explicit impl(settings s) : cfg(std::move(s)) {}

  settings cfg;
  std::vector<pipeline> pipelines;
  httplib::Server http;
  std::thread listener, sampler;
  std::mutex m;  ///< guards the samples, the histograms and `taps`
  std::condition_variable wake;
  bool stopping = false;
  bool started = false;
  std::atomic<bool> listener_done{false};  ///< listen_after_bind returned
  request_histograms requests;
  std::vector<std::weak_ptr<tap_queue>> taps;

  // ---- sampling --------------------------------------------------------------------------

  static std::shared_ptr<const sample> take(const runtime::job& j) {
    auto s = std::make_shared<sample>();
    s->graph = j.graph();
    s->status = j.status();
    return s;
  }

  void sample_all() {
    std::vector<std::shared_ptr<const sample>> fresh;
    fresh.reserve(pipelines.size());
    for (auto& p : pipelines) fresh.push_back(take(*p.job));
    std::lock_guard<std::mutex> lock(m);
    for (std::size_t i = 0; i < pipelines.size(); ++i) {
      auto& p = pipelines[i];
      p.prev = p.cur ? p.cur : fresh[i];
      p.cur = std::move(fresh[i]);
      if (p.prev != p.cur) {
        p.history.push_back(make_history_point(*p.prev, *p.cur));
        while (p.history.size() > cfg.history_points) p.history.pop_front();
      }
    }
  }

  void run_sampler() {
    const auto period = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(cfg.sample_interval_s));
    auto next = std::chrono::steady_clock::now() + period;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(m);
        if (wake.wait_until(lock, next, [this] { return stopping; })) return;
      }
      next += period;
      // After a long stall, sample at once and keep the cadence from now on.
      if (next < std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now() + period;
      try {
        sample_all();
      } catch (const std::exception& e) {
        spdlog::warn("HTTP API: sampling failed: {}", e.what());
      }
    }
  }

  /// The pipeline named `name`, or nullptr.
  pipeline* find(const std::string& name) {
    for (auto& p : pipelines)
      if (p.name == name) return &p;
    return nullptr;
  }

  /// The two latest samples of `p`, read under the lock.
  std::pair<std::shared_ptr<const sample>, std::shared_ptr<const sample>> latest(
      const pipeline& p) {
    std::lock_guard<std::mutex> lock(m);
    return {p.prev, p.cur};
  }

  // ---- routing ----------------------------------------------------------------------------

  static void reply(httplib::Response& res, int status, std::string body,
                    const char* type = json_type) {
    res.status = status;
    res.set_content(std::move(body), type);
  }

  static void error(httplib::Response& res, int status, const std::string& text) {
    reply(res, status, render_error(text));
  }

  /// Registers a GET route whose duration is counted under `label`.
  void route(const std::string& pattern, const std::string& label,
             std::function<void(const httplib::Request&, httplib::Response&)> fn) {
    http.Get(pattern, [this, label, fn = std::move(fn)](const httplib::Request& req,
                                                        httplib::Response& res) {
      const auto t0 = std::chrono::steady_clock::now();
      fn(req, res);
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::lock_guard<std::mutex> lock(m);
      requests.observe(label, secs);
    });
  }

  /// A route on one pipeline, `/api/v1/pipelines/{name}<suffix>`; `fn` gets its samples.
  void pipeline_route(
      const std::string& suffix,
      std::function<std::string(const pipeline&, const sample& prev, const sample& cur)> fn) {
    route("/api/v1/pipelines/([^/]+)" + suffix, "/api/v1/pipelines/{name}" + suffix,
          [this, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
            const auto* p = find(req.matches[1]);
            if (p == nullptr)
              return error(res, 404, "no pipeline named '" + std::string(req.matches[1]) + "'");
            auto [prev, cur] = latest(*p);
            reply(res, 200, fn(*p, *prev, *cur));
          });
  }

  /// Debian's cpp-httplib compresses answers with brotli whenever a client accepts it (every
  /// browser does), at brotli's slowest level: 7 s for a 1.7 MB history of 50 components
  /// against 50 ms with gzip. Brotli is taken out of the accepted encodings so that httplib
  /// uses gzip. The request is httplib's own object, handed to this handler as const.
  static void prefer_gzip(const httplib::Request& req) {
    auto& headers = const_cast<httplib::Request&>(req).headers;
    auto it = headers.find("Accept-Encoding");
    if (it == headers.end() || it->second.find("br") == std::string::npos) return;
    std::string kept;
    std::size_t start = 0;
    while (start <= it->second.size()) {
      auto comma = it->second.find(',', start);
      if (comma == std::string::npos) comma = it->second.size();
      std::string token = it->second.substr(start, comma - start);
      const auto b = token.find_first_not_of(' ');
      token = b == std::string::npos ? "" : token.substr(b);
      if (!token.empty() && token.compare(0, 2, "br") != 0) kept += (kept.empty() ? "" : ", ") + token;
      start = comma + 1;
    }
    it->second = kept;
  }

  /// Refuses what the API does not do (405), and requests without the token (401).
  httplib::Server::HandlerResponse check(const httplib::Request& req, httplib::Response& res) {
    prefer_gzip(req);
    if (req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", "GET, HEAD");
      error(res, 405, "the API is read-only: only GET and HEAD are allowed");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (cfg.token.empty()) {
      // Without a token the server is on loopback: a request naming another host reached it
      // through a name that resolves to 127.0.0.1 (DNS rebinding from a web page).
      // (Browsers always send Host; a client without one is not a web page.)
      const std::string host = host_of(req.get_header_value("Host"));
      if (!host.empty() && !is_loopback(host)) {
        error(res, 403, "the Host header must name this machine (127.0.0.1, localhost or [::1])");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string auth = req.get_header_value("Authorization");
    const std::string bearer = "Bearer ";
    if (auth.compare(0, bearer.size(), bearer) == 0 &&
        same_secret(auth.substr(bearer.size()), cfg.token))
      return httplib::Server::HandlerResponse::Unhandled;
    // The dashboard's files may also be asked for with `?token=` (the page's address) or the
    // cookie set then (its scripts and styles, which a browser loads without our header).
    const bool dashboard = req.path.compare(0, 5, "/api/") != 0 && req.path != "/metrics";
    if (dashboard) {
      if (req.has_param("token") && same_secret(req.get_param_value("token"), cfg.token)) {
        res.set_header("Set-Cookie",
                       "pel_token=" + cfg.token + "; Path=/; HttpOnly; SameSite=Strict");
        return httplib::Server::HandlerResponse::Unhandled;
      }
      if (same_secret(cookie_value(req.get_header_value("Cookie"), "pel_token"), cfg.token))
        return httplib::Server::HandlerResponse::Unhandled;
    }
    res.set_header("WWW-Authenticate", "Bearer");
    error(res, 401, "a token is required: send the header 'Authorization: Bearer TOKEN'");
    return httplib::Server::HandlerResponse::Handled;
  }

  void add_routes() {
    http.set_pre_routing_handler(
        [this](const httplib::Request& req, httplib::Response& res) { return check(req, res); });
    http.set_default_headers(
        {{"X-Content-Type-Options", "nosniff"}, {"Cache-Control", "no-store"}});

    route("/api/v1/pipelines", "/api/v1/pipelines",
          [this](const httplib::Request&, httplib::Response& res) {
            std::vector<std::shared_ptr<const sample>> keep;
            std::vector<pipeline_view> views;
            for (const auto& p : pipelines) {
              auto [prev, cur] = latest(p);
              views.push_back({p.name, p.file, prev.get(), cur.get()});
              keep.push_back(std::move(prev));
              keep.push_back(std::move(cur));
            }
            reply(res, 200, render_pipelines(views));
          });
    // The graph is read now: parallelism follows rescales at once.
    route("/api/v1/pipelines/([^/]+)", "/api/v1/pipelines/{name}",
          [this](const httplib::Request& req, httplib::Response& res) {
            const auto* p = find(req.matches[1]);
            if (p == nullptr)
              return error(res, 404, "no pipeline named '" + std::string(req.matches[1]) + "'");
            sample now;
            now.graph = p->job->graph();
            now.status.state = latest(*p).second->status.state;
            now.status.error = latest(*p).second->status.error;
            reply(res, 200, render_pipeline({p->name, p->file, &now, &now}));
          });
    pipeline_route("/instances", [](const pipeline&, const sample& a, const sample& b) {
      return render_instances(a, b);
    });
    pipeline_route("/sources", [](const pipeline&, const sample& a, const sample& b) {
      return render_sources(a, b);
    });
    pipeline_route("/dead-letters", [](const pipeline&, const sample&, const sample& b) {
      return render_dead_letters(b.status);
    });
    pipeline_route("/late", [](const pipeline&, const sample&, const sample& b) {
      return render_late(b.status);
    });
    pipeline_route("/checkpoints", [](const pipeline&, const sample&, const sample& b) {
      return render_checkpoints(b.status);
    });
    pipeline_route("/restarts", [](const pipeline&, const sample&, const sample& b) {
      return render_restarts(b.status);
    });
    pipeline_route("/scaling", [](const pipeline&, const sample&, const sample& b) {
      return render_scaling(b.status);
    });
    pipeline_route("/history", [this](const pipeline& p, const sample&, const sample&) {
      std::deque<history_point> copy;
      {
        std::lock_guard<std::mutex> lock(m);
        copy = p.history;
      }
      return render_history(copy, cfg.sample_interval_s);
    });
    route("/api/v1/pipelines/([^/]+)/tap", "/api/v1/pipelines/{name}/tap",
          [this](const httplib::Request& req, httplib::Response& res) { start_tap(req, res); });
    // Counters are read on scrape, not from the sampler's last reading.
    route("/metrics", "/metrics", [this](const httplib::Request&, httplib::Response& res) {
      std::vector<std::shared_ptr<const sample>> now;
      std::vector<metrics_input> in;
      for (auto& p : pipelines) now.push_back(take(*p.job));
      for (std::size_t i = 0; i < pipelines.size(); ++i)
        in.push_back({pipelines[i].name, &now[i]->status, &now[i]->graph});
      request_histograms copy;
      {
        std::lock_guard<std::mutex> lock(m);
        copy = requests;
      }
      reply(res, 200, render_metrics(in, copy), "text/plain; version=0.0.4; charset=utf-8");
    });
    route("/api(/.*)?", "/api", [](const httplib::Request& req, httplib::Response& res) {
      error(res, 404, "no such endpoint: " + req.path + " (see docs/api.md)");
    });
    // The dashboard: its files are built into the binary.
    route("/(.*)", "/", [](const httplib::Request& req, httplib::Response& res) {
      std::string name = req.matches[1];
      if (name.empty()) name = "index.html";
      for (std::size_t i = 0; i < detail::dashboard_file_count; ++i) {
        const auto& f = detail::dashboard_files[i];
        if (name != f.name) continue;
        res.set_content(reinterpret_cast<const char*>(f.data), f.size,
                        content_type_of(name).c_str());
        return;
      }
      error(res, 404, "no such file: /" + name);
    });
  }

  // ---- tap streams ---------------------------------------------------------------------------

  void start_tap(const httplib::Request& req, httplib::Response& res) {
    auto* p = find(req.matches[1]);
    if (p == nullptr)
      return error(res, 404, "no pipeline named '" + std::string(req.matches[1]) + "'");
    if (!req.has_param("component")) return error(res, 400, "component=NAME is required");
    const std::string component = req.get_param_value("component");
    const std::string port = req.has_param("port") ? req.get_param_value("port") : "main";
    if (port != "main" && port != "late" && port != "dead_letter")
      return error(res, 400, "port must be main, late or dead_letter, found '" + port + "'");
    double per_second = 10;
    std::uint64_t limit = 0;
    try {
      if (req.has_param("rate")) {
        std::size_t used = 0;
        const std::string v = req.get_param_value("rate");
        per_second = std::stod(v, &used);
        if (used != v.size() || !(per_second > 0) || per_second > 1000)
          throw std::invalid_argument(v);
      }
    } catch (const std::exception&) {
      return error(
          res, 400,
          "rate must be rows per second in (0, 1000], found '" + req.get_param_value("rate") + "'");
    }
    try {
      if (req.has_param("limit")) {
        std::size_t used = 0;
        const std::string v = req.get_param_value("limit");
        if (v.empty() || v[0] == '-') throw std::invalid_argument(v);
        limit = std::stoull(v, &used);
        if (used != v.size() || limit == 0) throw std::invalid_argument(v);
      }
    } catch (const std::exception&) {
      return error(res, 400,
                   "limit must be a whole number of rows above 0, found '" +
                       req.get_param_value("limit") + "'");
    }
    const auto graph = p->job->graph();
    const bool known = std::any_of(graph.components.begin(), graph.components.end(),
                                   [&](const auto& c) { return c.name == component; });
    if (!known)
      return error(res, 404,
                   "pipeline '" + p->name + "' has no component named '" + component + "'");

    auto q = std::make_shared<tap_queue>();
    const std::uint64_t id =
        p->job->tap(component, port, per_second, [q](const std::string& json) { q->push(json); });
    if (id == 0) return error(res, 404, "component '" + component + "' has no port '" + port + "'");
    {
      std::lock_guard<std::mutex> lock(m);
      taps.erase(
          std::remove_if(taps.begin(), taps.end(), [](const auto& w) { return w.expired(); }),
          taps.end());
      taps.push_back(q);
      if (stopping) q->closing = true;
    }
    auto* job = p->job;
    auto untapped = std::make_shared<std::atomic<bool>>(false);
    auto untap = [job, id, untapped] {
      if (!untapped->exchange(true)) job->untap(id);
    };
    auto sent = std::make_shared<std::uint64_t>(0);
    auto* self = this;
    const pipeline* pp = p;
    res.set_chunked_content_provider(
        "application/x-ndjson",
        [q, sent, limit, component, port, untap, self, pp](std::size_t, httplib::DataSink& sink) {
          std::deque<std::pair<std::int64_t, std::string>> batch;
          {
            std::unique_lock<std::mutex> lock(q->m);
            q->cv.wait_for(lock, std::chrono::milliseconds(250),
                           [&] { return !q->rows.empty() || q->closing; });
            if (q->closing) {
              lock.unlock();
              untap();
              sink.done();
              return true;
            }
            batch.swap(q->rows);
          }
          if (batch.empty()) {
            // Nothing to send: end with a finished job, else see whether the client is still there.
            if (self->finished(*pp)) {
              untap();
              sink.done();
              return true;
            }
            return sink.is_writable();
          }
          std::string out;
          for (const auto& [at_ms, row] : batch) {
            if (limit > 0 && *sent >= limit) break;
            out += render_tap_line(component, port, at_ms, row);
            out += '\n';
            ++*sent;
          }
          if (!sink.write(out.data(), out.size())) {
            untap();
            return false;
          }
          if (limit > 0 && *sent >= limit) {
            untap();
            sink.done();
          }
          return true;
        },
        [untap, q, sent, component, port](bool) {
          untap();
          std::lock_guard<std::mutex> lock(q->m);
          spdlog::debug(
              "HTTP API: tap of {} ({}) ended: {} rows sent, {} dropped for a slow client",
              component, port, *sent, q->dropped);
        });
  }

  /// True when the pipeline's last sample shows it ended.
  bool finished(const pipeline& p) {
    std::lock_guard<std::mutex> lock(m);
    return p.cur && (p.cur->status.state == "finished" || p.cur->status.state == "failed");
  }
};

// ---- server -----------------------------------------------------------------------------------

server::server(settings s) : impl_(std::make_unique<impl>(std::move(s))) {}

server::~server() {
  stop();
}

void server::add(const std::string& name, const std::string& file, runtime::job& job) {
  if (impl_->started) throw std::logic_error("pel::api::server::add after start");
  impl::pipeline p;
  p.name = name;
  p.file = file;
  p.job = &job;
  impl_->pipelines.push_back(std::move(p));
}

int server::start() {
  auto& d = *impl_;
  if (d.started) throw std::logic_error("pel::api::server::start called twice");
  if (!is_loopback(d.cfg.host) && d.cfg.token.empty())
    throw std::runtime_error(
        "refusing to serve the HTTP API on " + d.cfg.host +
        " without a token: set --http-token TOKEN (or PEL_HTTP_TOKEN), or bind "
        "127.0.0.1");
  if (d.cfg.port < 0 || d.cfg.port > 65535)
    throw std::runtime_error("HTTP port must be from 0 to 65535, found " +
                             std::to_string(d.cfg.port));
  d.sample_all();
  d.add_routes();
  // Tap streams hold a thread each while they run.
  d.http.new_task_queue = [] { return new httplib::ThreadPool(16); };
  d.http.set_keep_alive_timeout(2);
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second server
  // bind a port that is taken instead of failing.
  d.http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  const std::string host =
      d.cfg.host.size() > 2 && d.cfg.host.front() == '[' && d.cfg.host.back() == ']'
          ? d.cfg.host.substr(1, d.cfg.host.size() - 2)
          : d.cfg.host;
  int port = d.cfg.port;
  if (port == 0)
    port = d.http.bind_to_any_port(host);
  else if (!d.http.bind_to_port(host, port))
    port = -1;
  if (port <= 0)
    throw std::runtime_error("cannot listen on " + d.cfg.host + ":" + std::to_string(d.cfg.port) +
                             " (the port is taken, or the address is not one of this machine's); "
                             "choose another with --http HOST:PORT (port 0 picks a free one)");
  d.started = true;
  d.listener = std::thread([&d] {
    d.http.listen_after_bind();
    d.listener_done = true;
  });
  // Return once it accepts: httplib's stop() does nothing before the listener runs, so a stop
  // right after start would leave the listener in accept() for good.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!d.http.is_running() && !d.listener_done && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  d.sampler = std::thread([&d] { d.run_sampler(); });
  return port;
}

void server::stop() {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> lock(d.m);
    if (d.stopping) return;
    d.stopping = true;
    for (auto& w : d.taps)
      if (auto q = w.lock()) {
        std::lock_guard<std::mutex> ql(q->m);
        q->closing = true;
        q->cv.notify_all();
      }
  }
  d.wake.notify_all();
  if (!d.started) return;
  d.http.stop();
  if (d.listener.joinable()) d.listener.join();
  if (d.sampler.joinable()) d.sampler.join();
}

}  // namespace pel::api
