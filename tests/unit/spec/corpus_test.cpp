// Every tests/data/bad/NAME.yaml gives exactly the diagnostics in NAME.expected, and every
// tests/data/good/NAME.yaml loads clean, with the real built-in types.
#include "pel/connectors/register.hpp"
#include "pel/operators/register.hpp"
#include "pel/spec/pipeline.hpp"
#include "pel/spec/reference.hpp"
#include "pel/spec/registry.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace pel::spec;

namespace {

const registry& builtin() {
  static const registry r = [] {
    registry reg;
    pel::operators::register_builtin_operators(reg);
    pel::connectors::register_builtin_connectors(reg);
    return reg;
  }();
  return r;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// The .yaml files of a folder under tests/data, sorted by name.
std::vector<fs::path> yaml_files(const std::string& folder) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(fs::path(PEL_SOURCE_DIR) / "tests/data" / folder))
    if (e.path().extension() == ".yaml") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string diagnostics_of(const fs::path& p, const std::string& shown_as) {
  try {
    load_text(slurp(p), shown_as, builtin());
    return "";
  } catch (const spec_error& e) {
    return e.diags().format();
  }
}

} // namespace

// With PEL_BLESS_CORPUS=1 in the environment, writes each .expected file from what the
// files give now instead of comparing (review the diff before committing it).
TEST_CASE("bad files give exactly their expected diagnostics", "[spec][corpus]") {
  const bool bless = std::getenv("PEL_BLESS_CORPUS") != nullptr;
  const auto files = yaml_files("bad");
  REQUIRE(files.size() >= 20);
  for (const auto& f : files) {
    const std::string name = f.filename().string();
    DYNAMIC_SECTION(name) {
      fs::path expected = f;
      expected.replace_extension(".expected");
      const std::string got = diagnostics_of(f, "tests/data/bad/" + name);
      if (bless) std::ofstream(expected, std::ios::binary) << got;
      REQUIRE(fs::exists(expected));
      CHECK_FALSE(got.empty());
      CHECK(got == slurp(expected));
    }
  }
}

TEST_CASE("good files load clean", "[spec][corpus]") {
  const auto files = yaml_files("good");
  REQUIRE(!files.empty());
  for (const auto& f : files) {
    const std::string name = f.filename().string();
    DYNAMIC_SECTION(name) { CHECK(diagnostics_of(f, "tests/data/good/" + name) == ""); }
  }
}

TEST_CASE("the example in the generated pipeline.md loads clean", "[spec][corpus]") {
  const auto pages = reference_pages(builtin());
  const std::string& md = pages.at(0).markdown;
  const auto start = md.find("```yaml\n");
  REQUIRE(start != std::string::npos);
  const auto end = md.find("```", start + 8);
  REQUIRE(end != std::string::npos);
  const std::string example = md.substr(start + 8, end - start - 8);
  CHECK_NOTHROW(load_text(example, "pipeline.md", builtin()));
}
