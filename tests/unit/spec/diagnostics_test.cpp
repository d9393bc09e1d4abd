// Diagnostics stay one line whatever they quote; negative amounts are called negative; a
// gathering config collects every problem a factory reports.
#include "pel/spec/diagnostics.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/yaml.hpp"
#include "test_registry.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>

using namespace pel::spec;
using pel::spec::test::errors_of;

TEST_CASE("one_line escapes what would break a diagnostic's line", "[spec][diagnostics]") {
  CHECK(one_line("plain text: 'x' \\ \"y\"") == "plain text: 'x' \\ \"y\"");
  CHECK(one_line("a\nb\r\tc") == "a\\nb\\r\\tc");
  CHECK(one_line(std::string("nul\0bel\x07"
                             "del\x7f",
                             12)) == "nul\\x00bel\\x07del\\x7F");
  CHECK(one_line("caf\xc3\xa9 \xe2\x9c\x93") == "caf\xc3\xa9 \xe2\x9c\x93");  // UTF-8 kept
  CHECK(one_line("bad \xff\xc3") == "bad \\xFF\\xC3");                        // not UTF-8
  CHECK(one_line("nel \xc2\x85 ls \xe2\x80\xa8") == "nel \\xC2\\x85 ls \\xE2\\x80\\xA8");
}

TEST_CASE("a diagnostic is one line whatever its file, path and message hold",
          "[spec][diagnostics]") {
  diagnostic d{"dir\n/p.yaml", {3, 4}, "sinks.a\tb", "'x\ny' is not allowed"};
  CHECK(d.format() == "dir\\n/p.yaml:3:4: sinks.a\\tb: 'x\\ny' is not allowed");
}

TEST_CASE("an environment value with a line break is quoted on one line", "[spec][diagnostics]") {
  ::setenv("PEL_TEST_ONE_LINE", "js\non\x01", 1);
  const std::string text =
      "sources:\n"
      "  ticks: {type: gen, profile: \"${PEL_TEST_ONE_LINE}\"}\n"
      "sinks:\n"
      "  out: {type: print, input: ticks}\n";
  const std::string got = errors_of(text);
  ::unsetenv("PEL_TEST_ONE_LINE");
  CHECK(got ==
        "p.yaml:2:31: sources.ticks.profile: 'js\\non\\x01' is not allowed here; allowed "
        "values: market, sensor\n");
}

TEST_CASE("negative durations, sizes and bounded integers are called negative",
          "[spec][validate]") {
  const std::string text =
      "sources:\n"
      "  ticks: {type: gen, rate: -5}\n"
      "  file: {type: lines, path: x, max_line: -1KiB, poll: -5ms}\n"
      "operators:\n"
      "  w: {type: window, input: ticks, size: -1s}\n"
      "sinks:\n"
      "  out: {type: print, input: [w, file]}\n";
  CHECK(errors_of(text) ==
        "p.yaml:2:28: sources.ticks.rate: must not be negative, found '-5'; use a value from 1 "
        "to 1000000\n"
        "p.yaml:3:42: sources.file.max_line: must not be negative, found '-1KiB'; use a size "
        "of at least 16\n"
        "p.yaml:3:55: sources.file.poll: must not be negative, found '-5ms'; use a duration "
        "from 1ms to 1m\n"
        "p.yaml:5:41: operators.w.size: must not be negative, found '-1s'; use a duration such "
        "as 250ms, 1s or 5m\n");
}

TEST_CASE("config getters call a negative duration or size negative", "[spec][config]") {
  auto root = parse_yaml("a: -5ms\nb: -2MiB\n", "c.yaml");
  config c(root, "x", nullptr);
  REQUIRE_THROWS_WITH(c.get_duration_ns("a"),
                      "must not be negative, found '-5ms'; use a duration such as 250ms, 1s or 5m");
  REQUIRE_THROWS_WITH(c.get_bytes("b"),
                      "must not be negative, found '-2MiB'; use a size such as 512, 64KiB or 1MiB");
}

TEST_CASE("a gathering config collects what report and gather see", "[spec][config]") {
  auto root = parse_yaml("a: 1\nnested: {b: x}\nitems: [{c: 1}, {c: 2}]\n", "c.yaml");
  const config plain(root, "sinks.s", nullptr);

  SECTION("without gathering, report throws like fail") {
    CHECK_FALSE(plain.gathers());
    REQUIRE_THROWS_AS(plain.report("a", "bad a"), config_error);
    REQUIRE_THROWS_AS(plain.gather([&] { plain.fail("a", "bad a"); }), config_error);
  }

  SECTION("gathering keeps every error, in order, with its place, and children share it") {
    auto errors = std::make_shared<config::error_list>();
    const config c = plain.gathering(errors);
    CHECK(c.gathers());
    c.report("a", "first");
    CHECK_FALSE(c.gather([&] { c.child("nested").fail("b", "second"); }));
    CHECK(c.gather([] {}));
    c.children("items").at(1).report("c", "third");
    REQUIRE(errors->size() == 3);
    CHECK(std::string((*errors)[0].what()) == "first");
    CHECK((*errors)[0].path() == "sinks.s.a");
    CHECK((*errors)[0].at().line == 1);
    CHECK((*errors)[0].at().column == 4);
    CHECK((*errors)[1].path() == "sinks.s.nested.b");
    CHECK((*errors)[1].at().line == 2);
    CHECK((*errors)[2].path() == "sinks.s.items[1].c");
    CHECK((*errors)[2].at().line == 3);
    // Exceptions other than config_error are not the config's business.
    REQUIRE_THROWS_AS(c.gather([] { throw std::runtime_error("io"); }), std::runtime_error);
  }
}
