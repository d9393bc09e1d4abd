// `pel tap COMPONENT[.port]`: the rows a component of a running `pel run --http` sends on a
// port, sampled by the server (GET /api/v1/pipelines/{name}/tap, docs/api.md), printed as
// JSON lines on stdout until --limit rows, Ctrl-C or the end of the stream.

#include "api_client.hpp"
#include "commands.hpp"

#include <pthread.h>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

namespace pel::cli {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_invalid = 2;

struct tap_args {
  std::string target;  ///< COMPONENT or COMPONENT.port
  std::string url = "http://127.0.0.1:8080";
  std::string token;
  std::string pipeline;
  int rate = 10;
  std::size_t limit = 0;  ///< 0: no limit
};

/// Exit code for a reply that is not 200: the server's 400/404 (what was asked for does not
/// exist) and 401 (the token) are the user's to fix; anything else is a failure.
int exit_code_of(const api_reply& r) {
  if (!r.reached()) return exit_failure;
  return r.status == 400 || r.status == 401 || r.status == 404 ? exit_invalid : exit_failure;
}

int report(const api_reply& r, const std::string& what) {
  std::string text = r.error_text();
  if (r.status == 401) text += " (give the server's token with --token or PEL_HTTP_TOKEN)";
  std::cerr << "pel tap: " << what << ": " << text << "\n";
  return exit_code_of(r);
}

/// The pipeline to tap: `--pipeline`, the only one running, or the only one that has the
/// component. Returns the exit code on failure (with the message printed), 0 otherwise.
int choose_pipeline(api_client& client, const tap_args& a, const std::string& component,
                    std::string& chosen) {
  if (!a.pipeline.empty()) {
    chosen = a.pipeline;
    return exit_ok;
  }
  auto list = client.get("/api/v1/pipelines");
  if (list.status != 200) return report(list, "listing the pipelines");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(list.body).get(doc)) {
    std::cerr << "pel tap: the server's pipeline list is not JSON\n";
    return exit_failure;
  }
  std::vector<std::string> names;
  for (auto p : json_array(doc, "pipelines")) names.push_back(json_string(p, "name"));
  if (names.empty()) {
    std::cerr << "pel tap: the server at " << client.url() << " runs no pipeline\n";
    return exit_failure;
  }
  if (names.size() == 1) {
    chosen = names.front();
    return exit_ok;
  }
  std::vector<std::string> having;
  for (const auto& n : names) {
    auto g = client.get("/api/v1/pipelines/" + url_encode(n));
    if (g.status != 200) continue;
    simdjson::dom::parser gp;
    simdjson::dom::element graph;
    if (gp.parse(g.body).get(graph)) continue;
    for (auto c : json_array(graph, "components"))
      if (json_string(c, "name") == component) having.push_back(n);
  }
  std::string all;
  for (const auto& n : names) all += (all.empty() ? "" : ", ") + n;
  if (having.size() == 1) {
    chosen = having.front();
    return exit_ok;
  }
  if (having.empty())
    std::cerr << "pel tap: no pipeline has a component '" << component << "' (pipelines: " << all
              << ")\n";
  else
    std::cerr << "pel tap: several pipelines have a component '" << component
              << "': choose one with --pipeline (pipelines: " << all << ")\n";
  return exit_invalid;
}

/// Splits the NDJSON stream into lines and prints each line's `record` on stdout.
class line_printer {
public:
  explicit line_printer(std::size_t limit) : limit_(limit) {}

  /// Returns false once the limit is reached.
  bool feed(std::string_view data) {
    buffer_.append(data.data(), data.size());
    std::size_t start = 0;
    for (;;) {
      auto nl = buffer_.find('\n', start);
      if (nl == std::string::npos) break;
      const bool more = print(std::string_view(buffer_).substr(start, nl - start));
      start = nl + 1;
      if (!more) {
        buffer_.clear();
        return false;
      }
    }
    buffer_.erase(0, start);
    return true;
  }

  std::size_t printed() const noexcept { return printed_; }

private:
  bool print(std::string_view line) {
    if (line.empty() || line == "\r") return true;
    simdjson::dom::element doc, record;
    if (parser_.parse(line.data(), line.size()).get(doc) || doc["record"].get(record)) {
      std::fprintf(stderr, "pel tap: skipped a line that is not a tapped row: %.*s\n",
                   static_cast<int>(std::min<std::size_t>(line.size(), 200)), line.data());
      return true;
    }
    const std::string text = simdjson::to_string(record);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    ++printed_;
    return limit_ == 0 || printed_ < limit_;
  }

  std::size_t limit_;
  std::size_t printed_ = 0;
  std::string buffer_;
  simdjson::dom::parser parser_;
};

int run_tap(const tap_args& a) {
  std::string component = a.target, port = "main";
  if (auto dot = a.target.rfind('.'); dot != std::string::npos) {
    component = a.target.substr(0, dot);
    port = a.target.substr(dot + 1);
  }
  if (component.empty() || port.empty()) {
    std::cerr << "pel tap: '" << a.target << "' is not COMPONENT or COMPONENT.port\n";
    return exit_invalid;
  }
  std::unique_ptr<api_client> client;
  try {
    client = std::make_unique<api_client>(a.url, token_or_env(a.token));
  } catch (const std::exception& e) {
    std::cerr << "pel tap: --url: " << e.what() << "\n";
    return exit_invalid;
  }
  std::string pipeline;
  if (int rc = choose_pipeline(*client, a, component, pipeline); rc != exit_ok) return rc;

  std::string path = "/api/v1/pipelines/" + url_encode(pipeline) +
                     "/tap?component=" + url_encode(component) + "&port=" + url_encode(port) +
                     "&rate=" + std::to_string(a.rate);
  if (a.limit > 0) path += "&limit=" + std::to_string(a.limit);

  // The stream runs on a thread of its own; this one waits for SIGINT/SIGTERM (blocked in
  // every thread since main() started) and cancels the request when one comes.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  line_printer printer(a.limit);
  std::atomic<bool> done{false}, interrupted{false};
  api_reply reply;
  std::thread streamer([&] {
    reply = client->stream(
        path, [&](std::string_view data) { return !interrupted.load() && printer.feed(data); });
    done.store(true);
  });
  while (!done.load()) {
    timespec wait{0, 100'000'000};
    if (sigtimedwait(&stop_signals, nullptr, &wait) > 0) {
      interrupted.store(true);
      client->stop();
      break;
    }
  }
  streamer.join();

  if (interrupted.load() || (a.limit > 0 && printer.printed() >= a.limit)) return exit_ok;
  if (!reply.reached())
    return report(reply, "tapping " + component + "." + port + " of pipeline " + pipeline);
  if (reply.status != 200)
    return report(reply, "tapping " + component + "." + port + " of pipeline " + pipeline);
  std::cerr << "pel tap: the stream ended after " << printer.printed() << " rows\n";
  return exit_ok;
}

}  // namespace

command tap_command() {
  auto args = std::make_shared<tap_args>();
  command c;
  c.add = [args](CLI::App& app) {
    auto* sub = app.add_subcommand(
        "tap",
        "Print rows a component of a running `pel run --http` sends, sampled by the server, as "
        "JSON lines (until --limit, Ctrl-C or the end of the stream)");
    sub->add_option("target", args->target,
                    "COMPONENT or COMPONENT.port (port: main, dead_letter or late; default main)")
        ->required();
    sub->add_option("--url", args->url, "The server of `pel run --http` (http://host:port)")
        ->capture_default_str();
    sub->add_option("--token", args->token,
                    "Bearer token of the server (default: the environment variable "
                    "PEL_HTTP_TOKEN)");
    sub->add_option("--pipeline", args->pipeline,
                    "The pipeline (default: the only one, or the one that has the component)");
    sub->add_option("--rate", args->rate, "At most this many rows a second")
        ->check(CLI::Range(1, 1000))
        ->capture_default_str();
    sub->add_option("--limit", args->limit, "Stop after this many rows (default: no limit)")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40));
    return sub;
  };
  c.run = [args] { return run_tap(*args); };
  return c;
}

}  // namespace pel::cli
