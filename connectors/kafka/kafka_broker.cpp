#include "pel/connectors/kafka_broker.hpp"

#include "kafka_common.hpp"

#include <librdkafka/rdkafka_mock.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace pel::connectors {

using namespace kafka_detail;

namespace {

/// A file descriptor closed on destruction.
class unique_fd {
public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  ~unique_fd() { reset(); }
  unique_fd(unique_fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_ = -1;
};

/// Forwards TCP connections from a fixed loopback port to broker 1 of the mock cluster. The
/// mock cluster of librdkafka 2.0.2 always listens on ephemeral ports; a client only needs
/// the bootstrap address to be stable, because the metadata it receives there names every
/// broker's real address, and it connects to those directly.
class bootstrap_forwarder {
public:
  bootstrap_forwarder(int port, std::string upstream_host, int upstream_port)
      : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port) {
    listen_ = unique_fd(::socket(AF_INET, SOCK_STREAM, 0));
    if (listen_.get() < 0)
      throw std::runtime_error("cannot create a socket for the bootstrap port");
    int one = 1;
    ::setsockopt(listen_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port) +
                               " (port in use?); use --port 0 to pick a free port");
    if (::listen(listen_.get(), 64) != 0)
      throw std::runtime_error("cannot listen on 127.0.0.1:" + std::to_string(port));
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~bootstrap_forwarder() { stop(); }

  void stop() {
    if (stopping_.exchange(true)) return;
    if (acceptor_.joinable()) acceptor_.join();
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& c : conns_) {
      ::shutdown(c->client.get(), SHUT_RDWR);
      ::shutdown(c->server.get(), SHUT_RDWR);
    }
    for (auto& c : conns_) {
      if (c->up.joinable()) c->up.join();
      if (c->down.joinable()) c->down.join();
    }
    conns_.clear();
  }

private:
  struct connection {
    unique_fd client;
    unique_fd server;
    std::thread up;
    std::thread down;
  };

  static void pump(int from, int to) {
    char buf[64 * 1024];
    for (;;) {
      auto n = ::read(from, buf, sizeof buf);
      if (n <= 0) break;
      ssize_t off = 0;
      while (off < n) {
        auto w = ::write(to, buf + off, static_cast<std::size_t>(n - off));
        if (w <= 0) {
          off = -1;
          break;
        }
        off += w;
      }
      if (off < 0) break;
    }
    ::shutdown(to, SHUT_WR);
    ::shutdown(from, SHUT_RD);
  }

  void accept_loop() {
    while (!stopping_.load()) {
      pollfd p{listen_.get(), POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      unique_fd client(::accept(listen_.get(), nullptr, nullptr));
      if (client.get() < 0) continue;
      unique_fd server(::socket(AF_INET, SOCK_STREAM, 0));
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(static_cast<std::uint16_t>(upstream_port_));
      ::inet_pton(AF_INET, upstream_host_.c_str(), &addr.sin_addr);
      if (server.get() < 0 ||
          ::connect(server.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        continue;  // broker down: the client sees the connection close and retries
      auto c = std::make_unique<connection>();
      c->client = std::move(client);
      c->server = std::move(server);
      int cf = c->client.get(), sf = c->server.get();
      c->up = std::thread([cf, sf] { pump(cf, sf); });
      c->down = std::thread([cf, sf] { pump(sf, cf); });
      std::lock_guard<std::mutex> lock(mutex_);
      conns_.push_back(std::move(c));
    }
  }

  std::string upstream_host_;
  int upstream_port_;
  unique_fd listen_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<connection>> conns_;
};

}  // namespace

struct kafka_broker::impl {
  handle_ptr host;  // the client handle the mock cluster lives in
  rd_kafka_mock_cluster_t* cluster = nullptr;
  int brokers = 1;
  std::string bootstraps;
  std::unique_ptr<bootstrap_forwarder> forwarder;
  std::mutex mutex;

  /// Also runs when the constructor throws: the cluster must go before its host handle.
  ~impl() { shutdown(); }

  void shutdown() {
    if (forwarder) forwarder->stop();
    forwarder.reset();
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
    cluster = nullptr;
    host.reset();
  }

  rd_kafka_mock_cluster_t* live() const {
    if (cluster == nullptr) throw std::runtime_error("the Kafka broker is stopped");
    return cluster;
  }

  void check(rd_kafka_resp_err_t err, const std::string& what) const {
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error(what + ": " + rd_kafka_err2str(err));
  }
};

kafka_broker::kafka_broker(const kafka_broker_options& opts) : impl_(std::make_unique<impl>()) {
  if (opts.brokers < 1 || opts.brokers > 16)
    throw std::runtime_error("the number of brokers must be between 1 and 16, got " +
                             std::to_string(opts.brokers));
  if (opts.port < 0 || opts.port > 65535)
    throw std::runtime_error("the port must be between 0 and 65535, got " +
                             std::to_string(opts.port));
  impl_->brokers = opts.brokers;

  conf_ptr conf(rd_kafka_conf_new());
  std::string error;
  // A quiet host handle: it never connects anywhere itself.
  try_set(conf.get(), "log_level", "0", error);
  char errstr[512];
  impl_->host.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), errstr, sizeof errstr));
  if (!impl_->host)
    throw std::runtime_error(std::string("cannot start the mock cluster: ") + errstr);
  conf.release();  // owned by the handle now

  impl_->cluster = rd_kafka_mock_cluster_new(impl_->host.get(), opts.brokers);
  if (impl_->cluster == nullptr) throw std::runtime_error("cannot start the mock cluster");
  impl_->bootstraps = rd_kafka_mock_cluster_bootstraps(impl_->cluster);

  if (opts.port != 0) {
    auto first = impl_->bootstraps.substr(0, impl_->bootstraps.find(','));
    auto colon = first.rfind(':');
    impl_->forwarder = std::make_unique<bootstrap_forwarder>(opts.port, first.substr(0, colon),
                                                             std::stoi(first.substr(colon + 1)));
    impl_->bootstraps = "127.0.0.1:" + std::to_string(opts.port) + "," + impl_->bootstraps;
  }
  for (const auto& t : opts.topics) create_topic(t);
}

kafka_broker::~kafka_broker() {
  stop();
}

std::string kafka_broker::bootstraps() const {
  return impl_->bootstraps;
}

int kafka_broker::broker_count() const noexcept {
  return impl_->brokers;
}

void kafka_broker::create_topic(const std::string& name, int partitions) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  if (partitions < 1) throw std::runtime_error("topic " + name + " needs at least one partition");
  impl_->check(rd_kafka_mock_topic_create(impl_->live(), name.c_str(), partitions,
                                          std::min(impl_->brokers, 3)),
               "cannot create topic " + name);
}

void kafka_broker::create_topic(const std::string& spec) {
  std::string name;
  int count = 0;
  if (!parse_topic_partition_count(spec, name, count))
    throw std::runtime_error("topic '" + spec + "' must be written name:partitions, e.g. ticks:16");
  create_topic(name, count);
}

void kafka_broker::broker_down(int id) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->check(rd_kafka_mock_broker_set_down(impl_->live(), id), "broker_down");
}

void kafka_broker::broker_up(int id) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->check(rd_kafka_mock_broker_set_up(impl_->live(), id), "broker_up");
}

void kafka_broker::set_rtt(int id, int rtt_ms) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->check(rd_kafka_mock_broker_set_rtt(impl_->live(), id, rtt_ms), "set_rtt");
}

void kafka_broker::push_request_errors(kafka_api api, const std::vector<int>& errors) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<rd_kafka_resp_err_t> errs;
  errs.reserve(errors.size());
  for (int e : errors) errs.push_back(static_cast<rd_kafka_resp_err_t>(e));
  rd_kafka_mock_push_request_errors_array(impl_->live(), static_cast<std::int16_t>(api),
                                          errs.size(), errs.data());
}

void kafka_broker::set_leader(const std::string& topic, int partition, int id) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->check(rd_kafka_mock_partition_set_leader(impl_->live(), topic.c_str(), partition, id),
               "set_leader");
}

void kafka_broker::set_topic_error(const std::string& topic, int error) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  rd_kafka_mock_topic_set_error(impl_->live(), topic.c_str(),
                                static_cast<rd_kafka_resp_err_t>(error));
}

void kafka_broker::stop() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->shutdown();
}

namespace {
std::atomic<int> broker_signal{0};  ///< SIGUSR2s received and not yet acted on
}  // namespace

int run_kafka_broker(const kafka_broker_options& opts, std::atomic<bool>& stop) {
  for (const auto& t : opts.topics) {
    std::string name;
    int count = 0;
    if (!parse_topic_partition_count(t, name, count)) {
      std::cerr << "error: topic '" << t << "' must be written name:partitions, e.g. ticks:16\n";
      return 2;
    }
  }
  if (opts.brokers < 1 || opts.brokers > 16) {
    std::cerr << "error: --brokers must be between 1 and 16\n";
    return 2;
  }
  std::unique_ptr<kafka_broker> broker;
  try {
    broker = std::make_unique<kafka_broker>(opts);
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  const auto boot = broker->bootstraps();
  if (!opts.bootstrap_file.empty()) {
    const auto tmp = opts.bootstrap_file + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      f << boot << "\n";
      if (!f) {
        std::cerr << "error: cannot write " << tmp << "\n";
        return 1;
      }
    }
    if (std::rename(tmp.c_str(), opts.bootstrap_file.c_str()) != 0) {
      std::cerr << "error: cannot write " << opts.bootstrap_file << "\n";
      return 1;
    }
  }
  // SIGUSR2 takes every broker down (connections closed, new ones refused, data kept) and the
  // next one brings them back: an uplink outage for tests and demonstrations.
  struct sigaction sa {};
  sa.sa_handler = [](int) { broker_signal.fetch_add(1); };
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGUSR2, &sa, nullptr);
  std::cout << "bootstrap: " << boot << "\n"
            << "retention: " << kafka_broker_retention << "\n"
            << "outage: kill -USR2 " << ::getpid()
            << " takes the brokers down (data kept), the next one brings them back" << std::endl;
  bool down = false;
  while (!stop.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    for (int n = broker_signal.exchange(0); n > 0; --n) {
      down = !down;
      for (int id = 1; id <= broker->broker_count(); ++id) {
        if (down) broker->broker_down(id);
        else broker->broker_up(id);
      }
      std::cout << (down ? "brokers down" : "brokers up") << std::endl;
    }
  }
  broker->stop();
  return 0;
}

}  // namespace pel::connectors
