#include "file_connectors.hpp"

#include "connector_test_util.hpp"
#include "pel/spec/diagnostics.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

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

// ---------------------------------------------------------------------------------------------
// Hostile input

namespace {

/// The process's peak resident memory in KiB (VmHWM), or -1 where /proc does not say.
long peak_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

}  // namespace

TEST_CASE("file source sends a line over max_record_bytes to the dead letter, memory bounded",
          "[file][hostile]") {
  temp_dir dir;
  auto path = dir.file("long.json");
  {
    // Written in pieces so that the test itself never holds the 50 MB line.
    std::ofstream f(path, std::ios::binary);
    f << "{\"i\":1}\n{\"i\":2}\n";
    std::string piece(1 << 20, 'x');
    piece[0] = '{';
    f << piece;
    piece[0] = 'x';
    for (int i = 1; i < 50; ++i) f << piece;
    f << "\n{\"i\":3}\r\n{\"i\":4}";
  }
  auto t = source_cfg({{"path", scalar(path)}, {"schema", map({{"i", scalar("int")}})}});
  file_source src(t.cfg);
  src.open(ctx_of());
  const long before = peak_rss_kib();
  collected c;
  c.drain(src, 1000);
  const long after = peak_rss_kib();
  REQUIRE(c.out.main.size() == 4);
  for (int i = 0; i < 4; ++i) CHECK(std::get<std::int64_t>(c.at(i, 0)) == i + 1);
  REQUIRE(c.out.dead_letter.size() == 1);
  CHECK(c.dead(0, 0) ==
        "line longer than max_record_bytes (1048576 bytes): the record holds its first 1024 "
        "bytes and the rest was skipped; raise max_record_bytes if such records are valid");
  CHECK(c.dead(0, 3) == path + ":3");
  CHECK(c.dead(0, 4) == "{" + std::string(1023, 'x'));
  CHECK(src.malformed() == 1);
  // Reading the line whole would take 50 MB or more; bounded, it takes about two buffers.
  if (before > 0) CHECK(after - before < 16 * 1024);
}

TEST_CASE("line buffer stays bounded on a line without end", "[file][hostile]") {
  line_buffer buf(4096, 10000);
  std::string_view line;
  int too_long = 0;
  for (int round = 0; round < 1000; ++round) {  // 4 MB of 'z', no newline
    auto got = buf.next_line(line);
    if (got == line_status::too_long) {
      ++too_long;
      CHECK(line.size() == 10000);
      continue;
    }
    REQUIRE(got == line_status::none);
    char* dst = buf.write_ptr();
    REQUIRE(buf.write_space() >= 4096);
    std::memset(dst, 'z', 4096);
    buf.commit(4096);
    REQUIRE(buf.pending() <= 10000 + 4096);
  }
  CHECK(too_long == 1);
  CHECK(buf.skipping());
  // The line ends; the next one comes through whole.
  char* dst = buf.write_ptr();
  std::memcpy(dst, "zz\nok\n", 6);
  buf.commit(6);
  REQUIRE(buf.next_line(line) == line_status::line);
  CHECK(line == "ok");
  CHECK(buf.next_line(line) == line_status::none);
  // A last line over the limit at end of input is too long as well.
  line_buffer small(16, 4);
  dst = small.write_ptr();
  std::memcpy(dst, "abcdef", 6);
  small.commit(6);
  REQUIRE(small.take_rest(line) == line_status::too_long);
  CHECK(line == "abcd");
}

TEST_CASE("file source on endless input (/dev/zero) gives a dead letter, not a crash",
          "[file][hostile]") {
  if (::access("/dev/zero", R_OK) != 0) {
    WARN("no /dev/zero here");
    return;
  }
  auto t = source_cfg({{"path", scalar("/dev/zero")},
                       {"format", scalar("raw")},
                       {"max_record_bytes", scalar("64KiB")}});
  file_source src(t.cfg);
  src.open(ctx_of());
  collected c;
  // Each poll returns after a bounded read; read 100 MB of zeros within the deadline.
  std::uint64_t done = 0, total = 0;
  bool read_enough = poll_until([&] {
    REQUIRE(c.poll(src) == core::poll_status::data);
    src.progress(done, total);
    return done >= (100u << 20);
  });
  REQUIRE(read_enough);
  CHECK(c.out.main.size() == 0);
  REQUIRE(c.out.dead_letter.size() == 1);
  CHECK(c.dead(0, 0).rfind("line longer than max_record_bytes (65536 bytes)", 0) == 0);
  CHECK(c.dead(0, 3) == "/dev/zero:1");
  CHECK(total == 0);  // a device has no size: progress is unknown, not done
  CHECK(c.dead(0, 4) == std::string(1024, '\0'));
}

TEST_CASE("file source bounds a CSV record whose quote is never closed", "[file][csv][hostile]") {
  temp_dir dir;
  auto path = dir.file("quote.csv");
  std::string text = "id,name\n1,a\n2,\"never closed\n";
  for (int i = 0; i < 200; ++i) text += "x" + std::to_string(i) + ",y\n";  // > 1 KiB
  text += "3,b\n4,\"open at the end\n5,c\n";
  write_file(path, text);
  auto t = source_cfg({{"path", scalar(path)},
                       {"format", scalar("csv")},
                       {"schema", map({{"id", scalar("int")}, {"name", scalar("string")}})},
                       {"max_record_bytes", scalar("1KiB")}});
  file_source src(t.cfg);
  src.open(ctx_of());
  collected c;
  c.drain(src, 7);
  REQUIRE(c.out.dead_letter.size() >= 2);
  // The record opened on line 3 grows past the limit and is cut off ...
  CHECK(c.dead(0, 0).rfind("CSV record longer than max_record_bytes (1024 bytes)", 0) == 0);
  CHECK(c.dead(0, 0).find("is a quote not closed?") != std::string::npos);
  CHECK(c.dead(0, 3) == path + ":3");
  CHECK(c.dead(0, 4).rfind("2,\"never closed\nx0,y\nx1,y\n", 0) == 0);
  // ... reading starts afresh, and the rows after it come through.
  std::vector<std::int64_t> ids;
  for (std::size_t r = 0; r < c.out.main.size(); ++r)
    if (auto i = std::get_if<std::int64_t>(&c.at(r, 0))) ids.push_back(*i);
  CHECK(std::find(ids.begin(), ids.end(), 1) != ids.end());
  CHECK(std::find(ids.begin(), ids.end(), 3) != ids.end());
  // A quote still open at the end of the file is a dead letter holding the rest of the file.
  const auto last = c.out.dead_letter.size() - 1;
  CHECK(c.dead(last, 0) == "field 2: the quote is not closed");
  CHECK(c.dead(last, 3) == path + ":" + std::to_string(3 + 200 + 2));
  CHECK(c.dead(last, 4) == "4,\"open at the end\n5,c");
}

TEST_CASE("file source path errors are located at `path` when the pipeline is built",
          "[file][lint]") {
  temp_dir dir;
  auto schema = [] { return map({{"i", scalar("int")}}); };
  SECTION("missing") {
    auto missing = source_cfg({{"path", scalar(dir.file("nope.json"))}, {"schema", schema()}});
    try {
      file_source s(missing.cfg);
      FAIL("no error");
    } catch (const spec::config_error& e) {
      CHECK(e.path() == "sources.test.path");
      CHECK(std::string(e.what()) ==
            "cannot read '" + dir.file("nope.json") +
                "': No such file or directory; check the path, or set `follow: true` to wait "
                "for the file to appear");
    }
    // Without a schema the same error comes first (not "cannot infer").
    auto inferred = source_cfg({{"path", scalar(dir.file("nope.json"))}});
    REQUIRE_THROWS_WITH(file_source(inferred.cfg), Catch::StartsWith("cannot read '"));
    auto glob = source_cfg({{"path", scalar(dir.file("*.json"))}, {"schema", schema()}});
    REQUIRE_THROWS_WITH(file_source(glob.cfg), Catch::Contains("does not expand `*`"));
  }
  SECTION("missing is fine when following") {
    auto follow = source_cfg({{"path", scalar(dir.file("later.json"))},
                              {"schema", schema()},
                              {"follow", scalar("true")}});
    file_source s(follow.cfg);
    s.open(ctx_of());
    core::outputs o;
    CHECK(s.poll(o, 10) == core::poll_status::idle);
  }
  SECTION("a directory is called a directory, not empty") {
    auto d = source_cfg({{"path", scalar(dir.path().string())}});
    REQUIRE_THROWS_WITH(file_source(d.cfg), "'" + dir.path().string() +
                                                "' is a directory; give the path of a file in it");
    auto followed = source_cfg(
        {{"path", scalar(dir.path().string())}, {"schema", schema()}, {"follow", scalar("true")}});
    REQUIRE_THROWS_WITH(file_source(followed.cfg), Catch::Contains("is a directory"));
  }
  SECTION("unreadable") {
    write_file(dir.file("plain"), "{}\n");
    auto under_file =
        source_cfg({{"path", scalar(dir.file("plain") + "/x")}, {"schema", schema()}});
    REQUIRE_THROWS_WITH(file_source(under_file.cfg), Catch::Contains("Not a directory"));
    auto locked = dir.file("locked.json");
    write_file(locked, "{\"i\":1}\n");
    ::chmod(locked.c_str(), 0);
    if (::geteuid() == 0) {
      WARN("running as root: a file without read permission is still readable");
    } else {
      auto l = source_cfg({{"path", scalar(locked)}, {"schema", schema()}});
      REQUIRE_THROWS_WITH(
          file_source(l.cfg),
          "cannot read '" + locked + "': Permission denied; check the file's permissions");
    }
  }
}

TEST_CASE("file source handles a byte order mark, CRLF and blank lines", "[file][hostile]") {
  temp_dir dir;
  SECTION("JSON") {
    auto path = dir.file("bom.json");
    write_file(path, "\xEF\xBB\xBF{\"i\":1}\r\n\r\n{\"i\":2}\r\n   \r\n{\"i\":3}");
    auto t = source_cfg({{"path", scalar(path)}});  // inferred through the BOM
    file_source src(t.cfg);
    REQUIRE(src.output_schema()->names() == "i");
    src.open(ctx_of());
    collected c;
    c.drain(src);
    REQUIRE(c.out.main.size() == 3);
    CHECK(std::get<std::int64_t>(c.at(0, 0)) == 1);
    CHECK(std::get<std::int64_t>(c.at(2, 0)) == 3);
    // A blank line is no record; a line of blanks is a malformed one.
    REQUIRE(c.out.dead_letter.size() == 1);
    CHECK(c.dead(0, 3) == path + ":4");
  }
  SECTION("CSV") {
    auto path = dir.file("bom.csv");
    write_file(path, "\xEF\xBB\xBFid,name\r\n1,\"two\r\nlines\"\r\n2,b\r\n3\r\n4,c,extra\r\n5,e");
    auto t = source_cfg({{"path", scalar(path)}, {"format", scalar("csv")}});
    file_source src(t.cfg);
    REQUIRE(src.output_schema()->names() == "id, name");
    CHECK((*src.output_schema())[0].type == core::value_type::integer);
    src.open(ctx_of());
    collected c;
    c.drain(src);
    REQUIRE(c.out.main.size() == 3);
    CHECK(std::get<std::string>(c.at(0, 1)) == "two\nlines");
    CHECK(std::get<std::string>(c.at(1, 1)) == "b");
    CHECK(std::get<std::int64_t>(c.at(2, 0)) == 5);
    REQUIRE(c.out.dead_letter.size() == 2);
    CHECK(c.dead(0, 0) == "expected 2 fields, found 1");
    CHECK(c.dead(0, 3) == path + ":5");
    CHECK(c.dead(1, 0) == "expected 2 fields, found 3");
    CHECK(c.dead(1, 3) == path + ":6");
  }
  SECTION("CSV without a header, BOM before a number") {
    auto path = dir.file("nohead.csv");
    write_file(path,
               "\xEF\xBB\xBF"
               "7,x\n");
    auto t = source_cfg({{"path", scalar(path)},
                         {"format", scalar("csv")},
                         {"csv", map({{"header", scalar("false")}})},
                         {"schema", map({{"n", scalar("int")}, {"s", scalar("string")}})}});
    file_source src(t.cfg);
    src.open(ctx_of());
    collected c;
    c.drain(src);
    REQUIRE(c.out.main.size() == 1);
    CHECK(std::get<std::int64_t>(c.at(0, 0)) == 7);
  }
}

TEST_CASE("file source reading binary data accounts for every line", "[file][hostile]") {
  temp_dir dir;
  auto path = dir.file("noise.bin");
  std::string data;
  std::uint32_t x = 12345;
  for (int i = 0; i < 200000; ++i) {
    x = x * 1103515245u + 12345u;
    data += static_cast<char>(x >> 24);
  }
  write_file(path, data);
  std::size_t records = 0;  // lines that are not empty (after a '\r' is dropped)
  std::size_t start = 0;
  for (std::size_t i = 0; i <= data.size(); ++i) {
    if (i == data.size() || data[i] == '\n') {
      std::size_t len = i - start;
      if (len > 0 && data[start + len - 1] == '\r') --len;
      if (len > 0) ++records;
      start = i + 1;
    }
  }
  for (const char* format : {"json", "csv"}) {
    auto t = source_cfg({{"path", scalar(path)},
                         {"format", scalar(format)},
                         {"csv", map({{"header", scalar("false")}})},
                         {"schema", map({{"a", scalar("int")}, {"b", scalar("string")}})}});
    file_source src(t.cfg);
    src.open(ctx_of());
    collected c;
    c.drain(src);
    INFO(format);
    CHECK(c.out.main.size() == 0);
    if (std::string(format) == "json") CHECK(c.out.dead_letter.size() == records);
    // CSV may join lines inside quotes, but nothing decodes and something is reported.
    CHECK(c.out.dead_letter.size() > 0);
    CHECK(src.malformed() == c.out.dead_letter.size());
  }
}

TEST_CASE("file source: a quote inside an unquoted CSV field does not swallow the next line",
          "[file][csv][hostile]") {
  temp_dir dir;
  auto path = dir.file("inch.csv");
  write_file(path, "id,name\n1,6\" screen\n2,b\n3,\"c\"d\n4,e\n");
  auto t = source_cfg({{"path", scalar(path)}, {"format", scalar("csv")}});
  file_source src(t.cfg);
  src.open(ctx_of());
  collected c;
  c.drain(src);
  REQUIRE(c.out.main.size() == 3);
  CHECK(std::get<std::string>(c.at(0, 1)) == "6\" screen");
  CHECK(std::get<std::int64_t>(c.at(1, 0)) == 2);
  CHECK(std::get<std::int64_t>(c.at(2, 0)) == 4);
  // Text after a closing quote is malformed on its own line, not joined with the next.
  REQUIRE(c.out.dead_letter.size() == 1);
  CHECK(c.dead(0, 0) == "field 2: unexpected text after the closing quote");
  CHECK(c.dead(0, 3) == path + ":4");
}

TEST_CASE("file source says why it cannot infer a schema", "[file][hostile]") {
  temp_dir dir;
  auto long_path = dir.file("long.json");
  write_file(long_path, "{\"a\":\"" + std::string(5000, 'x') + "\"}\n");
  auto t = source_cfg({{"path", scalar(long_path)}, {"max_record_bytes", scalar("1KiB")}});
  REQUIRE_THROWS_WITH(file_source(t.cfg),
                      "cannot infer a schema from '" + long_path +
                          "' (its first lines are longer than max_record_bytes (1024 bytes)); "
                          "declare `schema:`");
  auto noise = dir.file("noise.json");
  write_file(noise, std::string("\x01\x02\xFF\n\x00\x00\n", 7));
  auto n = source_cfg({{"path", scalar(noise)}});
  REQUIRE_THROWS_WITH(file_source(n.cfg), Catch::Contains("(no record in its first lines)"));
  auto blank = dir.file("blank.json");
  write_file(blank, "");
  auto b = source_cfg({{"path", scalar(blank)}});
  REQUIRE_THROWS_WITH(file_source(b.cfg), Catch::Contains("(it is empty)"));
}

TEST_CASE("file source on a named pipe gets its own thread and hands lines on as they come",
          "[file][hostile]") {
  temp_dir dir;
  auto path = dir.file("pipe");
  REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
  auto t = source_cfg({{"path", scalar(path)}, {"format", scalar("raw")}});
  file_source src(t.cfg);
  CHECK(src.blocking());
  std::atomic<bool> got_rows{false}, writer_waited_out{false};
  // The writer keeps the pipe open until the rows came through (or a deadline passed), so a
  // source that waits for the end of input before handing rows on fails below.
  std::thread writer([&] {
    int fd = ::open(path.c_str(), O_WRONLY);
    if (fd < 0) return;
    const char text[] = "a\nb\n";
    (void)!::write(fd, text, sizeof text - 1);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!got_rows && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    writer_waited_out = !got_rows;
    ::close(fd);
  });
  src.open(ctx_of());
  collected c;
  c.poll(src);
  got_rows = c.out.main.size() == 2;
  CHECK(got_rows);
  c.drain(src);
  writer.join();
  CHECK_FALSE(writer_waited_out);  // the rows did not wait for the end of input
  REQUIRE(c.out.main.size() == 2);
  CHECK(std::get<std::string>(c.at(1, 0)) == "b");

  write_file(dir.file("plain.txt"), "x\n");
  auto plain = source_cfg({{"path", scalar(dir.file("plain.txt"))}, {"format", scalar("raw")}});
  CHECK_FALSE(file_source(plain.cfg).blocking());
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

namespace {

/// One row of a source's output with its position, for comparing continuations.
struct seen_row {
  std::vector<core::value> cells;
  std::int64_t time = 0;
  std::string position;
  bool operator==(const seen_row& o) const {
    return cells == o.cells && time == o.time && position == o.position;
  }
};

/// Polls `src` once with `max_rows`, appending main rows (with positions) and dead letters'
/// positions to `rows` / `dead`. The event times are left at 0 (the file source stamps
/// processing time, which the runtime replaces).
core::poll_status poll_rows(core::source_base& src, std::size_t max_rows,
                            std::vector<seen_row>& rows, std::vector<std::string>& dead) {
  core::outputs o;
  auto st = src.poll(o, max_rows);
  for (std::size_t i = 0; i < o.main.size(); ++i)
    rows.push_back({std::vector<core::value>(o.main.row(i), o.main.row(i) + o.main.width), 0,
                    src.row_position(i)});
  for (std::size_t i = 0; i < o.dead_letter.size(); ++i)
    dead.push_back(std::get<std::string>(o.dead_letter.row(i)[3]));
  return st;
}

void drain_rows(core::source_base& src, std::vector<seen_row>& rows,
                std::vector<std::string>& dead) {
  for (int i = 0; i < 10000; ++i)
    if (poll_rows(src, 1000, rows, dead) == core::poll_status::end) return;
  FAIL("the source did not end");
}

std::string snapshot_of(core::source_base& src) {
  core::state_writer w;
  src.on_barrier(1);
  src.snapshot(w);
  return w.take();
}

/// Reads `path` whole, then again as: `first` polls of `step` lines, a snapshot, and a new
/// source restored from it that reads the rest. The two must give the same rows, positions
/// and dead letters.
void check_resume(const test_config& t, std::size_t step, std::size_t first) {
  std::vector<seen_row> whole, resumed;
  std::vector<std::string> whole_dead, resumed_dead;
  {
    file_source src(t.cfg);
    src.open(ctx_of());
    drain_rows(src, whole, whole_dead);
  }
  std::string snap;
  {
    file_source a(t.cfg);
    a.open(ctx_of());
    for (std::size_t i = 0; i < first; ++i) poll_rows(a, step, resumed, resumed_dead);
    snap = snapshot_of(a);
  }
  INFO("step " << step << ", polls " << first << ", rows before the snapshot " << resumed.size());
  file_source b(t.cfg);
  REQUIRE(b.replayable());
  b.open(ctx_of());
  core::state_reader r(snap);
  b.restore(r);
  drain_rows(b, resumed, resumed_dead);
  CHECK(resumed == whole);
  CHECK(resumed_dead == whole_dead);
}

/// The names in `dir` (sorted), with or without the hidden ones.
std::vector<std::string> names_in(const std::filesystem::path& dir, bool hidden = false) {
  std::vector<std::string> out;
  for (auto& e : std::filesystem::directory_iterator(dir)) {
    auto n = e.path().filename().string();
    if (hidden || n[0] != '.') out.push_back(n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_CASE("file source resumes a CSV file with a header at exactly the next row",
          "[file][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("t.csv");
  // Row 3 spans two lines (a quoted line break): a snapshot between them resumes at its start.
  write_file(path,
             "sym,qty\n"
             "A,1\n"
             "B,2\n"
             "\"C\nc\",3\n"
             "D,x\n"
             "E,5\n"
             "\n"
             "F,6\n"
             "G,7\n");
  auto t = source_cfg({{"path", scalar(path)},
                       {"format", scalar("csv")},
                       {"schema", map({{"sym", scalar("string")}, {"qty", scalar("integer")}})}});
  for (std::size_t step : {1, 2, 3})
    for (std::size_t first : {1, 2, 3, 5}) check_resume(t, step, first);

  // Spot check: after three lines (header, A, B) the next row is C, from line 4.
  file_source a(t.cfg);
  a.open(ctx_of());
  std::vector<seen_row> rows;
  std::vector<std::string> dead;
  poll_rows(a, 3, rows, dead);
  REQUIRE(rows.size() == 2);
  auto snap = snapshot_of(a);
  file_source b(t.cfg);
  b.open(ctx_of());
  core::state_reader r(snap);
  b.restore(r);
  rows.clear();
  poll_rows(b, 1, rows, dead);  // the first line of C: no row yet
  poll_rows(b, 1, rows, dead);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].cells[0] == core::value(std::string("C\nc")));
  CHECK(rows[0].position == path + ":4");
  poll_rows(b, 1, rows, dead);  // D,x: a dead letter at line 6
  REQUIRE(dead.size() == 1);
  CHECK(dead[0] == path + ":6");
}

TEST_CASE("file source resumes JSON lines at exactly the next row", "[file][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("t.json");
  std::string text;
  for (int i = 0; i < 40; ++i)
    text += i == 17 ? std::string("{broken\n") : "{\"n\":" + std::to_string(i) + "}\n";
  write_file(path, text);
  auto t = source_cfg({{"path", scalar(path)}});
  for (std::size_t step : {1, 3, 7})
    for (std::size_t first : {1, 2, 5}) check_resume(t, step, first);
}

TEST_CASE("file source resumes a file whose last line has no newline", "[file][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("t.json");
  write_file(path, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}");
  auto t = source_cfg({{"path", scalar(path)}});
  for (std::size_t first : {1, 2, 3, 4}) check_resume(t, 1, first);

  // A snapshot after the end resumes at the end: nothing more, then the end.
  file_source a(t.cfg);
  a.open(ctx_of());
  std::vector<seen_row> rows;
  std::vector<std::string> dead;
  drain_rows(a, rows, dead);
  REQUIRE(rows.size() == 3);
  auto snap = snapshot_of(a);
  write_file(path, "{\"n\":4}\n", true);  // grown since: the resumed source reads on
  file_source b(t.cfg);
  b.open(ctx_of());
  core::state_reader r(snap);
  b.restore(r);
  rows.clear();
  drain_rows(b, rows, dead);
  // The unterminated last line was handed on whole, so the resumed reader starts after it:
  // the appended bytes are the next line, the file's fourth.
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].cells[0] == core::value(std::int64_t{4}));
  CHECK(rows[0].position == path + ":4");
}

TEST_CASE("file source restore past the end of a truncated file says so", "[file][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("t.json");
  write_file(path, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n");
  auto t = source_cfg({{"path", scalar(path)}});
  file_source a(t.cfg);
  a.open(ctx_of());
  std::vector<seen_row> rows;
  std::vector<std::string> dead;
  poll_rows(a, 2, rows, dead);
  auto snap = snapshot_of(a);
  write_file(path, "{\"n\":9}\n");  // truncated and rewritten: 8 bytes, the snapshot is at 16
  file_source b(t.cfg);
  b.open(ctx_of());
  core::state_reader r(snap);
  REQUIRE_THROWS_WITH(b.restore(r),
                      "file source: cannot resume '" + path +
                          "' at byte 16 (after line 2) from the checkpoint: the file has only 8 "
                          "bytes now, so it was truncated or replaced since the checkpoint; put "
                          "the file that was read back, or start the job without the checkpoint");

  // An instance that does not read (parallelism > 1) restores to nothing and ends.
  file_source other(t.cfg);
  other.open(ctx_of(1, 2));
  auto none = snapshot_of(other);
  file_source other2(t.cfg);
  other2.open(ctx_of(1, 2));
  core::state_reader r2(none);
  other2.restore(r2);
  rows.clear();
  drain_rows(other2, rows, dead);
  CHECK(rows.empty());
}

TEST_CASE("file sink exactly_once shows rows only when their checkpoint commits",
          "[file][sink][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("out.csv");
  auto schema = std::make_shared<core::schema>(std::vector<core::field>{
      {"sym", core::value_type::string}, {"qty", core::value_type::integer}});
  auto rows = [](int from) {
    core::batch b(2);
    for (int i = from; i < from + 2; ++i) {
      auto r = b.append(i);
      r[0] = std::string(1, static_cast<char>('A' + i));
      r[1] = std::int64_t{i};
    }
    return b;
  };
  auto t = sink_cfg(
      {{"path", scalar(path)}, {"format", scalar("csv")}, {"delivery", scalar("exactly_once")}});
  file_sink sink(t.cfg);
  REQUIRE(sink.exactly_once());
  sink.open(ctx_of(), schema);
  sink.write(rows(0));
  sink.flush();
  CHECK(names_in(dir.path()).empty());
  sink.prepare(1);
  core::state_writer w;
  sink.snapshot(w);
  CHECK(names_in(dir.path()).empty());
  CHECK(sink.delivered() == 0);
  sink.commit(1);
  CHECK(names_in(dir.path()) == std::vector<std::string>{"out.0000000001.csv"});
  CHECK(read_file(dir.file("out.0000000001.csv")) == "sym,qty\nA,0\nB,1\n");
  CHECK(sink.delivered() == 2);
  sink.commit(1);  // again: nothing more
  CHECK(names_in(dir.path()) == std::vector<std::string>{"out.0000000001.csv"});
  CHECK(sink.delivered() == 2);

  sink.prepare(2);  // no rows since 1: no file
  sink.write(rows(2));
  sink.prepare(3);
  sink.write(rows(4));
  sink.prepare(4);
  sink.write(rows(6));  // after the last barrier
  sink.commit(3);       // covers 2 and 3
  CHECK(names_in(dir.path()) ==
        std::vector<std::string>{"out.0000000001.csv", "out.0000000002.csv"});
  CHECK(read_file(dir.file("out.0000000002.csv")) == "sym,qty\nC,2\nD,3\n");
  sink.close();  // end of stream: everything
  CHECK(names_in(dir.path(), true) ==
        std::vector<std::string>{"out.0000000001.csv", "out.0000000002.csv", "out.0000000003.csv",
                                 "out.0000000004.csv"});
  CHECK(read_file(dir.file("out.0000000004.csv")) == "sym,qty\nG,6\nH,7\n");
  CHECK(sink.delivered() == 8);
  CHECK_FALSE(std::filesystem::exists(path));

  // A fresh start with `mode: overwrite` replaces them; with `append` it numbers on.
  {
    file_sink again(t.cfg);
    again.open(ctx_of(), schema);
    again.write(rows(0));
    again.close();
    CHECK(names_in(dir.path(), true) == std::vector<std::string>{"out.0000000001.csv"});
  }
  auto ta = sink_cfg({{"path", scalar(path)},
                      {"format", scalar("csv")},
                      {"mode", scalar("append")},
                      {"delivery", scalar("exactly_once")}});
  file_sink app(ta.cfg);
  app.open(ctx_of(), schema);
  app.write(rows(2));
  app.close();
  CHECK(names_in(dir.path(), true) ==
        std::vector<std::string>{"out.0000000001.csv", "out.0000000002.csv"});
  CHECK(read_file(dir.file("out.0000000002.csv")) == "sym,qty\nC,2\nD,3\n");

  // Instance 1 of 2 numbers its own files.
  auto tj = sink_cfg({{"path", scalar(dir.file("p.json"))}, {"delivery", scalar("exactly_once")}});
  file_sink part(tj.cfg);
  part.open(ctx_of(1, 2), schema);
  part.write(rows(0));
  part.close();
  CHECK(read_file(dir.file("p-1.0000000001.json")) ==
        "{\"sym\":\"A\",\"qty\":0}\n{\"sym\":\"B\",\"qty\":1}\n");
}

TEST_CASE("file sink exactly_once restore after a crash makes prepared rows visible once",
          "[file][sink][checkpoint]") {
  temp_dir dir;
  auto path = dir.file("out.json");
  auto schema =
      std::make_shared<core::schema>(std::vector<core::field>{{"n", core::value_type::integer}});
  auto rows = [](int from, int n) {
    core::batch b(1);
    for (int i = from; i < from + n; ++i) b.append(i)[0] = std::int64_t{i};
    return b;
  };
  auto t = sink_cfg({{"path", scalar(path)}, {"delivery", scalar("exactly_once")}});
  std::string snap1;
  {
    // The previous run: checkpoint 1 prepared and saved but not committed, checkpoint 2
    // prepared (never complete), rows after it in progress, then a crash.
    file_sink a(t.cfg);
    a.open(ctx_of(), schema);
    a.write(rows(0, 3));
    a.prepare(1);
    core::state_writer w;
    a.snapshot(w);
    snap1 = w.take();
    a.write(rows(3, 2));
    a.prepare(2);
    a.write(rows(5, 1));
    a.flush();
  }
  CHECK(names_in(dir.path()).empty());
  CHECK(names_in(dir.path(), true).size() == 3);  // sealed 1, sealed 2, in progress

  const std::string first = "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n";
  {
    file_sink b(t.cfg);
    b.open(ctx_of(), schema);
    core::state_reader r(snap1);
    b.restore(1, r);
    // Checkpoint 1's rows are visible once; what came after it is gone.
    CHECK(names_in(dir.path(), true) == std::vector<std::string>{"out.0000000001.json"});
    CHECK(read_file(dir.file("out.0000000001.json")) == first);
    CHECK(b.delivered() == 3);
    // The replayed rows after checkpoint 1 get the next number.
    b.write(rows(3, 2));
    b.prepare(2);
    b.commit(2);
    CHECK(read_file(dir.file("out.0000000002.json")) == "{\"n\":3}\n{\"n\":4}\n");
    b.write(rows(5, 1));
    b.abort();  // stopped: the part in progress is dropped
    CHECK(names_in(dir.path(), true) ==
          std::vector<std::string>{"out.0000000001.json", "out.0000000002.json"});
  }
  {
    // Restoring checkpoint 1 again (its part was renamed already): nothing is repeated, and
    // the file committed after checkpoint 1 goes, as its rows are replayed.
    file_sink c(t.cfg);
    c.open(ctx_of(), schema);
    core::state_reader r(snap1);
    c.restore(1, r);
    CHECK(names_in(dir.path(), true) == std::vector<std::string>{"out.0000000001.json"});
    CHECK(read_file(dir.file("out.0000000001.json")) == first);
    c.close();
    CHECK(names_in(dir.path(), true) == std::vector<std::string>{"out.0000000001.json"});
  }
}

TEST_CASE("file source reports the lines still to read and how fast a followed file grows",
          "[file][follow][scaling]") {
  temp_dir dir;
  auto path = dir.file("big.txt");
  // 20,000 lines of different lengths (3 to 12 bytes): the estimate uses the mean so far.
  std::string text;
  for (int i = 0; i < 20000; ++i) text += std::string(2 + i % 10, 'x') + "\n";
  write_file(path, text);
  auto t = source_cfg({{"path", scalar(path)}, {"format", scalar("raw")}, {"follow", scalar("true")}});
  file_source src(t.cfg);
  CHECK(src.offered().backlog < 0);  // not open
  src.open(ctx_of());
  core::outputs out;
  while (out.main.size() < 5000) REQUIRE(src.poll(out, 500) == core::poll_status::data);
  // The lines left, estimated from the bytes left: within a few percent.
  const double left = 20000.0 - static_cast<double>(out.main.size());
  const auto l = src.offered();
  CHECK(l.backlog == Approx(left).epsilon(0.05));
  CHECK(l.rate < 0);  // first look: no rate yet
  // The file grows while it is followed: a rate appears.
  double rate = -1;
  REQUIRE(poll_until([&] {
    write_file(path, std::string(200, 'y') + "\n", true);
    rate = src.offered().rate;
    return rate > 0;
  }));
}
