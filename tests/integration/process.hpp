#pragma once
/// \file
/// A child process for end-to-end tests: started with posix_spawn, its stdout and stderr
/// read through pipes, every wait bounded by a deadline. Implemented in process.cpp.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace pel::e2e {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// How a process ended.
struct process_result {
  int exit_code = -1;      ///< the exit status, or -1 when it was killed by a signal
  int term_signal = 0;     ///< the signal that killed it, or 0
  bool timed_out = false;  ///< the deadline passed first (the process was then killed)
  std::string out;         ///< everything it wrote to stdout
  std::string err;         ///< everything it wrote to stderr
};

/// Options of a process start.
struct process_options {
  std::string cwd;               ///< working directory (empty: the test's own)
  std::vector<std::string> env;  ///< extra `NAME=value` entries added to the environment
  std::string stdin_text;        ///< written to its stdin, which is then closed
};

/// A running child. Its output is collected while the test waits; the destructor kills
/// (SIGKILL) and reaps a child still running. Not thread-safe.
class process {
public:
  /// Starts `args[0]` (a path) with `args`. Throws std::runtime_error when it cannot start.
  explicit process(const std::vector<std::string>& args, const process_options& opt = {});
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const noexcept { return pid_; }

  /// Sends `sig` to the child (no-op once it has been reaped).
  void send_signal(int sig);

  /// Reads output and checks for exit until `done()` holds, the child exits or `timeout`
  /// passes. True when `done()` held.
  bool wait_until(const std::function<bool()>& done, milliseconds timeout);

  /// Like `wait_until`, but reads only stderr: stdout stays in the pipe (which may fill and
  /// block the child's writes).
  bool wait_until_stderr(const std::function<bool()>& done, milliseconds timeout);

  /// Waits at most `timeout` for the child to exit; on timeout kills it. Returns the result
  /// with all output (the output collected so far is moved into it).
  process_result wait(milliseconds timeout);

  /// Output collected so far.
  const std::string& out() const noexcept { return out_; }
  const std::string& err() const noexcept { return err_; }

  /// Bytes the child wrote to stdout that the test has not read yet (what the pipe holds).
  /// While the test does not wait on the process nothing is read, so a child writing fast
  /// fills the pipe and then blocks in write.
  std::size_t stdout_pending() const;

  /// True once the child has exited (after a `wait_until` / `wait` noticed it).
  bool exited() const noexcept { return reaped_; }

private:
  /// Reads what the pipes hold, waiting at most `wait` for something to arrive.
  void pump(milliseconds wait, bool with_out = true);
  /// Reaps the child if it has exited.
  void reap();

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string out_;
  std::string err_;
};

/// Runs a command to completion (at most `timeout`) and returns how it ended.
process_result run(const std::vector<std::string>& args, milliseconds timeout,
                   const process_options& opt = {});

/// The path of the pel binary under test.
std::string pel_binary();

/// The repository root (examples and tests/data paths are relative to it).
std::string source_dir();

/// Runs `pel args...` from the repository root and returns how it ended (at most `timeout`).
process_result run_pel(const std::vector<std::string>& args,
                       milliseconds timeout = milliseconds(30000), const process_options& opt = {});

/// Splits text into lines (without the newlines; a last line without newline is kept).
std::vector<std::string> lines_of(const std::string& text);

/// Polls `done` every few milliseconds until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& done, milliseconds timeout);

}  // namespace pel::e2e
