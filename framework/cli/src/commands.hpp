#pragma once
/// \file
/// Subcommands that live in files of their own. Each declares itself and its options on the
/// application (`add`), and runs when it was chosen (`run`, returning the exit code: 0 ok,
/// 1 runtime failure, 2 invalid input or usage).

#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace pel::cli {

struct command {
  std::function<CLI::App*(CLI::App& app)> add;
  std::function<int()> run;
  CLI::App* sub = nullptr;  ///< set by main() from `add`
};

command test_command();  ///< `pel test`: pipeline unit tests written in YAML (test_command.cpp)
command top_command();   ///< `pel top`: a terminal view of a running pipeline (top_command.cpp)
command tap_command();   ///< `pel tap`: sampled records of a running pipeline (tap_command.cpp)

} // namespace pel::cli
