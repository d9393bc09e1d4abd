#pragma once
/// \file
/// What the MQTT benchmarks (mqtt_bench, edge_bench) share: sensor readings prepared as MQTT
/// messages before timing starts, a libmosquitto publisher (as fast as it can, or paced),
/// waiting for a client's subscription in the broker's log, and /proc readings of a process.
/// The broker is the tests' `mosquitto_broker` (a real mosquitto on a free loopback port).

#include "mqtt_test_broker.hpp"

#include <mosquitto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

namespace bench {

/// Options every benchmark broker gets after its `listener` line: no limit on the messages
/// queued for a subscriber (mosquitto drops beyond 1,000 by default, which would make a slow
/// reader lose messages instead of slowing down), none on those in flight to it (PEL's source
/// acknowledges at checkpoints, so a checkpoint interval's worth are in flight; mosquitto's
/// default window of 20 would hold it to 20 per checkpoint), and subscriptions in the log (to
/// see when a client is ready).
inline const char* mqtt_bench_broker_conf =
    "max_queued_messages 0\nmax_inflight_messages 0\n"
    "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
    "log_type subscribe\n";

/// One MQTT message: topic `sensors/<site>/<device>`, a JSON payload shaped like a sensor
/// reading. `ts` is filled in when published (paced runs) or fixed (as-fast-as-possible runs).
struct mqtt_message {
  std::string topic;
  int device = 0;
};

/// `count` messages from `devices` devices on 4 sites. With `skewed`, a few devices send
/// most: the first 5 % of the devices send 80 % of the messages, the rest share 20 %
/// (deterministic, seed 42).
inline std::vector<mqtt_message> prepare_mqtt_messages(std::size_t count, int devices, bool skewed) {
  std::mt19937_64 rng(42);
  const int hot = std::max(1, devices / 20);
  std::uniform_int_distribution<int> any(0, devices - 1), hot_one(0, hot - 1),
      cold_one(hot, std::max(hot, devices - 1));
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<mqtt_message> v;
  v.reserve(count);
  char buf[64];
  for (std::size_t i = 0; i < count; ++i) {
    int d = !skewed ? any(rng) : (u(rng) < 0.8 ? hot_one(rng) : cold_one(rng));
    std::snprintf(buf, sizeof buf, "sensors/site%d/dev%03d", d % 4, d);
    v.push_back({buf, d});
  }
  return v;
}

/// The payload of a reading of `device` at `ts_ms`: about 80 bytes of JSON.
inline std::string sensor_payload(int device, std::int64_t ts_ms, std::uint64_t i) {
  char buf[160];
  const double t = 20.0 + (device % 17) * 0.5 + static_cast<double>(i % 13) * 0.1;
  const double h = 40.0 + (device % 11) + static_cast<double>(i % 7) * 0.3;
  std::snprintf(buf, sizeof buf,
                "{\"ts\":%lld,\"temperature\":%.2f,\"humidity\":%.1f,\"battery\":%.2f}",
                static_cast<long long>(ts_ms), t, h, 3.0 + (device % 9) * 0.1);
  return buf;
}

inline std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

/// A connected libmosquitto client with its network thread running.
class mqtt_client {
public:
  mqtt_client(const std::string& id, int port, int max_inflight = 1000) {
    mosquitto_lib_init();
    m_ = mosquitto_new(id.c_str(), true, this);
    if (m_ == nullptr) throw std::runtime_error("mosquitto_new failed");
    mosquitto_int_option(m_, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    // QoS 1/2 messages in flight, unacknowledged (libmosquitto's default is 20).
    mosquitto_max_inflight_messages_set(m_, static_cast<unsigned>(max_inflight));
    mosquitto_connect_callback_set(m_, [](mosquitto*, void* self, int rc) {
      if (rc == 0) static_cast<mqtt_client*>(self)->connected_ = true;
    });
    mosquitto_subscribe_callback_set(m_, [](mosquitto*, void* self, int, int, const int*) {
      static_cast<mqtt_client*>(self)->subscribed_ = true;
    });
    mosquitto_message_callback_set(m_, [](mosquitto*, void* self, const mosquitto_message* msg) {
      auto* c = static_cast<mqtt_client*>(self);
      if (c->on_message) c->on_message(msg);
    });
    if (mosquitto_connect(m_, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS)
      throw std::runtime_error("cannot connect to the broker");
    if (mosquitto_loop_start(m_) != MOSQ_ERR_SUCCESS)
      throw std::runtime_error("mosquitto_loop_start failed");
    if (!pel::testing::poll_until([&] { return connected_.load(); }, std::chrono::seconds(10)))
      throw std::runtime_error("no CONNACK from the broker within 10 s");
  }
  ~mqtt_client() {
    mosquitto_disconnect(m_);
    mosquitto_loop_stop(m_, false);
    mosquitto_destroy(m_);
  }
  mqtt_client(const mqtt_client&) = delete;
  mqtt_client& operator=(const mqtt_client&) = delete;

  mosquitto* get() const { return m_; }

  /// Called on the network thread for each message received; set before `subscribe`.
  std::function<void(const mosquitto_message*)> on_message;

  /// Subscribes to `filter` and waits for the SUBACK (10 s).
  void subscribe(const std::string& filter, int qos) {
    mosquitto_subscribe(m_, nullptr, filter.c_str(), qos);
    if (!pel::testing::poll_until([&] { return subscribed_.load(); }, std::chrono::seconds(10)))
      throw std::runtime_error("no SUBACK from the broker within 10 s");
  }

  /// Publishes; retries while libmosquitto's queue refuses (bounded: 10 s).
  void publish(const std::string& topic, const std::string& payload, int qos) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (mosquitto_publish(m_, nullptr, topic.c_str(), static_cast<int>(payload.size()),
                             payload.data(), qos, false) != MOSQ_ERR_SUCCESS) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error("mosquitto_publish kept failing for 10 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  /// Waits until every QoS 1/2 message published has been acknowledged (bounded).
  bool wait_acknowledged(std::chrono::milliseconds timeout) {
    // libmosquitto has no public in-flight count; a QoS 1 marker published last is
    // acknowledged after the ones before it on the same connection (in order).
    std::atomic<bool> done{false};
    mosquitto_publish_callback_set(m_, [](mosquitto*, void* self, int mid) {
      auto* c = static_cast<mqtt_client*>(self);
      if (mid == c->marker_mid_.load()) c->marker_acked_ = true;
    });
    marker_acked_ = false;
    int mid = 0;
    marker_mid_ = -1;
    mosquitto_publish(m_, &mid, "bench/marker", 1, "x", 1, false);
    marker_mid_ = mid;
    return pel::testing::poll_until([&] { return marker_acked_.load(); }, timeout);
  }

private:
  mosquitto* m_ = nullptr;
  std::atomic<bool> connected_{false}, subscribed_{false};
  std::atomic<int> marker_mid_{-1};
  std::atomic<bool> marker_acked_{false};
};

/// True once the broker's log shows a subscription of client `client_id` (mosquitto logs
/// `<client id> <qos> <filter>` with `log_type subscribe`).
inline bool broker_saw_subscription(const pel::testing::mosquitto_broker& b,
                                    const std::string& client_id, const std::string& filter) {
  std::istringstream log(b.log());
  for (std::string line; std::getline(log, line);)
    if (line.find(" " + client_id + " ") != std::string::npos &&
        line.size() >= filter.size() &&
        line.compare(line.size() - filter.size(), filter.size(), filter) == 0)
      return true;
  return false;
}

/// /proc readings of one process.
struct proc_sample {
  long rss_kib = 0, hwm_kib = 0;  ///< VmRSS, VmHWM
  int threads = 0;
  double cpu_s = 0;               ///< user + system time so far
  double user_s = 0, sys_s = 0;
  long voluntary_switches = 0, involuntary_switches = 0;
  bool ok = false;
};

inline proc_sample read_proc(pid_t pid) {
  proc_sample s;
  const std::string base = "/proc/" + std::to_string(pid);
  {
    std::ifstream status(base + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::atol(line.c_str() + 6);
      else if (line.rfind("VmHWM:", 0) == 0) s.hwm_kib = std::atol(line.c_str() + 6);
      else if (line.rfind("Threads:", 0) == 0) s.threads = std::atoi(line.c_str() + 8);
    }
  }
  // Context switches are counted per thread: summed over /proc/PID/task/*.
  std::error_code ec;
  for (const auto& t : std::filesystem::directory_iterator(base + "/task", ec)) {
    std::ifstream status(t.path() / "status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
        s.voluntary_switches += std::atol(line.c_str() + 24);
      else if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        s.involuntary_switches += std::atol(line.c_str() + 27);
    }
  }
  std::ifstream stat(base + "/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), {});
  // Fields after the command (which may hold spaces) start after the last ')'.
  const auto close = all.rfind(')');
  if (close == std::string::npos) return s;
  std::istringstream rest(all.substr(close + 2));
  std::vector<std::string> f;
  for (std::string x; rest >> x;) f.push_back(x);
  // rest[0] is field 3 (state); utime is field 14, stime field 15.
  if (f.size() < 13) return s;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  s.user_s = std::atof(f[11].c_str()) / tick;
  s.sys_s = std::atof(f[12].c_str()) / tick;
  s.cpu_s = s.user_s + s.sys_s;
  s.ok = s.rss_kib > 0;
  return s;
}

}  // namespace bench
