// `pel run` as a user runs it: a filter/map pipeline over a generated CSV checked against a
// plain computation, graceful stop on SIGINT/SIGTERM (nothing lost, no torn line), abort on
// a second SIGINT, runtime failures (exit 1, component named), dead letters with reason and
// position, and JSON logs.
#include "e2e_support.hpp"
#include "json_line.hpp"
#include "process.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <map>
#include <set>

using namespace pel::e2e;

namespace {

bool contains(const std::string& text, const std::string& what) {
  return text.find(what) != std::string::npos;
}

/// Complete lines (ending in '\n') of a file, and whether a partial line follows them.
std::vector<std::string> complete_lines(const std::string& path, bool* torn = nullptr) {
  auto text = read_file(path);
  if (torn) *torn = !text.empty() && text.back() != '\n';
  auto nl = text.rfind('\n');
  return nl == std::string::npos ? std::vector<std::string>{} : lines_of(text.substr(0, nl + 1));
}

std::size_t count_char(const std::string& s, char c) {
  return static_cast<std::size_t>(std::count(s.begin(), s.end(), c));
}

}  // namespace

TEST_CASE("pel run: file source -> filter -> map -> file sink matches a plain computation",
          "[e2e][run]") {
  temp_dir dir;
  // Input: 5000 rows with prices in quarters (exact in binary) and a few symbols.
  struct row {
    std::int64_t id;
    std::string sym;
    double price;
    std::int64_t qty;
  };
  std::vector<row> input;
  std::string csv = "id,sym,price,qty\n";
  const char* syms[] = {"AAA", "BBB", "CCC", "DDD"};
  for (std::int64_t i = 1; i <= 5000; ++i) {
    row r{i, syms[(i * 7) % 4], 10.0 + static_cast<double>((i * 37) % 400) * 0.25, (i * 13) % 200};
    input.push_back(r);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%lld,%s,%.2f,%lld\n", static_cast<long long>(r.id),
                  r.sym.c_str(), r.price, static_cast<long long>(r.qty));
    csv += buf;
  }
  write_file(dir / "in.csv", csv);
  write_file(dir / "p.yaml",
             "pipeline: {name: filter_map, parallelism: 2}\n"
             "sources:\n"
             "  src: {type: file, path: " +
                 (dir / "in.csv") +
                 ", format: csv, parallelism: 1}\n"
                 "operators:\n"
                 "  large:\n"
                 "    type: filter\n"
                 "    input: src\n"
                 "    where: qty >= 50 and sym != 'CCC'\n"
                 "  priced:\n"
                 "    type: map\n"
                 "    input: large\n"
                 "    fields: {notional: price * qty, half: qty / 2}\n"
                 "sinks:\n"
                 "  out: {type: file, input: priced, path: " +
                 (dir / "out.json") + ", parallelism: 1}\n");
  auto r = run_pel({"run", "--progress", "never", dir / "p.yaml"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);

  // The same in plain C++.
  std::map<std::int64_t, const row*> expected;
  for (const auto& x : input)
    if (x.qty >= 50 && x.sym != "CCC") expected[x.id] = &x;
  REQUIRE(expected.size() > 1000);
  REQUIRE(expected.size() < input.size());

  auto rows = parse_json_lines(read_file(dir / "out.json"));
  REQUIRE(rows.size() == expected.size());
  std::set<std::int64_t> seen;
  for (const auto& o : rows) {
    auto id = o.integer("id");
    INFO("id " << id);
    REQUIRE(seen.insert(id).second);
    auto it = expected.find(id);
    REQUIRE(it != expected.end());
    const row& x = *it->second;
    CHECK(o.order == std::vector<std::string>{"id", "sym", "price", "qty", "notional", "half"});
    CHECK(o.str("sym") == x.sym);
    CHECK(o.num("price") == x.price);
    CHECK(o.integer("qty") == x.qty);
    CHECK(close_to(o.num("notional"), x.price * static_cast<double>(x.qty)));
    CHECK(o.integer("half") == x.qty / 2);  // int / int is integer division
  }
}

TEST_CASE("pel run: an unbounded pipeline stops gracefully on SIGINT and SIGTERM",
          "[e2e][run][signals]") {
  for (int sig : {SIGINT, SIGTERM}) {
    DYNAMIC_SECTION("signal " << sig) {
      temp_dir dir;
      auto keep = dir / "keep.json";
      write_file(dir / "p.yaml",
                 "pipeline: {checkpoint_interval: 100ms}\n"
                 "sources:\n"
                 "  src: {type: generator, rate: 20000, parallelism: 1}\n"
                 "sinks:\n"
                 "  show: {type: stdout, input: src}\n"
                 "  keep: {type: file, input: src, path: " +
                     keep + "}\n");
      process p({pel_binary(), "run", "--progress", "never", dir / "p.yaml"},
                {source_dir(), {}, {}});
      // Running: rows arrive on stdout and (at checkpoints) in the file.
      REQUIRE(p.wait_until([&] { return count_char(p.out(), '\n') >= 2000; }, milliseconds(15000)));
      REQUIRE(eventually([&] { return !complete_lines(keep).empty(); }, milliseconds(10000)));
      CHECK_FALSE(p.exited());
      p.send_signal(sig);
      auto r = p.wait(milliseconds(15000));
      INFO(r.err);
      REQUIRE_FALSE(r.timed_out);
      CHECK(r.exit_code == 0);
      CHECK(contains(r.err, "stopping"));
      CHECK(contains(r.err, "stopped: "));
      CHECK(contains(r.err, "stopping after "));

      // Every row it reported on stdout is in the file, once, whole; ids 1..n without gaps.
      bool torn = true;
      auto file_lines = complete_lines(keep, &torn);
      CHECK_FALSE(torn);
      auto shown = parse_json_lines(r.out);
      REQUIRE(r.out.back() == '\n');
      auto kept = parse_json_lines(read_file(keep));
      REQUIRE(kept.size() == file_lines.size());
      REQUIRE(shown.size() >= 2000);
      CHECK(kept.size() == shown.size());
      std::vector<std::int64_t> a, b;
      for (const auto& o : shown) a.push_back(o.integer("trade_id"));
      for (const auto& o : kept) b.push_back(o.integer("trade_id"));
      std::sort(a.begin(), a.end());
      std::sort(b.begin(), b.end());
      CHECK(a == b);
      bool contiguous = true;
      for (std::size_t i = 0; i < b.size(); ++i)
        contiguous = contiguous && b[i] == static_cast<std::int64_t>(i + 1);
      CHECK(contiguous);
    }
  }
}

TEST_CASE("pel run: a followed file is read as it grows and kept whole after SIGTERM",
          "[e2e][run][signals]") {
  temp_dir dir;
  auto in = dir / "in.jsonl";
  auto out = dir / "out.json";
  auto line = [](int i) {
    return "{\"n\":" + std::to_string(i) + ",\"word\":\"w" + std::to_string(i % 7) + "\"}\n";
  };
  std::string text;
  for (int i = 0; i < 100; ++i) text += line(i);
  write_file(in, text);
  write_file(dir / "p.yaml",
             "pipeline: {checkpoint_interval: 100ms}\n"
             "sources:\n"
             "  src: {type: file, path: " +
                 in +
                 ", format: json, follow: true,\n"
                 "        schema: {n: int, word: string}}\n"
                 "sinks:\n"
                 "  out: {type: file, input: src, path: " +
                 out + "}\n");
  process p({pel_binary(), "run", "--progress", "never", dir / "p.yaml"}, {source_dir(), {}, {}});
  REQUIRE(p.wait_until([&] { return complete_lines(out).size() >= 100; }, milliseconds(15000)));
  {
    std::ofstream f(in, std::ios::app);
    for (int i = 100; i < 250; ++i) f << line(i);
  }
  // The appended lines arrive although the file had ended: the source follows it.
  REQUIRE(p.wait_until([&] { return complete_lines(out).size() >= 250; }, milliseconds(15000)));
  CHECK_FALSE(p.exited());
  p.send_signal(SIGTERM);
  auto r = p.wait(milliseconds(15000));
  INFO(r.err);
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.exit_code == 0);
  bool torn = true;
  auto rows = parse_json_lines(read_file(out));
  complete_lines(out, &torn);
  CHECK_FALSE(torn);
  REQUIRE(rows.size() == 250);
  for (int i = 0; i < 250; ++i) {
    CHECK(rows[static_cast<std::size_t>(i)].integer("n") == i);
    CHECK(rows[static_cast<std::size_t>(i)].str("word") == "w" + std::to_string(i % 7));
  }
}

TEST_CASE("pel run: a second SIGINT aborts with exit 130", "[e2e][run][signals]") {
  temp_dir dir;
  write_file(dir / "p.yaml",
             "sources:\n"
             "  src: {type: generator}\n"
             "sinks:\n"
             "  show: {type: stdout, input: src}\n");
  process p({pel_binary(), "run", "--progress", "never", dir / "p.yaml"}, {source_dir(), {}, {}});
  // The test does not read stdout: the unbounded generator fills the pipe and the stdout
  // sink blocks in write, so a graceful stop cannot finish until someone reads.
  REQUIRE(eventually([&] { return p.stdout_pending() >= 60000; }, milliseconds(15000)));
  p.send_signal(SIGINT);
  // The first signal is taken (the watcher logs it; signals do not queue, so the second
  // must come after) but the stop waits on the blocked sink.
  REQUIRE(p.wait_until_stderr([&] { return contains(p.err(), "press Ctrl-C again"); },
                              milliseconds(10000)));
  CHECK_FALSE(p.exited());
  p.send_signal(SIGINT);
  auto r = p.wait(milliseconds(15000));
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.exit_code == 130);
  CHECK(contains(r.err, "press Ctrl-C again to abort"));
  CHECK(contains(r.err, "aborted"));
}

TEST_CASE("pel run: runtime failures exit 1 and name the component", "[e2e][run][errors]") {
  temp_dir dir;
  SECTION("a file source on a missing file is refused before it starts (exit 2, located)") {
    write_file(dir / "p.yaml",
               "sources:\n"
               "  readings: {type: file, path: " +
                   (dir / "missing.csv") +
                   ", format: csv, schema: {a: int}}\n"
                   "sinks:\n"
                   "  out: {type: file, input: readings, path: " +
                   (dir / "out.json") + "}\n");
    auto r = run_pel({"run", dir / "p.yaml"});
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, (dir / "p.yaml") + ":2:32: sources.readings.path: cannot read '" +
                              (dir / "missing.csv") + "': No such file or directory"));
    CHECK_FALSE(fs::exists(dir.path() / "out.json"));
  }
  SECTION("a file sink whose path is a directory") {
    fs::create_directory(dir.path() / "a_dir");
    write_file(dir / "p.yaml",
               "sources:\n"
               "  ticks: {type: generator, count: 1000}\n"
               "sinks:\n"
               "  archive: {type: file, input: ticks, path: " +
                   (dir / "a_dir") + "}\n");
    auto r = run_pel({"run", dir / "p.yaml"});
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "failed: archive: file sink: cannot open '" + (dir / "a_dir") + "'"));
  }
  SECTION("a file sink into a missing directory creates it (not a failure)") {
    auto path = (dir.path() / "new" / "deeper" / "out.json").string();
    write_file(dir / "p.yaml",
               "sources:\n"
               "  ticks: {type: generator, count: 1000}\n"
               "sinks:\n"
               "  archive: {type: file, input: ticks, path: " +
                   path + "}\n");
    auto r = run_pel({"run", dir / "p.yaml"});
    CHECK(r.exit_code == 0);
    CHECK(lines_of(read_file(path)).size() == 1000);
  }
}

TEST_CASE("pel run: malformed records go to the dead-letter sink with reason and position",
          "[e2e][run][dead_letter]") {
  temp_dir dir;
  auto csv_path = dir / "in.csv";
  auto json_path = dir / "in.jsonl";
  // CSV: 300 records; every 10th has a bad price, every 25th a missing field, every 40th
  // an extra one. Line numbers count the header as line 1.
  std::string csv = "id,name,price,qty\n";
  std::map<std::string, std::string> bad_csv;  // position -> reason fragment
  std::size_t good_csv = 0;
  for (int i = 1; i <= 300; ++i) {
    std::string pos = csv_path + ":" + std::to_string(i + 1);
    if (i % 10 == 0) {
      csv += std::to_string(i) + ",n" + std::to_string(i) + ",oops,1\n";
      bad_csv[pos] = "field 'price': expected double";
    } else if (i % 25 == 0) {
      csv += std::to_string(i) + ",n" + std::to_string(i) + ",2.5\n";
      bad_csv[pos] = "expected 4 fields, found 3";
    } else if (i % 40 == 0) {
      csv += std::to_string(i) + ",n" + std::to_string(i) + ",2.5,1,9\n";
      bad_csv[pos] = "expected 4 fields, found 5";
    } else {
      csv += std::to_string(i) + ",n" + std::to_string(i) + ",2.5," + std::to_string(i) + "\n";
      ++good_csv;
    }
  }
  write_file(csv_path, csv);
  // JSON lines: 200 records; every 15th is cut short, every 35th has a string id.
  std::string jsonl;
  std::map<std::string, std::string> bad_json;
  std::size_t good_json = 0;
  for (int i = 1; i <= 200; ++i) {
    std::string pos = json_path + ":" + std::to_string(i);
    if (i % 15 == 0) {
      jsonl += "{\"id\":" + std::to_string(i) + ",\n";
      bad_json[pos] = "invalid JSON";
    } else if (i % 35 == 0) {
      jsonl += "{\"id\":\"x" + std::to_string(i) + "\",\"name\":\"n\"}\n";
      bad_json[pos] = "field 'id': expected int";
    } else {
      jsonl += "{\"id\":" + std::to_string(i) + ",\"name\":\"n" + std::to_string(i) + "\"}\n";
      ++good_json;
    }
  }
  write_file(json_path, jsonl);
  write_file(dir / "p.yaml",
             "pipeline: {dead_letter: rejected}\n"
             "sources:\n"
             "  table: {type: file, path: " +
                 csv_path +
                 ", format: csv,\n"
                 "          schema: {id: int, name: string, price: double, qty: int}}\n"
                 "  events: {type: file, path: " +
                 json_path +
                 ", format: json,\n"
                 "           schema: {id: int, name: string}}\n"
                 "sinks:\n"
                 "  table_out: {type: file, input: table, path: " +
                 (dir / "table.json") +
                 "}\n"
                 "  events_out: {type: file, input: events, path: " +
                 (dir / "events.json") +
                 "}\n"
                 "  rejected: {type: file, input: table.dead_letter, path: " +
                 (dir / "dead.json") + "}\n");
  auto r = run_pel({"run", dir / "p.yaml"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, "records out, " + std::to_string(bad_csv.size() + bad_json.size()) + " dead letters, 0 late"));

  auto table = parse_json_lines(read_file(dir / "table.json"));
  auto events = parse_json_lines(read_file(dir / "events.json"));
  auto dead = parse_json_lines(read_file(dir / "dead.json"));
  // Nothing lost, nothing doubled: good + dead == input records, per source.
  CHECK(table.size() == good_csv);
  CHECK(events.size() == good_json);
  CHECK(table.size() + events.size() + dead.size() == 300 + 200);

  std::size_t from_csv = 0, from_json = 0;
  std::set<std::string> positions;
  for (const auto& d : dead) {
    CHECK(d.order ==
          std::vector<std::string>{"reason", "operator", "source", "position", "record", "time"});
    auto pos = d.str("position");
    INFO("dead letter at " << pos << ": " << d.str("reason"));
    CHECK(positions.insert(pos).second);
    if (bad_csv.count(pos)) {
      ++from_csv;
      CHECK(d.str("source") == "table");
      CHECK(contains(d.str("reason"), bad_csv[pos]));
      // The record is the input line itself.
      auto line_no = std::stoul(pos.substr(csv_path.size() + 1));
      CHECK(d.str("record") == lines_of(csv)[line_no - 1]);
    } else if (bad_json.count(pos)) {
      ++from_json;
      CHECK(d.str("source") == "events");
      CHECK(contains(d.str("reason"), bad_json[pos]));
      auto line_no = std::stoul(pos.substr(json_path.size() + 1));
      CHECK(d.str("record") == lines_of(jsonl)[line_no - 1]);
    } else {
      FAIL("unexpected dead letter position " << pos);
    }
  }
  CHECK(from_csv == bad_csv.size());
  CHECK(from_json == bad_json.size());
  // The good rows are all there with their values.
  std::set<std::int64_t> ids;
  for (const auto& o : table) {
    ids.insert(o.integer("id"));
    CHECK(o.integer("qty") == o.integer("id"));
  }
  CHECK(ids.size() == good_csv);
}

TEST_CASE("pel --log-format json: every stderr line is a JSON object with time, level, msg",
          "[e2e][logging]") {
  temp_dir dir;
  // Dead letters go to the log (the default), and their text holds quotes and backslashes.
  write_file(dir / "in.csv",
             "id,name\n1,\"a \"\"quoted\"\" name\"\nx,\"back\\slash\"\n3,c\n\xff\xfe,bytes\n");
  write_file(dir / "p.yaml",
             "sources:\n"
             "  src: {type: file, path: " +
                 (dir / "in.csv") +
                 ", format: csv,\n"
                 "        schema: {id: int, name: string}}\n"
                 "sinks:\n"
                 "  out: {type: file, input: src, path: " +
                 (dir / "out.json") + "}\n");
  auto check_json_log = [](const std::string& err, std::size_t min_lines) {
    auto lines = lines_of(err);
    CHECK(lines.size() >= min_lines);
    for (const auto& l : lines) {
      INFO("stderr line: " << l);
      std::string why;
      auto o = parse_json_object(l, &why);
      INFO(why);
      REQUIRE(o);
      CHECK_NOTHROW(o->str("time"));
      CHECK_NOTHROW(o->str("level"));
      CHECK_NOTHROW(o->str("msg"));
    }
    return lines;
  };
  auto r = run_pel({"--log-format", "json", "--log-level", "debug", "run", dir / "p.yaml"});
  CHECK(r.exit_code == 0);
  auto lines = check_json_log(r.err, 3);
  // The record with bytes that are not UTF-8 is logged with U+FFFD in their place.
  CHECK(r.err.find('\xff') == std::string::npos);
  CHECK(r.err.find("\xef\xbf\xbd") != std::string::npos);
  // The dead letter reached the log, with its reason readable after decoding.
  bool found = false;
  for (const auto& l : lines) {
    auto o = parse_json_object(l);
    if (!o) continue;
    const auto& msg = o->str("msg");
    auto brace = msg.find('{');
    if (msg.rfind("dead letter", 0) != 0 || brace == std::string::npos) continue;
    // The message holds the dead letter as JSON in turn; its record is the line as read.
    auto dl = parse_json_object(msg.substr(brace));
    REQUIRE(dl);
    CHECK(contains(dl->str("reason"), "expected int"));
    if (dl->str("record") == "x,\"back\\slash\"") found = true;
  }
  CHECK(found);
  CHECK(lines_of(read_file(dir / "out.json")).size() == 2);

  // A failure is logged as JSON too, at level error; global options may follow the command.
  fs::create_directory(dir.path() / "a_dir");
  write_file(dir / "fail.yaml",
             "sources:\n"
             "  src: {type: generator, count: 100}\n"
             "sinks:\n"
             "  out: {type: file, input: src, path: " +
                 (dir / "a_dir") + "}\n");
  auto f = run_pel({"run", dir / "fail.yaml", "--log-format", "json"});
  CHECK(f.exit_code == 1);
  auto flines = check_json_log(f.err, 2);
  bool error_line = false;
  for (const auto& l : flines) {
    auto o = parse_json_object(l);
    if (o && o->str("level") == "error" && contains(o->str("msg"), "out: file sink"))
      error_line = true;
  }
  CHECK(error_line);

  // Text format is not JSON (so the checks above can fail).
  auto t = run_pel({"run", dir / "p.yaml"});
  REQUIRE_FALSE(lines_of(t.err).empty());
  CHECK_FALSE(parse_json_object(lines_of(t.err).front()));
}

TEST_CASE("pel run: pipelines that would share a file are refused before anything starts",
          "[e2e][run]") {
  temp_dir dir;
  const std::string gen = "sources:\n  ticks: {type: generator, count: 100}\n";
  // a.yaml writes out.json; b.yaml writes the same file, named through the environment and
  // a detour; c.yaml reads it.
  write_file(dir / "a.yaml", gen + "sinks:\n  out: {type: file, input: ticks, path: " +
                                 (dir / "out.json") + "}\n");
  write_file(dir / "b.yaml", gen + "sinks:\n  copy:\n    type: file\n    input: ticks\n"
                                   "    path: ${PEL_TEST_DIR}/./sub/../out.json\n");
  fs::create_directories(dir / "sub");
  write_file(dir / "out.json", "{\"id\": 1}\n");  // what c.yaml reads, from an earlier run
  write_file(dir / "c.yaml", "sources:\n  back: {type: file, path: " + (dir / "out.json") +
                                 ", format: json, schema: {id: int}}\n"
                                 "sinks:\n  show: {type: stdout, input: back}\n");
  process_options env;
  env.env = {"PEL_TEST_DIR=" + dir.path().string()};

  auto r = run_pel({"run", dir / "a.yaml", dir / "b.yaml", dir / "c.yaml"}, milliseconds(20000),
                   env);
  CHECK(r.exit_code == 2);
  auto lines = lines_of(r.err);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0].rfind(dir / "b.yaml" + ":7:11: sinks.copy.path: the file '", 0) == 0);
  CHECK(contains(lines[0], "is also written by sinks.out at " + dir / "a.yaml" + ":4:41;"));
  CHECK(lines[1].rfind(dir / "c.yaml" + ":2:28: sources.back.path: the file '", 0) == 0);
  CHECK(contains(lines[1], "is written by sinks.out at " + dir / "a.yaml" +
                               ":4:41 while this source reads it"));
  CHECK(lines[2] == "pel run: 2 errors, nothing started");
  CHECK(read_file(dir / "out.json") == "{\"id\": 1}\n");  // not overwritten: nothing ran
  CHECK(r.out.empty());

  // One file with two sinks on one path: lint says so too.
  write_file(dir / "twice.yaml", gen + "sinks:\n"
                                       "  a: {type: file, input: ticks, path: twice.json}\n"
                                       "  b: {type: file, input: ticks, path: ./twice.json}\n");
  auto lint = run_pel({"lint", dir / "twice.yaml"}, milliseconds(20000));
  CHECK(lint.exit_code == 2);
  CHECK(contains(lint.err, dir / "twice.yaml" + ":5:39: sinks.b.path: the file './twice.json'"));
  CHECK(contains(lint.err, "also written by sinks.a at " + dir / "twice.yaml" + ":4:39"));

  // Each of them alone runs (so the refusals above can fail).
  auto a = run_pel({"run", dir / "a.yaml"}, milliseconds(20000));
  CHECK(a.exit_code == 0);
  CHECK(lines_of(read_file(dir / "out.json")).size() == 100);
}

TEST_CASE("pel run: the run summary counts every component's records, dead letters and the "
          "late records a window dropped",
          "[e2e][run][summary]") {
  temp_dir dir;
  // 20,000 trades in time order over 2,000 s, then 7 at 20 s (far behind the watermark that
  // the first poll's rows already gave: late), and 2 whose time cannot be read (dead letters
  // of the runtime, which reads `ts` as epoch milliseconds).
  std::string csv = "ts,sym,qty\n";
  for (int i = 0; i < 20'000; ++i) csv += std::to_string(1'700'000'000'000 + i * 100) + ",S" + std::to_string(i % 3) + ",1\n";
  for (int i = 0; i < 7; ++i) csv += std::to_string(1'700'000'000'000 + 20'000 + i) + ",S0,1\n";
  csv += "soon,S1,1\nlater,S2,1\n";
  write_file(dir / "in.csv", csv);
  write_file(dir / "p.yaml",
             "pipeline: {name: summary, parallelism: 1}\n"
             "sources:\n"
             "  trades:\n"
             "    type: file\n"
             "    path: " + (dir / "in.csv") + "\n"
             "    format: csv\n"
             "    schema: {ts: string, sym: string, qty: int}\n"
             "    event_time: {field: ts, format: epoch_ms, max_out_of_orderness: 1s}\n"
             "operators:\n"
             "  counts:\n"
             "    type: window\n"
             "    input: trades\n"
             "    key: sym\n"
             "    window: {type: tumbling, size: 5s}\n"
             "    aggregates: {n: count()}\n"
             "sinks:\n"
             "  out: {type: file, input: counts, path: " + (dir / "out.json") + "}\n"
             "  dead: {type: file, input: trades.dead_letter, path: " + (dir / "dead.json") + "}\n");
  auto r = run_pel({"run", "--progress", "never", dir / "p.yaml"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.err, " records out, 2 dead letters, 7 late"));
  // The rows whose time cannot be read are dead letters at their line of the file.
  auto dead = parse_json_lines(read_file(dir / "dead.json"));
  REQUIRE(dead.size() == 2);
  CHECK(dead[0].str("position") == (dir / "in.csv") + ":20009");
  CHECK(dead[1].str("position") == (dir / "in.csv") + ":20010");
  CHECK(contains(dead[0].str("reason"), "cannot read event time field 'ts' as epoch_ms"));
  CHECK(contains(r.err, "  trades  out 20007  dead letters 2\n"));
  CHECK(contains(r.err, "  counts  in 20007  out "));
  CHECK(contains(r.err, "late 7 (dropped)"));
  CHECK(contains(r.err, "p.yaml: 7 late records dropped, 0 input records lost before they were "
                        "read, 2 dead letters"));
}

TEST_CASE("pel run: a schedule rescales a keyed window while it runs, --no-autoscale keeps it, "
          "and both outputs are the same",
          "[e2e][run][scaling]") {
  temp_dir dir;
  // 60,000 trades over 50 symbols at 30,000 a second: two seconds, over which the window goes
  // 1 -> 3 -> 2.
  const std::string pipeline =
      "pipeline:\n"
      "  name: steps\n"
      "  scaling:\n"
      "    policy: schedule\n"
      "    schedule:\n"
      "      - {at: 500ms, component: bars, parallelism: 3}\n"
      "      - {at: 1200ms, component: bars, parallelism: 2}\n"
      "sources:\n"
      "  trades: {type: generator, profile: trades, symbols: 50, rate: 30000, count: 60000}\n"
      "operators:\n"
      "  bars:\n"
      "    type: window\n"
      "    input: trades\n"
      "    key: symbol\n"
      "    parallelism: {initial: 1, min: 1, max: 4}\n"
      "    window: {type: tumbling, size: 100ms}\n"
      "    aggregates: {trades: count(), volume: sum(qty)}\n"
      "sinks:\n"
      "  out: {type: file, path: OUT, format: json}\n";
  auto write_for = [&](const std::string& name) {
    std::string y = pipeline;
    y.replace(y.find("OUT"), 3, dir / (name + ".jsonl"));
    y.replace(y.find("  out: {type: file,"), 19, "  out: {type: file, input: bars,");
    write_file(dir / (name + ".yaml"), y);
  };
  write_for("scaled");
  write_for("fixed");
  auto scaled = run_pel({"run", "--progress", "never", dir / "scaled.yaml"}, std::chrono::seconds(60));
  INFO(scaled.err);
  REQUIRE(scaled.exit_code == 0);
  CHECK(scaled.err.find("scaling bars from 1 to 3 instances: schedule: at 0.5 s") != std::string::npos);
  CHECK(scaled.err.find("bars: 3 → 2 instances, rescaled in") != std::string::npos);
  CHECK(scaled.err.find("bars: parallelism 1 -> 3 -> 2 (range 1..4, at most 3 at once)") != std::string::npos);
  auto fixed = run_pel({"run", "--progress", "never", "--no-autoscale", dir / "fixed.yaml"}, std::chrono::seconds(60));
  INFO(fixed.err);
  REQUIRE(fixed.exit_code == 0);
  CHECK(fixed.err.find("scaling") == std::string::npos);
  // The same windows with the same counts, whatever the parallelism was.
  auto sorted_lines = [](const std::string& text) {
    auto l = lines_of(text);
    std::sort(l.begin(), l.end());
    return l;
  };
  const auto a = sorted_lines(read_file(dir / "scaled.jsonl"));
  const auto b = sorted_lines(read_file(dir / "fixed.jsonl"));
  CHECK(a.size() > 500);
  CHECK(a == b);
}

TEST_CASE("pel run: 40 injected crashes while a keyed window is rescaled five times lose and repeat nothing",
          "[e2e][run][scaling][chaos]") {
  temp_dir dir;
  // Exactly-once file output; the schedule moves the window 1 -> 4 -> 2 -> 3 -> 1 -> 4 while
  // --chaos crashes random instances (some of them in the middle of a rescale).
  auto write_for = [&](const std::string& name) {
    write_file(dir / (name + ".yaml"),
               "pipeline:\n"
               "  name: chaos_steps\n"
               "  checkpoints: {interval: 50ms}\n"
               "  supervision: {intensity: 100, period: 60s, backoff: {initial: 10ms, max: 50ms}}\n"
               "  scaling:\n"
               "    policy: schedule\n"
               "    schedule:\n"
               "      - {at: 300ms, component: bars, parallelism: 4}\n"
               "      - {at: 700ms, component: bars, parallelism: 2}\n"
               "      - {at: 1100ms, component: bars, parallelism: 3}\n"
               "      - {at: 1500ms, component: bars, parallelism: 1}\n"
               "      - {at: 1900ms, component: bars, parallelism: 4}\n"
               "sources:\n"
               "  trades: {type: generator, profile: trades, symbols: 200, rate: 50000, count: 120000}\n"
               "operators:\n"
               "  bars:\n"
               "    type: window\n"
               "    input: trades\n"
               "    key: symbol\n"
               "    parallelism: {initial: 1, min: 1, max: 4}\n"
               "    window: {type: tumbling, size: 100ms}\n"
               "    aggregates: {trades: count(), volume: sum(qty)}\n"
               "sinks:\n"
               "  out: {type: file, input: bars, path: " + (dir / (name + ".jsonl")) +
                   ", format: json, delivery: exactly_once}\n");
  };
  // The committed part files of a run, every line, sorted.
  auto output = [&](const std::string& name) {
    std::vector<std::string> all;
    for (const auto& f : std::filesystem::directory_iterator(dir.path()))
      if (f.path().filename().string().rfind(name + ".", 0) == 0 && f.path().extension() == ".jsonl")
        for (auto& l : lines_of(read_file(f.path().string()))) all.push_back(std::move(l));
    std::sort(all.begin(), all.end());
    return all;
  };
  write_for("fixed");
  auto fixed = run_pel({"run", "--progress", "never", "--no-autoscale", dir / "fixed.yaml"}, std::chrono::seconds(60));
  INFO(fixed.err);
  REQUIRE(fixed.exit_code == 0);
  const auto want = output("fixed");
  REQUIRE(want.size() > 1000);
  for (const char* seed : {"14", "17"}) {
    DYNAMIC_SECTION("seed " << seed) {
      const std::string name = std::string("chaos") + seed;
      write_for(name);
      auto r = run_pel({"run", "--progress", "never", "--chaos", std::string("seed=") + seed + ",rate=40,max=40",
                        dir / (name + ".yaml")},
                       std::chrono::seconds(120));
      INFO(r.err);
      REQUIRE(r.exit_code == 0);
      CHECK(r.err.find("failures injected by --chaos: 40") != std::string::npos);
      std::size_t decided = 0, done = 0, abandoned = 0;
      for (const auto& l : lines_of(r.err)) {
        if (l.find("scaling bars from") != std::string::npos) ++decided;
        if (l.find("instances, rescaled in") != std::string::npos) ++done;
        if (l.find("rescale abandoned") != std::string::npos) ++abandoned;
      }
      CHECK(decided == 5);
      CHECK(done + abandoned == 5);
      WARN("rescales carried out " << done << ", abandoned by a crash " << abandoned);
      const auto got = output(name);
      CHECK(got.size() == want.size());
      CHECK(got == want);
    }
  }
}

TEST_CASE("pel run: a table shows event times as ISO-8601 UTC unless time_format is epoch",
          "[e2e][run][output]") {
  temp_dir dir;
  auto pipeline = [&](const std::string& time_format) {
    return "sources:\n"
           "  trades:\n"
           "    type: generator\n"
           "    profile: trades\n"
           "    symbols: 3\n"
           "    count: 3000\n"
           "    event_time: {field: ts, format: epoch_ms, max_out_of_orderness: 200ms}\n"
           "operators:\n"
           "  bars:\n"
           "    type: window\n"
           "    input: trades\n"
           "    key: [symbol]\n"
           "    window: {type: tumbling, size: 1s}\n"
           "    aggregates: {n: count()}\n"
           "  view:\n"
           "    type: map\n"
           "    input: bars\n"
           "    fields: {time: window_start, doubled: window_start * 2}\n"
           "    select: [time, symbol, n, doubled]\n"
           "sinks:\n"
           "  out:\n"
           "    type: stdout\n"
           "    input: view\n"
           "    pretty: true\n" +
           time_format;
  };
  write_file(dir / "iso.yaml", pipeline(""));
  write_file(dir / "epoch.yaml", pipeline("    time_format: epoch\n"));
  auto iso = run_pel({"run", "--progress", "never", dir / "iso.yaml"});
  INFO(iso.err);
  REQUIRE(iso.exit_code == 0);
  // The generator's trades start at 2024-01-02T14:30:00Z; a window's start is an event time,
  // and a map that copies it keeps it one; arithmetic on it makes a plain number.
  CHECK(contains(iso.out, "2024-01-02T14:30:00.000Z  "));
  CHECK(contains(iso.out, "2024-01-02T14:30:01.000Z  "));
  CHECK_FALSE(contains(iso.out, "1704205800000 "));
  CHECK(contains(iso.out, "3408411600000"));
  // The finish line states the pipeline's totals.
  CHECK(contains(iso.err, "finished: 3000 records in, "));
  CHECK(contains(iso.err, " records out, 0 dead letters, 0 late"));

  auto epoch = run_pel({"run", "--progress", "never", dir / "epoch.yaml"});
  INFO(epoch.err);
  REQUIRE(epoch.exit_code == 0);
  CHECK(contains(epoch.out, "1704205800000"));
  CHECK_FALSE(contains(epoch.out, "2024-01-02T14:30"));
}
