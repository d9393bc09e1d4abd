#pragma once
/// \file
/// A real `mosquitto` broker for the MQTT tests: started on a free loopback port with a config
/// file of its own (anonymous, no persistence unless the extra configuration says so), stopped (SIGKILL) by the destructor whatever the
/// test's outcome. Also runs `mosquitto_pub` / `mosquitto_sub`, clients nobody here wrote.

#include "pel/testing/poll.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace pel::testing {

/// A port nobody listens on now (bound to 0, read back, closed).
inline int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind to 127.0.0.1:0 failed");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
inline bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/// Starts `args` with stdout and stderr appended to `log`; returns its pid.
inline pid_t spawn_logged(const std::vector<std::string>& args, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
  return pid;
}

/// Kills and reaps `pid` (no-op for -1).
inline void kill_and_reap(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  pid = -1;
}

class mosquitto_broker {
public:
  /// `dir` holds its config and log. `listener_conf` is added at the end of the config (TLS
  /// files); `client_args` are given to mosquitto_pub and mosquitto_sub (`--cafile ...`).
  explicit mosquitto_broker(std::filesystem::path dir, std::string listener_conf = "",
                            std::vector<std::string> client_args = {})
      : dir_(std::move(dir)),
        listener_conf_(std::move(listener_conf)),
        client_args_(std::move(client_args)) {
    for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt) {
      port_ = free_loopback_port();
      start();
    }
    if (pid_ < 0) throw std::runtime_error("mosquitto did not start: " + log());
  }
  ~mosquitto_broker() { stop(); }
  mosquitto_broker(const mosquitto_broker&) = delete;
  mosquitto_broker& operator=(const mosquitto_broker&) = delete;

  int port() const noexcept { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  /// Kills the broker (SIGKILL: as a crash).
  void stop() { kill_and_reap(pid_); }

  /// Stops the broker with SIGTERM, as a service manager does (with `persistence true` it
  /// saves its sessions and queued messages); SIGKILL after 10 s.
  void stop_gracefully() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    const bool gone = poll_until([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; },
                                 std::chrono::seconds(10), std::chrono::milliseconds(10));
    if (gone) pid_ = -1;
    else kill_and_reap(pid_);
  }

  /// Starts it again on the same port; false when it does not listen within 10 s.
  bool start() {
    if (pid_ > 0) return true;
    const auto conf = (dir_ / "mosquitto.conf").string();
    // The extra configuration comes last: it may override persistence.
    std::ofstream(conf) << "listener " << port_ << " 127.0.0.1\n"
                        << "allow_anonymous true\n"
                        << "persistence false\n"
                        // As an edge broker is set up: the MQTT source acknowledges QoS 1/2
                        // messages at checkpoints, so more than mosquitto's default of 20
                        // may be in flight to it.
                        << "max_inflight_messages 0\n"
                        << listener_conf_;
    pid_ = spawn_logged({"mosquitto", "-c", conf}, (dir_ / "mosquitto.log").string());
    const bool up = poll_until(
        [&] {
          int status = 0;
          if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            pid_ = -1;  // exited: the port was taken, most likely
            return true;
          }
          return port_open(port_);
        },
        std::chrono::seconds(10), std::chrono::milliseconds(10));
    if (!up) kill_and_reap(pid_);
    return pid_ > 0;
  }

  std::string log() const {
    std::ifstream in(dir_ / "mosquitto.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  /// Publishes `payload` to `topic` with mosquitto_pub; true when it exited 0.
  bool publish(const std::string& topic, const std::string& payload, int qos = 1) const {
    std::vector<std::string> args{"mosquitto_pub", "-h",  host(), "-p", std::to_string(port_),
                                  "-q",            std::to_string(qos), "-t", topic, "-m", payload};
    args.insert(args.end(), client_args_.begin(), client_args_.end());
    pid_t pid = spawn_logged(args, (dir_ / "pub.log").string());
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  /// The host clients connect to: `localhost` with TLS (the name in the test certificate).
  std::string host() const { return client_args_.empty() ? "127.0.0.1" : "localhost"; }
  const std::vector<std::string>& client_args() const noexcept { return client_args_; }

private:
  std::filesystem::path dir_;
  std::string listener_conf_;
  std::vector<std::string> client_args_;
  int port_ = 0;
  pid_t pid_ = -1;
};

/// `mosquitto_sub -v` on `filter` in the background, each message written as `topic payload`
/// to a file; killed by the destructor.
class mosquitto_subscriber {
public:
  mosquitto_subscriber(const mosquitto_broker& b, const std::string& filter,
                       std::filesystem::path out, int qos = 1)
      : out_(std::move(out)) {
    std::vector<std::string> args{"mosquitto_sub", "-h", b.host(), "-p", std::to_string(b.port()),
                                  "-q", std::to_string(qos), "-v", "-t", filter};
    args.insert(args.end(), b.client_args().begin(), b.client_args().end());
    pid_ = spawn_logged(args, out_.string());
  }
  ~mosquitto_subscriber() { kill_and_reap(pid_); }
  mosquitto_subscriber(const mosquitto_subscriber&) = delete;
  mosquitto_subscriber& operator=(const mosquitto_subscriber&) = delete;

  /// The lines received so far.
  std::vector<std::string> lines() const {
    std::ifstream in(out_);
    std::vector<std::string> v;
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) v.push_back(l);
    return v;
  }

private:
  std::filesystem::path out_;
  pid_t pid_ = -1;
};

}  // namespace pel::testing
