#include "process.hpp"

#include "pel/testing/poll.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace pel::e2e {

namespace {

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

/// Reads what `fd` holds without blocking; closes it at end of file.
void drain_fd(int& fd, std::string& into) {
  char buf[65536];
  for (int i = 0; i < 1024 && fd >= 0; ++i) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      into.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || errno != EAGAIN) close_fd(fd);  // end of file or a broken pipe
    return;
  }
}

/// A file with `text` for the child's stdin (removed once opened by the parent).
std::string stdin_file(const std::string& text) {
  char path[] = "/tmp/pel_e2e_stdin_XXXXXX";
  int fd = ::mkstemp(path);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  return path;
}

}  // namespace

process::process(const std::vector<std::string>& args, const process_options& opt) {
  if (args.empty()) throw std::runtime_error("process: no command");
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::runtime_error("pipe2 failed");
  }

  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  std::string in_path =
      opt.stdin_text.empty() ? std::string("/dev/null") : stdin_file(opt.stdin_text);
  posix_spawn_file_actions_addopen(&fa, 0, in_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  if (!opt.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, opt.cwd.c_str());

  // The child starts with no blocked signals and default dispositions, whatever the test
  // runner has set.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& e : opt.env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> arg_strings(args);
  std::vector<char*> argv;
  for (auto& a : arg_strings) argv.push_back(a.data());
  argv.push_back(nullptr);

  int rc = ::posix_spawn(&pid_, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (!opt.stdin_text.empty()) ::unlink(in_path.c_str());
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
  if (rc != 0) {
    close_fd(out_fd_);
    close_fd(err_fd_);
    pid_ = -1;
    throw std::runtime_error(std::string("cannot start ") + args[0] + ": " + std::strerror(rc));
  }
  ::fcntl(out_fd_, F_SETFL, O_NONBLOCK);
  ::fcntl(err_fd_, F_SETFL, O_NONBLOCK);
}

process::~process() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
  close_fd(out_fd_);
  close_fd(err_fd_);
}

void process::send_signal(int sig) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

std::size_t process::stdout_pending() const {
  int n = 0;
  if (out_fd_ < 0 || ::ioctl(out_fd_, FIONREAD, &n) != 0 || n < 0) return 0;
  return static_cast<std::size_t>(n);
}

void process::pump(milliseconds wait, bool with_out) {
  pollfd fds[2];
  nfds_t n = 0;
  if (with_out && out_fd_ >= 0) fds[n++] = {out_fd_, POLLIN, 0};
  if (err_fd_ >= 0) fds[n++] = {err_fd_, POLLIN, 0};
  if (n == 0) {
    // Both pipes are closed: nothing to wait for but the exit itself.
    if (!reaped_) std::this_thread::sleep_for(std::min(wait, milliseconds(5)));
    return;
  }
  ::poll(fds, n, static_cast<int>(wait.count()));
  if (with_out) drain_fd(out_fd_, out_);
  drain_fd(err_fd_, err_);
}

void process::reap() {
  if (reaped_ || pid_ <= 0) return;
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = st;
  }
}

bool process::wait_until(const std::function<bool()>& done, milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    reap();
    if (reaped_) {
      // Collect what is left in the pipes (bounded: the writer is gone).
      for (int i = 0; i < 100 && (out_fd_ >= 0 || err_fd_ >= 0); ++i) pump(milliseconds(10));
      return done();
    }
    auto now = clock::now();
    if (now >= deadline) return false;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
    pump(std::min(left, milliseconds(20)));
  }
}

bool process::wait_until_stderr(const std::function<bool()>& done, milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    reap();
    if (reaped_) return done();
    auto now = clock::now();
    if (now >= deadline) return false;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - now);
    pump(std::min(left, milliseconds(20)), false);
  }
}

process_result process::wait(milliseconds timeout) {
  process_result r;
  // Children of the child may keep the pipes open: the exit of the child is what counts.
  wait_until([this] { return reaped_; }, timeout);
  if (!reaped_) {
    r.timed_out = true;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    reaped_ = true;
    for (int i = 0; i < 20 && (out_fd_ >= 0 || err_fd_ >= 0); ++i) pump(milliseconds(10));
  }
  if (WIFEXITED(status_)) r.exit_code = WEXITSTATUS(status_);
  if (WIFSIGNALED(status_)) r.term_signal = WTERMSIG(status_);
  r.out = std::move(out_);
  r.err = std::move(err_);
  out_.clear();
  err_.clear();
  return r;
}

process_result run(const std::vector<std::string>& args, milliseconds timeout,
                   const process_options& opt) {
  process p(args, opt);
  return p.wait(timeout);
}

std::string pel_binary() {
  return PEL_BINARY_DIR "/framework/cli/pel";
}

std::string source_dir() {
  return PEL_SOURCE_DIR;
}

process_result run_pel(const std::vector<std::string>& args, milliseconds timeout,
                       const process_options& opt) {
  std::vector<std::string> full{pel_binary()};
  full.insert(full.end(), args.begin(), args.end());
  process_options o = opt;
  if (o.cwd.empty()) o.cwd = source_dir();
  return run(full, timeout, o);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      out.push_back(text.substr(pos));
      break;
    }
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

bool eventually(const std::function<bool()>& done, milliseconds timeout) {
  return testing::poll_until(done, timeout, milliseconds(5));
}

}  // namespace pel::e2e
