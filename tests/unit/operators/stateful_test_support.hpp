#pragma once
/// \file
/// Helpers of the stateful operator tests: build an operator from YAML text, drive it like the
/// runtime (batches, bounded out-of-order arrival, watermarks, end of stream, key-group
/// partitioning over several instances), and compare results.

#include "pel/core/operator.hpp"
#include "pel/core/state_io.hpp"
#include "pel/operators/register.hpp"
#include "pel/spec/registry.hpp"
#include "pel/spec/yaml.hpp"
#include "pel/state/key.hpp"
#include "stateful_common.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace pel::test {

using core::value;

/// One record: values and event time.
struct rec {
  std::vector<value> v;
  std::int64_t t = 0;
};
using recs = std::vector<rec>;

inline const spec::registry& stateful_registry() {
  static spec::registry reg = [] {
    spec::registry r;
    operators::register_stateful_operators(r);
    return r;
  }();
  return reg;
}

/// Keeps the parsed YAML alive with the config that views it.
struct built {
  spec::node_ptr root;
  spec::config cfg;
  core::operator_ptr op;
};

inline spec::config config_of(const std::string& type, const std::string& yaml, spec::node_ptr& root) {
  auto e = stateful_registry().find_operator(type);
  REQUIRE(e != nullptr);
  root = spec::parse_yaml(yaml, "test.yaml");
  return spec::config(root, "operators.test", &e->schema.params);
}

inline core::operator_ptr make(const std::string& type, const std::string& yaml,
                               std::vector<core::schema_ptr> inputs) {
  spec::node_ptr root;
  auto cfg = config_of(type, yaml, root);
  return stateful_registry().find_operator(type)->make(cfg, inputs);
}

inline core::schema_ptr schema_of(std::vector<std::string> names) {
  std::vector<core::field> f;
  for (auto& n : names) f.push_back({n, std::nullopt});
  return std::make_shared<core::schema>(f);
}

/// Seeded trades: symbol, price (random walk per symbol), qty, trade_id; times strictly
/// increasing by 1..`step_ms` ms.
inline recs make_trades(std::size_t n, std::uint32_t seed, int symbols = 5, int step_ms = 50) {
  std::mt19937_64 rng(seed);
  std::vector<double> price(symbols, 100.0);
  recs out;
  std::int64_t t = 1'700'000'000'000'000'000;
  for (std::size_t i = 0; i < n; ++i) {
    t += (1 + static_cast<std::int64_t>(rng() % step_ms)) * 1'000'000;
    int s = static_cast<int>(rng() % symbols);
    double jump = (rng() % 97 == 0) ? 5.0 : 0.0;
    price[s] += (static_cast<double>(rng() % 2001) / 1000.0 - 1.0) * 0.3 + ((rng() & 1) ? jump : -jump);
    std::int64_t qty = 1 + static_cast<std::int64_t>(rng() % 100);
    out.push_back({{std::string("S") + std::to_string(s), price[s], qty, static_cast<std::int64_t>(i)}, t});
  }
  return out;
}

/// The records in an arrival order that is out of event-time order by at most `bound_ns`.
inline recs shuffle_bounded(recs in, std::int64_t bound_ns, std::uint32_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::int64_t, std::size_t>> order;
  for (std::size_t i = 0; i < in.size(); ++i)
    order.emplace_back(in[i].t + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(bound_ns)), i);
  std::sort(order.begin(), order.end());
  recs out;
  for (auto& [k, i] : order) out.push_back(in[i]);
  return out;
}

/// Drives instances like the runtime: inputs (one list per input port) are fed in batches of
/// `batch`, round-robin over the inputs, each row routed to the instance owning its key group;
/// after every batch the watermark (max time seen over all inputs - `delay_ns` - 1) is
/// advanced; at the end `finish`. Returns the main output of all instances.
struct driver {
  std::vector<core::operator_ptr> ops;
  std::vector<core::operator_context> ctx;
  core::outputs out;
  std::uint32_t max_parallelism = 128;

  /// `p` instances of the operator built by `factory()`.
  template <class F>
  void start(std::uint32_t p, F factory) {
    for (std::uint32_t i = 0; i < p; ++i) {
      ops.push_back(factory());
      core::operator_context c;
      c.name = "test";
      c.instance = i;
      c.parallelism = p;
      c.max_parallelism = max_parallelism;
      auto range = state::key_group_range_of(i, p, max_parallelism);
      c.key_group_begin = range.begin;
      c.key_group_end = range.end;
      ops.back()->open(c);
      ctx.push_back(c);
    }
    // The runtime gives each output batch the width of its port's schema.
    out.main = core::batch(static_cast<std::uint32_t>(ops[0]->output_schema()->size()));
    out.dead_letter = core::batch(static_cast<std::uint32_t>(core::dead_letter_schema()->size()));
  }

  std::size_t owner(const value* row, int input) const {
    auto cols = ops[0]->key_columns(input);
    if (cols.empty() || ops.size() == 1) return 0;
    auto g = state::key_group_of(state::hash_key(row, cols.data(), cols.size()), max_parallelism);
    for (std::size_t i = 0; i < ctx.size(); ++i)
      if (g >= ctx[i].key_group_begin && g < ctx[i].key_group_end) return i;
    return 0;
  }

  /// Feeds `inputs` and, unless `stop_after` rows were fed first, ends the stream.
  void feed(const std::vector<recs>& inputs, std::size_t batch = 37, std::int64_t delay_ns = 200'000'000,
            std::size_t from_row = 0, std::size_t stop_after = SIZE_MAX, bool end = true) {
    std::vector<std::size_t> pos(inputs.size(), from_row);
    // Per input: the newest time fed; the watermark is the minimum over inputs that have
    // rows left (an input that is done no longer holds time back), as in the runtime.
    std::vector<std::int64_t> max_seen(inputs.size(), operators::time_min);
    std::size_t fed = 0;
    bool more = true;
    for (int round = 0; more && round < 10'000'000; ++round) {
      more = false;
      for (std::size_t in = 0; in < inputs.size(); ++in) {
        std::vector<core::batch> per(ops.size());
        for (std::size_t k = 0; k < batch && pos[in] < inputs[in].size() && fed < stop_after; ++k, ++fed) {
          const auto& r = inputs[in][pos[in]++];
          auto o = owner(r.v.data(), static_cast<int>(in));
          if (per[o].width == 0) per[o] = core::batch(static_cast<std::uint32_t>(r.v.size()));
          if (in == 0 && out.late.width == 0) out.late = core::batch(static_cast<std::uint32_t>(r.v.size()));
          per[o].append_copy(r.v.data(), r.t);
          max_seen[in] = std::max(max_seen[in], r.t);
        }
        for (std::size_t o = 0; o < ops.size(); ++o)
          if (!per[o].empty()) ops[o]->process(per[o], static_cast<int>(in), out);
        if (pos[in] < inputs[in].size() && fed < stop_after) more = true;
      }
      std::int64_t wm = operators::time_max;
      for (std::size_t in = 0; in < inputs.size(); ++in)
        if (pos[in] < inputs[in].size()) wm = std::min(wm, max_seen[in] == operators::time_min ? wm : max_seen[in]);
      if (wm != operators::time_max && !(wm == operators::time_min))
        for (auto& op : ops) op->on_watermark({wm - delay_ns - 1}, out);
    }
    if (end)
      for (auto& op : ops) {
        op->on_watermark(core::event_time::max(), out);
        op->finish(out);
      }
  }

  recs results() const { return to_recs(out.main); }

  static recs to_recs(const core::batch& b) {
    recs r;
    for (std::size_t i = 0; i < b.size(); ++i) r.push_back({{b.row(i), b.row(i) + b.width}, b.times[i]});
    return r;
  }
};

/// Sorts records by time, then by their values' text (a canonical order for comparing
/// results whose order across keys is not specified).
inline recs canonical(recs r) {
  auto text = [](const rec& x) {
    std::string s;
    for (auto& v : x.v) s += core::to_text(v) + "|";
    return s;
  };
  std::stable_sort(r.begin(), r.end(), [&](const rec& a, const rec& b) {
    if (a.t != b.t) return a.t < b.t;
    return text(a) < text(b);
  });
  return r;
}

/// Requires the same records (numbers equal within a relative 1e-9).
inline void require_same(const recs& got_in, const recs& want_in) {
  auto got = canonical(got_in), want = canonical(want_in);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("record " << i << " at " << got[i].t);
    REQUIRE(got[i].t == want[i].t);
    REQUIRE(got[i].v.size() == want[i].v.size());
    for (std::size_t c = 0; c < got[i].v.size(); ++c) {
      double a, b;
      INFO("field " << c << ": " << core::to_text(got[i].v[c]) << " vs " << core::to_text(want[i].v[c]));
      if (core::as_number(got[i].v[c], a) && core::as_number(want[i].v[c], b))
        REQUIRE(a == Approx(b).epsilon(1e-9).margin(1e-9));
      else
        REQUIRE(got[i].v[c] == want[i].v[c]);
    }
  }
}

inline double num(const value& v) {
  double d = std::nan("");
  core::as_number(v, d);
  return d;
}

inline value opt(double d) { return std::isnan(d) ? value{} : value{d}; }

} // namespace pel::test
