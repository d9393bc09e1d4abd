#include "mqtt_client.hpp"

#include "pel/core/time.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <stdexcept>

namespace pel::connectors::mqtt_detail {

namespace {

using clock = std::chrono::steady_clock;

// MQTT 3.1.1 packet types (the high nibble of the first byte).
constexpr std::uint8_t connect_type = 1, connack_type = 2, publish_type = 3, puback_type = 4,
                       pubrec_type = 5, pubrel_type = 6, pubcomp_type = 7, subscribe_type = 8,
                       suback_type = 9, pingreq_type = 12, pingresp_type = 13,
                       disconnect_type = 14;

// The largest packet MQTT can express (remaining length of 4 bytes).
constexpr std::size_t max_remaining = 268'435'455;

void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}

void put_str(std::string& out, std::string_view s) {
  put_u16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

void put_packet(std::string& out, std::uint8_t first, std::string_view body) {
  out.push_back(static_cast<char>(first));
  std::size_t n = body.size();
  do {
    auto b = static_cast<std::uint8_t>(n % 128);
    n /= 128;
    if (n > 0) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (n > 0);
  out.append(body);
}

std::uint16_t get_u16(const char* p) {
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(p[0]) << 8) |
                                    static_cast<std::uint8_t>(p[1]));
}

std::string ssl_error_text() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text.empty() ? std::string("TLS error") : text;
}

std::string random_client_id() {
  std::random_device rd;
  std::mt19937_64 gen(rd());
  static const char digits[] = "0123456789abcdef";
  std::string id = "pel-";
  for (int i = 0; i < 16; ++i) id.push_back(digits[gen() % 16]);
  return id;
}

}  // namespace

// --- transport -------------------------------------------------------------------------------

/// A non-blocking TCP connection, with TLS over it when an SSL_CTX is given. Used by the
/// network thread only.
class subscriber::transport {
public:
  ~transport() {
    if (ssl_) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }

  int fd() const { return fd_; }

  /// Connects within `timeout` (and the TLS handshake); false with `error`. `wake_fd`
  /// readable aborts (stop).
  bool open(const std::string& host, int port, SSL_CTX* ctx, bool insecure, int wake_fd,
            const std::function<bool()>& stopping, clock::duration timeout, std::string& error) {
    const auto deadline = clock::now() + timeout;
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
      error = "cannot resolve '" + host + "': " + ::gai_strerror(rc);
      return false;
    }
    error = "no address for '" + host + "'";
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                              a->ai_protocol);
      if (fd < 0) {
        error = std::string("socket: ") + std::strerror(errno);
        continue;
      }
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
        if (wait(fd, POLLOUT, wake_fd, stopping, deadline)) {
          int err = 0;
          socklen_t len = sizeof err;
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
          if (err == 0) {
            fd_ = fd;
            break;
          }
          error = std::strerror(err);
        } else {
          error = "connect timed out";
        }
      } else {
        error = std::strerror(errno);
      }
      ::close(fd);
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) return false;
    error.clear();
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ctx == nullptr) return true;

    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) {
      error = "TLS: " + ssl_error_text();
      return false;
    }
    in6_addr ip{};
    const bool is_ip = ::inet_pton(AF_INET, host.c_str(), &ip) == 1 ||
                       ::inet_pton(AF_INET6, host.c_str(), &ip) == 1;
    if (!is_ip) SSL_set_tlsext_host_name(ssl_, host.c_str());
    if (!insecure) {
      X509_VERIFY_PARAM* p = SSL_get0_param(ssl_);
      if (is_ip)
        X509_VERIFY_PARAM_set1_ip_asc(p, host.c_str());
      else
        X509_VERIFY_PARAM_set1_host(p, host.c_str(), 0);
    }
    while (true) {
      ERR_clear_error();
      const int rc = SSL_connect(ssl_);
      if (rc == 1) return true;
      const int e = SSL_get_error(ssl_, rc);
      short events = 0;
      if (e == SSL_ERROR_WANT_READ) events = POLLIN;
      if (e == SSL_ERROR_WANT_WRITE) events = POLLOUT;
      if (events == 0) {
        const long v = SSL_get_verify_result(ssl_);
        error = "TLS handshake: " + (v != X509_V_OK
                                         ? std::string(X509_verify_cert_error_string(v))
                                         : ssl_error_text());
        return false;
      }
      if (!wait(fd_, events, wake_fd, stopping, deadline)) {
        error = "TLS handshake timed out";
        return false;
      }
    }
  }

  /// Bytes read into `buf`: > 0; 0 when nothing is there now; -1 on error or close.
  long read(char* buf, std::size_t n, std::string& error) {
    if (ssl_ == nullptr) {
      const ssize_t r = ::recv(fd_, buf, n, 0);
      if (r > 0) return r;
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return 0;
      error = r == 0 ? "the broker closed the connection" : std::strerror(errno);
      return -1;
    }
    ERR_clear_error();
    const int r = SSL_read(ssl_, buf, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
    if (r > 0) return r;
    return tls_status(r, error);
  }

  /// Bytes written: >= 0; -1 on error.
  long write(const char* buf, std::size_t n, std::string& error) {
    if (ssl_ == nullptr) {
      const ssize_t r = ::send(fd_, buf, n, MSG_NOSIGNAL);
      if (r >= 0) return r;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
      error = std::strerror(errno);
      return -1;
    }
    ERR_clear_error();
    const int r = SSL_write(ssl_, buf, static_cast<int>(std::min<std::size_t>(n, 1 << 30)));
    if (r > 0) return r;
    return tls_status(r, error);
  }

  /// Decrypted bytes TLS holds that a poll on the socket would not show.
  bool buffered() const { return ssl_ != nullptr && SSL_pending(ssl_) > 0; }
  /// TLS needs the socket writable to go on reading (a renegotiation).
  bool wants_write() const { return want_write_; }

private:
  long tls_status(int r, std::string& error) {
    const int e = SSL_get_error(ssl_, r);
    want_write_ = e == SSL_ERROR_WANT_WRITE;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
    error = e == SSL_ERROR_ZERO_RETURN ? std::string("the broker closed the connection")
            : e == SSL_ERROR_SYSCALL   ? std::string("TLS: ") + std::strerror(errno)
                                       : "TLS: " + ssl_error_text();
    return -1;
  }

  /// Until `fd` has `events`; false at `deadline` or on a stop (a wake for anything else,
  /// an acknowledgement asked for, is taken and waiting goes on).
  static bool wait(int fd, short events, int wake_fd, const std::function<bool()>& stopping,
                   clock::time_point deadline) {
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                              clock::now());
      if (left.count() <= 0) return false;
      pollfd p[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
      const int rc = ::poll(p, 2, static_cast<int>(std::min<long>(left.count(), 1000)));
      if (rc < 0 && errno != EINTR) return false;
      if (p[1].revents != 0) {
        std::uint64_t v;
        [[maybe_unused]] auto n = ::read(wake_fd, &v, sizeof v);
        if (stopping()) return false;
      }
      if (p[0].revents != 0) return true;
    }
  }

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool want_write_ = false;
};

// --- subscriber ------------------------------------------------------------------------------

subscriber::subscriber(settings s, notice_fn notice)
    : s_(std::move(s)), notice_(std::move(notice)) {
  client_id_ = s_.conn.client_id.empty() ? random_client_id() : s_.conn.client_id;
}

subscriber::~subscriber() {
  stop();
  if (ssl_ctx_) SSL_CTX_free(static_cast<SSL_CTX*>(ssl_ctx_));
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void subscriber::start() {
  if (thread_.joinable()) return;
  if (!s_.conn.ca_file.empty()) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) throw std::runtime_error("tls: " + ssl_error_text());
    ssl_ctx_ = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_load_verify_locations(ctx, s_.conn.ca_file.c_str(), nullptr) != 1)
      throw std::runtime_error("tls: cannot load ca_file '" + s_.conn.ca_file +
                               "': " + ssl_error_text());
    if (!s_.conn.cert_file.empty()) {
      if (SSL_CTX_use_certificate_chain_file(ctx, s_.conn.cert_file.c_str()) != 1)
        throw std::runtime_error("tls: cannot load cert_file '" + s_.conn.cert_file +
                                 "': " + ssl_error_text());
      if (SSL_CTX_use_PrivateKey_file(ctx, s_.conn.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
          SSL_CTX_check_private_key(ctx) != 1)
        throw std::runtime_error("tls: cannot use key_file '" + s_.conn.key_file +
                                 "': " + ssl_error_text());
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { run(); });
}

void subscriber::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  wake();
  if (thread_.joinable()) thread_.join();
}

void subscriber::wake() {
  if (wake_fd_ < 0) return;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void subscriber::expect_session() {
  {
    std::lock_guard lock(mu_);
    expect_session_ = true;
  }
  check_lost_session();
}

void subscriber::first_session(bool present) {
  {
    std::lock_guard lock(mu_);
    if (first_session_ < 0) first_session_ = present ? 1 : 0;
  }
  check_lost_session();
}

void subscriber::check_lost_session() {
  {
    std::lock_guard lock(mu_);
    if (s_.clean_session || !expect_session_ || first_session_ != 0 || lost_session_said_)
      return;
    lost_session_said_ = true;
  }
  say(level::warning,
      "the broker says it kept no session for client id '" + client_id_ +
          "', though this source resumes from a checkpoint: the QoS 1/2 messages it had taken "
          "after that checkpoint, and those published while it was down, are lost (a broker "
          "restarted without `persistence true`, a session that expired, or another "
          "client_id)");
}

void subscriber::say(level l, const std::string& text) {
  if (notice_) notice_(l, "mqtt source '" + s_.component + "': " + text);
}

std::size_t subscriber::take(std::vector<message>& out, std::size_t max) {
  std::size_t n = 0;
  bool was_full;
  {
    std::lock_guard lock(mu_);
    was_full = queue_.size() >= s_.queue_size;
    n = std::min(max, queue_.size());
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
  }
  if (was_full && n > 0) wake();  // the network thread stopped reading: go on
  return n;
}

void subscriber::acknowledge(std::uint64_t seq) {
  {
    std::lock_guard lock(mu_);
    if (seq <= ack_upto_) return;
    ack_upto_ = seq;
  }
  wake();
}

bool subscriber::room() {
  if (s_.deferred_ack && pending_.size() >= s_.max_unacknowledged) {
    if (!cap_said_) {
      cap_said_ = true;
      say(level::warning,
          std::to_string(pending_.size()) +
              " QoS 1/2 messages wait for a checkpoint to acknowledge them, as many as MQTT's "
              "16-bit packet ids leave room for: reading pauses until a checkpoint completes, so "
              "at most that many messages arrive per checkpoint interval. Checkpoint more often "
              "(`checkpoints: {interval}`) or use `ack: receipt`");
    }
    paused_seen_ = true;
    return false;
  }
  std::lock_guard lock(mu_);
  if (queue_.size() < s_.queue_size) return true;
  paused_seen_ = true;
  return false;
}

void subscriber::wait_backoff(unsigned seconds) {
  std::unique_lock lock(mu_);
  stop_cv_.wait_for(lock, std::chrono::seconds(seconds), [&] { return stopping_; });
}

void subscriber::run() {
  pthread_setname_np(pthread_self(), "pel mqtt in");  // as top -H and /proc show it
  unsigned delay = s_.conn.reconnect_min_s;
  std::string last_error;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    std::string error;
    const bool got_connack = session(error);
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    const std::string where = s_.conn.broker.host + ":" + std::to_string(s_.conn.broker.port);
    if (got_connack) {
      delay = s_.conn.reconnect_min_s;
      say(level::warning, "connection to " + where + " lost (" + error +
                              "); reconnecting with back-off");
    } else if (error != last_error) {
      // Said once per kind of failure, not on every retry.
      if (error.rfind("the broker refused", 0) == 0)
        say(level::error, error + "; retrying");
      else
        say(level::warning, "cannot reach " + where + " (" + error + "); retrying");
    }
    last_error = got_connack ? std::string() : error;
    wait_backoff(delay);
    delay = std::min(delay * 2, s_.conn.reconnect_max_s);
  }
}

void subscriber::put_ack(std::uint8_t type, std::uint16_t id) {
  std::string body;
  put_u16(body, id);
  // PUBREL must carry flags 0010; PUBACK, PUBREC and PUBCOMP carry 0.
  put_packet(out_, static_cast<std::uint8_t>(type << 4 | (type == pubrel_type ? 2 : 0)), body);
}

void subscriber::queue_acks() {
  std::uint64_t upto;
  {
    std::lock_guard lock(mu_);
    upto = s_.deferred_ack ? ack_upto_ : ~std::uint64_t(0);
  }
  if (s_.deferred_ack && !pending_.empty() && pending_.front().seq <= upto) window_check();
  while (!pending_.empty() && pending_.front().seq <= upto) {
    const pending p = pending_.front();
    pending_.pop_front();
    if (p.forgotten) continue;
    pending_ids_.reset(p.id);
    put_ack(p.qos == 1 ? puback_type : pubrec_type, p.id);
    acked_.fetch_add(1);
  }
  unacked_.store(pending_.size());
}

void subscriber::window_check() {
  // A broker sends at most its in-flight window of unacknowledged QoS 1/2 messages (mosquitto:
  // max_inflight_messages, 20 by default) and queues the rest, dropping past its queue's
  // limit. With acknowledgements waiting for checkpoints, a window that is too small shows as:
  // the broker silent while we hold at least 10 unacknowledged when a checkpoint acknowledges
  // them, and sending again at once, three checkpoints in a row. (mosquitto 2.0 does not hold
  // the count steady: after a batch of acknowledgements it may send more than its window.)
  // Devices that merely report in bursts do not answer acknowledgements three times running.
  // Not when we paused reading ourselves since the last check (a full queue, or as many
  // unacknowledged as packet ids allow): the silence was ours.
  const std::int64_t now = core::processing_time::now().ns;
  const bool paused = paused_seen_;
  paused_seen_ = false;
  if (window_said_ || paused || pending_.size() < 10 || now - last_publish_ns_ < 200'000'000) {
    window_repeats_ = 0;
    window_watch_ = false;
    return;
  }
  window_candidate_ = pending_.size();
  window_ack_ns_ = now;
  window_watch_ = true;
}

void subscriber::window_released(std::int64_t now) {
  window_watch_ = false;
  if (now - window_ack_ns_ > 100'000'000) {
    window_repeats_ = 0;
    return;
  }
  window_seen_ = window_repeats_ == 0 ? window_candidate_ : std::min(window_seen_, window_candidate_);
  ++window_repeats_;
  if (window_repeats_ < 3) return;
  window_said_ = true;
  say(level::warning,
      "the broker stopped sending with " + std::to_string(window_seen_) +
          " or more unacknowledged messages (its in-flight window) until a checkpoint "
          "acknowledged them, three checkpoints in a row: QoS 1/2 messages are acknowledged when a checkpoint completes, so about that "
          "many arrive per checkpoint and the broker queues, and past its queue's limit drops, "
          "the rest. Raise the broker's window (mosquitto: `max_inflight_messages 0`) or use "
          "`ack: receipt`");
}

bool subscriber::session(std::string& error) {
  t_ = std::make_unique<transport>();
  in_.clear();
  out_.clear();
  subscribed_ = false;
  const auto stopping_now = [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  };
  if (!t_->open(s_.conn.broker.host, s_.conn.broker.port, static_cast<SSL_CTX*>(ssl_ctx_),
                s_.conn.tls_insecure, wake_fd_, stopping_now, std::chrono::seconds(10), error)) {
    t_.reset();
    return false;
  }
  error.clear();

  // CONNECT
  {
    std::string body;
    put_str(body, "MQTT");
    body.push_back(4);  // protocol level: 3.1.1
    std::uint8_t flags = s_.clean_session ? 0x02 : 0;
    if (!s_.conn.username.empty()) flags |= 0x80;
    if (!s_.conn.password.empty()) flags |= 0x40;
    body.push_back(static_cast<char>(flags));
    put_u16(body, static_cast<std::uint16_t>(s_.conn.keepalive_s));
    put_str(body, client_id_);
    if (!s_.conn.username.empty()) put_str(body, s_.conn.username);
    if (!s_.conn.password.empty()) put_str(body, s_.conn.password);
    put_packet(out_, connect_type << 4, body);
  }

  bool connected = false;
  const auto connect_deadline = clock::now() + std::chrono::seconds(10);
  const auto keepalive = std::chrono::seconds(s_.conn.keepalive_s);
  auto last_sent = clock::now();
  auto ping_sent = clock::time_point{};
  ping_out_ = false;
  bool closing = false;
  clock::time_point close_deadline{};
  std::vector<char> buf(64 * 1024);
  // Whole packets already read wait in `in_` because there was no room for a PUBLISH: they
  // are parsed before the socket is read again.
  bool backlog = false;

  while (true) {
    const auto now = clock::now();
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
    }
    if (stopping && !closing) {
      if (!connected) {
        error = "stopping";
        t_.reset();
        return false;
      }
      // The acknowledgements asked for before the stop go out, then DISCONNECT.
      queue_acks();
      put_packet(out_, disconnect_type << 4, {});
      closing = true;
      close_deadline = now + std::chrono::seconds(2);
    }
    if (closing && (out_.empty() || now >= close_deadline)) {
      t_.reset();
      error = "stopped";
      return true;
    }
    if (!connected && now >= connect_deadline) {
      error = "no CONNACK within 10 s";
      t_.reset();
      return false;
    }
    if (connected && !closing) queue_acks();
    const bool paused = !room();
    if (connected && !closing) {
      if (now - last_sent >= keepalive && (!ping_out_ || paused)) {
        put_packet(out_, pingreq_type << 4, {});
        ping_out_ = true;
        ping_sent = now;
      }
      // No answer to a ping within the keep-alive: the connection is dead. Not while reading
      // is paused: the answer then waits unread.
      if (ping_out_ && !paused && now - ping_sent >= keepalive) {
        error = "no answer to a ping within the keep-alive";
        t_.reset();
        return true;
      }
    }

    // Write what is queued.
    while (!out_.empty()) {
      const long w = t_->write(out_.data(), out_.size(), error);
      if (w < 0) {
        t_.reset();
        return connected;
      }
      if (w == 0) break;
      out_.erase(0, static_cast<std::size_t>(w));
      last_sent = clock::now();
    }

    // Read, unless the queue is full (the broker then holds what it has not sent).
    const bool reading = !paused || !connected || closing;
    const bool parse_only = backlog && !paused && connected;
    if (!parse_only && (!reading || !t_->buffered())) {
      pollfd p[2] = {{t_->fd(), 0, 0}, {wake_fd_, POLLIN, 0}};
      if (reading) p[0].events |= POLLIN;
      if (!out_.empty() || t_->wants_write()) p[0].events |= POLLOUT;
      int timeout_ms = 1000;
      if (connected && !closing) {
        const auto until_ping = std::chrono::duration_cast<std::chrono::milliseconds>(
            last_sent + keepalive - clock::now());
        timeout_ms = static_cast<int>(std::clamp<long>(until_ping.count(), 1, 1000));
      }
      if (closing) timeout_ms = 50;
      const int rc = ::poll(p, 2, timeout_ms);
      if (rc < 0 && errno != EINTR) {
        error = std::string("poll: ") + std::strerror(errno);
        t_.reset();
        return connected;
      }
      if (p[1].revents & POLLIN) {
        std::uint64_t v;
        [[maybe_unused]] auto n = ::read(wake_fd_, &v, sizeof v);
      }
      if ((p[0].revents & (POLLERR | POLLHUP)) && !(p[0].revents & POLLIN)) {
        error = "the connection closed";
        t_.reset();
        return connected;
      }
      if (!(p[0].revents & POLLIN)) continue;
    }

    // Up to 1 MiB per turn, then parse whole packets.
    for (int i = 0; i < 16 && !parse_only; ++i) {
      const long r = t_->read(buf.data(), buf.size(), error);
      if (r < 0) {
        t_.reset();
        return connected;
      }
      if (r == 0) break;
      in_.append(buf.data(), static_cast<std::size_t>(r));
      if (static_cast<std::size_t>(r) < buf.size() && !t_->buffered()) break;
    }
    std::size_t at = 0;
    backlog = false;
    while (true) {
      // Fixed header: type/flags and a remaining length of 1 to 4 bytes.
      if (in_.size() - at < 2) break;
      std::size_t len = 0, mult = 1, i = at + 1;
      bool complete = false;
      for (int k = 0; k < 4 && i < in_.size(); ++k, ++i) {
        const auto b = static_cast<std::uint8_t>(in_[i]);
        len += (b & 0x7f) * mult;
        mult *= 128;
        if (!(b & 0x80)) {
          complete = true;
          ++i;
          break;
        }
        if (k == 3) {
          error = "malformed packet length from the broker";
          t_.reset();
          return connected;
        }
      }
      if (!complete || in_.size() - i < len) break;
      const auto first = static_cast<std::uint8_t>(in_[at]);
      const std::uint8_t type = first >> 4;
      // No room for another message (the queue is full, or as many are unacknowledged as
      // packet ids allow): it waits here, and the socket is not read, until there is.
      if (connected && type == publish_type && !closing && !room()) {
        backlog = true;
        break;
      }
      if (!connected) {
        if (type != connack_type || len != 2) {
          error = "the broker did not answer CONNECT with CONNACK";
          t_.reset();
          return false;
        }
        const auto code = static_cast<std::uint8_t>(in_[i + 1]);
        if (code != 0) {
          static const char* reasons[] = {"",
                                          "unacceptable protocol version",
                                          "identifier rejected",
                                          "server unavailable",
                                          "bad user name or password",
                                          "not authorised"};
          error = std::string("the broker refused the connection: ") +
                  (code < 6 ? reasons[code] : "code " + std::to_string(code));
          t_.reset();
          return false;
        }
        const bool session_present = (static_cast<std::uint8_t>(in_[i]) & 1) != 0;
        if (!session_present) {
          // The broker holds nothing for us: the unacknowledged messages of an earlier
          // connection will not come again, and their ids mean nothing now.
          pending_.clear();
          pending_ids_.reset();
          unacked_.store(0);
        }
        connected = true;
        session_present_ = session_present;
        if (connects_.load() == 0) first_session(session_present);
        // SUBSCRIBE all filters at once.
        std::string body;
        put_u16(body, next_id_);
        next_id_ = static_cast<std::uint16_t>(next_id_ == 65535 ? 1 : next_id_ + 1);
        for (const auto& t : s_.topics) {
          put_str(body, t);
          body.push_back(static_cast<char>(s_.qos));
        }
        put_packet(out_, subscribe_type << 4 | 2, body);
      } else if (!handle(type, first & 0x0f, in_.data() + i, len, error)) {
        t_.reset();
        return true;
      }
      at = i + len;
    }
    in_.erase(0, at);
    if (in_.size() > max_remaining + 5) {
      error = "packet too large";
      t_.reset();
      return connected;
    }
  }
}

bool subscriber::handle(std::uint8_t type, std::uint8_t flags, const char* body, std::size_t n,
                        std::string& error) {
  switch (type) {
    case publish_type:
      publish(flags, body, n, error);
      return error.empty();
    case pubrel_type:  // QoS 2, after our PUBREC: the broker has let go of the message
      if (n < 2) break;
      put_ack(pubcomp_type, get_u16(body));
      return true;
    case suback_type: {
      if (n < 2) break;
      for (std::size_t k = 2; k < n && k - 2 < s_.topics.size(); ++k)
        if (static_cast<std::uint8_t>(body[k]) == 0x80)
          say(level::error, "the broker refused the subscription to '" + s_.topics[k - 2] + "'");
      if (!subscribed_) {
        // Counted once subscribed: from here on, what is published reaches us.
        subscribed_ = true;
        const auto count = connects_.fetch_add(1) + 1;
        const std::string where =
            s_.conn.broker.host + ":" + std::to_string(s_.conn.broker.port);
        if (count > 1 && !s_.clean_session && !session_present_)
          // The session was asked for and is gone: what the broker would have kept for us
          // while we were away is not coming.
          say(level::warning,
              "reconnected to " + where + ", but the broker says it kept no session for client "
              "id '" + client_id_ +
                  "': QoS 1/2 messages published while disconnected may be lost (a broker "
                  "restarted without `persistence true`, or an expired session; mosquitto 2.0 "
                  "says so after any restart of its own and loses what is published before "
                  "the client has subscribed again)");
        else if (count > 1)
          say(level::info, "reconnected to " + where +
                               (session_present_ ? " (session resumed)"
                                                 : " (a clean session: what was published "
                                                   "while disconnected was not kept)"));
      }
      return true;
    }
    case pingresp_type:
      ping_out_ = false;
      return true;
    case puback_type:
    case pubrec_type:
    case pubcomp_type:
      return true;  // we publish nothing
    default:
      error = "unexpected packet type " + std::to_string(type) + " from the broker";
      return false;
  }
  error = "malformed packet of type " + std::to_string(type) + " from the broker";
  return false;
}

void subscriber::publish(std::uint8_t flags, const char* body, std::size_t n, std::string& error) {
  const std::uint8_t qos = (flags >> 1) & 3;
  if (qos == 3 || n < 2) {
    error = "malformed PUBLISH from the broker";
    return;
  }
  const std::size_t topic_len = get_u16(body);
  std::size_t at = 2 + topic_len;
  if (at + (qos > 0 ? 2 : 0) > n) {
    error = "malformed PUBLISH from the broker";
    return;
  }
  std::uint16_t id = 0;
  if (qos > 0) {
    id = get_u16(body + at);
    at += 2;
    if (pending_ids_.test(id)) {
      if ((flags & 0x08) != 0) {
        // Sent again (DUP) after a reconnect while we still hold it unacknowledged: it is
        // already in the pipeline, and its acknowledgement is on its way.
        redelivered_.fetch_add(1);
        return;
      }
      // A new message under the id of one we hold: the broker forgot that one (a restart
      // that did not keep it). Its acknowledgement must not go out: it would acknowledge
      // this one before a checkpoint holds it.
      for (auto& p : pending_)
        if (p.id == id && !p.forgotten) {
          p.forgotten = true;
          break;
        }
    }
  }
  message m;
  m.topic.assign(body + 2, topic_len);
  m.size = n - at;
  m.payload.assign(body + at, m.size > s_.max_payload ? std::min(m.size, s_.keep_bytes) : m.size);
  m.id = id;
  m.qos = qos;
  m.dup = (flags & 0x08) != 0;
  m.time = core::processing_time::now().ns;
  last_publish_ns_ = m.time;
  if (window_watch_) window_released(m.time);
  std::uint64_t seq;
  {
    std::lock_guard lock(mu_);
    seq = ++seq_;
    m.seq = seq;
    queue_.push_back(std::move(m));
  }
  received_.fetch_add(1);
  if (qos > 0) {
    pending_.push_back({seq, id, qos, false});
    pending_ids_.set(id);
    unacked_.store(pending_.size());
  }
}

}  // namespace pel::connectors::mqtt_detail
