#pragma once
/// \file
/// Shared by the example tests: the generator options an example's YAML gives a source (read
/// with the generator's own parameter table, so the test produces the very records `pel run`
/// does), the generated rows, and running an example or a variant of it.

#include "e2e_support.hpp"
#include "json_line.hpp"
#include "process.hpp"

#include "pel/connectors/generator.hpp"
#include "pel/core/value.hpp"
#include "pel/spec/config.hpp"
#include "pel/spec/yaml.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace pel::e2e {

/// The options of generator source `source` in the pipeline file `yaml_path`.
inline connectors::generator_options generator_options_of(const std::string& yaml_path,
                                                          const std::string& source) {
  auto root = spec::parse_yaml_file(yaml_path);
  auto sources = root->find("sources");
  REQUIRE(sources);
  auto block = sources->value->find(source);
  REQUIRE(block);
  auto type = block->value->find("type");
  REQUIRE(type);
  REQUIRE(type->value->text == "generator");
  static const auto params = connectors::generator_params();
  spec::config cfg(block->value, "sources." + source, &params);
  return connectors::read_generator_options(cfg);
}

/// Every row a generator with `opt` produces at parallelism 1, in order.
inline std::vector<std::vector<core::value>> generate(const connectors::generator_options& opt) {
  auto src = connectors::make_generator(opt);
  core::operator_context ctx;
  ctx.name = "gen";
  src->open(ctx);
  std::vector<std::vector<core::value>> rows;
  auto width = static_cast<std::uint32_t>(src->output_schema()->size());
  for (int i = 0; i < 10'000'000; ++i) {
    core::outputs out;
    out.main = core::batch(width);
    auto st = src->poll(out, 4096);
    for (std::size_t r = 0; r < out.main.size(); ++r)
      rows.emplace_back(out.main.row(r), out.main.row(r) + width);
    if (st == core::poll_status::end) return rows;
  }
  FAIL("the generator did not end");
  return rows;
}

/// The path of an example, from the repository root.
inline std::string example(const std::string& rel) {
  return source_dir() + "/examples/" + rel;
}

/// Replaces the one occurrence of `from` in `text` (which must occur exactly once).
inline std::string replace_once(std::string text, const std::string& from, const std::string& to) {
  auto pos = text.find(from);
  REQUIRE(pos != std::string::npos);
  REQUIRE(text.find(from, pos + 1) == std::string::npos);
  return text.replace(pos, from.size(), to);
}

/// Runs `pel run FILE` from the repository root; requires exit 0 and returns the stdout rows.
inline std::vector<json_object> run_ok(const std::string& file,
                                       milliseconds timeout = milliseconds(30000)) {
  auto r = run_pel({"run", "--progress", "never", file}, timeout);
  INFO("pel run " << file << "\nstderr:\n" << r.err);
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == 0);
  return parse_json_lines(r.out);
}

/// The value at `index` of a sorted list at rank `q` lies in [lo, hi] (the neighbouring
/// ranks, widened by 2 % for a sketch's relative error).
inline bool plausible_quantile(std::vector<double> xs, double q, double got) {
  if (xs.empty()) return false;
  std::sort(xs.begin(), xs.end());
  auto n = static_cast<double>(xs.size());
  auto lo_i = static_cast<std::size_t>(std::max(0.0, std::floor(q * (n - 1)) - 1));
  auto hi_i = static_cast<std::size_t>(std::min(n - 1, std::ceil(q * n)));
  double lo = xs[lo_i], hi = xs[hi_i];
  return got >= lo - 0.02 * std::fabs(lo) - 1e-9 && got <= hi + 0.02 * std::fabs(hi) + 1e-9;
}

}  // namespace pel::e2e
