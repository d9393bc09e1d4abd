// What the planner checks beyond the spec: settings that name input fields, every problem a
// factory gathers, event-time problems at their values, and files that pipelines run side by
// side would share.
#include "../runtime/test_components.hpp"

#include "pel/plan/plan.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>

using namespace pel;
using namespace pel::test;

namespace {

std::atomic<int> picky_built{0};

spec::registry field_registry() {
  spec::registry reg;
  add_test_operators(reg);
  reg.add_source(schema_of("vec", 0, 0), [](const spec::config&) {
    return std::make_unique<vector_source>(std::make_shared<const std::vector<row>>(), 1, true,
                                           nullptr);
  });
  // A sink keyed on a field, with a list of fields in a nested block.
  auto keyed_sink = schema_of("keyed_sink", 1, -1);
  keyed_sink.params = {
      spec::param::string("key").names_input_field(),
      spec::param::object("layout", {spec::param::string_list("columns").names_input_field()}),
      spec::param::string("topic"),
      spec::param::string("label"),
  };
  reg.add_sink(keyed_sink, [](const spec::config& c) -> core::sink_ptr {
    // Two independent problems, both gathered.
    if (c.get_string("topic").empty()) c.report("topic", "name the topic");
    if (c.get_string("label") == "bad") c.report("label", "a bad label");
    return std::make_unique<collect_sink>(std::make_shared<collected>());
  });
  // An operator naming a field of its second input only. Like the built-in operators, it
  // checks the names itself too (each at its item, gathered) and goes on to its other
  // settings.
  auto picky = schema_of("picky", 2, 2);
  picky.params = {spec::param::string_list("right_key").names_input_field(1),
                  spec::param::string("label")};
  reg.add_operator(picky, [](const spec::config& c, const std::vector<schema_ptr>& in) {
    ++picky_built;
    const auto names = c.get_string_list("right_key");
    for (std::size_t i = 0; i < names.size(); ++i)
      if (in.at(1)->index_of(names[i]) < 0)
        c.gather([&] {
          throw spec::config_error(c.raw()->find("right_key")->value->items[i]->at,
                                   c.path_of("right_key") + "[" + std::to_string(i) + "]",
                                   "unknown field '" + names[i] + "' (in its own words)");
        });
    if (c.get_string("label") == "bad") c.report("label", "a bad label");
    return std::make_unique<pass_op>(in.at(0));
  });
  reg.add_operator(schema_of("rename"), [](const spec::config&, const std::vector<schema_ptr>&) {
    return std::make_unique<pass_op>(std::make_shared<core::schema>(
        std::vector<core::field>{{"id", std::nullopt}, {"n", std::nullopt}}));
  });
  reg.add_sink(schema_of("collect", 0, -1), [](const spec::config&) {
    return std::make_unique<collect_sink>(std::make_shared<collected>());
  });
  return reg;
}

std::string problems(const std::string& yaml) {
  auto reg = field_registry();
  auto r = plan::check_text(yaml, "f.yaml", reg);
  return r.plan ? "no error" : r.diags.format();
}

}  // namespace

TEST_CASE("a setting naming an input field is checked at its value", "[plan][fields]") {
  const std::string yaml =
      "sources:\n"
      "  src: {type: vec}\n"
      "sinks:\n"
      "  out:\n"
      "    type: keyed_sink\n"
      "    input: src\n"
      "    topic: t\n"
      "    key: sqe\n"
      "    layout: {columns: [key, tss, seq]}\n";
  CHECK(problems(yaml) ==
        "f.yaml:8:10: sinks.out.key: unknown field 'sqe'; did you mean 'seq'? (fields: key, seq, "
        "ts)\n"
        "f.yaml:9:29: sinks.out.layout.columns[1]: unknown field 'tss'; did you mean 'ts'? "
        "(fields: key, seq, ts)\n");
  // Names that exist pass, and the sink is built.
  std::string good = yaml;
  good.replace(good.find("sqe"), 3, "seq");
  good.replace(good.find("tss"), 3, "ts");
  CHECK(problems(good) == "no error");
}

TEST_CASE("each input of a component is checked, and says which one lacks the field",
          "[plan][fields]") {
  picky_built = 0;
  const std::string yaml =
      "sources:\n"
      "  src: {type: vec}\n"
      "operators:\n"
      "  ids: {type: rename, input: src}\n"
      "  j: {type: picky, input: [src, ids], right_key: [id, seq]}\n"
      "  both: {type: pass, input: src}\n"
      "sinks:\n"
      "  a: {type: collect, input: j}\n"
      "  b: {type: keyed_sink, input: [both, ids], topic: t, key: seq}\n";
  CHECK(problems(yaml) ==
        "f.yaml:5:55: operators.j.right_key[1]: unknown field 'seq' (fields of input 'ids': id, "
        "n)\n"
        "f.yaml:9:60: sinks.b.key: unknown field 'seq' (fields of input 'ids': id, n)\n");
  // The operator is built all the same, and what it says again about the name is left out.
  CHECK(picky_built == 1);
}

TEST_CASE("an operator with unknown fields still reports its other problems", "[plan][fields]") {
  picky_built = 0;
  const std::string yaml =
      "sources:\n"
      "  src: {type: vec}\n"
      "operators:\n"
      "  ids: {type: rename, input: src}\n"
      "  j: {type: picky, input: [src, ids], right_key: [nn, id, sq], label: bad}\n"
      "sinks:\n"
      "  a: {type: collect, input: j}\n";
  CHECK(problems(yaml) ==
        "f.yaml:5:51: operators.j.right_key[0]: unknown field 'nn' (fields of input 'ids': id, "
        "n)\n"
        "f.yaml:5:59: operators.j.right_key[2]: unknown field 'sq' (fields of input 'ids': id, "
        "n)\n"
        "f.yaml:5:71: operators.j.label: a bad label\n");
  CHECK(picky_built == 1);
}

TEST_CASE("every problem a factory gathers is reported with the field checks", "[plan][gather]") {
  const std::string yaml =
      "sources:\n"
      "  src: {type: vec}\n"
      "sinks:\n"
      "  out: {type: keyed_sink, input: src, topic: '', label: bad, key: nope}\n";
  CHECK(problems(yaml) ==
        "f.yaml:4:46: sinks.out.topic: name the topic\n"
        "f.yaml:4:57: sinks.out.label: a bad label\n"
        "f.yaml:4:67: sinks.out.key: unknown field 'nope' (fields: key, seq, ts)\n");
}

TEST_CASE("event-time problems are located at their values", "[plan][event_time][errors]") {
  const std::string yaml =
      "sources:\n"
      "  src:\n"
      "    type: vec\n"
      "    event_time:\n"
      "      field: tss\n"
      "      timezone: Mars/Olympus\n"
      "sinks:\n"
      "  out: {type: collect, input: src}\n";
  CHECK(problems(yaml) ==
        "f.yaml:5:14: sources.src.event_time.field: unknown field 'tss'; did you mean 'ts'? "
        "(the source's fields: key, seq, ts)\n"
        "f.yaml:6:17: sources.src.event_time.timezone: unknown time zone 'Mars/Olympus'; use "
        "UTC or a fixed offset such as +08:00 (zone names are not supported)\n");
}

// ---------------------------------------------------------------------------------------------
// Files shared between pipelines

namespace {

spec::registry file_registry() {
  spec::registry reg;
  auto src = schema_of("vec", 0, 0);
  src.params = {spec::param::string("path")};
  reg.add_source(src, [](const spec::config&) {
    return std::make_unique<vector_source>(std::make_shared<const std::vector<row>>(), 1, true,
                                           nullptr);
  });
  auto snk = schema_of("out_file", 1, 1);
  snk.params = {spec::param::string("path").req()};
  reg.add_sink(snk, [](const spec::config&) {
    return std::make_unique<collect_sink>(std::make_shared<collected>());
  });
  return reg;
}

const std::vector<plan::file_setting> file_settings{
    {spec::component_kind::sink, "out_file", "path", true},
    {spec::component_kind::source, "vec", "path", false},
};

plan::physical_plan planned(const std::string& yaml, const std::string& file) {
  // The plan's configs point into the registry's schemas: it must outlive the plans.
  static const spec::registry reg = file_registry();
  auto r = plan::check_text(yaml, file, reg);
  INFO(r.diags.format());
  REQUIRE(r.plan);
  return std::move(*r.plan);
}

}  // namespace

TEST_CASE("two sinks writing one file are found, within a plan and across plans", "[plan][files]") {
  namespace fs = std::filesystem;
  const std::string cwd = fs::current_path().string();
  auto one = planned(
      "sources:\n"
      "  src: {type: vec}\n"
      "sinks:\n"
      "  a: {type: out_file, input: src, path: out/x.json}\n"
      "  b: {type: out_file, input: src, path: ./out/../out/x.json}\n"
      "  c: {type: out_file, input: src, path: out/y.json}\n",
      "one.yaml");
  auto d = plan::check_shared_files({&one}, file_settings);
  REQUIRE(d.size() == 1);
  CHECK(d.items()[0].format() ==
        "one.yaml:5:41: sinks.b.path: the file './out/../out/x.json' (" + cwd +
            "/out/x.json) is also written by sinks.a at one.yaml:4:41; two sinks writing one "
            "file lose each other's rows: give each its own file");

  auto two = planned(
      "sources:\n"
      "  src: {type: vec, path: out/y.json}\n"
      "sinks:\n"
      "  z: {type: out_file, input: src, path: " +
          cwd + "/out/z.json}\n",
      "two.yaml");
  d = plan::check_shared_files({&one, &two}, file_settings);
  REQUIRE(d.size() == 2);
  CHECK(d.items()[1].format() ==
        "two.yaml:2:26: sources.src.path: the file 'out/y.json' (" + cwd +
            "/out/y.json) is written by sinks.c at one.yaml:6:41 while this source reads it; "
            "read another file, or run the two one after the other");
  // On its own, `two` writes and reads different files.
  CHECK(plan::check_shared_files({&two}, file_settings).empty());
}
