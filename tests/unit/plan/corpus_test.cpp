// Every tests/data/bad/NAME.yaml gives exactly the diagnostics in NAME.expected through
// plan::check_file (both validation passes, as `pel lint` reports them), with the real
// built-in types. tests/unit/spec/corpus_test.cpp checks the spec pass's share of them.
#include "pel/connectors/register.hpp"
#include "pel/operators/register.hpp"
#include "pel/plan/plan.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using namespace pel;

namespace {

const spec::registry& builtin() {
  static const spec::registry r = [] {
    spec::registry reg;
    operators::register_builtin_operators(reg);
    connectors::register_builtin_connectors(reg);
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

}  // namespace

// With PEL_BLESS_CORPUS=1 in the environment, writes each .expected file from what the
// files give now instead of comparing (review the diff before committing it).
TEST_CASE("bad files give exactly their expected diagnostics in both passes", "[plan][corpus]") {
  const bool bless = std::getenv("PEL_BLESS_CORPUS") != nullptr;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(PEL_SOURCE_DIR) / "tests/data/bad"))
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 30);
  for (const auto& f : files) {
    DYNAMIC_SECTION(f.filename().string()) {
      fs::path expected = f;
      expected.replace_extension(".expected");
      const auto checked =
          plan::check_text(slurp(f), "tests/data/bad/" + f.filename().string(), builtin());
      const std::string got = checked.diags.format();
      if (bless) std::ofstream(expected, std::ios::binary) << got;
      REQUIRE(fs::exists(expected));
      CHECK_FALSE(checked.plan);
      CHECK(got == slurp(expected));
    }
  }
}
