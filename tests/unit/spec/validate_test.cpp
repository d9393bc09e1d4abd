// Validation of whole pipeline files against the test registry: every rule, with its exact
// message, and all problems gathered in one run.
#include "pel/spec/pipeline.hpp"
#include "test_registry.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>

using namespace pel::spec;
using pel::spec::test::errors_of;
using pel::spec::test::test_registry;

namespace {

const std::string sources_block =
    "sources:\n"
    "  ticks:\n"
    "    type: gen\n";
const std::string sinks_block =
    "sinks:\n"
    "  out:\n"
    "    type: print\n"
    "    input: large\n";

/// The sources, then `operators` as given, then the sinks (which read `large`).
std::string with_operators(const std::string& operators) {
  return sources_block + "operators:\n" + operators + sinks_block;
}

const std::string base = with_operators(
    "  large:\n"
    "    type: filter\n"
    "    input: ticks\n"
    "    where: qty > 1\n");

} // namespace

TEST_CASE("a clean file fills settings, components, inputs and configs", "[spec][validate]") {
  const std::string text =
      "pipeline:\n"
      "  name: trading\n"
      "  parallelism: 2\n"
      "  max_parallelism: 64\n"
      "  time: processing\n"
      "  batch: {size: 256, linger: 5ms}\n"
      "  credits: 4\n"
      "  checkpoint_interval: 10s\n"
      "  dead_letter: bad\n"
      "sources:\n"
      "  ticks:\n"
      "    type: gen\n"
      "    parallelism: 1\n"
      "    event_time: {field: ts, format: epoch_ms, max_out_of_orderness: 200ms, idle_timeout: 5s}\n"
      "    rate: 50\n"
      "operators:\n"
      "  large:\n"
      "    type: filter\n"
      "    description: big trades\n"
      "    input: ticks\n"
      "    partition: rebalance\n"
      "    where: qty >= 100\n"
      "  w:\n"
      "    type: window\n"
      "    input: [large, ticks.dead_letter]\n"
      "    size: 1s\n"
      "    aggregates: [{name: n, func: count}]\n"
      "sinks:\n"
      "  out:\n"
      "    type: print\n"
      "    input: [w, w.late]\n"
      "  bad:\n"
      "    type: store\n"
      "    input: large.dead_letter\n"
      "    path: /tmp/x\n";
  const pipeline p = load_text(text, "p.yaml", test_registry());
  CHECK(p.file == "p.yaml");
  CHECK(p.settings.name == "trading");
  CHECK(p.settings.parallelism == 2);
  CHECK(p.settings.max_parallelism == 64);
  CHECK(p.settings.time == "processing");
  CHECK(p.settings.batch_size == 256);
  CHECK(p.settings.batch_linger_ns == 5'000'000);
  CHECK(p.settings.channel_credits == 4);
  CHECK(p.settings.checkpoint_interval_ns == 10'000'000'000);
  CHECK(p.settings.dead_letter == "bad");

  REQUIRE(p.sources.size() == 1);
  const component& ticks = p.sources[0];
  CHECK(ticks.name == "ticks");
  CHECK(ticks.type == "gen");
  CHECK(ticks.kind == component_kind::source);
  CHECK(ticks.at.line == 11);
  CHECK(ticks.at.column == 3);
  CHECK(ticks.parallelism == 1);
  REQUIRE(ticks.event_time.has_value());
  CHECK(ticks.event_time->field == "ts");
  CHECK(ticks.event_time->format == "epoch_ms");
  CHECK(ticks.event_time->timezone == "UTC");
  CHECK(ticks.event_time->max_out_of_orderness_ns == 200'000'000);
  CHECK(ticks.event_time->idle_timeout_ns == 5'000'000'000);
  CHECK(ticks.settings.get_int("rate") == 50);
  CHECK(ticks.settings.get_string("profile") == "market");  // the schema's default
  CHECK(ticks.settings.path() == "sources.ticks");

  REQUIRE(p.operators.size() == 2);
  const component& large = p.operators[0];
  CHECK(large.parallelism == 2);  // pipeline default
  CHECK(large.partition == partitioning::rebalance);
  CHECK_FALSE(large.event_time.has_value());
  REQUIRE(large.inputs.size() == 1);
  CHECK(large.inputs[0].component == "ticks");
  CHECK(large.inputs[0].port.empty());
  CHECK(large.inputs[0].at.line == 20);
  CHECK(large.inputs[0].at.column == 12);
  CHECK(large.settings.get_string("where") == "qty >= 100");
  CHECK(large.settings.mark_of("where").line == 22);

  const component& w = p.operators[1];
  CHECK(w.partition == partitioning::automatic);
  REQUIRE(w.inputs.size() == 2);
  CHECK(w.inputs[1].component == "ticks");
  CHECK(w.inputs[1].port == "dead_letter");
  CHECK(w.settings.get_duration_ns("size") == 1'000'000'000);
  REQUIRE(w.settings.children("aggregates").size() == 1);
  CHECK(w.settings.children("aggregates")[0].get_string("func") == "count");

  REQUIRE(p.sinks.size() == 2);
  CHECK(p.sinks[0].inputs[1].port == "late");
  CHECK(p.find("w") == &p.operators[1]);
  CHECK(p.find("bad") == &p.sinks[1]);
  CHECK(p.find("nope") == nullptr);
}

TEST_CASE("configs stay valid after the pipeline is moved and its root released", "[spec][validate]") {
  config settings;
  {
    pipeline p = load_text(base, "p.yaml", test_registry());
    pipeline moved = std::move(p);
    settings = moved.operators[0].settings;
  }
  CHECK(settings.get_string("where") == "qty > 1");
}

TEST_CASE("the base file is clean", "[spec][validate]") { CHECK(errors_of(base) == ""); }

TEST_CASE("unknown keys suggest the closest and list the allowed ones", "[spec][validate]") {
  CHECK(errors_of(with_operators("  large:\n    type: filter\n    input: ticks\n    where: x\n"
                                 "    paralelism: 2\n")) ==
        "p.yaml:9:5: operators.large.paralelism: unknown key 'paralelism'; did you mean "
        "'parallelism'? allowed keys: description, input, parallelism, partition, supervision, type, where\n");
  CHECK(errors_of(with_operators("  large:\n    type: filter\n    input: ticks\n    where: x\n"
                                 "    colour: red\n")) ==
        "p.yaml:9:5: operators.large.colour: unknown key 'colour'; allowed keys: description, input, "
        "parallelism, partition, supervision, type, where\n");
}

TEST_CASE("unknown keys in sections, the pipeline block and nested objects", "[spec][validate]") {
  CHECK(errors_of("pipline: {}\n" + base) ==
        "p.yaml:1:1: pipline: unknown section 'pipline'; did you mean 'pipeline'? allowed keys: "
        "operators, pipeline, sinks, sources\n");
  CHECK(errors_of("pipeline:\n  batch: {sise: 10}\n  credit: 3\n" + base) ==
        "p.yaml:2:11: pipeline.batch.sise: unknown key 'sise'; did you mean 'size'? allowed keys: linger, size\n"
        "p.yaml:3:3: pipeline.credit: unknown key 'credit'; did you mean 'credits'? allowed keys: batch, "
        "checkpoint_interval, checkpoints, credits, dead_letter, max_parallelism, name, parallelism, "
        "scaling, supervision, time\n");
  CHECK(errors_of("sources:\n  ticks:\n    type: gen\n    event_time: {feild: ts}\n" +
                  base.substr(sources_block.size())) ==
        "p.yaml:4:18: sources.ticks.event_time.feild: unknown key 'feild'; did you mean 'field'? allowed "
        "keys: expression, field, format, idle_timeout, max_drift, max_out_of_orderness, timezone\n");
  CHECK(errors_of(with_operators("  large:\n    type: window\n    input: ticks\n    size: 1s\n"
                                 "    aggregates:\n      - {name: n, func: sum, feild: x}\n")) ==
        "p.yaml:10:30: operators.large.aggregates[0].feild: unknown key 'feild'; did you mean 'field'? "
        "allowed keys: field, func, name\n");
}

TEST_CASE("keys of one kind are unknown on another", "[spec][validate]") {
  CHECK(errors_of("sources:\n  ticks:\n    type: gen\n    input: x\n" + base.substr(sources_block.size())) ==
        "p.yaml:4:5: sources.ticks.input: unknown key 'input'; allowed keys: description, event_time, "
        "fields, parallelism, profile, rate, supervision, type\n");
  CHECK(errors_of(with_operators("  large:\n    type: filter\n    input: ticks\n    where: x\n"
                                 "    event_time: {field: ts}\n")) ==
        "p.yaml:9:5: operators.large.event_time: unknown key 'event_time'; allowed keys: description, "
        "input, parallelism, partition, supervision, type, where\n");
}

TEST_CASE("duplicate keys in a pipeline file", "[spec][validate]") {
  CHECK(errors_of(with_operators("  large:\n    type: filter\n    input: ticks\n    where: x\n"
                                 "    where: y\n")) ==
        "p.yaml:9:5: operators.large.where: duplicate key 'where' (first at line 8, column 5); remove "
        "one of them\n");
}

TEST_CASE("values of the wrong type", "[spec][validate]") {
  const std::string ops =
      "  large:\n"
      "    type: filter\n"
      "    input: ticks\n"
      "    where: [a]\n"
      "    parallelism: \"2\"\n"
      "  w:\n"
      "    type: window\n"
      "    input: large\n"
      "    size: 10\n"
      "    aggregates: {name: n}\n"
      "    options: {emit: final, ratio: high}\n"
      "  m:\n"
      "    type: map\n"
      "    input: large\n"
      "    fields: [a, b]\n";
  CHECK(errors_of(with_operators(ops)) ==
        "p.yaml:8:12: operators.large.where: expected an expression, found a list\n"
        "p.yaml:9:18: operators.large.parallelism: expected an integer, found the quoted string '2'; "
        "remove the quotes\n"
        "p.yaml:13:11: operators.w.size: expected a duration such as 250ms, 1s or 5m, found '10'; add "
        "a unit (ns, us, ms, s, m, h, d)\n"
        "p.yaml:14:17: operators.w.aggregates: expected a list of maps, found a map\n"
        "p.yaml:15:35: operators.w.options.ratio: expected a number, found 'high'\n"
        "p.yaml:19:13: operators.m.fields: expected a map of name: expression, found a list\n");

  const std::string more =
      "sources:\n"
      "  f:\n"
      "    type: lines\n"
      "    path: {a: 1}\n"
      "    max_line: lots\n"
      "    follow: maybe\n"
      "    parallelism: two\n"
      "  g:\n"
      "    type: gen\n"
      "    fields: [a, {b: 1}]\n"
      "    rate:\n"
      "sinks:\n"
      "  s:\n"
      "    type: store\n"
      "    input: f\n"
      "    path: /x\n"
      "    options: {a: [1]}\n";
  CHECK(errors_of(more) ==
        "p.yaml:4:11: sources.f.path: expected a string, found a map\n"
        "p.yaml:5:15: sources.f.max_line: expected a size such as 512, 64KiB or 1MiB, found 'lots'\n"
        "p.yaml:6:13: sources.f.follow: expected true or false, found 'maybe'\n"
        "p.yaml:7:18: sources.f.parallelism: expected an integer, found 'two'\n"
        "p.yaml:10:17: sources.g.fields[1]: expected a string, found a map\n"
        "p.yaml:11:5: sources.g.rate: no value; write an integer or remove the key\n"
        "p.yaml:17:18: sinks.s.options.a: expected a single value, found a list\n");
}

TEST_CASE("numbers outside their bounds", "[spec][validate]") {
  const std::string text =
      "pipeline:\n"
      "  parallelism: 0\n"
      "  batch: {size: 2000000}\n"
      "  checkpoint_interval: 10us\n"
      "sources:\n"
      "  ticks:\n"
      "    type: gen\n"
      "    parallelism: 2000\n"
      "    rate: 0\n"
      "  f:\n"
      "    type: lines\n"
      "    path: x\n"
      "    max_line: 8\n"
      "    poll: 2m\n"
      "operators:\n"
      "  w:\n"
      "    type: window\n"
      "    input: ticks\n"
      "    size: 1s\n"
      "    options: {ratio: 1.5}\n" +
      sinks_block.substr(0, sinks_block.find("large")) + "w\n";
  CHECK(errors_of(text) ==
        "p.yaml:2:16: pipeline.parallelism: 0 is out of range; use a value from 1 to 1024\n"
        "p.yaml:3:17: pipeline.batch.size: 2000000 is out of range; use a value from 1 to 1000000\n"
        "p.yaml:4:24: pipeline.checkpoint_interval: 10us is out of range; use a value of at least 1ms\n"
        "p.yaml:8:18: sources.ticks.parallelism: 2000 is out of range; use a value from 1 to 1024\n"
        "p.yaml:8:18: sources.ticks.parallelism: parallelism 2000 is above the default max_parallelism "
        "(128); lower it or raise max_parallelism\n"
        "p.yaml:9:11: sources.ticks.rate: 0 is out of range; use a value from 1 to 1000000\n"
        "p.yaml:13:15: sources.f.max_line: 8 is out of range; use a value of at least 16\n"
        "p.yaml:14:11: sources.f.poll: 2m is out of range; use a value from 1ms to 1m\n"
        "p.yaml:20:22: operators.w.options.ratio: 1.5 is out of range; use a value from 0 to 1\n");
}

TEST_CASE("values outside the allowed set", "[spec][validate]") {
  const std::string text =
      "pipeline:\n  time: evnt\n" + sources_block +
      "operators:\n  large:\n    type: filter\n    input: ticks\n    where: x\n    partition: hsah\n" +
      sinks_block + "    format: jsn\n";
  CHECK(errors_of(text) ==
        "p.yaml:2:9: pipeline.time: 'evnt' is not allowed here; did you mean 'event'? allowed values: "
        "event, processing\n"
        "p.yaml:11:16: operators.large.partition: 'hsah' is not allowed here; did you mean 'hash'? "
        "allowed values: forward, rebalance, hash, broadcast\n"
        "p.yaml:16:13: sinks.out.format: 'jsn' is not allowed here; did you mean 'json'? allowed "
        "values: json, csv\n");
}

TEST_CASE("missing required keys", "[spec][validate]") {
  const std::string text =
      sources_block +
      "  f:\n    type: lines\n"
      "operators:\n"
      "  large:\n    type: filter\n    input: ticks\n"
      "  w:\n    input: large\n"
      "  w2:\n    type: window\n    input: large\n    size: 1s\n    aggregates: [{func: sum}]\n"
      "  m:\n    type: map\n" +
      sinks_block;
  CHECK(errors_of(text) ==
        "p.yaml:4:3: sources.f.path: missing required key 'path' (string): The file.\n"
        "p.yaml:7:3: operators.large.where: missing required key 'where' (expression): Rows for which "
        "this is true are kept.\n"
        "p.yaml:10:3: operators.w.type: missing required key 'type'; operator types: filter, join, map, "
        "union, window\n"
        "p.yaml:16:18: operators.w2.aggregates[0].name: missing required key 'name' (string)\n"
        "p.yaml:17:3: operators.m.fields: missing required key 'fields' (map of expressions)\n"
        "p.yaml:17:3: operators.m.input: missing required key 'input'; name what this operator reads, "
        "e.g. `input: <source or operator>`\n");
}

TEST_CASE("unknown component types suggest and list the types of that kind", "[spec][validate]") {
  const std::string text =
      "sources:\n  ticks:\n    type: generator\n"
      "operators:\n  large:\n    type: filtr\n    input: ticks\n    where: x\n    anything: 1\n"
      "sinks:\n  out:\n    type: [print]\n    input: large\n";
  CHECK(errors_of(text) ==
        "p.yaml:3:11: sources.ticks.type: unknown source type 'generator'; source types: gen, lines\n"
        "p.yaml:6:11: operators.large.type: unknown operator type 'filtr'; did you mean 'filter'? "
        "operator types: filter, join, map, union, window\n"
        "p.yaml:12:11: sinks.out.type: expected a string, found a list\n");
}

TEST_CASE("component names are unique across sections and hold no dots", "[spec][validate]") {
  const std::string text = base +
                           "  ticks:\n    type: print\n    input: large\n"
                           "  a.b:\n    type: print\n    input: large\n";
  CHECK(errors_of(text) ==
        "p.yaml:13:3: sinks.ticks: the name 'ticks' is already used by the source at line 2, column 3; "
        "names must be unique across sources, operators and sinks\n"
        "p.yaml:16:3: sinks.a.b: invalid name 'a.b'; names may hold letters, digits, '_' and '-' (a '.' "
        "would be read as a port)\n");
}

TEST_CASE("inputs must name components and ports that exist", "[spec][validate]") {
  const std::string text = with_operators(
      "  large:\n    type: filter\n    input: tiks\n    where: x\n"
      "  w:\n    type: window\n    input: large.lat\n    size: 1s\n"
      "  m:\n    type: map\n    input: w.late\n    fields: {a: b}\n"
      "  n:\n    type: map\n    input: [out, m.dead_leter, ticks, ticks]\n    fields: {a: b}\n");
  CHECK(errors_of(text) ==
        "p.yaml:7:12: operators.large.input: unknown input 'tiks'; did you mean 'ticks'? sources and "
        "operators: large, m, n, ticks, w\n"
        "p.yaml:11:12: operators.w.input: 'large' has no output port 'lat'; ports of 'large': "
        "dead_letter (or 'large' for its main output)\n"
        "p.yaml:19:12: operators.n.input: operator type 'map' takes exactly 1 input, found 4\n"
        "p.yaml:19:13: operators.n.input: 'out' is a sink and has no output; read a source or an "
        "operator\n"
        "p.yaml:19:18: operators.n.input: 'm' has no output port 'dead_leter'; did you mean "
        "'dead_letter'? ports of 'm': dead_letter (or 'm' for its main output)\n"
        "p.yaml:19:39: operators.n.input: input 'ticks' is listed twice; remove one\n");
}

TEST_CASE("input counts follow the schema", "[spec][validate]") {
  const std::string text = with_operators(
      "  large:\n    type: filter\n    input: [ticks, ticks.dead_letter]\n    where: x\n"
      "  u:\n    type: union\n    input: large\n"
      "  j:\n    type: join\n    input: [large, u, ticks]\n    within: 1s\n"
      "  u2:\n    type: union\n    input: [large, u, ticks]\n");
  CHECK(errors_of(text) ==
        "p.yaml:7:12: operators.large.input: operator type 'filter' takes exactly 1 input, found 2\n"
        "p.yaml:11:12: operators.u.input: operator type 'union' takes at least 2 inputs, found 1\n"
        "p.yaml:14:12: operators.j.input: operator type 'join' takes exactly 2 inputs, found 3\n");
}

TEST_CASE("a sink or operator reading nothing", "[spec][validate]") {
  const std::string text = sources_block +
                           "operators:\n  large:\n    type: filter\n    input:\n    where: x\n"
                           "sinks:\n  out:\n    type: print\n    input: []\n"
                           "  out2:\n    type: print\n";
  CHECK(errors_of(text) ==
        "p.yaml:7:5: operators.large.input: the operator reads nothing; name at least one source or "
        "operator\n"
        "p.yaml:12:12: sinks.out.input: the sink reads nothing; name at least one source or operator\n"
        "p.yaml:13:3: sinks.out2.input: missing required key 'input'; name what this sink reads, e.g. "
        "`input: <source or operator>`\n");
}

TEST_CASE("cycles among operators are reported once each, naming their members", "[spec][validate]") {
  const std::string text = with_operators(
      "  large:\n    type: filter\n    input: c\n    where: x\n"
      "  b:\n    type: filter\n    input: large\n    where: x\n"
      "  c:\n    type: union\n    input: [b, ticks]\n"
      "  self:\n    type: filter\n    input: self\n    where: x\n"
      "  p:\n    type: join\n    input: [q, ticks]\n    within: 1s\n"
      "  q:\n    type: filter\n    input: p\n    where: x\n");
  CHECK(errors_of(text) ==
        "p.yaml:7:12: operators.large.input: operators read each other in a cycle: large -> b -> c -> "
        "large; an operator cannot read its own output, directly or through others\n"
        "p.yaml:18:12: operators.self.input: operators read each other in a cycle: self -> self; an "
        "operator cannot read its own output, directly or through others\n"
        "p.yaml:22:12: operators.p.input: operators read each other in a cycle: p -> q -> p; an "
        "operator cannot read its own output, directly or through others\n");
}

TEST_CASE("a pipeline needs sources and sinks", "[spec][validate]") {
  CHECK(errors_of("pipeline: {name: x}\n") ==
        "p.yaml:1:1: sinks: the pipeline has no sinks; add a `sinks:` section with at least one sink\n"
        "p.yaml:1:1: sources: the pipeline has no sources; add a `sources:` section with at least one "
        "source\n");
  CHECK(errors_of("sources:\nsinks: {}\n") ==
        "p.yaml:1:1: sources: the pipeline has no sources; add a `sources:` section with at least one "
        "source\n"
        "p.yaml:2:1: sinks: the pipeline has no sinks; add a `sinks:` section with at least one sink\n");
  CHECK(errors_of("sources: [a]\nsinks: x\n") ==
        "p.yaml:1:1: sources: the pipeline has no sources; add a `sources:` section with at least one "
        "source\n"
        "p.yaml:1:10: sources: expected a map of source name: {type: ...}, found a list\n"
        "p.yaml:2:1: sinks: the pipeline has no sinks; add a `sinks:` section with at least one sink\n"
        "p.yaml:2:8: sinks: expected a map of sink name: {type: ...}, found 'x'\n");
}

TEST_CASE("pipeline.dead_letter names log, drop or a sink", "[spec][validate]") {
  CHECK(errors_of("pipeline: {dead_letter: lgo}\n" + base) ==
        "p.yaml:1:25: pipeline.dead_letter: 'lgo' is neither log, drop nor a sink; did you mean 'log'? "
        "sinks: out\n");
  CHECK(errors_of("pipeline: {dead_letter: large}\n" + base) ==
        "p.yaml:1:25: pipeline.dead_letter: 'large' is neither log, drop nor a sink; sinks: out\n");
  CHECK(errors_of("pipeline: {dead_letter: out}\n" + base) == "");
  CHECK(errors_of("pipeline: {dead_letter: drop}\n" + base) == "");
}

TEST_CASE("parallelism must fit in max_parallelism", "[spec][validate]") {
  CHECK(errors_of("pipeline: {parallelism: 16, max_parallelism: 8}\n" + base) ==
        "p.yaml:1:25: pipeline.parallelism: parallelism 16 is above pipeline.max_parallelism (8); lower "
        "it or raise max_parallelism\n");
}

TEST_CASE("components whose block is not a map", "[spec][validate]") {
  CHECK(errors_of(with_operators("  large: filter\n  other:\n")) ==
        "p.yaml:5:10: operators.large: expected a map with at least `type:`, found 'filter'\n"
        "p.yaml:6:3: operators.other: expected a map with at least `type:`, found nothing\n"
        );
}

TEST_CASE("every problem is gathered, sorted by position", "[spec][validate]") {
  const std::string text =
      "pipeline:\n"
      "  parallelism: 0\n"
      "  dead_letter: nowhere\n"
      "sources:\n"
      "  ticks:\n"
      "    type: gen\n"
      "    rat: 5\n"
      "operators:\n"
      "  large:\n"
      "    type: filtr\n"
      "    input: tick\n"
      "  a:\n"
      "    type: filter\n"
      "    input: a\n"
      "sinks:\n"
      "  out:\n"
      "    type: print\n"
      "    input: large\n"
      "    format: xml\n";
  const std::string errors = errors_of(text);
  CHECK(errors ==
        "p.yaml:2:16: pipeline.parallelism: 0 is out of range; use a value from 1 to 1024\n"
        "p.yaml:3:16: pipeline.dead_letter: 'nowhere' is neither log, drop nor a sink; sinks: out\n"
        "p.yaml:7:5: sources.ticks.rat: unknown key 'rat'; did you mean 'rate'? allowed keys: "
        "description, event_time, fields, parallelism, profile, rate, supervision, type\n"
        "p.yaml:10:11: operators.large.type: unknown operator type 'filtr'; did you mean 'filter'? "
        "operator types: filter, join, map, union, window\n"
        "p.yaml:11:12: operators.large.input: unknown input 'tick'; did you mean 'ticks'? sources and "
        "operators: a, large, ticks\n"
        "p.yaml:12:3: operators.a.where: missing required key 'where' (expression): Rows for which "
        "this is true are kept.\n"
        "p.yaml:14:12: operators.a.input: operators read each other in a cycle: a -> a; an operator "
        "cannot read its own output, directly or through others\n"
        "p.yaml:19:13: sinks.out.format: 'xml' is not allowed here; allowed values: json, csv\n");
  CHECK(std::count(errors.begin(), errors.end(), '\n') == 8);
}

TEST_CASE("the number of reported errors is bounded", "[spec][validate][hostile]") {
  std::string text = base + "    format: json\n";
  std::string extra;
  for (int i = 0; i < 150; ++i) extra += "    k" + std::to_string(i) + ": 1\n";
  text += extra;
  try {
    load_text(text, "p.yaml", test_registry());
    FAIL("no error");
  } catch (const spec_error& e) {
    REQUIRE(e.diags().size() == 101);
    CHECK(e.diags().items().back().message == "too many errors: 50 more not shown; fix these first");
  }
}

TEST_CASE("load_file reads a file and names it in messages", "[spec][validate]") {
  const std::string path = std::string(PEL_BINARY_DIR) + "/spec_test_load_file.yaml";
  {
    std::ofstream out(path, std::ios::binary);
    out << base;
  }
  const pipeline p = load_file(path, test_registry());
  CHECK(p.file == path);
  CHECK(p.operators.at(0).name == "large");
  {
    std::ofstream out(path, std::ios::binary);
    out << base << "    colour: red\n";
  }
  try {
    load_file(path, test_registry());
    FAIL("no error");
  } catch (const spec_error& e) {
    CHECK(e.diags().format() == path + ":13:5: sinks.out.colour: unknown key 'colour'; allowed keys: "
                                       "buffer, description, flush, format, input, parallelism, partition, supervision, type\n");
  }
  std::remove(path.c_str());
  try {
    load_file(path, test_registry());
    FAIL("no error");
  } catch (const spec_error& e) {
    CHECK(e.diags().format() == path + ":0:0: cannot read the file: it does not exist or is not accessible\n");
  }
}
