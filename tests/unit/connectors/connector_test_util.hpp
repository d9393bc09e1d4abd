#pragma once
/// \file
/// Test helpers for the connectors: config trees built in code, temporary directories, and
/// polling with a deadline.

#include "pel/spec/config.hpp"
#include "pel/testing/poll.hpp"
#include "pel/testing/temp_dir.hpp"
#include "pel/spec/node.hpp"
#include "pel/spec/param.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace pel::testing {

/// A scalar node.
inline spec::node_ptr scalar(std::string text, bool quoted = false) {
  auto n = std::make_shared<spec::node>();
  n->type = spec::node::kind::scalar;
  n->text = std::move(text);
  n->quoted = quoted;
  n->at = {1, 1};
  return n;
}

/// A map node, entries in order.
inline spec::node_ptr map(std::vector<std::pair<std::string, spec::node_ptr>> entries) {
  auto n = std::make_shared<spec::node>();
  n->type = spec::node::kind::map;
  n->at = {1, 1};
  for (auto& [k, v] : entries) n->entries.push_back({k, {1, 1}, std::move(v)});
  return n;
}

/// A list node.
inline spec::node_ptr list(std::vector<spec::node_ptr> items) {
  auto n = std::make_shared<spec::node>();
  n->type = spec::node::kind::sequence;
  n->at = {1, 1};
  n->items = std::move(items);
  return n;
}

/// A config over `n` checked against `params`, which are kept alive with it.
struct test_config {
  std::shared_ptr<std::vector<spec::param>> params;
  spec::config cfg;
  test_config(spec::node_ptr n, std::vector<spec::param> p)
      : params(std::make_shared<std::vector<spec::param>>(std::move(p))),
        cfg(std::move(n), "sources.test", params.get()) {}
};

inline void write_file(const std::string& path, const std::string& text, bool append = false) {
  std::ofstream f(path, append ? std::ios::app | std::ios::binary : std::ios::binary);
  f << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// `pel::testing::poll_until` with this folder's default: 10 s, yielding between calls.
template <class F>
bool poll_until(F&& step) {
  return poll_until(std::forward<F>(step), std::chrono::seconds(10), std::chrono::milliseconds(0));
}

}  // namespace pel::testing
