// YAML text → node tree: structure, marks, quoting, and the limits on hostile files.
#include "pel/spec/yaml.hpp"
#include "test_registry.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

using namespace pel::spec;
using pel::spec::test::errors_of;

namespace {

std::string parse_errors(const std::string& text) {
  try {
    parse_yaml(text, "f.yaml");
    return "";
  } catch (const spec_error& e) {
    return e.diags().format();
  }
}

/// Runs `f` and checks it took less than `limit` (hostile input must be refused promptly).
template <class F>
void promptly(F f, std::chrono::seconds limit = std::chrono::seconds(10)) {
  const auto start = std::chrono::steady_clock::now();
  f();
  REQUIRE(std::chrono::steady_clock::now() - start < limit);
}

} // namespace

TEST_CASE("maps, lists and scalars keep their order, text and 1-based marks", "[spec][yaml]") {
  const std::string text =
      "pipeline:\n"
      "  name: \"x\"\n"
      "sources:\n"
      "  a: {type: gen, rate: 5}\n"
      "list: [1, 'two', ~, null, ]\n"
      "empty:\n"
      "block: |\n"
      "  line\n";
  auto root = parse_yaml(text, "f.yaml");
  REQUIRE(root->is_map());
  REQUIRE(root->entries.size() == 5);
  CHECK(root->entries[0].key == "pipeline");
  CHECK(root->entries[1].key == "sources");
  CHECK(root->entries[1].key_mark.line == 3);
  CHECK(root->entries[1].key_mark.column == 1);

  const auto& name = root->find("pipeline")->value->find("name")->value;
  CHECK(name->text == "x");
  CHECK(name->quoted);
  CHECK(name->at.line == 2);
  CHECK(name->at.column == 9);

  const auto& a = root->find("sources")->value->find("a");
  CHECK(a->key_mark.line == 4);
  CHECK(a->key_mark.column == 3);
  REQUIRE(a->value->is_map());
  CHECK(a->value->at.column == 6);
  const auto& type = a->value->find("type");
  CHECK(type->key_mark.column == 7);
  CHECK(type->value->text == "gen");
  CHECK_FALSE(type->value->quoted);
  CHECK(type->value->at.column == 13);

  const auto& list = root->find("list")->value;
  REQUIRE(list->is_sequence());
  REQUIRE(list->items.size() == 4);
  CHECK(list->items[0]->text == "1");
  CHECK_FALSE(list->items[0]->quoted);
  CHECK(list->items[1]->text == "two");
  CHECK(list->items[1]->quoted);
  CHECK(list->items[2]->is_null());
  CHECK(list->items[3]->is_null());
  CHECK(list->items[1]->at.line == 5);
  CHECK(list->items[1]->at.column == 11);

  CHECK(root->find("empty")->value->is_null());
  CHECK(root->find("block")->value->text == "line\n");
  CHECK(root->find("block")->value->quoted);
}

TEST_CASE("aliases share the anchored node", "[spec][yaml]") {
  auto root = parse_yaml("base: &b {x: 1}\ncopy: *b\n", "f.yaml");
  CHECK(root->find("base")->value == root->find("copy")->value);
  CHECK(root->find("copy")->value->find("x")->value->text == "1");
}

TEST_CASE("duplicate keys are reported with where the first one was", "[spec][yaml]") {
  CHECK(parse_errors("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n") ==
        "f.yaml:4:3: b.c: duplicate key 'c' (first at line 3, column 3); remove one of them\n"
        "f.yaml:5:1: a: duplicate key 'a' (first at line 1, column 1); remove one of them\n");
}

TEST_CASE("keys must be plain names", "[spec][yaml]") {
  CHECK(parse_errors("a:\n  [x, y]: 1\n  : 2\n") ==
        "f.yaml:2:3: a: a key is a list; keys must be plain names\n"
        "f.yaml:3:3: a: a key is empty; write a name before the ':'\n");
}

TEST_CASE("syntax errors are located", "[spec][yaml]") {
  CHECK(parse_errors("a: [1, 2\nb: 3\n") == "f.yaml:2:2: YAML syntax error: end of sequence flow not found\n");
  CHECK(parse_errors("a: b: c\n") == "f.yaml:1:5: YAML syntax error: illegal map value\n");
  CHECK(parse_errors("a: *nothing\n") == "f.yaml:1:4: YAML syntax error: the referenced anchor is not defined\n");
}

TEST_CASE("empty files and documents are refused", "[spec][yaml][hostile]") {
  const std::string msg = "f.yaml:1:1: the file is empty; a pipeline needs at least `sources:` and `sinks:`\n";
  CHECK(parse_errors("") == msg);
  CHECK(parse_errors("\n\n   \n") == msg);
  CHECK(parse_errors("# only a comment\n") == msg);
  CHECK(parse_errors("---\n...\n") == msg);
  CHECK(parse_errors("~\n") == msg);
}

TEST_CASE("a second document is refused", "[spec][yaml]") {
  CHECK(parse_errors("a: 1\n---\nb: 2\n") ==
        "f.yaml:3:1: a second YAML document ('---'); a pipeline file holds exactly one\n");
}

TEST_CASE("binary data and invalid UTF-8 are refused with their position", "[spec][yaml][hostile]") {
  CHECK(parse_errors(std::string("a: 1\nb: x\0y\n", 11)) ==
        "f.yaml:2:5: binary data: a NUL byte at byte 9; a pipeline file must be UTF-8 text\n");
  CHECK(parse_errors("a: \x01\n") ==
        "f.yaml:1:4: binary data: control character 1 at byte 3; a pipeline file must be UTF-8 text\n");
  CHECK(parse_errors("name: caf\xc3\xa9 \xff\n") ==
        "f.yaml:1:12: invalid UTF-8 at byte 12; save the file as UTF-8 text\n");
  CHECK(parse_errors("a: \xed\xa0\x80\n") == "f.yaml:1:4: invalid UTF-8 at byte 3; save the file as UTF-8 text\n");
  CHECK(parse_errors("a: \xc0\xaf\n") == "f.yaml:1:4: invalid UTF-8 at byte 3; save the file as UTF-8 text\n");
  // Valid multi-byte text is fine.
  CHECK(parse_yaml("name: caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\n", "f.yaml")->find("name")->value->text ==
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST_CASE("files over 8 MiB are refused", "[spec][yaml][hostile]") {
  std::string big(10u * 1024u * 1024u, 'a');
  promptly([&] {
    CHECK(parse_errors(big) ==
          "f.yaml:1:1: the file is 10485760 bytes; pipeline files may be at most 8388608 bytes (8 MiB)\n");
  });
  const std::string path = std::string(PEL_BINARY_DIR) + "/spec_test_big.yaml";
  {
    std::ofstream out(path, std::ios::binary);
    out << big;
  }
  promptly([&] {
    try {
      parse_yaml_file(path);
      FAIL("a 10 MiB file was accepted");
    } catch (const spec_error& e) {
      CHECK(e.diags().format() == path + ":1:1: the file is 10485760 bytes; pipeline files may be at "
                                         "most 8388608 bytes (8 MiB)\n");
    }
  });
  std::remove(path.c_str());
}

TEST_CASE("a missing file is a located error, not a crash", "[spec][yaml]") {
  try {
    parse_yaml_file("/nonexistent/p.yaml");
    FAIL("no error");
  } catch (const spec_error& e) {
    CHECK(e.diags().format() ==
          "/nonexistent/p.yaml:0:0: cannot read the file: it does not exist or is not accessible\n");
  }
}

TEST_CASE("deep nesting stops at 64 levels, however it is written", "[spec][yaml][hostile]") {
  const std::size_t deep = 100000;
  promptly([&] {
    CHECK(parse_errors(std::string(deep, '[')) ==
          "f.yaml:1:33: nesting deeper than 64 levels; flatten the file\n");
  });
  promptly([&] {
    CHECK(parse_errors("a: " + std::string(deep, '{')) ==
          "f.yaml:1:67: nesting deeper than 64 levels; flatten the file\n");
  });
  promptly([&] {
    std::string dashes;
    for (std::size_t i = 0; i < deep; ++i) dashes += "- ";
    CHECK(parse_errors(dashes + "x\n") == "f.yaml:1:129: nesting deeper than 64 levels; flatten the file\n");
  });
  promptly([&] {
    std::string keys;
    for (std::size_t i = 0; i < 2000; ++i) keys += std::string(i, ' ') + "k:\n";
    CHECK(parse_errors(keys) == "f.yaml:65:65: nesting deeper than 64 levels; flatten the file\n");
  });
  // 64 levels are fine.
  CHECK_NOTHROW(parse_yaml("a: " + std::string(63, '[') + std::string(63, ']'), "f.yaml"));
}

TEST_CASE("an alias bomb stops at the expansion budget", "[spec][yaml][hostile]") {
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 12; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += std::string(k ? ", " : "") + "*a" + std::to_string(i - 1);
    bomb += "]\n";
  }
  promptly([&] {
    CHECK(parse_errors(bomb) ==
          "f.yaml:6:45: more than 1000000 nodes once aliases are expanded; the file is too large or "
          "its aliases multiply without bound\n");
  });
  promptly([&] { CHECK(errors_of(bomb) != ""); });
}

TEST_CASE("aliases cannot nest beyond the depth limit", "[spec][yaml][hostile]") {
  std::string text = "a0: &a0 [x]\n";
  for (int i = 1; i < 70; ++i)
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) + "]\n";
  CHECK(parse_errors(text) ==
        "f.yaml:64:12: nesting deeper than 64 levels once this alias is expanded; flatten the file\n");
}

TEST_CASE("a 5 MiB file is read and rejected promptly", "[spec][yaml][hostile]") {
  std::string text = "sources:\n  g:\n    type: gen\noperators:\n";
  int i = 0;
  while (text.size() < 5u * 1024u * 1024u) {
    text += "  op" + std::to_string(i) + ": {type: filter, input: " +
            (i ? "op" + std::to_string(i - 1) : std::string("g")) + ", where: \"x > " +
            std::to_string(i) + "\"}\n";
    ++i;
  }
  std::string errors;
  promptly([&] { errors = errors_of(text); });
  CHECK(errors == "p.yaml:1:1: sinks: the pipeline has no sinks; add a `sinks:` section with at least one sink\n");
}

TEST_CASE("a top level that is not a map is refused", "[spec][yaml]") {
  CHECK(errors_of("- a\n- b\n") ==
        "p.yaml:1:1: the top level must be a map with the sections pipeline, sources, operators and "
        "sinks; found a list\n");
  CHECK(errors_of("just text\n") ==
        "p.yaml:1:1: the top level must be a map with the sections pipeline, sources, operators and "
        "sinks; found 'just text'\n");
}

TEST_CASE("environment variables are substituted in scalars", "[spec][yaml]") {
  setenv("PEL_TEST_BOOTSTRAP", "127.0.0.1:19092", 1);
  unsetenv("PEL_TEST_UNSET");
  auto root = parse_yaml(
      "a: ${PEL_TEST_BOOTSTRAP}\n"
      "b: \"kafka://${PEL_TEST_BOOTSTRAP}/x\"\n"
      "c: ${PEL_TEST_UNSET:-fallback}\n"
      "d: $${PEL_TEST_BOOTSTRAP}\n",
      "f.yaml");
  CHECK(root->find("a")->value->text == "127.0.0.1:19092");
  CHECK(root->find("b")->value->text == "kafka://127.0.0.1:19092/x");
  CHECK(root->find("c")->value->text == "fallback");
  CHECK(root->find("d")->value->text == "${PEL_TEST_BOOTSTRAP}");
  CHECK(parse_errors("a: 1\nb: ${PEL_TEST_UNSET}\n") ==
        "f.yaml:2:4: environment variable 'PEL_TEST_UNSET' is not set; export it, or give a "
        "default as ${PEL_TEST_UNSET:-default}\n");
}
