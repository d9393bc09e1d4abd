// The HTTP API server on a loopback port in front of a real job: a generator pipeline run by
// `runtime::job`, read through cpp-httplib's client.
#include "pel/api/server.hpp"

#include "pel/connectors/register.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/runtime/job.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/testing/poll.hpp"

#include <httplib.h>
#include <simdjson.h>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

using namespace pel;
using namespace std::chrono_literals;

namespace {

/// A generator (2,000 rows a second) through a filter into a discarding sink, running.
struct running_job {
  spec::registry reg;
  plan::physical_plan plan;
  std::unique_ptr<runtime::job> job;

  running_job() {
    operators::register_builtin_operators(reg);
    connectors::register_builtin_connectors(reg);
    const std::string yaml =
        "pipeline:\n"
        "  name: gen\n"
        "sources:\n"
        "  trades:\n"
        "    type: generator\n"
        "    profile: trades\n"
        "    rate: 2000\n"
        "operators:\n"
        "  big:\n"
        "    type: filter\n"
        "    input: trades\n"
        "    where: qty >= 100\n"
        "sinks:\n"
        "  out:\n"
        "    type: discard\n"
        "    input: big\n";
    plan = plan::build(spec::load_text(yaml, "gen.yaml", reg), reg);
    job = std::make_unique<runtime::job>(plan);
    job->start();
  }
  ~running_job() {
    job->stop(true);
    job->wait_for(10s);
  }
};

/// A field of a JSON document as a number (integers too).
double number_at(const std::string& body, const std::string& pointer) {
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  INFO(body);
  REQUIRE(p.parse(body).get(doc) == simdjson::SUCCESS);
  double d = 0;
  REQUIRE(doc.at_pointer(pointer).get_double().get(d) == simdjson::SUCCESS);
  return d;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("the server answers every endpoint from a running job", "[api][http]") {
  running_job rj;
  api::server srv(api::settings{});
  srv.add("gen", "gen.yaml", *rj.job);
  const int port = srv.start();
  REQUIRE(port > 0);
  httplib::Client cli("127.0.0.1", port);

  // Rates come from two samples: wait for one interval with rows flowing.
  double rate = 0;
  REQUIRE(testing::poll_until(
      [&] {
        auto r = cli.Get("/api/v1/pipelines");
        if (!r || r->status != 200) return false;
        simdjson::dom::parser p;
        simdjson::dom::element doc;
        if (p.parse(r->body).get(doc) != simdjson::SUCCESS) return false;
        double x = 0;
        if (doc.at_pointer("/pipelines/0/records_in_per_s").get_double().get(x) !=
            simdjson::SUCCESS)
          return false;
        rate = x;
        return x > 0;
      },
      10s, 50ms));
  CHECK(rate > 500);
  CHECK(rate < 5000);

  for (const char* path :
       {"/api/v1/pipelines/gen", "/api/v1/pipelines/gen/instances", "/api/v1/pipelines/gen/sources",
        "/api/v1/pipelines/gen/dead-letters", "/api/v1/pipelines/gen/late",
        "/api/v1/pipelines/gen/checkpoints", "/api/v1/pipelines/gen/restarts",
        "/api/v1/pipelines/gen/scaling", "/api/v1/pipelines/gen/history"}) {
    auto r = cli.Get(path);
    INFO(path);
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Type") == "application/json");
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    CHECK(p.parse(r->body).get(doc) == simdjson::SUCCESS);
  }
  auto inst = cli.Get("/api/v1/pipelines/gen/instances");
  REQUIRE(inst);
  CHECK(number_at(inst->body, "/instances/1/records_in_per_s") > 0);
  CHECK(number_at(inst->body, "/interval_s") == Approx(1.0).margin(0.3));

  auto missing = cli.Get("/api/v1/pipelines/nope/instances");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(missing->body.find("\"error\"") != std::string::npos);

  auto metrics = cli.Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK(metrics->get_header_value("Content-Type").find("version=0.0.4") != std::string::npos);
  CHECK(metrics->body.find(
            "pel_records_out_total{pipeline=\"gen\",component=\"trades\",instance=\"0\"}") !=
        std::string::npos);
  // The API's own requests so far are in its histogram, by route: three to instances (the
  // one for a missing pipeline too).
  INFO(metrics->body);
  CHECK(metrics->body.find("pel_http_request_duration_seconds_count{path=\"/api/v1/pipelines/"
                           "{name}/instances\"} 3\n") != std::string::npos);

  // Read-only.
  auto post = cli.Post("/api/v1/pipelines", "{}", "application/json");
  REQUIRE(post);
  CHECK(post->status == 405);
  auto del = cli.Delete("/api/v1/pipelines/gen");
  REQUIRE(del);
  CHECK(del->status == 405);
}

TEST_CASE("the dashboard is served from the files built in", "[api][http]") {
  running_job rj;
  api::server srv(api::settings{});
  srv.add("gen", "gen.yaml", *rj.job);
  httplib::Client cli("127.0.0.1", srv.start());
  const std::string index = read_file(PEL_SOURCE_DIR "/framework/api/dashboard/index.html");
  auto r = cli.Get("/");
  REQUIRE(r);
  if (index.empty()) {
    CHECK(r->status == 404);
  } else {
    CHECK(r->status == 200);
    CHECK(r->body == index);
    CHECK(r->get_header_value("Content-Type") == "text/html; charset=utf-8");
  }
  auto none = cli.Get("/no-such-file.js");
  REQUIRE(none);
  CHECK(none->status == 404);
  // The folder's README is not part of the page.
  auto readme = cli.Get("/README.md");
  REQUIRE(readme);
  CHECK(readme->status == 404);
}

TEST_CASE("a client that accepts brotli gets gzip, which is quick", "[api][http]") {
  running_job rj;
  api::server srv(api::settings{});
  srv.add("gen", "gen.yaml", *rj.job);
  httplib::Client cli("127.0.0.1", srv.start());
  cli.set_decompress(false);
  // What browsers send; brotli at the library's level took seconds for a large history.
  for (const char* path : {"/api/v1/pipelines/gen/history", "/metrics", "/app.js"}) {
    INFO(path);
    auto r = cli.Get(path, {{"Accept-Encoding", "gzip, deflate, br, zstd"}});
    REQUIRE(r);
    if (r->status == 404) continue;  // a dashboard file not there (no page built in)
    CHECK(r->status == 200);
    CHECK(r->get_header_value("Content-Encoding") == "gzip");
  }
  auto only_br = cli.Get("/metrics", {{"Accept-Encoding", "br"}});
  REQUIRE(only_br);
  CHECK(only_br->status == 200);
  CHECK(only_br->get_header_value("Content-Encoding").empty());
  CHECK(only_br->body.find("pel_records_in_total") != std::string::npos);
}

TEST_CASE("a tap streams the component's rows as JSON lines up to the limit", "[api][http]") {
  running_job rj;
  api::server srv(api::settings{});
  srv.add("gen", "gen.yaml", *rj.job);
  httplib::Client cli("127.0.0.1", srv.start());
  cli.set_read_timeout(10, 0);
  auto r = cli.Get("/api/v1/pipelines/gen/tap?component=big&rate=50&limit=7");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->get_header_value("Content-Type") == "application/x-ndjson");
  std::istringstream lines(r->body);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    ++n;
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    INFO(line);
    REQUIRE(p.parse(line).get(doc) == simdjson::SUCCESS);
    CHECK(std::string_view(doc["component"]) == "big");
    CHECK(std::string_view(doc["port"]) == "main");
    // The filter passes only qty >= 100.
    CHECK(double(doc["record"]["qty"]) >= 100);
  }
  CHECK(n == 7);

  for (const char* bad :
       {"/api/v1/pipelines/gen/tap?component=nope",
        "/api/v1/pipelines/gen/tap?component=big&rate=0",
        "/api/v1/pipelines/gen/tap?component=big&limit=-1", "/api/v1/pipelines/gen/tap",
        "/api/v1/pipelines/gen/tap?component=big&port=side"}) {
    auto e = cli.Get(bad);
    INFO(bad);
    REQUIRE(e);
    CHECK((e->status == 400 || e->status == 404));
  }
}

TEST_CASE("with a token every request needs the bearer header", "[api][http]") {
  running_job rj;
  api::settings s;
  s.token = "s3cret";
  api::server srv(s);
  srv.add("gen", "gen.yaml", *rj.job);
  httplib::Client cli("127.0.0.1", srv.start());
  auto no = cli.Get("/api/v1/pipelines");
  REQUIRE(no);
  CHECK(no->status == 401);
  auto wrong = cli.Get("/metrics", {{"Authorization", "Bearer s3crez"}});
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto yes = cli.Get("/api/v1/pipelines", {{"Authorization", "Bearer s3cret"}});
  REQUIRE(yes);
  CHECK(yes->status == 200);
  // The API does not take the token from the query; the dashboard's page does.
  auto query_api = cli.Get("/api/v1/pipelines?token=s3cret");
  REQUIRE(query_api);
  CHECK(query_api->status == 401);
  auto page = cli.Get("/?token=s3cret");
  REQUIRE(page);
  CHECK(page->status != 401);
  CHECK(page->get_header_value("Set-Cookie").find("pel_token=s3cret") != std::string::npos);
  auto page_no = cli.Get("/?token=other");
  REQUIRE(page_no);
  CHECK(page_no->status == 401);
}

TEST_CASE("a non-loopback address without a token is refused before listening", "[api][http]") {
  CHECK(api::is_loopback("127.0.0.1"));
  CHECK(api::is_loopback("127.1.2.3"));
  CHECK(api::is_loopback("localhost"));
  CHECK(api::is_loopback("::1"));
  CHECK_FALSE(api::is_loopback("0.0.0.0"));
  CHECK_FALSE(api::is_loopback("10.0.0.1"));
  running_job rj;
  api::settings s;
  s.host = "0.0.0.0";
  api::server srv(s);
  srv.add("gen", "gen.yaml", *rj.job);
  REQUIRE_THROWS_WITH(srv.start(),
                      Catch::Contains("without a token") && Catch::Contains("--http-token"));
}

TEST_CASE("a port already taken is a clear error", "[api][http]") {
  running_job rj;
  api::server first(api::settings{});
  first.add("gen", "gen.yaml", *rj.job);
  const int port = first.start();
  api::settings s;
  s.port = port;
  api::server second(s);
  second.add("gen", "gen.yaml", *rj.job);
  REQUIRE_THROWS_WITH(second.start(),
                      Catch::Contains("cannot listen on 127.0.0.1:" + std::to_string(port)));
}

TEST_CASE("stopping the server ends an endless tap stream", "[api][http]") {
  running_job rj;
  api::server srv(api::settings{});
  srv.add("gen", "gen.yaml", *rj.job);
  const int port = srv.start();
  std::atomic<int> lines{0};
  std::atomic<bool> returned{false};
  std::thread client([&] {
    httplib::Client cli("127.0.0.1", port);
    cli.set_read_timeout(30, 0);
    cli.Get("/api/v1/pipelines/gen/tap?component=big&rate=100",
            [&](const char* data, std::size_t n) {
              lines += static_cast<int>(std::count(data, data + n, '\n'));
              return true;
            });
    returned = true;
  });
  // Rows flow, and the stream has no limit.
  CHECK(testing::poll_until([&] { return lines.load() >= 5; }, 10s, 10ms));
  const auto t0 = std::chrono::steady_clock::now();
  srv.stop();
  CHECK(testing::poll_until([&] { return returned.load(); }, 5s, 10ms));
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  client.join();
}

TEST_CASE("a tap client that does not read never holds the pipeline back", "[api][http]") {
  running_job rj;
  api::server srv(api::settings{});
  srv.add("gen", "gen.yaml", *rj.job);
  const int port = srv.start();
  // A client with a tiny receive buffer asks for 1,000 rows a second and reads none: the
  // socket fills within a second or two, the server's write blocks, its queue fills.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  int small = 2048;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  const std::string request =
      "GET /api/v1/pipelines/gen/tap?component=trades&rate=1000 HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  auto rows = [&] {
    std::uint64_t n = 0;
    for (const auto& c : rj.job->status().components)
      if (c.name == "trades") n = c.rows_out;
    return n;
  };
  // Two seconds of rows while the buffers fill, then the generator must keep its 2,000 rows a
  // second: 6,000 more within 4.5 s.
  const auto start = rows();
  REQUIRE(testing::poll_until([&] { return rows() >= start + 4000; }, 10s, 10ms));
  const auto a = rows();
  CHECK(testing::poll_until([&] { return rows() >= a + 6000; }, 4500ms, 10ms));
  // And the server still answers others.
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(2, 0);
  auto r = cli.Get("/api/v1/pipelines");
  REQUIRE(r);
  CHECK(r->status == 200);
  ::close(fd);
}

TEST_CASE("without a token only requests that name this machine are answered", "[api][http]") {
  running_job rj;
  api::server srv(api::settings{});
  srv.add("gen", "gen.yaml", *rj.job);
  httplib::Client cli("127.0.0.1", srv.start());
  for (const char* host : {"localhost:8080", "127.0.0.1", "[::1]:9"}) {
    auto r = cli.Get("/api/v1/pipelines", {{"Host", host}});
    INFO(host);
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  // A page of another site whose name was made to resolve to 127.0.0.1.
  auto r = cli.Get("/api/v1/pipelines", {{"Host", "evil.example:8080"}});
  REQUIRE(r);
  CHECK(r->status == 403);
}
