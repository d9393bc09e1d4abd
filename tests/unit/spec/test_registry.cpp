#include "test_registry.hpp"

namespace pel::spec::test {

namespace {

registry make() {
  registry r;
  auto source = [&](component_schema s) { r.add_source(std::move(s), nullptr); };
  auto op = [&](component_schema s) { r.add_operator(std::move(s), nullptr); };
  auto sink = [&](component_schema s) { r.add_sink(std::move(s), nullptr); };

  component_schema gen;
  gen.type = "gen";
  gen.summary = "Made-up rows.";
  gen.params = {param::integer("rate").min(1).max(1000000).def("1000").doc("Rows per second."),
                param::string("profile").one_of({"market", "sensor"}).def("market").doc("What to make."),
                param::string_list("fields").doc("Fields to keep.")};
  gen.example = "sources:\n  g:\n    type: gen\n    rate: 10\n";
  source(gen);

  component_schema lines;
  lines.type = "lines";
  lines.summary = "Reads a file.";
  lines.params = {param::string("path").req().doc("The file."),
                  param::string("format").one_of({"csv", "json", "raw"}).def("raw"),
                  param::bytes("max_line").def("1MiB").min(16),
                  param::duration("poll").def("100ms").min(1e6).max(60e9),
                  param::boolean("follow").def("false")};
  source(lines);

  component_schema filter;
  filter.type = "filter";
  filter.summary = "Keeps matching rows.";
  filter.params = {param::expression("where").req().doc("Rows for which this is true are kept.")};
  op(filter);

  component_schema map;
  map.type = "map";
  map.summary = "Computes fields.";
  map.params = {param::expression_map("fields").req()};
  op(map);

  component_schema uni;
  uni.type = "union";
  uni.summary = "Merges streams.";
  uni.min_inputs = 2;
  uni.max_inputs = -1;
  op(uni);

  component_schema window;
  window.type = "window";
  window.summary = "Tumbling windows.";
  window.description = "Groups rows by time.\n\nLate rows go to `late`.";
  window.ports = {"late"};
  window.max_inputs = 2;
  window.params = {
      param::duration("size").req().doc("Window length."),
      param::object_list("aggregates", {param::string("name").req(),
                                        param::string("func").req().one_of({"count", "sum", "avg"}),
                                        param::string("field")}),
      param::object("options", {param::string("emit").one_of({"final", "early"}).def("final"),
                                param::number("ratio").min(0).max(1)}),
  };
  window.example = "operators:\n  w:\n    type: window\n    input: g\n    size: 1s\n";
  op(window);

  component_schema join;
  join.type = "join";
  join.summary = "Joins two streams.";
  join.min_inputs = join.max_inputs = 2;
  join.params = {param::duration("within").req()};
  op(join);

  component_schema print;
  print.type = "print";
  print.summary = "Prints rows.";
  print.max_inputs = -1;
  print.params = {param::string("format").one_of({"json", "csv"}).def("json"),
                  param::boolean("flush").def("false")};
  sink(print);

  component_schema store;
  store.type = "store";
  store.summary = "Stores rows.";
  store.max_inputs = -1;
  store.params = {param::string("path").req(), param::string_map("options")};
  sink(store);
  return r;
}

} // namespace

const registry& test_registry() {
  static const registry r = make();
  return r;
}

std::string errors_of(const std::string& text) {
  try {
    load_text(text, "p.yaml", test_registry());
    return "";
  } catch (const spec_error& e) {
    return e.diags().format();
  }
}

} // namespace pel::spec::test
