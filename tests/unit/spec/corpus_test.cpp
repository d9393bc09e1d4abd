// The spec's pass over tests/data/bad/NAME.yaml gives the diagnostics of NAME.expected that
// are its own (all of them, unless the planner adds some), and every tests/data/good/NAME.yaml
// loads clean, with the real built-in types. tests/unit/plan/corpus_test.cpp checks that
// both passes together give exactly NAME.expected.
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

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

/// True when `part` is `whole` with some lines left out, the rest in the same order.
bool in_order_within(const std::vector<std::string>& part, const std::vector<std::string>& whole) {
  std::size_t j = 0;
  for (const auto& line : part) {
    while (j < whole.size() && whole[j] != line) ++j;
    if (j == whole.size()) return false;
    ++j;
  }
  return true;
}

} // namespace

// The .expected files hold both passes (PEL_BLESS_CORPUS=1 rewrites them from the planner's
// corpus test). The spec's own pass must give a part of each, in order; files with errors
// only the planner can find (they need the input schemas) give nothing here.
TEST_CASE("bad files give their expected spec diagnostics", "[spec][corpus]") {
  const auto files = yaml_files("bad");
  REQUIRE(files.size() >= 20);
  for (const auto& f : files) {
    const std::string name = f.filename().string();
    DYNAMIC_SECTION(name) {
      fs::path expected = f;
      expected.replace_extension(".expected");
      REQUIRE(fs::exists(expected));
      const std::string want = slurp(expected);
      const std::string got = diagnostics_of(f, "tests/data/bad/" + name);
      INFO("spec pass:\n" << got);
      CHECK(in_order_within(lines_of(got), lines_of(want)));
    }
  }
}

TEST_CASE("most bad files are about the spec's own checks", "[spec][corpus]") {
  // So that the test above compares whole files, not just parts of them.
  std::size_t whole = 0;
  for (const auto& f : yaml_files("bad")) {
    fs::path expected = f;
    expected.replace_extension(".expected");
    if (diagnostics_of(f, "tests/data/bad/" + f.filename().string()) == slurp(expected)) ++whole;
  }
  CHECK(whole >= 30);
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
