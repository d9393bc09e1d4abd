#include "stdio_connectors.hpp"

#include "connector_test_util.hpp"
#include "pel/connectors/register.hpp"
#include "pel/plan/plan.hpp"
#include "pel/spec/diagnostics.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/registry.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <filesystem>

using namespace pel;
using namespace pel::connectors;
using pel::testing::map;
using pel::testing::scalar;
using pel::testing::test_config;

namespace {

/// A pipe whose ends close on destruction.
struct pipe_pair {
  int r = -1, w = -1;
  pipe_pair() { REQUIRE(::pipe(&r) == 0); }
  ~pipe_pair() {
    if (r >= 0) ::close(r);
    if (w >= 0) ::close(w);
  }
  void write(const std::string& s) {
    REQUIRE(::write(w, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
  }
  void close_write() {
    ::close(w);
    w = -1;
  }
  /// Everything readable now (the write end must be closed or the data complete).
  std::string read_available() {
    int flags = ::fcntl(r, F_GETFL);
    ::fcntl(r, F_SETFL, flags | O_NONBLOCK);
    std::string out;
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(r, buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }
};

core::batch sample_batch() {
  core::batch b(3);
  auto r = b.append(1);
  r[0] = std::string("AAPL");
  r[1] = 189.5;
  r[2] = std::int64_t{100};
  r = b.append(2);
  r[0] = std::string("BRK.B");
  r[1] = core::value{};
  r[2] = std::int64_t{5};
  return b;
}

core::schema_ptr sample_schema() {
  return std::make_shared<core::schema>(
      std::vector<core::field>{{"symbol", core::value_type::string},
                               {"price", core::value_type::number},
                               {"qty", core::value_type::integer}});
}

}  // namespace

TEST_CASE("stdin source decodes lines as they arrive and ends at EOF", "[stdio]") {
  pipe_pair p;
  test_config t(map({{"schema", map({{"symbol", scalar("string")}, {"qty", scalar("int")}})}}),
                stdin_params());
  stdin_source src(t.cfg, p.r);
  CHECK(src.blocking());
  core::operator_context ctx;
  ctx.name = "in";
  src.open(ctx);

  p.write("{\"symbol\":\"A\",\"qty\":1}\n{\"symbol\":\"B\",\"qty\":2}\n{\"sym");
  core::outputs out;
  // The rows already written come out without waiting for more input.
  CHECK(src.poll(out, 100) == core::poll_status::data);
  REQUIRE(out.main.size() == 2);
  CHECK(std::get<std::string>(out.main.row(1)[0]) == "B");

  p.write("bol\":\"C\",\"qty\":3}\nbad line\n{\"symbol\":\"D\"}");
  p.close_write();
  core::outputs out2;
  core::poll_status st = core::poll_status::data;
  for (int i = 0; i < 10 && st != core::poll_status::end; ++i) st = src.poll(out2, 100);
  CHECK(st == core::poll_status::end);
  REQUIRE(out2.main.size() == 2);
  CHECK(std::get<std::string>(out2.main.row(0)[0]) == "C");
  CHECK(std::get<std::string>(out2.main.row(1)[0]) == "D");
  REQUIRE(out2.dead_letter.size() == 1);
  CHECK(std::get<std::string>(out2.dead_letter.row(0)[3]) == "stdin:4");
  CHECK(std::get<std::string>(out2.dead_letter.row(0)[1]) == "in");
}

TEST_CASE("stdin source needs a schema for json and csv", "[stdio]") {
  test_config t(map({{"format", scalar("csv")}}), stdin_params());
  REQUIRE_THROWS_WITH(stdin_source(t.cfg, 0),
                      "standard input cannot be sampled before the pipeline starts: declare "
                      "`schema:` (or use `format: raw`)");
  pipe_pair p;
  test_config raw(map({{"format", scalar("raw")}}), stdin_params());
  stdin_source src(raw.cfg, p.r);
  p.write("x y\n\nz");
  p.close_write();
  core::outputs out;
  for (int i = 0; i < 10; ++i)
    if (src.poll(out, 100) == core::poll_status::end) break;
  REQUIRE(out.main.size() == 2);
  CHECK(std::get<std::string>(out.main.row(0)[0]) == "x y");
}

TEST_CASE("stdin source skips the CSV header", "[stdio]") {
  pipe_pair p;
  test_config t(map({{"format", scalar("csv")},
                     {"schema", map({{"a", scalar("int")}, {"b", scalar("string")}})}}),
                stdin_params());
  stdin_source src(t.cfg, p.r);
  p.write("a,b\n1,x\n2,\"y,z\"\n");
  p.close_write();
  core::outputs out;
  for (int i = 0; i < 10; ++i)
    if (src.poll(out, 100) == core::poll_status::end) break;
  REQUIRE(out.main.size() == 2);
  CHECK(std::get<std::int64_t>(out.main.row(0)[0]) == 1);
  CHECK(std::get<std::string>(out.main.row(1)[1]) == "y,z");
  CHECK(out.dead_letter.size() == 0);
}

TEST_CASE("stdin source sends a line over max_record_bytes to the dead letter",
          "[stdio][hostile]") {
  pipe_pair p;
  test_config t(map({{"format", scalar("raw")}, {"max_record_bytes", scalar("1KiB")}}),
                stdin_params());
  stdin_source src(t.cfg, p.r);
  // 40 KB: more than one read, less than the pipe holds.
  p.write("first\n" + std::string(40000, 'y') + "\nlast\r\n" + std::string(2000, 'z'));
  p.close_write();
  core::outputs out;
  int polls = 0;
  while (polls++ < 1000 && src.poll(out, 100) != core::poll_status::end) {
  }
  REQUIRE(out.main.size() == 2);
  CHECK(std::get<std::string>(out.main.row(0)[0]) == "first");
  CHECK(std::get<std::string>(out.main.row(1)[0]) == "last");
  REQUIRE(out.dead_letter.size() == 2);
  CHECK(std::get<std::string>(out.dead_letter.row(0)[0])
            .rfind("line longer than max_record_bytes (1024 bytes)", 0) == 0);
  CHECK(std::get<std::string>(out.dead_letter.row(0)[3]) == "stdin:2");
  CHECK(std::get<std::string>(out.dead_letter.row(0)[4]) == std::string(1024, 'y'));
  // A last line without a newline is bounded too.
  CHECK(std::get<std::string>(out.dead_letter.row(1)[3]) == "stdin:4");
  CHECK(std::get<std::string>(out.dead_letter.row(1)[4]) == std::string(1024, 'z'));
}

TEST_CASE("lint reports a file source's unreadable path at the path key", "[stdio][lint]") {
  spec::registry reg;
  register_builtin_connectors(reg);
  auto lint = [&](const std::string& path, const std::string& extra) {
    std::string text =
        "sources:\n"
        "  src:\n"
        "    type: file\n"
        "    schema: {i: int}\n"
        "    path: " +
        path + "\n" + extra +
        "sinks:\n"
        "  out: {type: discard, input: src}\n";
    auto p = spec::load_text(text, "p.yaml", reg);
    try {
      plan::build(p, reg);
    } catch (const spec::spec_error& e) {
      return e.diags().format();
    }
    return std::string("ok");
  };
  CHECK(lint("/no/such/dir/t.json", "") ==
        "p.yaml:5:11: sources.src.path: cannot read '/no/such/dir/t.json': No such file or "
        "directory; check the path, or set `follow: true` to wait for the file to appear\n");
  CHECK(lint("/", "") ==
        "p.yaml:5:11: sources.src.path: '/' is a directory; give the path of "
        "a file in it\n");
  CHECK(lint("/no/such/dir/t.json", "    follow: true\n") == "ok");
}

TEST_CASE("stdout sink writes each batch at once", "[stdio]") {
  SECTION("json") {
    pipe_pair p;
    test_config t(map({}), stdout_params());
    stdout_sink sink(t.cfg, p.w);
    sink.open({}, sample_schema());
    sink.write(sample_batch());
    // Without any flush call, the batch is already in the pipe.
    CHECK(p.read_available() ==
          "{\"symbol\":\"AAPL\",\"price\":189.5,\"qty\":100}\n{\"symbol\":\"BRK.B\",\"price\":null,"
          "\"qty\":5}\n");
    CHECK(sink.delivered() == 2);
  }
  SECTION("csv with one header") {
    pipe_pair p;
    test_config t(map({{"format", scalar("csv")}}), stdout_params());
    stdout_sink sink(t.cfg, p.w);
    sink.open({}, sample_schema());
    sink.write(sample_batch());
    sink.write(sample_batch());
    CHECK(p.read_available() ==
          "symbol,price,qty\nAAPL,189.5,100\nBRK.B,,5\nAAPL,189.5,100\nBRK.B,,5\n");
  }
  SECTION("pretty table") {
    pipe_pair p;
    test_config t(map({{"pretty", scalar("true")}}), stdout_params());
    stdout_sink sink(t.cfg, p.w);
    sink.open({}, sample_schema());
    sink.write(sample_batch());
    CHECK(p.read_available() ==
          "symbol  price  qty\n"
          "------  -----  ---\n"
          "AAPL    189.5  100\n"
          "BRK.B   null     5\n");
  }
}

TEST_CASE("discard sink counts rows", "[stdio]") {
  discard_sink d;
  d.open({}, sample_schema());
  d.write(sample_batch());
  d.write(sample_batch());
  CHECK(d.delivered() == 4);
}

TEST_CASE("connectors register their types with schemas and examples", "[stdio][register]") {
  spec::registry reg;
  register_builtin_connectors(reg);
  for (auto name : {"file", "stdin", "generator"}) {
    INFO(name);
    auto e = reg.find_source(name);
    REQUIRE(e != nullptr);
    CHECK_FALSE(e->schema.summary.empty());
    CHECK_FALSE(e->schema.example.empty());
    for (const auto& p : e->schema.params) CHECK_FALSE(p.description.empty());
  }
  for (auto name : {"file", "stdout", "discard"}) {
    INFO(name);
    auto e = reg.find_sink(name);
    REQUIRE(e != nullptr);
    CHECK_FALSE(e->schema.example.empty());
  }
  // The factories build from defaults.
  auto gen = reg.find_source("generator");
  spec::config empty(map({}), "sources.g", &gen->schema.params);
  auto src = gen->make(empty);
  CHECK(src->output_schema()->names() == "ts, symbol, price, qty, side, trade_id");
}

TEST_CASE("connector examples lint and build clean", "[register]") {
  spec::registry reg;
  register_builtin_connectors(reg);
  std::vector<const spec::component_schema*> mine;
  for (auto name : {"file", "stdin", "generator"}) mine.push_back(&reg.find_source(name)->schema);
  for (auto name : {"file", "stdout", "discard"}) mine.push_back(&reg.find_sink(name)->schema);
  for (const auto* s : mine) {
    INFO(s->type << ":\n" << s->example);
    std::string text = s->example;
    if (text.find("sinks:") == std::string::npos)
      text +=
          "sinks:\n  out:\n    type: discard\n    input: " +
          text.substr(text.find('\n') + 3, text.find(':', text.find('\n')) - text.find('\n') - 3) +
          "\n";
    spec::pipeline p;
    try {
      p = spec::load_text(text, "example.yaml", reg);
    } catch (const spec::spec_error& e) {
      FAIL(e.what());
    }
    // Example paths are relative to the repository root, where `pel` is run from.
    struct in_source_dir {
      std::string old = std::filesystem::current_path().string();
      in_source_dir() { std::filesystem::current_path(PEL_SOURCE_DIR); }
      ~in_source_dir() { std::filesystem::current_path(old); }
    } cwd;
    CHECK_NOTHROW(plan::build(p, reg));
  }
}
