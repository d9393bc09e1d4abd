// The generated reference pages.
#include "pel/spec/reference.hpp"
#include "pel/spec/common_params.hpp"
#include "test_registry.hpp"

#include <catch2/catch.hpp>

using namespace pel::spec;
using pel::spec::test::test_registry;

namespace {
const reference_page& page(const std::vector<reference_page>& pages, const std::string& file) {
  for (const auto& p : pages)
    if (p.file == file) return p;
  FAIL("no page " << file);
  throw;
}
bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
} // namespace

TEST_CASE("one page per kind plus pipeline.md", "[spec][reference]") {
  const auto pages = reference_pages(test_registry());
  REQUIRE(pages.size() == 4);
  CHECK(pages[0].file == "pipeline.md");
  CHECK(pages[1].file == "sources.md");
  CHECK(pages[2].file == "operators.md");
  CHECK(pages[3].file == "sinks.md");
}

TEST_CASE("a type's section has its summary, params, inputs, ports and example", "[spec][reference]") {
  const auto pages = reference_pages(test_registry());
  const std::string& ops = page(pages, "operators.md").markdown;
  CHECK(has(ops, "# Operators\n"));
  CHECK(has(ops, "| [window](#window) | Tumbling windows. |\n"));
  CHECK(has(ops, "\n## window\n\nTumbling windows.\n\nGroups rows by time.\n\nLate rows go to `late`.\n"));
  CHECK(has(ops, "| `size` | duration |  | yes |  | Window length. |\n"));
  CHECK(has(ops, "| `aggregates[].func` | string |  | yes | `count`, `sum`, `avg` |  |\n"));
  CHECK(has(ops, "| `options.emit` | string | `final` |  | `final`, `early` |  |\n"));
  CHECK(has(ops, "| `options.ratio` | number |  |  | 0 to 1 |  |\n"));
  CHECK(has(ops, "**Inputs:** exactly 1 input.\n"));
  CHECK(has(ops, "**Inputs:** at least 2 inputs.\n"));
  CHECK(has(ops, "**Outputs:** the main output (`<name>`) and `<name>.dead_letter`, `<name>.late`.\n"));
  CHECK(has(ops, "Example:\n\n```yaml\noperators:\n  w:\n    type: window\n    input: g\n    size: 1s\n```\n"));

  const std::string& src = page(pages, "sources.md").markdown;
  CHECK(has(src, "| `rate` | integer | `1000` |  | 1 to 1000000 | Rows per second. |\n"));
  CHECK(has(src, "| `poll` | duration | `100ms` |  | 1ms to 1m |  |\n"));
  CHECK(has(src, "| `max_line` | size | `1MiB` |  | at least 16 |  |\n"));
  CHECK_FALSE(has(src, "**Inputs:**"));
}

TEST_CASE("pipeline.md documents the pipeline block and the common keys from their tables",
          "[spec][reference]") {
  const std::string& md = page(reference_pages(test_registry()), "pipeline.md").markdown;
  for (const auto& p : pipeline_params()) CHECK(has(md, "| `" + p.key + "` | "));
  CHECK(has(md, "| `batch.size` | integer | `1024` |  | 1 to 1000000 | "));
  CHECK(has(md, "| `time` | string | `event` |  | `event`, `processing` | "));
  CHECK(has(md, "| `input` | list of strings |  | yes |  | operators, sinks | "));
  CHECK(has(md, "| `event_time.format` | string | `auto` |  | `epoch_s`, `epoch_ms`, `epoch_us`, "
                "`epoch_ns`, `iso8601`, `datetime`, `auto` | sources | "));
  CHECK(has(md, "| `parallelism` | integer or object |  |  | 1 to 1024 | sources, operators, sinks | "));
  CHECK(has(md, "| `parallelism.max` | integer |  | yes | 1 to 1024 | sources, operators, sinks | "));
  CHECK(has(md, "| `scaling.schedule[].component` | string |  | yes |  | "));
}

TEST_CASE("an empty registry still gives pages", "[spec][reference]") {
  registry empty;
  const auto pages = reference_pages(empty);
  CHECK(has(page(pages, "sinks.md").markdown, "No sink types are registered.\n"));
}
