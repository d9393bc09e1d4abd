#include "file_connectors.hpp"

#include "connector_test_util.hpp"
#include "pel/spec/diagnostics.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>

using namespace pel;
using namespace pel::connectors;
using pel::testing::map;
using pel::testing::poll_until;
using pel::testing::read_file;
using pel::testing::scalar;
using pel::testing::temp_dir;
using pel::testing::test_config;
using pel::testing::write_file;

namespace {

test_config source_cfg(std::vector<std::pair<std::string, spec::node_ptr>> e) {
  return test_config(map(std::move(e)), file_source_params());
}
test_config sink_cfg(std::vector<std::pair<std::string, spec::node_ptr>> e) {
  return test_config(map(std::move(e)), file_sink_params());
}

core::operator_context ctx_of(std::uint32_t instance = 0, std::uint32_t parallelism = 1) {
  core::operator_context c;
  c.name = "in";
  c.instance = instance;
  c.parallelism = parallelism;
  return c;
}

/// Accumulates everything a source emits.
struct collected {
  core::outputs out;
  core::poll_status last = core::poll_status::data;
  core::poll_status poll(core::source_base& s, std::size_t max_rows = 1000) {
    core::outputs o;
    last = s.poll(o, max_rows);
    if (out.main.width == 0) out.main.width = o.main.width;
    if (out.dead_letter.width == 0) out.dead_letter.width = o.dead_letter.width;
    for (std::size_t i = 0; i < o.main.size(); ++i)
      out.main.append_copy(o.main.row(i), o.main.times[i]);
    for (std::size_t i = 0; i < o.dead_letter.size(); ++i)
      out.dead_letter.append_copy(o.dead_letter.row(i), o.dead_letter.times[i]);
    return last;
  }
  void drain(core::source_base& s, std::size_t max_rows = 1000) {
    for (int i = 0; i < 100000 && poll(s, max_rows) != core::poll_status::end; ++i) {
    }
    REQUIRE(last == core::poll_status::end);
  }
  const core::value& at(std::size_t r, std::size_t c) const { return out.main.row(r)[c]; }
  std::string dead(std::size_t r, std::size_t c) const {
    return std::get<std::string>(out.dead_letter.row(r)[c]);
  }
};

}  // namespace

TEST_CASE("file source reads JSON lines and sends bad lines to the dead letter", "[file]") {
  temp_dir dir;
  auto path = dir.file("t.json");
  write_file(path,
             "{\"sym\":\"A\",\"qty\":1}\n"
             "{\"sym\":\"B\",\"qty\":2}\r\n"
             "\n"
             "{\"sym\":\"C\",\"qty\":\"lots\"}\n"
             "not json\n"
             "{\"sym\":\"D\"}");  // last line without newline
  auto t = source_cfg({{"path", scalar(path)},
                       {"schema", map({{"sym", scalar("string")}, {"qty", scalar("int")}})}});
  file_source src(t.cfg);
  src.open(ctx_of());
  collected c;
  c.drain(src);
  REQUIRE(c.out.main.size() == 3);
  CHECK(std::get<std::string>(c.at(0, 0)) == "A");
  CHECK(std::get<std::int64_t>(c.at(1, 1)) == 2);
  CHECK(std::get<std::string>(c.at(2, 0)) == "D");
  CHECK(core::is_null(c.at(2, 1)));
  REQUIRE(c.out.dead_letter.size() == 2);
  CHECK(c.dead(0, 0) == "field 'qty': expected int, found string \"lots\"");
  CHECK(c.dead(0, 2) == "in");
  CHECK(c.dead(0, 3) == path + ":4");
  CHECK(c.dead(0, 4) == "{\"sym\":\"C\",\"qty\":\"lots\"}");
  CHECK(c.dead(1, 3) == path + ":5");
  CHECK(src.malformed() == 2);
  std::uint64_t done = 0, total = 0;
  src.progress(done, total);
  CHECK(total == std::filesystem::file_size(path));
  CHECK(done == total);
  // Rows carry the processing time at read.
  CHECK(c.out.main.times[0] > 1'600'000'000'000'000'000LL);
}

TEST_CASE("file source infers a CSV schema and handles quoting", "[file][csv]") {
  temp_dir dir;
  auto path = dir.file("t.csv");
  write_file(path,
             "id,name,price\n"
             "1,\"Smith, J\",2.5\n"
             "2,\"two\nlines\",3\n"
             "3,x\n"
             "4,NA,4.25\n");
  auto t = source_cfg({{"path", scalar(path)}, {"format", scalar("csv")}});
  file_source src(t.cfg);
  auto s = src.output_schema();
  REQUIRE(s->names() == "id, name, price");
  CHECK((*s)[0].type == core::value_type::integer);
  CHECK((*s)[1].type == core::value_type::string);
  CHECK((*s)[2].type == core::value_type::number);
  src.open(ctx_of());
  collected c;
  c.drain(src, 2);  // small polls: state carries over between them
  REQUIRE(c.out.main.size() == 3);
  CHECK(std::get<std::string>(c.at(0, 1)) == "Smith, J");
  CHECK(std::get<std::string>(c.at(1, 1)) == "two\nlines");
  CHECK(core::is_null(c.at(2, 1)));
  CHECK(std::get<double>(c.at(2, 2)) == 4.25);
  REQUIRE(c.out.dead_letter.size() == 1);
  CHECK(c.dead(0, 0) == "expected 3 fields, found 2");
  CHECK(c.dead(0, 3) == path + ":5");
}

TEST_CASE("file source reads a large file in buffered chunks", "[file]") {
  temp_dir dir;
  auto path = dir.file("big.json");
  std::string text;
  const int n = 60000;
  for (int i = 0; i < n; ++i)
    text += "{\"i\":" + std::to_string(i) + ",\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}\n";
  write_file(path, text);
  auto t = source_cfg({{"path", scalar(path)}});  // schema inferred
  file_source src(t.cfg);
  REQUIRE(src.output_schema()->names() == "i, pad");
  src.open(ctx_of());
  collected c;
  c.drain(src, 1024);
  REQUIRE(c.out.main.size() == static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) REQUIRE(std::get<std::int64_t>(c.at(i, 0)) == i);
}

TEST_CASE("file source schema errors name the fix", "[file]") {
  temp_dir dir;
  auto missing = source_cfg({{"path", scalar(dir.file("nope.json"))}});
  REQUIRE_THROWS_WITH(
      file_source(missing.cfg),
      Catch::Contains("to infer its schema (No such file or directory); declare `schema:`"));
  write_file(dir.file("empty.json"), "");
  auto empty = source_cfg({{"path", scalar(dir.file("empty.json"))}});
  REQUIRE_THROWS_WITH(file_source(empty.cfg), Catch::Contains("(it is empty); declare `schema:`"));
  auto start = source_cfg({{"path", scalar(dir.file("empty.json"))},
                           {"start_at", scalar("end")},
                           {"format", scalar("raw")}});
  REQUIRE_THROWS_AS(file_source(start.cfg), spec::config_error);
}

TEST_CASE("file source with parallelism reads in instance 0 only", "[file]") {
  temp_dir dir;
  write_file(dir.file("r.txt"), "a\nb\n");
  auto t = source_cfg({{"path", scalar(dir.file("r.txt"))}, {"format", scalar("raw")}});
  file_source second(t.cfg);
  second.open(ctx_of(1, 2));
  core::outputs o;
  CHECK(second.poll(o, 100) == core::poll_status::end);
  CHECK(o.main.size() == 0);
  file_source first(t.cfg);
  first.open(ctx_of(0, 2));
  collected c;
  c.drain(first);
  CHECK(c.out.main.size() == 2);
}

TEST_CASE("file source follows a growing, truncated and rotated file", "[file][follow]") {
  temp_dir dir;
  auto path = dir.file("log.txt");
  write_file(path, "one\ntwo\n");
  auto t =
      source_cfg({{"path", scalar(path)}, {"format", scalar("raw")}, {"follow", scalar("true")}});
  file_source src(t.cfg);
  src.open(ctx_of());
  collected c;
  auto rows = [&] { return c.out.main.size(); };
  REQUIRE(poll_until([&] {
    c.poll(src);
    return rows() == 2;
  }));
  CHECK(c.poll(src) == core::poll_status::idle);  // at end of file, not the end of stream

  write_file(path, "thr", true);  // a partial line waits for its newline
  c.poll(src);
  CHECK(rows() == 2);
  write_file(path, "ee\nfour\n", true);
  REQUIRE(poll_until([&] {
    c.poll(src);
    return rows() == 4;
  }));
  CHECK(std::get<std::string>(c.at(2, 0)) == "three");
  CHECK(std::get<std::string>(c.at(3, 0)) == "four");

  write_file(path, "new\n");  // truncated and rewritten
  REQUIRE(poll_until([&] {
    c.poll(src);
    return rows() == 5;
  }));
  CHECK(std::get<std::string>(c.at(4, 0)) == "new");

  write_file(path, "last-of-old", true);
  std::filesystem::rename(path, path + ".1");  // rotation
  write_file(path, "rotated\n");
  REQUIRE(poll_until([&] {
    c.poll(src);
    return rows() == 7;
  }));
  CHECK(std::get<std::string>(c.at(5, 0)) == "last-of-old");
  CHECK(std::get<std::string>(c.at(6, 0)) == "rotated");
  CHECK(c.last != core::poll_status::end);
}

TEST_CASE("file source start_at end skips existing lines", "[file][follow]") {
  temp_dir dir;
  auto path = dir.file("s.csv");
  write_file(path, "a,b\n1,2\n3,4\n");
  auto t = source_cfg({{"path", scalar(path)},
                       {"format", scalar("csv")},
                       {"follow", scalar("true")},
                       {"start_at", scalar("end")}});
  file_source src(t.cfg);
  CHECK(src.output_schema()->names() == "a, b");
  src.open(ctx_of());
  collected c;
  CHECK(c.poll(src) == core::poll_status::idle);
  write_file(path, "5,6\n", true);
  REQUIRE(poll_until([&] {
    c.poll(src);
    return c.out.main.size() == 1;
  }));
  CHECK(std::get<std::int64_t>(c.at(0, 0)) == 5);
}

TEST_CASE("file sink writes, appends and flushes", "[file][sink]") {
  temp_dir dir;
  auto path = dir.file("sub/out.csv");
  auto schema = std::make_shared<core::schema>(std::vector<core::field>{
      {"sym", core::value_type::string}, {"px", core::value_type::number}});
  core::batch b(2);
  auto r = b.append(1);
  r[0] = std::string("A,B");
  r[1] = 1.5;
  r = b.append(2);
  r[0] = std::string("C");
  r[1] = core::value{};

  auto t = sink_cfg({{"path", scalar(path)}, {"format", scalar("csv")}});
  {
    file_sink sink(t.cfg);
    sink.open(ctx_of(), schema);
    sink.write(b);
    CHECK(sink.delivered() == 0);
    sink.flush();
    CHECK(sink.delivered() == 2);
    CHECK(read_file(path) == "sym,px\n\"A,B\",1.5\nC,\n");
    sink.write(b);
    sink.close();
    CHECK(sink.delivered() == 4);
  }
  CHECK(read_file(path) == "sym,px\n\"A,B\",1.5\nC,\n\"A,B\",1.5\nC,\n");

  auto ta =
      sink_cfg({{"path", scalar(path)}, {"format", scalar("csv")}, {"mode", scalar("append")}});
  file_sink app(ta.cfg);
  app.open(ctx_of(), schema);
  app.write(b);
  app.close();
  CHECK(read_file(path) == "sym,px\n\"A,B\",1.5\nC,\n\"A,B\",1.5\nC,\n\"A,B\",1.5\nC,\n");

  file_sink over(t.cfg);
  over.open(ctx_of(), schema);
  over.close();
  CHECK(read_file(path) == "sym,px\n");

  auto tj = sink_cfg({{"path", scalar(dir.file("p.json"))}});
  file_sink part(tj.cfg);
  part.open(ctx_of(1, 3), schema);
  part.write(b);
  part.close();
  CHECK(part.path() == dir.file("p-1.json"));
  CHECK(read_file(dir.file("p-1.json")) ==
        "{\"sym\":\"A,B\",\"px\":1.5}\n{\"sym\":\"C\",\"px\":null}\n");
}

TEST_CASE("file sink and source round-trip", "[file]") {
  temp_dir dir;
  for (std::string fmt : {"csv", "json"}) {
    auto path = dir.file("rt." + fmt);
    auto schema =
        std::make_shared<core::schema>(std::vector<core::field>{{"id", core::value_type::integer},
                                                                {"name", core::value_type::string},
                                                                {"x", core::value_type::number},
                                                                {"ok", core::value_type::boolean}});
    core::batch b(4);
    const char* names[] = {"plain", "with,comma", "with \"quotes\"", "multi\nline", "", "NA"};
    for (int i = 0; i < 6; ++i) {
      auto r = b.append(i);
      r[0] = std::int64_t{i};
      r[1] = std::string(names[i]);
      r[2] = i * 0.1;
      r[3] = i % 2 == 0;
    }
    auto ts = sink_cfg({{"path", scalar(path)}, {"format", scalar(fmt)}});
    file_sink sink(ts.cfg);
    sink.open(ctx_of(), schema);
    sink.write(b);
    sink.close();

    auto tr = source_cfg({{"path", scalar(path)}, {"format", scalar(fmt)}});
    file_source src(tr.cfg);
    INFO(fmt);
    REQUIRE(*src.output_schema() == *schema);
    src.open(ctx_of());
    collected c;
    c.drain(src);
    REQUIRE(c.out.main.size() == 6);
    CHECK(c.out.main.cells == b.cells);
    CHECK(c.out.dead_letter.size() == 0);
  }
}

TEST_CASE("instance paths put the instance before the extension", "[file]") {
  CHECK(instance_path("out/a.json", 0, 1) == "out/a.json");
  CHECK(instance_path("out/a.json", 2, 4) == "out/a-2.json");
  CHECK(instance_path("out.d/a", 1, 2) == "out.d/a-1");
  CHECK(instance_path("a.tar.gz", 0, 2) == "a.tar-0.gz");
}
