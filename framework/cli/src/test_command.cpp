#include "commands.hpp"

namespace pel::cli {

// Not written yet: the subcommand exists and says so.
command test_command() {
  command c;
  c.add = [](CLI::App& app) { return app.add_subcommand("test", "(not available yet)"); };
  c.run = [] { return 2; };
  return c;
}

} // namespace pel::cli
